// A/B of two builds of the npm package in one Node process (not a test): for a change whose
// effect is smaller than the machine's drift between two `npm run bench` runs.
//
//   node bench/ab.mjs snapshot DIR    copy src/ and dist/wasm/ (build first: scripts/build-js.sh)
//   node bench/ab.mjs DIR [DIR2]      DIR (A) against this checkout's js/ (or DIR2) as B
//
// Both builds verify the same Cognito-shaped RS256 token in interleaved rounds (every case in
// every round, the order reversed every other round), timed by process CPU time unless
// BENCH_CLOCK=wall. It prints each case's median and B/A as the median of the per-round ratios.
// Cases: the floor (raw node:crypto), uncached verifySync with the RSA answered at once (the
// work besides RSA, the steadiest figure), uncached verifySync, uncached verifySync with the RSA
// in wasm (`crypto: "wasm"`), and a cache hit alternating two tokens. Bounded: BENCH_ROUNDS (20)
// × 9 cases × BENCH_ROUND_MS (40) plus warm-up, ~8 s.
import { cpSync, existsSync, mkdirSync } from "node:fs";
import { createPublicKey, verify as cryptoVerify } from "node:crypto";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.resolve(fileURLToPath(new URL("..", import.meta.url)));
const [cmd, ...rest] = process.argv.slice(2);

if (cmd === "snapshot") {
  const dir = path.resolve(rest[0] ?? "");
  if (!rest[0]) throw new Error("usage: node bench/ab.mjs snapshot DIR");
  mkdirSync(path.join(dir, "dist"), { recursive: true });
  cpSync(path.join(here, "src"), path.join(dir, "src"), { recursive: true });
  cpSync(path.join(here, "dist/wasm"), path.join(dir, "dist/wasm"), { recursive: true });
  console.log(`snapshot of ${here}/src and dist/wasm in ${dir}`);
  process.exit(0);
}
if (!cmd) throw new Error("usage: node bench/ab.mjs DIR [DIR2]  |  node bench/ab.mjs snapshot DIR");

const dirA = path.resolve(cmd);
const dirB = path.resolve(rest[0] ?? here);
for (const d of [dirA, dirB]) {
  if (!existsSync(path.join(d, "dist/wasm/tokengate_wasm_bg.wasm"))) throw new Error(`${d}: no dist/wasm build`);
}
const f = await import(new URL("../test/helpers/fixtures.mjs", import.meta.url));

async function load(dir) {
  // Each build has its own wasm instance; its node:crypto adapter is wrapped so that one case
  // can answer the RSA check at once.
  const api = await import(path.join(dir, "src/node.mjs"));
  const { nodeCrypto } = await import(path.join(dir, "src/node-crypto.mjs"));
  const real = nodeCrypto.verify;
  const state = { stub: false };
  nodeCrypto.verify = (...args) => (state.stub ? true : real(...args));
  return { api, state };
}
const A = await load(dirA);
const B = await load(dirB);

const token = f.signToken(f.cognitoClaims());
const token2 = f.signToken(f.cognitoClaims({ jti: "0b2f7c1e-5d4a-4c3b-9e8f-7a6b5c4d3e2f" }), { key: "rsa-b" });
const base = { userPoolId: f.POOL_ID, tokenUse: "access", clientId: f.CLIENT_ID, jwks: f.jwks("rsa-a", "rsa-b") };
const uncached = { ...base, cache: false, signatureChecksPerSecond: "unlimited" };
const [h64, p64, s64] = token.split(".");
const signingInput = Buffer.from(`${h64}.${p64}`);
const signature = Buffer.from(s64, "base64url");
const keyObject = createPublicKey({ key: f.testKey("rsa-a").jwk, format: "jwk" });

function cases(name, { api, state }) {
  const u = api.CognitoVerifier.create(uncached);
  const c = api.CognitoVerifier.create(base);
  const w = api.CognitoVerifier.create({ ...uncached, crypto: "wasm" });
  let flip = false;
  return {
    [`${name} besides RSA`]: () => {
      state.stub = true;
      try {
        return u.verifySync(token).client_id;
      } finally {
        state.stub = false;
      }
    },
    [`${name} uncached`]: () => u.verifySync(token).client_id,
    [`${name} pure wasm`]: () => w.verifySync(token).client_id,
    [`${name} hit (2 tokens)`]: () => c.verifySync((flip = !flip) ? token : token2).client_id,
  };
}
const all = {
  floor: () => cryptoVerify("sha256", signingInput, keyObject, signature),
  ...cases("A", A),
  ...cases("B", B),
};

const CPU = process.env.BENCH_CLOCK !== "wall";
const clock = CPU
  ? () => {
      const u = process.cpuUsage();
      return (u.user + u.system) * 1000;
    }
  : () => Number(process.hrtime.bigint());
const ROUNDS = Number(process.env.BENCH_ROUNDS || 20);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS || 40);

function round(fn, ms) {
  let n = 0;
  const start = clock();
  const stop = start + ms * 1e6;
  for (;;) {
    for (let i = 0; i < 64; i++) if (!fn()) throw new Error("a case failed");
    n += 64;
    if (clock() >= stop) break;
  }
  return (clock() - start) / 1000 / n; // µs per op
}

const names = Object.keys(all);
const samples = Object.fromEntries(names.map((k) => [k, []]));
for (const k of names) round(all[k], 100); // warm-up: JIT, wasm tier-up, key import
for (let r = 0; r < ROUNDS; r++) {
  for (const k of r % 2 ? [...names].reverse() : names) samples[k].push(round(all[k], ROUND_MS));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const ratio = (b, a) => median(samples[b].map((x, i) => x / samples[a][i]));

console.log(`A: ${dirA}\nB: ${dirB}`);
console.log(`${ROUNDS} interleaved rounds of ${ROUND_MS} ms (${CPU ? "process CPU time" : "wall clock"}), median µs/op\n`);
console.log("| case | A µs | B µs | B/A |\n| --- | ---: | ---: | ---: |");
console.log(`| raw node:crypto verify (floor) | ${median(samples.floor).toFixed(2)} | | |`);
for (const c of ["besides RSA", "uncached", "pure wasm", "hit (2 tokens)"]) {
  const a = `A ${c}`;
  const b = `B ${c}`;
  console.log(`| ${c} | ${median(samples[a]).toFixed(2)} | ${median(samples[b]).toFixed(2)} | ${ratio(b, a).toFixed(3)} |`);
}
console.log(`\nuncached ÷ floor: A ${ratio("A uncached", "floor").toFixed(2)}×, B ${ratio("B uncached", "floor").toFixed(2)}×`);
console.log(`pure wasm ÷ floor: A ${ratio("A pure wasm", "floor").toFixed(2)}×, B ${ratio("B pure wasm", "floor").toFixed(2)}×`);
