"use strict";
// In-memory reference server for the live-room subset of the wire contract
// (shared contract.md, "Tablets join" and "Live room"), so the same load
// generator can drive this and meeting-server and compare the two.
// Nothing is stored on disk; it is a yardstick, not a product.
//
//   node server.js [--host 127.0.0.1] [--port 0]
//
// Prints one JSON line {"listening": "http://127.0.0.1:PORT", "pid": N} on stdout.

const http = require("http");
const crypto = require("crypto");
const { Server } = require("socket.io");

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

function parseArgs(argv) {
  const opts = { host: "127.0.0.1", port: 0 };
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === "--host") opts.host = argv[++i];
    else if (argv[i] === "--port") opts.port = Number(argv[++i]);
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!LOOPBACK.has(opts.host) && !opts.host.startsWith("127.")) {
    throw new Error(`refusing to listen on ${opts.host}: loopback only`);
  }
  return opts;
}

const newToken = () => crypto.randomBytes(18).toString("base64url");
const nowIso = () => new Date().toISOString();

// ---- in-memory model -------------------------------------------------------
const meetings = new Map(); // id -> meeting
const joinTokens = new Map(); // join token -> {meeting, attendee}
const sessions = new Map(); // session token -> {meeting, attendee}
const organizers = new Map(); // organizer token -> {meetingIds:Set}
const polls = new Map(); // id -> poll
const documents = new Map(); // id -> {id, meeting_id, page_count}
let nextId = 1;

const VOTING_ROLES = new Set(["attendee", "chair", "presenter"]);
const PRESENT_ROLES = new Set(["chair", "presenter", "organizer"]);
const POLL_ROLES = new Set(["chair", "organizer"]);

function createMeeting(seats, title, pageCount) {
  const meeting = {
    id: nextId++,
    title: title || `Bench ${seats} seats`,
    status: "live",
    current: { document_id: null, page: null },
    seq: 0,
    attendees: new Map(),
    checkedIn: new Map(), // attendee id -> ISO time
  };
  meetings.set(meeting.id, meeting);
  const doc = { id: nextId++, meeting_id: meeting.id, page_count: pageCount, status: "ready" };
  documents.set(doc.id, doc);
  const joins = [];
  for (let i = 1; i <= seats; i++) {
    const attendee = { id: nextId++, name: `Seat ${i}`, seat: String(i), role: "attendee" };
    meeting.attendees.set(attendee.id, attendee);
    const jt = newToken();
    joinTokens.set(jt, { meeting, attendee });
    joins.push(jt);
  }
  const poll = {
    id: nextId++,
    meeting_id: meeting.id,
    title: "Bench motion",
    options: ["yes", "no", "abstain"],
    secret: true,
    status: "draft",
    tally: [0, 0, 0],
    voters: new Set(), // attendee ids (participation)
    ballots: new Map(), // ballot_id -> receipt
  };
  polls.set(poll.id, poll);
  const orgToken = newToken();
  organizers.set(orgToken, { meetingIds: new Set([meeting.id]) });
  return {
    meeting_id: meeting.id,
    organizer_token: orgToken,
    join_tokens: joins,
    poll_id: poll.id,
    document_id: doc.id,
    page_count: pageCount,
  };
}

function eligible(meeting) {
  let n = 0;
  for (const a of meeting.attendees.values()) if (VOTING_ROLES.has(a.role)) n++;
  return n;
}

function attendance(meeting) {
  let expected = 0;
  let present = 0;
  for (const a of meeting.attendees.values()) {
    if (a.role === "observer") continue;
    expected++;
    if (meeting.checkedIn.has(a.id)) present++;
  }
  return { present, expected };
}

function pollView(poll, withTally) {
  const meeting = meetings.get(poll.meeting_id);
  const view = {
    id: poll.id,
    status: poll.status,
    title: poll.title,
    options: poll.options,
    secret: poll.secret,
    voted: poll.voters.size,
    eligible: eligible(meeting),
  };
  if (withTally && poll.status === "closed") view.tally = poll.tally.slice();
  return view;
}

function openPoll(meeting) {
  for (const p of polls.values()) if (p.meeting_id === meeting.id && p.status === "open") return pollView(p, false);
  return null;
}

