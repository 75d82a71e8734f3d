// The demo's browser page (www/) in real Chromium (Debian chromium driven by playwright-core):
// a token fetched from the local issuer shows "valid", a tampered one signature_invalid, an
// expired one token_expired, with the failing check marked. Starts its own issuer
// (target/debug/tokengate-issuer, demo/issuer.toml) and page server (demo/web.mjs) on
// 127.0.0.1 and stops them at the end. Run: node --test tests/e2e/demo/page.test.mjs
// SCREENSHOT=path.png saves a screenshot of the page showing a valid token.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
// playwright-core is a devDependency of the npm package (js/package-lock.json).
const { chromium } = createRequire(join(ROOT, "js/package.json"))("playwright-core");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ISSUER_BIN = process.env.TOKENGATE_ISSUER || join(ROOT, "target/debug/tokengate-issuer");
const ADMIN = "tokengate-demo-admin-token";
const POOL = "eu-west-1_DemoPool01";
const WAIT_MS = 20_000;

const children = [];
let issuer, web, context, profile, page;

// Start a process in its own group; resolve with the first stdout line matching `re`.
function start(cmd, args, re) {
  const child = spawn(cmd, args, { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} not ready in 20 s: ${stderr}`)), 20_000);
    child.on("exit", (code) => reject(new Error(`${cmd} exited (${code}): ${stderr}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = re.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
}

async function mint(body) {
  const r = await fetch(`${issuer}/admin/${POOL}/mint`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(r.status, 200);
  return (await r.json()).access_token;
}

async function verdict(code) {
  const sel = code === "valid" ? '#verdict[data-state="valid"]' : `#verdict[data-state="invalid"][data-code="${code}"]`;
  try {
    await page.waitForSelector(sel, { timeout: WAIT_MS });
  } catch {
    const got = await page.evaluate(() => {
      const v = document.getElementById("verdict");
      return `${v.dataset.state} ${v.dataset.code}: ${document.getElementById("verdict-message").textContent}`;
    });
    assert.fail(`expected ${code}, page shows ${got}`);
  }
  return page.evaluate(() => ({
    label: document.getElementById("verdict-label").textContent,
    http: document.getElementById("verdict-http").textContent,
    failed: [...document.querySelectorAll('#checks li[data-result="fail"]')].map((li) => li.dataset.check),
    passed: [...document.querySelectorAll('#checks li[data-result="pass"]')].map((li) => li.dataset.check),
  }));
}

async function paste(token) {
  await page.fill("#token", token);
  await page.click("#verify");
}

before(async () => {
  assert.ok(existsSync(ISSUER_BIN), `${ISSUER_BIN} missing: cargo build -p tokengate-issuer`);
  assert.ok(existsSync(join(ROOT, "js/dist/wasm/tokengate_wasm_bg.wasm")), "js/dist missing: scripts/build-js.sh");
  issuer = await start(ISSUER_BIN, ["serve", "--config", "demo/issuer.toml", "--listen", "127.0.0.1:0"], /^listening on (http:\/\/\S+)$/);
  const webLine = await start(process.execPath, ["demo/web.mjs", "--issuer", issuer], /^(\{"web".*\})$/);
  web = JSON.parse(webLine).web;
  profile = mkdtempSync(join(tmpdir(), "tokengate-demo-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    viewport: { width: 1360, height: 900 },
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
  page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e}`));
  await page.goto(`${web}/`, { timeout: 30_000 });
  await page.waitForSelector('#engine[data-state="ready"]', { timeout: WAIT_MS });
});

after(async () => {
  await context?.close().catch(() => {});
  for (const c of children) {
    try {
      process.kill(-c.pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test("a token fetched from the local issuer shows valid, with its claims decoded", async () => {
  await page.selectOption("#client", "orders-reader");
  await page.click("#fetch-token");
  const v = await verdict("valid");
  assert.equal(v.label, "valid");
  assert.equal(v.http, "HTTP 200");
  assert.deepEqual(v.failed, []);
  assert.equal(v.passed.length, 11);
  const claims = await page.textContent("#claims-json");
  assert.match(claims, /"client_id": "orders-reader"/);
  assert.match(claims, /"token_use": "access"/);
  assert.match(await page.textContent("#header-json"), /"alg": "RS256"/);
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
});

test("a tampered token shows signature_invalid at the signature check", async () => {
  await page.click("#tamper");
  const v = await verdict("signature_invalid");
  assert.equal(v.label, "signature_invalid");
  assert.equal(v.http, "HTTP 401");
  assert.deepEqual(v.failed, ["signature"]);
  assert.deepEqual(v.passed, ["format", "algorithm", "key"]);
  assert.match(await page.textContent("#claims-json"), /"scope": "orders\/read orders\/write"/);
});

test("a pasted expired token shows token_expired at the time check", async () => {
  const now = Math.floor(Date.now() / 1000);
  await paste(await mint({ client_id: "orders-reader", scope: "orders/read", issued_at: now - 7200, lifetime_s: 3600 }));
  const v = await verdict("token_expired");
  assert.deepEqual(v.failed, ["time"]);
  assert.match(await page.textContent("#verdict-challenge"), /error="invalid_token"/);
});

test("the page's own expired-token button gives token_expired too", async () => {
  await page.click("#clear");
  await page.click("#expired-token");
  const v = await verdict("token_expired");
  assert.deepEqual(v.failed, ["time"]);
});

test("the policy form decides: a client outside the allow-list, then a missing scope", async () => {
  await page.selectOption("#client", "not-allowed-client");
  await page.click("#fetch-token");
  assert.deepEqual((await verdict("client_not_allowed")).failed, ["client_id"]);

  await page.selectOption("#client", "orders-reader");
  await page.click("#fetch-token");
  await verdict("valid");
  await page.fill("#scopes", "orders/write");
  await page.click("#verify");
  const v = await verdict("scope_insufficient");
  assert.equal(v.http, "HTTP 403");
  assert.deepEqual(v.failed, ["scopes"]);
  assert.match(await page.textContent("#verdict-challenge"), /scope="orders\/write"/);
});
