/**
 * The demo in a real browser: Debian's chromium (`/usr/bin/chromium`, installed by `.ci/run`)
 * driven by playwright-core. Logs in, counts over HTTP and over socket.io in two tabs, checks that
 * the session cookie is HttpOnly (invisible to page JavaScript), logs out in the second tab and
 * waits for the first tab's socket to be disconnected, then saves a screenshot of the first tab to
 * tests/artifacts/demo-<runtime>.png.
 *
 * playwright-core works on Node, Deno and Bun alike here, so this runs on all three. Without
 * chromium the test fails when CI=true and is skipped (naming chromium) otherwise.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { startDemo } from "../examples/demo/server.ts";
import { RUNTIME } from "./helpers/demo_process.ts";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const artifacts = fileURLToPath(new URL("./artifacts/", import.meta.url));
const screenshot = `${artifacts}demo-${RUNTIME.toLowerCase()}.png`;

const missing = existsSync(CHROMIUM) ? undefined : `chromium not found at ${CHROMIUM}`;
const skip = missing && process.env.CI !== "true"
  ? `${missing} (apt-get install chromium; with CI=true this test fails instead)`
  : undefined;

/** The text of `selector` once it equals `expected` (the page updates asynchronously). */
async function textBecomes(page: Page, selector: string, expected: string): Promise<void> {
  await page.waitForFunction(
    ([sel, want]) => document.querySelector(sel!)?.textContent === want,
    [selector, expected],
    { timeout: 10_000 },
  ).catch(async () => {
    const actual = await page.textContent(selector).catch(() => null);
    assert.fail(`${selector}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  });
}

// A top-level test, not one inside describe(): Deno then counts a skip as an ignored test.
test(
  "demo in a real browser (chromium): log in, one counter over HTTP and socket.io in two tabs, HttpOnly cookie, logout in one tab disconnects the other; screenshot",
  { skip, timeout: 90_000 },
  async () => {
    if (missing) assert.fail(`${missing}: CI=true requires it (.ci/run installs chromium)`);
    const demo = await startDemo({ port: 0 });
    let browser: Browser | undefined;
    let tab1: Page | undefined;
    try {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
      const context = await browser.newContext({ viewport: { width: 900, height: 760 } });
      tab1 = await context.newPage();
      const pageErrors: string[] = [];
      tab1.on("pageerror", (err) => pageErrors.push(err.message));

      await tab1.goto(demo.url);
      await tab1.fill('input[name="name"]', "Ada");
      await Promise.all([tab1.waitForURL(`${demo.url}/`), tab1.click("#login")]);
      await textBecomes(tab1, "#name", "Ada");
      await textBecomes(tab1, "#socket", "connected");

      // The session cookie exists, is HttpOnly, and page JavaScript cannot read it.
      const cookies = await context.cookies(demo.url);
      const sid = cookies.find((c) => c.name === "sid");
      assert.ok(sid, `no sid cookie in ${JSON.stringify(cookies.map((c) => c.name))}`);
      assert.equal(sid.httpOnly, true);
      assert.equal(sid.sameSite, "Lax");
      const visible = await tab1.evaluate(() => document.cookie);
      assert.ok(!/(^|;\s*)sid=/.test(visible), `document.cookie shows the session: ${visible}`);
      assert.ok(!/(^|;\s*)sid\.cid=/.test(visible), `document.cookie shows the client id`);

      // Count over HTTP and over the socket in tab 1.
      await tab1.click("#inc-http");
      await textBecomes(tab1, "#count", "1");
      await tab1.click("#inc-socket");
      await textBecomes(tab1, "#count", "2");
      await tab1.click("#inc-http");
      await textBecomes(tab1, "#count", "3");

      // A second tab shares the session: its socket increments reach tab 1 live.
      const tab2 = await context.newPage();
      await tab2.goto(demo.url);
      await textBecomes(tab2, "#name", "Ada");
      await textBecomes(tab2, "#count", "3");
      await textBecomes(tab2, "#socket", "connected");
      await tab2.click("#inc-socket");
      await textBecomes(tab2, "#count", "4");
      await textBecomes(tab1, "#count", "4");
      await tab2.click("#inc-http");
      await textBecomes(tab1, "#count", "5");

      // HTTP, tab 1's socket and the page agree.
      const api = await tab1.evaluate(async () => (await fetch("/api/session")).json());
      assert.deepEqual(
        { name: api.name, count: api.count },
        { name: "Ada", count: 5 },
      );
      // `socket` is the page script's top-level const: reachable from an expression, not a property.
      const viaSocket = await tab1.evaluate('socket.timeout(3000).emitWithAck("session")');
      assert.deepEqual(viaSocket, { name: "Ada", count: 5 });
      const events = await tab1.locator("#events li").allTextContents();
      assert.ok(
        events.some((e) => / sessionSet \S+ count=5$/.test(e)),
        `bridge events: ${JSON.stringify(events)}`,
      );

      // Logging out in tab 2 disconnects tab 1's socket (after the bridge's sessionDestroy).
      await Promise.all([tab2.waitForURL(`${demo.url}/`), tab2.click("#logout")]);
      assert.ok(await tab2.isVisible('input[name="name"]'), "tab 2 shows the login form");
      await tab1.waitForSelector('#socket[data-state="disconnected"]', { timeout: 10_000 });
      assert.match(await tab1.textContent("#socket") ?? "", /disconnected by the server/);
      assert.ok(await tab1.isDisabled("#inc-socket"));
      const last = await tab1.locator("#events li").first().textContent();
      assert.match(last ?? "", / sessionDestroy \S+ \(destroy\)$/);

      mkdirSync(artifacts, { recursive: true });
      await tab1.screenshot({ path: screenshot, fullPage: true });
      assert.ok(existsSync(screenshot));
      assert.deepEqual(pageErrors, []);
    } catch (err) {
      // What the first tab showed when the test failed, for the CI log's reader.
      mkdirSync(artifacts, { recursive: true });
      await tab1?.screenshot({ path: screenshot.replace(/\.png$/, "-failed.png") }).catch(() => {});
      throw err;
    } finally {
      await browser?.close();
      await demo.close();
    }
  },
);