// ---- HTTP -------------------------------------------------------------------
function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) });
  res.end(data);
}

const fail = (res, status, code, message) => send(res, status, { error: { code, message } });

function readJson(req, res, cb) {
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size > 1 << 20) {
      fail(res, 413, "too_large", "body over 1 MiB");
      req.destroy();
    } else chunks.push(c);
  });
  req.on("end", () => {
    if (res.writableEnded) return;
    let body;
    try {
      body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {};
    } catch (e) {
      return fail(res, 400, "malformed", "body is not JSON");
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      return fail(res, 400, "malformed", "body must be a JSON object");
    }
    cb(body);
  });
}

function bearer(req) {
  const h = req.headers.authorization || "";
  return h.startsWith("Bearer ") ? h.slice(7) : null;
}

function handleHttp(req, res) {
  const url = new URL(req.url, "http://localhost");
  const path = url.pathname;
  if (req.method === "GET" && path === "/healthz") return send(res, 200, { status: "ok" });
  if (req.method === "GET" && path === "/bench/mem") return send(res, 200, { pid: process.pid, ...process.memoryUsage() });
  if (req.method === "POST" && path === "/bench/setup") {
    return readJson(req, res, (body) => {
      const seats = Number(body.seats);
      if (!Number.isInteger(seats) || seats < 1 || seats > 100000) {
        return fail(res, 400, "invalid", "seats must be an integer 1..100000");
      }
      const pages = body.page_count === undefined ? 5 : Number(body.page_count);
      if (!Number.isInteger(pages) || pages < 1) return fail(res, 400, "invalid", "page_count must be >= 1");
      send(res, 201, createMeeting(seats, body.title, pages));
    });
  }
  if (req.method === "POST" && path === "/api/v1/join") {
    return readJson(req, res, (body) => {
      const entry = typeof body.token === "string" ? joinTokens.get(body.token) : undefined;
      if (!entry) return fail(res, 401, "bad_token", "unknown join token");
      const st = newToken();
      sessions.set(st, entry);
      send(res, 200, { session_token: st, meeting_id: entry.meeting.id, attendee: entry.attendee });
    });
  }
  const m = path.match(/^\/api\/v1\/polls\/(\d+)$/);
  if (req.method === "GET" && m) {
    const poll = polls.get(Number(m[1]));
    if (!poll) return fail(res, 404, "not_found", "no such poll");
    const tok = bearer(req);
    const org = tok && organizers.get(tok);
    const ses = tok && sessions.get(tok);
    if (org && org.meetingIds.has(poll.meeting_id)) return send(res, 200, pollView(poll, true));
    if (ses && ses.meeting.id === poll.meeting_id) return send(res, 200, pollView(poll, false));
    return fail(res, 401, "unauthorized", "bearer token required");
  }
  if (path.startsWith("/socket.io/")) return; // handled by engine.io
  fail(res, 404, "not_found", `no route ${req.method} ${path}`);
}

// ---- Socket.IO ----------------------------------------------------------------
const ok = (extra) => ({ ok: true, ...extra });
const err = (code, message) => ({ ok: false, error: { code, message } });

