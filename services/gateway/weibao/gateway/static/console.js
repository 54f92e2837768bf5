// The dispatcher console: the live board of open requests (countdowns, at risk,
// breached), the map, triage and assignment with its explanation (D3, D4), the
// customer page (agreements, coverage, quotas) and invoices (provenance, exports).

import {
  api, clear, el, errorBox, live, newKey, notice, onUnauthenticated, probe, query, requireUser, showError, userBadge,
  vocabulary, BASE,
} from "./api.js";
import { apply, fmtDelay, fmtMinutes, fmtMoney, fmtTime, lang, langButton, t, tv } from "./i18n.js";
import { MapView, mapControls } from "./map.js";
import { explanationOfLine, fact, jsonView, percent, table, tickCountdowns } from "./views.js";

const PAGE_ROLES = ["dispatcher", "billing", "auditor"];
const VIEWS = {
  board: ["dispatcher", "billing", "auditor"],
  customers: ["dispatcher", "billing", "auditor"],
  invoices: ["billing", "auditor"],
};
const CLOCKS = [["respond", "respond_by"], ["arrive", "arrive_by"], ["resolve", "resolve_by"]];
// What a request allows next comes with it (`actions`, the dispatch domain's state
// machine): the console offers those and nothing else. This list only draws the map's
// lines from a technician to where they are going.
const EN_ROUTE = ["assigned", "accepted"];
const EXPLAINED = "weibao.explanations";

const state = {
  user: null,
  view: null,
  tickets: [],
  total: 0,
  customers: new Map(), // customer_id -> customer (with sites)
  customersStale: true,
  technicians: [],
  selected: null,
  plan: [],
  explanations: JSON.parse(sessionStorage.getItem(EXPLAINED) || "{}"),
  vocabulary: {}, // each select's values, from the gateway (the shared schemas' lists)
  assignments: new Map(), // ticket_id -> {assignment, technician_id, provisional}: as dispatch recorded it
  details: new Map(), // ticket_id -> the request as dispatch answers it (coverage, milestones, status times)
  invoice: null,
  invoices: [],
  customerId: null,
  boardCustomer: null, // the board shows this customer's requests only (from the customer page); null: all
  invoiceCustomer: null, // the invoice filter's customer to set once the list's options are there
  names: new Map(), // actor (`dispatcher:li`) -> display name, "" when the gateway knows none
  candidateSort: { key: "rank", dir: "asc" }, // the candidate table's order (issue 16)
  pendingOverride: null, // {ticket_id, technician_id, reason, problems}: warned, awaiting confirmation
};

const $ = (id) => document.getElementById(id);
const allowed = (roles) => state.user.role === "admin" || roles.includes(state.user.role);
const dispatcher = () => allowed(["dispatcher"]);

// -- start -------------------------------------------------------------------------------

async function start() {
  apply();
  $("header-tools").append(langButton());
  state.user = await requireUser(PAGE_ROLES);
  $("header-tools").append(userBadge(state.user));
  document.body.classList.toggle("can-dispatch", dispatcher());
  onUnauthenticated(() => window.location.reload());
  for (const button of document.querySelectorAll("#tabs button")) {
    button.hidden = !allowed(VIEWS[button.dataset.view]);
    button.addEventListener("click", () => show(button.dataset.view));
  }
  window.addEventListener("hashchange", () => show(window.location.hash.slice(1)));
  window.addEventListener("weibao:lang", () => renderAll());
  state.vocabulary = await vocabulary();
  setUpBoard();
  setUpCustomers();
  setUpInvoices();
  show(window.location.hash.slice(1));
  setInterval(tick, 1000);
  state.live = live({
    onChange: (change) => {
      if (change.service === "contracts") state.customersStale = true;
    },
    refresh: () => refresh(),
    onState: (s) => {
      const badge = $("live");
      badge.className = `live ${s}`;
      badge.dataset.i18n = s === "on" ? "live.on" : "live.off";
      badge.textContent = t(badge.dataset.i18n);
      if (s === "on") refresh(); // whatever happened while we were away
    },
  });
}

function show(view) {
  const fallback = state.user.role === "billing" ? "invoices" : "board";
  const name = VIEWS[view] && allowed(VIEWS[view]) ? view : fallback;
  state.view = name;
  for (const section of document.querySelectorAll("main > .view")) section.hidden = section.id !== `view-${name}`;
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.view === name);
  }
  if (window.location.hash.slice(1) !== name) history.replaceState(null, "", `#${name}`);
  refresh();
}

function refresh() {
  if (state.view === "board") return refreshBoard();
  if (state.view === "customers") return refreshCustomers();
  if (state.view === "invoices") return refreshInvoices();
  return undefined;
}

function renderAll() {
  if (state.view === "board") {
    renderBoard();
    renderDetail();
  } else if (state.view === "customers") {
    renderCustomerList();
    if (state.overview) renderOverview(state.overview);
  } else if (state.view === "invoices") {
    renderInvoiceList();
    if (state.invoice) renderInvoice(state.invoice);
  }
}

async function loadCustomers() {
  if (!state.customersStale) return;
  const found = new Map();
  let offset = 0;
  while (offset !== null && offset !== undefined) {
    const page = await api("/customers", { params: { limit: 200, offset } });
    for (const customer of page.items || []) found.set(customer.customer_id, customer);
    offset = page.next_offset;
  }
  state.customers = found;
  state.customersStale = false;
  fillSiteChoices();
}

function sitesOf(customer) {
  return (customer.sites || []).map((site) => ({
    site_id: site.site_id,
    name: site.name,
    address: site.address ?? site.location?.address ?? "",
    city: site.city ?? site.location?.city ?? "",
    latitude: site.latitude ?? site.location?.latitude,
    longitude: site.longitude ?? site.location?.longitude,
    customer_id: customer.customer_id,
    customer: customer.name,
  }));
}

function technicianName(id) {
  if (!id) return "";
  return state.technicians.find((tech) => tech.technician_id === id)?.name || id;
}

function customerName(id) {
  return state.customers.get(id)?.name || id;
}

function siteName(customerId, siteId) {
  const site = (state.customers.get(customerId)?.sites || []).find((s) => s.site_id === siteId);
  return site ? site.name : siteId;
}

// -- the board -----------------------------------------------------------------------------

let map = null;

function setUpBoard() {
  map = new MapView($("map"), { onSelect: (id) => select(id) });
  $("map-controls").append(mapControls(map, { onPlan: allowed(["dispatcher"]) ? planToday : null }));
  $("board-refresh").addEventListener("click", () => refreshBoard());
  const form = $("new-ticket");
  // The choices are the API's own lists (words()); the defaults are NewTicket's.
  form.elements.channel.append(...options("channel", words("channel"), { chosen: "phone" }).filter(Boolean));
  form.elements.cause.append(...options("cause", words("cause")).filter(Boolean));
  form.elements.priority.append(...options("priority", words("priority"), { chosen: "normal" }).filter(Boolean));
  form.elements.phase.append(...options("phase", words("phase"), { blank: "phase.none" }).filter(Boolean));
  fillSkillChoices();
  $("new-ticket-toggle").addEventListener("click", () => {
    form.hidden = !form.hidden;
    if (!form.hidden) {
      form.elements.ticket_id.value = suggestTicketId();
      form.elements.summary.focus();
    }
  });
  $("new-ticket-cancel").addEventListener("click", () => { form.hidden = true; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    if (!data.phase) delete data.phase; // rule C14: no phase unless the agreement sets deadlines by phase
    try {
      await api("/tickets", { method: "POST", body: data, key: newKey() });
      notice(t("new.created", { id: data.ticket_id }));
      form.reset();
      form.hidden = true;
      state.selected = data.ticket_id;
      state.live.schedule();
    } catch (error) {
      showError(error);
    }
  });
}

function suggestTicketId() {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `T${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}`
    + `${pad(now.getSeconds())}`;
}

// The skills a request may need: NewTicket's default and every skill a technician has
// (rule D4 matches on it; a skill nobody has could not be assigned), in words, the code as
// the value. Refilled when the technicians are loaded; the choice made survives it.
const DEFAULT_SKILL = "software:general";

function fillSkillChoices() {
  const select = document.querySelector("#new-ticket select[name=skill]");
  const skills = [DEFAULT_SKILL];
  for (const tech of state.technicians) for (const skill of tech.skills || []) if (!skills.includes(skill)) skills.push(skill);
  const have = [...select.options].map((o) => o.value);
  if (have.length === skills.length && have.every((v, i) => v === skills[i])) return;
  const keep = select.value;
  clear(select).append(...options("skill", skills, { chosen: DEFAULT_SKILL }).filter(Boolean));
  if (keep && skills.includes(keep)) select.value = keep;
}

function fillSiteChoices() {
  const select = document.querySelector("#new-ticket select[name=site_id]");
  const keep = select.value;
  clear(select);
  for (const customer of state.customers.values()) {
    const group = el("optgroup", { label: customer.name });
    for (const site of sitesOf(customer)) group.append(el("option", { value: site.site_id }, site.name));
    select.append(group);
  }
  if (keep) select.value = keep;
  const filter = document.querySelector("#invoice-filter select[name=customer_id]");
  const chosen = filter.value;
  clear(filter).append(el("option", { value: "" }, t("invoices.all")));
  for (const customer of state.customers.values()) {
    filter.append(el("option", { value: customer.customer_id }, `${customer.name} (${customer.customer_id})`));
  }
  filter.value = chosen;
}

let boardLoading = null;
const BOARD_PAGE = 200; // the gateway's most per page
const BOARD_CAP = 2000; // beyond this the board is a list nobody reads: say how many are left out

// Every open request, page after page (`next_offset`), up to BOARD_CAP. The pages are read
// while the board may change under them: a row that moved up a page comes twice (kept
// once), one that moved down is seen on the next refresh.
async function loadAllPages(fetchPage, { pageSize = BOARD_PAGE, cap = BOARD_CAP } = {}) {
  const rows = new Map();
  let offset = 0;
  let total = 0;
  while (offset !== null && offset !== undefined && rows.size < cap) {
    const page = await fetchPage({ limit: Math.min(pageSize, cap - rows.size), offset });
    const items = page.items || [];
    for (const row of items) if (!rows.has(row.ticket_id)) rows.set(row.ticket_id, row);
    total = page.total ?? rows.size;
    const next = page.next_offset;
    if (!items.length || next === null || next === undefined || next <= offset) break;
    offset = next;
  }
  return { items: [...rows.values()], total: Math.max(total, rows.size) };
}

async function refreshBoard() {
  if (boardLoading) return boardLoading;
  const customer = state.boardCustomer; // a filter changed while loading: loaded again below
  boardLoading = (async () => {
    try {
      const [page] = await Promise.all([
        loadAllPages((paging) => api("/tickets", { params: { status: "open", customer_id: customer || undefined,
          ...paging } })),
        loadCustomers().catch(showError),
        allowed(["dispatcher", "auditor"])
          ? api("/technicians").then((list) => { state.technicians = list || []; }).catch(showError)
          : null,
      ]);
      state.tickets = page.items;
      state.total = page.total;
      fillSkillChoices();
      renderBoard();
      renderDetail();
      loadTicket(state.selected);
    } catch (error) {
      showError(error);
    } finally {
      boardLoading = null;
    }
  })();
  const loading = boardLoading;
  await loading;
  if (state.boardCustomer !== customer && state.view === "board") return refreshBoard();
  return loading;
}

