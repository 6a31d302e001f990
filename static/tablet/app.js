// The seat tablet: join by the seat's QR code, check in, read and follow the
// materials (offline too), annotate, vote, ask to speak, call for service.
import { h, fill, $ } from "../common/dom.js";
import { t, langButton, onLangChange, fmtTime, fmtDateTime, fmtDuration } from "../common/i18n.js";
import { createApi, describeError } from "../common/api.js";
import { connectLive } from "../common/socket.js";
import { toast, showError, dialog, confirmDialog } from "../common/ui.js";
import { Viewer } from "./viewer.js";
import { AnnotationLayer } from "./annotate.js";
import { SignaturePad } from "./signature.js";
import { OfflineStore } from "./offline.js";
import { VotePanel } from "./vote.js";
import { icon } from "../common/icons.js";

const SESSION_KEY = "meeting.tablet.session";
const SERVICE_KINDS = ["water", "tea", "paper", "pen", "technician", "other"];

// ---------------------------------------------------------------- state
const S = {
  session: null, // {session_token, meeting_id, attendee, join_token}
  state: null, // the last `state` snapshot, kept up to date by events
  docs: new Map(), // id -> document JSON (visible ones)
  current: { document_id: null, page: null, seq: -1 }, // where the presenter is
  following: true,
  followLock: false,
  speakers: null,
  speakersSeq: -1,
  myCalls: new Map(),
  announcements: [],
  nameplate: false,
  status: "connecting",
};
let live = null;
let api = null;
let viewer = null;
let annotations = null;
let votes = null;
let offline = null;
const ui = {};

function loadSession() {
  try {
    const s = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
    return s && s.session_token ? s : null;
  } catch {
    return null;
  }
}

function saveSession(s) {
  S.session = s;
  try {
    if (s) localStorage.setItem(SESSION_KEY, JSON.stringify(s));
    else localStorage.removeItem(SESSION_KEY);
  } catch { /* private mode: the session lasts as long as the page */ }
}

const token = () => S.session?.session_token;
const me = () => S.state?.me || { ...S.session?.attendee, attendee_id: S.session?.attendee?.id };

// ---------------------------------------------------------------- entry
async function main() {
  document.title = t("tablet.app_title");
  const hash = new URLSearchParams(location.hash.slice(1));
  const joinToken = hash.get("join");
  if (joinToken) {
    // Keep the token out of the address bar (and out of screenshots).
    history.replaceState(null, "", location.pathname);
    await join(joinToken);
    return;
  }
  const s = loadSession();
  if (s) start(s);
  else screenMessage("join.scan_title", "join.scan_text");
}

async function join(joinToken, { after = null } = {}) {
  screenMessage("join.joining", null);
  const anon = createApi();
  try {
    const r = await anon.post("/join", { token: joinToken, device: navigator.userAgent.slice(0, 200) });
    saveSession({ ...r, join_token: joinToken });
    start(S.session);
  } catch (e) {
    const key = { bad_join_token: "join.bad_token", seat_in_use: "join.seat_in_use", meeting_ended: "join.meeting_ended" }[e.code];
    screenMessage("join.failed_title", key || null, {
      detail: key ? null : describeError(e),
      retry: e.code === "network" || e.status >= 500 ? () => join(joinToken) : null,
      after,
    });
  }
}

/** A full-screen message (join problems, revoked seat) with an optional retry. */
function screenMessage(titleKey, textKey, { detail = null, retry = null, after = null } = {}) {
  const root = $("#app");
  fill(root, h("main", { class: "screen-message", "data-testid": "screen-message" },
    h("div", { class: "card" },
      h("h1", { i18n: titleKey }),
      after ? h("p", { class: "notice", i18n: after }) : null,
      textKey ? h("p", { class: "big", i18n: textKey, "data-testid": "screen-text" }) : null,
      detail ? h("p", { class: "error-text", role: "alert" }, detail) : null,
      h("div", { class: "btn-row" },
        retry ? h("button", { type: "button", class: "btn btn-primary btn-big", i18n: "common.retry", on: { click: retry } }) : null,
        langButton(h)))));
}

// ---------------------------------------------------------------- main screen
function start(session) {
  S.session = session;
  api = createApi({ getToken: token, onUnauthorized: (e) => { if (e.code === "bad_token") revoked("session"); } });
  buildScreen();
  offline = new OfflineStore({ onProgress: cacheProgress });
  offline.init().then(() => { if (S.state) precacheAll(); });
  connect();
  reportBattery();
}

