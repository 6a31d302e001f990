// The page side of offline reading: registers the service worker, asks it to
// download the meeting's materials, shows progress, and purges on request.
// Without a service worker (plain http on a LAN address is not a secure
// context) the page warms the browser's HTTP cache instead: the page images
// are immutable, so a flip is still served without the network.

const SW_URL = "/tablet/sw.js";

export class OfflineStore {
  constructor({ onProgress = () => {} } = {}) {
    this.onProgress = onProgress;
    this.reg = null;
    this.mode = "none";
    this.lastDocs = [];
    this.fallbackJob = 0;
  }

  async init() {
    if (!("serviceWorker" in navigator) || !window.isSecureContext) {
      this.mode = "http-cache";
      return this.mode;
    }
    try {
      this.reg = await navigator.serviceWorker.register(SW_URL, { scope: "/tablet/" });
      navigator.serviceWorker.addEventListener("message", (ev) => {
        const m = ev.data || {};
        if (m.type === "cache-progress" || m.type === "cache-done") this.onProgress(m);
      });
      await navigator.serviceWorker.ready;
      this.mode = "service-worker";
    } catch (e) {
      console.warn("service worker unavailable", e);
      this.mode = "http-cache";
    }
    return this.mode;
  }

  async worker() {
    if (this.mode !== "service-worker") return null;
    const reg = await navigator.serviceWorker.ready;
    return reg.active;
  }

  /** Download every page of `docs` (those ready) with the seat's token. */
  async precache(token, docs) {
    const slim = docs.map((d) => ({
      id: d.id, version: d.version, status: d.status, page_count: d.page_count,
      pages_url: d.pages_url, thumbs_url: d.thumbs_url,
    }));
    this.lastDocs = slim;
    const w = await this.worker();
    if (w) {
      w.postMessage({ type: "precache", token, docs: slim });
      return;
    }
    await this.warmHttpCache(token, slim);
  }

  async warmHttpCache(token, docs) {
    const job = ++this.fallbackJob;
    const urls = [];
    for (const d of docs) {
      if (d.status !== "ready") continue;
      for (let n = 1; n <= (d.page_count || 0); n++) urls.push(d.pages_url.replace("{n}", n) + "&access_token=" + encodeURIComponent(token));
    }
    let done = 0;
    let failed = 0;
    const total = urls.length;
    this.onProgress({ type: "cache-progress", done, total, failed });
    const worker = async () => {
      while (urls.length && job === this.fallbackJob) {
        const u = urls.shift();
        try {
          const r = await fetch(u, { cache: "force-cache" });
          await r.arrayBuffer();
          if (r.ok) done++; else failed++;
        } catch {
          failed++;
        }
        this.onProgress({ type: "cache-progress", done, total, failed });
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    if (job === this.fallbackJob) this.onProgress({ type: "cache-done", done, total, failed });
  }

  async purge(documentIds) {
    const w = await this.worker();
    if (w) w.postMessage({ type: "purge", document_ids: documentIds });
  }

  async purgeAll() {
    const w = await this.worker();
    if (w) w.postMessage({ type: "purge-all" });
  }
}
