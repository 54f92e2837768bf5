// The auditor's page: replay status (with a hash-chain check), any aggregate's history
// as recorded, its state as of a chosen time, and the provenance of an invoice line.

import { api, clear, el, errorBox, requireUser, showError, userBadge, onUnauthenticated }
  from "./api.js";
import { apply, beijingInputValue, fmtMoney, fmtTime, fromBeijingInput, langButton, t, tv } from "./i18n.js";
import { explanationOfLine, fact, jsonView, percent, table } from "./views.js";

const $ = (id) => document.getElementById(id);
const state = { offset: 0, streams: [], service: "dispatch", asked: 0 };
const PAGE = 50;

// Which query answers "as it stood then" for an aggregate, by its stream's prefix.
const STATE_OF = [
  ["agreement-", (id) => `/agreements/${encodeURIComponent(id)}`],
  ["ticket-", (id) => `/tickets/${encodeURIComponent(id)}`],
  ["invoice-", (id) => `/invoices/${encodeURIComponent(id)}`],
];

async function start() {
  apply();
  $("header-tools").append(langButton());
  const user = await requireUser(["auditor"]);
  $("header-tools").append(userBadge(user));
  onUnauthenticated(() => window.location.reload());
  window.addEventListener("weibao:lang", () => {
    if (state.status) renderStatus(state.status);
    renderStreams();
    if (!$("history").hidden) showStream();
  });
  $("status-refresh").addEventListener("click", () => loadStatus(false));
  $("verify").addEventListener("click", () => loadStatus(true));
  const filter = $("stream-filter");
  filter.addEventListener("change", () => loadStreams(true));
  filter.addEventListener("submit", (event) => {
    event.preventDefault();
    loadStreams(true);
  });
  $("streams-more").addEventListener("click", () => loadStreams(false));
  $("history-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showStream();
  });
  $("as-of-now").addEventListener("click", () => {
    $("history-form").elements.as_of.value = "";
    showStream();
  });
  $("number-form").addEventListener("submit", (event) => {
    event.preventDefault();
    findInvoice(new FormData(event.target).get("number"));
  });
  $("explain-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    explain(data.get("invoice_id"), data.get("item_id"), $("explain"));
  });
  const wanted = new URLSearchParams(window.location.search);
  if (wanted.get("service")) filter.elements.service.value = wanted.get("service");
  await Promise.all([loadStatus(false), loadStreams(true)]);
  if (wanted.get("stream")) {
    $("history-form").elements.stream_id.value = wanted.get("stream");
    showStream();
  }
}

// -- replay status -----------------------------------------------------------------------

async function loadStatus(verify) {
  const button = $("verify");
  button.disabled = true;
  try {
    state.status = await api("/audit/status", { params: { verify: verify ? "true" : undefined } });
    renderStatus(state.status);
  } catch (error) {
    showError(error, $("status"));
  } finally {
    button.disabled = false;
  }
}