function buildScreen() {
  const a = S.session.attendee;
  ui.title = h("span", { class: "meeting-title", "data-testid": "meeting-title" });
  ui.meetingStatus = h("span", { class: "badge", "data-testid": "meeting-status" });
  ui.who = h("span", { class: "who", "data-testid": "who" },
    h("strong", { class: "who-name" }, a.name),
    a.seat ? h("span", { class: "who-seat" }, h("span", { i18n: "tablet.seat" }), " ", a.seat) : null);
  ui.checkin = h("button", { type: "button", class: "badge badge-warn checkin-badge", "data-testid": "checkin-badge", on: { click: () => (me()?.checked_in ? checkout() : openCheckin()) } });
  ui.conn = h("span", { class: "conn", "data-state": "connecting", "data-testid": "conn", role: "status", "aria-live": "polite" });
  ui.cache = h("span", { class: "cache", "data-testid": "cache-progress", role: "status", "aria-live": "polite" });
  ui.banner = h("div", { class: "banner", hidden: true, "data-testid": "banner", role: "status" });

  // Reader
  annotations = new AnnotationLayer({
    storageKey: (doc, page) => `meeting.ann.${S.session.attendee.id}.${doc.id}.${page}`,
    sync: syncAnnotation,
    onStart: () => browseHere(),
  });
  viewer = new Viewer({ urls: { page: pageUrl, thumb: thumbUrl }, onNavigate: userNavigate, overlay: annotations });
  ui.follow = h("span", { class: "follow", "data-testid": "follow-state", role: "status", "aria-live": "polite" });
  ui.backBtn = h("button", { type: "button", class: "btn btn-primary", "data-testid": "back-to-presenter", i18n: "viewer.back", on: { click: () => follow() } });
  ui.docTitle = h("span", { class: "doc-title grow", "data-testid": "doc-title" });
  ui.shownBy = h("span", { class: "badge badge-primary", "data-testid": "shown-by", role: "status", hidden: true });
  ui.annBtn = h("button", { type: "button", class: "btn", "aria-pressed": "false", i18n: "ann.tools", "data-testid": "ann-toggle", on: { click: () => toggleAnnTools() } });
  ui.annTools = annToolbar();
  const readerBar = h("div", { class: "reader-bar" },
    ui.follow, ui.backBtn, ui.docTitle, ui.shownBy, viewer.pageLabel,
    h("div", { class: "btn-row zoom" }, viewer.zoomOut, viewer.zoomReset, viewer.zoomIn),
    ui.annBtn);
  ui.reader = h("section", { class: "panel reader", "data-testid": "reader", i18nAttrs: { "aria-label": "nav.reader" } }, readerBar, ui.annTools, viewer.el);

  // Other panels
  ui.materials = h("section", { class: "panel", "data-testid": "materials-panel" }, h("h2", { i18n: "nav.materials" }), h("div", { class: "materials" }));
  ui.agenda = h("section", { class: "panel", "data-testid": "agenda-panel" }, h("h2", { i18n: "nav.agenda" }), h("ol", { class: "agenda" }));
  votes = new VotePanel({
    send: (payload) => live.request("vote", payload, { queue: true, timeout: 10000 }),
    storageKey: `meeting.ballots.${S.session.attendee.id}`,
    onCheckin: () => openCheckin(),
    onAttention: (why) => attention(why),
  });
  ui.speak = h("section", { class: "panel", "data-testid": "speak-panel" }, h("h2", { i18n: "nav.speak" }), h("div", { class: "speak" }));
  ui.service = h("section", { class: "panel", "data-testid": "service-panel" }, h("h2", { i18n: "nav.service" }), serviceButtons(), h("div", { class: "calls" }));
  ui.notices = h("section", { class: "panel", "data-testid": "notices-panel" }, h("h2", { i18n: "nav.notices" }), h("ul", { class: "notices" }));

  ui.panels = { reader: ui.reader, materials: ui.materials, agenda: ui.agenda, vote: votes.el, speak: ui.speak, service: ui.service, notices: ui.notices };
  ui.nav = h("nav", { class: "tabnav", i18nAttrs: { "aria-label": "tablet.nav_label" } });
  ui.navButtons = {};
  for (const name of Object.keys(ui.panels)) {
    const b = h("button", { type: "button", class: "navbtn", "data-panel": name, "data-testid": "nav-" + name, "aria-current": "false", on: { click: () => showPanel(name) } },
      h("span", { class: "nav-icon" }, icon(name)),
      h("span", { class: "nav-label", i18n: "nav." + name }),
      h("span", { class: "dot", hidden: true }));
    ui.navButtons[name] = b;
    ui.nav.append(b);
  }
  ui.nav.append(h("button", { type: "button", class: "navbtn", "data-testid": "nav-nameplate", on: { click: () => setNameplate(true) } },
    h("span", { class: "nav-icon" }, icon("nameplate")), h("span", { class: "nav-label", i18n: "nav.nameplate" })));
  ui.main = h("main", { class: "content", id: "content" }, Object.values(ui.panels));
  ui.nameplate = h("div", { class: "nameplate", hidden: true, "data-testid": "nameplate", role: "dialog", "aria-modal": "true", on: { click: () => { if (!S.nameplateForced) setNameplate(false); } } });

  const header = h("header", { class: "topbar" },
    h("div", { class: "topbar-main" }, ui.title, ui.meetingStatus),
    ui.who, ui.checkin, ui.conn, ui.cache, langButton(h));
  fill($("#app"), h("div", { class: "tablet" }, header, ui.banner, h("div", { class: "body" }, ui.nav, ui.main)), ui.nameplate);
  showPanel("reader");
  document.addEventListener("keydown", onKey);
  onLangChange(() => renderAll());
  renderAll();
}

function showPanel(name) {
  for (const [k, el] of Object.entries(ui.panels)) {
    el.hidden = k !== name;
    ui.navButtons[k].setAttribute("aria-current", k === name ? "page" : "false");
    if (k === name) ui.navButtons[k].querySelector(".dot").hidden = true;
  }
  ui.current = name;
  if (name === "reader") requestAnimationFrame(() => annotations.resize());
}

function attention(why) {
  const panel = why === "notice" ? "notices" : why === "speak" ? "speak" : "vote";
  if (ui.current !== panel) ui.navButtons[panel].querySelector(".dot").hidden = false;
  if (why === "poll") {
    showPanel("vote");
    toast(t("vote.opened"), "info", 5000);
  }
}

function onKey(e) {
  if (e.target.closest("input, textarea, select, dialog")) return;
  if (ui.current !== "reader") return;
  if (e.key === "ArrowRight" || e.key === "PageDown") { viewer.step(1); e.preventDefault(); }
  if (e.key === "ArrowLeft" || e.key === "PageUp") { viewer.step(-1); e.preventDefault(); }
}

// ---------------------------------------------------------------- live connection
function connect() {
  live = connectLive({
    auth: { token: token() },
    outboxKey: `meeting.outbox.${S.session.attendee.id}`,
    onStatus: connStatus,
    onState,
    onCurrent,
    handlers: {
      meeting: (m) => { S.state.meeting = { ...S.state.meeting, ...m }; renderMeeting(); if (m.status === "ended") meetingEnded(); },
      attendance: (a) => { if (newer(a, "attendance")) S.state.attendance = a; },
      agenda: (a) => { S.state.agenda = a.items || []; renderAgenda(); },
      "documents.changed": () => refreshDocuments(),
      "documents.withdrawn": (w) => withdraw(w.document_ids || [], w.reason),
      "session.revoked": () => revoked("revoked"),
      "seat.checkin": (c) => seatCheckin(c),
      poll: (p) => votes.setPoll(p),
      "poll.progress": (p) => votes.progress(p),
      "poll.result": (r) => votes.result(r),
      "poll.dismissed": (d) => votes.dismissed(d.id),
      speakers: (q) => setSpeakers(q),
      announcement: (a) => addAnnouncement(a),
      "announcement.cleared": (a) => { S.announcements = S.announcements.filter((x) => x.id !== a.id); renderNotices(); },
      "service.call": (c) => serviceUpdated(c),
      nameplate: (n) => nameplateEvent(n),
      pointer: (p) => viewer.live.pointer(p),
      ink: (i) => viewer.live.ink(i),
      "ink.clear": (c) => viewer.live.clear(c),
      annotation: (a) => annotationEvent(a),
      "annotation.shown": (ev) => showShared(ev),
    },
  });
  live.onOutbox(({ item, ack }) => {
    if (item.name === "vote") votes.acked(item.payload.poll_id, item.payload.ballot_id, ack);
  });
}

