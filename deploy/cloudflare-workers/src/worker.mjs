// tokengate in a Cloudflare Worker: the gate configuration (providers, routes, forwarded claims)
// is tokengate.json, the file the Envoy filter, Istio and Envoy Gateway load as well. Denials and
// requests whose path is not in normal form are answered here, by the core; allowed requests go
// to env.ORIGIN with the claims the configuration forwards and without the client's copies of
// those headers.
import { JwtVerifier } from "tokengate";
import config from "../tokengate.json";

let verifier; // one per isolate: keys and verified tokens stay cached between requests

export default {
  async fetch(request, env, ctx) {
    verifier ??= JwtVerifier.fromConfig(config);
    // waitUntil: JWKS and policy feed refreshes started by this request may finish after it.
    const auth = await verifier.authorize(request, { waitUntil: (p) => ctx.waitUntil(p) });
    if (!auth.ok) {
      return new Response(auth.body, { status: auth.status, headers: auth.headers });
    }
    const headers = new Headers(request.headers);
    for (const name of verifier.removeHeaders) headers.delete(name); // the origin trusts only what tokengate sets
    if (auth.stripAuthorization) headers.delete("authorization");
    for (const [name, value] of Object.entries(auth.forward)) headers.set(name, value);
    const url = new URL(request.url);
    return fetch(new URL(url.pathname + url.search, env.ORIGIN), {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
  },
};
