// A Cloudflare Worker that protects an origin with Cognito client-credentials tokens:
// GET (and HEAD) need orders/read, anything else orders/write — the same rule list the Envoy
// filter takes. Denials (and requests whose path is not in normal form) are answered at the
// edge by the core; allowed requests go to the origin with the caller's client id added and
// the Authorization header removed.
import { CognitoVerifier } from "tokengate";

let verifier; // one per isolate: keys and verified tokens stay cached between requests

export default {
  async fetch(request, env, ctx) {
    verifier ??= CognitoVerifier.create({
      userPoolId: env.USER_POOL_ID,
      tokenUse: "access",
      clientId: env.CLIENT_IDS.split(","),
      jwksUri: env.JWKS_URI || undefined, // default: the pool's Cognito JWKS URL
      realm: "orders",
      routes: [
        { name: "read", match: { prefix: "/", methods: ["GET"] }, scopes: { all: ["orders/read"] } },
        { name: "write", match: { prefix: "/" }, scopes: { all: ["orders/write"] } },
      ],
      forward: { client_id: "x-client-id" },
    });
    // waitUntil: JWKS and policy feed refreshes started here finish after the response.
    const auth = await verifier.authorize(request, { waitUntil: (p) => ctx.waitUntil(p) });
    if (!auth.ok) {
      return new Response(auth.body, { status: auth.status, headers: auth.headers });
    }
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    headers.delete("authorization");
    for (const name of verifier.removeHeaders) headers.delete(name); // a client never sets what the origin trusts
    for (const [name, value] of Object.entries(auth.forward)) headers.set(name, value);
    return fetch(new URL(url.pathname + url.search, env.ORIGIN), {
      method: request.method,
      headers,
      body: request.body,
    });
  },
};
