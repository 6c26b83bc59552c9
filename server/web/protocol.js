// Skirmish wire format, decoded in JavaScript: the bincode 2 envelope (standard config:
// little-endian, varint integers) and the bit-packed snapshot codec. A mirror of
// shared/src/protocol.rs and shared/src/codec.rs, checked against golden vectors written by
// the Rust codec (server/web/vectors, test in server/web/test). Works in browsers and Node.

export const PROTOCOL_VERSION = 3;
export const PHASES = ["Waiting", "Countdown", "Running", "Ended"];
const POS_SCALE = 16;
const VEL_SCALE = 4;
const AIM_STEPS = 1024;
const TWO32 = 2 ** 32;

export class DecodeError extends Error {}

// ---- bincode ------------------------------------------------------------------------------

class Bincode {
  constructor(bytes) {
    this.b = bytes;
    this.p = 0;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n) {
    if (this.p + n > this.b.length) throw new DecodeError("unexpected end of message");
  }
  u8() {
    this.need(1);
    return this.b[this.p++];
  }
  varint() {
    const first = this.u8();
    if (first < 251) return first;
    if (first === 251) { this.need(2); const v = this.view.getUint16(this.p, true); this.p += 2; return v; }
    if (first === 252) { this.need(4); const v = this.view.getUint32(this.p, true); this.p += 4; return v; }
    if (first === 253) { this.need(8); const v = this.view.getBigUint64(this.p, true); this.p += 8; return Number(v); }
    throw new DecodeError("varint too large");
  }
  bytes() {
    const n = this.varint();
    this.need(n);
    const out = this.b.subarray(this.p, this.p + n);
    this.p += n;
    return out;
  }
  string() {
    return new TextDecoder("utf-8", { fatal: true }).decode(this.bytes());
  }
  option(f) {
    const tag = this.u8();
    if (tag === 0) return null;
    if (tag === 1) return f();
    throw new DecodeError("bad option tag");
  }
  vec(f) {
    const n = this.varint();
    const out = [];
    for (let i = 0; i < n; i++) out.push(f());
    return out;
  }
}

function decodeEventKind(r) {
  const v = r.varint();
  switch (v) {
    case 0: return { OrbCollected: { player: r.varint(), orb: r.varint() } };
    case 1: return { Tagged: { shooter: r.varint(), target: r.varint() } };
    case 2: return { Joined: { player: r.varint(), name: r.string() } };
    case 3: return { Left: { player: r.varint() } };
    case 4: return { Disconnected: { player: r.varint() } };
    case 5: return { Reconnected: { player: r.varint() } };
    case 6: return { PhaseChanged: { phase: PHASES[r.varint()], ends_at: r.varint() } };
    case 7: return { Chat: { from: r.varint(), text: r.string() } };
    case 8: return { EventsLost: { missed: r.varint() } };
    default: throw new DecodeError(`unknown event kind ${v}`);
  }
}

function decodeSnapshotMsg(r) {
  const tick = r.varint();
  const baseline_age = r.varint();
  const data = r.bytes();
  const events = r.vec(() => ({ id: r.varint(), tick: r.varint(), kind: decodeEventKind(r) }));
  return { tick, baseline_age, data, events };
}

/** Decodes one server message (a WebSocket binary frame). */
export function decodeServerMessage(bytes) {
  const r = new Bincode(bytes);
  const v = r.varint();
  let msg;
  switch (v) {
    case 0:
      msg = { type: "Welcome", player_id: r.option(() => r.varint()), match_id: r.varint(), tick_hz: r.varint(), snapshot: decodeSnapshotMsg(r) };
      break;
    case 1: msg = { type: "Snapshot", snapshot: decodeSnapshotMsg(r) }; break;
    case 2: msg = { type: "Pong", client_time_us: r.varint(), server_tick: r.varint() }; break;
    case 3: msg = { type: "Error", code: r.varint(), message: r.string() }; break;
    case 4:
      msg = { type: "MatchEnded", ranking: r.vec(() => ({ rank: r.varint(), player_id: r.varint(), name: r.string(), score: r.varint() })) };
      break;
    case 5: msg = { type: "ChatRejected", reason: r.string() }; break;
    default: throw new DecodeError(`unknown server message ${v}`);
  }
  if (r.p !== bytes.length) throw new DecodeError("trailing bytes");
  return msg;
}

/** `ClientMessage::RequestFull`, encoded. */
export const REQUEST_FULL = new Uint8Array([2]);

// ---- bits ---------------------------------------------------------------------------------