function attach(io) {
  io.use((socket, next) => {
    const auth = socket.handshake.auth || {};
    const token = typeof auth.token === "string" ? auth.token : null;
    const ses = token && sessions.get(token);
    if (ses) {
      socket.data.meeting = ses.meeting;
      socket.data.attendee = ses.attendee;
      socket.data.role = ses.attendee.role;
      return next();
    }
    const org = token && organizers.get(token);
    const mid = Number(auth.meeting_id);
    if (org && org.meetingIds.has(mid) && meetings.has(mid)) {
      socket.data.meeting = meetings.get(mid);
      socket.data.attendee = null;
      socket.data.role = "organizer";
      return next();
    }
    const e = new Error("unauthorized");
    e.data = { code: "unauthorized", message: "bad or missing token" };
    next(e);
  });

  io.on("connection", (socket) => {
    const meeting = socket.data.meeting;
    const room = `meeting:${meeting.id}`;
    socket.join(room);
    const me = socket.data.attendee;
    socket.emit("state", {
      meeting: { id: meeting.id, status: meeting.status, title: meeting.title },
      current: { ...meeting.current, seq: meeting.seq },
      poll: openPoll(meeting),
      attendance: attendance(meeting),
      me: {
        attendee_id: me ? me.id : null,
        role: socket.data.role,
        checked_in: me ? meeting.checkedIn.has(me.id) : false,
      },
    });

    const on = (event, fn) =>
      socket.on(event, (data, ack) => {
        if (typeof data === "function") [data, ack] = [{}, data];
        const reply = fn(data && typeof data === "object" ? data : {});
        if (typeof ack === "function") ack(reply);
      });

    on("checkin", () => {
      if (!me) return err("forbidden", "organizers do not check in");
      let at = meeting.checkedIn.get(me.id);
      if (!at) {
        at = nowIso();
        meeting.checkedIn.set(me.id, at);
        io.to(room).emit("attendance", attendance(meeting));
      }
      return ok({ checked_in_at: at });
    });

    on("present", (d) => {
      if (!PRESENT_ROLES.has(socket.data.role)) return err("forbidden", "only chair, presenter, organizer");
      const doc = documents.get(Number(d.document_id));
      if (!doc || doc.meeting_id !== meeting.id) return err("not_found", "no such document in this meeting");
      const page = d.page;
      if (!Number.isInteger(page) || page < 1 || page > doc.page_count) return err("invalid", "page out of range");
      meeting.seq += 1;
      meeting.current = { document_id: d.document_id, page };
      const msg = { document_id: d.document_id, page, seq: meeting.seq };
      io.to(room).emit("page", msg);
      return ok(msg);
    });

    const pollCommand = (d, toStatus) => {
      if (!POLL_ROLES.has(socket.data.role)) return err("forbidden", "only chair or organizer");
      const poll = polls.get(Number(d.poll_id));
      if (!poll || poll.meeting_id !== meeting.id) return err("not_found", "no such poll");
      if (toStatus === "open" && poll.status !== "draft") return err("poll_not_draft", "poll already opened");
      if (toStatus === "closed" && poll.status !== "open") return err("poll_not_open", "poll is not open");
      poll.status = toStatus;
      io.to(room).emit("poll", pollView(poll, false));
      if (toStatus === "closed") io.to(room).emit("poll.result", { id: poll.id, tally: poll.tally.slice() });
      return ok({ poll: pollView(poll, true) });
    };
    on("poll.open", (d) => pollCommand(d, "open"));
    on("poll.close", (d) => pollCommand(d, "closed"));

    on("vote", (d) => {
      if (!me || !VOTING_ROLES.has(me.role)) return err("forbidden", "this role does not vote");
      if (!meeting.checkedIn.has(me.id)) return err("not_checked_in", "check in first");
      const poll = polls.get(Number(d.poll_id));
      if (!poll || poll.meeting_id !== meeting.id) return err("not_found", "no such poll");
      if (poll.status !== "open") return err("poll_not_open", "poll is not open");
      const ballotKey = typeof d.ballot_id === "string" ? `${me.id}:${d.ballot_id}` : null;
      if (ballotKey && poll.ballots.has(ballotKey)) return ok({ receipt: poll.ballots.get(ballotKey) });
      if (poll.voters.has(me.id)) return err("already_voted", "one vote per attendee");
      const choices = d.choices;
      if (
        !Array.isArray(choices) ||
        choices.length !== 1 ||
        !Number.isInteger(choices[0]) ||
        choices[0] < 0 ||
        choices[0] >= poll.options.length
      ) {
        return err("invalid", "choices must be one option index");
      }
      poll.voters.add(me.id);
      poll.tally[choices[0]] += 1;
      const receipt = newToken();
      if (ballotKey) poll.ballots.set(ballotKey, receipt);
      return ok({ receipt });
    });
  });
}

function main() {
  const opts = parseArgs(process.argv);
  const server = http.createServer(handleHttp);
  const io = new Server(server, { serveClient: false });
  attach(io);
  server.listen(opts.port, opts.host, () => {
    const { port } = server.address();
    const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
    process.stdout.write(JSON.stringify({ listening: `http://${host}:${port}`, pid: process.pid }) + "\n");
  });
  const stop = () => {
    io.close();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main();
