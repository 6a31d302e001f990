// The organizer login form, shared by the console and the organizer app.
import { h, fill } from "./dom.js";
import { langButton } from "./i18n.js";
import { createApi, describeError } from "./api.js";
import { setOrgToken } from "./session.js";

/** Render a login form into `root`; resolves with the token once logged in. */
export function loginForm(root, { titleKey = "login.title" } = {}) {
  return new Promise((resolve) => {
    const user = h("input", { type: "text", id: "login-user", autocomplete: "username", required: true, "data-testid": "login-user" });
    const pass = h("input", { type: "password", id: "login-pass", autocomplete: "current-password", required: true, "data-testid": "login-pass" });
    const err = h("p", { class: "error-text", role: "alert", "data-testid": "login-error" });
    const btn = h("button", { type: "submit", class: "btn btn-primary btn-big", i18n: "login.submit", "data-testid": "login-submit" });
    const form = h("form", { class: "login card", novalidate: true },
      h("div", { class: "row" }, h("h1", { class: "grow", i18n: titleKey }), langButton(h)),
      h("div", { class: "field" }, h("label", { for: "login-user", i18n: "login.username" }), user),
      h("div", { class: "field" }, h("label", { for: "login-pass", i18n: "login.password" }), pass),
      err, btn);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      err.textContent = "";
      btn.disabled = true;
      try {
        const r = await createApi().post("/auth/login", { username: user.value.trim(), password: pass.value });
        setOrgToken(r.token);
        resolve(r.token);
      } catch (ex) {
        err.textContent = describeError(ex);
        pass.select();
      } finally {
        btn.disabled = false;
      }
    });
    fill(root, h("main", { class: "login-page" }, form));
    user.focus();
  });
}
