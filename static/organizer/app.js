// The organizer (secretariat) app: meetings, agenda, attendees and seats,
// materials with upload and rendering progress, confidentiality, polls,
// seat cards, start and end, and the records after the meeting.
import { h, fill, $, field } from "../common/dom.js";
import { t, langButton, onLangChange, fmtDateTime, fmtNumber } from "../common/i18n.js";
import { createApi, describeError } from "../common/api.js";
import { connectLive } from "../common/socket.js";
import { toast, showError, dialog, confirmDialog, progressBar } from "../common/ui.js";
import { orgToken, setOrgToken } from "../common/session.js";
import { loginForm } from "../common/login.js";

const ROLES = ["attendee", "chair", "presenter", "secretary", "observer"];
const KINDS = ["motion", "single", "multiple", "election", "rating"];
const RULES = {
  none: null,
  simple: { base: "cast", fraction: [1, 2], strict: true },
  two_thirds: { base: "cast", fraction: [2, 3], strict: false },
  absolute: { base: "members", fraction: [1, 2], strict: true },
  present: { base: "present", fraction: [1, 2], strict: true },
};
const TABS = ["info", "agenda", "attendees", "documents", "polls", "run", "after"];

let token = orgToken();
let api = null;
let me = null;
let live = null; // socket for the open meeting (rendering progress)
const M = { meeting: null, uploads: new Map() };
const root = () => $("#app");

// ---------------------------------------------------------------- entry and routing
async function main() {
  document.title = t("org.title");
  if (!token) token = await loginForm(root());
  api = createApi({ getToken: () => token, onUnauthorized: () => logout() });
  try {
    me = await api.get("/auth/me");
  } catch (e) {
    if (e.status === 401) return;
    showError(e);
  }
  window.addEventListener("hashchange", route);
  onLangChange(() => route());
  route();
}

function logout() {
  api?.post("/auth/logout").catch(() => {});
  setOrgToken(null);
  token = null;
  live?.close();
  location.hash = "";
  location.reload();
}

function parseHash() {
  const m = /^#\/m\/(\d+)(?:\/(\w+))?/.exec(location.hash);
  return m ? { meetingId: Number(m[1]), tab: TABS.includes(m[2]) ? m[2] : "info" } : { meetingId: null };
}

async function route() {
  const r = parseHash();
  if (!r.meetingId) {
    if (live) { live.close(); live = null; M.meeting = null; }
    return meetingsPage();
  }
  if (!M.meeting || M.meeting.id !== r.meetingId) {
    if (live) { live.close(); live = null; }
    try {
      M.meeting = await api.get(`/meetings/${r.meetingId}`);
    } catch (e) {
      showError(e);
      location.hash = "";
      return;
    }
    connectMeeting(r.meetingId);
  }
  meetingPage(r.tab);
}

function shell(...content) {
  const header = h("header", { class: "o-header" },
    h("a", { href: "#", class: "o-brand" }, h("span", { i18n: "org.title" })),
    h("span", { class: "grow" }),
    me ? h("span", { class: "muted" }, me.display_name || me.username) : null,
    langButton(h),
    h("button", { type: "button", class: "btn btn-ghost", i18n: "common.logout", "data-testid": "logout", on: { click: logout } }));
  fill(root(), header, h("main", { class: "o-main" }, content));
}

async function reload() {
  M.meeting = await api.get(`/meetings/${M.meeting.id}`);
  return M.meeting;
}

// ---------------------------------------------------------------- meetings
async function meetingsPage() {
  document.title = t("org.title");
  let meetings = [];
  try {
    meetings = (await api.get("/meetings")).meetings;
  } catch (e) {
    showError(e);
  }
  const title = h("input", { type: "text", required: true, maxlength: "300", "data-testid": "new-title" });
  const starts = h("input", { type: "datetime-local", "data-testid": "new-starts" });
  const location_ = h("input", { type: "text", maxlength: "300", "data-testid": "new-location" });
  const language = h("select", { "data-testid": "new-language" }, h("option", { value: "zh" }, "中文"), h("option", { value: "en" }, "English"));
  const form = h("form", { class: "card o-new", "data-testid": "new-meeting" },
    h("h2", { i18n: "org.new_meeting" }),
    h("div", { class: "grid2" },
      field("org.meeting_title", title), field("org.starts_at", starts), field("org.location", location_), field("org.language", language)),
    h("button", { type: "submit", class: "btn btn-primary", i18n: "org.create", "data-testid": "create-meeting" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!title.value.trim()) { title.focus(); return; }
    const body = { title: title.value.trim(), location: location_.value.trim(), language: language.value };
    if (starts.value) body.starts_at = new Date(starts.value).toISOString();
    try {
      const m = await api.post("/meetings", body);
      toast(t("org.created"), "ok");
      location.hash = `#/m/${m.id}/info`;
    } catch (ex) {
      showError(ex);
    }
  });
  const rows = meetings.map((m) => h("tr", { "data-testid": "meeting-row" },
    h("td", null, h("a", { href: `#/m/${m.id}/info` }, m.title)),
    h("td", null, fmtDateTime(m.starts_at)),
    h("td", null, m.location || ""),
    h("td", null, h("span", { class: "badge " + statusClass(m.status) }, t("meeting.status_" + m.status)))));
  shell(
    h("h1", { i18n: "org.meetings" }),
    meetings.length
      ? h("table", { class: "data" }, h("thead", null, h("tr", null, ["org.meeting_title", "org.starts_at", "org.location", "org.status"].map((k) => h("th", { i18n: k })))), h("tbody", null, rows))
      : h("p", { class: "muted", i18n: "org.no_meetings" }),
    form);
}

function statusClass(s) {
  return s === "live" ? "badge-ok" : s === "ended" || s === "archived" ? "badge-danger" : "badge-primary";
}

// ---------------------------------------------------------------- one meeting
function meetingPage(tab) {
  const m = M.meeting;
  document.title = `${m.title} · ${t("org.title")}`;
  const tabs = h("nav", { class: "tabs", role: "tablist" }, TABS.map((name) => h("a", {
    href: `#/m/${m.id}/${name}`, role: "tab", class: "tab", "aria-selected": name === tab ? "true" : "false", "data-testid": "tab-" + name,
  }, t("org.tab_" + name))));
  const body = h("section", { class: "o-tab", role: "tabpanel" });
  shell(
    h("p", null, h("a", { href: "#", i18n: "org.all_meetings" })),
    h("div", { class: "row" }, h("h1", { class: "grow", "data-testid": "meeting-heading" }, m.title),
      h("span", { class: "badge " + statusClass(m.status), "data-testid": "meeting-status" }, t("meeting.status_" + m.status))),
    tabs, body);
  const render = { info: infoTab, agenda: agendaTab, attendees: attendeesTab, documents: documentsTab, polls: pollsTab, run: runTab, after: afterTab }[tab];
  render(body);
}