class Bits {
  constructor(bytes) {
    this.b = bytes;
    this.p = 0;
  }
  bits(n) {
    if (this.p + n > this.b.length * 8) throw new DecodeError("ran past the end of the data");
    let v = 0;
    let got = 0;
    while (got < n) {
      const byte = this.b[this.p >> 3];
      const off = this.p & 7;
      const take = Math.min(8 - off, n - got);
      const chunk = (byte >> off) & ((1 << take) - 1);
      v += chunk * 2 ** got;
      got += take;
      this.p += take;
    }
    return v;
  }
  bit() {
    return this.bits(1) === 1;
  }
  expGolomb(k) {
    let zeros = 0;
    while (!this.bit()) {
      zeros++;
      if (zeros + k >= 64) throw new DecodeError("variable-length code too long");
    }
    let remaining = zeros + k;
    let x = 1;
    while (remaining > 0) {
      const take = Math.min(remaining, 16);
      const chunk = reverse(this.bits(take), take);
      x = x * 2 ** take + chunk;
      remaining -= take;
    }
    return x - 2 ** k;
  }
  signed(k) {
    const z = this.expGolomb(k);
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }
  atEnd() {
    return this.b.length * 8 - this.p < 8;
  }
}

function reverse(v, n) {
  let out = 0;
  for (let i = 0; i < n; i++) {
    out = out * 2 + (v % 2);
    v = Math.floor(v / 2);
  }
  return out;
}

// ---- snapshot codec -----------------------------------------------------------------------

function divRound(n, d) {
  return n >= 0 ? Math.floor((n + d / 2) / d) : -Math.floor((-n + d / 2) / d);
}

/** Position steps moved in one tick at velocity `v` (velocity steps). */
export function displacement(v, tickHz) {
  return divRound(v * POS_SCALE, VEL_SCALE * tickHz);
}

const wrap32 = (x) => ((x % TWO32) + TWO32) % TWO32;
const tickDiff = (a, b) => {
  const d = wrap32(a - b);
  return d >= 2 ** 31 ? d - TWO32 : d;
};

function readId(r, prev) {
  const v = r.expGolomb(0);
  return prev === null ? v : prev + 1 + v;
}

function readPos(r) {
  return [r.signed(13), r.signed(13)];
}

function sortById(list) {
  list.sort((a, b) => a.id - b.id);
  for (let i = 1; i < list.length; i++) if (list[i - 1].id >= list[i].id) throw new DecodeError("duplicate id");
}

/**
 * Decodes snapshot bytes for `tick` against `base` (the world at the baseline tick, or null
 * for a full snapshot). Returns `{ world, checksum }` (checksum null when not sent).
 */