function rowState(row) {
  if ((row.breached || []).length) return "breached";
  if ((row.at_risk || []).length) return "at-risk";
  return "";
}

function clockCell(row, kind, column) {
  const due = row[column];
  const cell = el("td", { class: "clock" });
  if (!due) {
    cell.append(t("board.no_deadline"));
    return cell;
  }
  const stopped = (row.stopped || []).includes(kind);
  const flags = [(row.at_risk || []).includes(kind) ? "at-risk" : "", (row.breached || []).includes(kind) ? "breached" : ""];
  cell.className = `clock ${flags.join(" ")}`.trim();
  cell.dataset.kind = kind;
  cell.title = fmtTime(due);
  if (stopped) {
    cell.classList.add("stopped");
    cell.append(el("span", { class: "met" }, `✓ ${t("board.met")}`), el("small", {}, fmtTime(due)));
  } else if (row.paused) {
    cell.classList.add("paused");
    cell.append(el("span", {}, t("board.paused_short")));
  } else {
    cell.dataset.due = due;
    cell.append(el("span", { class: "countdown" }), el("small", {}, fmtTime(due)));
  }
  return cell;
}

function renderBoard() {
  const body = $("board-rows");
  clear(body);
  const risky = state.tickets.filter((r) => (r.at_risk || []).length).length;
  const breached = state.tickets.filter((r) => (r.breached || []).length).length;
  $("board-count").textContent = `${t("board.count", { n: state.total })} · ${t("board.at_risk")} ${risky} · `
    + `${t("board.breached")} ${breached}`
    + (state.tickets.length < state.total
      ? ` · ${t("board.capped", { n: state.tickets.length, m: state.total })}` : "");
  $("board-count").classList.toggle("capped", state.tickets.length < state.total);
  renderBoardFilter();
  if (!state.tickets.length) {
    body.append(el("tr", {}, el("td", { colspan: 9, class: "empty" }, t("common.empty"))));
  }
  for (const row of state.tickets) {
    const tr = el("tr", {
      class: `${rowState(row)} ${row.ticket_id === state.selected ? "selected" : ""}`.trim(),
      dataset: { testid: `ticket-${row.ticket_id}`, status: row.status, ticket: row.ticket_id },
      onclick: (event) => {
        if (!event.target.closest("button")) select(row.ticket_id);
      },
    },
    el("td", { class: "id" }, row.ticket_id),
    el("td", { class: "customer" }, customerName(row.customer_id), el("small", {}, siteName(row.customer_id, row.site_id))),
    el("td", { class: "summary" }, priorityBadge(row), row.summary,
      el("small", {}, [tv("channel", row.channel), tv("cause", row.cause), tv("skill", row.skill)].filter(Boolean)
        .join(" · "))),
    el("td", {}, el("span", { class: `badge status-${row.status}`, dataset: { testid: `status-${row.ticket_id}` } },
      tv("status", row.status)),
    rowFlags(row)),
    el("td", { class: "technician", title: row.technician_id || "" }, technicianName(row.technician_id)),
    ...CLOCKS.map(([kind, column]) => clockCell(row, kind, column)),
    el("td", { class: "actions" }, quickActions(row)));
    body.append(tr);
  }
  tick();
  drawMap();
}

// The board filtered to one customer (opened from the customer page): said, and undone, here.
function renderBoardFilter() {
  const chip = clear($("board-filter"));
  chip.hidden = !state.boardCustomer;
  if (!state.boardCustomer) return;
  chip.append(t("board.filter_customer", { name: customerName(state.boardCustomer) }), " ",
    el("button", { type: "button", class: "small", title: t("board.filter_clear"), "aria-label": t("board.filter_clear"),
      dataset: { testid: "board-filter-clear" }, onclick: () => { state.boardCustomer = null; refreshBoard(); } }, "×"));
}

// Issue 13: priority orders the work; urgent and high stand out on the board, low is muted.
function priorityBadge(row, testid = `priority-${row.ticket_id}`) {
  if (!row.priority || row.priority === "normal") return null;
  return el("span", { class: `badge priority-${row.priority}`, dataset: { testid } }, tv("priority", row.priority));
}

function rowFlags(row) {
  const flags = [];
  for (const kind of row.breached || []) {
    flags.push(el("span", { class: "flag breached" }, `${tv("clock", kind)} ${t("board.breached")}`));
  }
  for (const kind of row.at_risk || []) {
    flags.push(el("span", { class: "flag at-risk" }, `${tv("clock", kind)} ${t("board.at_risk")}`));
  }
  if (row.paused) flags.push(el("span", { class: "flag paused" }, t("board.paused")));
  return flags;
}

function allows(row, action) {
  return (row.actions || []).includes(action);
}

function quickActions(row) {
  if (!dispatcher()) return [];
  const id = row.ticket_id;
  if (allows(row, "escalate")) {
    return [el("button", { type: "button", class: "small", dataset: { testid: `escalate-${id}` },
      onclick: () => escalate(id, "") }, t("action.escalate"))];
  }
  if (allows(row, "assign") && !row.technician_id) {
    return [el("button", { type: "button", class: "small primary", dataset: { testid: `assign-${id}` },
      onclick: () => assign(id) }, t("action.assign"))];
  }
  if (allows(row, "assign")) {
    return [el("button", { type: "button", class: "small", dataset: { testid: `override-open-${id}` },
      onclick: () => select(id, true) }, t("action.override"))];
  }
  return [];
}

// Every second: the countdowns, without fetching anything.
function tick() {
  tickCountdowns(3600 * 1000);
  for (const tr of document.querySelectorAll("#board-rows tr[data-ticket]")) {
    tr.classList.toggle("overdue", !!tr.querySelector(".clock.overdue"));
  }
}

function drawMap() {
  const sites = new Map();
  for (const customer of state.customers.values()) {
    for (const site of sitesOf(customer)) sites.set(site.site_id, { ...site, tickets: [] });
  }
  for (const row of state.tickets) {
    if (!sites.has(row.site_id)) {
      sites.set(row.site_id, { site_id: row.site_id, name: row.site_id, customer: customerName(row.customer_id),
        latitude: row.latitude, longitude: row.longitude, tickets: [] });
    }
    sites.get(row.site_id).tickets.push(row);
  }
  for (const site of sites.values()) {
    site.state = site.tickets.some((r) => rowState(r) === "breached") ? "breached"
      : site.tickets.some((r) => rowState(r) === "at-risk") ? "at-risk" : "";
  }
  const technicians = new Map(state.technicians.map((tech) => [tech.technician_id, tech]));
  const routes = state.tickets
    .filter((row) => row.technician_id && EN_ROUTE.includes(row.status) && technicians.has(row.technician_id))
    .map((row) => {
      const tech = technicians.get(row.technician_id);
      return { technician_id: row.technician_id, ticket_id: row.ticket_id, state: rowState(row),
        from: [tech.latitude, tech.longitude], to: [row.latitude, row.longitude] };
    });
  map.setData({ sites: [...sites.values()], technicians: state.technicians, routes, plan: state.plan });
}

async function planToday() {
  try {
    const plan = await api("/plan", { params: { seconds: 3 } });
    const technicians = new Map(state.technicians.map((tech) => [tech.technician_id, tech]));
    const where = new Map(state.tickets.map((row) => [row.ticket_id, [row.latitude, row.longitude]]));
    state.plan = Object.entries(plan.routes || {}).map(([id, stops]) => {
      const tech = technicians.get(id);
      const points = [tech ? [tech.latitude, tech.longitude] : null, ...stops.map((s) => where.get(s.ticket_id))]
        .filter(Boolean);
      return { technician_id: id, points, tickets: stops.map((s) => s.ticket_id) };
    });
    $("plan-summary").textContent = t("map.plan_done", { routes: state.plan.length,
      unassigned: (plan.unassigned || []).length, late: (plan.late || []).length });
    drawMap();
  } catch (error) {
    showError(error);
  }
}

// -- one request: details, triage, assignment ------------------------------------------------

function select(id, focusOverride = false) {
  state.selected = id;
  for (const tr of document.querySelectorAll("#board-rows tr")) {
    tr.classList.toggle("selected", tr.dataset.ticket === id);
  }
  renderDetail();
  if (focusOverride) $("detail").querySelector("select[name=technician_id]")?.focus();
  loadTicket(id);
}

// The selected request as dispatch answers it: coverage, milestones, status times and their
// clocks (issue 13, D5), and the latest assignment with its explanation (rule D4 after the
// fact). Asked again on every refresh of the board (something changed); one at a time.
const ticketLoads = new Map(); // ticket_id -> {again}: a load under way, to be repeated once done

async function loadTicket(id) {
  if (!id) return;
  const running = ticketLoads.get(id);
  if (running) {
    running.again = true;
    return;
  }
  const load = { again: false };
  ticketLoads.set(id, load);
  try {
    const ticket = await api(`/tickets/${encodeURIComponent(id)}`);
    state.details.set(id, ticket);
    state.assignments.set(id, { assignment: ticket.assignment || null, technician_id: ticket.technician_id,
      provisional: ticket.deadlines?.provisional_years || [] });
    if (state.selected === id) renderDetail();
  } catch (error) {
    if (error.status !== 404 && state.selected === id) showError(error);
  } finally {
    ticketLoads.delete(id);
    if (load.again) loadTicket(id);
  }
}

// The explanation to show: the one just answered by an assignment made here, or the one
// dispatch recorded, whichever is later (either may be missing).
function latestExplanation(id) {
  const answered = state.explanations[id];
  const known = state.assignments.get(id);
  const recorded = known?.assignment;
  if (!recorded) return answered;
  if (answered && Date.parse(answered.at) > Date.parse(recorded.at)) return answered;
  // The technician declined since: the record stays, marked as no longer theirs.
  return { ...recorded, ticket_id: id, superseded: known.technician_id !== recorded.technician_id };
}

