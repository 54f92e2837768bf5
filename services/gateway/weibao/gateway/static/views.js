// Small views several pages share: tables, facts, any JSON, an invoice line's provenance.

import { el } from "./api.js";
import { fmtDuration, fmtMoney, t } from "./i18n.js";

export function fact(key, value) {
  return [el("dt", {}, t(key)), el("dd", {}, value)];
}

export function table(keys, rows, { testid } = {}) {
  return el("table", { class: "grid", dataset: testid ? { testid } : undefined },
    el("thead", {}, el("tr", {}, keys.map((k) => el("th", {}, t(k))))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c ?? ""))))));
}

// Anything a page has no layout for, readable rather than hidden.
export function jsonView(value) {
  if (value === null || value === undefined) return el("span", { class: "muted" }, "—");
  if (typeof value !== "object") return el("span", {}, String(value));
  if (Array.isArray(value)) {
    if (!value.length) return el("span", { class: "muted" }, "[]");
    return el("ol", { class: "json" }, value.map((v) => el("li", {}, jsonView(v))));
  }
  const entries = Object.entries(value);
  if (!entries.length) return el("span", { class: "muted" }, "{}");
  return el("dl", { class: "json" }, entries.map(([k, v]) => [el("dt", {}, k), el("dd", {}, jsonView(v))]));
}

export function percent(rate) {
  return rate === undefined || rate === null || rate === "" ? "" : `${(Number(rate) * 100).toFixed(0)}%`;
}

// Why an invoice line exists: the clauses that made it billable and the events it came
// from (service and position in that service's log), as billing explains it (B8).
export function explanationOfLine(why) {
  return el("div", { class: "line-explanation", dataset: { testid: "line-explanation" } },
    el("p", {}, el("strong", {}, why.description || why.item_id), ` · ${fmtMoney(why.amount)}`,
      why.vat_rate !== undefined ? ` · VAT ${percent(why.vat_rate)}` : ""),
    el("p", {}, `${t("invoices.clauses")}: `, (why.clauses || []).map((c) => el("span", { class: "clause" }, c))),
    table(["invoices.service", "invoices.position", "invoices.type"],
      (why.sources || []).map((s) => [s.service, String(s.position), s.type]), { testid: "line-sources" }));
}

// Every second on the board and the phone: each [data-due] cell's countdown, without
// fetching anything. `soonMs`: mark as "soon" what runs out within it (0: never).
export function tickCountdowns(soonMs = 0) {
  const now = Date.now();
  for (const cell of document.querySelectorAll("[data-due]")) {
    const left = Date.parse(cell.dataset.due) - now;
    const text = cell.querySelector(".countdown");
    if (!text) continue;
    text.textContent = left >= 0 ? fmtDuration(left) : `${t("board.overdue")} ${fmtDuration(left)}`;
    cell.classList.toggle("overdue", left < 0);
    if (soonMs) cell.classList.toggle("soon", left >= 0 && left < soonMs);
  }
}
