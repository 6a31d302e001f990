/* The seat tablet's service worker (served at /tablet/sw.js, scope /tablet/).
 *
 * - keeps the app shell, so the tablet reopens without the network;
 * - downloads every page image of every visible document right after joining
 *   (the page asks with a "precache" message) and reports progress, so a page
 *   flip is answered from the cache and never waits for Wi-Fi;
 * - purges documents when they are withdrawn or the meeting ends.
 * Page images are cached under their versioned URL without the access token.
 */
const SHELL_CACHE = "tablet-shell-v1";
const PAGES_CACHE = "tablet-pages-v1";
const SHELL = [
  "/tablet/",
  "/static/common/common.css",
  "/static/common/i18n.js",
  "/static/common/strings.js",
  "/static/common/dom.js",
  "/static/common/api.js",
  "/static/common/socket.js",
  "/static/common/ui.js",
  "/static/tablet/tablet.css",
  "/static/tablet/app.js",
  "/static/tablet/viewer.js",
  "/static/tablet/annotate.js",
  "/static/tablet/signature.js",
  "/static/tablet/offline.js",
  "/static/tablet/vote.js",
  "/static/common/icons.js",
  "/static/common/results.js",
  "/static/vendor/socket.io.esm.min.js",
];
const PAGE_RE = /^\/api\/v1\/documents\/(\d+)\/(pages|thumbs)\/(\d+)$/;
const RETRIES = 30; // per image, Retry-After apart (at most 5 s)
const PARALLEL = 4;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    // One missing file must not stop the others from being cached.
    await Promise.all(SHELL.map((u) => cache.add(new Request(u, { cache: "no-cache" })).catch(() => null)));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name !== SHELL_CACHE && name !== PAGES_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

/** The cache key of a page image: its URL without the access token. */
function pageKey(url) {
  const u = new URL(url, self.location.origin);
  u.searchParams.delete("access_token");
  return u.origin + u.pathname + (u.searchParams.get("v") ? `?v=${u.searchParams.get("v")}` : "");
}

async function fromNetworkOrCache(request, cacheName, timeoutMs = 4000) {
  const cache = await caches.open(cacheName);
  try {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    const resp = await fetch(request, { signal: ctl.signal, cache: "no-cache" });
    clearTimeout(timer);
    if (resp.ok) cache.put(request, resp.clone());
    return resp;
  } catch (e) {
    const hit = await cache.match(request, { ignoreSearch: request.mode === "navigate" });
    if (hit) return hit;
    throw e;
  }
}

async function pageImage(request) {
  const key = pageKey(request.url);
  const cache = await caches.open(PAGES_CACHE);
  const hit = await cache.match(key);
  if (hit) return hit;
  const resp = await fetch(request);
  if (resp.ok && new URL(key).searchParams.get("v")) await cache.put(key, resp.clone());
  return resp;
}

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (PAGE_RE.test(url.pathname) && url.searchParams.get("v")) {
    event.respondWith(pageImage(req));
    return;
  }
  if (req.mode === "navigate" && url.pathname.startsWith("/tablet/")) {
    event.respondWith(fromNetworkOrCache(new Request("/tablet/"), SHELL_CACHE));
    return;
  }
  if (SHELL.includes(url.pathname)) {
    event.respondWith(fromNetworkOrCache(req, SHELL_CACHE));
  }
});

// ---- precaching the meeting's materials ----
let job = null; // {token, wanted: [{key, url}], done, total, failed}

async function broadcast(msg) {
  for (const c of await self.clients.matchAll({ includeUncontrolled: true })) c.postMessage(msg);
}

function pageUrls(doc) {
  const out = [];
  for (let n = 1; n <= (doc.page_count || 0); n++) {
    out.push({ url: doc.pages_url.replace("{n}", String(n)), kind: "page" });
    out.push({ url: doc.thumbs_url.replace("{n}", String(n)), kind: "thumb" });
  }
  return out;
}

async function precache(token, docs) {
  const cache = await caches.open(PAGES_CACHE);
  const all = docs.filter((d) => d.status === "ready").flatMap(pageUrls);
  const missing = [];
  let have = 0;
  for (const it of all) {
    const key = pageKey(it.url);
    if (await cache.match(key)) { if (it.kind === "page") have++; } else missing.push({ ...it, key });
  }
  const total = all.filter((x) => x.kind === "page").length;
  const state = { token, missing, done: have, total, failed: 0 };
  const mine = (job = state);
  await broadcast({ type: "cache-progress", done: state.done, total, failed: 0 });
  async function worker() {
    while (job === mine && mine.missing.length) {
      const it = mine.missing.shift();
      try {
        const resp = await fetch(it.url, { headers: { Authorization: `Bearer ${token}` }, cache: "no-cache" });
        // Not ready yet (a confidential page is being watermarked for this seat: 409 with
        // Retry-After), or the server is busy: try again later, a bounded number of times.
        if ((resp.status === 409 || resp.status === 429 || resp.status === 503) && (it.tries || 0) < RETRIES) {
          it.tries = (it.tries || 0) + 1;
          const after = Math.min(5, Math.max(0.5, Number(resp.headers.get("Retry-After")) || 1));
          await new Promise((resolve) => setTimeout(resolve, after * 1000));
          mine.missing.push(it);
          continue;
        }
        if (!resp.ok) throw new Error(String(resp.status));
        await cache.put(it.key, resp);
        if (it.kind === "page") mine.done++;
      } catch {
        if (it.kind === "page") mine.failed++;
      }
      if (it.kind === "page") await broadcast({ type: "cache-progress", done: mine.done, total, failed: mine.failed });
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  if (job === mine) {
    job = null;
    await broadcast({ type: "cache-done", done: mine.done, total, failed: mine.failed });
  }
}

async function purge(documentIds) {
  const cache = await caches.open(PAGES_CACHE);
  const ids = new Set((documentIds || []).map(String));
  let removed = 0;
  for (const req of await cache.keys()) {
    const m = PAGE_RE.exec(new URL(req.url).pathname);
    if (m && (documentIds === null || ids.has(m[1]))) {
      await cache.delete(req);
      removed++;
    }
  }
  return removed;
}

/** Delete cached versions of documents that are no longer current or visible. */
async function prune(docs) {
  const current = new Set();
  for (const d of docs) current.add(`${d.id}:${d.version}`);
  const cache = await caches.open(PAGES_CACHE);
  let removed = 0;
  for (const req of await cache.keys()) {
    const u = new URL(req.url);
    const m = PAGE_RE.exec(u.pathname);
    if (m && !current.has(`${m[1]}:${u.searchParams.get("v")}`)) {
      await cache.delete(req);
      removed++;
    }
  }
  return removed;
}

self.addEventListener("message", (event) => {
  const msg = event.data || {};
  const reply = (data) => event.source && event.source.postMessage(data);
  if (msg.type === "precache") {
    event.waitUntil((async () => {
      await prune(msg.docs || []);
      await precache(msg.token, msg.docs || []);
    })());
  } else if (msg.type === "purge") {
    event.waitUntil(purge(msg.document_ids).then((n) => reply({ type: "purged", removed: n, document_ids: msg.document_ids })));
  } else if (msg.type === "purge-all") {
    job = null;
    event.waitUntil(purge(null).then((n) => reply({ type: "purged", removed: n, document_ids: null })));
  }
});
