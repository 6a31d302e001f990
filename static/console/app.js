// The presenter console: drives the room. Agenda, documents and pages (keyboard
// and presentation remote), follow lock, pointer and temporary ink, seats,
// attendance and quorum, speakers and timer, service calls, announcements,
// nameplates and polls with live progress.
import { h, fill, $, uid } from "../common/dom.js";
import { t, langButton, onLangChange, fmtTime, fmtDuration } from "../common/i18n.js";
import { createApi, describeError } from "../common/api.js";
import { connectLive } from "../common/socket.js";
import { toast, showError, dialog, confirmDialog } from "../common/ui.js";
import { orgToken, setOrgToken, loadJSON, saveJSON } from "../common/session.js";
import { loginForm } from "../common/login.js";
import { icon } from "../common/icons.js";
import { resultView } from "../common/results.js";

const SEAT_KEY = "meeting.console.seat";
const PRESENTER_ROLES = new Set(["organizer", "chair", "presenter"]);
const CHAIR_ROLES = new Set(["organizer", "chair"]);
const DESK_ROLES = new Set(["organizer", "secretary"]);
const ANNOUNCE_ROLES = new Set(["organizer", "chair", "secretary"]);
const STAFF_ROLES = new Set(["organizer", "chair", "presenter", "secretary"]);

const S = {
  auth: null, // {kind: "org" | "seat", token, meeting_id}
  state: null,
  current: {},
  docs: new Map(),
  seats: new Map(), // attendee_id -> seat status
  speakers: null,
  calls: new Map(),
  announcements: [],
  polls: new Map(),
  progress: new Map(),
  results: new Map(),
  clockOffset: 0,
  tool: "none", // none | pointer | ink
  status: "connecting",
};
let api = null;
let live = null;
const ui = {};
const seen = {};

const role = () => S.state?.me?.role || (S.auth?.kind === "org" ? "organizer" : "");
const can = (set) => set.has(role());

function newer(msg, kind) {
  if (typeof msg?.seq !== "number") return true;
  if (msg.seq <= (seen[kind] ?? -1)) return false;
  seen[kind] = msg.seq;
  return true;
}

// ---------------------------------------------------------------- entry
async function main() {
  document.title = t("console.title");
  const params = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const joinToken = params.get("join");
  if (joinToken) {
    history.replaceState(null, "", location.pathname);
    try {
      const r = await createApi().post("/join", { token: joinToken, device: "console " + navigator.userAgent.slice(0, 180) });
      saveJSON(SEAT_KEY, { token: r.session_token, meeting_id: r.meeting_id, attendee: r.attendee });
    } catch (e) {
      message("join.failed_title", describeError(e));
      return;
    }
  }
  const seat = loadJSON(SEAT_KEY);
  const meetingId = Number(params.get("meeting") || query.get("meeting")) || null;
  if (seat && (!meetingId || meetingId === seat.meeting_id) && !params.get("org")) {
    start({ kind: "seat", token: seat.token, meeting_id: seat.meeting_id });
    return;
  }
  let token = orgToken();
  if (!token) token = await loginForm($("#app"), { titleKey: "console.login_title" });
  api = createApi({ getToken: () => token, onUnauthorized: () => { setOrgToken(null); location.reload(); } });
  if (meetingId) {
    start({ kind: "org", token, meeting_id: meetingId });
    return;
  }
  chooseMeeting(token);
}

function message(titleKey, text) {
  fill($("#app"), h("main", { class: "login-page" }, h("div", { class: "card login" },
    h("h1", { i18n: titleKey }), h("p", { class: "error-text", role: "alert" }, text),
    h("a", { class: "btn", href: "/console/" , i18n: "common.back" }))));
}

async function chooseMeeting(token) {
  let list = [];
  try {
    list = (await api.get("/meetings")).meetings;
  } catch (e) {
    showError(e);
  }
  fill($("#app"), h("main", { class: "login-page" }, h("div", { class: "card chooser" },
    h("div", { class: "row" }, h("h1", { class: "grow", i18n: "console.choose" }), langButton(h)),
    list.length ? h("ul", { class: "chooser-list" }, list.filter((m) => m.status !== "ended").map((m) => h("li", null,
      h("button", { type: "button", class: "btn chooser-item", "data-testid": "choose-meeting", on: { click: () => {
        history.replaceState(null, "", `/console/#meeting=${m.id}`);
        start({ kind: "org", token, meeting_id: m.id });
      } } }, h("span", { class: "grow" }, m.title), h("span", { class: "badge" }, t("meeting.status_" + m.status))))))
      : h("p", { class: "muted", i18n: "console.no_meetings" }))));
}

// ---------------------------------------------------------------- screen
function start(auth) {
  S.auth = auth;
  api = createApi({ getToken: () => auth.token, onUnauthorized: () => logout() });
  build();
  live = connectLive({
    auth: auth.kind === "org" ? { token: auth.token, meeting_id: auth.meeting_id } : { token: auth.token },
    onStatus: connStatus,
    onState,
    onCurrent,
    handlers: {
      meeting: (m) => { S.state.meeting = { ...S.state.meeting, ...m }; renderHeader(); },
      attendance: (a) => { if (newer(a, "attendance")) { S.state.attendance = a; renderAttendance(); } },
      agenda: (a) => { S.state.agenda = a.items || []; renderAgenda(); },
      "documents.changed": () => refreshDocs(),
      "documents.withdrawn": () => refreshDocs(),
      document: (d) => { if (S.docs.has(d.id)) { S.docs.set(d.id, { ...S.docs.get(d.id), ...d }); renderDocs(); } },
      "seat.status": (s) => { S.seats.set(s.attendee_id, { ...(S.seats.get(s.attendee_id) || {}), ...s }); renderSeats(); },
      "seat.checkin": (c) => {
        const cur = S.seats.get(c.attendee_id) || { attendee_id: c.attendee_id, name: c.name, seat: c.seat };
        S.seats.set(c.attendee_id, { ...cur, checked_in: c.checked_in, late: c.late, left_early: c.left_early });
        renderSeats();
      },
      "seat.joined": () => {},
      "session.revoked": () => { if (S.auth.kind === "seat") logout(); },
      speakers: (q) => setSpeakers(q),
      "service.call": (c) => { S.calls.set(c.id, c); renderCalls(); if (c.status === "open") toast(t("console.new_call", { seat: c.seat || c.name, what: t("service." + c.kind) }), "info", 6000); },
      announcement: (a) => { if (!S.announcements.some((x) => x.id === a.id)) S.announcements.unshift(a); renderNotices(); },
      "announcement.cleared": (a) => { S.announcements = S.announcements.filter((x) => x.id !== a.id); renderNotices(); },
      nameplate: (n) => { if (newer(n, "nameplate") && n.attendee_id == null) { S.nameplateOn = !!n.on; renderNotices(); } },
      poll: (p) => { S.polls.set(p.id, { ...(S.polls.get(p.id) || {}), ...p }); renderPolls(); },
      "poll.progress": (p) => { S.progress.set(p.id, p); renderPollProgress(p.id); },
      "poll.result": (r) => { S.results.set(r.id, r); const p = S.polls.get(r.id); if (p) S.polls.set(r.id, { ...p, status: "closed", tally: r.tally }); renderPolls(); },
      "poll.dismissed": (d) => { S.dismissed = new Set([...(S.dismissed || []), d.id]); renderPolls(); },
    },
  });
  document.addEventListener("keydown", onKey);
  onLangChange(() => renderAll());
}

