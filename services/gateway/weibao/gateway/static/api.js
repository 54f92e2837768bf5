// The API client every page uses: the token in localStorage, sent as a Bearer header;
// errors in the gateway's one shape {"error": {code, field, message, reason?, values?}}
// shown in the page's language (the reason's own text, else the code's and the field's);
// a 401 brings up the sign-in form. Also small DOM helpers shared by the pages.

import { apply, fmtTime, lang, langButton, t, tv } from "./i18n.js";

const TOKEN = "weibao.token";
const USER = "weibao.user";
export const BASE = "/api/v1";

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || (status ? "http_error" : "offline");
    this.field = error?.field || "";
    this.problems = error?.problems || [];
    // issue 16: the refusal's own key (reason.<key> in i18n.js) and the values it names
    this.reason = error?.reason || "";
    this.values = error?.values && typeof error.values === "object" ? error.values : {};
  }

  // Offline or a service that failed: worth retrying later with the same key.
  get retryable() {
    return this.status === 0 || this.status === 502 || this.status === 503 || this.status === 504
      || this.status === 429 || this.status === 408;
  }
}

export function token() {
  return localStorage.getItem(TOKEN);
}

export function currentUser() {
  try {
    return JSON.parse(localStorage.getItem(USER) || "null");
  } catch {
    return null;
  }
}