function renderStatus(status) {
  const box = clear($("status"));
  for (const service of status.services || []) {
    const card = el("div", { class: "service-status", dataset: { testid: `status-${service.service}` } },
      el("h3", {}, tv("service", service.service)));
    if (service.error) {
      card.append(errorBox(service.error));
      box.append(card);
      continue;
    }
    card.append(el("dl", { class: "facts" },
      fact("audit.log_position", String(service.log_position ?? "")),
      fact("audit.relayed_position", String(service.relayed_position ?? ""))));
    if (service.chain) {
      const chain = service.chain;
      card.append(el("p", { class: `chain ${chain.ok ? "ok" : "broken"}`, dataset: { testid: `chain-${service.service}` } },
        `${t("audit.chain")}: `, chain.ok ? t("audit.chain_ok", { n: chain.checked })
          : t("audit.chain_broken", { at: chain.first_broken, reason: chain.reason })));
      if (chain.signatures === "checked") {
        card.append(el("p", { class: "chain ok", dataset: { testid: `signatures-${service.service}` } },
          `${t("audit.signatures")}: `, t("audit.signatures_ok", { n: chain.signed, old: chain.unsigned })));
      }
      if (chain.stream) {
        const s = chain.stream;
        card.append(el("p", { class: `chain ${s.ok ? "ok" : "broken"}`, dataset: { testid: `stream-check-${service.service}` } },
          `${t("audit.stream_copy")}: `, s.ok ? t("audit.stream_ok", { n: s.checked, pending: s.pending })
            : t("audit.stream_broken", { foreign: s.foreign, missing: s.missing, duplicates: s.duplicates })));
      }
    }
    const foreign = (service.foreign_messages || []).length;
    const refused = Object.values(service.refused || {}).reduce((a, b) => a + b, 0);
    if (foreign || refused) {
      card.append(el("p", { class: "chain broken", dataset: { testid: `alarm-${service.service}` } },
        t("audit.alarm", { foreign, refused })));
    }
    card.append(table(["audit.consumer", "audit.upstream", "audit.applied", "audit.upstream_seq", "audit.behind",
      "audit.parked"], (service.read_models || []).map((m) => [m.consumer, m.upstream, String(m.applied_seq),
      m.upstream_seq === null ? "?" : String(m.upstream_seq),
      el("span", { class: m.behind ? "flag at-risk" : "" }, m.behind === null ? "?" : String(m.behind)),
      el("span", { class: m.parked ? "flag breached" : "" }, String(m.parked))])));
    box.append(card);
  }
}

// -- aggregates and their history ----------------------------------------------------------

async function loadStreams(fresh) {
  const data = new FormData($("stream-filter"));
  state.service = data.get("service");
  const asked = ++state.asked; // only the latest question's answer is shown
  const offset = fresh ? 0 : state.offset;
  try {
    const page = await api(`/audit/${state.service}/streams`, { params: { limit: PAGE, offset,
      prefix: data.get("prefix") } });
    if (asked !== state.asked) return;
    state.streams = [...(fresh ? [] : state.streams), ...(page.items || [])];
    state.offset = page.next_offset ?? offset;
    $("streams-more").hidden = page.next_offset === null || page.next_offset === undefined;
    $("streams-total").textContent = t("common.total", { n: page.total ?? state.streams.length });
    renderStreams();
  } catch (error) {
    showError(error);
  }
}

function renderStreams() {
  const list = clear($("streams"));
  for (const stream of state.streams) {
    list.append(el("li", { dataset: { testid: `stream-${stream.stream_id}` }, onclick: () => {
      $("history-form").elements.stream_id.value = stream.stream_id;
      showStream();
    } }, el("strong", {}, stream.stream_id),
    el("small", {}, ` v${stream.version} · ${stream.last_type} · ${fmtTime(stream.last_recorded_at)}`)));
  }
  if (!list.children.length) list.append(el("li", { class: "empty" }, t("common.empty")));
}

// An invoice by the number printed on it (the auditor holds the paper, not our id): its
// history and its state, as if picked from billing's list.
async function findInvoice(typed) {
  const number = String(typed || "").trim();
  const said = clear($("number-found"));
  if (!number) return;
  try {
    const page = await api("/invoices", { params: { number, limit: 1 } });
    const [invoice] = page.items || [];
    if (!invoice) {
      said.textContent = t("audit.number_none", { number });
      return;
    }
    said.textContent = t("audit.number_found", { number: invoice.number, customer: invoice.customer_name
      || invoice.customer_id });
    const filter = $("stream-filter");
    filter.elements.service.value = "billing";
    state.service = "billing";
    $("history-form").elements.stream_id.value = `invoice-${invoice.invoice_id}`;
    $("explain-form").elements.invoice_id.value = invoice.invoice_id;
    await showStream();
  } catch (error) {
    said.append(errorBox(error));
  }
}

async function showStream() {
  const form = $("history-form");
  const streamId = form.elements.stream_id.value.trim();
  if (!streamId) return;
  // The page speaks Beijing time whatever the browser's zone; sent in UTC: the logs record
  // UTC, and SQLite compares the wall-clock text (see the report).
  const asOf = fromBeijingInput(form.elements.as_of.value);
  const service = new FormData($("stream-filter")).get("service");
  const history = $("history");
  history.hidden = false;
  try {
    const found = await api(`/audit/${service}/streams/${encodeURIComponent(streamId)}`, { params: { as_of: asOf } });
    renderHistory(found, service);
  } catch (error) {
    clear(history).append(errorBox(error));
  }
  await showState(streamId, asOf);
}

