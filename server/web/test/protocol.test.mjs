// The JavaScript decoder against the golden vectors written by the Rust codec
// (server/tests/vectors.rs). Run: node --test server/web/test/
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { decodeServerMessage, decodeSnapshot, checksum } from "../protocol.js";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", "vectors");
const names = readdirSync(dir).filter((f) => f.endsWith(".bin")).map((f) => f.slice(0, -4));

test("there are vectors", () => assert.ok(names.length >= 4, `vectors in ${dir}: ${names}`));

for (const name of names) {
  test(`vector ${name}`, () => {
    const bytes = new Uint8Array(readFileSync(join(dir, `${name}.bin`)));
    const expected = JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8"));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let p = 0;
    let last = null;
    let tickHz = 30;
    for (const [i, want] of expected.entries()) {
      const len = view.getUint32(p, true);
      const frame = bytes.subarray(p + 4, p + 4 + len);
      p += 4 + len;
      const msg = decodeServerMessage(frame);
      assert.equal(msg.type, want.type, `${name} frame ${i}`);
      if (msg.type === "Welcome" || msg.type === "Snapshot") {
        if (msg.type === "Welcome") tickHz = msg.tick_hz;
        const snap = msg.snapshot;
        assert.equal(snap.baseline_age, want.baseline_age, `${name} frame ${i} baseline`);
        const base = snap.baseline_age === 0 ? null : last;
        const { world, checksum: sum } = decodeSnapshot(base, snap.tick, snap.data, tickHz);
        assert.deepEqual(world, want.world, `${name} frame ${i} world`);
        assert.equal(sum, want.checksum, `${name} frame ${i} checksum`);
        if (sum !== null) assert.equal(checksum(world), sum, `${name} frame ${i}: our checksum of the world`);
        assert.deepEqual(snap.events, want.events, `${name} frame ${i} events`);
        last = world;
      } else {
        const { type, ...rest } = msg;
        const { type: _t, ...wantRest } = want;
        assert.deepEqual(rest, wantRest, `${name} frame ${i}`);
      }
    }
    assert.equal(p, bytes.length, "every frame consumed");
  });
}
