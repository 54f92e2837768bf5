// The technician's phone page: today's visits; accept, check in and out with the
// browser's position (D5), work time and expenses (D6), completion. It works offline:
// every action gets its idempotency key once, when the technician taps, and waits in a
// queue in localStorage until it uploads; a retry reuses the key (also sent as the
// Idempotency-Key header), so an upload that was cut off has exactly one effect.
// device_time is the tap's time by the server's clock (D5, `deviceTime` below), with
// this phone's UTC offset; taken at the tap, never when the queue uploads.

import {
  api, clear, el, errorBox, errorText, isoWithOffset, live, localInputToIso, localInputValue, newKey, notice,
  onServerTime, onUnauthenticated, requireUser, showError, userBadge, vocabulary,
} from "./api.js";
import { apply, fmtMinutes, fmtMoney, fmtTime, langButton, t, tv, ZONE } from "./i18n.js";
import { tickCountdowns } from "./views.js";

const QUEUE = "weibao.m.queue";
const REJECTED = "weibao.m.rejected";
const VISITS = "weibao.m.visits";
// The last answer of each visit's record (its work and expenses), kept so that what was
// already logged still shows offline: { ticket_id: { at, work, expenses } }.
const LOGGED = "weibao.m.logged";
// Work and expenses uploaded but not yet in that copy (the network may go before the
// record is asked again): shown as stored until the record has their keys.
const UPLOADED = "weibao.m.uploaded";
const RETRY_MS = 15000;
const SYNC = "weibao.m.clock";
// A sync putting the server's time this much earlier than the best one means the
// server's clock was set back (a slow answer only makes it a little earlier).
const SET_BACK_MS = 30000;

// What the phone offers is what dispatch answers with each visit (`actions`, its state
// machine), as the console does. An action waiting in the queue is shown as done before
// the server confirms it: the status it leads to, the actions it ends and those it opens
// (the server's answer replaces this guess once the queue uploads).
const AFTER = {
  acceptance: { status: "accepted", ends: ["accept"] },
  "check-in": { status: "on_site", ends: ["accept", "decline"], opens: ["complete"] },
  "check-out": { status: "checked_out", opens: ["complete"] },
  completion: { status: "completed", ends: ["accept", "decline", "complete"] },
};

const state = { user: null, visits: [], fetchedAt: null, flushing: null, open: new Set(), deferred: false,
  vocabulary: {}, logged: {} };
const $ = (id) => document.getElementById(id);

function load(name, fallback) {
  try {
    return JSON.parse(localStorage.getItem(name) || "null") ?? fallback;
  } catch {
    return fallback;
  }
}

function save(name, value) {
  localStorage.setItem(name, JSON.stringify(value));
}

const queue = () => load(QUEUE, []);
const rejected = () => load(REJECTED, []);
const uploadedItems = () => load(UPLOADED, []);

// -- the phone's clock (rule D5) ------------------------------------------------------------
// When the technician acted, by the server's clock: its time at the last sync (any API
// answer's Weibao-Server-Time header) plus the time elapsed since by the monotonic clock
// (performance.now()), which setting the phone's clock does not move. A sleeping phone's
// monotonic clock may stand still, so the wall clock's elapsed time since the sync counts
// when it is longer: setting the clock back cannot make an action earlier, setting it
// forward only later (and the server flags a time in the future). After a reload there is
// no monotonic reading from before it: the wall clock's time since the sync kept in
// localStorage, never less than none. Never synced: the phone's own clock (the server
// judges a time out of bounds by its own).
const clock = { offset: null }; // this page's: server time minus performance.now()

function synced(server, monotonic, wall) {
  // Each answer's time is stamped as it leaves the server, so it arrives a little late:
  // of this page's answers, the one that puts the server's time latest is the closest,
  // unless the server's clock was set back.
  const offset = server - monotonic;
  if (clock.offset === null || offset > clock.offset || offset < clock.offset - SET_BACK_MS) clock.offset = offset;
  save(SYNC, { server, wall });
}