function connectMeeting(meetingId) {
  live = connectLive({
    auth: { token, meeting_id: meetingId },
    handlers: {
      document: (d) => documentProgress(d),
      meeting: (s) => { if (M.meeting) { Object.assign(M.meeting, s); } },
      attendee: (a) => {
        if (!M.meeting) return;
        const i = M.meeting.attendees.findIndex((x) => x.id === a.id);
        if (i >= 0) M.meeting.attendees[i] = { ...M.meeting.attendees[i], ...a };
      },
      "seat.checkin": (c) => {
        const a = M.meeting?.attendees.find((x) => x.id === c.attendee_id);
        if (a) { a.checked_in = c.checked_in; const cell = document.querySelector(`[data-checkin="${a.id}"]`); if (cell) cell.textContent = a.checked_in ? "✓" : ""; }
      },
      minutes: () => after.onMinutes?.(),
      "archive.progress": (b) => after.onArchive?.(b),
    },
  });
}

// ---------------------------------------------------------------- info
function infoTab(el) {
  const m = M.meeting;
  const title = h("input", { type: "text", value: m.title, maxlength: "300", "data-testid": "info-title" });
  const starts = h("input", { type: "datetime-local", value: toLocal(m.starts_at) });
  const loc = h("input", { type: "text", value: m.location || "", maxlength: "300" });
  const desc = h("textarea", { maxlength: "20000" });
  desc.value = m.description || "";
  const language = h("select", null, h("option", { value: "zh" }, "中文"), h("option", { value: "en" }, "English"));
  language.value = m.language || "zh";
  const qKind = h("select", null, h("option", { value: "" }, t("console.quorum_none")), h("option", { value: "fraction" }, t("console.quorum_fraction")), h("option", { value: "count" }, t("console.quorum_count")));
  qKind.value = m.quorum?.kind || "";
  const qValue = h("input", { type: "number", min: "0", step: "any", value: m.quorum ? (m.quorum.kind === "fraction" ? Math.round(m.quorum.value * 100) : m.quorum.value) : "" });
  const single = h("input", { type: "checkbox", checked: !!m.single_device, id: "single-device" });
  const form = h("form", { class: "card" },
    h("div", { class: "grid2" },
      field("org.meeting_title", title), field("org.starts_at", starts), field("org.location", loc), field("org.language", language),
      field("console.quorum_kind", qKind), field("console.quorum_value", qValue, "console.quorum_hint")),
    field("org.description", desc),
    h("label", { class: "check", for: "single-device" }, single, h("span", { i18n: "org.single_device" })),
    h("div", { class: "btn-row" },
      h("button", { type: "submit", class: "btn btn-primary", i18n: "common.save", "data-testid": "info-save" }),
      m.status === "draft" ? h("button", { type: "button", class: "btn btn-danger", i18n: "org.delete_meeting", on: { click: deleteMeeting } }) : null));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { title: title.value.trim(), location: loc.value.trim(), description: desc.value, language: language.value, single_device: single.checked };
    body.starts_at = starts.value ? new Date(starts.value).toISOString() : null;
    body.quorum = qKind.value ? { kind: qKind.value, value: qKind.value === "fraction" ? Number(qValue.value) / 100 : Number(qValue.value) } : null;
    try {
      await api.patch(`/meetings/${m.id}`, body);
      await reload();
      toast(t("common.saved"), "ok");
      meetingPage("info");
    } catch (ex) {
      showError(ex);
    }
  });
  fill(el, form);
}

async function deleteMeeting() {
  if (!(await confirmDialog("org.delete_meeting", M.meeting.title, { danger: true }))) return;
  try {
    await api.del(`/meetings/${M.meeting.id}`);
    M.meeting = null;
    location.hash = "";
  } catch (e) {
    showError(e);
  }
}

