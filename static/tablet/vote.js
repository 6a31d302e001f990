// Voting on the tablet: choose, confirm, send (queued with a ballot_id while
// offline), show the receipt; results stay on screen until dismissed.
// Progress updates (others voting) never touch the ballot being filled in.
import { h, fill, uid } from "../common/dom.js";
import { t, fmtTime, fmtDuration } from "../common/i18n.js";
import { describeError } from "../common/api.js";
import { dialog } from "../common/ui.js";
import { resultView } from "../common/results.js";

const VOTERS = new Set(["attendee", "chair", "presenter"]);

export class VotePanel {
  constructor({ send, storageKey, onCheckin, onAttention }) {
    this.send = send; // (payload) -> Promise<ack>
    this.storageKey = storageKey;
    this.onCheckin = onCheckin;
    this.onAttention = onAttention; // a poll opened or a result came: bring the panel forward
    this.poll = null;
    this.me = null;
    this.selected = new Set(); // chosen option indexes
    this.scores = []; // rating: a score (or null) per item
    this.changing = false; // re-voting where the poll allows a change
    this.ballots = this.loadBallots(); // poll id -> {ballot_id, choices, receipt, at, pending, error}
    this.results = []; // shown results, newest first
    this.resultDialogs = new Map(); // poll id -> <dialog>
    this.progressEl = h("p", { class: "vote-progress", "data-testid": "vote-progress", "aria-live": "polite" });
    this.countdownEl = h("p", { class: "vote-countdown", "data-testid": "vote-countdown", hidden: true });
    this.body = h("div", { class: "vote-body" });
    this.resultsEl = h("div", { class: "vote-results" });
    this.el = h("section", { class: "panel vote", "data-testid": "vote-panel", "aria-labelledby": "vote-h" },
      h("h2", { id: "vote-h", i18n: "vote.title" }),
      this.body,
      this.resultsEl);
    setInterval(() => this.tick(), 500);
    this.render();
  }

  loadBallots() {
    try { return JSON.parse(localStorage.getItem(this.storageKey) || "{}") || {}; } catch { return {}; }
  }

  saveBallots() {
    try { localStorage.setItem(this.storageKey, JSON.stringify(this.ballots)); } catch { /* ignore */ }
  }

  setMe(me) {
    this.me = me;
    this.render();
  }

  /** `state.my_vote`: what the server knows of this seat's ballot (after a reload or on another device). */
  setMyVote(mv) {
    if (!mv || !mv.voted) return;
    const b = this.ballots[mv.poll_id];
    if (!b || (!b.receipt && !b.pending)) {
      this.ballots[mv.poll_id] = { ...(b || {}), receipt: mv.receipt || b?.receipt || null, choices: mv.choices ?? b?.choices, voted: true, pending: false };
      this.saveBallots();
    }
    this.render();
  }

  /** A poll snapshot (`state.poll` or the `poll` event). */
  setPoll(poll) {
    if (!poll) {
      if (this.poll && this.poll.status === "open") this.poll = { ...this.poll, status: "closed" };
      this.render();
      return;
    }
    const isNew = !this.poll || this.poll.id !== poll.id;
    if (poll.status === "open") {
      if (isNew) { this.selected = new Set(); this.scores = []; this.changing = false; }
      const wasOpen = !isNew && this.poll.status === "open";
      this.poll = { ...poll };
      if (!wasOpen) this.onAttention("poll");
    } else if (!isNew || !this.poll || this.poll.status !== "open") {
      this.poll = { ...(isNew ? {} : this.poll), ...poll };
    }
    this.render();
  }

  progress(p) {
    if (!this.poll || p.id !== this.poll.id) return;
    this.poll.voted = p.voted;
    this.poll.eligible = p.eligible;
    this.renderProgress();
  }

  /** A result (`poll.result`, or `state.poll_result` after a reconnect): held until dismissed. */
  result(r, { announce = true } = {}) {
    const known = this.results.some((x) => x.id === r.id);
    this.results = [r, ...this.results.filter((x) => x.id !== r.id)];
    if (this.poll && this.poll.id === r.id) this.poll = { ...this.poll, status: "closed" };
    this.render();
    if (announce && !known) this.showResult(r);
  }

  /** The chair took the result off the screens. */
  dismissed(id) {
    const dlg = this.resultDialogs.get(id);
    if (dlg) { dlg.close(); dlg.remove(); this.resultDialogs.delete(id); }
  }

  renderProgress() {
    const p = this.poll;
    if (!p) return;
    this.progressEl.textContent = t("vote.progress", { voted: p.voted ?? 0, eligible: p.eligible ?? 0 });
  }

  tick() {
    const p = this.poll;
    if (!p || p.status !== "open" || !p.closes_at) { this.countdownEl.hidden = true; return; }
    const left = (Date.parse(p.closes_at) - (Date.now() + (this.clockOffset || 0))) / 1000;
    this.countdownEl.hidden = false;
    this.countdownEl.textContent = t("vote.closes_in", { time: fmtDuration(Math.max(0, left)) });
    this.countdownEl.classList.toggle("urgent", left < 10);
  }

