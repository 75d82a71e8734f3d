// The demo's one gate configuration (the format every tokengate host loads, documented in
// crates/tokengate/README.md): the Envoy filter takes it as its plugin configuration and the
// worker as JwtVerifier.fromConfig(); each host reads the key source it can fetch from
// (`cluster` + `path` in Envoy, `uri` in the worker), and nothing else differs.
import { createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";

const policy = JSON.parse(readFileSync(new URL("./policy.json", import.meta.url), "utf8"));
// The public half of the demo's feed signing key (a TEST key, demo/feed-signing-key.pem), as
// the issuer publishes it at /{pool}/edge-policy-keys.json.
const feedKey = {
  ...createPublicKey(readFileSync(new URL("./feed-signing-key.pem", import.meta.url))).export({ format: "jwk" }),
  kid: "demo-feed-1",
  alg: "ES256",
  use: "sig",
};

/** `iss`: the tokens' issuer; `issuerUrl`: where the local issuer serves its JWKS. */
export function gateConfig({ iss, issuerUrl }) {
  const issuer = new URL(issuerUrl);
  const path = `/${policy.pool}/.well-known/jwks.json`;
  return {
    providers: [
      {
        name: "demo-pool",
        issuer: iss,
        jwks: {
          cluster: "issuer",
          path,
          authority: issuer.host,
          uri: new URL(path, issuer).href,
          timeout_ms: 2000,
        },
        token_use: policy.token_use,
        client_ids: policy.client_ids,
        algorithms: ["RS256"],
        leeway_s: policy.leeway_s,
        // Workload identity: orders-batch's tokens pass only from the workload whose client
        // certificate says spiffe://demo/orders-batch (Envoy reads it from its mTLS listener's
        // connection; the worker gets none). Tokens bound with cnf.x5t#S256 (the issuer's
        // tls_client_auth clients) must come with that very certificate.
        client_identities: policy.client_identities,
        require_identity: policy.require_identity,
        mtls_binding: policy.mtls_binding,
      },
    ],
    rules: policy.rules,
    default: "deny",
    forward: policy.forward,
    mode: "enforce",
    realm: "tokengate-demo",
    rate_limit: policy.rate_limit,
    revocation: { jti: [], client_ids: policy.revoked_client_ids, issued_before: {} },
    // The origin gets the claims it needs as headers, never the token.
    strip_authorization: true,
    // Revocations and the allow-list, live: the issuer's signed policy feed, polled every
    // second (a fleet would poll a cached copy every 10 s or so: crates/tokengate/README.md).
    feed: {
      uri: new URL(`/${policy.pool}/edge-policy.json`, issuer).href,
      cluster: "issuer",
      path: `/${policy.pool}/edge-policy.json`,
      authority: issuer.host,
      keys: [feedKey],
      algorithms: ["ES256"],
      poll_s: 1,
      max_stale_s: 60,
    },
  };
}
