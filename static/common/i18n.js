// Simplified Chinese first, English beside. The choice is per device (localStorage).
import { STRINGS } from "./strings.js";

export const LANGS = ["zh-CN", "en"];
const KEY = "meeting.lang";
const listeners = new Set();

function initial() {
  try {
    const saved = localStorage.getItem(KEY);
    if (LANGS.includes(saved)) return saved;
  } catch { /* storage may be blocked */ }
  return "zh-CN";
}

let current = initial();
document.documentElement.lang = current;

export function lang() {
  return current;
}

export function setLang(l) {
  if (!LANGS.includes(l) || l === current) return;
  current = l;
  try { localStorage.setItem(KEY, l); } catch { /* ignore */ }
  document.documentElement.lang = l;
  for (const fn of listeners) fn(l);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Translate `key`, filling {name} placeholders from `vars` (numbers are localized). */
export function t(key, vars) {
  const s = STRINGS[current]?.[key] ?? STRINGS["zh-CN"][key] ?? key;
  if (!vars) return s;
  return s.replace(/\{(\w+)\}/g, (m, name) => {
    if (!(name in vars)) return m;
    const v = vars[name];
    return typeof v === "number" ? fmtNumber(v) : String(v ?? "");
  });
}

/** Whether a translation exists (for server error codes). */
export function has(key) {
  return key in (STRINGS[current] || {}) || key in STRINGS["zh-CN"];
}

export function fmtNumber(n, opts) {
  return new Intl.NumberFormat(current, opts).format(n);
}

export function fmtPercent(fraction) {
  return new Intl.NumberFormat(current, { style: "percent", maximumFractionDigits: 1 }).format(fraction);
}

export function fmtDateTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return new Intl.DateTimeFormat(current, { dateStyle: "medium", timeStyle: "short" }).format(d);
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = iso instanceof Date ? iso : new Date(iso);
  return new Intl.DateTimeFormat(current, { timeStyle: "short" }).format(d);
}

/** mm:ss for timers. */
export function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

/** A button that switches between 中文 and English. */
export function langButton(h) {
  const btn = h("button", { type: "button", class: "btn btn-ghost lang-switch", "data-testid": "lang-switch" });
  const label = () => {
    btn.textContent = current === "zh-CN" ? "English" : "中文";
    btn.setAttribute("aria-label", current === "zh-CN" ? "Switch to English" : "切换到中文");
    btn.lang = current === "zh-CN" ? "en" : "zh-CN";
  };
  label();
  btn.addEventListener("click", () => setLang(current === "zh-CN" ? "en" : "zh-CN"));
  onLangChange(label);
  return btn;
}