function deviceTime() {
  const kept = load(SYNC, null);
  const readings = [];
  if (clock.offset !== null) readings.push(performance.now() + clock.offset);
  if (kept && Number.isFinite(kept.server) && Number.isFinite(kept.wall)) {
    readings.push(kept.server + Math.max(0, Date.now() - kept.wall));
  }
  return isoWithOffset(new Date(readings.length ? Math.max(...readings) : Date.now()));
}

onServerTime(synced);

// -- start -------------------------------------------------------------------------------

async function start() {
  apply();
  $("header-tools").append(langButton());
  if ("serviceWorker" in navigator) {
    // served from /m/ so that its scope covers this page (see weibao.gateway.app)
    navigator.serviceWorker.register("/m/sw.js", { scope: "/m/" }).catch((error) => console.warn("no offline shell", error));
  }
  const cached = load(VISITS, null);
  if (cached) {
    state.visits = cached.items || [];
    state.fetchedAt = cached.at;
  }
  state.logged = load(LOGGED, {});
  state.user = await requireUser(["technician"]);
  state.vocabulary = await vocabulary(); // the selects' values: the API's own lists (kept for offline)
  $("header-tools").append(userBadge(state.user));
  onUnauthenticated(() => flush());
  window.addEventListener("online", () => { network(); flush(); });
  window.addEventListener("offline", network);
  window.addEventListener("weibao:lang", render);
  $("sync").addEventListener("click", () => flush());
  $("refresh").addEventListener("click", () => refreshVisits());
  $("visits").addEventListener("focusout", () => setTimeout(() => {
    if (state.deferred) render();
  }, 0));
  network();
  render();
  await refreshVisits();
  flush();
  setInterval(flush, RETRY_MS);
  setInterval(tickCountdowns, 1000);
  live({ refresh: refreshVisits, onState: () => undefined });
}

function network() {
  const badge = $("net");
  const online = navigator.onLine;
  badge.className = `live ${online ? "on" : "off"}`;
  badge.textContent = online ? t("mobile.online") : t("mobile.offline");
}

async function refreshVisits() {
  try {
    const page = await api("/me/visits", { params: { limit: 200 } });
    state.visits = page.items || [];
    state.fetchedAt = new Date().toISOString();
    save(VISITS, { at: state.fetchedAt, items: state.visits });
    // Not awaited: the list is drawn now, and again when the records come in.
    refreshLogged(state.visits);
  } catch (error) {
    if (error.status !== 0 && error.status !== 401) showError(error);
  }
  render();
}

// -- what is already logged on each visit (issue 16, item 9) -------------------------------
// The list of visits carries no work or expenses, so a technician who logged two periods
// could not see them on the phone and might log them again. Each visit's own record
// (GET /tickets/{id}, which a technician may read for their own visits) has them; it is
// asked for every visit at once whenever the list is loaded, which is also after an
// upload (flush) and on the live updates (live → refreshVisits).
async function refreshLogged(visits) {
  const answers = await Promise.all(visits.map(async ({ ticket_id: id }) => {
    try {
      const ticket = await api(`/tickets/${encodeURIComponent(id)}`);
      return [id, { at: ticket.at, work: ticket.work || [], expenses: ticket.expenses || [] }];
    } catch (error) {
      // Offline or no longer this technician's: the copy kept so far stands (or goes
      // with the visit when the list no longer has it).
      if (error.status !== 0) console.warn("visit record", id, error);
      return [id, null];
    }
  }));
  // Two refreshes can overlap (the live updates ask twice): an older answer arriving
  // last must not replace a newer one. Kept only for the visits listed now.
  const kept = {};
  for (const { ticket_id: id } of state.visits) if (state.logged[id]) kept[id] = state.logged[id];
  for (const [id, answer] of answers) {
    if (!answer || !state.visits.some((visit) => visit.ticket_id === id)) continue;
    if (kept[id] && Date.parse(kept[id].at) > Date.parse(answer.at)) continue;
    kept[id] = answer;
  }
  // Redrawn only when something changed: the live updates ask twice for every change,
  // and a redraw resets a form that is being filled in but has no focus at that moment.
  // (`at`, the instant of each answer, changes every time and is shown only offline.)
  const entries = (records) => JSON.stringify(Object.entries(records).map(([id, r]) => [id, r.work, r.expenses]));
  const changed = entries(kept) !== entries(state.logged);
  state.logged = kept;
  save(LOGGED, kept);
  const recorded = new Set(Object.values(kept).flatMap((record) => [...record.work, ...record.expenses])
    .map((entry) => entry.key));
  save(UPLOADED, uploadedItems().filter((item) => !recorded.has(item.key)
    && state.visits.some((visit) => visit.ticket_id === item.ticket_id)));
  if (changed) render();
}