function renderDetail() {
  const box = $("detail");
  const row = state.tickets.find((r) => r.ticket_id === state.selected);
  const explanation = latestExplanation(state.selected);
  if (!row && !explanation) {
    box.hidden = true;
    renderCandidates(null);
    return;
  }
  box.hidden = false;
  // A live refresh redraws the panel: what the dispatcher was typing survives it.
  const same = box.dataset.ticket === state.selected;
  const kept = same ? [...box.querySelectorAll("input[name], select[name]")].map((f) => [f.name, f.value]) : [];
  const focused = same && box.contains(document.activeElement) ? document.activeElement.name : null;
  const opened = same ? [...box.querySelectorAll("details[open]")].map((d) => d.dataset.testid) : [];
  box.dataset.ticket = state.selected;
  clear(box);
  box.append(el("button", { type: "button", class: "dismiss", "aria-label": t("common.close"),
    onclick: () => { state.selected = null; renderDetail(); } }, "×"));
  if (row) {
    const ticket = state.details.get(row.ticket_id);
    const opening = ticket?.opened || {};
    const coverage = opening.coverage || {};
    const cause = coverage.cause ?? row.cause;
    const phase = ticket ? opening.phase : row.phase;
    const priority = opening.priority ?? row.priority;
    box.append(
      el("h3", {}, `${row.ticket_id} · ${row.summary}`),
      el("div", {}, el("span", { class: `badge status-${row.status}` }, tv("status", row.status)), " ",
        priorityBadge({ ...row, priority }, "detail-priority-badge"), rowFlags(row)),
      el("dl", { class: "facts" },
        fact("board.customer", `${customerName(row.customer_id)} (${row.customer_id})`),
        fact("board.site", siteName(row.customer_id, row.site_id)),
        fact("board.channel", tv("channel", row.channel)),
        fact("board.skill", tv("skill", row.skill)),
        // issue 13: why the customer called, the customer's phase (C14), the priority, the device
        fact("detail.cause", el("span", { dataset: { testid: "detail-cause" } }, cause ? tv("cause", cause) : "—")),
        fact("detail.phase", el("span", { dataset: { testid: "detail-phase" } },
          phase ? tv("phase", phase) : t("phase.none"))),
        fact("detail.priority", el("span", { dataset: { testid: "detail-priority" } },
          priority ? tv("priority", priority) : "—")),
        ticket ? fact("detail.product", el("span", { dataset: { testid: "detail-product" } },
          [opening.product, opening.serial].filter(Boolean).join(" / ") || t("common.none"))) : null,
        fact("board.verdict", el("span", { dataset: { testid: "detail-verdict" } },
          `${tv("verdict", coverage.verdict ?? row.verdict)} · ${row.local ? t("board.local") : t("board.remote_site")}`)),
        (coverage.clauses || []).length ? fact("detail.clauses", el("span", { dataset: { testid: "detail-clauses" } },
          coverage.clauses.map((c) => el("span", { class: "clause" }, c)),
          // the verdict's reason is English prose: on the English screen only
          coverage.reason && lang() === "en" ? el("small", {}, coverage.reason) : null)) : null,
        typeof coverage.penalty === "boolean" ? fact("detail.penalty", el("span", { dataset: { testid: "detail-penalty" } },
          t(coverage.penalty ? "detail.penalty_yes" : "detail.penalty_no"))) : null,
        fact("board.agreement", row.agreement_id || t("common.none")),
        fact("board.opened_at", fmtTime(row.opened_at)),
        fact("board.technician", row.technician_id ? el("span", { title: row.technician_id },
          technicianName(row.technician_id)) : ""), // issue 16: a name, the id as a tooltip
        row.checked_in_at ? fact("board.checked_in_at", fmtTime(row.checked_in_at)) : null),
      ticket ? milestones(ticket, row)
        : el("table", { class: "clocks" }, el("tbody", {}, CLOCKS.filter(([, column]) => row[column]).map(([kind, column]) =>
          el("tr", {}, el("th", {}, tv("clock", kind)), clockCell(row, kind, column))))),
      ...(ticket ? [statusTimes(ticket), workRecords(ticket)] : []).filter(Boolean),
    );
    // rule D2: due times counted through a year whose official calendar was not known yet
    const provisional = state.assignments.get(row.ticket_id)?.provisional || [];
    if (provisional.length) {
      box.append(el("p", { class: "notice warn", dataset: { testid: "provisional" } },
        t("board.provisional", { years: provisional.join(", ") })));
    }
    if (dispatcher()) box.append(detailActions(row));
  }
  if (explanation) box.append(renderExplanation(explanation));
  renderCandidates(explanation); // issue 16: everyone weighed, in a panel as wide as the page
  for (const [name, value] of kept) {
    const field = box.querySelector(`[name="${name}"]`);
    if (field && value) field.value = value;
  }
  for (const testid of opened) {
    const details = box.querySelector(`details[data-testid="${testid}"]`);
    if (details) details.open = true;
  }
  if (focused) box.querySelector(`[name="${focused}"]`)?.focus();
  apply(box);
  tick();
}

// Issue 13: the SLA milestones, one per clock: where it stands (running, at risk, breached,
// met), when it is due and when it stopped, in China time; what was announced of it.
function milestones(ticket, row) {
  const deadlines = ticket.deadlines;
  const clocks = deadlines?.clocks || [];
  const clauses = ticket.opened?.deadlines?.clauses || [];
  const box = el("div", { class: "milestones", dataset: { testid: "milestones" } },
    el("h4", {}, t("detail.milestones"), " ", clauses.map((c) => el("span", { class: "clause" }, c))));
  if (!clocks.length) {
    box.append(el("p", { class: "muted" }, t("detail.no_deadlines")));
    return box;
  }
  const paused = !!deadlines.paused_at;
  box.append(el("table", { class: "clocks milestones" },
    el("thead", {}, el("tr", {}, el("th", {}),
      ["board.status", "detail.due", "detail.stopped_at", "detail.announced"].map((key) => el("th", {}, t(key))))),
    el("tbody", {}, clocks.map((clock) => {
      const running = !clock.stopped_at;
      const left = el("td", { class: "clock" });
      if (!running) left.append(fmtTime(clock.stopped_at, { seconds: true }));
      else if (paused) left.append(el("span", { class: "muted" }, t("board.paused_short")));
      else {
        left.dataset.due = clock.due;
        left.append(el("span", { class: "countdown" }));
      }
      return el("tr", { class: `clock-${clock.status}`, dataset: { testid: `milestone-${clock.kind}`, status: clock.status } },
        el("th", {}, tv("clock", clock.kind)),
        el("td", {}, el("span", { class: `badge clock-${clock.status}` }, tv("clock_status", clock.status))),
        el("td", {}, fmtTime(clock.due)),
        left,
        el("td", {}, (clock.announced || []).map((a) => tv("clock_status", a)).join("、") || "—"));
    }))));
  if (row.paused) box.append(el("p", { class: "muted" }, t("board.paused")));
  return box;
}

// rule D5, in words: the time that counts, by which clock, how long the upload took and,
// when the phone's time was not believed, why.
function timeCells(time) {
  const delay = time.upload_delay_s;
  return [
    el("td", {}, fmtTime(time.at, { seconds: true })),
    el("td", {}, el("span", { class: `badge source-${time.source}` }, tv("time_source", time.source)),
      time.source !== "device" && time.device_time
        ? el("small", {}, t("detail.device_time", { time: fmtTime(time.device_time, { seconds: true }) })) : null),
    el("td", {}, delay === null || delay === undefined ? "—"
      : t(delay >= 0 ? "detail.upload_delay" : "detail.ahead_by", { delay: fmtDelay(delay) }),
    time.flagged_reason ? el("span", { class: "flag at-risk" }, tv("time_flag", time.flagged_reason)) : null),
  ];
}

const STATUS_TIMES = ["accepted", "checked_in", "checked_out", "completed"];

function statusTimes(ticket) {
  const times = ticket.times || {};
  const reached = STATUS_TIMES.filter((name) => times[name]);
  if (!reached.length) return null;
  return el("div", { class: "status-times", dataset: { testid: "status-times" } },
    el("h4", {}, t("detail.times")),
    el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, el("th", {}), el("th", {}, t("detail.time_at")), el("th", {}, t("detail.time_source")),
        el("th", {}))),
      el("tbody", {}, reached.map((name) => el("tr", { dataset: { testid: `time-${name}`, source: times[name].source } },
        el("th", {}, tv("times", name)), timeCells(times[name]))))));
}

// The work and expenses reported on the request, each with its clock (D5): on site from the
// phone, or by phone or remote session from the desk (issue 13).
function workRecords(ticket) {
  const work = [...(ticket.work || []), ...(ticket.desk_work || [])];
  const expenses = ticket.expenses || [];
  if (!work.length && !expenses.length) return null;
  const who = (id) => (state.technicians.some((tech) => tech.technician_id === id) ? technicianName(id) : "");
  return el("div", { class: "work-records", dataset: { testid: "work-records" } },
    el("h4", {}, t("detail.work")),
    el("table", { class: "grid" }, el("tbody", {},
      work.map((w) => el("tr", { dataset: { testid: `work-${w.key}` } },
        el("th", {}, `${tv("work_channel", w.channel || "onsite")} · ${tv("work", w.kind)}`,
          el("small", {}, [who(w.technician_id || w.worker), `${fmtTime(w.started)} – ${fmtTime(w.ended, { date: false })}`]
            .filter(Boolean).join(" · "))),
        w.time ? timeCells(w.time) : el("td", { colspan: 3 }, fmtTime(w.server_time)))),
      expenses.map((x) => el("tr", { dataset: { testid: `expense-${x.key}` } },
        el("th", {}, `${tv("expense", x.kind)} ${fmtMoney(x.amount)}`, el("small", {}, who(x.technician_id))),
        x.time ? timeCells(x.time) : el("td", { colspan: 3 }, fmtTime(x.server_time)))))));
}

// A select's choices in the user's words, translated again when the language switches
// (`apply` reads data-i18n); `blank`: the i18n key of an empty first choice.
function options(prefix, values, { blank, chosen } = {}) {
  return [blank ? el("option", { value: "", dataset: { i18n: blank } }, t(blank)) : null,
    ...values.map((value) => {
      const option = el("option", { value, dataset: { i18n: `${prefix}.${value}` } }, tv(prefix, value));
      option.defaultSelected = value === chosen; // what the form's reset returns to
      return option;
    })];
}

// One of the API's vocabularies (issue 14): the values its schema accepts, in its order.
const words = (name) => state.vocabulary[name] || [];
const deskKeys = new Map(); // ticket_id -> the key of desk work being entered: a retry is one record

// A small form folded under its button; it stays open across the live redraws.
function actionForm(testid, label, fields, onSubmit) {
  const form = el("form", { class: "row" }, fields,
    el("button", { type: "submit", class: "primary", dataset: { testid: `${testid}-submit` } }, t("action.submit")));
  const box = el("details", { class: "action-form", dataset: { testid } }, el("summary", {}, label), form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await onSubmit(form)) {
      // a live redraw may have replaced the form meanwhile: empty and fold whichever is shown
      for (const shown of new Set([box, $("detail").querySelector(`details[data-testid="${testid}"]`)])) {
        if (!shown) continue;
        shown.querySelector("form").reset();
        shown.open = false;
      }
    }
  });
  return box;
}

function labelled(key, field) {
  return el("label", {}, el("span", {}, t(key)), field);
}