function toLocal(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// ---------------------------------------------------------------- agenda (drag and drop)
function agendaTab(el) {
  const m = M.meeting;
  const list = h("ol", { class: "o-agenda", "data-testid": "agenda-list" });
  let dragId = null;
  const items = [...m.agenda].sort((a, b) => a.position - b.position);
  const save = async (order) => {
    try {
      const r = await api.post(`/meetings/${m.id}/agenda/reorder`, { order });
      m.agenda = r.items;
      agendaTab(el);
    } catch (e) {
      showError(e);
    }
  };
  items.forEach((it, i) => {
    const title = h("input", { type: "text", value: it.title, maxlength: "300", "aria-label": t("org.item_title") });
    const mins = h("input", { type: "number", min: "0", max: "1440", value: it.duration_minutes ?? "", class: "num", "aria-label": t("org.duration") });
    const row = h("li", { class: "o-agenda-item", draggable: "true", "data-id": String(it.id), "data-testid": "agenda-row" },
      h("span", { class: "handle", "aria-hidden": "true", title: t("org.drag") }, "⠿"),
      h("span", { class: "pos" }, String(i + 1)),
      title, mins, h("span", { class: "muted", i18n: "org.minutes_short" }),
      h("button", { type: "button", class: "btn small", i18n: "common.save", on: { click: async () => {
        try {
          await api.patch(`/meetings/${m.id}/agenda/${it.id}`, { title: title.value.trim(), duration_minutes: mins.value === "" ? null : Number(mins.value) });
          await reload();
          toast(t("common.saved"), "ok");
        } catch (e) { showError(e); }
      } } }),
      h("button", { type: "button", class: "btn btn-ghost small", disabled: i === 0, i18nAttrs: { "aria-label": "common.up" }, "data-testid": "agenda-up", on: { click: () => { const o = items.map((x) => x.id); [o[i - 1], o[i]] = [o[i], o[i - 1]]; save(o); } } }, "↑"),
      h("button", { type: "button", class: "btn btn-ghost small", disabled: i === items.length - 1, i18nAttrs: { "aria-label": "common.down" }, on: { click: () => { const o = items.map((x) => x.id); [o[i + 1], o[i]] = [o[i], o[i + 1]]; save(o); } } }, "↓"),
      h("button", { type: "button", class: "btn btn-ghost small", i18n: "common.delete", on: { click: async () => {
        if (!(await confirmDialog("org.delete_item", it.title, { danger: true }))) return;
        try { await api.del(`/meetings/${m.id}/agenda/${it.id}`); await reload(); agendaTab(el); } catch (e) { showError(e); }
      } } }));
    row.addEventListener("dragstart", (e) => { dragId = it.id; e.dataTransfer.effectAllowed = "move"; e.dataTransfer.setData("text/plain", String(it.id)); row.classList.add("dragging"); });
    row.addEventListener("dragend", () => row.classList.remove("dragging"));
    row.addEventListener("dragover", (e) => { e.preventDefault(); row.classList.add("drop-target"); });
    row.addEventListener("dragleave", () => row.classList.remove("drop-target"));
    row.addEventListener("drop", (e) => {
      e.preventDefault();
      row.classList.remove("drop-target");
      const from = dragId ?? Number(e.dataTransfer.getData("text/plain"));
      if (!from || from === it.id) return;
      const order = items.map((x) => x.id).filter((id) => id !== from);
      order.splice(order.indexOf(it.id) + (e.offsetY > row.offsetHeight / 2 ? 1 : 0), 0, from);
      save(order);
    });
    list.append(row);
  });
  const title = h("input", { type: "text", maxlength: "300", "data-testid": "agenda-new-title" });
  const mins = h("input", { type: "number", min: "0", max: "1440", class: "num", "data-testid": "agenda-new-minutes" });
  const form = h("form", { class: "card row o-inline-form" }, field("org.item_title", title), field("org.duration", mins),
    h("button", { type: "submit", class: "btn btn-primary", i18n: "common.add", "data-testid": "agenda-add" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!title.value.trim()) { title.focus(); return; }
    try {
      await api.post(`/meetings/${m.id}/agenda`, { title: title.value.trim(), duration_minutes: mins.value === "" ? null : Number(mins.value) });
      await reload();
      agendaTab(el);
      el.querySelector("[data-testid=agenda-new-title]")?.focus();
    } catch (ex) {
      showError(ex);
    }
  });
  fill(el, h("p", { class: "muted", i18n: "org.agenda_hint" }), items.length ? list : h("p", { class: "muted", i18n: "agenda.empty" }), form);
}

// ---------------------------------------------------------------- attendees
function attendeesTab(el) {
  const m = M.meeting;
  const rows = m.attendees.map((a) => {
    const role = h("select", { "aria-label": t("org.role"), "data-testid": "att-role" }, ROLES.map((r) => h("option", { value: r }, t("role." + r))));
    role.value = a.role;
    const seat = h("input", { type: "text", value: a.seat || "", maxlength: "40", class: "seat-in", "aria-label": t("org.seat") });
    const name = h("input", { type: "text", value: a.name, maxlength: "120", "aria-label": t("org.name") });
    const org = h("input", { type: "text", value: a.organization || "", maxlength: "200", "aria-label": t("org.organization") });
    const link = h("input", { type: "text", readonly: true, value: a.join_url || "", class: "join-url", "data-testid": "join-url", "aria-label": t("org.join_link") });
    const saveRow = async () => {
      try {
        await api.patch(`/meetings/${m.id}/attendees/${a.id}`, { name: name.value.trim(), seat: seat.value.trim() || null, role: role.value, organization: org.value.trim() });
        await reload();
        toast(t("common.saved"), "ok");
      } catch (e) { showError(e); }
    };
    return h("tr", { "data-testid": "attendee-row" },
      h("td", null, seat), h("td", null, name), h("td", null, role), h("td", null, org),
      h("td", { class: "center", "data-checkin": String(a.id) }, a.checked_in ? "✓" : ""),
      h("td", null, h("div", { class: "row nowrap" }, link,
        h("button", { type: "button", class: "btn small", i18n: "common.copy", on: { click: () => copy(link.value) } }),
        h("a", { class: "btn small", href: `/api/v1/meetings/${m.id}/attendees/${a.id}/qr.png?access_token=${encodeURIComponent(token)}`, target: "_blank", rel: "noopener", i18n: "org.qr" }))),
      h("td", null, h("div", { class: "row nowrap" },
        h("button", { type: "button", class: "btn small", i18n: "common.save", on: { click: saveRow } }),
        h("button", { type: "button", class: "btn btn-ghost small", i18n: "org.reissue", on: { click: async () => {
          if (!(await confirmDialog("org.reissue", t("org.reissue_text", { name: a.name })))) return;
          try { await api.post(`/meetings/${m.id}/attendees/${a.id}/reissue`); await reload(); attendeesTab(el); toast(t("org.reissued"), "ok"); } catch (e) { showError(e); }
        } } }),
        h("button", { type: "button", class: "btn btn-ghost small", i18n: "org.release", on: { click: async () => {
          try { const r = await api.post(`/meetings/${m.id}/attendees/${a.id}/release`); toast(t("org.released", { n: r.revoked ?? 0 }), "ok"); } catch (e) { showError(e); }
        } } }),
        h("button", { type: "button", class: "btn btn-ghost small", i18n: "common.delete", on: { click: async () => {
          if (!(await confirmDialog("org.delete_attendee", a.name, { danger: true }))) return;
          try { await api.del(`/meetings/${m.id}/attendees/${a.id}`); await reload(); attendeesTab(el); } catch (e) { showError(e); }
        } } }))));
  });
  const name = h("input", { type: "text", maxlength: "120", "data-testid": "att-name" });
  const seat = h("input", { type: "text", maxlength: "40", "data-testid": "att-seat" });
  const role = h("select", { "data-testid": "att-new-role" }, ROLES.map((r) => h("option", { value: r }, t("role." + r))));
  const org = h("input", { type: "text", maxlength: "200" });
  const add = h("form", { class: "card row o-inline-form", "data-testid": "att-form" }, field("org.name", name), field("org.seat", seat), field("org.role", role), field("org.organization", org),
    h("button", { type: "submit", class: "btn btn-primary", i18n: "common.add", "data-testid": "att-add" }));
  add.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!name.value.trim()) { name.focus(); return; }
    try {
      await api.post(`/meetings/${m.id}/attendees`, { name: name.value.trim(), seat: seat.value.trim() || null, role: role.value, organization: org.value.trim() });
      await reload();
      attendeesTab(el);
      el.querySelector("[data-testid=att-name]")?.focus();
    } catch (ex) {
      showError(ex);
    }
  });
  const csv = h("input", { type: "file", accept: ".csv,text/csv", "data-testid": "csv-file" });
  const csvForm = h("form", { class: "card" }, h("h3", { i18n: "org.import_csv" }), h("p", { class: "muted", i18n: "org.csv_hint" }),
    h("div", { class: "row" }, csv, h("button", { type: "submit", class: "btn", i18n: "org.import", "data-testid": "csv-import" })));
  csvForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!csv.files[0]) return;
    const fd = new FormData();
    fd.append("file", csv.files[0]);
    try {
      const r = await api.upload(`/meetings/${m.id}/attendees/import`, fd);
      toast(t("org.imported", { n: r.imported }), "ok");
      await reload();
      attendeesTab(el);
    } catch (ex) {
      showError(ex, "org.import_failed");
    }
  });
  fill(el,
    h("div", { class: "row" }, h("h2", { class: "grow" }, t("org.attendees_n", { n: m.attendees.length })),
      h("button", { type: "button", class: "btn", i18n: "org.seat_cards", "data-testid": "seat-cards", on: { click: () => download(`/meetings/${m.id}/seat-cards.pdf`, `seat-cards-${m.id}.pdf`) } })),
    m.attendees.length ? h("div", { class: "table-wrap" }, h("table", { class: "data o-attendees" },
      h("thead", null, h("tr", null, ["org.seat", "org.name", "org.role", "org.organization", "org.checked_in", "org.join_link", "common.actions"].map((k) => h("th", { i18n: k })))),
      h("tbody", null, rows))) : h("p", { class: "muted", i18n: "org.no_attendees" }),
    add, csvForm);
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast(t("common.copied"), "ok");
  } catch {
    toast(text, "info", 10000);
  }
}