// -- the queue ---------------------------------------------------------------------------

function enqueue(action, ticketId, body) {
  const item = { key: body?.key || newKey(), action, ticket_id: ticketId, body,
    queued_at: body?.device_time || deviceTime(), attempts: 0, last_error: null };
  save(QUEUE, [...queue(), item]);
  notice(`${tv("action", action)} · ${t("mobile.queued")}`);
  render();
  flush();
}

function forget(key) {
  save(QUEUE, queue().filter((item) => item.key !== key));
}

// A refusal as kept in the queue (localStorage): everything the page needs to say it in
// the technician's language later (issue 16), not only the English message.
function refusalOf(error) {
  return { code: error.code, field: error.field, message: error.message, reason: error.reason || "",
    values: error.values || {} };
}

// Upload what waits, oldest first. Offline or a failing service: stop and try later with
// the same keys. A refusal (4xx): set aside with the gateway's error, shown to the
// technician, so it does not block what follows.
async function flush() {
  if (state.flushing) return state.flushing;
  state.flushing = (async () => {
    let uploaded = 0;
    for (const item of queue()) {
      try {
        const answer = await api(`/tickets/${encodeURIComponent(item.ticket_id)}/${item.action}`,
          { method: "POST", body: item.body, key: item.key });
        forget(item.key);
        uploaded += 1;
        // stored now, though the copy of the visit's record does not have it yet: the fold
        // shows it as stored until the record's next answer does (no gap, never twice)
        if (item.action === "work" || item.action === "expenses") save(UPLOADED, [...uploadedItems(), item]);
        report(item, answer);
      } catch (error) {
        if (error.retryable || error.status === 401) {
          save(QUEUE, queue().map((q) => (q.key === item.key
            ? { ...q, attempts: q.attempts + 1, last_error: refusalOf(error) }
            : q)));
          break;
        }
        forget(item.key);
        save(REJECTED, [...rejected(), { ...item, error: { ...refusalOf(error), problems: error.problems } }]);
      }
    }
    render();
    if (uploaded) await refreshVisits();
  })();
  try {
    await state.flushing;
  } finally {
    state.flushing = null;
  }
  return undefined;
}

function report(item, answer) {
  const checkedIn = (answer?.events || []).find((e) => e.type === "private.CheckedIn");
  if (checkedIn) {
    const metres = Math.round(checkedIn.data.distance_m);
    notice(checkedIn.data.within_geofence ? t("mobile.within_geofence", { m: metres })
      : t("mobile.outside_geofence", { m: metres }), checkedIn.data.within_geofence ? "info" : "warn");
  } else {
    notice(`${tv("action", item.action)} · ${t("mobile.uploaded")}`);
  }
}

// -- taps --------------------------------------------------------------------------------

function position() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject(new Error("geolocation unavailable (the page needs HTTPS or localhost)"));
      return;
    }
    navigator.geolocation.getCurrentPosition(resolve, reject,
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 30000 });
  });
}