function logout() {
  if (live) live.close();
  if (S.auth?.kind === "seat") saveJSON(SEAT_KEY, null);
  else setOrgToken(null);
  location.href = "/console/";
}

function build() {
  ui.title = h("h1", { class: "c-title", "data-testid": "meeting-title" });
  ui.status = h("span", { class: "badge", "data-testid": "meeting-status" });
  ui.who = h("span", { class: "muted" });
  ui.attendance = h("span", { class: "attendance", "data-testid": "attendance", role: "status", "aria-live": "polite" });
  ui.conn = h("span", { class: "conn", "data-state": "connecting", "data-testid": "conn" });
  ui.startBtn = h("button", { type: "button", class: "btn btn-ok", i18n: "console.start", "data-testid": "start-meeting", on: { click: () => lifecycle("start") } });
  ui.endBtn = h("button", { type: "button", class: "btn btn-danger", i18n: "console.end", "data-testid": "end-meeting", on: { click: () => lifecycle("end") } });
  const header = h("header", { class: "c-header" },
    h("div", { class: "grow c-head-main" }, ui.title, ui.status, ui.who),
    ui.attendance, ui.startBtn, ui.endBtn, ui.conn, langButton(h),
    h("button", { type: "button", class: "btn btn-ghost", i18n: "common.logout", on: { click: logout } }));

  // Left: agenda and documents
  ui.agenda = h("ol", { class: "c-agenda", "data-testid": "c-agenda" });
  ui.docs = h("ul", { class: "c-docs", "data-testid": "c-docs" });
  const left = h("aside", { class: "c-left" },
    h("h2", { i18n: "nav.agenda" }), ui.agenda,
    h("h2", { i18n: "nav.materials" }), ui.docs);

  // Centre: the presented page
  ui.img = h("img", { class: "c-page", alt: "", draggable: "false", "data-testid": "c-page" });
  ui.inkCanvas = h("canvas", { class: "c-ink" });
  ui.sheet = h("div", { class: "c-sheet" }, ui.img, ui.inkCanvas);
  ui.stageEmpty = h("p", { class: "c-empty", i18n: "console.nothing" });
  ui.stage = h("div", { class: "c-stage", "data-testid": "c-stage" }, ui.sheet, ui.stageEmpty);
  ui.pageLabel = h("span", { class: "page-label", "data-testid": "c-page-label", "aria-live": "polite" });
  ui.prev = h("button", { type: "button", class: "btn", "data-testid": "c-prev", i18nAttrs: { "aria-label": "viewer.prev" }, on: { click: () => step(-1) } }, "‹ ", h("span", { i18n: "console.prev" }));
  ui.next = h("button", { type: "button", class: "btn btn-primary", "data-testid": "c-next", i18nAttrs: { "aria-label": "viewer.next" }, on: { click: () => step(1) } }, h("span", { i18n: "console.next" }), " ›");
  ui.lock = h("button", { type: "button", class: "btn", "aria-pressed": "false", "data-testid": "follow-lock", on: { click: () => toggleLock() } }, icon("lock", 22), h("span", { i18n: "console.lock" }));
  ui.pointerBtn = h("button", { type: "button", class: "btn", "aria-pressed": "false", "data-testid": "tool-pointer", on: { click: () => setTool(S.tool === "pointer" ? "none" : "pointer") } }, icon("pointer", 22), h("span", { i18n: "console.pointer" }));
  ui.inkBtn = h("button", { type: "button", class: "btn", "aria-pressed": "false", "data-testid": "tool-ink", on: { click: () => setTool(S.tool === "ink" ? "none" : "ink") } }, icon("ink", 22), h("span", { i18n: "console.ink" }));
  ui.inkClear = h("button", { type: "button", class: "btn btn-ghost", i18n: "console.ink_clear", on: { click: () => { live.emit("ink.clear", {}); localInk.clear(); drawInk(); } } });
  ui.zoom = h("div", { class: "btn-row" },
    h("button", { type: "button", class: "btn", i18nAttrs: { "aria-label": "viewer.zoom_out" }, on: { click: () => sendView(-1) } }, "−"),
    h("button", { type: "button", class: "btn", i18nAttrs: { "aria-label": "viewer.zoom_in" }, on: { click: () => sendView(1) } }, "+"),
    h("button", { type: "button", class: "btn btn-ghost", i18n: "console.fit", on: { click: () => sendView(0) } }));
  ui.thumbs = h("div", { class: "thumbs c-thumbs", "data-testid": "c-thumbs", role: "listbox", i18nAttrs: { "aria-label": "viewer.thumbnails" } });
  ui.keys = h("p", { class: "muted keys", i18n: "console.keys" });
  ui.sharedBtn = h("button", { type: "button", class: "btn btn-ghost", i18n: "console.shared", "data-testid": "c-shared", on: { click: () => sharedDialog() } });
  const centre = h("section", { class: "c-centre" },
    h("div", { class: "c-toolbar" }, ui.prev, ui.pageLabel, ui.next, ui.lock, ui.pointerBtn, ui.inkBtn, ui.inkClear, ui.zoom, ui.sharedBtn),
    ui.stage, ui.thumbs, ui.keys);

  // Right: tabs
  ui.tabs = {};
  ui.panes = {};
  const tabs = [["seats", "console.tab_seats"], ["speakers", "console.tab_speakers"], ["polls", "console.tab_polls"], ["service", "console.tab_service"], ["notices", "console.tab_notices"]];
  const tabBar = h("div", { class: "tabs", role: "tablist" });
  for (const [name, key] of tabs) {
    ui.tabs[name] = h("button", { type: "button", role: "tab", id: "tab-" + name, "aria-controls": "pane-" + name, "aria-selected": "false", "data-testid": "tab-" + name, on: { click: () => showTab(name) } }, h("span", { i18n: key }), h("span", { class: "dot", hidden: true }));
    ui.panes[name] = h("div", { class: "pane", role: "tabpanel", id: "pane-" + name, "aria-labelledby": "tab-" + name, hidden: true });
    tabBar.append(ui.tabs[name]);
  }
  const right = h("aside", { class: "c-right" }, tabBar, Object.values(ui.panes));
  fill($("#app"), h("div", { class: "console" }, header, h("div", { class: "c-body" }, left, centre, right)));
  showTab("seats");
  bindStage();
}