// A datetime-local field's value (the browser's zone, to the second).
function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:`
    + `${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

// Issue 13 on the desk: correct the classification, record a call back, log phone or remote work.
function deskActions(row) {
  const id = row.ticket_id;
  const path = (what) => `/tickets/${encodeURIComponent(id)}/${what}`;
  const forms = [];
  if (allows(row, "respond")) {
    forms.push(actionForm("respond", t("action.respond"), [
      labelled("action.kind", el("select", { name: "response_kind", dataset: { testid: "respond-kind" } },
        options("response", words("response")))),
      el("input", { name: "response_note", required: true, maxlength: 2000, placeholder: t("action.respond_note"),
        dataset: { testid: "respond-note" } }),
    ], async (form) => {
      const answer = await command(path("responses"), { kind: form.elements.response_kind.value,
        note: form.elements.response_note.value.trim() });
      if (answer) notice(t("action.responded"));
      return !!answer;
    }));
  }
  if (allows(row, "reclassify")) {
    const unchanged = "action.unchanged";
    forms.push(actionForm("reclassify", t("action.reclassify"), [
      labelled("detail.cause", el("select", { name: "reclass_cause", dataset: { testid: "reclassify-cause" } },
        options("cause", words("cause"), { blank: unchanged }))),
      labelled("detail.phase", el("select", { name: "reclass_phase", dataset: { testid: "reclassify-phase" } },
        options("phase", words("phase"), { blank: unchanged }))),
      labelled("detail.priority", el("select", { name: "reclass_priority", dataset: { testid: "reclassify-priority" } },
        options("priority", words("priority"), { blank: unchanged }))),
      el("input", { name: "reclass_reason", required: true, maxlength: 2000, placeholder: t("action.reclassify_reason"),
        dataset: { testid: "reclassify-reason" } }),
    ], async (form) => {
      const body = { reason: form.elements.reclass_reason.value.trim() };
      for (const name of ["cause", "phase", "priority"]) {
        const value = form.elements[`reclass_${name}`].value;
        if (value) body[name] = value; // what is not sent stays
      }
      const answer = await command(path("classification"), body);
      if (answer) notice(t("action.reclassified"));
      return !!answer;
    }));
  }
  if (allows(row, "desk_work")) {
    const work = actionForm("desk-work", t("action.desk_work"), [
      labelled("action.channel", el("select", { name: "desk_channel", dataset: { testid: "desk-channel" } },
        options("desk_channel", words("desk_channel")))),
      labelled("action.work_kind", el("select", { name: "desk_kind", dataset: { testid: "desk-kind" } },
        options("work", words("work"), { chosen: "software" }))),
      labelled("action.started", el("input", { type: "datetime-local", name: "desk_started", required: true,
        step: 1, dataset: { testid: "desk-started" } })),
      labelled("action.ended", el("input", { type: "datetime-local", name: "desk_ended", required: true,
        step: 1, dataset: { testid: "desk-ended" } })),
      labelled("action.desk_worker", el("select", { name: "desk_worker", dataset: { testid: "desk-worker" } },
        el("option", { value: "" }, t("action.desk_self")),
        state.technicians.map((tech) => el("option", { value: tech.technician_id }, tech.name)))),
      el("input", { name: "desk_note", required: true, maxlength: 2000, placeholder: t("action.desk_note"),
        dataset: { testid: "desk-note" } }),
    ], async (form) => {
      if (!deskKeys.has(id)) deskKeys.set(id, newKey());
      const f = form.elements;
      const body = { key: deskKeys.get(id), channel: f.desk_channel.value, kind: f.desk_kind.value,
        started: new Date(f.desk_started.value).toISOString(), ended: new Date(f.desk_ended.value).toISOString(),
        note: f.desk_note.value.trim() };
      if (f.desk_worker.value) body.technician_id = f.desk_worker.value;
      const answer = await command(path("desk-work"), body);
      if (answer) {
        deskKeys.delete(id);
        notice(t("action.desk_logged"));
      }
      return !!answer;
    });
    // Opened: the last half hour until now, but not before the request came in (dispatch
    // refuses that); what was typed already stays.
    work.addEventListener("toggle", () => {
      const f = work.querySelector("form").elements;
      if (!work.open || f.desk_started.value || f.desk_ended.value) return;
      const now = new Date();
      const opened = Math.ceil(Date.parse(row.opened_at) / 1000) * 1000 || 0;
      f.desk_started.value = localInput(new Date(Math.min(now.getTime(), Math.max(now.getTime() - 30 * 60000, opened))));
      f.desk_ended.value = localInput(now);
    });
    forms.push(work);
  }
  return forms.length ? el("div", { class: "desk-actions" }, forms) : null;
}

function detailActions(row) {
  const id = row.ticket_id;
  const actions = el("div", { class: "detail-actions" });
  if (allows(row, "escalate") || allows(row, "resolve_remotely")) {
    const note = el("input", { name: "note", maxlength: 2000, placeholder: t("action.note"),
      dataset: { testid: "triage-note" } });
    actions.append(el("div", { class: "row" }, note,
      allows(row, "escalate") ? el("button", { type: "button", class: "primary", dataset: { testid: "detail-escalate" },
        onclick: () => escalate(id, note.value) }, t("action.escalate")) : null,
      allows(row, "resolve_remotely") ? el("button", { type: "button", dataset: { testid: "detail-resolve" },
        onclick: () => resolveRemotely(id, note.value) }, t("action.resolve_remote")) : null));
  }
  if (allows(row, "assign") && !row.technician_id) {
    actions.append(el("div", { class: "row" }, el("button", { type: "button", class: "primary",
      dataset: { testid: "detail-assign" }, onclick: () => assign(id) }, t("action.assign"))));
  }
  if (allows(row, "assign")) {
    actions.append(overrideForm(row));
  }
  // rules D1, C1: opened before the customer's agreement reached dispatch; the clock also
  // looks again every turn, the button asks now
  if (allows(row, "find_coverage")) {
    actions.append(el("div", { class: "row" }, el("button", { type: "button", dataset: { testid: "detail-coverage" },
      onclick: () => findCoverage(id) }, t("action.find_coverage"))));
  }
  if (allows(row, "wait") || allows(row, "resume")) {
    const reason = el("input", { name: "wait_reason", maxlength: 2000, placeholder: t("action.note") });
    actions.append(el("div", { class: "row" }, reason,
      allows(row, "resume")
        ? el("button", { type: "button", dataset: { testid: "detail-resume" },
          onclick: () => wait(id, false, reason.value) }, t("action.resume"))
        : el("button", { type: "button", dataset: { testid: "detail-wait" },
          onclick: () => wait(id, true, reason.value) }, t("action.wait"))));
  }
  const desk = deskActions(row);
  if (desk) actions.append(desk);
  return actions;
}

async function command(path, body) {
  try {
    const answer = await api(path, { method: "POST", body, key: newKey() });
    state.live.schedule();
    return answer;
  } catch (error) {
    showError(error);
    return null;
  }
}

async function escalate(id, note) {
  state.selected = id;
  await command(`/tickets/${encodeURIComponent(id)}/triage`, { outcome: "escalate", note: note || "" });
}

async function resolveRemotely(id, note) {
  await command(`/tickets/${encodeURIComponent(id)}/triage`, { outcome: "remote", note: note || "" });
}

async function findCoverage(id) {
  const answer = await command(`/tickets/${encodeURIComponent(id)}/coverage-check`, {});
  if (answer) notice(t((answer.events || []).length ? "action.coverage_found" : "action.no_coverage"));
}

async function wait(id, waiting, reason) {
  await command(`/tickets/${encodeURIComponent(id)}/wait`, { until_customer_responds: waiting, reason: reason || "" });
}

async function assign(id, technicianId, reason) {
  state.selected = id;
  state.pendingOverride = null;
  const body = technicianId ? { technician_id: technicianId, reason: reason || "" } : {};
  const answer = await command(`/tickets/${encodeURIComponent(id)}/assignment`, body);
  const assigned = (answer?.events || []).find((e) => e.type.endsWith("VisitAssigned") && e.data?.explanation);
  if (assigned) {
    state.explanations[id] = { ...assigned.data, ticket_id: id };
    sessionStorage.setItem(EXPLAINED, JSON.stringify(state.explanations));
  }
  renderDetail();
}

// -- issue 16: an assignment a dispatcher can judge before committing to it -------------------

// Beyond this a journey leaves the region (rail or air, D4's travel model): "far away".
const FAR_KM = 150;

// "12月7日 10:23" / "7 Dec 10:23", in Beijing time (C20).
function fmtDay(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return "";
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Shanghai", month: "numeric",
    day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(moment)
    .map((p) => [p.type, p.value]));
  const month = lang() === "zh" ? parts.month
    : new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Shanghai", month: "short" }).format(moment);
  return t("explain.s.moment", { month: lang() === "zh" ? Number(month) : month, day: Number(parts.day),
    time: `${parts.hour}:${parts.minute}` });
}

// "5小时6分" / "5 h 6 min"
const fmtSpan = (minutes) => fmtDelay(Math.round(Number(minutes) || 0) * 60);
const fmtKm = (km) => Number(km).toLocaleString(lang() === "zh" ? "zh-CN" : "en-GB", { maximumFractionDigits: 1 });

// A person's display name: technicians from the technicians list, everyone else (an actor
// such as `dispatcher:li`) from the gateway's GET /names; never the id on the screen.
const namesAsked = new Set();

function personName(actor) {
  if (!actor) return "";
  if (state.technicians.some((tech) => tech.technician_id === actor)) return technicianName(actor);
  const known = state.names.get(actor);
  if (known !== undefined) return known || t("explain.unknown_person");
  if (!namesAsked.has(actor)) {
    namesAsked.add(actor);
    queueMicrotask(lookUpNames);
  }
  return "…";
}

async function lookUpNames() {
  const asking = [...namesAsked].filter((a) => !state.names.has(a));
  if (!asking.length) return;
  const search = new URLSearchParams(asking.map((a) => ["actor", a]));
  try {
    const answer = await api(`/names?${search}`);
    for (const actor of asking) state.names.set(actor, answer?.names?.[actor] || "");
  } catch {
    for (const actor of asking) state.names.set(actor, "");
  }
  renderDetail();
}

// What the rule said, as data: `facts` as dispatch records it (issue 16), or, for an
// explanation recorded before, the same read off the ranked candidates.
function explanationFacts(x) {
  if (x.facts) return x.facts;
  const ranked = x.candidates || [];
  const eligible = ranked.filter((c) => c.eligible);
  const ruleWinner = (x.overrides || [])[0]?.replaced ?? (eligible.length ? ranked[0].technician_id : null);
  const winner = ranked.find((c) => c.technician_id === ruleWinner);
  const counts = {};
  for (const c of ranked) for (const why of c.why_not || []) counts[why] = (counts[why] || 0) + 1;
  const facts = { winner: winner?.technician_id ?? null, weighed: ranked.length, eligible: eligible.length,
    in_time: eligible.filter((c) => c.can_make_deadline).length, ineligible: Object.entries(counts),
    runner_up: null, earliest: null, late_minutes: null };
  if (!winner) return facts;
  const next = eligible.find((c) => c.technician_id !== winner.technician_id);
  if (next && (!winner.can_make_deadline || next.can_make_deadline)) facts.runner_up = next.technician_id;
  const earliest = [...eligible].sort((a, b) => Date.parse(a.arrives) - Date.parse(b.arrives))[0];
  if (earliest && Date.parse(earliest.arrives) < Date.parse(winner.arrives)) facts.earliest = earliest.technician_id;
  if (x.arrive_by && !winner.can_make_deadline) facts.late_minutes = (Date.parse(winner.arrives) - Date.parse(x.arrive_by)) / 60000;
  return facts;
}

function trip(c) {
  return t("explain.s.trip", { mode: tv("explain.by_mode", c.mode), distance: fmtKm(c.distance_km),
    travel: fmtSpan(c.travel_minutes), arrives: fmtDay(c.arrives) });
}