// Check-in and check-out: the key and time are the tap's; the position follows.
async function presence(action, ticketId, button) {
  const key = newKey();
  const tapped = deviceTime();
  button.disabled = true;
  const status = el("span", { class: "muted" }, t("mobile.locating"));
  button.after(status);
  try {
    const fix = await position();
    enqueue(action, ticketId, {
      key, device_time: tapped,
      position: { latitude: fix.coords.latitude, longitude: fix.coords.longitude },
      accuracy_m: Math.min(Math.round((fix.coords.accuracy ?? 0) * 10) / 10, 100000),
    });
  } catch (error) {
    // The browser's own reason is English: shown on the English page, a tooltip on the Chinese one.
    showError({ code: "no_position", field: "position", message: error.message });
  } finally {
    button.disabled = false;
    status.remove();
  }
}

function accept(ticketId) {
  enqueue("acceptance", ticketId, { device_time: deviceTime() });
}

function complete(ticketId, form) {
  const resolution = form.elements.resolution.value.trim();
  if (!resolution) return;
  enqueue("completion", ticketId, { resolution, device_time: deviceTime() });
}

function work(ticketId, form) {
  const key = newKey();
  const tapped = deviceTime();
  const data = new FormData(form);
  enqueue("work", ticketId, { key, device_time: tapped, kind: data.get("kind"),
    started: localInputToIso(data.get("started")), ended: localInputToIso(data.get("ended")) });
  state.open.delete(`work-${ticketId}`);
  form.closest("details").open = false;
}

function expense(ticketId, form) {
  const key = newKey();
  const tapped = deviceTime();
  const data = new FormData(form);
  const body = { key, device_time: tapped, kind: data.get("kind"), amount: String(data.get("amount")).trim(),
    receipt_no: String(data.get("receipt_no") || "").trim(), receipt_date: String(data.get("receipt_date") || ""),
    note: String(data.get("note") || "").trim() };
  if (body.kind === "lodging") body.nights = Number(data.get("nights") || 1);
  enqueue("expenses", ticketId, body);
  form.reset();
  state.open.delete(`expense-${ticketId}`);
  form.closest("details").open = false;
}

// -- drawing -----------------------------------------------------------------------------

function render() {
  renderQueue();
  renderVisits();
  apply();
}

function renderQueue() {
  const waiting = queue();
  const refused = rejected();
  $("queue-count").textContent = t("mobile.queue", { n: waiting.length });
  $("queue-count").dataset.count = String(waiting.length);
  $("queue-box").classList.toggle("empty", !waiting.length && !refused.length);
  const list = clear($("queue-list"));
  for (const item of waiting) {
    list.append(el("li", { dataset: { testid: `queued-${item.action}` } },
      el("strong", {}, tv("action", item.action)), ` ${item.ticket_id} · ${fmtTime(item.queued_at, { seconds: true })}`,
      item.last_error ? el("small", { class: "muted", title: `${item.last_error.code}: ${item.last_error.message}` },
        ` ${errorText(item.last_error)}`) : null));
  }
  const bad = clear($("rejected-list"));
  for (const item of refused) {
    const box = errorBox(item.error);
    bad.append(el("li", {}, el("strong", {}, `${t("mobile.rejected")}: ${tv("action", item.action)} ${item.ticket_id}`),
      box, el("button", { type: "button", class: "small", onclick: () => {
        save(REJECTED, rejected().filter((r) => r.key !== item.key));
        render();
      } }, t("mobile.dismiss"))));
  }
}

// The visit as it will stand once what waits in the queue is uploaded: its status and
// what it allows next.
function shown(visit, pending) {
  let status = visit.status;
  const actions = new Set(visit.actions || []);
  for (const item of pending) {
    const after = AFTER[item.action];
    if (!after) continue; // work and expenses change neither
    status = after.status;
    for (const action of after.ends || []) actions.delete(action);
    for (const action of after.opens || []) actions.add(action);
  }
  return { status, actions };
}