/** Drop a numbered update (attendance, speakers, nameplate) older than one already applied. */
const seen = {};
function newer(msg, kind) {
  if (typeof msg?.seq !== "number") return true;
  if (msg.seq <= (seen[kind] ?? -1)) return false;
  seen[kind] = msg.seq;
  return true;
}

function connStatus(status, detail) {
  const was = S.status;
  if (status === "online") { lastReport = ""; report(); }
  S.status = status;
  ui.conn.dataset.state = status;
  ui.conn.textContent = t("conn." + status);
  if (status === "refused") {
    revoked(detail?.code === "bad_token" ? "session" : "refused", detail);
    return;
  }
  if (status === "offline") {
    banner(t("conn.offline_banner"), "warn");
  } else if (status === "online") {
    banner(null);
    if (was === "offline") toast(t("conn.back"), "ok");
  }
}

function banner(text, kind = "warn") {
  ui.banner.hidden = !text;
  ui.banner.className = "banner" + (kind === "danger" ? " banner-danger" : kind === "ok" ? " banner-ok" : "");
  ui.banner.textContent = text || "";
}

/** The seat's session is gone: say so plainly and offer to scan again. */
function revoked(why) {
  if (live) live.close();
  const joinToken = S.session?.join_token;
  saveSession(null);
  const rejoin = joinToken ? () => join(joinToken, { after: "join.revoked_title" }) : null;
  screenMessage("join.revoked_title", why === "session" ? "join.expired_text" : "join.revoked_text", { retry: rejoin });
}

function onState(st) {
  const first = !S.state;
  S.state = st;
  S.docs = new Map((st.documents || []).map((d) => [d.id, d]));
  S.current = { ...st.current };
  S.followLock = !!st.current?.follow_lock;
  if (S.followLock) S.following = true;
  if (st.server_time) S.clockOffset = Date.parse(st.server_time) - Date.now();
  // A snapshot replaces everything, its seq values included.
  for (const k of Object.keys(seen)) delete seen[k];
  if (st.attendance) newer(st.attendance, "attendance");
  S.speakers = null;
  if (st.speakers) setSpeakers(st.speakers);
  if (st.announcement && !S.announcements.some((a) => a.id === st.announcement.id)) S.announcements.unshift(st.announcement);
  if (st.nameplate) { S.nameplateForced = false; nameplateEvent({ ...st.nameplate, attendee_id: null }); }
  S.myCalls = new Map((st.service_calls || []).map((c) => [c.id, c]));
  viewer.live.clear({ reason: "page" });
  annLoaded.clear();
  if (viewer.doc && S.docs.has(viewer.doc.id)) loadAnnotations(S.docs.get(viewer.doc.id));
  showShared(st.annotations?.shown || null);
  votes.clockOffset = S.clockOffset || 0;
  votes.setMe(st.me);
  votes.setPoll(st.poll);
  votes.setMyVote(st.my_vote);
  if (st.poll_result) votes.result(st.poll_result);
  renderAll();
  if (S.following) showCurrent();
  else if (viewer.doc && !S.docs.has(viewer.doc.id)) follow();
  if (first && !st.me?.checked_in && st.meeting?.status !== "ended") openCheckin();
  precacheAll();
  if (st.meeting?.status === "ended") meetingEnded();
}

/** `page`, `view`, `agenda.current` or `follow.lock`: the whole current block, newest only. */
function onCurrent(block, name) {
  if (name === "page") window.__lastPageEvent = { document_id: block.document_id, page: block.page, at: performance.timeOrigin + performance.now() };
  const prev = S.current;
  S.current = { ...S.current, ...block };
  const moved = prev.document_id !== block.document_id || prev.page !== block.page;
  if (name === "page" || moved) viewer.live.clear({ reason: "page" });
  const wasLocked = S.followLock;
  S.followLock = !!block.follow_lock;
  if (S.followLock && !wasLocked) {
    S.following = true;
    toggleAnnTools(false);
    toast(t("viewer.locked"), "info");
  }
  if (S.following) {
    if (moved || !viewer.doc) showCurrent();
    else if (name === "view") viewer.applyView(block.view);
  }
  if (name === "agenda.current") renderAgenda();
  renderFollow();
}

// ---------------------------------------------------------------- documents and pages
function pageUrl(doc, n) {
  return doc.pages_url.replace("{n}", String(n)) + "&access_token=" + encodeURIComponent(token());
}

function thumbUrl(doc, n) {
  return doc.thumbs_url.replace("{n}", String(n)) + "&access_token=" + encodeURIComponent(token());
}

function showCurrent() {
  const { document_id, page } = S.current;
  const doc = S.docs.get(document_id);
  if (!doc || !page) {
    if (!viewer.doc) viewer.clear();
    renderFollow();
    return;
  }
  viewer.show(doc, page, S.current.view);
  loadAnnotations(doc);
  renderDocTitle(doc);
  renderShareState();
  renderFollow();
  report();
}

/** The attendee flipped or opened something: leave the presenter (unless locked). */
function userNavigate({ document_id, page }) {
  const doc = S.docs.get(document_id);
  if (!doc) return;
  if (S.followLock) {
    if (document_id !== S.current.document_id || page !== S.current.page) toast(t("viewer.locked"), "info");
    return;
  }
  const onPresenter = document_id === S.current.document_id && page === S.current.page;
  if (!onPresenter) S.following = false;
  viewer.show(doc, page);
  loadAnnotations(doc);
  renderDocTitle(doc);
  renderShareState();
  renderFollow();
  report();
}