// The rule's reason as a sentence in the screen's language (dispatch's `reason` is English).
function explanationSentence(x) {
  const f = explanationFacts(x);
  const of = (id) => (x.candidates || []).find((c) => c.technician_id === id);
  const name = (id) => technicianName(id);
  const deadline = x.arrive_by ? fmtDay(x.arrive_by) : "";
  const parts = [];
  const winner = of(f.winner);
  if (x.rule === "round_optimum") {
    if (!winner) parts.push(t("explain.s.round_none", { n: f.round_size ?? "" }));
    else {
      parts.push(t(winner.can_make_deadline ? "explain.s.round" : "explain.s.round_late",
        { n: f.round_size ?? "", winner: name(f.winner), trip: trip(winner) }));
      if (f.alone) {
        parts.push(t(f.alone_goes_to ? "explain.s.round_alone_taken" : "explain.s.round_alone",
          { name: name(f.alone), request: f.alone_goes_to || "" }));
      }
    }
  } else if (!winner) {
    const counts = (f.ineligible || []).map(([why, n]) => t("explain.s.count", { n, why: tv("why", why) }));
    parts.push(f.weighed ? t("explain.s.nobody", { n: f.weighed, counts: counts.join(t("explain.s.list_sep")) })
      : t("explain.s.nobody_none"));
  } else if (x.rule === "earliest_arrival_at_risk") {
    parts.push(t("explain.s.at_risk", { n: f.eligible, deadline, winner: name(f.winner), trip: trip(winner),
      late: fmtSpan(f.late_minutes ?? 0) }));
    const next = of(f.runner_up);
    if (next) parts.push(t("explain.s.at_risk_next", { name: name(next.technician_id), arrives: fmtDay(next.arrives) }));
  } else {
    parts.push(t(deadline ? "explain.s.in_time" : "explain.s.in_time_no_deadline",
      { n: f.in_time, deadline, winner: name(f.winner), trip: trip(winner) }));
    const next = of(f.runner_up);
    if (next) parts.push(t("explain.s.next", { name: name(next.technician_id), travel: fmtSpan(next.travel_minutes) }));
    const earliest = of(f.earliest);
    if (earliest) parts.push(t("explain.s.earliest", { name: name(earliest.technician_id), arrives: fmtDay(earliest.arrives) }));
  }
  if ((x.excluded || []).length) {
    parts.push(t("explain.s.unweighed", { names: x.excluded.map((e) => name(e.technician_id)).join(t("explain.s.list_sep")) }));
  }
  return parts.join(t("explain.s.sep"));
}

// The rule's decision as dispatch recorded it: the winner, why, who made it, and the
// overrides; the candidate table goes to its own full-width panel (renderCandidates).
function renderExplanation(assigned) {
  const x = assigned.explanation || {};
  const overrides = x.overrides || [];
  const superseded = !!assigned.superseded;
  const box = el("div", { class: `explanation ${assigned.at_risk ? "at-risk" : ""} ${superseded ? "superseded" : ""}`,
    dataset: { testid: "explanation" } },
    el("h4", {}, t("explain.title"), " · ", assigned.ticket_id || x.request_id || ""),
    el("dl", { class: "facts" },
      fact("explain.chosen", el("strong", { dataset: { testid: "explanation-technician",
        technician: assigned.technician_id || "" } }, technicianName(assigned.technician_id))),
      fact("explain.rule", tv("rule", x.rule)),
      x.arrive_by ? fact("explain.deadline", fmtDay(x.arrive_by)) : null,
      assigned.at ? fact("explain.assigned_at", fmtDay(assigned.at)) : null,
      assigned.by ? fact("explain.assigned_by", el("span", { dataset: { testid: "explanation-by" } },
        personName(assigned.by))) : null,
      assigned.override_reason ? fact("explain.override_reason", assigned.override_reason) : null),
    superseded ? el("div", { class: "flag", dataset: { testid: "explanation-superseded" } },
      t("explain.superseded")) : null,
    assigned.at_risk ? el("div", { class: "flag at-risk" }, t("explain.at_risk")) : null,
    el("p", { class: "reason", dataset: { testid: "explanation-reason" } }, explanationSentence(x)));
  for (const o of overrides) {
    box.append(el("p", { class: "override-note", dataset: { testid: "override-note" } },
      t("explain.s.override", { from: o.replaced ? technicianName(o.replaced) : "—", to: technicianName(o.technician_id),
        reason: o.reason, by: personName(o.by) })));
  }
  if ((x.candidates || []).length) {
    box.append(el("p", { class: "muted" }, el("a", { href: "#assignment-panel", dataset: { testid: "candidates-link" } },
      t("explain.see_candidates", { n: x.candidates.length }))));
  }
  return box;
}

// Each technician's load now: open visits of the day against what they can take.
function load(id) {
  const tech = state.technicians.find((x) => x.technician_id === id);
  if (!tech) return null;
  return { open: (tech.open_visits || []).length, capacity: tech.capacity_per_day };
}

const SORTS = {
  rank: (c) => c.rank,
  technician: (c) => technicianName(c.technician_id),
  distance: (c) => Number(c.distance_km),
  travel: (c) => Number(c.travel_minutes),
  arrives: (c) => Date.parse(c.arrives),
  load: (c) => { const l = load(c.technician_id); return l ? l.open / Math.max(l.capacity, 1) : Infinity; },
};
const COLUMNS = [["rank", "explain.rank"], ["technician", "board.technician"], ["distance", "explain.distance"],
  [null, "explain.mode"], ["travel", "explain.travel"], ["arrives", "explain.arrives"], ["load", "explain.load"],
  [null, "explain.eligible"], [null, "explain.in_time"], [null, "explain.why_not"]];

// Everyone the rule weighed, in a panel as wide as the page, sortable by its headers.
function renderCandidates(assigned) {
  const panel = $("assignment-panel");
  const x = assigned?.explanation || {};
  const candidates = (x.candidates || []).map((c, i) => ({ ...c, rank: i + 1 }));
  clear(panel);
  panel.hidden = !candidates.length;
  if (!candidates.length) return;
  const sort = state.candidateSort;
  const key = SORTS[sort.key] ? sort.key : "rank";
  candidates.sort((a, b) => {
    const [p, q] = [SORTS[key](a), SORTS[key](b)];
    const order = typeof p === "string" ? p.localeCompare(q, "zh-CN") : p - q;
    return (sort.dir === "desc" ? -order : order) || a.rank - b.rank;
  });
  const header = ([sortKey, label]) => {
    if (!sortKey) return el("th", {}, t(label));
    const active = sortKey === key;
    // the whole header cell takes the click; its button (for the keyboard) bubbles to it
    return el("th", { class: `sortable ${active ? `sorted ${sort.dir}` : ""}`,
      "aria-sort": active ? (sort.dir === "desc" ? "descending" : "ascending") : "none",
      dataset: { testid: `sort-${sortKey}` }, onclick: () => {
        state.candidateSort = { key: sortKey, dir: active && sort.dir === "asc" ? "desc" : "asc" };
        renderCandidates(assigned);
      } },
    el("button", { type: "button", class: "sort" }, t(label),
      el("span", { class: "arrow" }, active ? (sort.dir === "desc" ? " ▼" : " ▲") : "")));
  };
  const chosen = assigned.technician_id;
  panel.append(
    el("h3", {}, t("explain.candidates"), " · ", assigned.ticket_id || x.request_id || "",
      x.arrive_by ? el("span", { class: "muted" }, " · ", t("explain.deadline"), " ", fmtDay(x.arrive_by)) : null),
    el("div", { class: "table-wrap" }, el("table", { class: "candidates", dataset: { testid: "candidates" } },
      el("thead", {}, el("tr", {}, COLUMNS.map(header))),
      el("tbody", {}, candidates.map((c) => {
        const l = load(c.technician_id);
        return el("tr", { class: `${c.technician_id === chosen ? "chosen" : ""} ${c.eligible ? "" : "ineligible"}`,
          dataset: { testid: `candidate-${c.technician_id}`, technician: c.technician_id } },
        el("td", { class: "num" }, String(c.rank)),
        el("td", {}, technicianName(c.technician_id)),
        el("td", { class: "num" }, t("explain.s.km", { km: fmtKm(c.distance_km) })),
        el("td", {}, tv("mode", c.mode)),
        el("td", { class: "num", dataset: { minutes: c.travel_minutes } }, fmtSpan(c.travel_minutes)),
        el("td", { class: c.can_make_deadline ? "" : "late" }, fmtDay(c.arrives)),
        el("td", { class: "num" }, l ? t("explain.load_of", { open: l.open, capacity: l.capacity }) : "—"),
        el("td", {}, c.eligible ? t("common.yes") : t("common.no")),
        el("td", {}, c.can_make_deadline ? t("common.yes") : t("explain.late_by", { late:
          fmtSpan((Date.parse(c.arrives) - Date.parse(x.arrive_by)) / 60000) })),
        el("td", { class: "why" }, (c.why_not || []).map((w) => tv("why", w)).join(t("explain.s.list_sep")) || "—"));
      })))),
    el("p", { class: "muted" }, t("explain.weighed_at", { at: fmtDay(x.now) })));
}

// What is wrong with sending this technician, in words: from the figures the rule weighed
// (the latest explanation), else from the technicians list (skill, leave, load, distance).
function overrideProblems(row, technicianId) {
  const problems = [];
  const x = latestExplanation(row.ticket_id)?.explanation;
  const c = (x?.candidates || []).find((k) => k.technician_id === technicianId);
  const tech = state.technicians.find((k) => k.technician_id === technicianId);
  if (c) {
    for (const why of c.why_not || []) problems.push(t(`explain.warn.${why}`, { skill: tv("skill", x.skill) }));
    if (!c.can_make_deadline && x.arrive_by) {
      problems.push(t("explain.warn.late", { deadline: fmtDay(x.arrive_by), arrives: fmtDay(c.arrives),
        late: fmtSpan((Date.parse(c.arrives) - Date.parse(x.arrive_by)) / 60000) }));
    }
    if (c.mode !== "road" || c.distance_km > FAR_KM) {
      problems.push(t("explain.warn.far", { km: fmtKm(c.distance_km), mode: tv("explain.by_mode", c.mode),
        travel: fmtSpan(c.travel_minutes) }));
    }
    return problems;
  }
  if (!tech) return problems;
  if (row.skill && !(tech.skills || []).includes(row.skill)) problems.push(t("explain.warn.skill", { skill: tv("skill", row.skill) }));
  const today = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(new Date());
  if ((tech.time_off || []).some(([first, last]) => first <= today && today <= last)) problems.push(t("explain.warn.leave"));
  if ((tech.open_visits || []).length >= tech.capacity_per_day) problems.push(t("explain.warn.capacity"));
  const site = (state.customers.get(row.customer_id)?.sites || []).find((s) => s.site_id === row.site_id);
  if (site && Number.isFinite(tech.latitude)) {
    const km = greatCircleKm([tech.latitude, tech.longitude], [site.latitude, site.longitude]);
    if (km > FAR_KM) problems.push(t("explain.warn.far_only", { km: fmtKm(km) }));
  }
  if (problems.length || row.arrive_by) problems.push(t("explain.warn.no_estimate"));
  return problems;
}

function greatCircleKm([lat1, lon1], [lat2, lon2]) {
  const rad = Math.PI / 180;
  const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2
    + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lon2 - lon1) * rad) / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.sqrt(a));
}

