// The Cloudflare Workers template (deploy/cloudflare-workers): `wrangler deploy --dry-run`
// (wrangler pinned in deploy/package-lock.json) bundles it with the package from a checkout and
// with the release tarball, and the bundle wrangler would upload runs in workerd on 127.0.0.1
// in front of a local origin, answering with tokengate's verdicts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { DEPLOY, DIST, ROOT, VERSION, configFor, rawRequest, release, request, serve, sharedConfig, testIssuer } from "./helpers.mjs";

const run = promisify(execFile);
const TEMPLATE = join(DEPLOY, "cloudflare-workers");
const WRANGLER = join(DEPLOY, "node_modules/.bin/wrangler");
const WORKERD = join(DEPLOY, "node_modules/.bin/workerd");
let scratch;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), "tokengate-wrangler-"));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

// A copy of the template in its own directory with `tokengate` installed the way a user would
// ("checkout": npm install path/to/js, a link; "tarball": the release .tgz unpacked).
async function project(name, install, config) {
  const dir = join(scratch, name);
  cpSync(TEMPLATE, dir, { recursive: true, filter: (src) => !src.includes(".wrangler") });
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  if (install === "checkout") {
    symlinkSync(join(ROOT, "js"), join(dir, "node_modules/tokengate"), "dir");
  } else {
    const tgz = join(DIST, release().npm.file);
    mkdirSync(join(dir, "node_modules/tokengate"));
    await run("tar", ["-xzf", tgz, "-C", join(dir, "node_modules/tokengate"), "--strip-components=1"], { timeout: 30_000 });
  }
  if (config) writeFileSync(join(dir, "tokengate.json"), JSON.stringify(config, null, 2));
  return dir;
}

async function dryRun(dir) {
  const out = join(dir, "out");
  const env = {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_HIDE_BANNER: "true", // also skips wrangler's update check: nothing leaves the machine
    XDG_CONFIG_HOME: join(dir, ".config"),
    CLOUDFLARE_API_TOKEN: "",
  };
  const { stdout, stderr } = await run(WRANGLER, ["deploy", "--dry-run", "--outdir", out], { cwd: dir, env, timeout: 120_000 });
  return { out, log: stdout + stderr, files: readdirSync(out) };
}

test("the template's tokengate.json is the shared configuration every example loads", () => {
  assert.deepEqual(JSON.parse(readFileSync(join(TEMPLATE, "tokengate.json"), "utf8")), sharedConfig());
});

test("wrangler.toml names the entry, a compatibility date and the origin", () => {
  const toml = readFileSync(join(TEMPLATE, "wrangler.toml"), "utf8");
  assert.match(toml, /^main = "src\/worker\.mjs"$/m);
  assert.match(toml, /^compatibility_date = "\d{4}-\d{2}-\d{2}"$/m);
  assert.match(toml, /^ORIGIN = "https:\/\/[^"]+"$/m);
  assert.ok(existsSync(join(TEMPLATE, "src/worker.mjs")));
});

for (const install of ["checkout", "tarball"]) {
  test(`wrangler deploy --dry-run accepts the template (tokengate from the ${install})`, async () => {
    const dir = await project(install, install);
    const { files, log } = await dryRun(dir);
    assert.match(log, /--dry-run: exiting now/);
    assert.ok(files.includes("worker.js"), files.join(", "));
    const wasm = files.filter((f) => f.endsWith("tokengate_wasm_bg.wasm"));
    assert.equal(wasm.length, 1, `one .wasm module in ${files.join(", ")}`);
    // The module wrangler uploads is the package's own .wasm, not a copy of something else.
    const packaged = install === "checkout" ? join(ROOT, "js/dist/wasm/tokengate_wasm_bg.wasm") : join(dir, "node_modules/tokengate/dist/wasm/tokengate_wasm_bg.wasm");
    assert.ok(readFileSync(join(dir, "out", wasm[0])).equals(readFileSync(packaged)));
    assert.ok(readFileSync(join(dir, "out/worker.js"), "utf8").includes(`from "./${wasm[0]}"`));
    if (install === "tarball") {
      assert.equal(JSON.parse(readFileSync(join(dir, "node_modules/tokengate/package.json"), "utf8")).version, VERSION);
    }
  });
}

