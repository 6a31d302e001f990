// Small shared widgets: toasts, modal dialogs, error display, progress bars.
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { describeError } from "./api.js";

function toastBox() {
  let box = document.getElementById("toasts");
  if (!box) {
    box = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  return box;
}

/** A short message at the bottom of the screen. kind: info | ok | error. */
export function toast(message, kind = "info", ms = 4000) {
  const el = h("div", { class: `toast toast-${kind}`, "data-testid": "toast" }, message);
  if (kind === "error") el.setAttribute("role", "alert");
  toastBox().append(el);
  setTimeout(() => el.remove(), ms);
  return el;
}

/** Show a server or network error clearly: its translated code, or the server's message. */
export function showError(err, prefixKey = null) {
  const msg = describeError(err);
  return toast(prefixKey ? `${t(prefixKey)}: ${msg}` : msg, "error", 8000);
}

/**
 * A modal dialog; resolves with the value of the pressed action (null on Escape).
 * actions: [{label | i18n, value, kind: "primary" | "danger" | "ghost", testid}]
 */
export function dialog({ title = null, titleKey = null, body = null, actions = [], className = "", dismissable = true }) {
  return new Promise((resolve) => {
    const dlg = h("dialog", { class: ["dialog", className] , "aria-labelledby": "dlg-title" });
    const titleEl = h("h2", { id: "dlg-title", class: "dialog-title" });
    if (titleKey) titleEl.textContent = t(titleKey);
    else if (title) titleEl.textContent = title;
    const bar = h("div", { class: "dialog-actions" });
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(v);
    };
    for (const a of actions) {
      const b = h("button", {
        type: "button",
        class: ["btn", a.kind ? "btn-" + a.kind : ""],
        "data-testid": a.testid || null,
        on: { click: () => finish(a.value) },
      }, a.i18n ? t(a.i18n) : a.label);
      bar.append(b);
    }
    dlg.append(titleEl, body ? h("div", { class: "dialog-body" }, body) : null, bar);
    dlg.addEventListener("cancel", (ev) => {
      if (!dismissable) ev.preventDefault();
      else finish(null);
    });
    document.body.append(dlg);
    dlg.showModal();
    const primary = bar.querySelector(".btn-primary") || bar.querySelector("button");
    if (primary) primary.focus();
  });
}

export function confirmDialog(titleKey, text, { okKey = "common.ok", danger = false } = {}) {
  return dialog({
    titleKey,
    body: text ? h("p", null, text) : null,
    actions: [
      { i18n: "common.cancel", value: false, kind: "ghost", testid: "dlg-cancel" },
      { i18n: okKey, value: true, kind: danger ? "danger" : "primary", testid: "dlg-ok" },
    ],
  }).then((v) => v === true);
}

/** A labelled progress bar: {el, set(fraction, text)}. */
export function progressBar(labelText = "") {
  const bar = h("progress", { max: "100", value: "0" });
  const label = h("span", { class: "progress-label" }, labelText);
  const el = h("div", { class: "progress" }, bar, label);
  return {
    el,
    set(fraction, text) {
      if (fraction === null || fraction === undefined) bar.removeAttribute("value");
      else bar.value = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
      if (text !== undefined) label.textContent = text;
    },
  };
}