// The override form: a technician, a reason (required), and when the choice has problems a
// warning that needs a second, explicit confirmation before anything is committed.
function overrideForm(row) {
  const id = row.ticket_id;
  const pending = state.pendingOverride?.ticket_id === id ? state.pendingOverride : null;
  const named = new Map();
  for (const tech of state.technicians) named.set(tech.name, (named.get(tech.name) || 0) + 1);
  const technician = el("select", { name: "technician_id", required: true, dataset: { testid: "override-technician" },
    onchange: () => { if (state.pendingOverride?.ticket_id === id) { state.pendingOverride = null; renderDetail(); } } },
  el("option", { value: "" }, t("action.choose_technician")),
  state.technicians.filter((tech) => tech.technician_id !== row.technician_id).map((tech) =>
    el("option", { value: tech.technician_id, selected: pending?.technician_id === tech.technician_id },
      // two of one name: the id tells them apart
      named.get(tech.name) > 1 ? `${tech.name} (${tech.technician_id})` : tech.name)));
  const reason = el("input", { name: "reason", required: true, maxlength: 2000, placeholder: t("action.reason"),
    dataset: { testid: "override-reason" } });
  if (pending) reason.value = pending.reason;
  const form = el("form", { class: "row override", dataset: { testid: "override-form" } }, technician, reason,
    el("button", { type: "submit", dataset: { testid: "override-submit" } }, t("action.override")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const problems = overrideProblems(row, technician.value);
    if (!problems.length) {
      assign(id, technician.value, reason.value);
      return;
    }
    state.pendingOverride = { ticket_id: id, technician_id: technician.value, reason: reason.value, problems };
    renderDetail();
    $("detail").querySelector("[data-testid=override-confirm]")?.focus();
  });
  const box = el("div", { class: "override-box" }, form);
  if (pending) {
    box.append(el("div", { class: "notice warn override-warning", role: "alert", dataset: { testid: "override-warning" } },
      el("strong", {}, t("explain.warn.title", { name: technicianName(pending.technician_id) })),
      el("ul", {}, pending.problems.map((p) => el("li", {}, p))),
      el("p", {}, t("explain.warn.ask")),
      el("div", { class: "row" },
        el("button", { type: "button", class: "danger", dataset: { testid: "override-confirm" },
          onclick: () => {
            const reasonNow = $("detail").querySelector("[data-testid=override-reason]")?.value || pending.reason;
            if (!reasonNow.trim()) return;
            assign(id, pending.technician_id, reasonNow);
          } }, t("explain.warn.confirm")),
        el("button", { type: "button", dataset: { testid: "override-cancel" },
          onclick: () => { state.pendingOverride = null; renderDetail(); } }, t("common.cancel")))));
  }
  return box;
}

// -- customers -------------------------------------------------------------------------------

function setUpCustomers() {
  let timer = null;
  $("customer-search").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => refreshCustomers(true), 250);
  });
}

async function refreshCustomers(searching = false) {
  try {
    const q = $("customer-search").value.trim();
    if (q || searching) {
      const page = await api("/customers", { params: { limit: 200, q } });
      state.customerList = page.items || [];
    } else {
      await loadCustomers();
      state.customerList = [...state.customers.values()];
    }
    renderCustomerList();
    if (state.customerId) await openCustomer(state.customerId, true);
  } catch (error) {
    showError(error);
  }
}

function renderCustomerList() {
  const list = clear($("customer-list"));
  for (const customer of state.customerList || []) {
    list.append(el("li", {
      class: customer.customer_id === state.customerId ? "active" : "",
      dataset: { testid: `customer-${customer.customer_id}` },
      onclick: () => openCustomer(customer.customer_id),
    }, el("strong", {}, customer.name), el("small", {}, ` ${customer.customer_id} · ${(customer.sites || []).length} `,
      t("customers.sites"))));
  }
  if (!list.children.length) list.append(el("li", { class: "empty" }, t("common.empty")));
}

async function openCustomer(id, quiet = false) {
  state.customerId = id;
  for (const li of document.querySelectorAll("#customer-list li")) {
    li.classList.toggle("active", li.dataset.testid === `customer-${id}`);
  }
  // Another customer's page stays no longer than it takes to ask for this one: its links
  // (requests, invoices, renewal) must not be clicked for the customer just picked.
  if ($("customer-detail").dataset.customer !== id) clear($("customer-detail")).dataset.customer = id;
  try {
    const overview = await api(`/customers/${encodeURIComponent(id)}/overview`);
    // each agreement's terms and amendments (the overview has its standing only); one missing
    // leaves its card without terms rather than the page without the customer
    const details = await Promise.all((overview.agreements || []).map((a) =>
      api(`/agreements/${encodeURIComponent(a.agreement_id)}`).catch(() => null)));
    // another customer was picked meanwhile: its answer, not this late one, is drawn
    if (state.customerId !== id) return;
    state.agreementDetails = new Map(details.filter(Boolean).map((d) => [d.agreement_id, d]));
    state.overview = overview;
    renderOverview(state.overview);
  } catch (error) {
    if (!quiet) showError(error, $("customer-detail"));
  }
}

// The overview: the customer, its sites, each agreement with coverage and quota balances;
// links to the customer's requests (the board, filtered) and invoices (billing's list,
// filtered): issue 16, item 8.
function renderOverview(overview) {
  const box = clear($("customer-detail"));
  const customer = overview.customer || overview;
  const id = customer.customer_id;
  box.append(el("div", { class: "card" },
    el("div", { class: "toolbar" },
      el("h2", {}, customer.name || id, el("small", {}, ` ${id || ""}`)),
      el("span", { class: "spacer" }),
      el("button", { type: "button", class: "small", dataset: { testid: "customer-requests" },
        onclick: () => showCustomerRequests(id) }, t("customers.requests")),
      allowed(VIEWS.invoices) ? el("button", { type: "button", class: "small", dataset: { testid: "customer-invoices" },
        onclick: () => showCustomerInvoices(id) }, t("customers.invoices")) : null),
    (customer.contacts || []).length
      ? el("p", {}, `${t("customers.contacts")}: `, customer.contacts.map((c) =>
        [c.name, c.phone, c.role, c.email, c.qq].filter(Boolean).join(" ")).join("；"))
      : null,
    el("h3", {}, t("customers.sites")),
    table(["customers.id", "customers.name", "customers.address", "customers.city"],
      sitesOf(customer).map((s) => [s.site_id, s.name, s.address, s.city]))));
  const agreements = overview.agreements || [];
  for (const agreement of agreements) box.append(renderAgreement(agreement, overview, customer));
  const rest = Object.fromEntries(Object.entries(overview).filter(([k]) =>
    !["customer", "agreements", "customer_id", "name", "contacts", "sites"].includes(k)));
  if (Object.keys(rest).length) box.append(el("div", { class: "card" }, jsonView(rest)));
}

// An agreement's state as the clerk says it: terminated, lapsed (C1/C2: a period ended
// unpaid; `lapsed_on` set, the status still `active`), or in force.
function agreementState(a) {
  if (a.status === "terminated") return "terminated";
  if (a.lapsed_on) return "lapsed";
  return a.status || "active";
}

function renderAgreement(agreement, overview, customer) {
  const a = agreement.agreement || agreement;
  const standing = agreementState(a);
  const sites = new Map(sitesOf(customer || {}).map((s) => [s.site_id, s.name]));
  const card = el("div", { class: `card agreement agreement-${standing}`, dataset: { testid: `agreement-${a.agreement_id}` } },
    el("h3", {}, `${t("customers.agreements")} ${a.agreement_id}`, " ",
      el("span", { class: `badge agreement-${standing}`, dataset: { testid: `agreement-state-${a.agreement_id}`,
        state: standing } }, tv("agreement_status", standing))),
    // rule C2: paying the fee opens coverage again; the clerk's way there is the invoices
    standing === "lapsed" ? el("p", { class: "notice warn renewal", title: "C1 C2",
      dataset: { testid: `renewal-${a.agreement_id}` } },
    t("agreement.lapsed_cue", { day: a.lapsed_on }), " ",
    allowed(["billing"]) ? el("button", { type: "button", class: "small primary",
      dataset: { testid: `renew-${a.agreement_id}` }, onclick: () => showCustomerInvoices(a.customer_id) },
    t("agreement.renew")) : null) : null,
    el("dl", { class: "facts" },
      // the template's id is a code: its name is shown, the id only as a tooltip
      fact("agreement.template", el("span", { title: a.template_id || "" }, a.template_name || a.template_id || "")),
      (a.site_ids || []).length ? fact("agreement.sites", a.site_ids.map((s) => sites.get(s) || s).join("、")) : null,
      fact("agreement.go_live", a.go_live || ""),
      fact("agreement.free_until", a.free_until || ""),
      fact("agreement.covered_until", a.covered_until || ""),
      a.lapsed_on ? fact("agreement.lapsed_on", a.lapsed_on) : null,
      fact("agreement.paid_periods", (a.paid_periods || []).map((p) => (Array.isArray(p) ? p.join(" ~ ")
        : typeof p === "object" ? [p.period_from || p.from, p.period_to || p.to].filter(Boolean).join(" ~ ") || JSON.stringify(p)
          : String(p))).join("；") || t("common.none"))));
  const coverage = agreement.coverage ?? (overview.coverage && overview.coverage[a.agreement_id]);
  if (coverage) {
    card.append(el("h4", {}, t("customers.coverage")),
      typeof coverage === "object" ? coverageView(coverage) : el("p", {}, String(coverage)));
  }
  const detail = state.agreementDetails?.get(a.agreement_id);
  if (detail) card.append(termsView(detail, coverage?.on));
  let quotas = agreement.quotas ?? (overview.quotas && overview.quotas[a.agreement_id]);
  if (quotas && !Array.isArray(quotas)) quotas = Object.entries(quotas).map(([kind, q]) => ({ kind, ...q }));
  if (quotas && quotas.length) {
    card.append(el("h4", {}, t("customers.quotas")),
      table(["quota.kind", "quota.free_total", "quota.reserved", "quota.consumed", "quota.lapsed", "quota.available"],
        quotas.map((q) => [tv("quota", q.kind), q.free_total ?? q.total, q.reserved, q.consumed ?? q.consumed_free,
          q.lapsed, el("strong", {}, String(q.available ?? ""))]), { testid: `quotas-${a.agreement_id}` }));
  }
  const known = ["agreement", "coverage", "quotas", "agreement_id", "status", "template_id", "go_live", "free_until",
    "covered_until", "lapsed_on", "paid_periods", "terms", "version", "customer_id", "template_name", "site_ids",
    "terminated_on"];
  const rest = Object.fromEntries(Object.entries(agreement).filter(([k]) => !known.includes(k)));
  if (Object.keys(rest).length) card.append(jsonView(rest));
  return card;
}

// A rule id in words; the id itself only as the tooltip (issue 16: no codes on the screen).
function clauseWords(clause) {
  return el("span", { class: "clause", title: clause, dataset: { clause } }, tv("clause", clause));
}

// rule D1/C9/C14-C16/C20/D2: the service levels as one sentence ("本地4小时内到场，外地2天内，…").
function slaSentence(sla, onsite = {}) {
  if (!sla) return t("sla.s.none");
  const hours = sla.arrive_within_hours;
  const days = sla.arrive_within_days;
  const open = [].concat(sla.service_hours || []);
  const served = sla.service_days || [];
  const parts = [
    sla.respond_within_hours ? t("sla.s.respond", { n: sla.respond_within_hours }) : null,
    hours && days ? t("sla.s.arrive_both", { h: hours, d: days })
      : hours ? t("sla.s.arrive_hours", { h: hours }) : days ? t("sla.s.arrive_days", { d: days }) : null,
    // C14: the terms set on-site days by the customer's phase
    onsite.parallel_run_days || onsite.cutover_days ? t("sla.s.phases", { parallel: onsite.parallel_run_days ?? "—",
      cutover: onsite.cutover_days ?? "—" }) : null,
    sla.resolve_within_hours ? t("sla.s.resolve", { n: sla.resolve_within_hours }) : null,
    open.length === 2 ? `${served.length && served.length < 7
      ? t("sla.s.days", { days: served.map((d) => t(`weekday.${d}`)).join(t("sla.s.sep")) })
      : t("sla.s.every_day")} ${t("sla.s.hours", { from: open[0], to: open[1] })}` : null,
    sla.calendar ? t(`sla.s.calendar.${sla.calendar}`) : null,
    sla.phone_support_24h ? t("sla.s.phone_24h") : null,
  ].filter(Boolean);
  return parts.length ? parts.join(t("sla.s.sep")) + t("sla.s.end") : t("sla.s.none");
}