function renderVisits() {
  const box = $("visits");
  // Never redraw under the technician's fingers: a form being filled in waits.
  if (box.contains(document.activeElement) && document.activeElement.matches("input, select, textarea")) {
    state.deferred = true;
    return;
  }
  state.deferred = false;
  clear(box);
  $("cached").textContent = state.fetchedAt && !navigator.onLine ? t("mobile.cached", { time: fmtTime(state.fetchedAt) })
    : "";
  if (!state.visits.length) {
    box.append(el("p", { class: "empty", dataset: { testid: "no-visits" } }, t("mobile.none")));
    return;
  }
  const waiting = queue();
  for (const visit of state.visits) {
    const pending = waiting.filter((item) => item.ticket_id === visit.ticket_id);
    const { status, actions } = shown(visit, pending);
    box.append(visitCard(visit, status, actions, pending));
  }
  tickCountdowns();
}

function visitCard(visit, status, allowed, pending) {
  const id = visit.ticket_id;
  const due = visit.arrive_by || visit.respond_by;
  const stopped = (visit.stopped || []).includes(visit.arrive_by ? "arrive" : "respond");
  const card = el("article", { class: `visit card ${(visit.breached || []).length ? "breached" : ""} `
    + `${(visit.at_risk || []).length ? "at-risk" : ""}`, dataset: { testid: `visit-${id}`, status } },
  el("h3", {}, visit.summary),
  el("div", {}, el("span", { class: `badge status-${status}`, dataset: { testid: `visit-status-${id}` } },
    tv("status", status)), pending.length ? el("span", { class: "flag pending" }, t("mobile.queued")) : null),
  el("dl", { class: "facts" },
    el("dt", {}, t("board.ticket")), el("dd", {}, id),
    el("dt", {}, t("mobile.site")), el("dd", { dataset: { testid: `visit-site-${id}` } },
      // whose site and where (from dispatch's board row), then the coordinates to navigate by
      [visit.customer_name, visit.site_name].filter(Boolean).join(" · ") || visit.site_id,
      visit.site_address ? el("div", {}, visit.site_address) : null,
      el("small", {}, `${Number(visit.latitude).toFixed(4)}, ${Number(visit.longitude).toFixed(4)}`),
      navigation(visit)),
    el("dt", {}, t("board.skill")), el("dd", {}, tv("skill", visit.skill)),
    due ? [el("dt", {}, t("mobile.due")), el("dd", { class: "clock", dataset: stopped ? {} : { due } },
      stopped ? `✓ ${t("board.met")}` : el("span", { class: "countdown" }), el("small", {}, ` ${fmtTime(due)}`))] : null));
  const actions = el("div", { class: "visit-actions" });
  const can = (action) => allowed.has(action);
  if (can("accept")) {
    actions.append(el("button", { type: "button", dataset: { testid: `accept-${id}` }, onclick: () => accept(id) },
      t("mobile.accept")));
  }
  // "report" covers every report from the site; which presence comes next is where the
  // technician is: before arriving (a visit can be declined until then) a check-in, on site
  // a check-out.
  if (can("report") && can("decline")) {
    const button = el("button", { type: "button", class: "primary big", dataset: { testid: `check-in-${id}` } },
      t("mobile.check_in"));
    button.addEventListener("click", () => presence("check-in", id, button));
    actions.append(button);
  }
  if (can("report") && status === "on_site") {
    const button = el("button", { type: "button", class: "primary big", dataset: { testid: `check-out-${id}` } },
      t("mobile.check_out"));
    button.addEventListener("click", () => presence("check-out", id, button));
    actions.append(button);
  }
  card.append(actions);
  // what is logged already, just above the forms to log more (shown while the visit takes
  // reports, and after as long as it has anything)
  const logged = loggedFold(id, pending);
  if (can("report") || logged.entries) card.append(logged.fold);
  if (can("report")) card.append(workForm(id), expenseForm(id));
  if (can("complete")) card.append(completionForm(id));
  return card;
}

