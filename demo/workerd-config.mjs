// Writes the workerd config (Cap'n Proto text) for the demo's worker and stages the files it
// embeds into --dir (capnp embeds paths relative to the config): demo/worker/worker.mjs and the
// npm package (its workerd entry under the module name "tokengate", every other file under its
// package path, the .wasm as a wasm module). Its gate configuration is demo/gate-config.mjs, the
// document Envoy's filter gets too.
//
//   node demo/workerd-config.mjs --dir DIR --port P --iss URL --jwks URL --origin URL
//   then: workerd serve DIR/config.capnp
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gateConfig } from "./gate-config.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || process.argv[i + 1] === undefined) throw new Error(`workerd-config: --${name} is required`);
  return process.argv[i + 1];
};
const dir = arg("dir");
const jwks = new URL(arg("jwks"));
// The same gate configuration Envoy's filter gets (demo/gate-config.mjs).
const gate = gateConfig({ iss: arg("iss"), issuerUrl: jwks.origin });
if (gate.providers[0].jwks.uri !== jwks.href) {
  throw new Error(`workerd-config: --jwks ${jwks.href} is not where the gate configuration fetches keys (${gate.providers[0].jwks.uri})`);
}

function stage(from, to) {
  mkdirSync(dirname(join(dir, to)), { recursive: true });
  copyFileSync(join(ROOT, from), join(dir, to));
  return to;
}

const pkgFiles = ["src/workerd.mjs", "src/core.mjs", "src/http.mjs", "src/subtle.mjs", "src/client.mjs", "dist/wasm/tokengate_wasm.js"];
const modules = [`(name = "worker.mjs", esModule = embed "${stage("demo/worker/worker.mjs", "worker.mjs")}")`];
for (const p of pkgFiles) {
  modules.push(`(name = "node_modules/tokengate/${p}", esModule = embed "${stage(`js/${p}`, `node_modules/tokengate/${p}`)}")`);
}
const wasm = "dist/wasm/tokengate_wasm_bg.wasm";
modules.push(`(name = "node_modules/tokengate/${wasm}", wasm = embed "${stage(`js/${wasm}`, `node_modules/tokengate/${wasm}`)}")`);
writeFileSync(join(dir, "tokengate.mjs"), 'export * from "./node_modules/tokengate/src/workerd.mjs";\n');
modules.push('(name = "tokengate", esModule = embed "tokengate.mjs")');

const text = (name, value) => `(name = "${name}", text = ${JSON.stringify(String(value))})`;
const bindings = [text("GATE_CONFIG", JSON.stringify(gate)), text("ORIGIN", arg("origin"))];

writeFileSync(
  join(dir, "config.capnp"),
  `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "orders-gateway", worker = .gateway),
    # The worker's fetch() reaches the issuer (JWKS) and the origin on 127.0.0.1 only.
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:${Number(arg("port"))}", http = (), service = "orders-gateway"),
  ],
);
const gateway :Workerd.Worker = (
  modules = [
    ${modules.join(",\n    ")}
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
  bindings = [
    ${bindings.join(",\n    ")}
  ],
);
`,
);
console.log(join(dir, "config.capnp"));