function browseHere() {
  if (S.followLock) return;
  if (S.following) {
    S.following = false;
    renderFollow();
    report();
  }
}

function follow() {
  S.following = true;
  showCurrent();
}

function openDocument(doc, page = 1) {
  if (S.followLock) {
    toast(t("viewer.locked"), "info");
    showPanel("reader");
    return;
  }
  showPanel("reader");
  userNavigate({ document_id: doc.id, page });
}

function renderDocTitle(doc) {
  ui.docTitle.textContent = doc ? doc.title : "";
}

function renderFollow() {
  if (!ui.follow) return;
  const following = S.following || S.followLock;
  ui.follow.dataset.state = following ? "following" : "browsing";
  const cur = S.current;
  const hasCurrent = cur.document_id && S.docs.has(cur.document_id);
  if (following) {
    ui.follow.textContent = t(S.followLock ? "viewer.locked_badge" : hasCurrent ? "viewer.following" : "viewer.waiting");
  } else {
    ui.follow.textContent = hasCurrent ? t("viewer.browsing_at", { page: cur.page }) : t("viewer.browsing");
  }
  ui.backBtn.hidden = following || !hasCurrent;
}

async function refreshDocuments() {
  try {
    const r = await api.get(`/meetings/${S.session.meeting_id}/documents`);
    const next = new Map(r.documents.filter((d) => !d.withdrawn).map((d) => [d.id, d]));
    const gone = [...S.docs.keys()].filter((id) => !next.has(id));
    S.docs = next;
    if (S.state) S.state.documents = [...next.values()];
    if (gone.length) withdraw(gone, "changed", { silent: true });
    renderMaterials();
    renderAgenda();
    precacheAll();
    if (viewer.doc && next.has(viewer.doc.id) && next.get(viewer.doc.id).version !== viewer.doc.version) {
      viewer.show(next.get(viewer.doc.id), viewer.page);
    }
    if ((S.following || S.followLock) && !viewer.doc) showCurrent();
  } catch (e) {
    if (e.code !== "network") showError(e);
  }
}

function withdraw(ids, reason, { silent = false } = {}) {
  const set = new Set(ids);
  for (const id of ids) S.docs.delete(id);
  offline?.purge(ids);
  viewer.forget(ids);
  for (const id of ids) {
    for (const k of Object.keys(localStorage)) if (k.startsWith(`meeting.ann.${S.session.attendee.id}.${id}.`)) localStorage.removeItem(k);
  }
  if (viewer.doc && set.has(viewer.doc.id)) {
    viewer.clear();
    viewer.img.removeAttribute("src");
    renderDocTitle(null);
  }
  if (S.current.document_id && set.has(S.current.document_id)) S.current = { ...S.current, document_id: null, page: null };
  renderMaterials();
  renderAgenda();
  renderFollow();
  if (!silent) toast(t(reason === "meeting_ended" ? "docs.withdrawn_end" : "docs.withdrawn"), "info", 6000);
}

function meetingEnded() {
  banner(t("meeting.ended_banner"), "ok");
  // Confidential materials never stay on a seat after the meeting.
  const confidential = [...S.docs.values()].filter((d) => d.confidential).map((d) => d.id);
  if (confidential.length) withdraw(confidential, "meeting_ended", { silent: true });
}

let cacheState = { done: 0, total: 0, failed: 0, finished: false };

function precacheAll() {
  if (!offline || !S.state) return;
  const docs = [...S.docs.values()];
  offline.precache(token(), docs);
}

function cacheProgress(m) {
  cacheState = { done: m.done, total: m.total, failed: m.failed || 0, finished: m.type === "cache-done" };
  renderCache();
}

function renderCache() {
  if (!ui.cache) return;
  const { done, total, failed, finished } = cacheState;
  ui.cache.dataset.done = String(done);
  ui.cache.dataset.total = String(total);
  ui.cache.dataset.finished = finished && done >= total ? "true" : "false";
  if (!total) { ui.cache.textContent = ""; return; }
  if (finished && done >= total) ui.cache.textContent = t("cache.all", { total });
  else ui.cache.textContent = t("cache.progress", { done, total }) + (failed ? " · " + t("cache.failed", { failed }) : "");
}

// ---------------------------------------------------------------- annotations
function annToolbar() {
  const tools = ["pen", "highlight", "eraser", "note"];
  const bar = h("div", { class: "ann-tools btn-row", hidden: true, role: "toolbar", "data-testid": "ann-tools" });
  for (const tool of tools) {
    bar.append(h("button", { type: "button", class: "btn", "data-tool": tool, "data-testid": "ann-" + tool, "aria-pressed": "false", i18n: "ann." + tool,
      on: { click: () => selectTool(tool) } }));
  }
  ui.shareState = h("span", { class: "muted ann-share-state", "data-testid": "ann-share-state", role: "status" });
  bar.append(
    h("button", { type: "button", class: "btn", i18n: "ann.share", "data-testid": "ann-share", on: { click: () => shareDialog() } }),
    ui.shareState,
    h("button", { type: "button", class: "btn btn-ghost", i18n: "ann.clear", on: { click: () => annotations.clearPage() } }),
    h("button", { type: "button", class: "btn btn-primary", i18n: "ann.done", on: { click: () => toggleAnnTools(false) } }));
  return bar;
}

/*
 * Sharing: a seat's annotations are private until it shares a page's annotations with the room
 * (everyone who may see the document) or with the presenter (chair, presenter, organizers), and
 * private again when it wants (`annotation.share` with `page`). The state per page comes from the
 * server's list (`shared` on each annotation) and from the acks.
 */
const pageShare = new Map(); // "docId:page" -> "private" | "room" | "presenter"

function renderShareState() {
  if (!ui.shareState) return;
  const to = viewer.doc ? pageShare.get(`${viewer.doc.id}:${viewer.page}`) || "private" : "private";
  ui.shareState.dataset.to = to;
  ui.shareState.textContent = t("ann.shared_now", { to: t("ann.share_" + to) });
}