function renderHistory(found, service) {
  const box = clear($("history"));
  box.append(el("h2", {}, `${t("audit.history")} · ${tv("service", service)} · ${found.stream_id}`,
    found.as_of ? el("small", {}, ` ${t("audit.as_of")} ${fmtTime(found.as_of, { seconds: true })}`) : null));
  const body = el("tbody");
  for (const event of found.events || []) {
    const meta = event.meta || {};
    body.append(el("tr", { dataset: { testid: `event-${event.version}` } },
      el("td", { class: "num" }, String(event.position)),
      el("td", { class: "num" }, String(event.version)),
      el("td", {}, fmtTime(event.recorded_at, { seconds: true }),
        el("button", { type: "button", class: "link as-of", title: t("audit.as_of_apply"),
          dataset: { testid: `as-of-${event.version}` }, onclick: () => {
          // the state right after this event: its recorded time, to the second, rounded up
          const moment = new Date(Math.ceil(Date.parse(event.recorded_at) / 1000) * 1000);
          $("history-form").elements.as_of.value = beijingInputValue(moment.toISOString());
          showStream();
        } }, t("audit.as_of_this"))),
      el("td", {}, el("code", {}, event.type)),
      el("td", {}, meta.actor || ""),
      el("td", {}, el("details", {}, el("summary", {}, t("audit.data")), jsonView(event.data),
        Object.keys(meta).length ? jsonView(meta) : null))));
  }
  box.append(el("table", { class: "grid history" },
    el("thead", {}, el("tr", {}, ["audit.position", "audit.version", "audit.recorded_at", "audit.type", "audit.actor",
      "audit.data"].map((k) => el("th", {}, t(k))))), body));
}

async function showState(streamId, asOf) {
  const box = $("state");
  box.hidden = false;
  clear(box).append(el("h2", {}, t("audit.state"), " ",
    el("small", {}, asOf ? `${t("audit.as_of")} ${fmtTime(asOf, { seconds: true })}` : t("audit.now"))));
  const known = STATE_OF.find(([prefix]) => streamId.startsWith(prefix));
  if (!known) {
    box.append(el("p", { class: "muted" }, t("audit.no_state")));
    return;
  }
  const [prefix, path] = known;
  const id = streamId.slice(prefix.length);
  try {
    const found = await api(path(id), { params: { as_of: asOf } });
    if (prefix === "invoice-") box.append(invoiceState(found));
    else box.append(jsonView(found));
  } catch (error) {
    box.append(errorBox(error));
  }
}

function invoiceState(invoice) {
  const totals = invoice.totals || {};
  const lines = invoice.lines || [];
  const explainBox = el("div");
  return el("div", { dataset: { testid: "invoice-state" } },
    el("dl", { class: "facts" },
      fact("invoices.number", invoice.number || "—"),
      fact("invoices.status", tv("invoice_status", invoice.status)),
      fact("invoices.customer", invoice.customer_id),
      fact("invoices.period", invoice.period),
      fact("invoices.gross", fmtMoney(totals.gross))),
    table(["invoices.description", "invoices.quantity", "invoices.amount", "invoices.vat_rate", "invoices.clauses",
      "invoices.provenance"], lines.map((line) => [line.description, `${line.quantity} ${line.unit || ""}`,
      fmtMoney(line.amount), percent(line.vat_rate), (line.clauses || []).join(", "),
      el("button", { type: "button", class: "small", dataset: { testid: `explain-${line.item_id}` },
        onclick: () => explain(invoice.invoice_id, line.item_id, explainBox) }, t("invoices.provenance"))])),
    explainBox);
}

async function explain(invoiceId, itemId, where) {
  try {
    const why = await api(`/invoices/${encodeURIComponent(invoiceId)}/lines/${encodeURIComponent(itemId)}/explanation`);
    clear(where).append(explanationOfLine(why));
  } catch (error) {
    clear(where).append(errorBox(error));
  }
}

start().catch((error) => showError(error));
