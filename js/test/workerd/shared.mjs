// A test-only worker: the gate configuration in GATE_CONFIG (remote JWKS and feed), answering
// with the decision and the feed's state, so a test can see what a cold isolate fetched.
import { JwtVerifier } from "tokengate";

let verifier; // per isolate

export default {
  async fetch(request, env) {
    verifier ??= JwtVerifier.fromConfig(env.GATE_CONFIG);
    const r = await verifier.authorize(request);
    return Response.json({ status: r.status, code: r.code, feed: verifier.feedState() });
  },
};
