// The server's own page: a live list of matches, a spectator view of one (the same binary
// snapshots any player gets, decoded by protocol.js), the recorded matches and a replay
// viewer (replay.js), and the server's figures.
import { decodeServerMessage, SnapshotReceiver, REQUEST_FULL, PROTOCOL_VERSION } from "/protocol.js";
import { drawArena, color } from "/arena.js";
import { ReplayViewer } from "/replay.js";

const $ = (id) => document.getElementById(id);
const INTERP_DELAY_MS = 100; // about three snapshots at 30 Hz
const state = { matches: [], watching: null, socket: null, receiver: null, tickHz: 30, frames: [], names: new Map(), feed: [], replay: null };
window.skirmish = {
  matches: () => state.matches,
  watching: () => state.watching,
  latestWorld: () => (state.receiver ? state.receiver.latest() : null),
  watch,
  watchReplay,
  replay: () => state.replay,
};

// ---- server figures ------------------------------------------------------------------------
const history = [];
let prevStats = null;
async function pollStats() {
  try {
    const s = await (await fetch("/api/stats")).json();
    const c = s.counters;
    const now = performance.now();
    if (prevStats) {
      const dt = (now - prevStats.at) / 1000;
      const bytes = (c.bytes_out - prevStats.c.bytes_out) / dt;
      const ticks = c.ticks - prevStats.c.ticks;
      const tickUs = ticks > 0 ? (c.tick_busy_us - prevStats.c.tick_busy_us) / ticks : 0;
      $("f-bytes").textContent = `${(bytes / 1024).toFixed(1)} KiB/s`;
      $("f-tick").textContent = `${tickUs.toFixed(0)} µs`;
      history.push({ bytes, clients: c.connections });
      if (history.length > 150) history.shift();
      drawChart();
    }
    $("f-clients").textContent = c.connections;
    $("f-matches").textContent = c.matches;
    prevStats = { c, at: now };
  } catch (e) {
    $("status").textContent = `server unreachable: ${e}`;
  }
}