// The agreement's on-site terms in force today (the last amendment effective by then, else
// the terms as signed: D1, C9, C14-C16, C20, D2) as a sentence, and every amendment with
// its day and reason (an amendment is a new event, never an edit of the signed terms).
function termsView(agreement, today) {
  const day = today || new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai" }).format(new Date());
  const amendments = agreement.amendments || [];
  const inForce = amendments.filter((x) => x.effective_on <= day).at(-1)?.terms || agreement.terms || {};
  const onsite = inForce.onsite || {};
  const sentence = slaSentence({
    respond_within_hours: onsite.respond_hours, arrive_within_hours: onsite.local_hours,
    arrive_within_days: onsite.out_of_town_days, resolve_within_hours: onsite.resolve_hours,
    calendar: onsite.calendar, service_hours: onsite.service_hours, service_days: onsite.service_days,
    phone_support_24h: onsite.phone_support_24h,
  }, onsite);
  return el("div", { class: "terms", dataset: { testid: `terms-${agreement.agreement_id}` } },
    el("h4", {}, t("agreement.terms")),
    el("p", {}, sentence),
    amendments.length ? el("div", { dataset: { testid: `amendments-${agreement.agreement_id}` } },
      el("h4", {}, t("agreement.amendments")),
      el("ul", {}, amendments.map((x) => el("li", {}, t("agreement.amended", { day: x.effective_on, reason: x.reason })))))
      : null);
}

function coverageView(coverage) {
  const verdict = coverage.verdict || coverage.status;
  const sla = coverage.sla;
  const known = ["verdict", "status", "clauses", "reason", "sla", "on", "period", "charges", "penalty_applies"];
  const rest = Object.fromEntries(Object.entries(coverage).filter(([k]) => !known.includes(k)));
  return el("div", { class: "coverage", dataset: { testid: "coverage" } },
    el("p", { dataset: { testid: "coverage-verdict" } }, t("customers.today"),
      verdict ? el("span", { class: `badge verdict-${verdict}`, dataset: { verdict } }, tv("verdict", verdict)) : null, " ",
      coverage.period ? el("span", { class: "badge" }, tv("period", coverage.period)) : null,
      coverage.on ? el("span", { class: "muted" }, t("customers.as_of", { day: coverage.on })) : null),
    (coverage.clauses || []).length ? el("p", { class: "clauses", dataset: { testid: "coverage-clauses" } },
      t("customers.basis"), coverage.clauses.map(clauseWords)) : null,
    // the verdict's reason is English prose: on the English screen only
    coverage.reason && lang() === "en" ? el("p", { class: "muted" }, coverage.reason) : null,
    verdict === "excluded" ? null : el("p", { dataset: { testid: "coverage-sla" } },
      `${t("customers.sla")}: ${slaSentence(sla)}`,
      (sla?.clauses || []).length ? el("small", {}, " ", sla.clauses.map(clauseWords)) : null),
    (coverage.charges || []).length ? el("p", {}, `${t("customers.charges")}: `,
      coverage.charges.map((c) => tv("charge", c)).join("、")) : null,
    Object.keys(rest).length ? jsonView(rest) : null);
}

// The customer's requests: the board, filtered to it (GET /tickets?customer_id=).
function showCustomerRequests(id) {
  state.boardCustomer = id;
  show("board");
}

// The customer's invoices: billing's list, filtered to it (GET /invoices?customer_id=);
// the period is cleared, so every period's invoices (a renewal's fee among them) show.
function showCustomerInvoices(id) {
  state.invoiceCustomer = id;
  const form = $("invoice-filter");
  form.elements.period.value = "";
  form.elements.status.value = "";
  show("invoices");
}

// -- invoices ----------------------------------------------------------------------------------

function setUpInvoices() {
  const form = $("invoice-filter");
  form.elements.status.append(...options("invoice_status", words("invoice_status"), { blank: "invoices.all" })
    .filter(Boolean));
  form.addEventListener("change", () => refreshInvoices());
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    refreshInvoices();
  });
}

function exportLinks(params, prefix) {
  const problem = el("span", { class: "export-error", dataset: { testid: `${prefix}-error` } });
  return el("span", { class: "export-links" }, el("span", { class: "muted" }, `${t("invoices.export")}: `),
    ["csv", "xlsx", "json"].map((format) => el("a", {
      class: "button small", title: t("invoices.export_note"), href: `${BASE}/exports/invoice-lines${query({ format, ...params })}`, download: "",
      dataset: { testid: `${prefix}-${format}` },
      onclick: (event) => exportChecked(event, params, problem),
    }, format.toUpperCase())), problem);
}

// A refused filter answers {"error": ...} as JSON, which a followed download link would
// save as the file. So the export is asked first, and its answer dropped once the headers
// say yes (asked as JSON: its headers come after billing's first page, XLSX's only after
// the whole file; the filters are the same); then the link is followed and the browser
// downloads by the sign-in cookie. Refused: the gateway's message beside the buttons.
async function exportChecked(event, params, problem) {
  const link = event.currentTarget;
  if (link.dataset.checked) {
    delete link.dataset.checked; // the checked click: the browser downloads
    return;
  }
  event.preventDefault();
  if (link.classList.contains("busy")) return;
  link.classList.add("busy");
  clear(problem);
  try {
    await probe("/exports/invoice-lines", { params: { ...params, format: "json" } });
    link.dataset.checked = "yes";
    link.click();
  } catch (error) {
    problem.append(errorBox(error));
  } finally {
    link.classList.remove("busy");
  }
}

async function refreshInvoices() {
  try {
    await loadCustomers().catch(() => undefined);
    if (state.invoiceCustomer) {
      // asked from the customer page: its options are there once the customers are loaded
      $("invoice-filter").elements.customer_id.value = state.invoiceCustomer;
      state.invoiceCustomer = null;
    }
    const filters = Object.fromEntries(new FormData($("invoice-filter")));
    // The export buttons follow the filter even when the list refuses it (they say why).
    const exportParams = { customer_id: filters.customer_id, period_from: filters.period, period_to: filters.period };
    clear($("list-exports")).append(exportLinks(exportParams, "export-list"));
    const page = await api("/invoices", { params: { limit: 200, ...filters } });
    state.invoices = page.items || [];
    renderInvoiceList();
    if (state.invoice) await openInvoice(state.invoice.invoice_id, true);
  } catch (error) {
    showError(error);
  }
}

function renderInvoiceList() {
  const list = clear($("invoice-list"));
  for (const invoice of state.invoices) {
    list.append(el("li", {
      class: invoice.invoice_id === state.invoice?.invoice_id ? "active" : "",
      dataset: { testid: `invoice-${invoice.invoice_id}` },
      onclick: () => openInvoice(invoice.invoice_id),
    },
    el("strong", {}, invoice.number || invoice.invoice_id),
    el("span", { class: `badge invoice-${invoice.status}` }, tv("invoice_status", invoice.status)),
    el("small", {}, ` ${invoice.customer_name || customerName(invoice.customer_id)} · ${invoice.period || ""} · `,
      fmtMoney(invoice.totals?.gross ?? invoice.gross ?? ""))));
  }
  if (!list.children.length) list.append(el("li", { class: "empty" }, t("common.empty")));
}

async function openInvoice(id, quiet = false) {
  try {
    const invoice = await api(`/invoices/${encodeURIComponent(id)}`);
    // Its credit notes: GET /invoices/{id} answers none (the view has totals, outstanding and
    // actions only), so they come from billing's export of the invoice's lines, which holds
    // an issued invoice's credit-note rows (a draft has none: it is corrected by removal).
    state.invoiceCredits = invoice.number ? await creditNotesOf(id) : { notes: [] };
    state.invoice = invoice;
    renderInvoice(state.invoice);
    for (const li of document.querySelectorAll("#invoice-list li")) {
      li.classList.toggle("active", li.dataset.testid === `invoice-${id}`);
    }
  } catch (error) {
    if (!quiet) showError(error, $("invoice-detail"));
  }
}

// An invoice's credit notes as billing exports them: the rows with a credit_id, grouped by
// it in billing's order. A refused export is kept and shown in the credit notes' place
// (the invoice itself still shows: it came from its own query).
async function creditNotesOf(id) {
  try {
    const rows = await api("/exports/invoice-lines", { params: { invoice_id: id, format: "json" } });
    const notes = new Map();
    for (const row of rows || []) {
      if (!row.credit_id) continue;
      if (!notes.has(row.credit_id)) notes.set(row.credit_id, { credit_id: row.credit_id, on: row.issued_on, rows: [] });
      notes.get(row.credit_id).rows.push(row);
    }
    return { notes: [...notes.values()] };
  } catch (error) {
    return { notes: [], error };
  }
}

// What an invoice allows next comes with it (`actions`, billing's state table): no
// button billing would refuse (B8: an issued invoice never changes).
function offers(invoice, action) {
  return (invoice.actions || []).includes(action);
}

// Money as decimal text, exact to the fen (B8): sums of the export's two-decimal amounts
// are done in fen, as integers, never in floating yuan.
function fen(text) {
  const match = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(String(text ?? "").trim());
  if (!match) return 0;
  const value = Number(match[2]) * 100 + Number((match[3] || "0").padEnd(2, "0"));
  return match[1] ? -value : value;
}

