// Private annotations on a page: pen, highlighter, eraser and notes.
// Strokes are vectors in page fractions (0..1), so they survive zoom and
// re-rendering; they are kept on the device at once and handed to a sync
// function (the server's annotation commands) that may queue while offline.
import { h, fill, uid } from "../common/dom.js";
import { dialog } from "../common/ui.js";

/** Ask for a note's text in a dialog; resolves with the text, "" to delete, or null. */
async function askText(initial = "") {
  const area = h("textarea", { class: "ann-note-input", "data-testid": "note-text", maxlength: "2000", i18nAttrs: { "aria-label": "ann.note_prompt" } });
  area.value = initial;
  setTimeout(() => area.focus(), 0);
  const v = await dialog({
    titleKey: "ann.note_prompt",
    body: area,
    actions: [
      { i18n: "common.cancel", value: null, kind: "ghost" },
      initial ? { i18n: "ann.delete_note", value: "", kind: "danger" } : null,
      { i18n: "common.save", value: "save", kind: "primary", testid: "note-save" },
    ].filter(Boolean),
  });
  if (v === "save") return area.value.trim();
  return v;
}

const STYLE = {
  pen: { color: "#c00000", width: 0.004, alpha: 1 },
  highlight: { color: "#ffd400", width: 0.022, alpha: 0.35 },
};

export class AnnotationLayer {
  constructor({ storageKey, sync = null, onStart = () => {} }) {
    this.storageKey = storageKey; // (doc, page) -> localStorage key
    this.sync = sync; // async (doc, page, items, change) => void
    this.onStart = onStart;
    this.tool = null;
    this.items = [];
    this.doc = null;
    this.page = 0;
    this.img = null;
    this.canvas = h("canvas", { class: "ann-canvas", "data-testid": "ann-canvas" });
    this.notes = h("div", { class: "ann-notes" });
    this.el = h("div", { class: "ann-layer" }, this.canvas, this.notes);
    this.ctx = this.canvas.getContext("2d");
    this.bindPointer();
    this.size = null; // from the observer, so a page flip never forces a layout to read it
    this.drawn = true;
    new ResizeObserver((entries) => {
      const r = entries[entries.length - 1].contentRect;
      this.size = { width: r.width, height: r.height };
      this.resize();
    }).observe(this.el);
  }

  get active() {
    return !!this.tool;
  }

  setTool(tool) {
    this.tool = tool;
    this.el.classList.toggle("drawing", !!tool);
    this.el.dataset.tool = tool || "";
  }

  load(doc, page) {
    try {
      const v = JSON.parse(localStorage.getItem(this.storageKey(doc, page)) || "[]");
      return Array.isArray(v) ? v : [];
    } catch {
      return [];
    }
  }

  save(change) {
    if (!this.doc) return;
    if (change?.item) change.item.rev = Math.max(Date.now(), (change.item.rev || 0) + 1);
    try {
      localStorage.setItem(this.storageKey(this.doc, this.page), JSON.stringify(this.items));
    } catch { /* storage full: the server copy still counts */ }
    if (this.sync) this.sync(this.doc, this.page, this.items, change);
  }

  setPage(doc, page, img) {
    this.doc = doc;
    this.page = page;
    this.img = img;
    this.items = this.load(doc, page);
    this.resize();
  }

  /** Replace this page's items with the server's copy (after a reconnect). */
  replace(doc, page, items) {
    try { localStorage.setItem(this.storageKey(doc, page), JSON.stringify(items)); } catch { /* ignore */ }
    if (this.doc && this.doc.id === doc.id && this.page === page) {
      this.items = items;
      this.redraw();
    }
  }

