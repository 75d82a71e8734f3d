// Pure-wasm RS256/ES256 against node:crypto in one Node process (scripts/bench.sh runs it).
//
//   node --no-liftoff scripts/lib/bench-crypto.mjs [LABEL=path/to/rs256_compare.wasm ...] [--npm]
//
// Rows, each the median of interleaved rounds so that background load hits every row alike (the
// ratios: the median of each round's own ratio to the floor of that round):
// - node:crypto `crypto.verify` with a prebuilt KeyObject on the same signing input and
//   signature (the floor the ratios are taken against);
// - each given wasm32-wasip1 build of crates/tokengate/examples/rs256_compare.rs (e.g. the
//   simd128 and the scalar build): the core's uncached verifier and its signature step alone;
// - with --npm, the npm package's pure-wasm path (`crypto: "wasm"`, cache off): verifySync as a
//   JS caller sees it, on the .wasm that scripts/build-js.sh built.
// `--no-liftoff` makes V8 compile wasm with TurboFan up front, so no round runs baseline code.
import crypto from "node:crypto";
import { readFileSync } from "node:fs";
import { WASI } from "node:wasi";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS || 11);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS || 150);

const args = process.argv.slice(2);
const npm = args.includes("--npm");
const builds = args.filter((a) => a.includes("=")).map((a) => {
  const [label, path] = a.split("=");
  return { label, module: new WebAssembly.Module(readFileSync(path)) };
});

const vectors = JSON.parse(readFileSync(`${ROOT}tests/vectors/accept.json`, "utf8")).cases;
const rsCase = vectors.find((c) => c.name === "cognito_rs256_access_token_is_accepted");
const esCase = vectors.find((c) => c.expect === "accept" && JSON.stringify(c.policy.algorithms) === '["ES256"]');

/** Signing input, signature and a prebuilt KeyObject for the key the token names. */
function nodeCase(c) {
  const [h, p, s] = c.token.split(".");
  const kid = JSON.parse(Buffer.from(h, "base64url")).kid;
  const jwk = c.jwks.keys.find((k) => k.kid === kid);
  const key = crypto.createPublicKey({ key: jwk, format: "jwk" });
  return { data: Buffer.from(`${h}.${p}`), sig: Buffer.from(s, "base64url"), key, alg: jwk.kty === "RSA" ? "RS256" : "ES256" };
}
const nodeRs = nodeCase(rsCase);
const nodeEs = nodeCase(esCase);
const nodeVerify = (n) =>
  n.alg === "RS256"
    ? () => crypto.verify("sha256", n.data, n.key, n.sig)
    : () => crypto.verify("sha256", n.data, { key: n.key, dsaEncoding: "ieee-p1363" }, n.sig);

