// npm run bench (also run by scripts/bench.sh): tokengate against aws-jwt-verify and jose on a
// Cognito-shaped RS256 access token with a 2-key JWKS, all in one process and one run.
// Rounds are interleaved (every contender runs in every round) and each figure is the median
// of the rounds, so background load hits all contenders alike. Never used as a timed test.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { CognitoJwtVerifier } from "aws-jwt-verify";
import { jwtVerify, createLocalJWKSet } from "jose";
import { CognitoVerifier } from "../src/node.mjs";
import * as f from "../test/helpers/fixtures.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS || 15);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS || 60);

const token = f.signToken(f.cognitoClaims());
// A second client's token, so one cache-hit row alternates tokens (no same-string shortcut).
const token2 = f.signToken(f.cognitoClaims({ jti: "0b2f7c1e-5d4a-4c3b-9e8f-7a6b5c4d3e2f" }), { key: "rsa-b" });
const jwks = f.jwks("rsa-a", "rsa-b");
const base = { userPoolId: f.POOL_ID, tokenUse: "access", clientId: f.CLIENT_ID, jwks };

const aws = CognitoJwtVerifier.create({ userPoolId: f.POOL_ID, tokenUse: "access", clientId: f.CLIENT_ID });
aws.cacheJwks(jwks);
const joseKeys = createLocalJWKSet(jwks);
const uncached = CognitoVerifier.create({ ...base, cache: false });
const cached = CognitoVerifier.create(base);
const pure = CognitoVerifier.create({ ...base, cache: false, crypto: "wasm" });
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

let flip = false;
// Each contender verifies the same token and checks the answer, so nothing is optimised away.
const contenders = [
  { name: "aws-jwt-verify verifySync", sync: () => aws.verifySync(token) },
  { name: "aws-jwt-verify verify (async)", async: () => aws.verify(token) },
  { name: "jose jwtVerify (async)", async: async () => (await jwtVerify(token, joseKeys, { issuer: f.ISSUER, algorithms: ["RS256"] })).payload },
  { name: "tokengate verifySync, uncached (node:crypto)", sync: () => uncached.verifySync(token) },
  { name: "tokengate verify (async), uncached", async: () => uncached.verify(token) },
  { name: "tokengate verifySync, cache hit (2 tokens alternating)", sync: () => cached.verifySync((flip = !flip) ? token : token2) },
  { name: "tokengate verifySync, cache hit (same token)", sync: () => cached.verifySync(token) },
  { name: "tokengate decideSync (routes, whole request), cache hit", sync: () => routed.decideSync(facts).claims },
  { name: "tokengate verifySync, uncached, pure wasm", sync: () => pure.verifySync(token), slow: true },
];

async function round(c) {
  const budget = c.slow ? ROUND_MS / 2 : ROUND_MS;
  let n = 0;
  const start = process.hrtime.bigint();
  const stop = start + BigInt(budget * 1e6);
  if (c.sync) {
    for (;;) {
      for (let i = 0; i < 64; i++) if (c.sync().client_id !== f.CLIENT_ID) throw new Error(c.name);
      n += 64;
      if (process.hrtime.bigint() >= stop) break;
    }
  } else {
    for (;;) {
      for (let i = 0; i < 16; i++) if ((await c.async()).client_id !== f.CLIENT_ID) throw new Error(c.name);
      n += 16;
      if (process.hrtime.bigint() >= stop) break;
    }
  }
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

for (const c of contenders) {
  c.samples = [];
  await round(c); // warm-up (JIT, wasm tier-up, key import)
}
for (let r = 0; r < ROUNDS; r++) for (const c of contenders) c.samples.push(await round(c));

const wasm = readFileSync(new URL("../dist/wasm/tokengate_wasm_bg.wasm", import.meta.url));
const gz = gzipSync(wasm, { level: 9 }).length;
const awsUs = median(contenders[0].samples);
const fmt = (us) => (us < 10 ? us.toFixed(2) : us.toFixed(1));

console.log(`tokengate bench: node ${process.version}, ${ROUNDS} interleaved rounds of ${ROUND_MS} ms, median µs/op`);
console.log(`token: Cognito RS256 access token (${token.length} chars), JWKS with 2 RSA-2048 keys\n`);
console.log("| case | µs/op | ops/s | aws-jwt-verify verifySync ÷ this |");
console.log("| --- | ---: | ---: | ---: |");
for (const c of contenders) {
  const us = median(c.samples);
  console.log(`| ${c.name} | ${fmt(us)} | ${Math.round(1e6 / us).toLocaleString("en-US")} | ${(awsUs / us).toFixed(2)}× |`);
}
const us = (name) => median(contenders.find((c) => c.name.startsWith(name)).samples);
const uncachedUs = us("tokengate verifySync, uncached (node:crypto)");
const hitUs = us("tokengate verifySync, cache hit (2 tokens");
console.log(`\n.wasm: ${wasm.length} bytes, ${gz} bytes gzipped (${(gz / 1024).toFixed(1)} KiB; budget 160 KiB, js/test/package.test.mjs)`);
console.log(`uncached verifySync vs aws-jwt-verify verifySync: ${fmt(uncachedUs)} vs ${fmt(awsUs)} µs -> ${uncachedUs <= awsUs ? "at or below" : "ABOVE"}`);
console.log(`cache hit (2 tokens alternating) vs aws-jwt-verify verifySync: ${(awsUs / hitUs).toFixed(1)}× faster (goal ≥ 30×)`);
console.log(`gzipped .wasm within budget: ${gz <= 160 * 1024 ? "yes" : "NO"}`);
