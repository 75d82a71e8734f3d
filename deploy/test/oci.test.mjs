// The filter's OCI image layout in dist/oci (scripts/lib/oci-layout.mjs via scripts/release.sh),
// checked without the code that wrote it: the layout's structure (image-spec v1.1 "OCI Image
// Layout"), every digest and size, the Wasm image format Istio and Envoy Gateway pull, and two
// real clients: skopeo reads (and verifies) the layout and pushes it to a registry on 127.0.0.1,
// from which the module is pulled back the way Istio's and Envoy Gateway's fetchers do.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { DIST, ROOT, VERSION, release } from "./helpers.mjs";
import { startRegistry } from "./helpers/registry.mjs";

const run = promisify(execFile);
const LAYOUT = join(DIST, "oci");
const WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm";
const WASM_CONFIG = "application/vnd.module.wasm.config.v1+json";
const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const INDEX = "application/vnd.oci.image.index.v1+json";
const sha256 = (b) => createHash("sha256").update(b).digest("hex");
const blob = (digest) => readFileSync(join(LAYOUT, "blobs", ...digest.split(":")));
const json = (b) => JSON.parse(Buffer.from(b).toString("utf8"));
const scratch = mkdtempSync(join(tmpdir(), "tokengate-oci-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

function manifestDescriptor() {
  const index = json(readFileSync(join(LAYOUT, "index.json")));
  return index.manifests[0];
}
function manifest() {
  return json(blob(manifestDescriptor().digest));
}

test("the layout has oci-layout 1.0.0, an index with one manifest tagged with the version", () => {
  assert.deepEqual(json(readFileSync(join(LAYOUT, "oci-layout"))), { imageLayoutVersion: "1.0.0" });
  const index = json(readFileSync(join(LAYOUT, "index.json")));
  assert.equal(index.schemaVersion, 2);
  assert.equal(index.mediaType, INDEX);
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0].mediaType, MANIFEST);
  assert.equal(index.manifests[0].annotations["org.opencontainers.image.ref.name"], VERSION);
  assert.deepEqual(readdirSync(LAYOUT).sort(), ["blobs", "index.json", "oci-layout"]);
  assert.deepEqual(readdirSync(join(LAYOUT, "blobs")), ["sha256"]);
});

test("every blob is named by its SHA-256, every descriptor's digest and size match, no blob is unreferenced", () => {
  const files = readdirSync(join(LAYOUT, "blobs/sha256"));
  for (const f of files) assert.equal(sha256(readFileSync(join(LAYOUT, "blobs/sha256", f))), f, `blob ${f}`);
  const m = manifest();
  const descriptors = [manifestDescriptor(), m.config, ...m.layers];
  for (const d of descriptors) {
    assert.match(d.digest, /^sha256:[a-f0-9]{64}$/);
    const bytes = blob(d.digest);
    assert.equal(bytes.length, d.size, `size of ${d.digest}`);
    assert.equal(`sha256:${sha256(bytes)}`, d.digest);
  }
  assert.deepEqual(new Set(files), new Set(descriptors.map((d) => d.digest.slice(7))));
});

test("the manifest is the Wasm image format: a runtime config, then the module, as two layers", () => {
  const m = manifest();
  assert.equal(m.schemaVersion, 2);
  assert.equal(m.mediaType, MANIFEST);
  assert.equal(m.config.mediaType, WASM_CONFIG);
  assert.deepEqual(m.layers.map((l) => l.mediaType), [WASM_CONFIG, WASM_LAYER]);
  assert.equal(m.layers[0].digest, m.config.digest, "the runtime config is also the first layer");
  const config = json(blob(m.config.digest));
  assert.deepEqual(config, { type: "envoy_proxy", abiVersions: ["proxy_abi_version_0_2_1"], config: { rootIds: ["tokengate"] } });
  assert.equal(m.annotations["module.wasm.runtime/type"], "envoy_proxy");
  assert.equal(m.annotations["module.wasm.runtime/abi_version"], "proxy_abi_version_0_2_1");
  assert.equal(m.annotations["org.opencontainers.image.version"], VERSION);
  assert.equal(m.annotations["org.opencontainers.image.licenses"], "Apache-2.0");
  assert.equal(m.layers[1].annotations["org.opencontainers.image.title"], "tokengate_proxy.wasm");
});

test("the module layer is dist/tokengate_proxy.wasm, the filter Envoy runs, with the published SHA-256", () => {
  const wasm = readFileSync(join(DIST, "tokengate_proxy.wasm"));
  const layer = blob(manifest().layers[1].digest);
  assert.ok(layer.equals(wasm));
  assert.equal(sha256(wasm), release().filter.sha256);
  assert.equal(readFileSync(join(DIST, "tokengate_proxy.wasm.sha256"), "utf8"), `${sha256(wasm)}  tokengate_proxy.wasm\n`);
  const module = new WebAssembly.Module(wasm);
  const exports = WebAssembly.Module.exports(module).map((e) => e.name);
  for (const e of ["proxy_abi_version_0_2_1", "proxy_on_request_headers", "proxy_on_configure"]) assert.ok(exports.includes(e), e);
  assert.deepEqual([...new Set(WebAssembly.Module.imports(module).map((i) => i.module))].sort(), ["env", "wasi_snapshot_preview1"]);
});