async function shareDialog() {
  const doc = viewer.doc;
  const page = viewer.page;
  if (!doc) return;
  const current = pageShare.get(`${doc.id}:${page}`) || "private";
  const hasItems = annotations.doc?.id === doc.id && annotations.page === page && annotations.items.length > 0;
  if (!hasItems) { toast(t("ann.share_none"), "info"); return; }
  const to = await dialog({
    titleKey: "ann.share_title",
    body: h("p", { i18n: "ann.share_hint" }),
    actions: ["private", "presenter", "room"].map((x) => ({
      i18n: "ann.share_" + x, value: x, kind: x === current ? "primary" : "ghost", testid: "share-" + x,
    })),
  });
  if (!to || to === current) return;
  // What is still queued (drawn offline, or a moment ago) goes first, so the share covers it.
  const queued = () => live.pending().some((x) => x.name.startsWith("annotation.") && x.payload?.document_id === doc.id);
  for (let i = 0; i < 50 && queued() && S.status === "online"; i++) await new Promise((resolve) => setTimeout(resolve, 100));
  const ack = await live.request("annotation.share", { document_id: doc.id, to, page });
  if (!ack.ok) { showError(ack.error, "ann.share_failed"); return; }
  pageShare.set(`${doc.id}:${page}`, to);
  renderShareState();
  toast(t("ann.shared_now", { to: t("ann.share_" + to) }), "ok");
}

function selectTool(tool) {
  annotations.setTool(annotations.tool === tool ? null : tool);
  for (const b of ui.annTools.querySelectorAll("[data-tool]")) b.setAttribute("aria-pressed", b.dataset.tool === annotations.tool ? "true" : "false");
}

function toggleAnnTools(on = ui.annTools.hidden) {
  ui.annTools.hidden = !on;
  ui.annBtn.setAttribute("aria-pressed", on ? "true" : "false");
  if (on) selectTool("pen");
  else { annotations.setTool(null); selectTool(null); annotations.setTool(null); }
}

/*
 * Annotations are private and kept on the device at once (page fractions), then
 * saved on the server with `annotation.save` / `annotation.delete` (coordinates
 * in PDF points; upserts by the client's id, so a resend from the offline queue
 * is harmless). The server copy is read back per document after each connect.
 */
const pageSizes = new Map(); // doc id -> [{n, pdf_width, pdf_height}]
const annLoaded = new Set(); // "docId:version" read from the server since the last connect
const KIND_TO_SERVER = { pen: "pen", highlight: "highlighter", note: "note" };
const KIND_FROM_SERVER = { pen: "pen", highlighter: "highlight", highlight: "highlight", note: "note", text: "note" };

async function sizesOf(doc) {
  if (!pageSizes.has(doc.id)) {
    try {
      const d = await api.get(`/documents/${doc.id}`);
      pageSizes.set(doc.id, d.pages || []);
    } catch {
      return null;
    }
  }
  return pageSizes.get(doc.id);
}

function pdfSize(doc, page) {
  const p = (pageSizes.get(doc.id) || []).find((x) => x.n === page);
  return p && p.pdf_width ? [p.pdf_width, p.pdf_height] : [595, 842];
}

function toServer(doc, page, it) {
  const [w, ht] = pdfSize(doc, page);
  const pt = ([x, y]) => [Math.round(x * w * 100) / 100, Math.round(y * ht * 100) / 100];
  const out = { document_id: doc.id, id: it.id, version: doc.version, page, kind: KIND_TO_SERVER[it.kind], rev: it.rev || 0 };
  if (it.kind === "note") {
    out.points = [pt([it.x, it.y])];
    out.text = it.text;
  } else {
    out.points = it.points.slice(0, 5000).map(pt);
    out.width = Math.round((it.kind === "highlight" ? 0.022 : 0.004) * w * 100) / 100;
    if (it.color) out.color = it.color;
  }
  return out;
}

function fromServer(doc, a) {
  const [w, ht] = pdfSize(doc, a.page);
  const fr = ([x, y]) => [Math.round((x / w) * 10000) / 10000, Math.round((y / ht) * 10000) / 10000];
  const kind = KIND_FROM_SERVER[a.kind] || "pen";
  if (kind === "note") {
    const [x, y] = fr((a.points && a.points[0]) || (a.rect ? [a.rect[0], a.rect[1]] : [0, 0]));
    return { id: a.id, kind, x, y, text: a.text || "", rev: a.rev };
  }
  let pts = a.points || (a.strokes || []).flat();
  if (!pts.length && a.rect) pts = [[a.rect[0], a.rect[1]], [a.rect[2], a.rect[3]]];
  return { id: a.id, kind, points: pts.map(fr), rev: a.rev };
}

function syncAnnotation(doc, page, items, change) {
  if (!change || !live) return;
  const it = change.item;
  if (change.op === "delete") live.request("annotation.delete", { document_id: doc.id, ids: [it.id], rev: it.rev }, { queue: true });
  else live.request("annotation.save", toServer(doc, page, it), { queue: true });
}

/** Read this seat's annotations of `doc` from the server (after a connect) and keep what is still queued here. */
async function loadAnnotations(doc) {
  const key = `${doc.id}:${doc.version}`;
  if (annLoaded.has(key) || S.status !== "online") return;
  annLoaded.add(key);
  await sizesOf(doc);
  let r;
  try {
    r = await api.get(`/documents/${doc.id}/annotations`);
  } catch {
    annLoaded.delete(key);
    return;
  }
  const pending = new Set(live.pending().filter((x) => x.payload?.document_id === doc.id).map((x) => x.payload.id || x.payload.ids?.[0]));
  const byPage = new Map();
  for (const a of r.annotations || []) {
    if (a.orphaned) continue;
    if (a.shared && (a.version == null || a.version === doc.version)) pageShare.set(`${doc.id}:${a.page}`, a.shared);
    if (!byPage.has(a.page)) byPage.set(a.page, []);
    byPage.get(a.page).push(fromServer(doc, a));
  }
  for (let n = 1; n <= (doc.page_count || 0); n++) {
    const local = annotations.load(doc, n);
    const server = byPage.get(n) || [];
    const ids = new Set(server.map((x) => x.id));
    const kept = local.filter((x) => pending.has(x.id) && !ids.has(x.id));
    const merged = [...server.filter((x) => !pending.has(x.id) || local.some((l) => l.id === x.id)), ...kept];
    if (merged.length || local.length) annotations.replace(doc, n, merged);
  }
}

