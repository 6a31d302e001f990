// The page viewer: decoded images kept ready, swipe and buttons, zoom, thumbnails.
// A flip swaps in an <img> that is already decoded, so painting never waits.
import { h, fill } from "../common/dom.js";
import { t } from "../common/i18n.js";

const POOL_SIZE = 8;
const paintChannel = new MessageChannel();
const paintQueue = [];
paintChannel.port1.onmessage = () => paintQueue.shift()?.();

/** Run `fn` in the first task after the current frame is painted. */
function afterPaint(fn) {
  paintQueue.push(fn);
  paintChannel.port2.postMessage(0);
}
const ZOOMS = [1, 1.5, 2, 3, 4];

export class Viewer {
  /**
   * urls: {page(doc, n), thumb(doc, n)}; onNavigate({document_id, page}, byUser)
   * is called when the user flips (the app then switches to browsing).
   */
  constructor({ urls, onNavigate, overlay = null }) {
    this.urls = urls;
    this.onNavigate = onNavigate;
    this.doc = null;
    this.page = 1;
    this.zoom = 1;
    this.pool = new Map(); // url -> {img, ready: Promise}
    this.showToken = 0;
    this.overlay = overlay; // the annotation layer, laid over the image
    this.build();
  }

  build() {
    this.img = h("img", { class: "page-img", alt: "", draggable: "false", "data-testid": "page-img" });
    this.sheet = h("div", { class: "sheet" }, this.img);
    this.scroller = h("div", { class: "stage-scroll", "data-testid": "stage" }, this.sheet);
    this.empty = h("div", { class: "stage-empty", i18n: "viewer.nothing" });
    this.prevBtn = h("button", { type: "button", class: "btn flip flip-prev", "data-testid": "prev", i18nAttrs: { "aria-label": "viewer.prev" }, on: { click: () => this.step(-1) } }, "‹");
    this.nextBtn = h("button", { type: "button", class: "btn flip flip-next", "data-testid": "next", i18nAttrs: { "aria-label": "viewer.next" }, on: { click: () => this.step(1) } }, "›");
    this.stage = h("div", { class: "stage" }, this.scroller, this.empty, this.prevBtn, this.nextBtn);
    this.pageLabel = h("span", { class: "page-label", "data-testid": "page-label", "aria-live": "polite" });
    this.zoomLabel = h("span", { class: "zoom-label", "aria-live": "polite" }, "100%");
    this.zoomOut = h("button", { type: "button", class: "btn", i18nAttrs: { "aria-label": "viewer.zoom_out" }, on: { click: () => this.setZoom(this.zoomStep(-1)) } }, "−");
    this.zoomIn = h("button", { type: "button", class: "btn", "data-testid": "zoom-in", i18nAttrs: { "aria-label": "viewer.zoom_in" }, on: { click: () => this.setZoom(this.zoomStep(1)) } }, "+");
    this.zoomReset = h("button", { type: "button", class: "btn btn-ghost", on: { click: () => this.setZoom(1) } }, this.zoomLabel);
    this.thumbs = h("div", { class: "thumbs", role: "listbox", "data-testid": "thumbs", i18nAttrs: { "aria-label": "viewer.thumbnails" } });
    this.el = h("div", { class: "viewer" }, this.stage, this.thumbs);
    this.live = new LiveLayer(this);
    this.sheet.append(this.live.el);
    if (this.overlay) this.sheet.append(this.overlay.el);
    this.gestures();
    // The stage's size, kept from the observer: a flip never forces a layout to read it.
    this.size = { w: 0, h: 0 };
    new ResizeObserver((entries) => {
      const r = entries[entries.length - 1].contentRect;
      this.size = { w: this.scroller.clientWidth || r.width, h: this.scroller.clientHeight || r.height };
      this.layout();
    }).observe(this.scroller);
  }

  zoomStep(dir) {
    const i = ZOOMS.findIndex((z) => z >= this.zoom - 0.01);
    return ZOOMS[Math.max(0, Math.min(ZOOMS.length - 1, (i < 0 ? 0 : i) + dir))];
  }

  setZoom(z) {
    const prev = this.zoom;
    this.zoom = Math.max(1, Math.min(4, z));
    // Keep the centre of the view where it was.
    const sc = this.scroller;
    const cx = (sc.scrollLeft + sc.clientWidth / 2) / (sc.scrollWidth || 1);
    const cy = (sc.scrollTop + sc.clientHeight / 2) / (sc.scrollHeight || 1);
    this.layout();
    this.sheet.classList.toggle("zoomed", this.zoom > 1);
    this.zoomLabel.textContent = `${Math.round(this.zoom * 100)}%`;
    if (prev !== this.zoom) {
      sc.scrollLeft = cx * sc.scrollWidth - sc.clientWidth / 2;
      sc.scrollTop = cy * sc.scrollHeight - sc.clientHeight / 2;
    }
  }