  canVote() {
    return this.me && VOTERS.has(this.me.role);
  }

  render() {
    const p = this.poll;
    if (!p || p.status !== "open") {
      const waiting = p && p.status === "closed" && this.ballots[p.id]?.receipt && !this.results.some((r) => r.id === p.id);
      fill(this.body,
        h("p", { class: "muted big", i18n: waiting ? "vote.closed_waiting" : "vote.none" }),
        p && p.status === "cancelled" ? h("p", { class: "notice", i18n: "vote.cancelled" }) : null,
        p ? this.receiptView(p) : null);
      this.renderResultsList();
      return;
    }
    const ballot = this.ballots[p.id];
    const head = [
      h("h3", { class: "poll-title", "data-testid": "poll-title" }, p.title),
      h("p", { class: "row" },
        h("span", { class: p.secret ? "badge badge-primary" : "badge", i18n: p.secret ? "vote.secret" : "vote.named" }),
        p.round > 1 ? h("span", { class: "badge" }, t("vote.round", { n: p.round })) : null,
        h("span", { class: "muted" }, this.choiceHint(p))),
      this.progressEl,
      this.countdownEl,
    ];
    this.renderProgress();
    this.tick();
    if (!this.canVote()) {
      fill(this.body, head, h("p", { class: "notice", i18n: "vote.not_voter" }));
    } else if (ballot && (ballot.receipt || ballot.pending || ballot.voted) && !this.changing) {
      fill(this.body, head, this.receiptView(p),
        p.allow_change && !ballot.pending && ballot.ballot_id
          ? h("button", { type: "button", class: "btn", i18n: "vote.change", "data-testid": "vote-change", on: { click: () => { this.changing = true; this.render(); } } })
          : null);
    } else if (this.me && !this.me.checked_in) {
      fill(this.body, head,
        h("p", { class: "notice", i18n: "vote.checkin_first" }),
        h("button", { type: "button", class: "btn btn-primary btn-big", i18n: "checkin.button", on: { click: () => this.onCheckin() } }));
    } else {
      fill(this.body, head, p.kind === "rating" ? this.ratingForm(p) : this.ballotForm(p),
        ballot?.error ? h("p", { class: "error-text", role: "alert", "data-testid": "vote-error" }, ballot.error) : null);
    }
    this.renderResultsList();
  }

  choiceHint(p) {
    if (p.kind === "rating") return t("vote.rate_hint", { min: p.scale?.min ?? 0, max: p.scale?.max ?? 10 });
    const max = p.max_choices || 1;
    const min = p.min_choices ?? 1;
    if (p.kind === "election") return t("vote.elect_hint", { seats: p.seats || max, n: max });
    if (max === 1) return t("vote.choose_one");
    if (min > 1 && min === max) return t("vote.choose_exactly", { n: max });
    return t("vote.choose_up_to", { n: max });
  }

  submitButton(p, valid) {
    const b = h("button", { type: "button", class: "btn btn-primary btn-big", "data-testid": "vote-submit", i18n: "vote.submit", on: { click: () => this.confirm(p) } });
    b.disabled = !valid();
    return b;
  }

  ballotForm(p) {
    const max = p.max_choices || 1;
    const min = p.min_choices ?? 1;
    const abstain = p.abstain_option;
    const list = h("div", { class: "options", role: max === 1 ? "radiogroup" : "group", "aria-labelledby": "vote-h" });
    const valid = () => this.selected.size >= min && this.selected.size <= max && (this.selected.size > 0 || min === 0);
    const submit = this.submitButton(p, valid);
    const sync = () => {
      for (const b of list.children) b.setAttribute("aria-checked", this.selected.has(Number(b.dataset.index)) ? "true" : "false");
      submit.disabled = !valid();
    };
    p.options.forEach((label, i) => {
      list.append(h("button", {
        type: "button",
        class: "option" + (i === abstain ? " abstain" : ""),
        role: max === 1 ? "radio" : "checkbox",
        "aria-checked": "false",
        "data-index": String(i),
        "data-testid": "vote-option",
        on: {
          click: () => {
            if (max === 1 || i === abstain) this.selected = this.selected.has(i) && max > 1 ? new Set() : new Set([i]);
            else if (this.selected.has(i)) this.selected.delete(i);
            else {
              if (abstain != null) this.selected.delete(abstain);
              if (this.selected.size < max) this.selected.add(i);
            }
            sync();
          },
        },
      }, h("span", { class: "option-mark", "aria-hidden": "true" }), h("span", { class: "option-label" }, label)));
    });
    sync();
    return h("div", { class: "ballot" }, list, h("div", { class: "btn-row" }, submit));
  }

