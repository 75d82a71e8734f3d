// The Istio example (deploy/istio/tokengate.yaml): each resource validated by the models of
// npm @kubernetes-models/istio (generated from Istio's CRD schemas), the plugin configuration
// parsed by the tokengate core itself, and the parts that must agree with each other checked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { WasmPlugin } from "@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin";
import { ServiceEntry } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry";
import { DestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule";
import { JwtVerifier } from "tokengate";
import { DEPLOY, VERSION, sharedConfig, withCluster, yamlDocuments } from "./helpers.mjs";

const docs = yamlDocuments(join(DEPLOY, "istio/tokengate.yaml"));
const byKind = (kind) => {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0];
};
const MODELS = { WasmPlugin, ServiceEntry, DestinationRule };

test("the file holds a WasmPlugin, a ServiceEntry and a DestinationRule, nothing else", () => {
  assert.deepEqual(docs.map((d) => d.kind).sort(), ["DestinationRule", "ServiceEntry", "WasmPlugin"]);
});

for (const kind of Object.keys(MODELS)) {
  test(`${kind} validates against Istio's schema (@kubernetes-models/istio)`, () => {
    const doc = byKind(kind);
    const model = new MODELS[kind](doc);
    model.validate();
    assert.equal(model.toJSON().apiVersion, doc.apiVersion, "apiVersion as the model serves it");
  });
}

test("the validator has teeth: a wrong phase, failStrategy or pull policy is refused", () => {
  const wp = byKind("WasmPlugin");
  for (const [field, value] of [["phase", "AUTHORIZE"], ["failStrategy", "FAIL_SOMETIMES"], ["imagePullPolicy", "Never"], ["priority", "high"]]) {
    assert.throws(() => new WasmPlugin({ ...wp, spec: { ...wp.spec, [field]: value } }).validate(), undefined, field);
  }
});

test("every WasmPlugin field is one Istio defines (the schema alone lets unknown fields through)", () => {
  // The fields of WasmPlugin.spec as the model's type declarations list them (Istio's API):
  // the block of "spec" up to "status", one level in.
  const model = fileURLToPath(import.meta.resolve("@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin"));
  const dts = readFileSync(model.replace(/\.js$/, ".d.ts"), "utf8");
  const spec = dts.slice(dts.indexOf('    "spec": {'), dts.indexOf('    "status"?: {'));
  const known = [...spec.matchAll(/^ {8}"([A-Za-z0-9]+)"\??:/gm)].map((m) => m[1]);
  assert.ok(known.includes("url") && known.includes("pluginConfig") && known.length > 10, known.join());
  for (const k of Object.keys(byKind("WasmPlugin").spec)) assert.ok(known.includes(k), `unknown WasmPlugin field ${k}`);
});

test("the image is the OCI one scripts/release.sh builds, at this release's version, failing closed", () => {
  const { spec } = byKind("WasmPlugin");
  const m = spec.url.match(/^oci:\/\/[^/]+\/(?:[^:@]+\/)?tokengate-proxy:([^:@/]+)$/);
  assert.ok(m, spec.url);
  assert.equal(m[1], VERSION, "bump the example's tag with the release");
  assert.equal(spec.failStrategy, "FAIL_CLOSE");
  assert.equal(spec.phase, "AUTHN");
  assert.equal(spec.pluginName, "tokengate");
  if (spec.sha256 !== undefined) assert.match(spec.sha256, /^[a-f0-9]{64}$/);
});

test("pluginConfig is a tokengate configuration the core accepts", () => {
  const { spec } = byKind("WasmPlugin");
  // fromConfig parses with the core's Config::from_json, the parser the filter runs at on_configure.
  assert.doesNotThrow(() => JwtVerifier.fromConfig(spec.pluginConfig));
  assert.throws(() => JwtVerifier.fromConfig({ ...spec.pluginConfig, rulez: [] }), /rulez: unknown field/);
});

test("pluginConfig is the shared configuration, with the JWKS cluster of the ServiceEntry", () => {
  const { spec } = byKind("WasmPlugin");
  const se = byKind("ServiceEntry").spec;
  const port = se.ports.find((p) => p.protocol === "HTTP");
  assert.ok(port, "an HTTP port for the filter's plain-HTTP JWKS calls");
  // Istio names the sidecar's cluster for a ServiceEntry host and port outbound|PORT||HOST.
  const cluster = `outbound|${port.number}||${se.hosts[0]}`;
  assert.deepEqual(spec.pluginConfig, withCluster(sharedConfig(), cluster));
  assert.equal(se.hosts[0], `cognito-idp.${spec.pluginConfig.providers[0].cognito_user_pool_id.split("_")[0]}.amazonaws.com`);
  assert.equal(port.targetPort, 443);
});

test("the DestinationRule originates TLS to the JWKS host on the port the filter uses", () => {
  const se = byKind("ServiceEntry").spec;
  const dr = byKind("DestinationRule").spec;
  assert.equal(dr.host, se.hosts[0]);
  const port = se.ports.find((p) => p.protocol === "HTTP");
  const setting = dr.trafficPolicy.portLevelSettings.find((s) => s.port.number === port.number);
  assert.equal(setting.tls.mode, "SIMPLE");
  assert.equal(setting.tls.sni, se.hosts[0]);
});

test("all three live in one namespace, where the WasmPlugin's workloads run", () => {
  const namespaces = new Set(docs.map((d) => d.metadata.namespace));
  assert.equal(namespaces.size, 1);
});