  /** Fit the page in the stage at 100% ("contain"), scaled by the zoom. */
  layout() {
    const img = this.img;
    const nw = img.naturalWidth || 1131;
    const nh = img.naturalHeight || 1600;
    let { w: sw, h: sh } = this.size;
    if (!sw || !sh) {
      sw = this.scroller.clientWidth;
      sh = this.scroller.clientHeight;
      if (!sw || !sh) return;
      this.size = { w: sw, h: sh };
    }
    const pad = 8;
    const fit = Math.min((sw - 2 * pad) / nw, (sh - 2 * pad) / nh);
    const w = Math.max(1, Math.round(nw * fit * this.zoom));
    const ht = Math.max(1, Math.round(nh * fit * this.zoom));
    if (this.sheet.style.width !== `${w}px` || this.sheet.style.height !== `${ht}px`) {
      this.sheet.style.width = `${w}px`;
      this.sheet.style.height = `${ht}px`;
      if (this.overlay) this.overlay.resize();
    }
    const top = `${Math.max(pad, Math.round((sh - ht) / 2))}px`;
    if (this.sheet.style.marginTop !== top) this.sheet.style.marginTop = top;
    if (this.sheet.style.marginBottom !== `${pad}px`) this.sheet.style.marginBottom = `${pad}px`;
  }

  /** Apply the presenter's zoom and scroll (`null`: fit the page). */
  applyView(view) {
    if (!view) {
      // Fit: nothing to do (and no layout to read) when the page is already at 100%.
      if (this.zoom !== 1) this.setZoom(1);
      return;
    }
    this.setZoom(Math.max(1, Math.min(4, view.zoom || 1)));
    const sc = this.scroller;
    sc.scrollLeft = (view.x || 0) * this.sheet.offsetWidth;
    sc.scrollTop = (view.y || 0) * this.sheet.offsetHeight + this.sheet.offsetTop;
  }

  pageCount() {
    return this.doc?.page_count || 0;
  }

  step(dir) {
    if (!this.doc) return;
    const n = this.page + dir;
    if (n < 1 || n > this.pageCount()) return;
    this.onNavigate({ document_id: this.doc.id, page: n }, true);
  }

  /** Keep a decoded image for `url`; resolves when it can be painted at once. */
  prepare(url) {
    let e = this.pool.get(url);
    if (e) {
      this.pool.delete(url); // LRU: re-insert at the end
      this.pool.set(url, e);
      return e;
    }
    const img = new Image();
    img.className = "page-img";
    img.alt = "";
    img.draggable = false;
    img.decoding = "async";
    img.dataset.testid = "page-img";
    img.src = url;
    const ready = img.decode().then(() => true, () => false);
    e = { img, ready, url };
    this.pool.set(url, e);
    while (this.pool.size > POOL_SIZE) {
      const [oldUrl, old] = this.pool.entries().next().value;
      if (old.img === this.img) { this.pool.delete(oldUrl); this.pool.set(oldUrl, old); break; }
      this.pool.delete(oldUrl);
    }
    return e;
  }

  /** Show page `n` of `doc`; the newest call wins when several overlap. */
  async show(doc, n, view = undefined, attempt = 0) {
    const token = ++this.showToken;
    const docChanged = !this.doc || doc.id !== this.doc.id || doc.version !== this.doc.version;
    this.doc = doc;
    this.page = Math.max(1, Math.min(n, doc.page_count || n));
    this.empty.hidden = true;
    this.scroller.hidden = false;
    if (docChanged) this.renderThumbs();
    this.updateChrome();
    const url = this.urls.page(doc, this.page);
    const entry = this.prepare(url);
    const ok = await entry.ready;
    if (token !== this.showToken) return; // overtaken by a newer flip
    const decoded = performance.timeOrigin + performance.now();
    performance.mark("flip-decoded");
    if (this.img !== entry.img) {
      this.img.replaceWith(entry.img);
      this.img = entry.img;
    }
    this.layout();
    if (view !== undefined) this.applyView(view);
    this.live.redraw();
    this.img.alt = t("viewer.page_alt", { title: doc.title, n: this.page });
    this.img.classList.toggle("broken", !ok);
    if (this.overlay) this.overlay.setPage(doc, this.page, this.img);
    if (!ok) {
      // Not in the cache and not ready on the server yet (a confidential page is watermarked for
      // this seat on first request), or the network failed: forget it and try again shortly.
      this.pool.delete(url);
      if (attempt < 10) {
        setTimeout(() => { if (token === this.showToken) this.show(doc, n, view, attempt + 1); }, 1000 + attempt * 500);
      }
    }
    // Mark the moment the new page is on screen: the frame after this change has been
    // painted once the task queued from its animation-frame callback runs.
    const page = this.page;
    const swapped = performance.timeOrigin + performance.now();
    performance.mark("flip-swapped");
    requestAnimationFrame(() => afterPaint(() => {
      if (token !== this.showToken) return;
      const at = performance.timeOrigin + performance.now();
      performance.mark("flip-painted");
      this.el.dataset.shown = `${doc.id}:${page}`;
      window.__lastPaint = { document_id: doc.id, page, at, ok, decoded, swapped };
      window.dispatchEvent(new CustomEvent("page-painted", { detail: window.__lastPaint }));
      // Only now the work the new page does not need: decoding the neighbours (so it does not
      // compete with this paint) and scrolling the thumbnail strip.
      this.preloadAround();
      this.scrollThumb();
    }));
  }

