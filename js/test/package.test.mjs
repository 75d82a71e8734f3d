// The artifact people install: `npm pack`, installed into a scratch project, then used through
// ESM import, CJS require and TypeScript (tsc --noEmit on a consumer file).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, rmSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadGroups } from "./helpers/vectors-node.mjs";
import { optionsFor } from "./helpers/vectors.mjs";

const PKG = fileURLToPath(new URL("..", import.meta.url));
// 112 KiB was the token verifier alone; the request gate (routes, path and bearer rules, the
// one configuration parser with its field-naming errors) brought it to about 136 KiB, the
// policy feed (document parser and signature check, poller) to about 151 KiB, client
// certificates (a DER reader for the subject and subjectAltName, RFC 4514 names, pins, the
// Client-Cert and ALB header sources) to about 168 KiB. Issue 12 removed about 4.3 KB that
// nothing needed (a String sort linked only by collecting into a BTreeSet; wasm-opt --converge
// --low-memory-unused) and added the simd128 RSA code: 173,466 bytes measured. The core's own
// JSON module (crates/tokengate/src/json.rs) in place of serde/serde_json, and sorted vectors in
// place of its BTreeMaps, took it from 156,845 to 137,517 bytes (364,757 to 307,950 raw); the
// core's own DER reader in place of the der crate, and messages that quote values as JSON
// strings instead of {:?} (no Unicode printability tables), to 129,160 (290,575 raw); the JSON
// reader in its own crate at opt-level 3 (tokengate-json: 2.2 us less per uncached token) to
// 131,656 (297,296 raw). Then the rest of the core at opt-level "z" instead of "s" (its hot
// parts, RSA, JSON and base64, keep their own level), TLSF (rlsf) as the allocator in place of
// dlmalloc, id-indexed vectors in place of two hash maps in the bindings, and registry paths
// remapped out of panic locations: 119,629 (267,348 raw). The budget is issue 12's target,
// 120,000 bytes gzipped: it catches an accidental second crypto backend, JSON library or
// std::fs, and any growth past the target. Sizes are GNU gzip -9's, as scripts/build-js.sh and
// the benchmark print them (node:zlib at level 9 reads about 1 KB more on this module).
const WASM_BUDGET_GZ = 120_000;
let scratch;
let tarball;
let files;

function run(cmd, args, cwd) {
  return execFileSync(cmd, args, { cwd, encoding: "utf8", timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] });
}

before(() => {
  scratch = mkdtempSync(join(tmpdir(), "tokengate-pack-"));
  const out = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", scratch], PKG));
  tarball = join(scratch, out[0].filename);
  files = out[0].files.map((f) => f.path).sort();
  const app = join(scratch, "app");
  run("mkdir", ["-p", app]);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "scratch", private: true, version: "0.0.0" }));
  run("npm", ["install", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", tarball], app);
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test("the tarball holds the entries, the types and the optimised wasm, and no tests", () => {
  for (const f of [
    "package.json",
    "README.md",
    "index.d.ts",
    "dist/node.cjs",
    "dist/index.d.cts",
    "examples/worker/worker.mjs",
    "dist/wasm/tokengate_wasm.js",
    "dist/wasm/tokengate_wasm_bg.wasm",
    "src/node.mjs",
    "src/workerd.mjs",
    "src/browser.mjs",
    "src/core.mjs",
  ]) {
    assert.ok(files.includes(f), `${f} missing from ${files.join(", ")}`);
  }
  assert.ok(!files.some((f) => f.startsWith("test/") || f.startsWith("bench/") || f.endsWith(".ts") && f !== "index.d.ts"));
});

test(`the packaged .wasm is at most ${WASM_BUDGET_GZ} bytes gzipped and imports only wasm-bindgen glue`, () => {
  const wasm = readFileSync(join(scratch, "app/node_modules/tokengate/dist/wasm/tokengate_wasm_bg.wasm"));
  const gz = execFileSync("gzip", ["-9c"], { input: wasm, maxBuffer: 1 << 24 }).length;
  assert.ok(gz <= WASM_BUDGET_GZ, `gzipped size ${gz}`);
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(wasm));
  for (const i of imports) {
    assert.equal(i.module, "./tokengate_wasm_bg.js", `unexpected import ${i.module}.${i.name}`);
    assert.match(i.name, /^__wbg_|^__wbindgen_/, `unexpected import ${i.name}`);
  }
});

function vectorCase(name) {
  for (const g of loadGroups()) for (const c of g.cases) if (c.name === name) return c;
  throw new Error(`no vector ${name}`);
}

const script = (style) => `
${style === "esm" ? 'import { JwtVerifier, TokenError } from "tokengate";' : 'const { JwtVerifier, TokenError } = require("tokengate");'}
const fs = require_("fs");
const cases = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = [];
for (const c of cases) {
  const v = JwtVerifier.create(c.options);
  try { out.push(typeof v.verifySync(c.token, { now: c.now }).iss === "string" ? "accept" : "no iss"); }
  catch (e) { out.push((e instanceof TokenError) + ":" + e.code); }
}
console.log(JSON.stringify(out));
`;

for (const style of ["esm", "cjs"]) {
  test(`${style === "esm" ? "ESM import" : "CJS require"} from the installed tarball verifies vectors`, () => {
    const app = join(scratch, "app");
    const cases = [
      vectorCase("cognito_rs256_access_token_is_accepted"),
      vectorCase("es256_generic_issuer_with_audience_is_accepted"),
      vectorCase("exp_plus_leeway_equal_to_now_is_expired"),
      vectorCase("alg_none_with_real_signature_is_not_allowed"),
    ];
    const input = cases.map((c) => ({ options: optionsFor(c), token: c.token, now: c.now }));
    writeFileSync(join(app, "cases.json"), JSON.stringify(input));
    const file = join(app, style === "esm" ? "check.mjs" : "check.cjs");
    const prelude =
      style === "esm" ? 'import { createRequire } from "node:module"; const require_ = createRequire(import.meta.url);\n' : "const require_ = require;\n";
    writeFileSync(file, prelude + script(style));
    const got = JSON.parse(run("node", [file, join(app, "cases.json")], app));
    assert.deepEqual(got, cases.map((c) => (c.expect === "accept" ? "accept" : `true:${c.expect}`)));
  });
}

test("the types check an ESM and a CommonJS consumer of the installed package (tsc --noEmit)", () => {
  const app = join(scratch, "app");
  copyFileSync(fileURLToPath(new URL("./types/consumer.ts", import.meta.url)), join(app, "consumer.mts"));
  copyFileSync(fileURLToPath(new URL("./types/consumer.ts", import.meta.url)), join(app, "consumer.cts"));
  writeFileSync(
    join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext", target: "es2022", lib: ["es2022"], types: [] },
      files: ["consumer.mts", "consumer.cts"],
    }),
  );
  const tsc = join(PKG, "node_modules/.bin/tsc");
  try {
    run(tsc, ["-p", "tsconfig.json"], app);
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
  }
});