function showTab(name) {
  for (const [k, b] of Object.entries(ui.tabs)) {
    b.setAttribute("aria-selected", k === name ? "true" : "false");
    ui.panes[k].hidden = k !== name;
    if (k === name) b.querySelector(".dot").hidden = true;
  }
  S.tab = name;
}

function flag(tab) {
  if (S.tab !== tab) ui.tabs[tab].querySelector(".dot").hidden = false;
}

function connStatus(status, detail) {
  S.status = status;
  ui.conn.dataset.state = status;
  ui.conn.textContent = t("conn." + status);
  if (status === "refused") {
    message("conn.refused", detail?.message || detail?.code || "");
  }
}

// ---------------------------------------------------------------- state
function onState(st) {
  S.state = st;
  for (const k of Object.keys(seen)) delete seen[k];
  if (st.attendance) newer(st.attendance, "attendance");
  S.current = { ...st.current };
  S.docs = new Map((st.documents || []).map((d) => [d.id, d]));
  S.seats = new Map((st.seats || []).map((s) => [s.attendee_id, s]));
  if (st.server_time) S.clockOffset = Date.parse(st.server_time) - Date.now();
  S.speakers = null;
  if (st.speakers) setSpeakers(st.speakers);
  S.calls = new Map((st.service_calls || []).map((c) => [c.id, c]));
  if (st.announcement && !S.announcements.some((a) => a.id === st.announcement.id)) S.announcements.unshift(st.announcement);
  S.nameplateOn = !!st.nameplate?.room;
  if (st.nameplate) newer(st.nameplate, "nameplate");
  if (st.poll) S.polls.set(st.poll.id, st.poll);
  loadPolls();
  if (can(STAFF_ROLES) && !st.seats) refreshSeats();
  renderAll();
}

function onCurrent(block) {
  const moved = block.document_id !== S.current.document_id || block.page !== S.current.page;
  S.current = { ...S.current, ...block };
  if (moved) localInk.clear();
  // The label at once; the rest (preview decode, thumbnails, agenda, documents) when the console is
  // idle, at most 120 ms later: this event reaches the tablets at the same moment, and on shared
  // hardware the console's redraw should not take the CPU from their flip.
  renderStage({ light: true });
  scheduleRender(moved);
}

let renderSoon = null;
let renderDocsToo = false;
function scheduleRender(docs = false) {
  renderDocsToo ||= docs;
  if (renderSoon) return;
  const run = () => {
    renderSoon = null;
    renderStage();
    renderAgenda();
    if (renderDocsToo) renderDocs();
    renderDocsToo = false;
  };
  renderSoon = window.requestIdleCallback ? requestIdleCallback(run, { timeout: 120 }) : setTimeout(run, 30);
}

async function refreshSeats() {
  const ack = await live.request("seats.status", {});
  if (ack.ok) {
    S.seats = new Map(ack.seats.map((s) => [s.attendee_id, s]));
    renderSeats();
  }
}

async function refreshDocs() {
  try {
    const r = await api.get(`/meetings/${S.auth.meeting_id}/documents`);
    S.docs = new Map(r.documents.map((d) => [d.id, d]));
    renderDocs();
    renderStage();
  } catch (e) {
    showError(e);
  }
}

async function loadPolls() {
  try {
    const r = await api.get(`/meetings/${S.auth.meeting_id}/polls`);
    for (const p of r.polls) S.polls.set(p.id, { ...(S.polls.get(p.id) || {}), ...p });
    renderPolls();
  } catch (e) {
    if (e.status !== 403) showError(e);
  }
}

function renderAll() {
  renderHeader();
  renderAgenda();
  renderDocs();
  renderStage();
  renderSeats();
  renderAttendance();
  renderSpeakers();
  renderCalls();
  renderNotices();
  renderPolls();
  ui.conn.textContent = t("conn." + S.status);
}

function renderHeader() {
  const m = S.state?.meeting;
  if (!m) return;
  ui.title.textContent = m.title;
  document.title = `${m.title} · ${t("console.title")}`;
  ui.status.textContent = t("meeting.status_" + m.status);
  ui.status.className = "badge " + (m.status === "live" ? "badge-ok" : m.status === "ended" ? "badge-danger" : "");
  const me = S.state.me || {};
  ui.who.textContent = `${me.name || ""} · ${t("role." + role())}`;
  ui.startBtn.hidden = !can(CHAIR_ROLES) || m.status !== "draft";
  ui.endBtn.hidden = !can(CHAIR_ROLES) || m.status !== "live";
  for (const el of [ui.prev, ui.next, ui.lock, ui.pointerBtn, ui.inkBtn, ui.inkClear, ui.zoom]) el.hidden = !can(PRESENTER_ROLES);
}

function renderAttendance() {
  const a = S.state?.attendance;
  if (!a) return;
  const parts = [t("console.present", { present: a.present, expected: a.expected })];
  if (a.quorum) parts.push(t(a.quorum.reached ? "console.quorum_ok" : "console.quorum_no", { required: a.quorum.required }));
  ui.attendance.textContent = parts.join(" · ");
  ui.attendance.className = "attendance " + (a.quorum ? (a.quorum.reached ? "ok" : "warn") : "");
}

async function lifecycle(what) {
  const ok = await confirmDialog(what === "start" ? "console.start_confirm" : "console.end_confirm", null, { danger: what === "end" });
  if (!ok) return;
  const ack = await live.request(what === "start" ? "meetings.start" : "meetings.end", {});
  if (!ack.ok) showError(ack.error);
}

// ---------------------------------------------------------------- agenda and documents
function renderAgenda() {
  const items = S.state?.agenda || [];
  if (!items.length) { fill(ui.agenda, h("li", { class: "muted", i18n: "agenda.empty" })); return; }
  fill(ui.agenda, items.map((it) => {
    const cur = it.id === S.current.agenda_item_id;
    return h("li", { class: cur ? "current" : "" },
      h("button", { type: "button", class: "btn c-item", "aria-pressed": cur ? "true" : "false", disabled: !can(PRESENTER_ROLES), "data-testid": "c-agenda-item",
        on: { click: () => activate(cur ? null : it.id) } }, h("span", { class: "grow" }, `${it.position}. ${it.title}`)),
      (it.document_ids || []).map((id) => S.docs.get(id)).filter(Boolean).map((d) => docLink(d, true)));
  }));
}

