// The Envoy Gateway example (deploy/envoy-gateway/tokengate.yaml): each resource validated with
// ajv against deploy/test/schemas/envoy-gateway-v1.9.0.schema.json (the constraints of Envoy
// Gateway v1.9.0's EnvoyExtensionPolicy and EnvoyProxy CRDs, CEL rules included), the Wasm
// configuration parsed by the tokengate core, and the cluster the configuration names present
// in the bootstrap patch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv from "ajv";
import { JwtVerifier } from "tokengate";
import { DEPLOY, VERSION, sharedConfig, yamlDocuments } from "./helpers.mjs";

const schema = JSON.parse(readFileSync(join(DEPLOY, "test/schemas/envoy-gateway-v1.9.0.schema.json"), "utf8"));
const validate = new Ajv({ allErrors: true, strictTypes: false }).compile(schema);
const docs = yamlDocuments(join(DEPLOY, "envoy-gateway/tokengate.yaml"));
const byKind = (kind) => {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0];
};
const errors = (doc) => (validate(doc) ? [] : validate.errors.map((e) => `${e.instancePath} ${e.message}`));

test("the file holds an EnvoyExtensionPolicy and an EnvoyProxy", () => {
  assert.deepEqual(docs.map((d) => d.kind).sort(), ["EnvoyExtensionPolicy", "EnvoyProxy"]);
});

for (const kind of ["EnvoyExtensionPolicy", "EnvoyProxy"]) {
  test(`${kind} validates against Envoy Gateway v1.9.0's schema`, () => {
    assert.deepEqual(errors(byKind(kind)), []);
  });
}

test("the schema has teeth: the CRD's rules refuse broken variants of the policy", () => {
  const eep = byKind("EnvoyExtensionPolicy");
  const variant = (edit) => {
    const d = structuredClone(eep);
    edit(d.spec, d.spec.wasm[0]);
    return d;
  };
  const broken = {
    "no target": variant((s) => delete s.targetRefs),
    "targetRef and targetRefs": variant((s) => (s.targetRef = s.targetRefs[0])),
    "a target outside gateway.networking.k8s.io": variant((s) => (s.targetRefs[0].group = "apps")),
    "a Service as target": variant((s) => (s.targetRefs[0].kind = "Service")),
    "type Image without image": variant((s, w) => delete w.code.image),
    "type HTTP with an image": variant((s, w) => (w.code.type = "HTTP")),
    "an unknown code type": variant((s, w) => (w.code.type = "ConfigMap")),
    "a sha256 that is not 64 hex digits": variant((s, w) => (w.code.image.sha256 = "sha256:abc")),
    "a misspelt field": variant((s, w) => (w.failopen = true)),
    "a pull policy Envoy Gateway does not know": variant((s, w) => (w.code.pullPolicy = "Never")),
    "a pull secret that is not a Secret": variant((s, w) => (w.code.image.pullSecretRef = { kind: "ConfigMap", name: "x" })),
    "17 extensions": variant((s, w) => (s.wasm = Array(17).fill(w))),
  };
  for (const [what, doc] of Object.entries(broken)) assert.notDeepEqual(errors(doc), [], what);
  const proxy = structuredClone(byKind("EnvoyProxy"));
  proxy.spec.bootstrap.jsonPatches = [];
  assert.notDeepEqual(errors(proxy), [], "type JSONPatch with no patch");
  delete proxy.spec.bootstrap.type; // defaults to Replace, which needs value
  assert.notDeepEqual(errors(proxy), [], "type Replace (the default) without value");
});

test("the Wasm extension pulls this release's OCI image and fails closed", () => {
  const [wasm] = byKind("EnvoyExtensionPolicy").spec.wasm;
  assert.equal(wasm.code.type, "Image");
  const m = wasm.code.image.url.match(/^[^/]+\/(?:[^:@]+\/)?tokengate-proxy:([^:@/]+)$/);
  assert.ok(m, wasm.code.image.url);
  assert.equal(m[1], VERSION, "bump the example's tag with the release");
  assert.equal(wasm.failOpen, false);
  assert.equal(wasm.rootID, "tokengate");
});

test("the Wasm config is the shared configuration, and the core accepts it", () => {
  const [wasm] = byKind("EnvoyExtensionPolicy").spec.wasm;
  assert.deepEqual(wasm.config, sharedConfig());
  assert.doesNotThrow(() => JwtVerifier.fromConfig(wasm.config));
});

test("the bootstrap patch adds the cluster the configuration fetches keys from, with TLS to the JWKS host", () => {
  const [wasm] = byKind("EnvoyExtensionPolicy").spec.wasm;
  const provider = wasm.config.providers[0];
  const patches = byKind("EnvoyProxy").spec.bootstrap.jsonPatches;
  const added = patches.filter((p) => p.op === "add" && p.path === "/static_resources/clusters/-").map((p) => p.value);
  const cluster = added.find((c) => c.name === provider.jwks.cluster);
  assert.ok(cluster, `a static cluster named ${provider.jwks.cluster}`);
  const host = `cognito-idp.${provider.cognito_user_pool_id.split("_")[0]}.amazonaws.com`;
  assert.equal(cluster.load_assignment.cluster_name, cluster.name);
  const address = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  assert.deepEqual(address, { address: host, port_value: 443 });
  assert.equal(cluster.transport_socket.name, "envoy.transport_sockets.tls");
  assert.equal(cluster.transport_socket.typed_config.sni, host);
});