  scrollThumb() {
    if (this.thumbs.hidden || !this.thumbs.isConnected) return;
    const b = this.thumbs.children[this.page - 1];
    if (b && b.dataset.page === String(this.page)) b.scrollIntoView({ block: "nearest", inline: "center" });
  }

  preloadAround() {
    if (!this.doc) return;
    for (const d of [1, 2, -1]) {
      const n = this.page + d;
      if (n >= 1 && n <= this.pageCount()) this.prepare(this.urls.page(this.doc, n));
    }
  }

  /** Drop the decoded pages of these documents (withdrawn, or confidential after the meeting). */
  forget(documentIds) {
    const ids = new Set(documentIds.map(String));
    for (const [url, e] of [...this.pool]) {
      const m = /\/documents\/(\d+)\//.exec(url);
      if (m && ids.has(m[1])) {
        this.pool.delete(url);
        if (e.img !== this.img) e.img.src = "";
      }
    }
    for (const b of this.thumbs.querySelectorAll("img")) {
      if ([...ids].some((id) => b.src.includes(`/documents/${id}/`))) b.removeAttribute("src");
    }
  }

  clear() {
    this.doc = null;
    this.showToken++;
    this.empty.hidden = false;
    this.scroller.hidden = true;
    fill(this.thumbs);
    this.updateChrome();
  }

  updateChrome() {
    const count = this.pageCount();
    this.pageLabel.textContent = this.doc ? t("viewer.page_of", { n: this.page, count }) : "";
    this.prevBtn.disabled = !this.doc || this.page <= 1;
    this.nextBtn.disabled = !this.doc || this.page >= count;
    // Only the two thumbnails that change (no layout read here: scrolling waits for the paint).
    const sel = this.doc ? String(this.page) : "";
    if (this.selectedThumb && this.selectedThumb.dataset.page !== sel) this.selectedThumb.setAttribute("aria-selected", "false");
    const b = this.doc ? this.thumbs.children[this.page - 1] : null;
    this.selectedThumb = b && b.dataset.page === sel ? b : null;
    if (this.selectedThumb) this.selectedThumb.setAttribute("aria-selected", "true");
  }

  renderThumbs() {
    const doc = this.doc;
    const items = [];
    for (let n = 1; n <= (doc.page_count || 0); n++) {
      items.push(h("button", {
        type: "button",
        class: "thumb",
        role: "option",
        "data-page": String(n),
        "aria-selected": "false",
        on: { click: () => this.onNavigate({ document_id: doc.id, page: n }, true) },
      },
      h("img", { src: this.urls.thumb(doc, n), alt: "", loading: "lazy", draggable: "false" }),
      h("span", { class: "thumb-n" }, String(n))));
    }
    fill(this.thumbs, items);
    this.selectedThumb = null;
  }

  /** Swipe to flip (at 100%), pinch or double-tap to zoom, keyboard arrows. */
  gestures() {
    const pts = new Map();
    let start = null;
    let pinch = null;
    let lastTap = 0;
    const sc = this.scroller;
    sc.addEventListener("pointerdown", (e) => {
      if (this.overlay?.active) return;
      pts.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (pts.size === 1) start = { x: e.clientX, y: e.clientY, t: performance.now() };
      if (pts.size === 2) {
        const [a, b] = [...pts.values()];
        pinch = { d: Math.hypot(a.x - b.x, a.y - b.y), zoom: this.zoom };
        start = null;
      }
    });
    sc.addEventListener("pointermove", (e) => {
      if (!pts.has(e.pointerId)) return;
      pts.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (pinch && pts.size === 2) {
        const [a, b] = [...pts.values()];
        const d = Math.hypot(a.x - b.x, a.y - b.y);
        if (pinch.d > 0) this.setZoom(pinch.zoom * (d / pinch.d));
      }
    });
    const end = (e) => {
      if (!pts.has(e.pointerId)) return;
      pts.delete(e.pointerId);
      if (pts.size < 2) pinch = null;
      if (!start || pts.size) return;
      const dx = e.clientX - start.x;
      const dy = e.clientY - start.y;
      const dt = performance.now() - start.t;
      start = null;
      if (this.zoom <= 1.01 && Math.abs(dx) > 60 && Math.abs(dx) > 1.5 * Math.abs(dy) && dt < 800) {
        this.step(dx < 0 ? 1 : -1);
        return;
      }
      if (Math.abs(dx) < 10 && Math.abs(dy) < 10 && e.pointerType !== "mouse") {
        const now = performance.now();
        if (now - lastTap < 300) { this.setZoom(this.zoom > 1 ? 1 : 2); lastTap = 0; } else lastTap = now;
      }
    };
    sc.addEventListener("pointerup", end);
    sc.addEventListener("pointercancel", (e) => { pts.delete(e.pointerId); start = null; pinch = null; });
    sc.addEventListener("dblclick", () => this.setZoom(this.zoom > 1 ? 1 : 2));
    sc.addEventListener("wheel", (e) => {
      if (!e.ctrlKey) return;
      e.preventDefault();
      this.setZoom(this.zoom * (e.deltaY < 0 ? 1.1 : 1 / 1.1));
    }, { passive: false });
  }
}