async function download(path, filename) {
  try {
    const r = await api.download(path, filename);
    if (r.pending) toast(t("org.preparing", { progress: r.data?.progress != null ? Math.round(r.data.progress * 100) + "%" : "…" }), "info");
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------- documents
function documentsTab(el) {
  const m = M.meeting;
  const files = h("input", { type: "file", multiple: true, accept: ".pdf,.doc,.docx,.ppt,.pptx,.xls,.xlsx,.odt,.odp,.ods,.png,.jpg,.jpeg", "data-testid": "doc-file" });
  const title = h("input", { type: "text", maxlength: "300", "data-testid": "doc-title" });
  const item = agendaSelect(null);
  const conf = h("input", { type: "checkbox", id: "up-conf" });
  const drop = h("div", { class: "dropzone", "data-testid": "dropzone" }, h("p", { i18n: "org.drop_here" }), files);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); startUploads([...e.dataTransfer.files], title.value, item.value, conf.checked); });
  const form = h("form", { class: "card" },
    h("h2", { i18n: "org.upload" }), drop,
    h("div", { class: "grid2" }, field("org.doc_title", title, "org.doc_title_hint"), field("org.agenda_item", item)),
    h("label", { class: "check", for: "up-conf" }, conf, h("span", { i18n: "org.confidential" })),
    h("button", { type: "submit", class: "btn btn-primary", i18n: "org.upload_go", "data-testid": "upload" }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!files.files.length) { showError({ code: "file_missing" }); return; }
    startUploads([...files.files], title.value, item.value, conf.checked);
    files.value = "";
    title.value = "";
  });
  M.uploadsEl = h("div", { class: "uploads", "data-testid": "uploads" });
  renderUploads();
  M.docsEl = h("div", { class: "o-docs" });
  renderDocs();
  fill(el, form, M.uploadsEl, h("h2", { i18n: "org.documents" }), M.docsEl);
}

function agendaSelect(value) {
  const sel = h("select", { "data-testid": "doc-agenda" }, h("option", { value: "" }, t("org.no_item")),
    M.meeting.agenda.map((it) => h("option", { value: String(it.id) }, `${it.position}. ${it.title}`)));
  sel.value = value == null ? "" : String(value);
  return sel;
}

function startUploads(list, title, itemId, confidential) {
  for (const file of list) {
    const key = `${file.name}-${Date.now()}-${Math.random()}`;
    const up = { key, name: file.name, upload: 0, state: "uploading", doc: null, error: null };
    M.uploads.set(key, up);
    const fd = new FormData();
    fd.append("file", file);
    if (title && list.length === 1) fd.append("title", title);
    if (itemId) fd.append("agenda_item_id", itemId);
    if (confidential) fd.append("confidential", "true");
    api.upload(`/meetings/${M.meeting.id}/documents`, fd, (f) => { up.upload = f; renderUploads(); })
      .then((doc) => {
        up.upload = 1;
        up.doc = doc;
        up.state = doc.status;
        upsertDoc(doc);
        renderUploads();
      })
      .catch((e) => {
        up.state = "failed";
        up.error = describeError(e);
        renderUploads();
      });
  }
  renderUploads();
}

/** A `document` event: rendering progress of an upload (or any document of the meeting). */
function documentProgress(d) {
  if (!M.meeting || d.meeting_id !== M.meeting.id) return;
  upsertDoc(d);
  for (const up of M.uploads.values()) if (up.doc && up.doc.id === d.id) { up.doc = d; up.state = d.status; }
  renderUploads();
}

function upsertDoc(d) {
  const docs = M.meeting.documents;
  const i = docs.findIndex((x) => x.id === d.id);
  if (i >= 0) docs[i] = { ...docs[i], ...d };
  else docs.push(d);
  const row = document.querySelector(`[data-doc-status="${d.id}"]`);
  if (row) fill(row, docStatus(d));
  else if (M.docsEl?.isConnected && i < 0) renderDocs();
}

function renderUploads() {
  if (!M.uploadsEl) return;
  const ups = [...M.uploads.values()];
  fill(M.uploadsEl, ups.map((up) => {
    const upBar = progressBar();
    upBar.set(up.upload, t("org.uploaded", { pct: Math.round(up.upload * 100) }));
    const d = up.doc;
    const renderBar = progressBar();
    if (d) {
      const frac = d.page_count ? (d.pages_done || 0) / d.page_count : d.status === "ready" ? 1 : null;
      renderBar.set(frac, d.status === "ready" ? t("org.render_done", { n: d.page_count || 0 }) : d.status === "failed" ? t("docs.status_failed") : t("org.rendering", { done: d.pages_done || 0, total: d.page_count || "?" }));
    }
    return h("div", { class: "card upload", "data-testid": "upload-row", "data-state": up.state },
      h("div", { class: "row" }, h("strong", { class: "grow" }, up.name),
        up.state === "ready" ? h("span", { class: "badge badge-ok", i18n: "docs.status_ready" }) : null,
        up.state === "failed" ? h("span", { class: "badge badge-danger", i18n: "docs.status_failed" }) : null,
        up.state === "ready" || up.state === "failed" ? h("button", { type: "button", class: "btn btn-ghost small", i18n: "common.close", on: { click: () => { M.uploads.delete(up.key); renderUploads(); } } }) : null),
      h("div", { class: "row" }, h("span", { class: "muted label", i18n: "org.upload_bar" }), upBar.el),
      d ? h("div", { class: "row" }, h("span", { class: "muted label", i18n: "org.render_bar" }), renderBar.el) : null,
      up.error || d?.error ? h("p", { class: "error-text", role: "alert" }, up.error || d.error) : null);
  }));
}

