// npm run bench (also run by scripts/bench-js.sh and scripts/bench.sh): tokengate against the
// floor (one raw node:crypto RS256 verify with a prebuilt KeyObject), aws-jwt-verify and jose
// on a Cognito-shaped RS256 access token with a 2-key JWKS, all in one process and one run.
// Rounds are interleaved (every contender runs in every round) and each figure is the median of
// the rounds, so background load hits all contenders alike; read the ratios, which come from
// the same run. Never used as a timed test. Time is bounded: BENCH_ROUNDS × contenders ×
// BENCH_ROUND_MS (about 12 s with the defaults) plus warm-up and signing the tokens.
import { execFileSync } from "node:child_process";
import { createPublicKey, verify as cryptoVerify } from "node:crypto";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { CognitoJwtVerifier } from "aws-jwt-verify";
import { jwtVerify, createLocalJWKSet } from "jose";
import { CognitoVerifier } from "../src/node.mjs";
import { nodeCrypto } from "../src/node-crypto.mjs";
import * as f from "../test/helpers/fixtures.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS || 15);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS || 50);
// BENCH_FRESH_TOKENS sets how many distinct tokens the "every token new" row cycles through.
// BENCH_CLOCK=cpu times each round by this process's CPU time instead of the wall clock: on a
// machine busy with other work, time spent waiting for a core then does not count.
const CPU = process.env.BENCH_CLOCK === "cpu";
const clock = CPU
  ? () => {
      const u = process.cpuUsage();
      return BigInt(u.user + u.system) * 1000n;
    }
  : () => process.hrtime.bigint();

const token = f.signToken(f.cognitoClaims());
// A second client's token, so one cache-hit row alternates tokens (no same-string shortcut).
const token2 = f.signToken(f.cognitoClaims({ jti: "0b2f7c1e-5d4a-4c3b-9e8f-7a6b5c4d3e2f" }), { key: "rsa-b" });
const jwks = f.jwks("rsa-a", "rsa-b");
const base = { userPoolId: f.POOL_ID, tokenUse: "access", clientId: f.CLIENT_ID, jwks };
// Uncached rows verify tens of thousands of new tokens a second: far past the default budget
// of signature checks per second that protects against forged-token floods.
const unlimited = { signatureChecksPerSecond: "unlimited" };

// The floor: what every contender must at least do, the RSA operation in node:crypto.
const [h64, p64, s64] = token.split(".");
const signingInput = Buffer.from(`${h64}.${p64}`);
const signature = Buffer.from(s64, "base64url");
const keyObject = createPublicKey({ key: f.testKey("rsa-a").jwk, format: "jwk" });
const floorClaims = { client_id: f.CLIENT_ID };

const aws = CognitoJwtVerifier.create({ userPoolId: f.POOL_ID, tokenUse: "access", clientId: f.CLIENT_ID });
aws.cacheJwks(jwks);
const joseKeys = createLocalJWKSet(jwks);
const uncached = CognitoVerifier.create({ ...base, cache: false, ...unlimited });
const cached = CognitoVerifier.create(base);
const pure = CognitoVerifier.create({ ...base, cache: false, crypto: "wasm", ...unlimited });
// The whole request through the core's gate: routes, path and bearer rules, forwarded claims.
const routed = CognitoVerifier.create({
  ...base,
  routes: [
    { match: { prefix: "/health" }, allow: "anonymous" },
    { match: { prefix: "/orders", methods: ["GET"] }, scopes: { all: ["orders/read"] } },
    { match: { prefix: "/orders" }, scopes: { all: ["orders/write"] } },
  ],
  forward: { client_id: "x-tokengate-client-id" },
});
const facts = { method: "GET", target: "/orders/7?x=1", authorization: [`Bearer ${token}`] };
// Every token new, with the default verified-token cache (4,096 entries): more distinct tokens
// than it holds, in turn, so every call verifies afresh and stores into a full cache. Signing
// them takes a few seconds.
const FRESH = Number(process.env.BENCH_FRESH_TOKENS || 4600);
const freshTokens = Array.from({ length: FRESH }, (_, i) => f.signToken(f.cognitoClaims({ jti: `fresh-${i}` })));
const fresh = CognitoVerifier.create({ ...base, ...unlimited });
let next = 0;

// Diagnostic row: the uncached path with node:crypto's verify answering `true` at once, i.e.
// everything tokengate does besides the RSA operation (parsing, checks, the claims object).
const realVerify = nodeCrypto.verify;
let stubbed = false;
nodeCrypto.verify = (...args) => (stubbed ? true : realVerify(...args));

