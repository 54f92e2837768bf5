// The phone page's service worker (served as /m/sw.js, scope /m/): keeps the page shell
// so the page opens without a network. Network first, so a new release is picked up at
// once when online; the cached copy when offline. The API is never cached here (the page
// keeps its own copy of the visits and its queue of actions, in localStorage), but for
// its vocabulary: the selects' values, the same for everyone until a release changes them.

const CACHE = "weibao-m-shell-v3"; // v3: the page's selects come from /api/v1/vocabulary
const SHELL = [
  "/m/",
  "/static/mobile.js",
  "/static/api.js",
  "/static/i18n.js",
  "/static/views.js",
  "/static/style.css",
  "/static/mobile.webmanifest",
  "/static/icon.svg",
  "/api/v1/vocabulary",
];
const PATIENCE_MS = 4000; // a network this slow is treated as no network

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
    .then(() => self.clients.claim()));
});

function shellPath(url) {
  if (url.origin !== self.location.origin) return null;
  if (url.pathname === "/m" || url.pathname === "/m/" || url.pathname === "/m/index.html") return "/m/";
  return SHELL.includes(url.pathname) ? url.pathname : null;
}

// A cached answer's server time is the time it was fetched, not now: dropped, so the
// phone's clock (rule D5) is never set from it.
function stale(cached) {
  const headers = new Headers(cached.headers);
  headers.delete("weibao-server-time");
  return new Response(cached.body, { status: cached.status, statusText: cached.statusText, headers });
}

async function networkFirst(request, path) {
  const cache = await caches.open(CACHE);
  try {
    const response = await Promise.race([
      fetch(request),
      new Promise((_, reject) => { setTimeout(() => reject(new Error("slow network")), PATIENCE_MS); }),
    ]);
    if (response.ok) await cache.put(path, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(path);
    if (cached) return stale(cached);
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const path = shellPath(new URL(request.url));
  if (!path) return; // the API and everything else: straight to the network
  event.respondWith(networkFirst(request, path));
});