function docStatus(d) {
  if (d.status === "ready") return h("span", { class: "badge badge-ok" }, t("docs.pages", { n: d.page_count || 0 }));
  if (d.status === "failed") return h("span", { class: "badge badge-danger", title: d.error || "" }, t("docs.status_failed"));
  return h("span", { class: "badge badge-warn" }, t("org.rendering", { done: d.pages_done || 0, total: d.page_count || "?" }));
}

function renderDocs() {
  const m = M.meeting;
  if (!M.docsEl) return;
  if (!m.documents.length) { fill(M.docsEl, h("p", { class: "muted", i18n: "docs.none" })); return; }
  fill(M.docsEl, h("div", { class: "table-wrap" }, h("table", { class: "data" },
    h("thead", null, h("tr", null, ["org.doc_title", "org.agenda_item", "org.status", "org.access", "common.actions"].map((k) => h("th", { i18n: k })))),
    h("tbody", null, m.documents.map((d) => {
      const title = h("input", { type: "text", value: d.title, maxlength: "300", "aria-label": t("org.doc_title") });
      const item = agendaSelect(d.agenda_item_id);
      item.setAttribute("aria-label", t("org.agenda_item"));
      return h("tr", { "data-testid": "doc-row", "data-doc": String(d.id) },
        h("td", null, title),
        h("td", null, item),
        h("td", { "data-doc-status": String(d.id) }, docStatus(d)),
        h("td", null, accessSummary(d)),
        h("td", null, h("div", { class: "row nowrap" },
          h("button", { type: "button", class: "btn small", i18n: "common.save", on: { click: async () => {
            try {
              await api.patch(`/documents/${d.id}`, { title: title.value.trim(), agenda_item_id: item.value ? Number(item.value) : null });
              await reload();
              toast(t("common.saved"), "ok");
            } catch (e) { showError(e); }
          } } }),
          h("button", { type: "button", class: "btn small", i18n: "org.access_edit", "data-testid": "doc-access", on: { click: () => editAccess(d) } }),
          d.status === "ready" ? h("a", { class: "btn btn-ghost small", target: "_blank", rel: "noopener", href: d.pages_url.replace("{n}", "1") + "&access_token=" + encodeURIComponent(token), i18n: "org.preview" }) : null,
          M.meeting.status === "draft" ? h("button", { type: "button", class: "btn btn-ghost small", i18n: "common.delete", on: { click: async () => {
            if (!(await confirmDialog("org.delete_doc", d.title, { danger: true }))) return;
            try { await api.del(`/documents/${d.id}`); await reload(); renderDocs(); } catch (e) { showError(e); }
          } } }) : null)));
    })))));
}

function accessSummary(d) {
  const parts = [];
  if (d.confidential) parts.push(h("span", { class: "badge badge-danger", i18n: "docs.confidential" }));
  const aud = d.audience;
  if (aud && ((aud.roles || []).length || (aud.attendees || []).length)) {
    const names = (aud.roles || []).map((r) => t("role." + r));
    const people = (aud.attendees || []).map((id) => M.meeting.attendees.find((a) => a.id === id)?.name).filter(Boolean);
    parts.push(h("span", { class: "muted" }, [...names, ...people].join("、")));
  } else {
    parts.push(h("span", { class: "muted", i18n: "org.everyone" }));
  }
  return h("span", { class: "row", "data-testid": "doc-access-summary" }, parts);
}

