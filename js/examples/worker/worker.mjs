// A Cloudflare Worker that protects an origin with Cognito client-credentials tokens:
// GET needs orders/read, anything else orders/write. Denials are answered at the edge with
// RFC 6750 headers; allowed requests go to the origin with the caller's client id added and
// the Authorization header removed.
import { CognitoVerifier } from "tokengate";

let verifier; // one per isolate: keys and verified tokens stay cached between requests

export default {
  async fetch(request, env) {
    verifier ??= CognitoVerifier.create({
      userPoolId: env.USER_POOL_ID,
      tokenUse: "access",
      clientId: env.CLIENT_IDS.split(","),
      jwksUri: env.JWKS_URI || undefined, // default: the pool's Cognito JWKS URL
      realm: "orders",
    });
    const url = new URL(request.url);
    const scope = request.method === "GET" || request.method === "HEAD" ? "orders/read" : "orders/write";
    const auth = await verifier.authorize(request, { scope, route: url.pathname });
    if (!auth.ok) {
      return new Response(auth.body, { status: auth.status, headers: auth.headers });
    }
    const headers = new Headers(request.headers);
    headers.delete("authorization");
    headers.set("x-client-id", auth.claims.client_id);
    return fetch(new URL(url.pathname + url.search, env.ORIGIN), {
      method: request.method,
      headers,
      body: request.body,
    });
  },
};
