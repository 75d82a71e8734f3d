// Writes the Envoy filter as an OCI image layout (image-spec v1.1 "Image Layout": `oci-layout`,
// `index.json`, `blobs/sha256/<hex>`), in the Wasm image format Istio's `WasmPlugin` and Envoy
// Gateway's `EnvoyExtensionPolicy` pull (the "oci" variant of solo-io's Wasm image spec, which
// both parse with the same code):
//
//   manifest  application/vnd.oci.image.manifest.v1+json
//   config    application/vnd.module.wasm.config.v1+json      runtime config (JSON, below)
//   layers    [0] application/vnd.module.wasm.config.v1+json  the same runtime config blob
//             [1] application/vnd.module.wasm.content.layer.v1+wasm  the module, uncompressed
//
// Exactly two layers: Istio and Envoy Gateway refuse an "oci" variant image with any other count,
// and find the module by the layer's media type. Nothing is fetched or pushed; the directory is
// what `oras cp --from-oci-layout`, `crane push` or `skopeo copy oci:` take.
//
//   node scripts/lib/oci-layout.mjs --wasm FILE --out DIR --version V [--source URL]
//        [--revision SHA] [--created ISO-8601] [--title NAME]
//
// Prints a JSON summary (manifest digest, tag, sizes). Output depends only on the inputs, so the
// same commit gives the same manifest digest.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const MEDIA_TYPES = Object.freeze({
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  wasmConfig: "application/vnd.module.wasm.config.v1+json",
  wasmLayer: "application/vnd.module.wasm.content.layer.v1+wasm",
});

/** The filter's proxy-wasm ABI, as its `proxy_abi_version_*` export names it. */
export const ABI_EXPORT = "proxy_abi_version_0_2_1";
/** The root id the filter's examples configure (any root id reaches the same root context). */
export const ROOT_ID = "tokengate";

/**
 * The layout's files as `path → bytes`, and the manifest's descriptor.
 * `wasm`: the module bytes; `version`: the tag (and `org.opencontainers.image.version`).
 */
export function buildLayout({ wasm, version, source, revision, created, title = "tokengate_proxy.wasm", description }) {
  if (!(wasm instanceof Uint8Array) || wasm.length < 8 || wasm[0] !== 0 || wasm[1] !== 0x61 || wasm[2] !== 0x73 || wasm[3] !== 0x6d) {
    throw new Error("not a WebAssembly module (no \\0asm magic)");
  }
  if (typeof version !== "string" || !/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(version)) {
    throw new Error(`version ${JSON.stringify(version)} is not a valid OCI tag`);
  }
  const files = new Map();
  const blob = (bytes, mediaType, annotations) => {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    files.set(`blobs/sha256/${digest.slice(7)}`, bytes);
    return { mediaType, digest, size: bytes.length, ...(annotations ? { annotations } : {}) };
  };
  // The runtime config of the spec: the runtime type, its ABI versions, the root ids.
  const runtimeConfig = Buffer.from(
    JSON.stringify({ type: "envoy_proxy", abiVersions: [ABI_EXPORT], config: { rootIds: [ROOT_ID] } }),
  );
  const config = blob(runtimeConfig, MEDIA_TYPES.wasmConfig);
  const layers = [
    { ...config, annotations: { "org.opencontainers.image.title": "runtime-config.json" } },
    blob(Buffer.from(wasm), MEDIA_TYPES.wasmLayer, { "org.opencontainers.image.title": title }),
  ];
  const annotations = {
    "module.wasm.runtime/type": "envoy_proxy",
    "module.wasm.runtime/abi_version": ABI_EXPORT,
    "org.opencontainers.image.title": "tokengate-proxy",
    "org.opencontainers.image.description":
      description ?? "tokengate Envoy filter (proxy-wasm): OAuth2 client-credentials access tokens checked at the edge",
    "org.opencontainers.image.version": version,
    "org.opencontainers.image.licenses": "Apache-2.0",
    ...(source ? { "org.opencontainers.image.source": source } : {}),
    ...(revision ? { "org.opencontainers.image.revision": revision } : {}),
    ...(created ? { "org.opencontainers.image.created": created } : {}),
  };
  const manifestBytes = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config, layers, annotations }, null, 2) + "\n",
  );
  const manifest = blob(manifestBytes, MEDIA_TYPES.manifest);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [{ ...manifest, annotations: { "org.opencontainers.image.ref.name": version } }],
  };
  files.set("oci-layout", Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" }) + "\n"));
  files.set("index.json", Buffer.from(JSON.stringify(index, null, 2) + "\n"));
  return { files, manifest, tag: version };
}

/** Writes the layout into `dir`, which must not exist or be empty. */
export function writeLayout(dir, files) {
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new Error(`${dir} is not empty`);
  for (const [path, bytes] of files) {
    const full = join(dir, path);
    mkdirSync(join(full, ".."), { recursive: true });
    writeFileSync(full, bytes, { mode: 0o644 });
  }
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (!key.startsWith("--") || i + 1 >= argv.length) throw new Error(`bad argument ${key}`);
    out[key.slice(2)] = argv[i + 1];
  }
  for (const need of ["wasm", "out", "version"]) if (!out[need]) throw new Error(`--${need} is required`);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const args = parseArgs(process.argv.slice(2));
    const wasm = readFileSync(args.wasm);
    const exported = WebAssembly.Module.exports(new WebAssembly.Module(wasm)).map((e) => e.name);
    if (!exported.includes(ABI_EXPORT)) throw new Error(`${args.wasm} does not export ${ABI_EXPORT}`);
    const { files, manifest, tag } = buildLayout({ ...args, wasm });
    writeLayout(args.out, files);
    process.stdout.write(JSON.stringify({ tag, manifestDigest: manifest.digest, manifestSize: manifest.size, wasmSize: wasm.length }) + "\n");
  } catch (e) {
    process.stderr.write(`oci-layout: ${e.message}\n`);
    process.exitCode = 1;
  }
}