/** Confidentiality: view-only + watermark + withdrawn at the end, and who may see it. */
async function editAccess(d) {
  const conf = h("input", { type: "checkbox", id: "acc-conf", checked: !!d.confidential, "data-testid": "acc-confidential" });
  const aud = d.audience || { roles: [], attendees: [] };
  const roleBoxes = ROLES.map((r) => {
    const cb = h("input", { type: "checkbox", id: "acc-role-" + r, value: r, checked: (aud.roles || []).includes(r), "data-testid": "acc-role-" + r });
    return h("label", { class: "check", for: "acc-role-" + r }, cb, h("span", null, t("role." + r)));
  });
  const people = h("select", { multiple: true, size: "6", id: "acc-people", "data-testid": "acc-people" },
    M.meeting.attendees.map((a) => h("option", { value: String(a.id), selected: (aud.attendees || []).includes(a.id) }, `${a.seat || ""} ${a.name}`)));
  const body = h("div", null,
    h("label", { class: "check", for: "acc-conf" }, conf, h("span", { i18n: "org.confidential" })),
    h("p", { class: "muted", i18n: "org.confidential_hint" }),
    h("fieldset", null, h("legend", { i18n: "org.audience" }), h("p", { class: "muted", i18n: "org.audience_hint" }), roleBoxes,
      h("label", { for: "acc-people", i18n: "org.audience_people" }), people));
  const v = await dialog({ title: `${t("org.access_edit")} · ${d.title}`, body, actions: [
    { i18n: "common.cancel", value: null, kind: "ghost" }, { i18n: "common.save", value: "save", kind: "primary", testid: "acc-save" }] });
  if (v !== "save") return;
  const roles = roleBoxes.map((l) => l.querySelector("input")).filter((c) => c.checked).map((c) => c.value);
  const attendees = [...people.selectedOptions].map((o) => Number(o.value));
  try {
    await api.patch(`/documents/${d.id}`, { confidential: conf.checked, audience: roles.length || attendees.length ? { roles, attendees } : null });
    await reload();
    renderDocs();
    toast(t("common.saved"), "ok");
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------- polls
function pollsTab(el) {
  const m = M.meeting;
  const list = m.polls.map((p) => h("div", { class: "card poll", "data-testid": "poll-row" },
    h("div", { class: "row" }, h("strong", { class: "grow" }, p.title),
      h("span", { class: "badge" }, t("org.kind_" + p.kind)),
      h("span", { class: "badge" }, t(p.secret ? "vote.secret" : "vote.named")),
      h("span", { class: "badge " + (p.status === "open" ? "badge-ok" : "") }, t("poll.status_" + p.status))),
    h("ol", { class: "muted" }, p.options.map((o, i) => h("li", null, o, p.tally ? ` — ${fmtNumber(p.tally[i] ?? 0)}` : ""))),
    p.status === "draft" ? h("div", { class: "btn-row" },
      h("button", { type: "button", class: "btn btn-ghost small", i18n: "common.delete", on: { click: async () => {
        if (!(await confirmDialog("org.delete_poll", p.title, { danger: true }))) return;
        try { await api.del(`/polls/${p.id}`); await reload(); pollsTab(el); } catch (e) { showError(e); }
      } } })) : null,
    p.status === "closed" || p.status === "cancelled" ? h("div", { class: "btn-row" },
      p.status === "closed" ? ["csv", "json"].map((ext) => h("button", { type: "button", class: "btn btn-ghost small", "data-testid": "org-poll-export-" + ext,
        on: { click: () => download(`/polls/${p.id}/results.${ext}`, `poll-${p.id}-round${p.round || 1}.${ext}`) } }, t("console.poll_export", { what: ext.toUpperCase() }))) : null,
      h("button", { type: "button", class: "btn btn-ghost small", i18n: "console.poll_revote", "data-testid": "org-poll-revote", on: { click: async () => {
        if (!(await confirmDialog("console.poll_revote_confirm", p.title))) return;
        try { const r = await api.post(`/polls/${p.id}/revote`); toast(t("console.poll_revoted", { n: r.round || 2 }), "ok"); await reload(); pollsTab(el); } catch (e) { showError(e); }
      } } })) : null));
  fill(el, h("h2", { i18n: "org.polls" }), list.length ? list : h("p", { class: "muted", i18n: "console.no_polls" }), pollBuilder(el));
}

function pollBuilder(el) {
  const m = M.meeting;
  const kind = h("select", { "data-testid": "poll-kind" }, KINDS.map((k) => h("option", { value: k }, t("org.kind_" + k))));
  const title = h("input", { type: "text", maxlength: "300", "data-testid": "poll-title" });
  const opts = h("div", { class: "opts", "data-testid": "poll-options" });
  const addOpt = (value = "") => {
    const input = h("input", { type: "text", maxlength: "300", value, "data-testid": "poll-option", "aria-label": t("org.option") });
    const row = h("div", { class: "row" }, input, h("button", { type: "button", class: "btn btn-ghost small", i18nAttrs: { "aria-label": "common.delete" }, on: { click: () => row.remove() } }, "×"));
    opts.append(row);
    return input;
  };
  const secret = h("input", { type: "checkbox", id: "poll-secret", "data-testid": "poll-secret" });
  const maxC = h("input", { type: "number", min: "1", value: "1", class: "num", "data-testid": "poll-max" });
  const minC = h("input", { type: "number", min: "0", value: "1", class: "num" });
  const seats = h("input", { type: "number", min: "1", value: "1", class: "num", "data-testid": "poll-seats" });
  const scaleMin = h("input", { type: "number", value: "0", class: "num" });
  const scaleMax = h("input", { type: "number", value: "10", class: "num" });
  const dropExtremes = h("input", { type: "checkbox", id: "poll-drop" });
  const publish = h("input", { type: "checkbox", id: "poll-publish", checked: true });
  const allowChange = h("input", { type: "checkbox", id: "poll-change" });
  const duration = h("input", { type: "number", min: "0", max: "86400", class: "num", "data-testid": "poll-duration" });
  const rule = h("select", null, Object.keys(RULES).map((k) => h("option", { value: k }, t("org.rule_" + k))));
  const quorum = h("input", { type: "checkbox", id: "poll-quorum" });
  const item = agendaSelect(null);
  const motion = [t("org.opt_yes"), t("org.opt_no"), t("org.opt_abstain")];
  const multiBox = h("div", { class: "grid2" }, field("org.max_choices", maxC), field("org.min_choices", minC));
  const seatsBox = field("org.seats", seats);
  const scaleBox = h("div", { class: "grid2" }, field("org.scale_min", scaleMin), field("org.scale_max", scaleMax),
    h("label", { class: "check", for: "poll-drop" }, dropExtremes, h("span", { i18n: "org.drop_extremes" })));
  const ruleBox = h("div", { class: "grid2" }, field("org.rule", rule),
    h("label", { class: "check", for: "poll-quorum" }, quorum, h("span", { i18n: "org.rule_quorum" })));
  const applyKind = () => {
    opts.replaceChildren();
    (kind.value === "motion" ? motion : ["", ""]).forEach((v) => addOpt(v));
    multiBox.hidden = kind.value !== "multiple";
    seatsBox.hidden = kind.value !== "election";
    scaleBox.hidden = kind.value !== "rating";
    rule.disabled = kind.value === "rating";
  };
  kind.addEventListener("change", applyKind);
  applyKind();
  const form = h("form", { class: "card", "data-testid": "poll-form" },
    h("h3", { i18n: "org.new_poll" }),
    h("div", { class: "grid2" }, field("org.kind", kind), field("org.poll_title", title)),
    h("fieldset", null, h("legend", { i18n: "org.options" }), h("p", { class: "muted", i18n: "org.options_hint" }), opts,
      h("button", { type: "button", class: "btn btn-ghost", i18n: "org.add_option", "data-testid": "poll-add-option", on: { click: () => addOpt().focus() } })),
    multiBox, seatsBox, scaleBox, ruleBox,
    h("div", { class: "grid2" }, field("org.duration_s", duration, "org.duration_hint"), field("org.agenda_item", item)),
    h("label", { class: "check", for: "poll-secret" }, secret, h("span", { i18n: "org.secret" })),
    h("label", { class: "check", for: "poll-publish" }, publish, h("span", { i18n: "org.publish_on_close" })),
    h("label", { class: "check", for: "poll-change" }, allowChange, h("span", { i18n: "org.allow_change" })),
    h("button", { type: "submit", class: "btn btn-primary", i18n: "org.create_poll", "data-testid": "poll-create" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const options = [...opts.querySelectorAll("input")].map((i) => i.value.trim()).filter(Boolean);
    const body = { title: title.value.trim(), kind: kind.value, options, secret: secret.checked, publish_on_close: publish.checked, allow_change: allowChange.checked };
    if (kind.value === "multiple") { body.max_choices = Number(maxC.value) || 1; body.min_choices = Number(minC.value) || 0; }
    if (kind.value === "election") body.seats = Number(seats.value) || 1;
    if (kind.value === "rating") body.scale = { min: Number(scaleMin.value) || 0, max: Number(scaleMax.value) || 10, drop_extremes: dropExtremes.checked };
    if (Number(duration.value) > 0) body.duration_s = Number(duration.value);
    if (item.value) body.agenda_item_id = Number(item.value);
    if (kind.value === "rating") { if (quorum.checked) body.rule = { quorum: "meeting" }; }
    else if (RULES[rule.value]) body.rule = { ...RULES[rule.value], ...(quorum.checked ? { quorum: "meeting" } : {}) };
    else if (quorum.checked) body.rule = { quorum: "meeting" };
    try {
      await api.post(`/meetings/${m.id}/polls`, body);
      await reload();
      toast(t("org.poll_created"), "ok");
      pollsTab(el);
    } catch (ex) {
      showError(ex);
    }
  });
  return form;
}

// ---------------------------------------------------------------- run the meeting
function runTab(el) {
  const m = M.meeting;
  const present = m.attendees.filter((a) => a.checked_in && a.role !== "observer").length;
  const expected = m.attendees.filter((a) => a.role !== "observer").length;
  const act = async (what) => {
    const ok = await confirmDialog(what === "start" ? "console.start_confirm" : "console.end_confirm", null, { danger: what === "end" });
    if (!ok) return;
    try {
      await api.post(`/meetings/${m.id}/${what}`);
      await reload();
      meetingPage("run");
    } catch (e) {
      showError(e);
    }
  };
  fill(el,
    h("div", { class: "card" },
      h("p", { class: "big" }, t("org.status_now", { status: t("meeting.status_" + m.status) })),
      h("p", null, t("console.present", { present, expected })),
      h("div", { class: "btn-row" },
        m.status === "draft" ? h("button", { type: "button", class: "btn btn-ok btn-big", i18n: "console.start", "data-testid": "org-start", on: { click: () => act("start") } }) : null,
        m.status === "live" ? h("button", { type: "button", class: "btn btn-danger btn-big", i18n: "console.end", "data-testid": "org-end", on: { click: () => act("end") } }) : null,
        h("a", { class: "btn btn-primary btn-big", href: `/console/#meeting=${m.id}&org=1`, target: "_blank", rel: "noopener", i18n: "org.open_console", "data-testid": "open-console" }))),
    h("div", { class: "card" }, h("h3", { i18n: "org.seat_cards" }), h("p", { class: "muted", i18n: "org.seat_cards_hint" }),
      h("button", { type: "button", class: "btn", i18n: "org.seat_cards", on: { click: () => download(`/meetings/${m.id}/seat-cards.pdf`, `seat-cards-${m.id}.pdf`) } })));
}

// ---------------------------------------------------------------- after the meeting
/** Handlers for `minutes` and `archive.progress` while the "after" tab is open. */
const after = { onMinutes: null, onArchive: null };

function afterTab(el) {
  const m = M.meeting;
  const minutesBox = h("div", { class: "card", "data-testid": "minutes-review" });
  const archiveBox = h("div", { class: "card", "data-testid": "archive-card" });
  fill(el,
    m.status === "draft" || m.status === "live" ? h("p", { class: "notice", i18n: "org.after_hint" }) : null,
    minutesBox, archiveBox);
  minutesReview(minutesBox);
  archiveCard(archiveBox);
}

/** The minutes: every item as written, its history, and the steps draft -> submitted -> approved. */
async function minutesReview(box) {
  const m = M.meeting;
  const status = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const pdfBtn = h("button", { type: "button", class: "btn", i18n: "org.minutes_download", "data-testid": "minutes", on: { click: async () => {
    status.textContent = t("common.loading");
    try {
      const r = await api.download(`/meetings/${m.id}/minutes`, `minutes-${m.id}.pdf`);
      status.textContent = r.pending ? t("org.preparing", { progress: r.data?.progress != null ? Math.round(r.data.progress * 100) + "%" : "…" }) : t("org.downloaded", { size: fmtNumber(Math.round((r.size || 0) / 1024)) });
    } catch (e) {
      status.textContent = describeError(e);
    }
  } } });
  let mins;
  try {
    mins = await api.get(`/meetings/${m.id}/minutes/items`);
  } catch (e) {
    fill(box, h("h3", { i18n: "org.minutes" }), h("p", { class: "muted" }, e.status === 404 ? t("org.not_available") : describeError(e)), pdfBtn, status);
    return;
  }
  const step = async (name, body = {}) => {
    try {
      await api.post(`/meetings/${m.id}/minutes/${name}`, body);
      toast(t("org.minutes_" + name + "_done"), "ok");
      minutesReview(box);
    } catch (e) {
      showError(e);
    }
  };
  const reopen = async () => {
    const note = h("textarea", { maxlength: "2000", "data-testid": "minutes-reopen-note", "aria-label": t("org.minutes_reopen_note") });
    const v = await dialog({ titleKey: "org.minutes_reopen", body: h("label", { class: "field" }, h("span", { i18n: "org.minutes_reopen_note" }), note),
      actions: [{ i18n: "common.cancel", value: null, kind: "ghost" }, { i18n: "org.minutes_reopen", value: "ok", kind: "primary", testid: "dlg-ok" }] });
    if (v === "ok") step("reopen", note.value.trim() ? { note: note.value.trim() } : {});
  };
  const approve = async () => {
    if (await confirmDialog("org.minutes_approve", t("org.minutes_approve_text"))) step("approve");
  };
  const ended = m.status === "ended" || m.status === "archived";
  const items = (mins.items || []).filter((it) => !it.deleted || it.notes || (it.decisions || []).length);
  fill(box,
    h("div", { class: "row" }, h("h3", { class: "grow", i18n: "org.minutes" }),
      h("span", { class: "badge " + (mins.status === "approved" || mins.status === "locked" ? "badge-ok" : "badge-primary"), "data-testid": "minutes-status", "data-status": mins.status }, t("org.minutes_status_" + mins.status))),
    h("p", { class: "muted", i18n: "org.minutes_hint" }),
    h("ol", { class: "minutes-items" }, items.map((it) => minutesItem(it, mins.editable, () => minutesReview(box)))),
    mins.history?.length ? h("details", { class: "minutes-history" }, h("summary", { i18n: "org.minutes_history" }),
      h("ul", null, mins.history.map((x) => h("li", { "data-testid": "minutes-history" },
        `${fmtDateTime(x.at)} · ${t("org.minutes_action_" + x.action)} · ${x.who || ""}`, x.note ? ` — ${x.note}` : "")))) : null,
    h("div", { class: "btn-row" },
      mins.status === "draft" ? h("button", { type: "button", class: "btn btn-primary", i18n: "org.minutes_submit", "data-testid": "minutes-submit", on: { click: () => step("submit") } }) : null,
      mins.status === "submitted" ? h("button", { type: "button", class: "btn btn-ok", i18n: "org.minutes_approve", "data-testid": "minutes-approve", disabled: !ended, on: { click: approve } }) : null,
      mins.status === "submitted" ? h("button", { type: "button", class: "btn btn-ghost", i18n: "org.minutes_reopen", "data-testid": "minutes-reopen", on: { click: reopen } }) : null,
      pdfBtn),
    mins.status === "submitted" && !ended ? h("p", { class: "muted", i18n: "org.minutes_approve_after_end" }) : null,
    status);
  after.onMinutes = () => { if (box.isConnected) minutesReview(box); };
}

/** One agenda item's notes and decisions; editable (with its revision) while the minutes are a draft. */
function minutesItem(it, editable, refresh) {
  const m = M.meeting;
  const title = it.agenda_item_id ? it.title : t("org.minutes_general");
  const by = it.updated_by ? `${it.updated_by.name || ""} · ${fmtDateTime(it.updated_at)}` : "";
  const view = h("div", { class: "minutes-view" },
    it.notes ? h("div", { class: "minutes-notes", "data-testid": "minutes-notes" }, it.notes) : h("p", { class: "muted", i18n: "org.minutes_empty" }),
    (it.decisions || []).length ? h("ul", { class: "minutes-decisions" }, it.decisions.map((d) => h("li", { "data-testid": "minutes-decision" }, d))) : null,
    by ? h("p", { class: "muted small" }, by) : null);
  const li = h("li", { class: "minutes-item", "data-testid": "minutes-item", "data-item": String(it.agenda_item_id || 0) },
    h("div", { class: "row" }, h("strong", { class: "grow" }, title), it.deleted ? h("span", { class: "badge", i18n: "org.minutes_deleted_item" }) : null),
    view);
  if (editable) {
    li.append(h("button", { type: "button", class: "btn btn-ghost small", i18n: "common.edit", "data-testid": "minutes-edit", on: { click: () => {
      const notes = h("textarea", { rows: "6", maxlength: "200000", "data-testid": "minutes-notes-input", "aria-label": t("org.minutes_notes") });
      notes.value = it.notes || "";
      const decisions = h("textarea", { rows: "3", "data-testid": "minutes-decisions-input", "aria-label": t("org.minutes_decisions") });
      decisions.value = (it.decisions || []).join("\n");
      const save = h("button", { type: "button", class: "btn btn-primary", i18n: "common.save", "data-testid": "minutes-save", on: { click: async () => {
        try {
          await api.post(`/meetings/${m.id}/minutes/items`, {
            agenda_item_id: it.agenda_item_id || 0,
            notes: notes.value,
            decisions: decisions.value.split("\n").map((x) => x.trim()).filter(Boolean),
            base_revision: it.revision || 0,
            client_revision_id: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random(),
          });
          toast(t("org.saved"), "ok");
        } catch (e) {
          showError(e);
        }
        refresh();
      } } });
      view.replaceWith(h("div", { class: "minutes-edit" },
        h("label", { class: "field" }, h("span", { i18n: "org.minutes_notes" }), notes),
        h("label", { class: "field" }, h("span", { i18n: "org.minutes_decisions" }), decisions),
        h("div", { class: "btn-row" }, save, h("button", { type: "button", class: "btn btn-ghost", i18n: "common.cancel", on: { click: refresh } }))));
      li.querySelector("[data-testid=minutes-edit]")?.remove();
      notes.focus();
    } } }));
  }
  return li;
}

/** The archive: built in the worker (progress from `archive.progress` and the status route), then downloaded with progress. */
async function archiveCard(box) {
  const m = M.meeting;
  const bar = progressBar("");
  bar.el.hidden = true;
  bar.el.dataset.testid = "archive-progress";
  const status = h("p", { class: "muted", role: "status", "aria-live": "polite", "data-testid": "archive-status" });
  const btn = h("button", { type: "button", class: "btn btn-primary", i18n: "org.archive_download", "data-testid": "archive", on: { click: () => go() } });
  fill(box, h("h3", { i18n: "org.archive" }), h("p", { class: "muted", i18n: "org.archive_hint" }), btn, bar.el, status);
  const show = (b) => {
    if (!b || b.status === "none") return;
    bar.el.hidden = false;
    const pct = Math.round((b.progress || 0) * 100);
    if (b.status === "ready") bar.set(1, t("org.archive_ready", { size: fmtNumber(Math.round((b.size || 0) / 1024)) }));
    else if (b.status === "failed") bar.set(0, t("org.archive_failed", { error: b.error || "" }));
    else bar.set(b.progress || 0, t("org.archive_building", { progress: `${pct}%`, step: b.step || "" }));
    bar.el.dataset.status = b.status;
  };
  after.onArchive = (b) => { if (box.isConnected) show(b); };
  try {
    show(await api.get(`/meetings/${m.id}/archive/status`));
  } catch { /* not built yet, or not ended */ }
  let busy = false;
  async function go() {
    if (busy) return;
    busy = true;
    btn.disabled = true;
    status.textContent = "";
    try {
      // Start (or find) the build, then follow it: events, with the status route as a bounded fallback.
      for (let i = 0; i < 600; i++) {
        const resp = await api.raw(`/meetings/${m.id}/archive?wait=${i ? 2 : 0}`);
        if (resp.status !== 202) {
          await save(resp, `meeting-${m.id}-archive.zip`);
          return;
        }
        const b = await resp.json();
        show({ ...b.build, status: "building", progress: b.progress, step: b.step });
      }
      status.textContent = t("org.archive_too_slow");
    } catch (e) {
      status.textContent = e.status === 404 || e.status === 405 ? t("org.not_available") : describeError(e);
      if (e.code === "archive_failed") show({ status: "failed", error: describeError(e) });
    } finally {
      busy = false;
      btn.disabled = false;
    }
  }
  /** Read the zip with a download progress bar (Content-Length), then hand it over as a file. */
  async function save(resp, filename) {
    const total = Number(resp.headers.get("Content-Length")) || 0;
    const reader = resp.body?.getReader ? resp.body.getReader() : null;
    let blob;
    if (reader) {
      const chunks = [];
      let got = 0;
      bar.el.hidden = false;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        got += value.length;
        bar.set(total ? got / total : null, t("org.archive_downloading", { done: fmtNumber(Math.round(got / 1024)), total: total ? fmtNumber(Math.round(total / 1024)) : "?" }));
      }
      blob = new Blob(chunks, { type: "application/zip" });
    } else {
      blob = await resp.blob();
    }
    bar.set(1, t("org.archive_saved", { size: fmtNumber(Math.round(blob.size / 1024)) }));
    bar.el.dataset.status = "downloaded";
    bar.el.dataset.size = String(blob.size);
    bar.el.dataset.sealed = resp.headers.get("X-Archive-Sealed") || "";
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: filename, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
}

main().catch((e) => {
  console.error(e);
  fill(root(), h("p", { class: "error-text" }, describeError(e)));
});