export function decodeSnapshot(base, tick, data, tickHz) {
  const r = new Bits(data);
  let age = 0;
  if (base) {
    age = tickDiff(tick, base.tick);
    if (age <= 0) throw new DecodeError("baseline is not before the tick");
  }
  const checksum = r.bit() ? r.bits(32) : null;
  let phase, phaseEnd;
  if (base && !r.bit()) {
    [phase, phaseEnd] = [base.phase, base.phase_end];
  } else {
    phase = PHASES[r.bits(2)];
    phaseEnd = r.bits(32);
  }

  const players = [];
  if (base) {
    let prevMask = 0;
    for (const b of base.players) {
      let mask;
      if (!r.bit()) mask = 0;
      else if (r.bit()) continue; // removed
      else {
        if (!r.bit()) prevMask = r.bits(7);
        mask = prevMask;
      }
      const p = { ...b, pos: [...b.pos], vel: [...b.vel] };
      if (mask & 1) p.vel = [b.vel[0] + r.signed(3), b.vel[1] + r.signed(3)];
      p.pos = [b.pos[0] + age * displacement(p.vel[0], tickHz), b.pos[1] + age * displacement(p.vel[1], tickHz)];
      if (mask & 2) p.pos = [p.pos[0] + r.signed(2), p.pos[1] + r.signed(2)];
      if (mask & 4) p.aim = (((b.aim + r.signed(3)) % AIM_STEPS) + AIM_STEPS) % AIM_STEPS;
      p.last_seq = wrap32(b.last_seq + age);
      if (mask & 8) p.last_seq = wrap32(p.last_seq + r.signed(0));
      if (mask & 16) p.score = b.score + r.signed(0);
      p.cooldown = Math.max(b.cooldown - age, 0) + (mask & 32 ? r.signed(1) : 0);
      if (mask & 64) p.deaths = b.deaths + r.signed(0);
      players.push(p);
    }
  }
  const kept = players.length;
  const created = r.expGolomb(0);
  if (created > 256) throw new DecodeError("too many players");
  let prev = null;
  for (let i = 0; i < created; i++) {
    const id = readId(r, prev);
    prev = id;
    const len = r.bits(5);
    if (len > 16) throw new DecodeError("name too long");
    const nameBytes = new Uint8Array(len);
    for (let j = 0; j < len; j++) nameBytes[j] = r.bits(8);
    const name = new TextDecoder("utf-8", { fatal: true }).decode(nameBytes);
    const pos = readPos(r);
    const vel = [r.signed(6), r.signed(6)];
    const aim = r.bits(10);
    const score = r.expGolomb(4);
    const last_seq = r.bits(32);
    const cooldown = r.expGolomb(2);
    const deaths = r.expGolomb(1);
    players.push({ id, name, pos, vel, aim, score, last_seq, cooldown, deaths });
  }
  if (created > 0 && kept > 0) sortById(players);

  let orbs;
  const fullOrbs = r.bit();
  const orbCount = r.expGolomb(0);
  if (orbCount > 1024) throw new DecodeError("too many orbs");
  if (fullOrbs) {
    orbs = [];
    for (let i = 0; i < orbCount; i++) orbs.push(readPos(r));
  } else {
    if (!base) throw new DecodeError("orb delta without a baseline");
    orbs = base.orbs.map((o) => [...o]);
    let prevIdx = null;
    for (let i = 0; i < orbCount; i++) {
      const idx = readId(r, prevIdx);
      prevIdx = idx;
      if (idx >= orbs.length) throw new DecodeError("orb index");
      orbs[idx] = readPos(r);
    }
  }

  const projectiles = [];
  if (base) for (const p of base.projectiles) if (!r.bit()) projectiles.push(p);
  const keptP = projectiles.length;
  const newP = r.expGolomb(0);
  if (newP > 4096) throw new DecodeError("too many projectiles");
  prev = null;
  for (let i = 0; i < newP; i++) {
    const id = readId(r, prev);
    prev = id;
    const owner = r.expGolomb(0);
    const origin = readPos(r);
    const aim = r.bits(10);
    const pAge = r.signed(2);
    projectiles.push({ id, owner, origin, aim, spawn_tick: wrap32(tick - pAge) });
  }
  if (newP > 0 && keptP > 0) sortById(projectiles);
  if (!r.atEnd()) throw new DecodeError("trailing bytes in snapshot");
  return { world: { tick, phase, phase_end: phaseEnd, players, orbs, projectiles }, checksum };
}

// ---- checksum (FNV-1a over the world, as WorldState::checksum) ----------------------------

export function checksum(w) {
  let h = 0x811c9dc5;
  const byte = (x) => {
    h ^= x & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  const u32 = (v) => {
    v = wrap32(v);
    for (let i = 0; i < 4; i++) byte(Math.floor(v / 2 ** (8 * i)));
  };
  const bytes = (arr) => {
    u32(arr.length);
    for (const x of arr) byte(x);
  };
  u32(w.tick);
  u32(PHASES.indexOf(w.phase));
  u32(w.phase_end);
  u32(w.players.length);
  for (const p of w.players) {
    u32(p.id);
    bytes(new TextEncoder().encode(p.name));
    for (const v of [p.pos[0], p.pos[1], p.vel[0], p.vel[1], p.aim, p.score, p.last_seq, p.cooldown, p.deaths]) u32(v);
  }
  u32(w.orbs.length);
  for (const o of w.orbs) { u32(o[0]); u32(o[1]); }
  u32(w.projectiles.length);
  for (const p of w.projectiles) for (const v of [p.id, p.owner, p.origin[0], p.origin[1], p.aim, p.spawn_tick]) u32(v);
  return h >>> 0;
}

// ---- a receiver: baselines, checksums, events ---------------------------------------------

/** Follows one connection's snapshot stream, as shared/src/receiver.rs does. */
export class SnapshotReceiver {
  constructor(tickHz) {
    this.tickHz = tickHz;
    this.history = [];
    this.desyncs = 0;
  }
  latest() {
    return this.history.length ? this.history[this.history.length - 1] : null;
  }
  /** Applies a SnapshotMsg; returns the new world, or null when a full snapshot is needed. */
  receive(msg) {
    let base = null;
    if (msg.baseline_age !== 0) {
      const bt = wrap32(msg.tick - msg.baseline_age);
      base = this.history.find((w) => w.tick === bt) || null;
      if (!base) return null;
    }
    const { world, checksum: sum } = decodeSnapshot(base, msg.tick, msg.data, this.tickHz);
    if (sum !== null && sum !== checksum(world)) {
      this.desyncs++;
      this.history = [];
      return null;
    }
    this.history.push(world);
    if (this.history.length > 8) this.history.shift();
    return world;
  }
}

export const units = (q) => q / POS_SCALE;
export const aimRadians = (a) => (a / AIM_STEPS) * 2 * Math.PI;