  resize() {
    const r = this.size || this.el.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr));
    const hgt = Math.max(1, Math.round(r.height * dpr));
    if (this.canvas.width !== w || this.canvas.height !== hgt) {
      this.canvas.width = w;
      this.canvas.height = hgt;
    }
    this.redraw();
  }

  redraw() {
    const { ctx, canvas } = this;
    // Flipping between pages without annotations: the canvas is already clear.
    if (!this.items.length && !this.drawn) return;
    this.drawn = this.items.length > 0;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    for (const it of this.items) if (it.kind === "pen" || it.kind === "highlight") this.drawStroke(it);
    const notes = this.items.filter((it) => it.kind === "note").map((it) => {
      const n = h("button", {
        type: "button",
        class: "ann-note",
        "data-testid": "ann-note",
        on: { click: (e) => { e.stopPropagation(); this.editNote(it); } },
      }, it.text || "…");
      n.style.left = `${it.x * 100}%`;
      n.style.top = `${it.y * 100}%`;
      return n;
    });
    fill(this.notes, notes);
  }

  drawStroke(it) {
    const { ctx, canvas } = this;
    const s = STYLE[it.kind];
    const pts = it.points;
    if (!pts || !pts.length) return;
    ctx.save();
    ctx.globalAlpha = s.alpha;
    ctx.strokeStyle = it.color || s.color;
    ctx.lineWidth = Math.max(1, s.width * canvas.width);
    ctx.lineCap = it.kind === "highlight" ? "butt" : "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(pts[0][0] * canvas.width, pts[0][1] * canvas.height);
    for (const [x, y] of pts.slice(1)) ctx.lineTo(x * canvas.width, y * canvas.height);
    if (pts.length === 1) ctx.lineTo(pts[0][0] * canvas.width + 0.5, pts[0][1] * canvas.height);
    ctx.stroke();
    ctx.restore();
  }

  pos(e) {
    const r = this.el.getBoundingClientRect();
    return [
      Math.max(0, Math.min(1, (e.clientX - r.left) / r.width)),
      Math.max(0, Math.min(1, (e.clientY - r.top) / r.height)),
    ];
  }

  bindPointer() {
    let current = null;
    this.el.addEventListener("pointerdown", (e) => {
      if (!this.tool || !this.doc) return;
      e.preventDefault();
      this.onStart();
      const p = this.pos(e);
      if (this.tool === "note") {
        this.addNote(p);
        return;
      }
      this.el.setPointerCapture(e.pointerId);
      if (this.tool === "eraser") {
        current = { kind: "eraser" };
        this.eraseAt(p);
        return;
      }
      current = { id: newId(), kind: this.tool, points: [p.map(round)], at: new Date().toISOString() };
      this.items.push(current);
    });
    this.el.addEventListener("pointermove", (e) => {
      if (!current) return;
      const p = this.pos(e);
      if (current.kind === "eraser") {
        this.eraseAt(p);
        return;
      }
      current.points.push(p.map(round));
      this.redraw();
    });
    const done = () => {
      if (!current) return;
      if (current.kind !== "eraser") this.save({ op: "add", item: current });
      current = null;
      this.redraw();
    };
    this.el.addEventListener("pointerup", done);
    this.el.addEventListener("pointercancel", done);
  }

  eraseAt([x, y]) {
    const r = 0.02;
    const before = this.items.length;
    const removed = [];
    this.items = this.items.filter((it) => {
      if (it.kind === "note") return true;
      const hit = it.points.some(([px, py]) => Math.abs(px - x) < r && Math.abs(py - y) < r);
      if (hit) removed.push(it);
      return !hit;
    });
    if (this.items.length !== before) {
      this.redraw();
      for (const it of removed) this.save({ op: "delete", item: it });
    }
  }

  async addNote([x, y]) {
    const doc = this.doc;
    const page = this.page;
    const text = await askText("");
    if (!text || this.doc !== doc || this.page !== page) return;
    const it = { id: newId(), kind: "note", x: round(x), y: round(y), text: text.slice(0, 2000), at: new Date().toISOString() };
    this.items.push(it);
    this.redraw();
    this.save({ op: "add", item: it });
  }

  async editNote(it) {
    if (this.tool === "eraser") {
      this.items = this.items.filter((x) => x !== it);
      this.redraw();
      this.save({ op: "delete", item: it });
      return;
    }
    const text = await askText(it.text);
    if (text === null || !this.items.includes(it)) return;
    if (!text) {
      this.items = this.items.filter((x) => x !== it);
      this.save({ op: "delete", item: it });
    } else {
      it.text = text.slice(0, 2000);
      this.save({ op: "update", item: it });
    }
    this.redraw();
  }

  clearPage() {
    const removed = this.items;
    this.items = [];
    this.redraw();
    for (const it of removed) this.save({ op: "delete", item: it });
  }
}

function round(v) {
  return Math.round(v * 10000) / 10000;
}

function newId() {
  return uid();
}
