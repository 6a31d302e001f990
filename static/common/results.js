// A poll result: bars per option with counts and percentages, 应投/实投 totals and
// the outcome and rule in words (as the server states them, in both languages).
import { h } from "./dom.js";
import { t, lang, fmtNumber, fmtPercent } from "./i18n.js";

/** Bars per option with counts and percentages, 应投/实投 totals and the outcome in words. */
export function resultView(r) {
  const options = r.options || [];
  const tally = r.tally || [];
  const cast = r.cast ?? tally.reduce((a, b) => a + b, 0);
  const L = lang() === "en" ? "en" : "zh";
  let rows;
  if (r.kind === "rating" && Array.isArray(r.scores)) {
    rows = options.map((label, i) => {
      const sc = r.scores[i] || {};
      const mean = sc.trimmed_mean ?? sc.mean;
      return h("div", { class: "result-row", "data-testid": "result-row" },
        h("span", { class: "result-label" }, label),
        h("span", { class: "result-count" }, mean == null ? "—" : t("vote.mean", { mean: fmtNumber(Number(mean), { maximumFractionDigits: 2 }), n: sc.count ?? 0 })));
    });
  } else {
    const base = cast || 1;
    rows = options.map((label, i) => {
      const n = tally[i] ?? 0;
      const pct = r.percent ? r.percent[i] / 100 : n / base;
      const bar = h("div", { class: "bar" });
      bar.style.setProperty("--w", `${Math.round(pct * 100)}%`);
      const won = (r.outcome?.winners || []).includes(i);
      return h("div", { class: "result-row" + (won ? " won" : ""), "data-testid": "result-row" },
        h("span", { class: "result-label" }, label),
        h("div", { class: "bar-track" }, bar),
        h("span", { class: "result-count" }, `${fmtNumber(n)} (${fmtPercent(pct)})`));
    });
  }
  const o = r.outcome || {};
  const words = o.text ? o.text[L] || o.text.zh : null;
  const outcome = typeof o.passed === "boolean"
    ? h("span", { class: o.passed ? "badge badge-ok big" : "badge badge-danger big", "data-testid": "result-outcome" }, words || t(o.passed ? "vote.passed" : "vote.failed"))
    : words ? h("strong", { "data-testid": "result-outcome" }, words) : null;
  return h("div", { class: "result", "data-testid": "result" },
    h("p", { class: "big" }, r.title || ""),
    rows,
    h("p", { class: "muted", "data-testid": "result-totals" }, t("vote.totals", { eligible: r.eligible ?? 0, voted: cast })),
    outcome ? h("p", { class: "outcome" }, outcome) : null,
    o.rule_text ? h("p", { class: "muted" }, o.rule_text[L] || o.rule_text.zh) : null);
}