/** The presenter shows a seat's shared annotations to the room (`annotation.shown`; null document: hidden). */
async function showShared(ev) {
  const doc = ev?.document_id != null ? S.docs.get(ev.document_id) : null;
  if (!doc) {
    viewer.live.setShown([]);
    ui.shownBy.hidden = true;
    return;
  }
  await sizesOf(doc);
  const STYLE = { pen: { color: "#c00000", width: 4 }, highlight: { color: "rgba(255, 212, 0, 0.45)", width: 22 } };
  const list = (ev.annotations || []).map((a) => ({ a, f: fromServer(doc, a) })).filter(({ f }) => f.kind !== "note" && f.points?.length)
    .map(({ a, f }) => ({ document_id: doc.id, page: a.page, points: f.points, color: a.kind === "pen" && a.color ? a.color : STYLE[f.kind].color, width: STYLE[f.kind].width }));
  viewer.live.setShown(list);
  const who = ev.attendee ? `${ev.attendee.name || ""}${ev.attendee.seat ? " (" + ev.attendee.seat + ")" : ""}` : "";
  ui.shownBy.textContent = t("ann.shown_by", { who });
  ui.shownBy.dataset.count = String(list.length);
  ui.shownBy.hidden = false;
}

/** Another device of this seat saved or erased annotations. */
function annotationEvent(ev) {
  const doc = S.docs.get(ev.document_id);
  if (!doc) return;
  if (ev.reload) { annLoaded.delete(`${doc.id}:${doc.version}`); loadAnnotations(doc); return; }
  const touched = new Map();
  for (const a of ev.saved || []) {
    const items = touched.get(a.page) || annotations.load(doc, a.page);
    const it = fromServer(doc, a);
    const i = items.findIndex((x) => x.id === it.id);
    if (i >= 0) items[i] = it; else items.push(it);
    touched.set(a.page, items);
  }
  if ((ev.deleted || []).length) {
    const gone = new Set(ev.deleted);
    for (let n = 1; n <= (doc.page_count || 0); n++) {
      const items = touched.get(n) || annotations.load(doc, n);
      if (items.some((x) => gone.has(x.id))) touched.set(n, items.filter((x) => !gone.has(x.id)));
    }
  }
  for (const [n, items] of touched) annotations.replace(doc, n, items);
}

// ---------------------------------------------------------------- check-in
let checkinOpen = false;

async function openCheckin() {
  if (checkinOpen || me()?.checked_in) return;
  checkinOpen = true;
  const pad = new SignaturePad();
  const m = me();
  const body = h("div", { class: "checkin" },
    h("p", { class: "big" }, t("checkin.welcome", { name: m.name || "" }), m.seat ? ` · ${t("tablet.seat")} ${m.seat}` : ""),
    h("p", { i18n: "checkin.sign_hint" }),
    pad.el,
    h("div", { class: "btn-row" },
      h("button", { type: "button", class: "btn btn-ghost", i18n: "checkin.undo", on: { click: () => pad.undo() } }),
      h("button", { type: "button", class: "btn btn-ghost", i18n: "checkin.clear", on: { click: () => pad.clear() } })));
  const v = await dialog({
    titleKey: "checkin.title",
    className: "checkin-dialog",
    body,
    actions: [
      { i18n: "checkin.later", value: "later", kind: "ghost", testid: "checkin-later" },
      { i18n: "checkin.button", value: "go", kind: "primary", testid: "checkin-go" },
    ],
  });
  checkinOpen = false;
  if (v === "go") await checkin(pad.toJSON());
}

async function checkin(signature) {
  // The signature (vector strokes) goes with the check-in where the server takes it; a server whose
  // `checkin` has no `signature` field yet refuses it as invalid: then it stays on the device.
  let ack = signature ? await live.request("checkin", { signature }) : null;
  const refused = ack && !ack.ok && ack.error?.code === "invalid" && (ack.error.details?.fields || []).some((f) => f.field.startsWith("signature"));
  if (signature) keepSignature(signature, !!ack?.ok);
  if (!ack || refused) ack = await live.request("checkin", {});
  if (!ack.ok) {
    showError(ack.error, "checkin.failed");
    return;
  }
  S.state.me = { ...S.state.me, checked_in: true, checked_in_at: ack.checked_in_at, entered_at: ack.entered_at, checked_out_at: null };
  votes.setMe(S.state.me);
  renderCheckin();
  toast(t("checkin.done", { time: fmtTime(ack.entered_at || ack.checked_in_at || new Date()) }), "ok");
}

async function checkout() {
  const ok = await confirmDialog("checkin.checkout_title", t("checkin.checkout_text"), { okKey: "checkin.checkout" });
  if (!ok) return;
  const ack = await live.request("checkout", {});
  if (!ack.ok) { showError(ack.error); return; }
  S.state.me = { ...S.state.me, checked_in: false, checked_out_at: ack.checked_out_at };
  votes.setMe(S.state.me);
  renderCheckin();
}

/** The staff checked this seat in or out (代签), or another device of the seat did. */
function seatCheckin(c) {
  if (!S.state || c.attendee_id !== me()?.attendee_id) return;
  S.state.me = { ...S.state.me, checked_in: c.checked_in, checked_in_at: c.checked_in_at ?? S.state.me.checked_in_at, late: c.late, left_early: c.left_early };
  votes.setMe(S.state.me);
  renderCheckin();
  if (c.checked_in && c.method === "proxy") toast(t("checkin.proxy_done"), "ok");
}

function keepSignature(signature, sent) {
  try { localStorage.setItem(`meeting.signature.${S.session.attendee.id}`, JSON.stringify({ signature, at: new Date().toISOString(), sent })); } catch { /* ignore */ }
}