async function activate(itemId) {
  const ack = await live.request("agenda.activate", { item_id: itemId });
  if (!ack.ok) showError(ack.error);
  else if (itemId) {
    const it = (S.state.agenda || []).find((x) => x.id === itemId);
    const first = it && (it.document_ids || []).map((id) => S.docs.get(id)).find((d) => d && d.status === "ready");
    if (first && first.id !== S.current.document_id) present(first.id, 1);
  }
}

function docLink(d, small = false) {
  const on = d.id === S.current.document_id;
  return h("button", { type: "button", class: ["btn", "c-doc", small ? "small" : "", on ? "on" : ""], disabled: d.status !== "ready" || !can(PRESENTER_ROLES),
    "data-testid": "c-doc", "aria-pressed": on ? "true" : "false", on: { click: () => present(d.id, on ? S.current.page || 1 : 1) } },
  icon("reader", 20), h("span", { class: "grow" }, d.title),
  d.status === "ready" ? h("span", { class: "muted" }, t("docs.pages", { n: d.page_count || 0 })) : h("span", { class: "badge badge-warn" }, t("docs.status_" + d.status)),
  d.confidential ? h("span", { class: "badge badge-danger", i18n: "docs.confidential" }) : null);
}

function renderDocs() {
  const docs = [...S.docs.values()];
  if (!docs.length) { fill(ui.docs, h("li", { class: "muted", i18n: "docs.none" })); return; }
  fill(ui.docs, docs.map((d) => h("li", null, docLink(d))));
}

// ---------------------------------------------------------------- presenting
const pageUrl = (d, n) => d.pages_url.replace("{n}", String(n)) + "&access_token=" + encodeURIComponent(S.auth.token);
const thumbUrl = (d, n) => d.thumbs_url.replace("{n}", String(n)) + "&access_token=" + encodeURIComponent(S.auth.token);

async function present(documentId, page) {
  if (!can(PRESENTER_ROLES)) return;
  const d = S.docs.get(documentId);
  if (!d || page < 1 || (d.page_count && page > d.page_count)) return;
  window.__lastPresent = { document_id: documentId, page, at: performance.timeOrigin + performance.now() };
  // Send first (the room waits for it), then show it here; the room follows on the `page` event.
  const sent = live.request("present", { document_id: documentId, page }, { timeout: 8000 });
  S.pending = { document_id: documentId, page };
  // Only the label and buttons now; the preview image (a decode) and the thumbnail strip's scroll
  // (a layout, and lazy thumbnails fetched from the server) wait for the ack, so on a shared
  // machine they do not compete with the server and the tablets for the flip.
  renderStage({ light: true });
  const ack = await sent;
  const mine = S.pending && S.pending.document_id === documentId && S.pending.page === page;
  if (!ack.ok) { if (mine) S.pending = null; showError(ack.error); renderStage(); return; }
  if (mine) S.pending = null;
  scheduleRender();
  // Then warm the next pages when the console is idle, so the preview keeps up with a fast remote.
  const next = [page + 1, page + 2].filter((n) => n <= (d.page_count || 0)).map((n) => pageUrl(d, n));
  (window.requestIdleCallback || ((fn) => setTimeout(fn, 50)))(() => next.forEach(warm), { timeout: 500 });
}

const warmed = new Set();
function warm(url) {
  if (warmed.has(url)) return;
  warmed.add(url);
  new Image().src = url;
}

function step(dir) {
  const cur = S.pending || S.current;
  if (!cur.document_id) {
    const first = [...S.docs.values()].find((d) => d.status === "ready");
    if (first) present(first.id, 1);
    return;
  }
  present(cur.document_id, (cur.page || 1) + dir);
}

function renderStage({ light = false } = {}) {
  const cur = S.pending || S.current;
  const d = S.docs.get(cur.document_id);
  if (light && d && ui.thumbs.dataset.doc === `${d.id}:${d.version}`) {
    ui.pageLabel.textContent = `${d.title} · ${t("viewer.page_of", { n: cur.page, count: d.page_count || 0 })}`;
    ui.prev.disabled = cur.page <= 1;
    ui.next.disabled = cur.page >= (d.page_count || 0);
    return;
  }
  ui.stageEmpty.hidden = !!d;
  ui.sheet.hidden = !d;
  if (!d) {
    ui.pageLabel.textContent = "";
    fill(ui.thumbs);
    ui.thumbs.dataset.doc = "";
    return;
  }
  const url = pageUrl(d, cur.page);
  if (ui.img.dataset.src !== url) {
    ui.img.dataset.src = url;
    ui.img.src = url;
    ui.img.alt = t("viewer.page_alt", { title: d.title, n: cur.page });
  }
  ui.pageLabel.textContent = `${d.title} · ${t("viewer.page_of", { n: cur.page, count: d.page_count || 0 })}`;
  ui.prev.disabled = cur.page <= 1;
  ui.next.disabled = cur.page >= (d.page_count || 0);
  ui.lock.setAttribute("aria-pressed", S.current.follow_lock ? "true" : "false");
  ui.lock.classList.toggle("btn-danger", !!S.current.follow_lock);
  const key = `${d.id}:${d.version}`;
  if (ui.thumbs.dataset.doc !== key) {
    ui.thumbs.dataset.doc = key;
    const items = [];
    for (let n = 1; n <= (d.page_count || 0); n++) {
      items.push(h("button", { type: "button", class: "thumb", role: "option", "data-page": String(n), "aria-selected": "false", "data-testid": "c-thumb", disabled: !can(PRESENTER_ROLES), on: { click: () => present(d.id, n) } },
        h("img", { src: thumbUrl(d, n), alt: "", loading: "lazy", draggable: "false" }), h("span", { class: "thumb-n" }, String(n))));
    }
    fill(ui.thumbs, items);
  }
  for (const b of ui.thumbs.children) {
    const on = Number(b.dataset.page) === cur.page;
    b.setAttribute("aria-selected", on ? "true" : "false");
    if (on) b.scrollIntoView({ block: "nearest", inline: "center" });
  }
  drawInk();
}

