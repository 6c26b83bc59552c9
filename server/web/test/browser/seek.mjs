// The replay viewer's seek time, measured in real headless Chromium: opens the replay of
// match MATCH and seeks SEEKS times (default 20) to ticks spread over the whole match, each
// outside what the viewer holds, timing from the timeline's change to the world at the new
// tick being ready to draw (the request, the server's re-simulation from the nearest
// keyframe, decoding and checking every snapshot). Prints the times and their median as
// JSON. Usage: node seek.mjs <base url>.
import { failer, launch } from "./chromium.mjs";

const [base] = process.argv.slice(2);
const matchId = Number(process.env.MATCH || 1);
const seeks = Number(process.env.SEEKS || 20);
const fail = failer("seek benchmark");
const { context, page } = await launch(fail);
try {
  await page.goto(base, { waitUntil: "load" });
  await page.evaluate((id) => window.skirmish.watchReplay(id), matchId);
  await page.waitForFunction(() => window.skirmish.replay()?.world(), null, { timeout: 15000 })
    .catch(() => fail("the replay does not load"));
  const { first, last } = await page.evaluate(() => {
    const v = window.skirmish.replay();
    v.playing = false;
    return { first: v.first, last: v.last };
  });
  const times = [];
  for (let i = 0; i < seeks; i++) {
    // Spread over the match, never in the buffer of the seek before.
    const tick = first + Math.round(((i * 7919) % seeks + 0.5) / seeks * (last - first));
    const ms = await page.evaluate(async (t) => {
      const v = window.skirmish.replay();
      await v.seek(t);
      if (v.world()?.tick !== t) throw new Error(`seek to ${t} shows ${v.world()?.tick}`);
      return v.lastSeekMs;
    }, tick);
    times.push(Math.round(ms * 10) / 10);
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(JSON.stringify({ ticks: last - first, seeks: times, median_ms: sorted[Math.floor(sorted.length / 2)], max_ms: sorted[sorted.length - 1] }));
} finally {
  await context.close();
}