// A geo: URI (RFC 5870), which the phone's map apps open to navigate: the site's
// coordinates, and as its label the customer's site in words.
function navigation(visit) {
  const lat = Number(visit.latitude);
  const lon = Number(visit.longitude);
  if (!Number.isFinite(lat) || !Number.isFinite(lon)) return null;
  const label = [visit.customer_name, visit.site_name].filter(Boolean).join(" ") || t("mobile.site");
  const point = `${lat.toFixed(6)},${lon.toFixed(6)}`;
  return el("a", { class: "navigate", href: `geo:${point}?q=${point}(${encodeURIComponent(label)})`,
    dataset: { testid: `navigate-${visit.ticket_id}` } }, t("mobile.navigate"));
}

// The day of an instant in the servicing office's zone, as fmtTime shows it: a period
// within one day shows its end without the date again.
const dayOf = (iso) => new Intl.DateTimeFormat("en-CA", { timeZone: ZONE }).format(new Date(iso));

// The "已记录" fold: the technician's own work and expenses stored on the visit (from the
// copy of its record), then those still waiting in the queue, marked 待上传. A queued
// entry whose key the record already holds was uploaded: shown once, as stored.
function loggedFold(id, pending) {
  const record = state.logged[id];
  const mine = (entry) => !state.user?.technician_id || entry.technician_id === state.user.technician_id;
  const stored = { work: (record?.work || []).filter(mine), expenses: (record?.expenses || []).filter(mine) };
  const keys = new Set([...stored.work, ...stored.expenses].map((entry) => entry.key));
  for (const item of uploadedItems()) {
    if (item.ticket_id !== id || keys.has(item.key)) continue;
    stored[item.action].push({ ...item.body, key: item.key });
    keys.add(item.key);
  }
  const waiting = pending.filter((item) => (item.action === "work" || item.action === "expenses")
    && !keys.has(item.body?.key));
  const rows = [
    ...stored.work.map((entry) => workRow(entry, "stored")),
    ...waiting.filter((item) => item.action === "work").map((item) => workRow(item.body, "pending")),
    ...stored.expenses.map((entry) => expenseRow(entry, "stored")),
    ...waiting.filter((item) => item.action === "expenses").map((item) => expenseRow(item.body, "pending")),
  ];
  const title = `${t("mobile.logged")} · ${t("mobile.logged_counts", {
    work: stored.work.length + waiting.filter((item) => item.action === "work").length,
    expenses: stored.expenses.length + waiting.filter((item) => item.action === "expenses").length })}`;
  const content = el("div", { dataset: { testid: `logged-list-${id}` } },
    rows.length ? el("ul", { class: "logged-list" }, rows)
      : el("p", { class: "muted" }, record ? t("mobile.logged_none") : t("mobile.logged_unknown")),
    // offline, say how old the copy is (the server may hold more by now)
    record && !navigator.onLine ? el("small", { class: "muted" }, t("mobile.logged_as_of", { time: fmtTime(record.at) }))
      : null);
  return { fold: remembered(`logged-${id}`, title, content), entries: rows.length };
}

function workRow(entry, where) {
  const minutes = (Date.parse(entry.ended) - Date.parse(entry.started)) / 60000;
  const sameDay = dayOf(entry.started) === dayOf(entry.ended);
  return el("li", { dataset: { testid: "logged-work", state: where } },
    el("strong", {}, tv("work", entry.kind)),
    ` ${fmtTime(entry.started)}–${fmtTime(entry.ended, { date: !sameDay })}`,
    Number.isFinite(minutes) ? ` · ${fmtMinutes(minutes)}` : "",
    where === "pending" ? el("span", { class: "flag pending" }, t("mobile.logged_pending")) : null);
}