/** Seats' annotations shared with the room or the presenter on the presented document: show one seat's to the room. */
async function sharedDialog() {
  const docId = (S.pending || S.current).document_id;
  if (!docId) { toast(t("console.nothing"), "info"); return; }
  let r;
  try {
    r = await api.get(`/documents/${docId}/annotations/shared`);
  } catch (e) {
    showError(e);
    return;
  }
  const bySeat = new Map();
  for (const a of r.annotations || []) {
    const k = a.attendee?.id;
    if (!bySeat.has(k)) bySeat.set(k, { attendee: a.attendee, ids: [], pages: new Set() });
    bySeat.get(k).ids.push(a.id);
    bySeat.get(k).pages.add(a.page);
  }
  const show = async (seat) => {
    const ack = await live.request("annotation.show", { document_id: docId, attendee_id: seat.attendee.id, ids: seat.ids });
    if (!ack.ok) showError(ack.error); else toast(t("console.shared_shown", { who: seat.attendee.name || "" }), "ok");
  };
  const rows = [...bySeat.values()].map((seat) => h("li", { class: "row", "data-testid": "shared-seat" },
    h("span", { class: "grow" }, `${seat.attendee?.name || ""}${seat.attendee?.seat ? " · " + seat.attendee.seat : ""} · `,
      t("console.shared_count", { n: seat.ids.length, pages: [...seat.pages].sort((a, b) => a - b).join(", ") })),
    h("button", { type: "button", class: "btn btn-primary", i18n: "console.shared_show", "data-testid": "shared-show", on: { click: () => show(seat) } })));
  const v = await dialog({
    titleKey: "console.shared",
    body: rows.length ? h("ul", { class: "shared-list" }, rows) : h("p", { class: "muted", i18n: "console.shared_none" }),
    actions: [{ i18n: "console.shared_hide", value: "hide", kind: "ghost", testid: "shared-hide" }, { i18n: "common.close", value: null, kind: "primary", testid: "dlg-close" }],
  });
  if (v === "hide") {
    const ack = await live.request("annotation.hide", {});
    if (!ack.ok) showError(ack.error);
  }
}

async function toggleLock() {
  const ack = await live.request("follow.lock", { locked: !S.current.follow_lock });
  if (!ack.ok) showError(ack.error);
}

let zoom = 1;
async function sendView(dir) {
  zoom = dir === 0 ? 1 : Math.max(1, Math.min(4, zoom * (dir > 0 ? 1.5 : 1 / 1.5)));
  const off = (1 - 1 / zoom) / 2;
  const ack = await live.request("view", { zoom, x: off, y: off });
  if (!ack.ok) showError(ack.error);
}

/** Arrow keys, PageUp/PageDown (what presentation remotes send), Home/End, digits + Enter. */
let typed = "";
function onKey(e) {
  if (e.target.closest("input, textarea, select, dialog, [contenteditable]")) return;
  if (!can(PRESENTER_ROLES) || e.altKey || e.ctrlKey || e.metaKey) return;
  const cur = S.pending || S.current;
  const d = S.docs.get(cur.document_id);
  const next = ["ArrowRight", "ArrowDown", "PageDown", " "];
  const prev = ["ArrowLeft", "ArrowUp", "PageUp", "Backspace"];
  if (next.includes(e.key)) { step(1); e.preventDefault(); }
  else if (prev.includes(e.key)) { step(-1); e.preventDefault(); }
  else if (e.key === "Home" && d) { present(d.id, 1); e.preventDefault(); }
  else if (e.key === "End" && d) { present(d.id, d.page_count); e.preventDefault(); }
  else if (/^[0-9]$/.test(e.key)) { typed = (typed + e.key).slice(-4); }
  else if (e.key === "Enter" && typed && d) { present(d.id, Number(typed)); typed = ""; e.preventDefault(); }
  else if (e.key === "Escape") { setTool("none"); typed = ""; }
}

// ---------------------------------------------------------------- pointer and ink
const localInk = new Map(); // stroke_id -> points

function setTool(tool) {
  S.tool = tool;
  ui.pointerBtn.setAttribute("aria-pressed", tool === "pointer" ? "true" : "false");
  ui.inkBtn.setAttribute("aria-pressed", tool === "ink" ? "true" : "false");
  ui.sheet.dataset.tool = tool;
  if (tool !== "pointer") live?.emit("pointer", { x: 0, y: 0, visible: false });
}

function bindStage() {
  const pos = (e) => {
    const r = ui.img.getBoundingClientRect();
    return [Math.max(0, Math.min(1, (e.clientX - r.left) / r.width)), Math.max(0, Math.min(1, (e.clientY - r.top) / r.height))];
  };
  let lastPointer = 0;
  let stroke = null;
  let pendingPts = [];
  let flushTimer = null;
  const flush = (done = false) => {
    if (!stroke) return;
    const cur = S.current;
    live.emit("ink", { stroke_id: stroke.id, points: pendingPts.splice(0, 200), color: "#e00000", width: 4, done, document_id: cur.document_id, page: cur.page });
  };
  ui.sheet.addEventListener("pointermove", (e) => {
    if (S.tool === "pointer") {
      const now = performance.now();
      if (now - lastPointer < 50) return; // 20/s, under the server's 30/s
      lastPointer = now;
      const [x, y] = pos(e);
      live.emit("pointer", { x, y, visible: true, document_id: S.current.document_id, page: S.current.page });
    } else if (S.tool === "ink" && stroke) {
      const p = pos(e).map((v) => Math.round(v * 10000) / 10000);
      stroke.points.push(p);
      pendingPts.push(p);
      drawInk();
      if (pendingPts.length >= 200) flush();
      else if (!flushTimer) flushTimer = setTimeout(() => { flushTimer = null; flush(); }, 60);
    }
  });
  ui.sheet.addEventListener("pointerleave", () => { if (S.tool === "pointer") live.emit("pointer", { x: 0, y: 0, visible: false }); });
  ui.sheet.addEventListener("pointerdown", (e) => {
    if (S.tool !== "ink") return;
    e.preventDefault();
    ui.sheet.setPointerCapture(e.pointerId);
    stroke = { id: uid().slice(0, 12), points: [pos(e)] };
    pendingPts = [stroke.points[0]];
    localInk.set(stroke.id, stroke.points);
  });
  const end = () => {
    if (!stroke) return;
    clearTimeout(flushTimer);
    flushTimer = null;
    flush(true);
    stroke = null;
  };
  ui.sheet.addEventListener("pointerup", end);
  ui.sheet.addEventListener("pointercancel", end);
  new ResizeObserver(() => drawInk()).observe(ui.sheet);
}