function renderCheckin() {
  const m = me();
  const ok = !!m?.checked_in;
  ui.checkin.className = "badge checkin-badge " + (ok ? "badge-ok" : "badge-warn");
  ui.checkin.textContent = ok ? t("checkin.badge_in", { time: fmtTime(m.checked_in_at) }) : t("checkin.badge_out");
  ui.checkin.dataset.state = ok ? "in" : "out";
}

// ---------------------------------------------------------------- agenda and materials
function renderAgenda() {
  const list = ui.agenda.querySelector(".agenda");
  const items = S.state?.agenda || [];
  const cur = S.current?.agenda_item_id;
  if (!items.length) { fill(list, h("li", { class: "muted", i18n: "agenda.empty" })); return; }
  fill(list, items.map((it) => h("li", { class: it.id === cur ? "agenda-item current" : "agenda-item", "aria-current": it.id === cur ? "step" : null, "data-testid": "agenda-item" },
    h("div", { class: "row" },
      h("strong", { class: "grow" }, it.title),
      it.id === cur ? h("span", { class: "badge badge-primary", i18n: "agenda.current" }) : null,
      it.duration_minutes ? h("span", { class: "muted" }, t("agenda.minutes", { n: it.duration_minutes })) : null),
    it.description ? h("p", { class: "muted" }, it.description) : null,
    h("div", { class: "btn-row" }, (it.document_ids || []).filter((id) => S.docs.has(id)).map((id) => docButton(S.docs.get(id)))))));
}

function docButton(doc) {
  return h("button", { type: "button", class: "btn doc-btn", on: { click: () => openDocument(doc) } }, icon("reader", 22), doc.title);
}

function renderMaterials() {
  const box = ui.materials.querySelector(".materials");
  const docs = [...S.docs.values()];
  if (!docs.length) { fill(box, h("p", { class: "muted", i18n: "docs.none" })); return; }
  fill(box, h("ul", { class: "doc-list" }, docs.map((d) => h("li", { class: "doc-row", "data-testid": "doc-row" },
    h("button", { type: "button", class: "btn doc-open grow", disabled: d.status !== "ready", on: { click: () => openDocument(d) } },
      h("span", { class: "doc-name" }, d.title)),
    h("span", { class: "muted" }, d.status === "ready" ? t("docs.pages", { n: d.page_count || 0 }) : t("docs.status_" + d.status)),
    d.confidential ? h("span", { class: "badge badge-danger", i18n: "docs.confidential" }) : null,
    d.id === S.current.document_id ? h("span", { class: "badge badge-primary", i18n: "docs.presenting" }) : null))));
}

function renderMeeting() {
  const m = S.state?.meeting;
  if (!m) return;
  ui.title.textContent = m.title;
  document.title = `${m.title} · ${t("tablet.app_title")}`;
  ui.meetingStatus.textContent = t("meeting.status_" + m.status);
  ui.meetingStatus.className = "badge " + (m.status === "live" ? "badge-ok" : m.status === "ended" ? "badge-danger" : "");
}

// ---------------------------------------------------------------- speaking
function setSpeakers(q) {
  if (!newer(q, "speakers")) return;
  if (q.server_time) S.clockOffset = Date.parse(q.server_time) - Date.now();
  S.speakers = q;
  renderSpeak();
}

function myRequest() {
  const id = me()?.attendee_id;
  const q = S.speakers;
  if (!q || id == null) return null;
  if (q.current && q.current.attendee_id === id) return q.current;
  return (q.queue || []).find((r) => r.attendee_id === id) || null;
}

function renderSpeak() {
  const box = ui.speak.querySelector(".speak");
  const mine = myRequest();
  const q = S.speakers;
  const waiting = q?.queue || [];
  let status;
  let button = null;
  if (mine && mine.status === "speaking") {
    status = h("div", { class: "speaking", role: "status", "data-testid": "speak-status" }, h("p", { class: "big ok", i18n: "speak.now" }), timerEl(mine));
    button = h("button", { type: "button", class: "btn btn-big", i18n: "speak.finish", on: { click: () => speakCmd("speaker.withdraw", {}) } });
  } else if (mine) {
    const ahead = waiting.findIndex((r) => r.id === mine.id);
    status = h("p", { class: "big", role: "status", "data-testid": "speak-status" }, t("speak.waiting", { n: Math.max(0, ahead) }));
    button = h("button", { type: "button", class: "btn btn-big", i18n: "speak.withdraw", "data-testid": "speak-withdraw", on: { click: () => speakCmd("speaker.withdraw", {}) } });
  } else {
    status = h("p", { class: "muted big", i18n: "speak.none", "data-testid": "speak-status" });
    button = h("button", { type: "button", class: "btn btn-primary btn-big", i18n: "speak.request", "data-testid": "speak-request", on: { click: () => speakCmd("speaker.request", {}) } });
  }
  const cur = q?.current && q.current.attendee_id !== me()?.attendee_id
    ? h("p", null, t("speak.current", { name: q.current.name || "" }), q.current.seat ? ` (${q.current.seat})` : "")
    : null;
  fill(box, status, button, cur, h("p", { class: "muted" }, t("speak.queue_len", { n: waiting.length })));
}

/** Now on the server's clock (offset learned from `server_time`). */
function serverNow() {
  return Date.now() + (S.clockOffset || 0);
}

function timerEl(req) {
  const el = h("p", { class: "timer", "data-testid": "speak-timer" });
  if (!req.ends_at) return el;
  const tick = () => {
    if (!el.isConnected && el.dataset.started) return;
    el.dataset.started = "1";
    const left = (Date.parse(req.ends_at) - serverNow()) / 1000;
    el.textContent = fmtDuration(left);
    el.classList.toggle("over", left <= 0);
    setTimeout(tick, 500);
  };
  tick();
  return el;
}

async function speakCmd(name, payload) {
  const ack = await live.request(name, payload);
  if (!ack.ok) showError(ack.error);
}

