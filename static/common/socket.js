// The live connection: auth at connect, acks as promises, an outbox that survives
// Wi-Fi drops (and reloads), and a `page` filter that drops stale flips by `seq`.
import { io } from "/static/vendor/socket.io.esm.min.js";
import { uid } from "./dom.js";

const REFUSAL = /'code':\s*'(\w+)'/;
/** Events that carry the whole `current` block (document, page, view, agenda item, follow lock). */
export const CURRENT_EVENTS = ["page", "view", "agenda.current", "follow.lock"];

/** The `{code, message}` of a refused connection (python-socketio may send it as text). */
export function refusal(err) {
  if (!err) return null;
  if (err.data && typeof err.data === "object" && err.data.code) return err.data;
  const msg = String(err.message || "");
  const m = REFUSAL.exec(msg);
  if (m) return { code: m[1], message: msg };
  try {
    const parsed = JSON.parse(msg);
    if (parsed && parsed.code) return parsed;
  } catch { /* not JSON */ }
  return null;
}

/**
 * connectLive({auth, handlers, onStatus, onState, onCurrent, outboxKey})
 * onCurrent(block, eventName) gets `page`, `view`, `agenda.current` and `follow.lock`
 * blocks in `seq` order (stale ones dropped).
 * handlers: {eventName: fn(data)} for every other server event.
 * Returns {socket, request(name, payload, opts), status(), close()}.
 */
export function connectLive({ auth, handlers = {}, onStatus = () => {}, onState = () => {}, onCurrent = () => {}, outboxKey = null }) {
  const socket = io({
    auth,
    transports: ["websocket", "polling"],
    reconnectionDelay: 300,
    reconnectionDelayMax: 2000,
    timeout: 8000,
  });
  let status = "connecting";
  let lastSeq = -1;
  const outbox = loadOutbox(outboxKey);
  const waiting = new Map(); // outbox id -> {resolve}

  function setStatus(s, detail) {
    status = s;
    onStatus(s, detail);
  }

  socket.on("connect", () => {
    setStatus("online");
    flush();
  });
  socket.on("disconnect", (reason) => {
    socket.sendBuffer = []; // queued commands live in our outbox, not in socket.io's buffer
    setStatus("offline", reason);
    if (reason === "io server disconnect") setTimeout(() => socket.connect(), 1000);
  });
  socket.on("connect_error", (err) => {
    const r = refusal(err);
    if (r && ["bad_token", "unauthorized", "forbidden", "meeting_required", "not_found", "session_revoked"].includes(r.code)) {
      setStatus("refused", r);
    } else {
      setStatus("offline", err?.message);
    }
  });
  socket.on("state", (st) => {
    const seq = st?.current?.seq;
    lastSeq = typeof seq === "number" ? seq : -1;
    onState(st);
  });
  // Every change of the `current` block carries the whole block and the meeting's seq:
  // keep the newest, drop any that arrives after a newer one.
  for (const name of CURRENT_EVENTS) {
    socket.on(name, (block) => {
      if (typeof block?.seq === "number") {
        if (block.seq <= lastSeq) return;
        lastSeq = block.seq;
      }
      onCurrent(block, name);
    });
  }
  for (const [name, fn] of Object.entries(handlers)) socket.on(name, fn);

  window.addEventListener("online", () => { if (!socket.connected) socket.connect(); });

  function emitAck(name, payload, timeout) {
    return new Promise((resolve, reject) => {
      socket.timeout(timeout).emit(name, payload ?? {}, (err, ack) => {
        if (err) reject(Object.assign(new Error("timeout"), { code: "timeout" }));
        else resolve(ack ?? { ok: false, error: { code: "no_answer", message: "no answer" } });
      });
    });
  }

  /**
   * Send a command and resolve with its ack ({ok, …}). With {queue: true} the
   * command waits in the outbox while offline and is resent on reconnect until
   * answered (use it only for idempotent commands: votes with a ballot_id,
   * annotations with a client id). Without it an offline send resolves
   * {ok: false, error: {code: "offline"}}.
   */
  function request(name, payload = {}, { timeout = 10000, queue = false } = {}) {
    if (!queue) {
      if (!socket.connected) return Promise.resolve({ ok: false, error: { code: "offline", message: "offline" } });
      return emitAck(name, payload, timeout).catch((e) => ({ ok: false, error: { code: e.code || "timeout", message: e.message } }));
    }
    const item = { id: uid(), name, payload, at: Date.now() };
    outbox.push(item);
    saveOutbox(outboxKey, outbox);
    const p = new Promise((resolve) => waiting.set(item.id, { resolve }));
    if (socket.connected) sendItem(item, timeout);
    return p;
  }

  async function sendItem(item, timeout = 10000) {
    if (item.sending || !outbox.includes(item)) return;
    item.sending = true;
    let ack = null;
    try {
      ack = await emitAck(item.name, item.payload, timeout);
    } catch { /* timed out: retried below */ }
    item.sending = false;
    if (!ack || (ack.ok === false && ["offline", "internal", "timeout"].includes(ack.error?.code))) {
      // Stays in the outbox; the next connect (or this retry) resends it.
      if (socket.connected) setTimeout(() => sendItem(item, timeout), 2000);
      return;
    }
    const i = outbox.indexOf(item);
    if (i >= 0) outbox.splice(i, 1);
    saveOutbox(outboxKey, outbox);
    const w = waiting.get(item.id);
    waiting.delete(item.id);
    if (w) w.resolve(ack);
    for (const fn of outboxListeners) fn({ item, ack });
  }

  function flush() {
    for (const item of [...outbox]) sendItem(item);
  }

  const outboxListeners = new Set();

  return {
    socket,
    request,
    /** Fire and forget (fast events: pointer, ink, seat.status); dropped while offline. */
    emit: (name, payload) => { if (socket.connected) socket.emit(name, payload ?? {}); },
    status: () => status,
    pending: () => outbox.map(({ id, name, payload, at }) => ({ id, name, payload, at })),
    onOutbox: (fn) => outboxListeners.add(fn),
    lastSeq: () => lastSeq,
    close: () => socket.close(),
  };
}

function loadOutbox(key) {
  if (!key) return [];
  try {
    const v = JSON.parse(localStorage.getItem(key) || "[]");
    return Array.isArray(v) ? v.map((x) => ({ ...x, sending: false })) : [];
  } catch {
    return [];
  }
}

function saveOutbox(key, outbox) {
  if (!key) return;
  try {
    localStorage.setItem(key, JSON.stringify(outbox.map(({ id, name, payload, at }) => ({ id, name, payload, at }))));
  } catch { /* full or blocked: the in-memory outbox still works */ }
}