function drawInk() {
  const c = ui.inkCanvas;
  const r = ui.img.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.max(1, Math.round(r.width * dpr));
  c.height = Math.max(1, Math.round(r.height * dpr));
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.strokeStyle = "#e00000";
  ctx.lineWidth = Math.max(1, (4 * c.width) / 1000);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const pts of localInk.values()) {
    if (!pts.length) continue;
    ctx.beginPath();
    ctx.moveTo(pts[0][0] * c.width, pts[0][1] * c.height);
    for (const [x, y] of pts.slice(1)) ctx.lineTo(x * c.width, y * c.height);
    ctx.stroke();
  }
}

// ---------------------------------------------------------------- seats and attendance
function renderSeats() {
  const pane = ui.panes.seats;
  if (!pane) return;
  const seats = [...S.seats.values()].sort((a, b) => String(a.seat || "~").localeCompare(String(b.seat || "~"), undefined, { numeric: true }));
  const online = seats.filter((s) => s.online).length;
  const a = S.state?.attendance;
  const summary = h("p", { class: "row" },
    h("strong", null, t("console.seats_online", { online, total: seats.length })),
    a ? h("span", null, t("console.present", { present: a.present, expected: a.expected })) : null);
  const legend = h("p", { class: "legend muted" },
    h("span", { class: "seat-dot online" }), t("console.legend_online"), " ",
    h("span", { class: "seat-dot" }), t("console.legend_offline"));
  const grid = h("div", { class: "seat-grid", "data-testid": "seat-grid" }, seats.map((s) => {
    const state = [];
    state.push(s.checked_in ? t("console.checked_in") : t("console.not_checked_in"));
    if (s.online) {
      if (s.following === false) state.push(s.page ? t("console.browsing_page", { page: s.page }) : t("viewer.browsing"));
      else if (s.following) state.push(t("console.following"));
    }
    if (typeof s.battery === "number") state.push(`${Math.round(s.battery * 100)}%${s.charging ? "⚡" : ""}`);
    return h("div", { class: ["seat", s.online ? "online" : "offline", s.checked_in ? "in" : "out", s.following === false ? "browsing" : ""], "data-testid": "seat", "data-attendee": String(s.attendee_id) },
      h("div", { class: "seat-top" }, h("span", { class: "seat-dot" + (s.online ? " online" : "") }), h("strong", null, s.seat || "—")),
      h("div", { class: "seat-name" }, s.name || ""),
      h("div", { class: "seat-state muted" }, state.join(" · ")),
      can(DESK_ROLES) && !s.checked_in && s.role !== undefined
        ? h("button", { type: "button", class: "btn btn-ghost small", i18n: "console.proxy_checkin", on: { click: () => proxyCheckin(s) } })
        : null);
  }));
  const quorum = can(CHAIR_ROLES) ? quorumForm() : null;
  const nameplate = can(ANNOUNCE_ROLES) ? h("div", { class: "btn-row" },
    h("button", { type: "button", class: "btn", "aria-pressed": S.nameplateOn ? "true" : "false", "data-testid": "nameplate-all", i18n: S.nameplateOn ? "console.nameplate_off" : "console.nameplate_on",
      on: { click: async () => { const ack = await live.request("nameplate", { on: !S.nameplateOn }); if (!ack.ok) showError(ack.error); else { S.nameplateOn = !S.nameplateOn; renderSeats(); } } } })) : null;
  fill(pane, summary, legend, grid, nameplate, quorum);
}

function quorumForm() {
  const q = S.state?.attendance?.quorum?.rule;
  const kind = h("select", { "aria-label": t("console.quorum_kind") },
    h("option", { value: "" }, t("console.quorum_none")),
    h("option", { value: "fraction" }, t("console.quorum_fraction")),
    h("option", { value: "count" }, t("console.quorum_count")));
  kind.value = q?.kind || "";
  const value = h("input", { type: "number", min: "0", step: "any", "aria-label": t("console.quorum_value") });
  value.value = q ? (q.kind === "fraction" ? Math.round(q.value * 100) : q.value) : "";
  const set = h("button", { type: "button", class: "btn", i18n: "console.quorum_set", on: { click: async () => {
    const rule = kind.value ? { kind: kind.value, value: kind.value === "fraction" ? Number(value.value) / 100 : Number(value.value) } : null;
    const ack = await live.request("quorum.set", { rule });
    if (!ack.ok) showError(ack.error); else toast(t("common.saved"), "ok");
  } } });
  return h("fieldset", { class: "quorum" }, h("legend", { i18n: "console.quorum" }),
    h("div", { class: "row" }, kind, value, h("span", { class: "muted", i18n: "console.quorum_hint" }), set));
}

async function proxyCheckin(s) {
  const input = h("input", { type: "text", maxlength: "300", "aria-label": t("console.proxy_reason") });
  const v = await dialog({ title: `${t("console.proxy_checkin")} · ${s.seat || ""} ${s.name || ""}`,
    body: h("div", { class: "field" }, h("label", { i18n: "console.proxy_reason" }), input),
    actions: [{ i18n: "common.cancel", value: null, kind: "ghost" }, { i18n: "common.ok", value: "ok", kind: "primary" }] });
  if (v !== "ok") return;
  const ack = await live.request("checkin.proxy", { attendee_id: s.attendee_id, reason: input.value.trim() || t("console.proxy_default") });
  if (!ack.ok) showError(ack.error);
}

// ---------------------------------------------------------------- speakers
function setSpeakers(q) {
  if (!newer(q, "speakers")) return;
  if (q.server_time) S.clockOffset = Date.parse(q.server_time) - Date.now();
  const before = S.speakers?.queue?.length || 0;
  S.speakers = q;
  if ((q.queue?.length || 0) > before) flag("speakers");
  renderSpeakers();
}

