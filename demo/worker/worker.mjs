// The demo's Cloudflare Worker: the same gate configuration as Envoy's filter
// (demo/gate-config.mjs, in the GATE_CONFIG binding) loaded with JwtVerifier.fromConfig(), so
// both edges are asked exactly the same thing: routes, scopes, leeway, revocation, the
// per-client rate limit (buckets in this isolate; on Cloudflare a rate-limiting binding would
// share them) and the forwarded claims all come from the core. The worker only moves bytes:
// denials go back as the core rendered them, allowed requests go to ORIGIN with the forwarded
// headers set (incoming copies removed) and, as configured, without Authorization.
import { JwtVerifier } from "tokengate";

let verifier; // one per isolate: keys and verified tokens stay cached between requests

export default {
  async fetch(request, env, ctx) {
    verifier ??= JwtVerifier.fromConfig(env.GATE_CONFIG);
    // waitUntil: JWKS and policy feed refreshes started here finish after the response.
    const auth = await verifier.authorize(request, { waitUntil: (p) => ctx.waitUntil(p) });
    if (!auth.ok) {
      return new Response(auth.body, { status: auth.status, headers: auth.headers });
    }
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    for (const name of verifier.removeHeaders) headers.delete(name); // a client never sets what the origin trusts
    if (auth.stripAuthorization) headers.delete("authorization");
    for (const [name, value] of Object.entries(auth.forward)) headers.set(name, value);
    headers.set("x-tokengate-edge", "worker");
    return fetch(new URL(url.pathname + url.search, env.ORIGIN), {
      method: request.method,
      headers,
      body: request.body,
    });
  },
};
