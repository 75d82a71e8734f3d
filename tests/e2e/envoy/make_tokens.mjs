// Signs RS256 test tokens with a fixed TEST key, one per line, for the wrk benchmark.
// node make_tokens.mjs <pem> <kid> <iss> <count> <clients> <out> [distinct-exp] [first-index]
// Tokens i = first-index … first-index + count - 1: pools made with other first indexes share
// no token (their jti and, with distinct-exp, their exp differ).
import { createPrivateKey, sign } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const [pem, kid, iss, count, clients, out, distinct, firstIndex] = process.argv.slice(2);
const first = Number(firstIndex || 0);
const key = createPrivateKey(readFileSync(pem));
const b64 = (b) => Buffer.from(b).toString("base64url");
const now = Math.floor(Date.now() / 1000);
const header = b64(JSON.stringify({ kid, alg: "RS256" }));
const ids = clients.split(",");
const lines = [];
for (let i = first; i < first + Number(count); i++) {
  const client = ids[i % ids.length];
  // Distinct exp per token: a cache that evicts the soonest-expiring entry then behaves like
  // FIFO over the pool, so a pool larger than the cache never hits.
  const exp = now + 3600 + (distinct ? i : 0);
  const claims = { sub: client, client_id: client, token_use: "access", scope: "orders/read",
                   iss, iat: now - 5, exp, jti: `bench-${i}` };
  const input = `${header}.${b64(JSON.stringify(claims))}`;
  lines.push(`${input}.${b64(sign("sha256", Buffer.from(input), key))}`);
}
writeFileSync(out, lines.join("\n") + "\n");