function drawChart() {
  const cv = $("chart");
  const g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, cv.height);
  const line = (key, color) => {
    const max = Math.max(1, ...history.map((h) => h[key]));
    g.strokeStyle = color;
    g.beginPath();
    history.forEach((h, i) => {
      const x = (i / 149) * cv.width;
      const y = cv.height - 2 - (h[key] / max) * (cv.height - 4);
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  };
  line("bytes", "#2f6fed");
  line("clients", "#f0b429");
}

// ---- match list ------------------------------------------------------------------------------
async function pollMatches() {
  try {
    state.matches = await (await fetch("/api/matches")).json();
  } catch {
    return;
  }
  const tbody = $("matches");
  tbody.replaceChildren();
  if (!state.matches.length) {
    tbody.innerHTML = '<tr><td colspan="6">no matches yet</td></tr>';
  }
  for (const m of state.matches) {
    const tr = document.createElement("tr");
    tr.className = "match-row";
    tr.dataset.id = m.id;
    for (const v of [m.id, `${m.players}/${m.capacity}`, m.phase, m.tick, `${m.tick_hz} Hz`]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    const td = document.createElement("td");
    const b = document.createElement("button");
    b.textContent = state.watching === m.id ? "watching" : "watch";
    b.onclick = () => watch(m.id);
    td.append(b);
    tr.append(td);
    tbody.append(tr);
  }
}

// ---- spectating ----------------------------------------------------------------------------
// `follow`: a player id to see what that player sees (on a server with a view radius), or
// null for the whole match.
async function watch(id, follow = null) {
  if (state.socket) state.socket.close(1000, "watching another match");
  state.socket = null;
  state.replay = null;
  $("replay-controls").hidden = true;
  state.watching = id;
  state.frames = [];
  state.names = new Map();
  state.feed = [];
  $("view").hidden = false;
  $("view-title").textContent = follow === null ? `Match ${id}` : `Match ${id} · following #${follow} · `;
  if (follow !== null) {
    const all = Object.assign(document.createElement("button"), { id: "see-all", textContent: "see all" });
    all.onclick = () => watch(id);
    $("view-title").append(all);
  }
  // A spectator token first (the server may rate-limit or require the operator's key).
  const res = await fetch(`/api/matches/${id}/spectate`, { method: "POST" });
  if (!res.ok) {
    $("phase").textContent = `cannot watch: ${res.status} ${await res.text()}`;
    return;
  }
  const pass = await res.json();
  if (state.watching !== id) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const followQuery = follow === null ? "" : `&follow=${follow}`;
  const url = `${scheme}://${location.host}/ws?v=${PROTOCOL_VERSION}&token=${encodeURIComponent(pass.token)}${followQuery}`;
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  ws.onmessage = (e) => onMessage(ws, new Uint8Array(e.data));
  ws.onclose = (e) => {
    if (state.socket === ws) $("phase").textContent = `disconnected (${e.code} ${e.reason})`;
  };
  state.socket = ws;
}

function onMessage(ws, bytes) {
  const msg = decodeServerMessage(bytes);
  if (msg.type === "Welcome") {
    state.tickHz = msg.tick_hz;
    state.receiver = new SnapshotReceiver(msg.tick_hz);
  }
  if (msg.type === "Welcome" || msg.type === "Snapshot") {
    const world = state.receiver.receive(msg.snapshot);
    if (!world) {
      ws.send(REQUEST_FULL);
      return;
    }
    for (const p of world.players) state.names.set(p.id, p.name);
    for (const e of msg.snapshot.events) addEvent(e);
    state.frames.push({ at: performance.now(), world });
    if (state.frames.length > 16) state.frames.shift();
    updateSide(world);
  } else if (msg.type === "MatchEnded") {
    addEvent({ kind: { Ended: msg.ranking } });
  }
}

function addEvent(e) {
  const [kind, f] = Object.entries(e.kind)[0];
  const n = (id) => state.names.get(id) ?? `#${id}`;
  const text = {
    OrbCollected: () => `${n(f.player)} collected an orb`,
    Tagged: () => `${n(f.shooter)} tagged ${n(f.target)}`,
    Joined: () => `${f.name} joined`,
    Left: () => `${n(f.player)} left`,
    Disconnected: () => `${n(f.player)} lost connection`,
    Reconnected: () => `${n(f.player)} is back`,
    PhaseChanged: () => `phase: ${f.phase}`,
    Chat: () => `${n(f.from)}: ${f.text}`,
    EventsLost: () => `(${f.missed} events missed)`,
    Ended: () => `match over: ${f.map((r) => `${r.rank}. ${r.name} ${r.score}`).join(", ")}`,
  }[kind];
  if (!text) return;
  state.feed.unshift(text());
  state.feed.length = Math.min(state.feed.length, 12);
  const ul = $("feed");
  ul.replaceChildren(...state.feed.map((t) => Object.assign(document.createElement("li"), { textContent: t })));
}

function updateSide(world) {
  const left = Math.max(0, (world.phase_end - world.tick) / state.tickHz);
  $("phase").textContent = `${world.phase} · ${left.toFixed(0)} s left · tick ${world.tick}`;
  const rows = [...world.players].sort((a, b) => b.score - a.score || a.id - b.id);
  // The rows are kept and rewritten in place (not replaced 30 times a second), so a click
  // lands on the row it was aimed at.
  const board = $("scoreboard");
  rows.forEach((p, i) => {
    let li = board.children[i];
    if (!li) {
      li = document.createElement("li");
      li.className = "score-row";
      li.title = "follow: see what this player sees";
      board.append(li);
    }
    li.dataset.id = p.id;
    li.style.color = color(p.id);
    li.textContent = `${p.name} — ${p.score}`;
  });
  while (board.children.length > rows.length) board.lastChild.remove();
}

// Click a player on the scoreboard to see what it sees; "see all" goes back.
$("scoreboard").addEventListener("click", (e) => {
  const li = e.target.closest("li[data-id]");
  if (li && state.watching !== null && !state.replay) watch(state.watching, Number(li.dataset.id));
});

// Positions at display time, interpolated between the two snapshots around (now - delay);
// a short extrapolation when snapshots stop.
function sample(now) {
  const f = state.frames;
  if (!f.length) return null;
  const t = now - INTERP_DELAY_MS;
  let i = f.length - 1;
  while (i > 0 && f[i - 1].at > t) i--;
  const a = f[Math.max(0, i - 1)];
  const b = f[i];
  const span = b.at - a.at;
  const alpha = span > 0 ? Math.min(1.25, Math.max(0, (t - a.at) / span)) : 1;
  const prev = new Map(a.world.players.map((p) => [p.id, p]));
  return {
    world: b.world,
    players: b.world.players.map((p) => {
      const q = prev.get(p.id) ?? p;
      return { ...p, x: q.pos[0] + (p.pos[0] - q.pos[0]) * alpha, y: q.pos[1] + (p.pos[1] - q.pos[1]) * alpha };
    }),
  };
}

let lastFrameAt = performance.now();
let lastReplayTick = null;
function draw() {
  requestAnimationFrame(draw);
  const now = performance.now();
  const dt = now - lastFrameAt;
  lastFrameAt = now;
  if (state.replay) {
    drawReplay(dt);
    return;
  }
  const s = sample(now);
  if (!s) return;
  drawArena($("arena"), s.world, s.players, state.tickHz);
}

// ---- replays -------------------------------------------------------------------------------
async function pollReplays() {
  let rows;
  try {
    rows = await (await fetch("/api/replays")).json();
  } catch {
    return;
  }
  const tbody = $("replays");
  tbody.replaceChildren();
  if (!rows.length) tbody.innerHTML = '<tr><td colspan="6">none yet</td></tr>';
  for (const r of rows.slice(0, 20)) {
    const tr = document.createElement("tr");
    tr.className = "replay-row";
    tr.dataset.id = r.match_id;
    const players = r.results ? r.results.players : [];
    const winner = players.find((p) => p.rank === 1);
    const cells = [
      r.match_id,
      new Date(r.created_at).toLocaleTimeString(),
      r.recording ? "playing" : players.length,
      winner ? `${winner.name} (${winner.score})` : "–",
      `${(r.bytes / 1024).toFixed(0)} KiB`,
    ];
    for (const v of cells) tr.append(Object.assign(document.createElement("td"), { textContent: v }));
    const b = Object.assign(document.createElement("button"), { textContent: "watch replay" });
    b.onclick = () => watchReplay(r.match_id);
    const td = document.createElement("td");
    td.append(b);
    tr.append(td);
    tbody.append(tr);
  }
}

async function watchReplay(id) {
  if (state.socket) state.socket.close(1000, "watching a replay");
  state.socket = null;
  state.watching = null;
  state.feed = [];
  $("feed").replaceChildren();
  $("view").hidden = false;
  $("replay-controls").hidden = false;
  $("view-title").textContent = `Replay of match ${id}`;
  const viewer = new ReplayViewer(id);
  state.replay = viewer;
  lastReplayTick = null;
  try {
    await viewer.open();
  } catch (e) {
    $("phase").textContent = `cannot play the replay: ${e.message}`;
    return;
  }
  state.tickHz = viewer.hz;
  const seek = $("rp-seek");
  seek.min = viewer.first;
  seek.max = viewer.last;
  seek.value = viewer.first;
  viewer.playing = true;
  $("rp-play").textContent = "pause";
}

$("rp-play").addEventListener("click", () => {
  const v = state.replay;
  if (!v) return;
  if (!v.playing && v.pos >= v.last) v.seek(v.first);
  v.playing = !v.playing;
  $("rp-play").textContent = v.playing ? "pause" : "play";
});
$("rp-speed").addEventListener("change", (e) => {
  if (state.replay) state.replay.speed = Number(e.target.value);
});
// Dragging the timeline seeks as it goes, at most five times a second (the server limits
// replay reads per client), and where it is let go.
let lastDragSeek = 0;
$("rp-seek").addEventListener("input", (e) => {
  const now = performance.now();
  if (state.replay && now - lastDragSeek >= 200) {
    lastDragSeek = now;
    state.replay.seek(Number(e.target.value));
  }
});
$("rp-seek").addEventListener("change", (e) => {
  if (state.replay) state.replay.seek(Number(e.target.value));
});

function drawReplay(dt) {
  const v = state.replay;
  v.advance(dt);
  const seek = $("rp-seek");
  if (document.activeElement !== seek) seek.value = Math.floor(v.pos);
  $("rp-tick").textContent = `tick ${Math.floor(v.pos)} / ${v.last} · ${v.speed}x${v.error ? ` · ${v.error}` : ""}`;
  if (!v.playing) $("rp-play").textContent = "play";
  const s = v.sample();
  if (!s) return;
  drawArena($("arena"), s.world, s.players, v.hz);
  if (s.world.tick !== lastReplayTick) {
    for (const p of s.world.players) state.names.set(p.id, p.name);
    // The events of the ticks played since the last drawn one (not across a seek).
    const t = s.world.tick;
    if (lastReplayTick !== null && t > lastReplayTick && t - lastReplayTick <= 60) {
      for (let k = lastReplayTick + 1; k <= t; k++) for (const e of v.events.get(k) ?? []) addEvent(e);
    }
    lastReplayTick = t;
    updateSide(s.world);
  }
}

pollStats();
pollMatches();
pollReplays();
setInterval(pollStats, 2000);
setInterval(pollMatches, 1000);
setInterval(pollReplays, 5000);
requestAnimationFrame(draw);
