// A finger-signature pad. The signature is kept as vector strokes:
// {width, height, strokes: [[[x, y, ms], …], …]} with x, y in 0..1 of the pad
// and ms since the first touch, so the minutes can redraw it at any size.
import { h } from "../common/dom.js";

export class SignaturePad {
  constructor() {
    this.strokes = [];
    this.t0 = 0;
    this.canvas = h("canvas", { class: "sig-canvas", "data-testid": "signature-pad", i18nAttrs: { "aria-label": "checkin.sign_here" }, role: "img" });
    this.el = h("div", { class: "sig" }, this.canvas);
    this.ctx = this.canvas.getContext("2d");
    this.listeners = new Set();
    this.bind();
    new ResizeObserver(() => this.resize()).observe(this.canvas);
  }

  onChange(fn) {
    this.listeners.add(fn);
  }

  changed() {
    for (const fn of this.listeners) fn(this);
  }

  get empty() {
    return this.strokes.length === 0;
  }

  resize() {
    const r = this.canvas.getBoundingClientRect();
    if (r.width && r.height) this.size = { width: r.width, height: r.height };
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(r.width * dpr));
    this.canvas.height = Math.max(1, Math.round(r.height * dpr));
    this.redraw();
  }

  redraw() {
    const { ctx, canvas } = this;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.lineWidth = Math.max(2, canvas.width / 220);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#0d1b4c";
    for (const s of this.strokes) {
      ctx.beginPath();
      ctx.moveTo(s[0][0] * canvas.width, s[0][1] * canvas.height);
      for (const p of s.slice(1)) ctx.lineTo(p[0] * canvas.width, p[1] * canvas.height);
      if (s.length === 1) ctx.lineTo(s[0][0] * canvas.width + 1, s[0][1] * canvas.height);
      ctx.stroke();
    }
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    this.size = { width: r.width, height: r.height };
    const x = Math.max(0, Math.min(1, (e.clientX - r.left) / r.width));
    const y = Math.max(0, Math.min(1, (e.clientY - r.top) / r.height));
    if (!this.t0) this.t0 = performance.now();
    return [Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000, Math.round(performance.now() - this.t0)];
  }

  bind() {
    let cur = null;
    this.canvas.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      this.canvas.setPointerCapture(e.pointerId);
      cur = [this.point(e)];
      this.strokes.push(cur);
      this.redraw();
    });
    this.canvas.addEventListener("pointermove", (e) => {
      if (!cur) return;
      cur.push(this.point(e));
      this.redraw();
    });
    const up = () => {
      if (cur) { cur = null; this.changed(); }
    };
    this.canvas.addEventListener("pointerup", up);
    this.canvas.addEventListener("pointercancel", up);
  }

  undo() {
    this.strokes.pop();
    this.redraw();
    this.changed();
  }

  clear() {
    this.strokes = [];
    this.t0 = 0;
    this.redraw();
    this.changed();
  }

  /** The signature as vectors (null when empty); at most 4000 points. */
  toJSON() {
    if (this.empty) return null;
    // The pad's size while signing (the dialog may be closed by now, and a detached pad measures 0).
    const r = this.size || this.canvas.getBoundingClientRect();
    let budget = 4000;
    const strokes = [];
    for (const s of this.strokes) {
      if (budget <= 0) break;
      const keep = s.slice(0, budget);
      budget -= keep.length;
      strokes.push(keep);
    }
    const out = { strokes };
    if (r.width >= 1 && r.height >= 1) {
      out.width = Math.round(r.width);
      out.height = Math.round(r.height);
    }
    return out;
  }
}
