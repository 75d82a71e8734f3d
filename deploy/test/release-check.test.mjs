// scripts/lib/release-check.mjs: each rule refuses what it should (synthetic inputs), and the
// real tree passes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT, VERSION } from "./helpers.mjs";

const lib = await import(join(ROOT, "scripts/lib/release-check.mjs"));
const { checkVersions, checkCrates, checkNpmMetadata, checkPackedFiles, checkChangelog, parseCargoLock } = lib;

function pkg(name, version, extra = {}) {
  return {
    id: `${name} ${version}`,
    name,
    version,
    publish: null,
    description: "d",
    license: "Apache-2.0",
    readme: "README.md",
    repository: "https://example.invalid/tokengate",
    documentation: "https://docs.rs/x",
    keywords: ["jwt"],
    categories: ["authentication"],
    metadata: { docs: { rs: { "all-features": true } } },
    targets: [{ kind: ["lib"] }],
    dependencies: [],
    ...extra,
  };
}
function metadata(packages) {
  return { packages, workspace_members: packages.map((p) => p.id) };
}
const goodNpm = (version = "1.2.3") => ({
  packageJson: { name: "tokengate", version },
  packageLock: { version, packages: { "": { version } } },
  deployLock: { packages: { "../js": { version } } },
});
const crates = (extra = {}) => [
  pkg("tokengate-mont", "1.2.3"),
  pkg("tokengate-json", "1.2.3"),
  pkg("tokengate", "1.2.3", {
    dependencies: [
      { name: "tokengate-mont", kind: null, req: "^1.2.3", path: "/x/crates/tokengate-mont" },
      { name: "tokengate-json", kind: null, req: "^1.2.3", path: "/x/crates/tokengate-json" },
    ],
  }),
  pkg("tokengate-cli", "1.2.3", {
    targets: [{ kind: ["bin"] }],
    dependencies: [{ name: "tokengate", kind: null, req: "^1.2.3", path: "/x/crates/tokengate" }],
    ...extra,
  }),
  pkg("tokengate-issuer", "1.2.3", { publish: [] }),
];

test("one version everywhere passes; any disagreement is named", () => {
  const ok = checkVersions({ metadata: metadata(crates()), lockedVersions: { tokengate: "1.2.3" }, npm: goodNpm() });
  assert.deepEqual(ok, { version: "1.2.3", problems: [] });
  const cases = {
    "a crate": { metadata: metadata([...crates(), pkg("other", "1.2.4", { publish: [] })]), lockedVersions: {}, npm: goodNpm() },
    "Cargo.lock": { metadata: metadata(crates()), lockedVersions: { tokengate: "1.2.2" }, npm: goodNpm() },
    "package.json": { metadata: metadata(crates()), lockedVersions: {}, npm: { ...goodNpm(), packageJson: { version: "1.2.4" } } },
    "package-lock.json": { metadata: metadata(crates()), lockedVersions: {}, npm: { ...goodNpm(), packageLock: { version: "1.2.3", packages: { "": { version: "1.0.0" } } } } },
    "deploy/package-lock.json": { metadata: metadata(crates()), lockedVersions: {}, npm: { ...goodNpm(), deployLock: { packages: { "../js": { version: "1.0.0" } } } } },
  };
  for (const [what, input] of Object.entries(cases)) {
    assert.equal(checkVersions(input).problems.length, 1, what);
  }
});