/** The presenter's pointer and temporary ink over the page (never stored). */
class LiveLayer {
  constructor(viewer) {
    this.viewer = viewer;
    this.canvas = h("canvas", { class: "live-canvas" });
    this.dot = h("div", { class: "live-pointer", hidden: true, "data-testid": "live-pointer" });
    this.el = h("div", { class: "live-layer" }, this.canvas, this.dot);
    this.strokes = new Map(); // "by|stroke_id" -> {points, color, width, document_id, page}
    this.shown = []; // a seat's shared annotations the presenter shows to the room: {document_id, page, points, color, width}
    this.lastN = new Map(); // by -> n of the last pointer
    this.size = null;
    this.drawn = false; // anything on the canvas now
    new ResizeObserver((entries) => {
      const r = entries[entries.length - 1].contentRect;
      this.size = { width: r.width, height: r.height };
      this.redraw(true);
    }).observe(this.el);
  }

  onThisPage(msg) {
    const v = this.viewer;
    if (!v.doc) return false;
    if (msg.document_id == null) return true;
    return msg.document_id === v.doc.id && msg.page === v.page;
  }

  pointer(p) {
    if (typeof p.n === "number") {
      if (p.n < (this.lastN.get(p.by) ?? -1)) return;
      this.lastN.set(p.by, p.n);
    }
    const show = p.visible !== false && this.onThisPage(p);
    this.dot.hidden = !show;
    if (show) {
      this.dot.style.left = `${p.x * 100}%`;
      this.dot.style.top = `${p.y * 100}%`;
    }
  }

  ink(i) {
    const key = `${i.by}|${i.stroke_id}`;
    let s = this.strokes.get(key);
    if (!s) {
      s = { points: [], color: i.color || "#e00000", width: i.width || 4, document_id: i.document_id, page: i.page };
      this.strokes.set(key, s);
    }
    s.points.push(...(i.points || []));
    this.redraw();
  }

  clear(c = {}) {
    if (c.reason === "presenter" && c.stroke_id) this.strokes.delete(`${c.by}|${c.stroke_id}`);
    else if (c.reason === "presenter" && c.by) {
      for (const k of [...this.strokes.keys()]) if (k.startsWith(`${c.by}|`)) this.strokes.delete(k);
    } else {
      this.strokes.clear();
      this.dot.hidden = true;
    }
    this.redraw();
  }

  /** The annotations the presenter shows to the room (page fractions), [] to hide them. */
  setShown(list) {
    this.shown = list || [];
    this.redraw(true);
  }

  redraw(resized = false) {
    // A flip with no presenter ink: nothing to clear, and no layout to read.
    if (!resized && !this.drawn && !this.strokes.size && !this.shown.length) return;
    const r = this.size || this.el.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr));
    const ht = Math.max(1, Math.round(r.height * dpr));
    if (this.canvas.width !== w || this.canvas.height !== ht) { this.canvas.width = w; this.canvas.height = ht; }
    const ctx = this.canvas.getContext("2d");
    ctx.clearRect(0, 0, w, ht);
    this.drawn = false;
    for (const s of [...this.shown, ...this.strokes.values()]) {
      if (!this.onThisPage(s) || !s.points.length) continue;
      this.drawn = true;
      ctx.strokeStyle = s.color;
      ctx.lineWidth = Math.max(1, (s.width * w) / 1000);
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.beginPath();
      ctx.moveTo(s.points[0][0] * w, s.points[0][1] * ht);
      for (const [x, y] of s.points.slice(1)) ctx.lineTo(x * w, y * ht);
      ctx.stroke();
    }
  }
}
