// Writes the demo's Envoy bootstrap (JSON, which Envoy reads as YAML): one listener with the
// tokengate filter in front of the origin, and a cluster to the issuer that the filter fetches
// the JWKS through. The filter's configuration is demo/gate-config.mjs (from demo/policy.json),
// the same document the worker loads.
//
//   node demo/envoy-config.mjs --issuer http://127.0.0.1:P --iss ISSUER --listen PORT \
//        --admin PORT --origin http://127.0.0.1:P --wasm target/tokengate_proxy.opt.wasm > envoy.json
// --issuer is where the issuer server listens (the JWKS cluster); --iss the tokens' `iss`.
import { resolve } from "node:path";
import { gateConfig } from "./gate-config.mjs";

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || process.argv[i + 1] === undefined) throw new Error(`envoy-config: --${name} is required`);
  return process.argv[i + 1];
};
const issuer = new URL(arg("issuer"));
const origin = new URL(arg("origin"));
const wasm = resolve(arg("wasm"));

const plugin = gateConfig({ iss: arg("iss"), issuerUrl: issuer.href });

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
