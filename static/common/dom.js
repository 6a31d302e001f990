// Escape-by-construction DOM helpers. User text (titles, names, options) only
// ever reaches the page as text nodes or textContent: never innerHTML.
import { t, onLangChange } from "./i18n.js";

const BOOL_ATTRS = new Set(["disabled", "checked", "hidden", "required", "multiple", "selected", "readonly", "open"]);

/**
 * h("button", {class: "btn", on: {click: fn}, i18n: "checkin.button"}, "child", otherNode)
 * props: class, id, text, i18n (key: text that follows the language), i18nVars,
 * on (event -> handler), dataset, any other attribute (set with setAttribute;
 * `style` is refused: the CSP forbids inline styles, use classes or el.style).
 */
export function h(tag, props = null, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = Array.isArray(v) ? v.filter(Boolean).join(" ") : v;
      else if (k === "text") el.textContent = String(v);
      else if (k === "i18n") bindText(el, v, props.i18nVars);
      else if (k === "i18nVars") continue;
      else if (k === "i18nAttrs") bindAttrs(el, v);
      else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k === "style") throw new Error("inline style attributes are blocked by the CSP");
      else if (k === "value") {
        if (el.tagName === "INPUT") el.setAttribute("value", String(v));
        el.value = v;
      }
      else if (BOOL_ATTRS.has(k)) { if (v) el.setAttribute(k, ""); el[k] = !!v; }
      else if (k.startsWith("on")) throw new Error("use on: {event: fn}");
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replace every child of `el` with `children` (text or nodes). */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

function bindText(el, key, vars) {
  el.dataset.i18n = key;
  if (vars) el._i18nVars = vars;
  el.textContent = t(key, vars);
}

function bindAttrs(el, map) {
  el._i18nAttrs = map;
  for (const [attr, key] of Object.entries(map)) el.setAttribute(attr, t(key));
  el.dataset.i18nAttrs = "1";
}

/** Re-translate static markup: [data-i18n], [data-i18n-placeholder|aria-label|title]. */
export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n, el._i18nVars);
  for (const attr of ["placeholder", "aria-label", "title", "alt"]) {
    const data = "i18n" + attr.replace(/(^|-)(\w)/g, (_m, _d, c) => c.toUpperCase());
    for (const el of root.querySelectorAll(`[data-i18n-${attr}]`)) el.setAttribute(attr, t(el.dataset[data]));
  }
  for (const el of root.querySelectorAll("[data-i18n-attrs]")) {
    for (const [attr, key] of Object.entries(el._i18nAttrs || {})) el.setAttribute(attr, t(key));
  }
}

onLangChange(() => translate(document));

/** A labelled form field: <label>text <input></label>, with an id for tests. */
export function field(labelKey, input, hintKey = null) {
  const id = input.id || "f-" + Math.random().toString(36).slice(2, 9);
  input.id = id;
  return h("div", { class: "field" },
    h("label", { for: id, i18n: labelKey }),
    input,
    hintKey ? h("small", { class: "hint", i18n: hintKey }) : null);
}

/** Show an element (remove `hidden`) or hide it. */
export function show(el, visible = true) {
  el.hidden = !visible;
  return el;
}

/** A random UUID (crypto.randomUUID exists only in secure contexts; a LAN http address is not one). */
export function uid() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