let timerHandle = null;
function renderSpeakers() {
  const pane = ui.panes.speakers;
  const q = S.speakers || { queue: [], current: null };
  const chair = can(CHAIR_ROLES);
  const duration = h("select", { "aria-label": t("console.duration"), "data-testid": "speak-duration" },
    [60, 120, 180, 300, 600, 0].map((s) => h("option", { value: String(s), selected: s === 180 }, s ? t("console.minutes", { n: s / 60 }) : t("console.no_limit"))));
  const cmd = async (name, payload) => { const ack = await live.request(name, payload); if (!ack.ok) showError(ack.error); };
  let current;
  if (q.current) {
    const timer = h("span", { class: "timer", "data-testid": "c-speak-timer" });
    current = h("div", { class: "card speaking" },
      h("p", { class: "big" }, h("strong", null, q.current.name), q.current.seat ? ` · ${q.current.seat}` : ""),
      timer,
      chair ? h("div", { class: "btn-row" },
        h("button", { type: "button", class: "btn", on: { click: () => cmd("speaker.extend", { seconds: 60 }) } }, "+1:00"),
        h("button", { type: "button", class: "btn", on: { click: () => cmd("speaker.extend", { seconds: -60 }) } }, "−1:00"),
        h("button", { type: "button", class: "btn btn-danger", i18n: "console.speak_end", on: { click: () => cmd("speaker.end", {}) } })) : null);
    clearInterval(timerHandle);
    const tick = () => {
      if (!q.current.ends_at) { timer.textContent = t("console.no_limit"); return; }
      const left = (Date.parse(q.current.ends_at) - (Date.now() + S.clockOffset)) / 1000;
      timer.textContent = fmtDuration(left);
      timer.classList.toggle("over", left <= 0);
    };
    tick();
    timerHandle = setInterval(tick, 500);
  } else {
    clearInterval(timerHandle);
    current = h("p", { class: "muted", i18n: "console.no_speaker" });
  }
  const queue = q.queue || [];
  const list = h("ol", { class: "speaker-queue", "data-testid": "speaker-queue" }, queue.map((r, i) => h("li", { class: "row" },
    h("span", { class: "grow" }, h("strong", null, r.name), r.seat ? ` · ${r.seat}` : "", r.note ? ` — ${r.note}` : "", " ", h("span", { class: "muted" }, fmtTime(r.requested_at))),
    chair ? [
      h("button", { type: "button", class: "btn btn-primary small", i18n: "console.speak_grant", "data-testid": "speak-grant", on: { click: () => cmd("speaker.grant", { request_id: r.id, duration_seconds: Number(duration.value) }) } }),
      h("button", { type: "button", class: "btn btn-ghost small", disabled: i === 0, i18nAttrs: { "aria-label": "common.up" }, on: { click: () => reorder(queue, i, -1) } }, "↑"),
      h("button", { type: "button", class: "btn btn-ghost small", disabled: i === queue.length - 1, i18nAttrs: { "aria-label": "common.down" }, on: { click: () => reorder(queue, i, 1) } }, "↓"),
      h("button", { type: "button", class: "btn btn-ghost small", i18n: "console.speak_remove", on: { click: () => cmd("speaker.remove", { request_id: r.id }) } }),
    ] : null)));
  let add = null;
  if (chair) {
    const who = h("select", { "aria-label": t("console.speak_add") }, h("option", { value: "" }, t("console.speak_add")),
      [...S.seats.values()].map((s) => h("option", { value: String(s.attendee_id) }, `${s.seat || ""} ${s.name || ""}`)));
    add = h("div", { class: "row" }, who, h("button", { type: "button", class: "btn", i18n: "common.add", on: { click: () => { if (who.value) cmd("speaker.add", { attendee_id: Number(who.value) }); } } }));
  }
  fill(pane,
    h("h3", { i18n: "console.speaking_now" }), current,
    h("div", { class: "row" }, h("h3", { class: "grow" }, t("console.queue", { n: queue.length })), chair ? duration : null,
      chair && queue.length ? h("button", { type: "button", class: "btn btn-primary", i18n: "console.speak_next", on: { click: () => cmd("speaker.grant", { duration_seconds: Number(duration.value) }) } }) : null),
    queue.length ? list : h("p", { class: "muted", i18n: "console.queue_empty" }),
    add);
}

async function reorder(queue, i, dir) {
  const ids = queue.map((r) => r.id);
  [ids[i], ids[i + dir]] = [ids[i + dir], ids[i]];
  const ack = await live.request("speaker.order", { order: ids });
  if (!ack.ok) showError(ack.error);
}

// ---------------------------------------------------------------- service calls
function renderCalls() {
  const pane = ui.panes.service;
  const open = [...S.calls.values()].filter((c) => c.status === "open").sort((a, b) => a.id - b.id);
  if (open.length) flag("service");
  fill(pane,
    h("h3", null, t("console.open_calls", { n: open.length })),
    open.length ? h("ul", { class: "call-list", "data-testid": "call-list" }, open.map((c) => h("li", { class: "row call" },
      h("strong", { class: "call-seat" }, c.seat || "—"),
      h("span", { class: "grow" }, c.name || "", " · ", t("service." + c.kind), c.note ? ` — ${c.note}` : ""),
      h("span", { class: "muted" }, fmtTime(c.created_at)),
      can(DESK_ROLES) ? h("button", { type: "button", class: "btn btn-ok small", i18n: "console.call_done", "data-testid": "call-done", on: { click: async () => {
        const ack = await live.request("service.close", { call_id: c.id });
        if (!ack.ok) showError(ack.error); else { S.calls.set(c.id, ack.call); renderCalls(); }
      } } }) : null)))
      : h("p", { class: "muted", i18n: "console.no_calls" }));
}

// ---------------------------------------------------------------- announcements
function renderNotices() {
  const pane = ui.panes.notices;
  const form = can(ANNOUNCE_ROLES) ? (() => {
    const text = h("textarea", { maxlength: "1000", id: "announce-text", "data-testid": "announce-text", rows: "3" });
    const urgent = h("input", { type: "checkbox", id: "announce-urgent" });
    const target = h("select", { id: "announce-to", "aria-label": t("console.announce_to") }, h("option", { value: "" }, t("console.announce_all")),
      [...S.seats.values()].map((s) => h("option", { value: String(s.attendee_id) }, `${s.seat || ""} ${s.name || ""}`)));
    const send = h("button", { type: "button", class: "btn btn-primary", i18n: "console.announce_send", "data-testid": "announce-send", on: { click: async () => {
      if (!text.value.trim()) return;
      const payload = { text: text.value.trim(), level: urgent.checked ? "urgent" : "info" };
      if (target.value) payload.attendee_id = Number(target.value);
      const ack = await live.request("announce", payload);
      if (!ack.ok) { showError(ack.error); return; }
      text.value = "";
      if (ack.announcement && !S.announcements.some((x) => x.id === ack.announcement.id)) S.announcements.unshift(ack.announcement);
      renderNotices();
      toast(t("console.announce_sent"), "ok");
    } } });
    return h("div", { class: "announce-form" },
      h("div", { class: "field" }, h("label", { for: "announce-text", i18n: "console.announce" }), text),
      h("div", { class: "row" }, h("label", { class: "check", for: "announce-urgent" }, urgent, h("span", { i18n: "console.urgent" })), target, send));
  })() : null;
  fill(pane, form,
    h("h3", { i18n: "console.sent" }),
    S.announcements.length ? h("ul", { class: "notices" }, S.announcements.map((a) => h("li", { class: "row notice-item" + (a.level === "urgent" ? " urgent" : "") },
      h("span", { class: "grow" }, a.text), h("span", { class: "muted" }, fmtTime(a.at)),
      can(ANNOUNCE_ROLES) ? h("button", { type: "button", class: "btn btn-ghost small", i18n: "console.withdraw", on: { click: async () => {
        const ack = await live.request("announce.clear", { announcement_id: a.id });
        if (!ack.ok) showError(ack.error);
      } } }) : null))) : h("p", { class: "muted", i18n: "notices.none" }));
}