  ratingForm(p) {
    const lo = p.scale?.min ?? 0;
    const hi = p.scale?.max ?? 10;
    if (this.scores.length !== p.options.length) this.scores = p.options.map(() => null);
    const submit = this.submitButton(p, () => this.scores.some((x) => x !== null));
    const rows = p.options.map((label, i) => {
      const sel = h("select", { "data-testid": "vote-score", "aria-label": label },
        h("option", { value: "" }, t("vote.no_score")),
        Array.from({ length: hi - lo + 1 }, (_, k) => h("option", { value: String(lo + k) }, String(lo + k))));
      sel.value = this.scores[i] === null ? "" : String(this.scores[i]);
      sel.addEventListener("change", () => {
        this.scores[i] = sel.value === "" ? null : Number(sel.value);
        submit.disabled = !this.scores.some((x) => x !== null);
      });
      return h("div", { class: "rating-row" }, h("span", { class: "option-label" }, label), sel);
    });
    return h("div", { class: "ballot" }, h("div", { class: "rating" }, rows), h("div", { class: "btn-row" }, submit));
  }

  describeChoices(p, choices) {
    if (p.kind === "rating") return p.options.map((o, i) => `${o}: ${choices[i] === null ? t("vote.no_score") : choices[i]}`);
    return choices.map((i) => p.options[i]);
  }

  async confirm(p) {
    const choices = p.kind === "rating" ? [...this.scores] : [...this.selected].sort((a, b) => a - b);
    const ok = await confirmBallot(p, this.describeChoices(p, choices));
    if (!ok) return;
    const previous = this.changing ? this.ballots[p.id]?.ballot_id : null;
    const ballot = { ballot_id: uid(), choices, pending: true, at: new Date().toISOString() };
    this.ballots[p.id] = ballot;
    this.changing = false;
    this.saveBallots();
    this.render();
    const payload = { poll_id: p.id, choices, ballot_id: ballot.ballot_id };
    if (previous) payload.previous_ballot_id = previous;
    const ack = await this.send(payload);
    this.acked(p.id, ballot.ballot_id, ack);
  }

  /** An answer to a vote (also for one resent from the outbox after a reload). */
  acked(pollId, ballotId, ack) {
    const b = this.ballots[pollId];
    if (!b || b.ballot_id !== ballotId) return;
    b.pending = false;
    if (ack?.ok) {
      b.receipt = ack.receipt;
      b.at = new Date().toISOString();
    } else if (ack?.error?.code === "already_voted") {
      b.voted = true;
      b.error = null;
    } else {
      this.ballots[pollId] = { error: describeError(ack?.error || { code: "no_answer" }) };
    }
    this.saveBallots();
    this.render();
  }

  receiptView(p) {
    const b = this.ballots[p.id];
    if (!b || (!b.receipt && !b.pending && !b.voted)) return null;
    if (b.pending) {
      return h("div", { class: "receipt pending", "data-testid": "vote-pending", role: "status" },
        h("p", { class: "big", i18n: "vote.sending" }),
        h("p", { class: "muted", i18n: "vote.sending_offline" }));
    }
    return h("div", { class: "receipt", "data-testid": "vote-receipt", role: "status" },
      h("p", { class: "big ok", i18n: "vote.recorded" }),
      b.choices ? h("ul", { class: "chosen" }, this.describeChoices(p, b.choices).map((x) => h("li", null, x))) : null,
      b.receipt ? h("p", null, h("span", { i18n: "vote.receipt" }), " ", h("code", { class: "receipt-code", "data-testid": "receipt-code" }, b.receipt)) : null,
      b.receipt ? h("p", { class: "muted", i18n: "vote.receipt_hint" }) : null,
      b.at ? h("p", { class: "muted" }, fmtTime(b.at)) : null);
  }

  renderResultsList() {
    if (!this.results.length) { fill(this.resultsEl); return; }
    fill(this.resultsEl,
      h("h3", { i18n: "vote.results" }),
      this.results.map((r) => h("div", { class: "card result-card" }, resultView(r))));
  }

  /** Results stay on screen until the attendee closes them (or the chair dismisses them). */
  showResult(r) {
    this.onAttention("result");
    this.dismissed(r.id);
    const close = h("button", { type: "button", class: "btn btn-primary", "data-testid": "result-close", i18n: "common.close" });
    const dlg = h("dialog", { class: "dialog result-dialog", "aria-labelledby": `res-${r.id}`, "data-testid": "result-dialog" },
      h("h2", { id: `res-${r.id}`, class: "dialog-title", i18n: "vote.result_title" }),
      h("div", { class: "dialog-body" }, resultView(r)),
      h("div", { class: "dialog-actions" }, close));
    close.addEventListener("click", () => this.dismissed(r.id));
    dlg.addEventListener("cancel", (e) => e.preventDefault());
    document.body.append(dlg);
    dlg.showModal();
    this.resultDialogs.set(r.id, dlg);
  }
}

async function confirmBallot(p, lines) {
  return (await dialog({
    titleKey: "vote.confirm_title",
    className: "vote-confirm",
    body: h("div", null,
      h("p", { class: "big" }, p.title),
      h("ul", { class: "chosen", "data-testid": "vote-chosen" }, lines.map((x) => h("li", null, x))),
      h("p", { class: "muted", i18n: p.allow_change ? "vote.confirm_change" : "vote.confirm_final" })),
    actions: [
      { i18n: "vote.back", value: false, kind: "ghost", testid: "vote-back" },
      { i18n: "vote.confirm", value: true, kind: "primary", testid: "vote-confirm" },
    ],
  })) === true;
}
