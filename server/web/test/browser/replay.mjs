// Drives the page's replay viewer in real headless Chromium: opens the replay of match MATCH,
// pauses, plays at 1x and at 4x (the position moves about four times as fast; the recorded
// events show in the feed), seeks by
// setting the timeline to EXPECT_TICK, and checks the world shown there against `replay show
// --json` of the same file (positions, scores) and the canvas (each player's colour where
// the player is). Prints the seek times. Usage: node replay.mjs <base url> <screenshot.png>
// <expected.json>. Exits non-zero with a reason.
import { readFileSync } from "node:fs";
import { failer, launch } from "./chromium.mjs";

const [base, shot, expectedPath] = process.argv.slice(2);
const matchId = Number(process.env.MATCH);
const tick = Number(process.env.EXPECT_TICK);
const expected = JSON.parse(readFileSync(expectedPath, "utf8"));
const fail = failer("replay test");
const { context, page } = await launch(fail);
try {
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.goto(base, { waitUntil: "load" });

  const row = page.locator(`tr.replay-row[data-id="${matchId}"]`);
  await row.waitFor({ timeout: 15000 }).catch(async () =>
    fail(`match ${matchId} is not in the replay list: ${await page.locator("#replays").innerText()}`));
  await row.locator("button").click();
  await page.waitForFunction(() => window.skirmish.replay()?.world(), null, { timeout: 15000 })
    .catch(async () => fail(`the replay does not load: ${await page.locator("#phase").innerText()}`));
  const viewer = () => page.evaluate(() => {
    const v = window.skirmish.replay();
    return { pos: v.pos, playing: v.playing, speed: v.speed, first: v.first, last: v.last, seeks: v.seekTimes, desyncs: v.desyncs, error: v.error };
  });
  if (!(await viewer()).playing) fail("the replay does not start playing");

  // Pause: the position stays.
  await page.locator("#rp-play").click();
  const paused = await viewer();
  await page.waitForTimeout(400);
  if ((await viewer()).pos !== paused.pos || paused.playing) fail("pause does not stop the replay");

  // Play at 1x, then 4x: ticks per wall second, measured in the page.
  const rate = async (speed) => {
    await page.locator("#rp-speed").selectOption(String(speed));
    await page.locator("#rp-seek").fill(String(paused.first));
    await page.waitForFunction((t) => window.skirmish.replay().world()?.tick === t, paused.first, { timeout: 10000 });
    await page.locator("#rp-play").click();
    const r = await page.evaluate(() => new Promise((done) => {
      const v = window.skirmish.replay();
      const [p0, t0] = [v.pos, performance.now()];
      setTimeout(() => done((v.pos - p0) / ((performance.now() - t0) / 1000)), 1000);
    }));
    await page.locator("#rp-play").click();
    return r;
  };
  const one = await rate(1);
  const four = await rate(4);
  if (!(four > 2.5 * one && one > 5)) fail(`speed: ${one.toFixed(1)} ticks/s at 1x, ${four.toFixed(1)} at 4x`);
  // The recorded game events play along in the feed (joins, orbs, phases).
  const feed = await page.locator("#feed li").allTextContents();
  if (!feed.some((l) => /joined|collected an orb|phase:/.test(l))) fail(`the feed shows no recorded events: ${JSON.stringify(feed)}`);

  // Seek by setting the timeline, paused: the world shown is the recorded one.
  if ((await viewer()).playing) await page.locator("#rp-play").click();
  await page.locator("#rp-seek").fill(String(tick));
  await page.waitForFunction((t) => window.skirmish.replay().world()?.tick === t && Math.floor(window.skirmish.replay().pos) === t, tick, { timeout: 10000 })
    .catch(async () => fail(`seeking to ${tick} ended at ${(await viewer()).pos}`));
  await page.waitForTimeout(200); // a few frames drawn at the new position
  const shown = await page.evaluate(() => window.skirmish.replay().world().players.map((p) => ({ id: p.id, x: p.pos[0] / 16, y: p.pos[1] / 16, score: p.score })));
  if (shown.length !== expected.players.length) fail(`${shown.length} players shown, replay show has ${expected.players.length}`);
  for (const e of expected.players) {
    const s = shown.find((p) => p.id === e.id);
    if (!s) fail(`player ${e.id} missing at tick ${tick}`);
    if (Math.abs(s.x - e.x) > 0.01 || Math.abs(s.y - e.y) > 0.01 || s.score !== e.score) {
      fail(`player ${e.id} at tick ${tick}: page (${s.x}, ${s.y}) score ${s.score}, replay show (${e.x}, ${e.y}) score ${e.score}`);
    }
  }
  // The canvas: each player's colour around its position (the ring between the aim line and
  // the edge: a few points, most players not covered by another).
  const painted = await page.evaluate((players) => {
    const cv = document.getElementById("arena");
    const g = cv.getContext("2d");
    const k = cv.width / 1000;
    const probe = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
    let hits = 0;
    for (const p of players) {
      probe.fillStyle = `hsl(${(p.id * 137) % 360} 70% 60%)`;
      probe.fillRect(0, 0, 1, 1);
      const want = probe.getImageData(0, 0, 1, 1).data;
      const close = ([dx, dy]) => {
        const d = g.getImageData(Math.round(p.x * k + dx), Math.round(p.y * k + dy), 1, 1).data;
        return Math.abs(d[0] - want[0]) + Math.abs(d[1] - want[1]) + Math.abs(d[2] - want[2]) < 30;
      };
      if ([[5, 0], [-5, 0], [0, 5], [0, -5]].filter(close).length >= 2) hits++;
    }
    return hits;
  }, expected.players);
  if (painted < Math.ceil(expected.players.length * 0.75)) fail(`only ${painted} of ${expected.players.length} players drawn where replay show puts them`);
  await page.screenshot({ path: shot });
  const v = await viewer();
  if (v.desyncs || v.error) fail(`viewer: ${v.desyncs} checksum failures, error ${v.error}`);
  if (errors.length) fail(`page errors: ${errors.join("; ")}`);
  const seeks = v.seeks.map((t) => t.toFixed(0)).join(", ");
  console.log(`replay test: ok (${shown.length} players at tick ${tick}, ${painted} drawn; ${one.toFixed(1)} ticks/s at 1x, ${four.toFixed(1)} at 4x; seeks ${seeks} ms)`);
} finally {
  await context.close();
}