function yuan(cents) {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

// The customer by name only (issue 16: no codes on the screen); its id stays the tooltip.
function invoiceCustomer(invoice) {
  const listed = state.invoices.find((i) => i.invoice_id === invoice.invoice_id)?.customer_name;
  const name = listed && listed !== invoice.customer_id ? listed : customerName(invoice.customer_id);
  return el("span", { title: invoice.customer_id, dataset: { testid: "invoice-customer-name" } }, name);
}

function renderInvoice(invoice) {
  const box = clear($("invoice-detail"));
  const id = invoice.invoice_id;
  const totals = invoice.totals || {};
  const credits = state.invoiceCredits || { notes: [] };
  const credited = new Set(credits.notes.flatMap((note) => note.rows.map((row) => row.item_id)));
  const creditedFen = -credits.notes.reduce((sum, note) => sum + note.rows.reduce((s, r) => s + fen(r.gross), 0), 0);
  const clerk = allowed(["billing"]);
  const crediting = offers(invoice, "credit") && clerk;
  const card = el("div", { class: "card invoice", dataset: { testid: "invoice" } },
    el("div", { class: "toolbar" },
      el("h2", {}, invoice.number || id, " ", el("span", { class: `badge invoice-${invoice.status}` },
        tv("invoice_status", invoice.status))),
      el("span", { class: "spacer" }),
      offers(invoice, "issue") && clerk
        ? el("button", { type: "button", class: "primary", dataset: { testid: "issue-invoice" },
          onclick: () => issueInvoice(id) }, t("invoices.issue"))
        : null,
      el("a", { class: "button", href: `${BASE}/invoices/${encodeURIComponent(id)}/page`, target: "_blank",
        rel: "noopener", dataset: { testid: "invoice-page" } }, t("invoices.page")),
      exportLinks({ invoice_id: id }, "export")),
    el("dl", { class: "facts" },
      fact("invoices.customer", invoiceCustomer(invoice)),
      fact("invoices.period", invoice.period || ""),
      invoice.issued_on ? fact("invoices.issued_on", invoice.issued_on) : null,
      fact("invoices.net", fmtMoney(totals.net)),
      fact("invoices.vat", fmtMoney(totals.vat)),
      fact("invoices.gross", fmtMoney(totals.gross)),
      creditedFen ? fact("invoices.credited", el("span", { dataset: { testid: "invoice-credited" } },
        fmtMoney(yuan(creditedFen)))) : null,
      // Paid is what the gross leaves after credit notes and the outstanding (billing's own
      // figure): the invoice's answer lists no payments, so their sum is the most it tells.
      invoice.number && invoice.outstanding !== undefined && !credits.error
        ? fact("invoices.paid", el("span", { dataset: { testid: "invoice-paid" } },
          fmtMoney(yuan(fen(totals.gross) - creditedFen - fen(invoice.outstanding))))) : null,
      invoice.outstanding !== undefined ? fact("invoices.outstanding", el("span",
        { dataset: { testid: "invoice-outstanding" } }, fmtMoney(invoice.outstanding))) : null));
  const body = el("tbody");
  for (const line of invoice.lines || []) {
    const explainRow = el("tr", { class: "provenance", hidden: true },
      el("td", { colspan: crediting ? 10 : 9, dataset: { testid: `provenance-${line.item_id}` } }));
    const done = credited.has(line.item_id);
    body.append(el("tr", { class: done ? "credited" : "", dataset: { testid: `line-${line.item_id}` } },
      crediting ? el("td", {}, done ? null : el("input", { type: "checkbox", name: "credit_line", value: line.item_id,
        "aria-label": t("invoices.credit_pick"), dataset: { testid: `credit-pick-${line.item_id}` } })) : null,
      // the item id only as the tooltip (issue 16: no ids as text)
      el("td", { title: line.item_id }, line.description,
        done ? el("span", { class: "badge credited", dataset: { testid: `credited-${line.item_id}` } },
          t("invoices.line_credited")) : null),
      el("td", { title: line.kind }, tv("line_kind", line.kind)),
      el("td", { class: "num" }, `${line.quantity ?? ""} ${line.unit ?? ""}`),
      el("td", { class: "num" }, fmtUnitPrice(line.unit_price)),
      el("td", { class: "num" }, fmtMoney(line.amount)),
      el("td", { class: "num" }, percent(line.vat_rate)),
      el("td", { class: "clauses" }, (line.clauses || []).map(clauseWords)),
      el("td", {}, `${(line.sources || []).length}`),
      el("td", {}, el("button", { type: "button", class: "small", dataset: { testid: `explain-${line.item_id}` },
        onclick: () => explainLine(id, line.item_id, explainRow) }, t("invoices.provenance")),
        offers(invoice, "price_line") && clerk && negotiable(line)
          ? el("button", { type: "button", class: "small", dataset: { testid: `price-${line.item_id}` },
            title: t("invoices.set_price_note"), onclick: () => priceLine(id, line) }, t("invoices.set_price"))
          : null)),
    explainRow);
  }
  const heads = ["invoices.description", "invoices.kind", "invoices.quantity", "invoices.unit_price",
    "invoices.amount", "invoices.vat_rate", "invoices.clauses", "invoices.sources", "invoices.provenance"];
  card.append(el("h3", {}, t("invoices.lines")), el("table", { class: "grid lines", dataset: { testid: "invoice-lines" } },
    el("thead", {}, el("tr", {}, crediting ? el("th", {}, t("invoices.credit_col")) : null,
      heads.map((k) => el("th", {}, t(k))))), body));
  if ((totals.by_rate || []).length) {
    card.append(table(["invoices.vat_rate", "invoices.net", "invoices.vat", "invoices.gross"],
      totals.by_rate.map((r) => [percent(r.rate), fmtMoney(r.net), fmtMoney(r.vat),
        fmtMoney(r.gross)])));
  }
  if (offers(invoice, "pay") && clerk) card.append(paymentForm(invoice));
  if (crediting) card.append(creditForm(invoice, body));
  if (invoice.number) card.append(creditNotesBlock(invoice, credits));
  box.append(card);
}

// rule B8: a payment settles what is outstanding; billing refuses zero, overpayment, a
// draft. The amount is typed as yuan with exactly two decimals (the fen, never a float).
// The reference, when typed (the bank slip's number), is the payment's id: billing records
// the same id once, so a slip entered twice is one payment; without it, a fresh id.
function paymentForm(invoice) {
  const today = new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" }); // YYYY-MM-DD, Beijing
  const form = el("form", { class: "invoice-action", dataset: { testid: "payment-form" } },
    el("h3", {}, t("invoices.pay_title")),
    el("label", {}, el("span", {}, t("invoices.pay_amount")),
      el("input", { name: "amount", required: true, inputmode: "decimal", pattern: "\\d{1,12}\\.\\d{2}",
        placeholder: "0.00", title: t("invoices.pay_amount_note"), dataset: { testid: "payment-amount" } })),
    el("label", {}, el("span", {}, t("invoices.pay_on")),
      el("input", { name: "paid_on", type: "date", value: today, required: true, dataset: { testid: "payment-date" } })),
    el("label", {}, el("span", {}, t("invoices.pay_reference")),
      el("input", { name: "reference", maxlength: 100, pattern: "[A-Za-z0-9_.:\\-]+",
        title: t("invoices.pay_reference_note"), dataset: { testid: "payment-reference" } })),
    el("button", { type: "submit", class: "primary", dataset: { testid: "payment-submit" } }, t("invoices.pay")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const body = { payment_id: data.reference.trim() || `PAY-${newKey()}`, amount: data.amount.trim(),
      paid_on: data.paid_on || undefined };
    const paid = await command(`/invoices/${encodeURIComponent(invoice.invoice_id)}/payments`, body);
    if (paid) {
      notice(t("invoices.paid_notice", { amount: fmtMoney(body.amount) }));
      await openInvoice(invoice.invoice_id);
    }
  });
  return form;
}

// rule B8: the correction of an issued invoice is a credit note, never an edit. The clerk
// credits the whole invoice (every line not yet credited: billing's `lines` empty) or the
// lines ticked in the table, and says why.
function creditForm(invoice, lines) {
  const form = el("form", { class: "invoice-action", dataset: { testid: "credit-form" } },
    el("h3", {}, t("invoices.credit_title")),
    el("label", { class: "inline" }, el("input", { type: "radio", name: "scope", value: "all", checked: true,
      dataset: { testid: "credit-all" } }), t("invoices.credit_all")),
    el("label", { class: "inline" }, el("input", { type: "radio", name: "scope", value: "lines",
      dataset: { testid: "credit-lines" } }), t("invoices.credit_some")),
    el("label", {}, el("span", {}, t("invoices.credit_reason")),
      el("textarea", { name: "reason", required: true, maxlength: 2000, rows: 2, dataset: { testid: "credit-reason" } })),
    el("button", { type: "submit", class: "danger", dataset: { testid: "credit-submit" } }, t("invoices.credit")));
  // ticking a line means "these lines"
  lines.addEventListener("change", (event) => {
    if (event.target.name === "credit_line" && event.target.checked) form.elements.scope.value = "lines";
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const whole = form.elements.scope.value === "all";
    const picked = [...lines.querySelectorAll("input[name=credit_line]:checked")].map((box) => box.value);
    // "some lines" with none ticked is sent as such: billing's refusal says to pick lines
    // (an empty list would mean the whole invoice).
    const body = { lines: whole ? [] : picked, reason: form.elements.reason.value.trim() };
    if (!whole && !picked.length) {
      showError({ code: "missing", field: "lines", reason: "invoice.credit_lines_missing" });
      return;
    }
    const done = await command(`/invoices/${encodeURIComponent(invoice.invoice_id)}/credit-notes`, body);
    if (done) {
      notice(t("invoices.credited_notice"));
      await openInvoice(invoice.invoice_id);
    }
  });
  return form;
}

// The invoice's credit notes (红字发票), each with its id, date and negative lines.
function creditNotesBlock(invoice, credits) {
  const block = el("div", { class: "credit-notes", dataset: { testid: "credit-notes" } },
    el("h3", {}, t("invoices.credit_notes")));
  if (credits.error) block.append(errorBox(credits.error));
  else if (!credits.notes.length) block.append(el("p", { class: "muted" }, t("invoices.no_credit_notes")));
  for (const note of credits.notes) {
    const gross = note.rows.reduce((sum, row) => sum + fen(row.gross), 0);
    block.append(el("div", { class: "credit-note", dataset: { testid: `credit-note-${note.credit_id}` } },
      el("p", {}, el("strong", {}, note.credit_id), ` · ${note.on || ""} · ${t("invoices.gross")} `, fmtMoney(yuan(gross))),
      table(["invoices.description", "invoices.kind", "invoices.quantity", "invoices.net", "invoices.vat",
        "invoices.gross"], note.rows.map((row) => [row.description, tv("line_kind", row.kind),
        `${row.quantity} ${row.unit || ""}`, fmtMoney(row.net), fmtMoney(row.vat), fmtMoney(row.gross)]))));
  }
  return block;
}

// Issue: the invoice gets its gap-free number and is frozen (B8); only issued invoices export.
async function issueInvoice(id) {
  const issued = await command(`/invoices/${encodeURIComponent(id)}/issue`, {});
  if (issued) {
    await openInvoice(id);
    // by the number it now has (issued: B8), the one the customer will quote
    notice(t("invoices.issued", { id: state.invoice?.invoice_id === id && state.invoice.number ? state.invoice.number : id }));
  }
}

// C10 [4]: a line billed without a known rate (RATE_TO_BE_AGREED, at 0.00) gets the price
// negotiated with the customer, on the draft only (B8); a price agreed before may be set again.
const NEGOTIABLE = ["RATE_TO_BE_AGREED", "RATE_AGREED"];
const negotiable = (line) => (line.clauses || []).some((clause) => NEGOTIABLE.includes(clause));

// A unit price is exact and may hold more places than the fen (333.335): shown as stored then.
function fmtUnitPrice(value) {
  const fraction = String(value ?? "").split(".")[1] || "";
  return fraction.replace(/0+$/, "").length > 2 ? `¥${value}` : fmtMoney(value);
}

async function priceLine(invoiceId, line) {
  const current = Number(line.unit_price) ? String(line.unit_price) : "";
  const unitPrice = window.prompt(t("invoices.price_prompt", {
    description: line.description, quantity: line.quantity ?? "", unit: line.unit ?? "",
  }), current);
  if (unitPrice === null || !unitPrice.trim()) return;
  const reason = window.prompt(t("invoices.price_reason"), "");
  if (reason === null) return;
  const path = `/invoices/${encodeURIComponent(invoiceId)}/lines/${encodeURIComponent(line.item_id)}/price`;
  const priced = await command(path, { unit_price: unitPrice.trim(), reason: reason.trim() });
  if (priced) {
    notice(t("invoices.priced", { item: line.description || line.item_id, price: unitPrice.trim() }));
    await openInvoice(invoiceId);
  }
}

async function explainLine(invoiceId, itemId, row) {
  if (!row.hidden) {
    row.hidden = true;
    return;
  }
  const cell = clear(row.firstChild);
  row.hidden = false;
  try {
    const why = await api(`/invoices/${encodeURIComponent(invoiceId)}/lines/${encodeURIComponent(itemId)}/explanation`);
    cell.append(explanationOfLine(why));
    if (why.pricing) {
      cell.append(el("p", { dataset: { testid: "line-pricing" } }, t("invoices.priced_by", {
        price: why.pricing.unit_price, amount: fmtMoney(why.pricing.amount), by: why.pricing.by,
        on: why.pricing.on, reason: why.pricing.reason,
      })));
    }
  } catch (error) {
    cell.append(errorBox(error));
  }
}

start().catch((error) => showError(error));
