// The demo's Cloudflare Worker: the sample worker (js/examples/worker/worker.mjs) plus the two
// parts of the demo's edge policy (demo/policy.json) that the sample does not take from its
// environment, so that it can be asked exactly what Envoy is asked:
//   LEEWAY_S             clock leeway for exp/nbf/iat (the package's `leewaySeconds` option)
//   REVOKED_CLIENT_IDS   revoked client ids (the package's `revocation` option) → token_revoked
//   RATE_PER_S, RATE_BURST  a per-client token bucket after verification → 429 rate_limited
//     (in this isolate; on Cloudflare a rate-limiting binding or rule would do this)
// As in the sample: GET/HEAD need orders/read, anything else orders/write; denials are answered
// here with RFC 6750 headers; allowed requests go to ORIGIN without Authorization and with the
// caller's client id and scopes added (the header names Envoy's filter forwards with).
import { CognitoVerifier } from "tokengate";

let verifier; // one per isolate: keys and verified tokens stay cached between requests
const buckets = new Map(); // client_id -> { tokens, at }

const list = (s) => (s ? s.split(",").map((x) => x.trim()).filter(Boolean) : []);

function rateLimited(clientId, env) {
  const perS = Number(env.RATE_PER_S);
  const burst = Number(env.RATE_BURST);
  if (!(perS > 0) || !(burst > 0)) return 0;
  const now = Date.now() / 1000;
  const b = buckets.get(clientId) ?? { tokens: burst, at: now };
  b.tokens = Math.min(burst, b.tokens + (now - b.at) * perS);
  b.at = now;
  buckets.set(clientId, b);
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return Math.max(1, Math.ceil((1 - b.tokens) / perS)); // Retry-After, whole seconds
}

export default {
  async fetch(request, env) {
    verifier ??= CognitoVerifier.create({
      userPoolId: env.USER_POOL_ID,
      tokenUse: "access",
      clientId: list(env.CLIENT_IDS),
      jwksUri: env.JWKS_URI || undefined, // default: the pool's Cognito JWKS URL
      leewaySeconds: Number(env.LEEWAY_S || 0),
      realm: env.REALM || "orders",
      revocation: { clientIds: list(env.REVOKED_CLIENT_IDS) },
    });
    const url = new URL(request.url);
    const scope = request.method === "GET" || request.method === "HEAD" ? "orders/read" : "orders/write";
    const auth = await verifier.authorize(request, { scope, route: url.pathname });
    if (!auth.ok) {
      return new Response(auth.body, { status: auth.status, headers: auth.headers });
    }
    const retryAfter = rateLimited(auth.claims.client_id, env);
    if (retryAfter) {
      const body = JSON.stringify({ error: "rate_limited", message: "too many requests for this client" });
      return new Response(body, {
        status: 429,
        headers: { "content-type": "application/json", "cache-control": "no-store", "retry-after": String(retryAfter) },
      });
    }
    const headers = new Headers(request.headers);
    headers.delete("authorization");
    headers.set("x-tokengate-client-id", auth.claims.client_id);
    headers.set("x-tokengate-scope", auth.claims.scope ?? "");
    headers.set("x-tokengate-edge", "worker");
    return fetch(new URL(url.pathname + url.search, env.ORIGIN), {
      method: request.method,
      headers,
      body: request.body,
    });
  },
};
