// The replay viewer: plays a recorded match at 0.25-8x, pauses, seeks. The server
// re-simulates the match from the keyframe nearest the asked tick and sends the worlds as the
// snapshot messages a spectator gets (`/api/matches/{id}/replay/frames`), so they decode and
// verify (a checksum on every one) with protocol.js, like a live match.
import { decodeServerMessage, SnapshotReceiver } from "/protocol.js";

const CHUNK = 150; // ticks per request: five seconds at 30 Hz
const KEEP_BEHIND = 60; // ticks kept behind the play position

export class ReplayViewer {
  constructor(matchId) {
    this.matchId = matchId;
    this.worlds = new Map(); // tick -> world
    this.events = new Map(); // tick -> the game events logged with it
    this.pos = 0; // play position, fractional ticks
    this.playing = false;
    this.speed = 1;
    this.hz = 30;
    this.first = 0;
    this.last = 0;
    this.loading = null; // the tick a request is loading from
    this.generation = 0; // bumped by every seek: answers to older ones are dropped
    this.lastSeekMs = null;
    this.seekTimes = [];
    this.desyncs = 0;
    this.error = null;
  }

  async open() {
    const res = await fetch(`/api/matches/${this.matchId}/replay/info`);
    if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
    const info = await res.json();
    if (info.first_tick === null) throw new Error("nothing recorded yet");
    this.hz = info.tick_hz;
    this.first = info.first_tick;
    this.last = info.last_tick;
    await this.seek(this.first);
  }

  // Fetches CHUNK worlds from `from` into the buffer (for generation `gen`).
  async load(from, gen) {
    this.loading = from;
    try {
      const res = await fetch(`/api/matches/${this.matchId}/replay/frames?from=${from}&count=${CHUNK}`);
      if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (gen !== this.generation) return;
      const receiver = new SnapshotReceiver(this.hz);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let at = 0; at + 4 <= bytes.length; ) {
        const len = view.getUint32(at, true);
        const msg = decodeServerMessage(bytes.subarray(at + 4, at + 4 + len));
        at += 4 + len;
        const world = receiver.receive(msg.snapshot);
        if (!world) {
          this.desyncs++;
          break;
        }
        this.worlds.set(world.tick, world);
        if (msg.snapshot.events.length) this.events.set(world.tick, msg.snapshot.events);
      }
    } catch (e) {
      this.error = String(e);
    } finally {
      if (gen === this.generation) this.loading = null;
    }
  }

  // Moves the play position to `tick` and loads from there; resolves once it can be drawn.
  async seek(tick) {
    const t0 = performance.now();
    const gen = ++this.generation;
    const t = Math.max(this.first, Math.min(this.last, Math.round(tick)));
    this.pos = t;
    if (!this.worlds.has(t) || !this.worlds.has(Math.min(this.last, t + 1))) {
      this.worlds.clear();
      this.events.clear();
      await this.load(t, gen);
    }
    if (gen !== this.generation) return;
    this.lastSeekMs = performance.now() - t0;
    this.seekTimes.push(this.lastSeekMs);
  }

  // Advances the play position by `dtMs` of wall time; keeps the buffer ahead of it.
  advance(dtMs) {
    if (this.playing && this.worlds.has(Math.floor(this.pos))) {
      this.pos = Math.min(this.last, this.pos + (dtMs / 1000) * this.hz * this.speed);
      if (this.pos >= this.last) this.playing = false;
    }
    for (const t of this.worlds.keys()) if (t < this.pos - KEEP_BEHIND) this.worlds.delete(t);
    for (const t of this.events.keys()) if (t < this.pos - KEEP_BEHIND) this.events.delete(t);
    let end = Math.floor(this.pos);
    while (this.worlds.has(end + 1)) end++;
    if (this.loading === null && end < this.last && end - this.pos < CHUNK / 2) {
      this.load(this.worlds.has(end) ? end : Math.floor(this.pos), this.generation);
    }
  }

  // The world at the play position's tick, or null while it loads.
  world() {
    return this.worlds.get(Math.floor(this.pos)) ?? null;
  }

  // What to draw: the world at the position, players interpolated toward the next tick.
  sample() {
    const t = Math.floor(this.pos);
    const a = this.worlds.get(t);
    if (!a) return null;
    const b = this.worlds.get(t + 1) ?? a;
    const alpha = this.pos - t;
    const next = new Map(b.players.map((p) => [p.id, p]));
    return {
      world: a,
      players: a.players.map((p) => {
        const q = next.get(p.id) ?? p;
        return { ...p, x: p.pos[0] + (q.pos[0] - p.pos[0]) * alpha, y: p.pos[1] + (q.pos[1] - p.pos[1]) * alpha };
      }),
    };
  }
}