let flip = false;
// Each contender verifies the same token and checks the answer, so nothing is optimised away.
const contenders = [
  { name: "raw node:crypto verify, prebuilt KeyObject (floor)", sync: () => (cryptoVerify("sha256", signingInput, keyObject, signature) ? floorClaims : null) },
  { name: "aws-jwt-verify verifySync", sync: () => aws.verifySync(token) },
  { name: "tokengate verifySync, uncached (node:crypto)", sync: () => uncached.verifySync(token) },
  { name: "tokengate verifySync, uncached, pure wasm (crypto: \"wasm\")", sync: () => pure.verifySync(token), slow: true },
  { name: `tokengate verifySync, every token new (${FRESH.toLocaleString("en-US")} in turn, cache on and full)`, sync: () => fresh.verifySync(freshTokens[(next = (next + 1) % FRESH)]) },
  { name: "tokengate verifySync, cache hit (same token)", sync: () => cached.verifySync(token) },
  { name: "tokengate verifySync, cache hit (2 tokens alternating)", sync: () => cached.verifySync((flip = !flip) ? token : token2) },
  { name: "tokengate decideSync (routes, whole request), cache hit", sync: () => routed.decideSync(facts).claims },
  { name: "aws-jwt-verify verify (async)", async: () => aws.verify(token) },
  { name: "jose jwtVerify (async)", async: async () => (await jwtVerify(token, joseKeys, { issuer: f.ISSUER, algorithms: ["RS256"] })).payload, slow: true },
  { name: "tokengate verify (async), uncached", async: () => uncached.verify(token) },
  {
    name: "tokengate verifySync, uncached, RSA answered at once (work besides RSA)",
    sync: () => {
      stubbed = true;
      try {
        return uncached.verifySync(token);
      } finally {
        stubbed = false;
      }
    },
  },
];

async function round(c) {
  const budget = c.slow ? ROUND_MS / 2 : ROUND_MS;
  let n = 0;
  const start = clock();
  const stop = start + BigInt(Math.round(budget * 1e6));
  if (c.sync) {
    for (;;) {
      for (let i = 0; i < 64; i++) if (c.sync().client_id !== f.CLIENT_ID) throw new Error(c.name);
      n += 64;
      if (clock() >= stop) break;
    }
  } else {
    for (;;) {
      for (let i = 0; i < 16; i++) if ((await c.async()).client_id !== f.CLIENT_ID) throw new Error(c.name);
      n += 16;
      if (clock() >= stop) break;
    }
  }
  return Number(clock() - start) / 1000 / n;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

for (const c of contenders) {
  c.samples = [];
  await round(c); // warm-up (JIT, wasm tier-up, key import)
  await round(c);
}
for (let r = 0; r < ROUNDS; r++) for (const c of contenders) c.samples.push(await round(c));

const find = (prefix) => contenders.find((c) => c.name.startsWith(prefix));
const us = (prefix) => median(find(prefix).samples);
// Ratios are the median of the per-round ratios: a round's contenders ran back to back, so a
// slow stretch of the machine cancels out of them.
const ratioOf = (c, to) => median(c.samples.map((x, r) => x / to.samples[r]));
const floorC = find("raw node:crypto");
const awsC = find("aws-jwt-verify verifySync");
const fmt = (x) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
const ratio = (x) => (x < 0.1 ? x.toFixed(3) : x.toFixed(2));

console.log(`tokengate bench: node ${process.version}, ${ROUNDS} interleaved rounds of ${ROUND_MS} ms (${CPU ? "process CPU time" : "wall clock"}), median µs/op`);
console.log(`token: Cognito RS256 access token (${token.length} chars), JWKS with 2 RSA-2048 keys\n`);
console.log("| case | µs/op | ops/s | × floor | aws-jwt-verify verifySync ÷ this |");
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const c of contenders) {
  const x = median(c.samples);
  console.log(`| ${c.name} | ${fmt(x)} | ${Math.round(1e6 / x).toLocaleString("en-US")} | ${ratio(ratioOf(c, floorC))}× | ${(1 / ratioOf(c, awsC)).toFixed(1)}× |`);
}

const wasm = readFileSync(new URL("../dist/wasm/tokengate_wasm_bg.wasm", import.meta.url));
let gz;
try {
  gz = execFileSync("gzip", ["-9c"], { input: wasm, maxBuffer: 1 << 24 }).length; // what the budget is read as
} catch {
  gz = gzipSync(wasm, { level: 9 }).length;
}
const uncachedRatio = ratioOf(find("tokengate verifySync, uncached (node:crypto)"), floorC);
const besidesUs = us("tokengate verifySync, uncached, RSA answered");
const hit = 1 / ratioOf(find("tokengate verifySync, cache hit (same"), awsC);
const hit2 = 1 / ratioOf(find("tokengate verifySync, cache hit (2"), awsC);
const check = (ok) => (ok ? "met" : "NOT MET");
console.log();
console.log(`uncached verifySync ÷ floor: ${uncachedRatio.toFixed(2)}× (target ≤ 1.5×: ${check(uncachedRatio <= 1.5)}); work besides RSA ${fmt(besidesUs)} µs`);
console.log(`cache hit vs aws-jwt-verify verifySync: same token ${hit.toFixed(0)}× faster, 2 tokens alternating ${hit2.toFixed(0)}× (target ≥ 100×: ${check(hit >= 100)} / ${check(hit2 >= 100)})`);
console.log(`.wasm: ${wasm.length} bytes, ${gz} bytes gzip -9 (${(gz / 1024).toFixed(1)} KiB; target ≤ 120 KB: ${check(gz <= 120_000)})`);