function expenseRow(entry, where) {
  const receipt = [entry.receipt_no, entry.receipt_date].filter(Boolean).join(" · ");
  return el("li", { dataset: { testid: "logged-expense", state: where } },
    el("strong", {}, tv("expense", entry.kind)), ` ${fmtMoney(entry.amount)}`,
    entry.kind === "lodging" && entry.nights ? ` · ${t("mobile.logged_nights", { n: entry.nights })}` : "",
    receipt ? ` · ${t("mobile.logged_receipt", { receipt })}` : "",
    entry.note ? el("small", { class: "muted" }, ` ${entry.note}`) : null,
    where === "pending" ? el("span", { class: "flag pending" }, t("mobile.logged_pending")) : null);
}

// One of the API's vocabularies (issue 14): the values its schema accepts, in its order.
const words = (name) => state.vocabulary[name] || [];

function workForm(id) {
  const now = new Date();
  const form = el("form", { class: "form-grid", dataset: { testid: `work-form-${id}` } },
    el("label", {}, t("mobile.work_kind"), el("select", { name: "kind" },
      words("work").map((k) => el("option", { value: k }, tv("work", k))))),
    el("label", {}, t("mobile.started"), el("input", { type: "datetime-local", name: "started", required: true,
      value: localInputValue(new Date(now.getTime() - 3600000)) })),
    el("label", {}, t("mobile.ended"), el("input", { type: "datetime-local", name: "ended", required: true,
      value: localInputValue(now) })),
    el("button", { type: "submit", dataset: { testid: `work-submit-${id}` } }, t("common.save")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    work(id, form);
  });
  return remembered(`work-${id}`, t("mobile.work"), form);
}

function expenseForm(id) {
  const nights = el("label", { hidden: true }, t("mobile.nights"),
    el("input", { type: "number", name: "nights", min: 1, max: 365, value: 1 }));
  const kind = el("select", { name: "kind" }, words("expense").map((k) =>
    el("option", { value: k }, tv("expense", k))));
  kind.addEventListener("change", () => { nights.hidden = kind.value !== "lodging"; });
  const form = el("form", { class: "form-grid", dataset: { testid: `expense-form-${id}` } },
    el("label", {}, t("mobile.expense_kind"), kind),
    el("label", {}, t("mobile.amount"), el("input", { name: "amount", required: true, inputmode: "decimal",
      pattern: "\\d{1,12}(\\.\\d{1,2})?", placeholder: "123.50", dataset: { testid: `expense-amount-${id}` } })),
    el("label", {}, t("mobile.receipt_no"), el("input", { name: "receipt_no", maxlength: 100 })),
    el("label", {}, t("mobile.receipt_date"), el("input", { type: "date", name: "receipt_date", required: true,
      value: localInputValue(new Date()).slice(0, 10), dataset: { testid: `expense-date-${id}` } })),
    nights,
    el("label", { class: "wide" }, t("mobile.note"), el("input", { name: "note", maxlength: 2000 })),
    el("button", { type: "submit", dataset: { testid: `expense-submit-${id}` } }, t("common.save")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    expense(id, form);
  });
  return remembered(`expense-${id}`, t("mobile.expense"), form);
}

// A fold that stays open or closed across redraws.
function remembered(name, title, content) {
  const fold = el("details", { open: state.open.has(name) }, el("summary", { dataset: { testid: name } }, title), content);
  fold.addEventListener("toggle", () => {
    if (fold.open) state.open.add(name);
    else state.open.delete(name);
  });
  return fold;
}

function completionForm(id) {
  const form = el("form", { class: "row" },
    el("input", { name: "resolution", required: true, maxlength: 4000, placeholder: t("mobile.resolution"),
      dataset: { testid: `resolution-${id}` } }),
    el("button", { type: "submit", dataset: { testid: `complete-${id}` } }, t("mobile.complete")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    complete(id, form);
  });
  return form;
}

start().catch((error) => showError(error));
