// Drives the server's page in real headless Chromium: the match list shows the demo match,
// opening it shows the bots on the scoreboard and moving positions, and the screenshot is not
// blank. Usage: node browser.mjs <base url> <screenshot.png> [spki-sha256-base64]. With the
// third argument (an https base URL), Chromium trusts that one certificate key, as it would a
// certificate from a public CA. EXPECT_PLAYERS and EXPECT_CAPACITY (default 8 and 16) say
// which match to open: the first with that many demo bots. Exits non-zero with a reason.
import { failer, launch } from "./chromium.mjs";

const [base, shot, spki] = process.argv.slice(2);
const players = Number(process.env.EXPECT_PLAYERS || 8);
const capacity = Number(process.env.EXPECT_CAPACITY || 16);
// With FOLLOW=1 (a server with a view radius): following a player shows fewer players.
const follow = process.env.FOLLOW === "1";
const fail = failer("browser test");
const { context, page } = await launch(fail, spki ? [`--ignore-certificate-errors-spki-list=${spki}`] : []);
try {
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.goto(base, { waitUntil: "load" });

  // The match list shows the demo match with its bots.
  const row = page.locator("tr.match-row", { hasText: `${players}/${capacity}` }).first();
  await row.waitFor({ timeout: 15000 }).catch(async () =>
    fail(`no match with ${players} players in the list: ${await page.locator("#matches").innerText()}`));
  await row.locator("button").click();

  // The scoreboard lists the bots.
  await page.waitForFunction((n) => document.querySelectorAll("#scoreboard li").length >= n, players, { timeout: 15000 })
    .catch(() => fail(`the scoreboard does not list ${players} bots`));
  const names = await page.locator("#scoreboard li").allTextContents();
  if (!names.every((n) => n.startsWith("demo"))) fail(`unexpected scoreboard: ${names}`);

  // Positions change between two moments, as the page sees them.
  const positions = () => page.evaluate(() => window.skirmish.latestWorld().players.map((p) => [p.id, p.pos[0], p.pos[1]]));
  const a = await positions();
  await page.waitForTimeout(700);
  const b = await positions();
  const moved = b.filter(([id, x, y]) => a.some(([i, x0, y0]) => i === id && (x0 !== x || y0 !== y))).length;
  if (moved < 4) fail(`only ${moved} players moved between two moments`);

  // The arena is drawn: several colours on the canvas, not a blank or single-colour image.
  const colours = await page.evaluate(() => {
    const cv = document.getElementById("arena");
    const d = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 97) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
    return seen.size;
  });
  if (colours < 4) fail(`the arena canvas has only ${colours} colours`);

  if (follow) {
    // Follow the first player on the scoreboard: the page then holds that player's view, a
    // part of the match, and "see all" brings the whole match back.
    await page.locator("#scoreboard li").first().click();
    await page.waitForFunction((n) => {
      const w = window.skirmish.latestWorld();
      return w && w.players.length > 0 && w.players.length < n && document.getElementById("see-all");
    }, players, { timeout: 15000 }).catch(async () =>
      fail(`following a player did not narrow the view: ${await page.evaluate(() => window.skirmish.latestWorld()?.players.length)} players`));
    await page.locator("#see-all").click();
    await page.waitForFunction((n) => window.skirmish.latestWorld()?.players.length >= n, players, { timeout: 15000 })
      .catch(() => fail("see all did not bring the whole match back"));
  }

  // The server's figures fill in (they need two polls of /api/stats).
  await page.waitForFunction(() => document.getElementById("f-bytes").textContent.includes("KiB/s"), null, { timeout: 10000 })
    .catch(() => fail("the server figures never appeared"));
  await page.waitForTimeout(2500); // a few points on the chart
  await page.screenshot({ path: shot });
  if (errors.length) fail(`page errors: ${errors.join("; ")}`);
  console.log(`browser test: ok (${names.length} on the scoreboard, ${moved} moved, ${colours} colours)`);
} finally {
  await context.close();
}