// What Istio's and Envoy Gateway's image fetchers (pkg/wasm/imagefetcher.go in each) do with a
// pulled image, step for step: a Docker manifest → compat; else a last layer of type
// tar+gzip → compat; else the "oci" variant: exactly two layers, the one of type
// application/vnd.module.wasm.content.layer.v1+wasm read raw.
function extractLikeIstio(manifestBytes, fetchBlob, manifestHexWanted) {
  const m = json(manifestBytes);
  if (manifestHexWanted && sha256(manifestBytes) !== manifestHexWanted) throw new Error("digest mismatch");
  if (m.mediaType === "application/vnd.docker.distribution.manifest.v2+json") throw new Error("docker image");
  const last = m.layers[m.layers.length - 1];
  if (last.mediaType === "application/vnd.oci.image.layer.v1.tar+gzip") throw new Error("compat image");
  if (m.layers.length !== 2) throw new Error(`number of layers must be 2 but got ${m.layers.length}`);
  const layer = m.layers.find((l) => l.mediaType === WASM_LAYER);
  if (!layer) throw new Error(`could not find the layer of type ${WASM_LAYER}`);
  return fetchBlob(layer.digest);
}

test("Istio's and Envoy Gateway's extraction finds the module; the pinned sha256 is the manifest digest", () => {
  const d = manifestDescriptor();
  assert.equal(d.digest, release().oci.manifestDigest);
  const wasm = extractLikeIstio(blob(d.digest), blob, d.digest.slice(7));
  assert.ok(wasm.equals(readFileSync(join(DIST, "tokengate_proxy.wasm"))));
});

test("skopeo reads the layout, verifying each blob, and copies it with the same digest", async () => {
  const copy = join(scratch, "copy");
  await run("skopeo", ["--insecure-policy", "copy", "--preserve-digests", `oci:${LAYOUT}:${VERSION}`, `oci:${copy}:${VERSION}`], { timeout: 60_000 });
  const index = json(readFileSync(join(copy, "index.json")));
  assert.equal(index.manifests[0].digest, manifestDescriptor().digest);
  const raw = await run("skopeo", ["--insecure-policy", "inspect", "--raw", `oci:${LAYOUT}:${VERSION}`], { timeout: 30_000 });
  assert.equal(sha256(Buffer.from(raw.stdout)), manifestDescriptor().digest.slice(7));
});

test("skopeo refuses a layout whose module blob was altered (the check above is real)", async () => {
  const bad = join(scratch, "tampered");
  cpSync(LAYOUT, bad, { recursive: true });
  const path = join(bad, "blobs", ...manifest().layers[1].digest.split(":"));
  const bytes = readFileSync(path);
  bytes[bytes.length - 1] ^= 1;
  writeFileSync(path, bytes);
  await assert.rejects(
    run("skopeo", ["--insecure-policy", "copy", `oci:${bad}:${VERSION}`, `oci:${join(scratch, "never")}:${VERSION}`], { timeout: 60_000 }),
  );
});

test("skopeo pushes the layout to a registry on 127.0.0.1, and the module pulls back as Istio pulls it", async () => {
  const registry = await startRegistry();
  try {
    const ref = `${registry.host}/tokengate/tokengate-proxy:${VERSION}`;
    await run(
      "skopeo",
      ["--insecure-policy", "copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-no-creds", `oci:${LAYOUT}:${VERSION}`, `docker://${ref}`],
      { timeout: 120_000 },
    );
    const base = `http://${registry.host}/v2/tokengate/tokengate-proxy`;
    const res = await fetch(`${base}/manifests/${VERSION}`, { headers: { accept: MANIFEST }, signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    const manifestBytes = Buffer.from(await res.arrayBuffer());
    assert.equal(res.headers.get("docker-content-digest"), release().oci.manifestDigest, "the registry holds the very manifest of dist/oci");
    const blobs = new Map();
    for (const l of json(manifestBytes).layers) {
      const b = await fetch(`${base}/blobs/${l.digest}`, { signal: AbortSignal.timeout(10_000) });
      blobs.set(l.digest, Buffer.from(await b.arrayBuffer()));
    }
    const wasm = extractLikeIstio(manifestBytes, (d) => blobs.get(d), release().oci.manifestDigest.slice(7));
    assert.ok(wasm.equals(readFileSync(join(DIST, "tokengate_proxy.wasm"))));
  } finally {
    await registry.close();
  }
});

test("the layout writer is deterministic and refuses what is not a Wasm module or not a tag", async () => {
  const { buildLayout } = await import(join(ROOT, "scripts/lib/oci-layout.mjs"));
  const wasm = readFileSync(join(DIST, "tokengate_proxy.wasm"));
  const a = buildLayout({ wasm, version: "1.2.3", source: "https://example.invalid/x", created: "2026-01-01T00:00:00Z" });
  const b = buildLayout({ wasm, version: "1.2.3", source: "https://example.invalid/x", created: "2026-01-01T00:00:00Z" });
  assert.equal(a.manifest.digest, b.manifest.digest);
  assert.throws(() => buildLayout({ wasm: Buffer.from("not wasm at all"), version: "1.2.3" }), /magic/);
  assert.throws(() => buildLayout({ wasm, version: "1.2.3/../x" }), /tag/);
  assert.ok(existsSync(join(DIST, "oci/index.json")));
});
