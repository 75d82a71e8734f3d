// The browser entry in real Chromium (Debian chromium, driven by playwright-core): loaded
// through the package's "browser" export, it fetches the JWKS, verifies a token with
// crypto.subtle, shows the error code for a bad one, and agrees with a sample of the vectors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, normalize, extname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import * as f from "./helpers/fixtures.mjs";
import { serve } from "./helpers/servers.mjs";
import { loadGroups, loadHttpCases, sample } from "./helpers/vectors-node.mjs";

const PKG = fileURLToPath(new URL("..", import.meta.url));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TYPES = { ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html", ".json": "application/json" };
const manifest = JSON.parse(readFileSync(join(PKG, "package.json"), "utf8"));
const entry = manifest.exports["."].browser.default; // "./src/browser.mjs"

let site, context, profile;
const fixture = {
  poolId: f.POOL_ID,
  clientId: f.CLIENT_ID,
  token: f.signToken(f.cognitoClaims()),
  badToken: f.signToken(f.cognitoClaims({ exp: Math.floor(Date.now() / 1000) - 5 })),
  cases: sample(loadGroups(), 8),
  // Every path-confusion case and every 4th of the rest (deterministic).
  http: loadHttpCases().filter((c, i) => c.file === "paths.json" || i % 4 === 0),
};

before(async () => {
  site = await serve((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const send = (status, type, body) => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (path === "/" || path === "/index.html") {
      return send(200, TYPES[".html"], readFileSync(join(PKG, "test/browser/page.html"), "utf8").replace("__ENTRY__", `/pkg/${entry.replace(/^\.\//, "")}`));
    }
    if (path === "/fixture.json") return send(200, TYPES[".json"], JSON.stringify(fixture));
    if (path === "/jwks.json") return send(200, TYPES[".json"], JSON.stringify(f.jwks()));
    // /pkg/* serves the package, /test/* the browser test files; nothing else.
    const [, root, rest] = /^\/(pkg|test)\/(.*)$/.exec(path) || [];
    const file = root && normalize(join(PKG, root === "test" ? "test" : "", rest));
    if (!file || !file.startsWith(PKG) || !existsSync(file) || !TYPES[extname(file)]) return send(404, "text/plain", "not found");
    send(200, TYPES[extname(file)], readFileSync(file));
  });
  profile = mkdtempSync(join(tmpdir(), "tokengate-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await context?.close();
  await site?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test("the package's browser export is the browser entry", () => {
  assert.equal(entry, "./src/browser.mjs");
});

test("Chromium verifies a token, shows the code of a bad one, and agrees with sampled token and HTTP vectors", async () => {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${site.url}/`, { timeout: 30_000 });
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 60_000 });
  const result = await page.evaluate(() => window.__result);
  assert.equal(result.error, undefined, result.error);
  assert.deepEqual(errors, []);
  assert.equal(await page.textContent("#ok"), f.CLIENT_ID);
  assert.equal(await page.textContent("#bad"), "token_expired");
  assert.deepEqual(result.failures, []);
  assert.equal(result.checked, fixture.cases.length * 2 + fixture.http.length * 2);
  assert.ok(fixture.http.length >= 300, "every path case and a sample of the rest");
  assert.ok(site.requests.some((r) => r.url.endsWith(".wasm")), "the .wasm was fetched");
  assert.equal(site.requests.filter((r) => r.url === "/jwks.json").length, 1);
  await page.close();
});