// ---------------------------------------------------------------- polls
function renderPolls() {
  const pane = ui.panes.polls;
  const polls = [...S.polls.values()].sort((a, b) => a.id - b.id);
  if (!polls.length) { fill(pane, h("p", { class: "muted", i18n: "console.no_polls" })); return; }
  fill(pane, polls.map((p) => pollCard(p)));
}

function pollCard(p) {
  const chair = can(CHAIR_ROLES);
  const cmd = async (name, extra = {}) => {
    if (name === "poll.close" && !(await confirmDialog("console.poll_close_confirm", p.title))) return;
    if (name === "poll.cancel" && !(await confirmDialog("console.poll_cancel_confirm", p.title, { danger: true }))) return;
    const ack = await live.request(name, { poll_id: p.id, ...extra });
    if (!ack.ok) { showError(ack.error); return; }
    if (ack.id && ack.status) S.polls.set(ack.id, { ...(S.polls.get(ack.id) || {}), ...ack });
    if (ack.result) S.results.set(p.id, ack.result);
    if (name === "poll.dismiss") S.dismissed = new Set([...(S.dismissed || []), p.id]);
    renderPolls();
  };
  const prog = S.progress.get(p.id) || p;
  const res = S.results.get(p.id) || p.result || null;
  const duration = h("select", { "aria-label": t("console.poll_duration"), "data-testid": "poll-duration" },
    [0, 30, 60, 120, 300].map((s) => h("option", { value: String(s) }, s ? t("console.seconds", { n: s }) : t("console.no_countdown"))));
  const published = !!(p.published || p.published_at);
  return h("div", { class: "card poll-card", "data-testid": "poll-card", "data-poll": String(p.id), "data-status": p.status },
    h("div", { class: "row" }, h("strong", { class: "grow" }, p.title),
      p.round > 1 ? h("span", { class: "badge" }, t("vote.round", { n: p.round })) : null,
      h("span", { class: "badge " + (p.status === "open" ? "badge-ok" : ""), "data-testid": "poll-status" }, t("poll.status_" + p.status)),
      h("span", { class: "badge" }, t(p.secret ? "vote.secret" : "vote.named"))),
    p.status === "open" || p.status === "closed"
      ? h("p", { class: "poll-progress", "data-testid": "poll-progress", "data-poll": String(p.id) }, t("vote.progress", { voted: prog.voted ?? 0, eligible: prog.eligible ?? 0 }))
      : null,
    p.status === "open" && p.closes_at ? h("p", { class: "muted" }, t("console.closes_at", { time: fmtTime(p.closes_at) })) : null,
    res && res.tally ? resultView(res) : null,
    chair ? h("div", { class: "btn-row" },
      p.status === "draft" ? [duration, h("button", { type: "button", class: "btn btn-ok", i18n: "console.poll_open", "data-testid": "poll-open",
        on: { click: () => cmd("poll.open", Number(duration.value) ? { duration_s: Number(duration.value) } : {}) } })] : null,
      p.status === "open" ? h("button", { type: "button", class: "btn btn-danger", i18n: "console.poll_close", "data-testid": "poll-close", on: { click: () => cmd("poll.close") } }) : null,
      p.status === "closed" && !published ? h("button", { type: "button", class: "btn btn-primary", i18n: "console.poll_publish", "data-testid": "poll-publish", on: { click: () => cmd("poll.publish") } }) : null,
      p.status === "closed" && published ? h("span", { class: "badge badge-ok", i18n: "console.poll_published" }) : null,
      p.status === "closed" && published && !(S.dismissed || new Set()).has(p.id) ? h("button", { type: "button", class: "btn btn-ghost", i18n: "console.poll_dismiss", "data-testid": "poll-dismiss", on: { click: () => cmd("poll.dismiss") } }) : null,
      p.status === "draft" || p.status === "open" ? h("button", { type: "button", class: "btn btn-ghost", i18n: "console.poll_cancel", on: { click: () => cmd("poll.cancel") } }) : null,
      p.status === "closed" || p.status === "cancelled" ? h("button", { type: "button", class: "btn btn-ghost", i18n: "console.poll_revote", "data-testid": "poll-revote", on: { click: () => revote(p) } }) : null,
      p.status === "closed" ? exportButtons(p) : null) : null);
}

/** A new round of a closed or cancelled poll (a draft with the same set-up), opened at once if asked. */
async function revote(p) {
  if (!(await confirmDialog("console.poll_revote_confirm", p.title))) return;
  const ack = await live.request("poll.revote", { poll_id: p.id });
  if (!ack.ok) { showError(ack.error); return; }
  const { ok: _ok, ...poll } = ack;
  if (poll.id) S.polls.set(poll.id, { ...(S.polls.get(poll.id) || {}), ...poll });
  toast(t("console.poll_revoted", { n: poll.round || 2 }), "ok");
  renderPolls();
}

/** The poll's results as CSV (spreadsheets) or JSON, as files. */
function exportButtons(p) {
  const get = async (ext) => {
    try {
      await api.download(`/polls/${p.id}/results.${ext}`, `poll-${p.id}-round${p.round || 1}.${ext}`);
    } catch (e) {
      showError(e);
    }
  };
  return [
    h("button", { type: "button", class: "btn btn-ghost", "data-testid": "poll-export-csv", on: { click: () => get("csv") } }, t("console.poll_export", { what: "CSV" })),
    h("button", { type: "button", class: "btn btn-ghost", "data-testid": "poll-export-json", on: { click: () => get("json") } }, t("console.poll_export", { what: "JSON" })),
  ];
}

function renderPollProgress(id) {
  const el = ui.panes.polls.querySelector(`[data-testid="poll-progress"][data-poll="${id}"]`);
  const p = S.progress.get(id);
  if (el && p) el.textContent = t("vote.progress", { voted: p.voted ?? 0, eligible: p.eligible ?? 0 });
  else renderPolls();
}

main().catch((e) => {
  console.error(e);
  message("error.title", describeError(e));
});
