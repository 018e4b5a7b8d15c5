// Service worker of the partner page (scope /partner): the page and its scripts load with no
// network, so a reception that lost its link can reload and keep verifying from the offline store.
//
// Network first: every GET of the page and its scripts goes to the server; a good answer refreshes
// the cached copy, and only a failed fetch (offline) is answered from the cache. Nothing else is
// cached (no JSON answers, no member data: the page holds none, results come by fetch).
"use strict";

const CACHE = "cardsvc-partner-v1";
const PAGE = "/partner";
const OFFLINE_MODULES = ["base45", "bundle", "cbor", "claims", "cose", "errors", "store", "verify"];
const SHELL = ["/static/app.css", "/static/app.js", "/static/js/partner.js", "/static/vendor/jsQR.js",
  ...OFFLINE_MODULES.map((name) => `/static/js/offline/${name}.js`)];

async function keep(path, init = {}) {
  try {
    const response = await fetch(path, { credentials: "same-origin", redirect: "error", ...init });
    if (response.ok) await (await caches.open(CACHE)).put(path, response);
  } catch (_error) {
    /* not reachable now (or a redirect to the login page): cached on the next good load */
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil(Promise.all([PAGE, ...SHELL].map((path) => keep(path))).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

async function networkFirst(request, key) {
  try {
    const response = await fetch(request);
    if (response.ok && !response.redirected) await (await caches.open(CACHE)).put(key, response.clone());
    return response;
  } catch (error) {
    const cached = await caches.match(key);
    if (cached) return cached;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname === PAGE || SHELL.includes(url.pathname)) {
    event.respondWith(networkFirst(event.request, url.pathname));
  }
});