test("the worker example inside the npm tarball (examples/worker) bundles with wrangler as well", async () => {
  const pkgDir = join(await project("shipped", "tarball"), "node_modules/tokengate");
  const dir = join(scratch, "shipped-example");
  cpSync(join(pkgDir, "examples/worker"), dir, { recursive: true });
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(pkgDir, join(dir, "node_modules/tokengate"), "dir");
  const { files, log } = await dryRun(dir);
  assert.match(log, /--dry-run: exiting now/);
  assert.ok(files.some((f) => f.endsWith("tokengate_wasm_bg.wasm")), files.join(", "));
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

test("the bundle wrangler would upload runs in workerd and answers with tokengate's verdicts", async (t) => {
  const issuer = testIssuer();
  const jwks = await serve((req, res) => {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=300" });
    res.end(JSON.stringify(issuer.jwks));
  });
  const origin = await serve((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ origin: true, path: req.url, client: req.headers["x-tokengate-client-id"] ?? null, authorization: req.headers.authorization ?? null }));
  });
  t.after(() => Promise.all([jwks.close(), origin.close()]));
  // The template with the test issuer in place of the Cognito pool (its rules, forward and
  // strip_authorization unchanged), bundled from the release tarball.
  const dir = await project("workerd", "tarball", configFor(issuer, { jwksUri: `${jwks.url}/jwks.json` }));
  const { out, files } = await dryRun(dir);
  const wasm = files.find((f) => f.endsWith(".wasm"));
  const date = readFileSync(join(dir, "wrangler.toml"), "utf8").match(/^compatibility_date = "([^"]+)"/m)[1];
  const port = await freePort();
  writeFileSync(
    join(out, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "${wasm}", wasm = embed "${wasm}"),
  ],
  compatibilityDate = "${date}",
  globalOutbound = "loopback",
  bindings = [(name = "ORIGIN", text = "${origin.url}")],
);
`,
  );
  let logs = "";
  const proc = spawn(WORKERD, ["serve", join(out, "config.capnp")], { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout.on("data", (d) => (logs += d));
  proc.stderr.on("data", (d) => (logs += d));
  t.after(() => proc.kill());
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await fetch(`${base}/health`, { signal: AbortSignal.timeout(1000) });
      break;
    } catch {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`workerd did not come up:\n${logs}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const health = await request(`${base}/health`);
  assert.equal(health.status, 200, logs);
  assert.equal(JSON.parse(health.body).path, "/health");

  const missing = await request(`${base}/orders`);
  assert.equal(missing.status, 401);
  assert.equal(missing.headers["www-authenticate"], 'Bearer realm="tokengate"');
  assert.equal(JSON.parse(missing.body).error, "token_missing");

  const confused = await rawRequest(base, { path: "/orders/..;/admin" });
  assert.equal(confused.status, 400);
  assert.equal(JSON.parse(confused.body).error, "request_invalid");

  const read = issuer.token({ scope: "orders/read" });
  const ok = await request(`${base}/orders/7`, { headers: { authorization: `Bearer ${read}`, "x-tokengate-client-id": "spoofed" } });
  assert.equal(ok.status, 200, ok.body);
  assert.deepEqual(JSON.parse(ok.body), { origin: true, path: "/orders/7", client: "3q9f1k7c2m8v4n6b0x5z1l2h7d", authorization: null });

  const write = await request(`${base}/orders`, { method: "POST", headers: { authorization: `Bearer ${read}` }, body: "{}" });
  assert.equal(write.status, 403);
  assert.equal(write.headers["www-authenticate"], 'Bearer realm="tokengate", error="insufficient_scope", scope="orders/write"');
});
