// The docs a new user follows: every README's install section gives the registry form and the
// way from a checkout (at this version), every deployment form has a page, every relative link
// and anchor in those pages resolves, and the "tested with" table of docs/versioning.md names
// the versions the repository really pins.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { ROOT, VERSION } from "./helpers.mjs";

const read = (p) => readFileSync(join(ROOT, p), "utf8");
const [MAJOR, MINOR] = VERSION.split(".");
const CARGO_REQ = MAJOR === "0" ? `${MAJOR}.${MINOR}` : MAJOR;

function section(text, heading) {
  const at = text.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `no '${heading}'`);
  const rest = text.slice(at + heading.length + 2);
  const end = rest.search(/\n## /);
  return end < 0 ? rest : rest.slice(0, end);
}

const INSTALL = {
  "js/README.md": { heading: "## Install", registry: ["npm install tokengate"], checkout: ["scripts/build.sh", "npm install /path/to/tokengate/js", `dist/tokengate-${VERSION}.tgz`] },
  "crates/tokengate/README.md": { heading: "## Install", registry: [`tokengate = "${CARGO_REQ}"`], checkout: ['path = "/path/to/tokengate/crates/tokengate"', "git = "] },
  "crates/tokengate-cli/README.md": { heading: "## Install", registry: ["cargo install tokengate-cli"], checkout: ["cargo install --path crates/tokengate-cli", "cargo install --git"] },
  "crates/tokengate-proxy/README.md": { heading: "## Install", registry: ["tokengate_proxy.wasm.sha256", "OCI image"], checkout: ["scripts/build-proxy.sh", "scripts/release.sh --offline", `dist/oci:${VERSION}`] },
  "README.md": { heading: "## Install and deploy", registry: ["npm install tokengate", `tokengate = "${CARGO_REQ}"`, "cargo install tokengate-cli"], checkout: ["npm install /path/to/tokengate/js", "cargo install --path crates/tokengate-cli", "scripts/build.sh", "scripts/release.sh --offline"] },
};

for (const [file, want] of Object.entries(INSTALL)) {
  test(`${file}: the install section has the registry form and the way from a checkout, at ${VERSION}`, () => {
    const text = section(read(file), want.heading);
    for (const s of [...want.registry, ...want.checkout]) assert.ok(text.includes(s), `${file} ${want.heading} lacks ${s}`);
  });
}

test("the crates that are not published say how to run them from a checkout", () => {
  assert.match(read("crates/tokengate-issuer/README.md"), /cargo install --path crates\/tokengate-issuer/);
  assert.match(read("crates/tokengate-wasm/README.md"), /not published on its own/);
});

test("every deployment form has a page, and the index links them all", () => {
  const forms = ["envoy", "istio", "envoy-gateway", "cloudflare-workers", "node-express"];
  for (const f of forms) assert.ok(existsSync(join(ROOT, "docs/deploy", `${f}.md`)), f);
  const index = read("deploy/README.md") + section(read("README.md"), "## Install and deploy");
  for (const f of forms) assert.ok(index.includes(`docs/deploy/${f}.md`), f);
});

// GitHub's heading anchors: lower case, punctuation other than - and _ dropped, spaces → -.
const slug = (h) => h.trim().toLowerCase().replace(/[^\p{L}\p{N}\- _]/gu, "").replace(/ /g, "-");
const anchors = (text) => new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1].replace(/`/g, ""))));

function markdownFiles() {
  const docs = [];
  const walk = (d) => {
    for (const f of readdirSync(join(ROOT, d), { withFileTypes: true })) {
      if (f.isDirectory()) walk(join(d, f.name));
      else if (f.name.endsWith(".md")) docs.push(join(d, f.name));
    }
  };
  walk("docs");
  return [...docs, "deploy/README.md", "CHANGELOG.md", "README.md"];
}

test("every relative link (and #anchor) in docs/, deploy/README.md, CHANGELOG.md and README.md resolves", () => {
  for (const file of markdownFiles()) {
    const text = read(file);
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      const [path, anchor] = target.split("#");
      const resolved = path ? join(dirname(join(ROOT, file)), path) : join(ROOT, file);
      assert.ok(existsSync(resolved), `${file}: ${target} (${relative(ROOT, resolved)}) does not exist`);
      if (anchor && resolved.endsWith(".md")) {
        assert.ok(anchors(readFileSync(resolved, "utf8")).has(anchor), `${file}: no heading for #${anchor} in ${relative(ROOT, resolved)}`);
      }
    }
  }
});

test("every script the docs name exists", () => {
  for (const file of markdownFiles()) {
    for (const [name] of read(file).matchAll(/scripts\/[a-z0-9-]+\.(?:sh|mjs)|scripts\/lib\/[a-z0-9-]+\.mjs/g)) {
      assert.ok(existsSync(join(ROOT, name)), `${file}: ${name}`);
    }
  }
});

test("docs/versioning.md names the versions the repository pins and tests", () => {
  const doc = read("docs/versioning.md");
  const envoy = read("scripts/setup.sh").match(/^ENVOY_VERSION=(\S+)$/m)[1];
  const deployPkg = JSON.parse(read("deploy/package.json"));
  const deployLock = JSON.parse(read("deploy/package-lock.json"));
  const jsPkg = JSON.parse(read("js/package.json"));
  const rust = read("Cargo.toml").match(/^rust-version = "([^"]+)"$/m)[1];
  const pins = {
    Envoy: envoy,
    "wrangler": deployPkg.devDependencies.wrangler,
    "workerd (npm package tests)": jsPkg.devDependencies.workerd,
    "workerd (wrangler's)": deployLock.packages["node_modules/workerd"].version,
    Express: deployPkg.dependencies.express,
    "@kubernetes-models/istio": deployPkg.devDependencies["@kubernetes-models/istio"],
    Rust: rust,
    "Node engines": jsPkg.engines.node.replace(/^>=\s*/, ""),
    "compatibility_date": read("deploy/cloudflare-workers/wrangler.toml").match(/^compatibility_date = "([^"]+)"/m)[1],
  };
  for (const [what, version] of Object.entries(pins)) {
    const exact = new RegExp(`(^|[^0-9.])${version.replace(/[.]/g, "\\.")}($|[^0-9])`);
    assert.match(doc, exact, `${what} ${version} not in docs/versioning.md`);
  }
  assert.ok(doc.includes("v1.9.0"), "the Envoy Gateway version the schema transcribes");
  assert.ok(readdirSync(join(ROOT, "deploy/test/schemas")).some((f) => f.includes("v1.9.0")));
});
