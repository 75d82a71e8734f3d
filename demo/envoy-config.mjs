// Writes the demo's Envoy bootstrap (JSON, which Envoy reads as YAML): a plain listener with the
// tokengate filter in front of the origin, and a cluster to the issuer that the filter fetches
// the JWKS and the policy feed through. The filter's configuration is demo/gate-config.mjs (from
// demo/policy.json), the same document the worker loads.
//
// With --certs (demo/certs.sh), two mTLS listeners that require a client certificate from the
// demo CA (the stand-in for an IAM Roles Anywhere trust anchor):
//   --mtls-listen   the same filter and routes: the filter reads the client certificate from the
//                   connection (client_identities pins, the cnf.x5t#S256 binding);
//   --token-listen  the issuer's token and revocation endpoints only, no filter: Envoy passes the
//                   verified certificate on in x-forwarded-client-cert (SANITIZE_SET: a client's
//                   own copy is dropped), which the issuer trusts for tls_client_auth clients.
//
//   node demo/envoy-config.mjs --issuer http://127.0.0.1:P --iss ISSUER --listen PORT \
//        --admin PORT --origin http://127.0.0.1:P --wasm target/tokengate_proxy.opt.wasm \
//        [--certs DIR --mtls-listen PORT --token-listen PORT] > envoy.json
// --issuer is where the issuer server listens (the JWKS cluster); --iss the tokens' `iss`.
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gateConfig } from "./gate-config.mjs";

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || process.argv[i + 1] === undefined) throw new Error(`envoy-config: --${name} is required`);
  return process.argv[i + 1];
};
const has = (name) => process.argv.includes(`--${name}`);
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

const router = { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } };
const tokengate = {
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
};

/** An HTTP connection manager: `routes` of one virtual host, then `filters`, then the router. */
const httpManager = (statPrefix, routes, filters, extra = {}) => ({
  name: "envoy.filters.network.http_connection_manager",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    stat_prefix: statPrefix,
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: "UNESCAPE_AND_REDIRECT",
    route_config: { virtual_hosts: [{ name: statPrefix, domains: ["*"], routes }] },
    http_filters: [...filters, router],
    ...extra,
  },
});

const toOrigin = [{ match: { prefix: "/" }, route: { cluster: "origin", timeout: "5s" } }];
const listener = (name, port, chain) => ({
  name,
  address: { socket_address: { address: "127.0.0.1", port_value: Number(port) } },
  filter_chains: [chain],
});

const listeners = [listener("edge", arg("listen"), { filters: [httpManager("edge", toOrigin, [tokengate])] })];

if (has("certs")) {
  const certs = resolve(arg("certs"));
  const pem = (file) => ({ inline_string: readFileSync(join(certs, file), "utf8") });
  // TLS that requires a client certificate issued by the demo CA (Envoy checks the chain and
  // the validity period; the filter and the issuer look at what the certificate says).
  const mtls = {
    name: "envoy.transport_sockets.tls",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
      require_client_certificate: true,
      common_tls_context: {
        tls_certificates: [{ certificate_chain: pem("server.pem"), private_key: pem("server-key.pem") }],
        validation_context: { trusted_ca: pem("ca.pem") },
      },
    },
  };
  listeners.push(
    listener("edge_mtls", arg("mtls-listen"), {
      transport_socket: mtls,
      filters: [httpManager("edge_mtls", toOrigin, [tokengate])],
    }),
  );
  const { pool } = JSON.parse(readFileSync(new URL("./policy.json", import.meta.url), "utf8"));
  const issuerOnly = ["oauth2/token", "oauth2/revoke"].map((path) => ({
    match: { path: `/${pool}/${path}` },
    route: { cluster: "issuer", timeout: "5s" },
  }));
  listeners.push(
    listener("token_mtls", arg("token-listen"), {
      transport_socket: mtls,
      filters: [
        httpManager(
          "token_mtls",
          [...issuerOnly, { match: { prefix: "/" }, direct_response: { status: 404 } }],
          [],
          // RFC 8705 at the issuer: the verified leaf, URL-encoded PEM, in XFCC's Cert.
          { forward_client_cert_details: "SANITIZE_SET", set_current_client_cert_details: { cert: true } },
        ),
      ],
    }),
  );
}

const bootstrap = {
  admin: { address: { socket_address: { address: "127.0.0.1", port_value: Number(arg("admin")) } } },
  static_resources: {
    listeners,
    clusters: [cluster("origin", origin), cluster("issuer", issuer)],
  },
};

process.stdout.write(JSON.stringify(bootstrap, null, 1) + "\n");