test("crate metadata: publishable set, required fields, keywords, path dependencies", () => {
  assert.deepEqual(checkCrates({ metadata: metadata(crates()), version: "1.2.3" }), []);
  const one = (list) => checkCrates({ metadata: metadata(list), version: "1.2.3" });
  assert.match(one(crates({ dependencies: [{ name: "tokengate", kind: null, req: "*", path: "/x" }] })).join(), /path and no version/);
  assert.match(one(crates({ dependencies: [{ name: "tokengate", kind: null, req: "^1.2.0", path: "/x" }] })).join(), /asks for \^1\.2\.0/);
  assert.deepEqual(one(crates({ dependencies: [{ name: "tokengate", kind: "dev", req: "*", path: "/x" }] })), [], "path-only dev-dependencies are stripped by cargo");
  assert.match(one(crates({ keywords: ["a", "b", "c", "d", "e", "f"] })).join(), /1 to 5 keywords/);
  assert.match(one(crates({ keywords: ["has space"] })).join(), /crates\.io's form/);
  assert.match(one(crates({ categories: [] })).join(), /categories/);
  assert.match(one(crates({ license: null })).join(), /license missing/);
  assert.match(one([...crates(), pkg("surprise", "1.2.3")]).join(), /published crates are/);
  const lib = crates();
  delete lib[2].metadata.docs;
  assert.match(one(lib).join(), /docs\.rs/);
});

test("npm metadata: a provenance-ready repository, the crates' license, and no placeholder when publishing", () => {
  const packageJson = {
    name: "tokengate",
    license: "Apache-2.0",
    repository: { type: "git", url: "git+https://example.invalid/tokengate.git", directory: "js" },
    exports: { ".": "./x.mjs" },
    files: [],
    types: "./index.d.ts",
    engines: { node: ">=20" },
  };
  const args = { packageJson, repository: "https://example.invalid/tokengate", license: "Apache-2.0", publish: false };
  assert.deepEqual(checkNpmMetadata(args), []);
  assert.match(checkNpmMetadata({ ...args, publish: true }).join(), /still https:\/\/example\.invalid/);
  assert.match(checkNpmMetadata({ ...args, packageJson: { ...packageJson, repository: undefined } }).join(), /repository missing/);
  assert.match(checkNpmMetadata({ ...args, packageJson: { ...packageJson, repository: { ...packageJson.repository, url: "https://elsewhere" } } }).join(), /repository\.url/);
  assert.match(checkNpmMetadata({ ...args, license: "MIT" }).join(), /license/);
  assert.deepEqual(checkNpmMetadata({ ...args, repository: "https://github.com/o/tokengate", packageJson: { ...packageJson, repository: { type: "git", url: "git+https://github.com/o/tokengate.git", directory: "js" } }, publish: true }), []);
});

test("packed files: every entry point package.json names is in the tarball, tests are not", () => {
  const packageJson = { main: "./dist/node.cjs", types: "./index.d.ts", exports: { ".": { node: { import: "./src/node.mjs", require: "./dist/node.cjs" }, default: "./src/browser.mjs" } } };
  const files = ["package.json", "README.md", "LICENSE", "index.d.ts", "dist/wasm/tokengate_wasm_bg.wasm", "dist/node.cjs", "src/node.mjs", "src/browser.mjs"];
  assert.deepEqual(checkPackedFiles({ packageJson, files }), []);
  assert.match(checkPackedFiles({ packageJson, files: files.filter((f) => f !== "src/browser.mjs") }).join(), /src\/browser\.mjs is named/);
  assert.match(checkPackedFiles({ packageJson, files: files.filter((f) => f !== "LICENSE") }).join(), /LICENSE missing/);
  assert.match(checkPackedFiles({ packageJson, files: [...files, "test/a.test.mjs"] }).join(), /should not be/);
});

test("CHANGELOG: an entry per version in Keep a Changelog form; a date before publishing", () => {
  const text = "# Changelog\n\n## [Unreleased]\n\n## [1.2.3] - 2026-12-24\n\n### Added\n\n- a thing\n\n## [1.2.2] - 2026-11-01\n\n### Fixed\n\n- b\n";
  assert.deepEqual(checkChangelog({ text, version: "1.2.3", publish: true }), { problems: [], notes: "### Added\n\n- a thing\n" });
  assert.match(checkChangelog({ text, version: "1.2.4", publish: false }).problems.join(), /no entry/);
  const unreleased = text.replace("2026-12-24", "Unreleased");
  assert.deepEqual(checkChangelog({ text: unreleased, version: "1.2.3", publish: false }).problems, []);
  assert.match(checkChangelog({ text: unreleased, version: "1.2.3", publish: true }).problems.join(), /release date/);
  assert.match(checkChangelog({ text: text.replace("### Added", "### New stuff"), version: "1.2.3", publish: false }).problems.join(), /not one of/);
  assert.match(checkChangelog({ text: text.replace("- a thing", "nothing"), version: "1.2.3", publish: false }).problems.join(), /lists no change/);
  assert.match(checkChangelog({ text: text.replace("## [Unreleased]\n", ""), version: "1.2.3", publish: false }).problems.join(), /Unreleased/);
});

test("Cargo.lock: only the workspace's own packages (no source) are read", () => {
  const lock = '[[package]]\nname = "tokengate"\nversion = "1.2.3"\n\n[[package]]\nname = "serde"\nversion = "1.0.0"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\n';
  assert.deepEqual(parseCargoLock(lock), { tokengate: "1.2.3" });
});

test("release.sh --publish checks its preconditions first, and a test run can never upload", () => {
  // TOKENGATE_RELEASE_NO_UPLOAD=1 stops --publish right after its preconditions, whatever they say.
  const env = { ...process.env, TOKENGATE_RELEASE_NO_UPLOAD: "1" };
  const run = (args) => spawnSync("bash", [join(ROOT, "scripts/release.sh"), ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 });
  const offline = run(["--publish", "--offline"]);
  assert.equal(offline.status, 2, offline.stderr);
  const stamp = existsSync(join(ROOT, "dist/release.json")) ? statSync(join(ROOT, "dist/release.json")).mtimeMs : null;
  const publish = run(["--publish"]);
  assert.equal(publish.status, 1, publish.stdout + publish.stderr);
  assert.doesNotMatch(publish.stdout, /cargo package|npm pack|Uploading|cargo publish -p/);
  assert.equal(existsSync(join(ROOT, "dist/release.json")) ? statSync(join(ROOT, "dist/release.json")).mtimeMs : null, stamp, "dist/ untouched");
  if (readFileSync(join(ROOT, "Cargo.toml"), "utf8").includes("example.invalid")) {
    // Today: the placeholder repository and the undated CHANGELOG entry stop it.
    assert.match(publish.stderr, /example\.invalid/);
    assert.match(publish.stderr, /release date/);
  }
});

test("this tree passes: one version, publishable metadata, a CHANGELOG entry", () => {
  const out = execFileSync(process.execPath, [join(ROOT, "scripts/lib/release-check.mjs"), "metadata"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  assert.equal(out.trim(), VERSION);
});