/** Microseconds per call of a synchronous `f` that returns true, over `ms` milliseconds. */
function time(f, ms) {
  let n = 0;
  const start = process.hrtime.bigint();
  const stop = start + BigInt(ms * 1e6);
  do {
    for (let i = 0; i < 16; i++) if (!f()) throw new Error("verification failed in the benchmark");
    n += 16;
  } while (process.hrtime.bigint() < stop);
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

/** One run of a wasip1 build: its JSON line of microseconds per operation. */
function runWasi(module, ms) {
  const wasi = new WASI({ version: "preview1", args: ["rs256_compare", String(ms), "--json"], env: {}, returnOnExit: true });
  const imports = wasi.getImportObject();
  let out = "";
  let memory;
  const wasiImports = imports.wasi_snapshot_preview1;
  const fdWrite = wasiImports.fd_write;
  // Capture stdout (fd 1) in-process instead of letting it reach the terminal.
  wasiImports.fd_write = (fd, iovs, iovsLen, nwritten) => {
    if (fd !== 1) return fdWrite(fd, iovs, iovsLen, nwritten);
    const view = new DataView(memory.buffer);
    let total = 0;
    for (let i = 0; i < iovsLen; i++) {
      const ptr = view.getUint32(iovs + i * 8, true);
      const len = view.getUint32(iovs + i * 8 + 4, true);
      out += Buffer.from(memory.buffer, ptr, len).toString("utf8");
      total += len;
    }
    view.setUint32(nwritten, total, true);
    return 0;
  };
  const instance = new WebAssembly.Instance(module, imports);
  memory = instance.exports.memory;
  const code = wasi.start(instance);
  if (code !== 0) throw new Error(`rs256_compare exited with ${code}`);
  return JSON.parse(out.trim().split("\n").pop());
}

const rows = [];
const row = (name, alg, sample) => rows.push({ name, alg, sample, samples: [] });
row("node:crypto verify, prebuilt KeyObject (the floor)", "RS256", () => time(nodeVerify(nodeRs), ROUND_MS));
row("node:crypto verify, prebuilt KeyObject (the floor)", "ES256", () => time(nodeVerify(nodeEs), ROUND_MS));

if (npm) {
  const { JwtVerifier } = await import(`${ROOT}js/src/node.mjs`);
  const common = { cache: false, crypto: "wasm", leewaySeconds: 0, signatureChecksPerSecond: "unlimited" };
  const p = rsCase.policy;
  const rs = JwtVerifier.create({
    ...common, issuer: p.issuers[0], jwks: rsCase.jwks, algorithms: p.algorithms,
    tokenUse: p.token_use, clientId: p.client_ids, scope: p.scopes.all,
  });
  const q = esCase.policy;
  const es = JwtVerifier.create({
    ...common, issuer: q.issuers[0], jwks: esCase.jwks, algorithms: q.algorithms,
    tokenUse: null, clientId: null, audience: q.audience,
  });
  const once = (v, c) => () => v.verifySync(c.token, { now: c.now }) !== undefined;
  row("npm pure wasm verifySync, uncached (crypto: \"wasm\")", "RS256", () => time(once(rs, rsCase), ROUND_MS));
  row("npm pure wasm verifySync, uncached (crypto: \"wasm\")", "ES256", () => time(once(es, esCase), ROUND_MS));
}

// A wasip1 run measures all its operations in one go, so it is one sample per row per round.
const wasiRows = [];
for (const b of builds) {
  const names = {
    rs256_signature: ["RS256", `core ${b.label}: signature step only`],
    rs256_verify: ["RS256", `core ${b.label}: uncached verifier`],
    es256_signature: ["ES256", `core ${b.label}: signature step only`],
    es256_verify: ["ES256", `core ${b.label}: uncached verifier`],
  };
  const group = { build: b, rows: {} };
  for (const [key, [alg, name]] of Object.entries(names)) {
    group.rows[key] = { name, alg, samples: [] };
    rows.push(group.rows[key]);
  }
  wasiRows.push(group);
}

for (const r of rows) if (r.sample) r.sample(); // warm-up: JIT, key import, wasm compilation
for (const g of wasiRows) runWasi(g.build.module, 20);
for (let round = 0; round < ROUNDS; round++) {
  for (const r of rows) if (r.sample) r.samples.push(r.sample());
  for (const g of wasiRows) {
    // Each of its six measurements gets ROUND_MS / 2, like one row here.
    const result = runWasi(g.build.module, Math.max(20, ROUND_MS >> 1));
    for (const [key, r] of Object.entries(g.rows)) r.samples.push(result[key]);
  }
}

// BENCH_STAT=min reports each row's fastest round instead (for A/B runs under heavy load).
const stat = process.env.BENCH_STAT === "min" ? "min" : "median";
const pick = (xs) => [...xs].sort((a, b) => a - b)[stat === "min" ? 0 : xs.length >> 1];
const floor = {};
for (const r of rows) {
  r.us = pick(r.samples);
  if (r.name.startsWith("node:crypto")) floor[r.alg] = r;
}
// A row's ratio is the median (or min) of its rounds' own ratios to the floor's sample of the
// same round: the two ran moments apart, so a slow stretch of the machine hits both, where the
// ratio of the two medians may pair a fast floor round with a slow wasm round.
for (const r of rows) r.ratio = pick(r.samples.map((x, i) => x / floor[r.alg].samples[i]));
console.log(`Node ${process.version}, ${ROUNDS} interleaved rounds, ${stat} (µs per verification; × node:crypto: ${stat} of the rounds' own ratios)`);
console.log("| alg | path | µs | × node:crypto | ratio of the two medians |");
console.log("| --- | --- | ---: | ---: | ---: |");
for (const alg of ["RS256", "ES256"]) {
  for (const r of rows.filter((x) => x.alg === alg)) {
    console.log(`| ${alg} | ${r.name} | ${r.us.toFixed(1)} | ${r.ratio.toFixed(2)} | ${(r.us / floor[alg].us).toFixed(2)} |`);
  }
}

// Issue 12's target for the pure-wasm verifier in V8: the simd128 build's whole uncached
// verification at most 3.0× node:crypto's.
const simd = rows.find((r) => r.alg === "RS256" && r.name === "core simd128: uncached verifier");
if (simd) {
  console.log(`\nsimd128 uncached RS256 verifier ÷ node:crypto: ${simd.ratio.toFixed(2)}× (target ≤ 3.0×: ${simd.ratio <= 3 ? "met" : "NOT MET"})`);
}