// ---------------------------------------------------------------- service calls
function serviceButtons() {
  return h("div", { class: "service-grid" }, SERVICE_KINDS.map((kind) => h("button", {
    type: "button", class: "btn btn-big service-btn", "data-kind": kind, "data-testid": "service-" + kind,
    on: { click: () => callService(kind) },
  }, h("span", { class: "nav-icon" }, icon(kind, 34)), h("span", { i18n: "service." + kind }))));
}

async function callService(kind) {
  let note = "";
  if (kind === "other") {
    const input = h("input", { type: "text", maxlength: "200", i18nAttrs: { "aria-label": "service.note" } });
    const v = await dialog({ titleKey: "service.other", body: input, actions: [
      { i18n: "common.cancel", value: null, kind: "ghost" }, { i18n: "service.send", value: "ok", kind: "primary" }] });
    if (v !== "ok") return;
    note = input.value.trim();
  }
  const ack = await live.request("service.call", { kind, note });
  if (!ack.ok) { showError(ack.error); return; }
  const call = ack.call;
  S.myCalls.set(call.id, call);
  renderCalls();
  toast(t("service.sent", { what: t("service." + kind) }), "ok");
}

function serviceUpdated(c) {
  if (!c || c.attendee_id !== me()?.attendee_id) return;
  if (!S.myCalls) S.myCalls = new Map();
  const before = S.myCalls.get(c.id);
  S.myCalls.set(c.id, c);
  if (before && before.status === "open" && c.status === "closed") toast(t("service.done", { what: t("service." + c.kind) }), "ok", 6000);
  renderCalls();
}

function renderCalls() {
  const box = ui.service.querySelector(".calls");
  const open = [...S.myCalls.values()].filter((c) => c.status === "open");
  fill(box, open.length ? h("h3", { i18n: "service.open_calls" }) : null,
    h("ul", { class: "call-list" }, open.map((c) => h("li", { class: "row", "data-testid": "my-call" },
      h("span", { class: "grow" }, t("service." + c.kind), c.note ? ` — ${c.note}` : "", " · ", fmtTime(c.created_at)),
      h("button", { type: "button", class: "btn btn-ghost", i18n: "service.cancel", on: { click: async () => {
        const ack = await live.request("service.cancel", { call_id: c.id });
        if (!ack.ok) showError(ack.error); else { S.myCalls.set(c.id, ack.call || { ...c, status: "cancelled" }); renderCalls(); }
      } } })))));
}

// ---------------------------------------------------------------- announcements
function addAnnouncement(a) {
  if (S.announcements.some((x) => x.id === a.id)) return;
  S.announcements = [a, ...S.announcements].sort((x, y) => y.id - x.id);
  renderNotices();
  attention("notice");
  if (a.level === "urgent") {
    dialog({ titleKey: "notices.urgent", body: h("p", { class: "big", "data-testid": "urgent-text" }, a.text), actions: [{ i18n: "common.ok", value: true, kind: "primary" }] });
  } else {
    toast(t("notices.new") + ": " + a.text, "info", 8000);
  }
}

function renderNotices() {
  const list = ui.notices.querySelector(".notices");
  if (!S.announcements.length) { fill(list, h("li", { class: "muted", i18n: "notices.none" })); return; }
  fill(list, S.announcements.map((a) => h("li", { class: "notice-item " + (a.level === "urgent" ? "urgent" : ""), "data-testid": "notice" },
    h("p", { class: "big" }, a.text),
    h("p", { class: "muted" }, [a.by, fmtDateTime(a.at || a.created_at)].filter(Boolean).join(" · ")))));
}

// ---------------------------------------------------------------- nameplate
/** `nameplate {on, attendee_id, seq}` for the room or this seat; `state.nameplate` after a reconnect. */
function nameplateEvent(n) {
  const id = me()?.attendee_id;
  if (n.attendee_id != null && n.attendee_id !== id) return;
  if (!newer(n, "nameplate")) return;
  S.nameplateForced = !!n.on;
  setNameplate(!!n.on);
}

function setNameplate(on) {
  S.nameplate = on;
  const m = me();
  if (on) {
    fill(ui.nameplate,
      h("div", { class: "np-name", "data-testid": "np-name" }, m.name || ""),
      m.organization ? h("div", { class: "np-org" }, m.organization) : null,
      m.seat ? h("div", { class: "np-seat" }, `${t("tablet.seat")} ${m.seat}`) : null,
      S.nameplateForced ? null : h("div", { class: "np-hint", i18n: "nameplate.exit_hint" }));
  }
  ui.nameplate.hidden = !on;
}

// ---------------------------------------------------------------- reports to the room
let reportTimer = null;
let battery = null;
let lastReport = "";

/** Tell the staff what this tablet shows (following or browsing, battery); throttled, fire and forget. */
function report() {
  clearTimeout(reportTimer);
  reportTimer = setTimeout(() => {
    if (!live || S.status !== "online") return;
    const following = S.following || S.followLock;
    const payload = { following };
    if (!following && viewer.doc) { payload.document_id = viewer.doc.id; payload.page = viewer.page; }
    if (battery) { payload.battery = Math.round(battery.level * 100) / 100; payload.charging = battery.charging; }
    const key = JSON.stringify(payload);
    if (key === lastReport) return;
    lastReport = key;
    live.emit("seat.status", payload);
  }, 300);
}

async function reportBattery() {
  if (!navigator.getBattery) return;
  try {
    battery = await navigator.getBattery();
    battery.addEventListener("levelchange", report);
    battery.addEventListener("chargingchange", report);
  } catch { /* not available */ }
}

// ---------------------------------------------------------------- render all
function renderAll() {
  if (!S.state) {
    ui.conn.textContent = t("conn." + S.status);
    renderFollow();
    return;
  }
  renderMeeting();
  renderCheckin();
  renderAgenda();
  renderMaterials();
  renderFollow();
  renderCache();
  renderSpeak();
  renderCalls();
  renderNotices();
  votes.render();
  ui.conn.textContent = t("conn." + S.status);
  if (viewer.doc) renderDocTitle(viewer.doc);
  viewer.updateChrome();
  if (S.nameplate) setNameplate(true);
}

main().catch((e) => {
  console.error(e);
  screenMessage("error.title", null, { detail: describeError(e) });
});