function forget() {
  localStorage.removeItem(TOKEN);
  localStorage.removeItem(USER);
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// fetch /api/v1 + path. `key` goes as Idempotency-Key (a retry with it has one effect).
export async function api(path, { method = "GET", body, key, params, quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  const auth = token();
  if (auth) headers.Authorization = `Bearer ${auth}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  let response;
  try {
    response = await fetch(BASE + path + query(params), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin",
    });
  } catch (error) {
    throw new ApiError(0, { code: "offline", field: "(network)", message: t("error.network") });
  }
  heard(response);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) throw refusal(response.status, data, quiet401);
  return data;
}

// rule D5: every answer's Weibao-Server-Time header is the server's clock in milliseconds
// (the Date header is to the second, cut down: a tap just after an assignment would count
// as before it), handed with the monotonic and wall clocks' readings on its arrival to
// whoever keeps the phone's time. An answer without it (the service worker's cached copy,
// a proxy's own error page) says nothing about the server's clock now.
const serverTimeListeners = [];

export function onServerTime(listener) {
  serverTimeListeners.push(listener);
}

function heard(response) {
  const stamp = response.headers.get("weibao-server-time");
  const server = stamp === null ? NaN : Number(stamp);
  if (!Number.isFinite(server)) return;
  const monotonic = performance.now();
  const wall = Date.now();
  for (const listener of serverTimeListeners) listener(server, monotonic, wall);
}

function refusal(status, data, quiet401) {
  const problem = data && typeof data === "object" && data.error ? data.error
    : { code: "http_error", field: "(server)", message: `HTTP ${status}` };
  const error = new ApiError(status, problem);
  if (status === 401 && !quiet401) {
    forget();
    window.dispatchEvent(new CustomEvent("weibao:unauthenticated", { detail: error }));
  }
  return error;
}

// GET /api/v1 + path for its verdict only: the answer is dropped as soon as its headers
// are in (a download's first page, not the whole file). A refusal throws as api() does.
export async function probe(path, { params } = {}) {
  const controller = new AbortController();
  const headers = { Accept: "application/json" };
  const auth = token();
  if (auth) headers.Authorization = `Bearer ${auth}`;
  let response;
  try {
    response = await fetch(BASE + path + query(params), { headers, credentials: "same-origin",
      signal: controller.signal });
  } catch (error) {
    throw new ApiError(0, { code: "offline", field: "(network)", message: t("error.network") });
  }
  if (response.ok) {
    controller.abort();
    return response.status;
  }
  const type = response.headers.get("content-type") || "";
  throw refusal(response.status, type.includes("json") ? await response.json().catch(() => null) : null, false);
}

export async function signIn(username, password) {
  const answer = await api("/session", { method: "POST", body: { username, password }, quiet401: true });
  localStorage.setItem(TOKEN, answer.access_token);
  localStorage.setItem(USER, JSON.stringify(answer.user));
  return answer.user;
}

export async function signOut() {
  try {
    await api("/session", { method: "DELETE", quiet401: true });
  } catch {
    // offline: the token is dropped here anyway
  }
  forget();
  window.location.reload();
}

// -- DOM helpers -----------------------------------------------------------------------

// el("div", {class: "x", dataset: {testid: "y"}, onclick}, child, "text", ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

// -- a refusal in the page's language (issue 16) -------------------------------------------

function known(key) {
  return t(key) !== key;
}

// A value a reason names, in words: a time in China time, a list joined, a known
// vocabulary value (`role`, `channel`...) by its label; anything else as it came.
function shownValue(name, value) {
  if (Array.isArray(value)) return value.map((v) => shownValue(name, v)).join(lang() === "zh" ? "、" : ", ");
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value)) return fmtTime(value);
  const singular = name.endsWith("s") ? name.slice(0, -1) : name;
  for (const prefix of [name, singular]) {
    if (known(`${prefix}.${value}`)) return tv(prefix, value);
  }
  return value;
}

// The label of a field, dotted or not ("line.amount", then "amount"); "" when none is known.
export function fieldLabel(field) {
  if (!field) return "";
  const last = String(field).split(".").pop();
  for (const name of [field, last]) {
    if (known(`field.${name}`)) return t(`field.${name}`);
  }
  return "";
}

// What a refusal says, in the page's language: its reason's own sentence with its values;
// else the code's generic text (and the field, separately: see errorBox). The English
// message only on the English page, when nothing better is known.
export function errorText(error) {
  if (!error) return t("error.unknown");
  if (error.reason && known(`reason.${error.reason}`)) {
    const values = Object.fromEntries(Object.entries(error.values || {}).map(([k, v]) => [k, shownValue(k, v)]));
    return t(`reason.${error.reason}`, values);
  }
  if (error.code && known(`error.${error.code}`)) return t(`error.${error.code}`);
  if (lang() !== "zh" && error.message) return error.message;
  return t("error.unknown");
}

function problemText(problem) {
  const label = fieldLabel(problem.field);
  const text = known(`error.${problem.code}`) ? t(`error.${problem.code}`)
    : (lang() !== "zh" && problem.message) || t("error.unknown");
  return label ? `${label}：${text}` : text;
}

// A refusal as the page's language says it: the reason's sentence (or the code's, with the
// field's label); the gateway's English message, code and field stay in the tooltip (and,
// on the English page, in the text) for whoever reports the problem.
export function errorBox(error) {
  const text = errorText(error);
  const label = error?.reason && known(`reason.${error.reason}`) ? "" : fieldLabel(error?.field);
  const english = lang() !== "zh";
  const technical = [error?.code, error?.field, error?.message || (error ? String(error) : "")].filter(Boolean)
    .join(" · ");
  const box = el("div", { class: "error", role: "alert", title: technical,
    dataset: { testid: "error", code: error?.code || "", reason: error?.reason || "" } },
    el("strong", { class: "error-text", dataset: { testid: "error-text" }, text }),
    label ? el("span", { class: "error-field", text: t("error.field", { field: label }) }) : null,
    english && error?.message && error.message.toLowerCase() !== text.toLowerCase()
      ? el("span", { class: "error-message", text: error.message }) : null);
  if (error?.problems && error.problems.length > 1) {
    box.append(el("ul", {}, error.problems.map((p) => el("li", {}, english ? `${p.field}: ${p.message}`
      : problemText(p)))));
  }
  return box;
}

// Show an error in the page's message area (or `where`), dismissable.
export function showError(error, where) {
  const area = where || document.getElementById("messages");
  if (!area) {
    console.error(error);
    return;
  }
  const box = errorBox(error);
  box.append(el("button", { type: "button", class: "dismiss", "aria-label": t("common.close"),
    onclick: () => box.remove() }, "×"));
  if (!where) {
    area.prepend(box);
    setTimeout(() => box.remove(), 15000);
  } else {
    clear(area).append(box);
  }
}

const MAX_NOTICES = 3;

export function notice(text, kind = "info") {
  const area = document.getElementById("messages");
  if (!area) return;
  const box = el("div", { class: `notice ${kind}`, role: "status", dataset: { testid: "notice" } }, text);
  area.prepend(box);
  // The latest few only: a burst of uploads must not fill the phone's screen.
  while (area.children.length > MAX_NOTICES) area.lastElementChild.remove();
  // The phone gives notices their own room below the visits: the field being filled in
  // stays in view as that room grows.
  const active = document.activeElement;
  if (active && active !== document.body && area.parentElement?.contains(active)) active.scrollIntoView({ block: "nearest" });
  setTimeout(() => box.remove(), 6000);
}

// -- signing in ------------------------------------------------------------------------

let loginOpen = null;

// The sign-in form over the page; resolves with the user once signed in.
export function loginForm(message) {
  if (loginOpen) return loginOpen;
  loginOpen = new Promise((resolve) => {
    const status = el("div", { class: "login-status" });
    if (message) status.append(el("div", { class: "notice" }, message));
    const username = el("input", { name: "username", autocomplete: "username", required: true,
      dataset: { testid: "login-username" } });
    const password = el("input", { name: "password", type: "password", autocomplete: "current-password",
      required: true, dataset: { testid: "login-password" } });
    const form = el("form", { class: "login", dataset: { testid: "login-form" } },
      el("h2", { dataset: { i18n: "login.title" } }),
      el("label", {}, el("span", { dataset: { i18n: "login.username" } }), username),
      el("label", {}, el("span", { dataset: { i18n: "login.password" } }), password),
      status,
      el("div", { class: "row" },
        el("button", { type: "submit", class: "primary", dataset: { testid: "login-submit", i18n: "login.submit" } }),
        langButton()));
    const overlay = el("div", { class: "overlay", dataset: { testid: "login" } }, form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const user = await signIn(username.value.trim(), password.value);
        overlay.remove();
        loginOpen = null;
        resolve(user);
      } catch (error) {
        clear(status).append(errorBox(error));
      }
    });
    document.body.append(overlay);
    apply(overlay);
    username.focus();
  });
  return loginOpen;
}

// The signed-in user with one of `roles` (admin always passes); asks to sign in when
// there is no valid token, and says so when the role does not fit the page.
export async function requireUser(roles) {
  let user = currentUser();
  if (token()) {
    try {
      user = await api("/me", { quiet401: true });
      localStorage.setItem(USER, JSON.stringify(user));
    } catch (error) {
      if (error.status === 401) {
        forget();
        user = null;
      } else if (!user) {
        throw error;
      } // offline: trust the user we remember (the phone page works offline)
    }
  } else {
    user = null;
  }
  while (!user || !(user.role === "admin" || roles.includes(user.role))) {
    const message = user ? t("login.wrong_role", { roles: roles.join(", "), role: user.role }) : undefined;
    if (user) forget();
    user = await loginForm(message);
  }
  return user;
}

// A 401 from any call (an expired token): sign in again, then `after`.
export function onUnauthenticated(after) {
  window.addEventListener("weibao:unauthenticated", async () => {
    await loginForm(t("login.expired"));
    if (after) after();
  });
}

// The header's user badge and sign-out button.
export function userBadge(user) {
  return el("span", { class: "user", dataset: { testid: "user" } },
    el("span", { class: "user-name" }, user.display_name || user.username, " · ", tv("role", user.role)),
    el("button", { type: "button", class: "link", dataset: { testid: "sign-out", i18n: "login.signout" },
      onclick: signOut }, t("login.signout")));
}

// -- ids and times ---------------------------------------------------------------------

// The values each select offers (channels, causes, kinds of work and expense, ...), as
// the gateway reads them from the shared schemas the API validates with: a page never
// keeps a list of its own that could drift from what the API accepts. Its last answer is
// kept on this device, so a page opened offline still offers them (the phone's service
// worker keeps it in its shell too).
const VOCABULARY = "weibao.vocabulary";
let vocabularyAsked = null;

export function vocabulary() {
  vocabularyAsked ??= (async () => {
    try {
      const response = await fetch(`${BASE}/vocabulary`, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new ApiError(response.status, null);
      const words = await response.json();
      localStorage.setItem(VOCABULARY, JSON.stringify(words));
      return words;
    } catch (error) {
      const kept = JSON.parse(localStorage.getItem(VOCABULARY) || "null");
      if (kept) return kept;
      vocabularyAsked = null; // nothing to offer yet: ask again next time
      throw error instanceof ApiError ? error
        : new ApiError(0, { code: "offline", field: "(network)", message: t("error.network") });
    }
  })();
  return vocabularyAsked;
}

// A fresh idempotency key: crypto.randomUUID where the page is a secure context,
// otherwise a v4 UUID from crypto.getRandomValues (available everywhere).
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// A moment as ISO 8601 in this device's local time with its UTC offset:
// 2026-11-24T09:30:00.000+08:00 (the API refuses times without an offset).
export function isoWithOffset(moment = new Date()) {
  const pad = (n, width = 2) => String(Math.abs(n)).padStart(width, "0");
  const offset = -moment.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}T`
    + `${pad(moment.getHours())}:${pad(moment.getMinutes())}:${pad(moment.getSeconds())}.`
    + `${pad(moment.getMilliseconds(), 3)}${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
}

// <input type="datetime-local"> value (local, no offset) -> ISO with this device's offset.
export function localInputToIso(value) {
  if (!value) return "";
  return isoWithOffset(new Date(value));
}

export function localInputValue(moment = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}T`
    + `${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
}

// -- live updates ----------------------------------------------------------------------

// EventSource on /api/v1/live (the sign-in cookie authenticates it). `onChange` gets
// each change; a debounced refresh runs ~300 ms after a burst and once more ~1.5 s
// later, since read models trail the events slightly. `onState("on"|"off")`.
export function live({ onChange, refresh, onState }) {
  let source = null;
  let soon = null;
  let later = null;
  let failures = 0;

  const schedule = () => {
    clearTimeout(soon);
    clearTimeout(later);
    soon = setTimeout(refresh, 300);
    later = setTimeout(refresh, 1500);
  };

  const open = () => {
    source = new EventSource(`${BASE}/live`, { withCredentials: true });
    source.addEventListener("hello", () => {
      failures = 0;
      onState?.("on");
    });
    source.addEventListener("change", (event) => {
      let change = {};
      try {
        change = JSON.parse(event.data);
      } catch {
        // an envelope we cannot read still means something changed
      }
      if (onChange?.(change) !== false) schedule();
    });
    source.addEventListener("resync", schedule);
    source.onerror = async () => {
      onState?.("off");
      failures += 1;
      if (source.readyState === EventSource.CLOSED) {
        // refused (e.g. the cookie expired): check the token, then try again
        source = null;
        try {
          await api("/me");
        } catch {
          // a 401 brings up the sign-in form; offline: retry below
        }
        setTimeout(open, Math.min(30000, 1000 * 2 ** Math.min(failures, 5)));
      }
    };
  };

  open();
  return {
    schedule,
    close: () => source?.close(),
    reopen: () => {
      source?.close();
      open();
    },
  };
}
