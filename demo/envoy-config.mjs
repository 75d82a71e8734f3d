// Writes the demo's Envoy bootstrap (JSON, which Envoy reads as YAML): one listener with the
// tokengate filter in front of the origin, and a cluster to the issuer that the filter fetches
// the JWKS through. The policy comes from demo/policy.json.
//
//   node demo/envoy-config.mjs --issuer http://127.0.0.1:P --iss ISSUER --listen PORT \
//        --admin PORT --origin http://127.0.0.1:P --wasm target/tokengate_proxy.opt.wasm > envoy.json
// --issuer is where the issuer server listens (the JWKS cluster); --iss the tokens' `iss`.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || process.argv[i + 1] === undefined) throw new Error(`envoy-config: --${name} is required`);
  return process.argv[i + 1];
};
const policy = JSON.parse(readFileSync(new URL("./policy.json", import.meta.url), "utf8"));
const issuer = new URL(arg("issuer"));
const origin = new URL(arg("origin"));
const wasm = resolve(arg("wasm"));

const plugin = {
  providers: [
    {
      name: "demo-pool",
      issuer: arg("iss"),
      jwks: {
        cluster: "issuer",
        path: `/${policy.pool}/.well-known/jwks.json`,
        authority: issuer.host,
        timeout_ms: 2000,
      },
      token_use: policy.token_use,
      client_ids: policy.client_ids,
      algorithms: ["RS256"],
      leeway_s: policy.leeway_s,
    },
  ],
  rules: policy.rules,
  default: "deny",
  forward: policy.forward,
  mode: "enforce",
  realm: "tokengate-demo",
  rate_limit: policy.rate_limit,
  revocation: { jti: [], client_ids: policy.revoked_client_ids, issued_before: {} },
  // The origin gets the claims it needs as headers, never the token (as from the worker).
  strip_authorization: true,
};

const cluster = (name, url) => ({
  name,
  type: "STATIC",
  connect_timeout: "1s",
  load_assignment: {
    cluster_name: name,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: url.hostname, port_value: Number(url.port) } } } }] }],
  },
});

const bootstrap = {
  admin: { address: { socket_address: { address: "127.0.0.1", port_value: Number(arg("admin")) } } },
  static_resources: {
    listeners: [
      {
        name: "edge",
        address: { socket_address: { address: "127.0.0.1", port_value: Number(arg("listen")) } },
        filter_chains: [
          {
            filters: [
              {
                name: "envoy.filters.network.http_connection_manager",
                typed_config: {
                  "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                  stat_prefix: "edge",
                  normalize_path: true,
                  merge_slashes: true,
                  path_with_escaped_slashes_action: "UNESCAPE_AND_REDIRECT",
                  route_config: {
                    virtual_hosts: [{ name: "orders", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: "origin", timeout: "5s" } }] }],
                  },
                  http_filters: [
                    {
                      name: "envoy.filters.http.wasm",
                      typed_config: {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                        config: {
                          name: "tokengate",
                          root_id: "tokengate",
                          configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: JSON.stringify(plugin) },
                          vm_config: { vm_id: "tokengate", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: wasm } } },
                        },
                      },
                    },
                    { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
    clusters: [cluster("origin", origin), cluster("issuer", issuer)],
  },
};

process.stdout.write(JSON.stringify(bootstrap, null, 1) + "\n");
