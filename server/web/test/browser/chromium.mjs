// What the browser scripts share: a failure that says why and exits non-zero, and headless
// Chromium (Debian's, or $CHROMIUM) in a fresh profile.
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// A `fail(why)` for the script named `who`.
export const failer = (who) => (why) => {
  console.error(`${who}: ${why}`);
  process.exit(1);
};

// Chromium, headless, with `extraArgs`; returns its context and first page.
export async function launch(fail, extraArgs = []) {
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "skirmish-chromium-")), {
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"]
      .concat(extraArgs),
  }).catch((e) => fail(`cannot start Chromium at ${executablePath} (apt-get install chromium): ${e.message}`));
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}
