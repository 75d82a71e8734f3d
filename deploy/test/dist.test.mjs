// What scripts/release.sh left in dist/: checksums over every file, and each registry artifact
// holding what its registry needs (no path dependencies in the .crate manifests, the npm
// tarball npm publish would upload, the release notes of this version).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { DIST, ROOT, VERSION, release } from "./helpers.mjs";

const tar = (args) => execFileSync("tar", args, { encoding: "utf8", timeout: 30_000, maxBuffer: 16 << 20 });

function walk(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [relative(DIST, p)];
  });
}

test("release.json names this version and files that exist", () => {
  const r = release();
  assert.equal(r.version, VERSION);
  const files = new Set(walk(DIST));
  for (const f of [...r.crates.map((c) => c.file), r.npm.file, r.filter.file, "oci/index.json", "RELEASE_NOTES.md"]) {
    assert.ok(files.has(f), `${f} in dist/`);
  }
  assert.deepEqual(r.crates.map((c) => c.name), ["tokengate-mont", "tokengate-json", "tokengate", "tokengate-cli"]);
  assert.match(r.oci.manifestDigest, /^sha256:[a-f0-9]{64}$/);
});

test("SHA256SUMS lists every file in dist/ (the OCI blobs too), each with its checksum", () => {
  const lines = readFileSync(join(DIST, "SHA256SUMS"), "utf8").trimEnd().split("\n");
  const listed = new Map(lines.map((l) => {
    const m = l.match(/^([a-f0-9]{64}) {2}(.+)$/);
    assert.ok(m, l);
    return [m[2], m[1]];
  }));
  const files = walk(DIST).filter((f) => f !== "SHA256SUMS").sort();
  assert.deepEqual([...listed.keys()].sort(), files);
  for (const [f, sum] of listed) assert.equal(createHash("sha256").update(readFileSync(join(DIST, f))).digest("hex"), sum, f);
});

for (const name of ["tokengate-mont", "tokengate-json", "tokengate", "tokengate-cli"]) {
  test(`${name}-${VERSION}.crate: this version, only registry dependencies, the library sources, README and LICENSE`, () => {
    const crate = join(DIST, `${name}-${VERSION}.crate`);
    const list = tar(["-tzf", crate]).trim().split("\n");
    for (const f of ["Cargo.toml", "Cargo.toml.orig", "README.md", "LICENSE", "Cargo.lock"]) assert.ok(list.includes(`${name}-${VERSION}/${f}`), f);
    assert.ok(!list.some((f) => /\/(tests|benches|examples)\//.test(f)), "no tests: they read the repository's tests/vectors");
    const manifest = tar(["-xzf", crate, "-O", `${name}-${VERSION}/Cargo.toml`]);
    assert.match(manifest, new RegExp(`^version = "${VERSION.replace(/\./g, "\\.")}"$`, "m"));
    // Every dependency table of the normalised manifest: a `path` there would be refused.
    for (const section of manifest.split(/^(?=\[)/m).filter((t) => /^\[(\S+\.)?(dev-|build-)?dependencies[.\]]/.test(t))) {
      assert.doesNotMatch(section, /^path = /m, `cargo publish would refuse a path dependency: ${section.split("\n")[0]}`);
    }
    assert.match(manifest, /^license = "Apache-2\.0"$/m);
    assert.match(manifest, /^repository = "/m);
    const license = tar(["-xzf", crate, "-O", `${name}-${VERSION}/LICENSE`]);
    assert.equal(license, readFileSync(join(ROOT, "LICENSE"), "utf8"));
    if (name === "tokengate-cli") {
      assert.match(manifest, new RegExp(`\\[dependencies\\.tokengate\\]\\nversion = "\\^?${VERSION.replace(/\./g, "\\.")}"`), "the CLI depends on this release of the core");
    }
    if (name === "tokengate") {
      assert.match(manifest, new RegExp(`\\[dependencies\\.tokengate-mont\\]\\nversion = "\\^?${VERSION.replace(/\./g, "\\.")}"`), "the core depends on this release of its RSA arithmetic");
      assert.match(manifest, new RegExp(`\\[dependencies\\.tokengate-json\\]\\nversion = "\\^?${VERSION.replace(/\./g, "\\.")}"`), "the core depends on this release of its JSON reader");
    }
  });
}

test("the npm tarball is what npm publish uploads: integrity, version, repository, license", () => {
  const r = release();
  const tgz = readFileSync(join(DIST, r.npm.file));
  assert.equal(`sha512-${createHash("sha512").update(tgz).digest("base64")}`, r.npm.integrity);
  const pkg = JSON.parse(tar(["-xzf", join(DIST, r.npm.file), "-O", "package/package.json"]));
  assert.equal(pkg.version, VERSION);
  assert.equal(pkg.repository.directory, "js");
  assert.equal(pkg.repository.url, `git+${r.repository}.git`);
  const list = tar(["-tzf", join(DIST, r.npm.file)]).trim().split("\n");
  assert.ok(list.includes("package/LICENSE"));
});

test("RELEASE_NOTES.md is this version's CHANGELOG entry", () => {
  const notes = readFileSync(join(DIST, "RELEASE_NOTES.md"), "utf8");
  const changelog = readFileSync(join(ROOT, "CHANGELOG.md"), "utf8");
  const at = changelog.indexOf(`## [${VERSION}]`);
  assert.ok(at >= 0);
  assert.ok(changelog.slice(at).includes(notes.trim()));
  assert.match(notes, /^### (Added|Changed|Deprecated|Removed|Fixed|Security)$/m);
});
