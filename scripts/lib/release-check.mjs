// What scripts/release.sh checks before it builds anything, and what it checks in what it built:
//
//   node scripts/lib/release-check.mjs metadata [--publish]   one version everywhere, crate and npm
//                                                            metadata, CHANGELOG entry; prints the version
//   node scripts/lib/release-check.mjs notes VERSION          the CHANGELOG entry's text (release notes)
//   node scripts/lib/release-check.mjs npm-pack FILE.json     `npm pack --json` output: the file list
//                                                            holds every entry point, the types, the license
//
// Every check is a pure function of its inputs (exported for deploy/test/release-check.test.mjs);
// the command line only gathers the inputs. Problems are collected, not thrown one at a time, so
// one run names all of them.
import { execFileSync } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The crates that are published to crates.io; every other workspace member has `publish = false`. */
export const PUBLISHED_CRATES = ["tokengate-mont", "tokengate-json", "tokengate", "tokengate-cli"];

/** Keep a Changelog's section names (https://keepachangelog.com/en/1.1.0/). */
export const CHANGELOG_SECTIONS = ["Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"];

/** A repository URL that is still the placeholder: fine for a dry run, never for a publish. */
export const PLACEHOLDER_HOST = "example.invalid";

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/**
 * One version for every workspace crate, Cargo.lock, the npm package and its lockfiles.
 * `metadata` is `cargo metadata --no-deps` output; `lockedVersions` maps crate name → version
 * as Cargo.lock has it; `npm` holds the parsed package.json / package-lock.json files.
 * Returns { version, problems }.
 */
export function checkVersions({ metadata, lockedVersions, npm }) {
  const problems = [];
  const members = workspaceMembers(metadata);
  const versions = new Set(members.map((p) => p.version));
  const version = members.find((p) => p.name === "tokengate")?.version ?? members[0]?.version;
  if (versions.size !== 1) {
    problems.push(`workspace crates disagree on the version: ${members.map((p) => `${p.name} ${p.version}`).join(", ")}`);
  }
  if (!version || !SEMVER.test(version)) problems.push(`version ${JSON.stringify(version)} is not semver`);
  for (const p of members) {
    const locked = lockedVersions[p.name];
    if (locked !== undefined && locked !== p.version) {
      problems.push(`Cargo.lock has ${p.name} ${locked}, Cargo.toml ${p.version} (run cargo update -w)`);
    }
  }
  const pkg = npm.packageJson;
  if (pkg.version !== version) problems.push(`js/package.json version ${pkg.version} != ${version}`);
  if (npm.packageLock) {
    if (npm.packageLock.version !== version) problems.push(`js/package-lock.json version ${npm.packageLock.version} != ${version}`);
    const root = npm.packageLock.packages?.[""];
    if (root && root.version !== version) problems.push(`js/package-lock.json packages[""].version ${root.version} != ${version}`);
  }
  if (npm.deployLock) {
    const linked = npm.deployLock.packages?.["../js"];
    if (!linked) problems.push(`deploy/package-lock.json does not link ../js (the examples use the checkout's package)`);
    else if (linked.version !== version) problems.push(`deploy/package-lock.json has ../js at ${linked.version}, not ${version} (npm install in deploy/)`);
  }
  return { version, problems };
}

/**
 * What crates.io needs from each published crate, and that nothing else is published: license,
 * description, readme, repository, keywords (≤ 5, crates.io's form), categories (≤ 5), no
 * dependency that has only a path (cargo publish would refuse it), and a path dependency on a
 * workspace crate asks for this release's version of it.
 */
export function checkCrates({ metadata, version }) {
  const problems = [];
  const members = workspaceMembers(metadata);
  const names = new Set(members.map((p) => p.name));
  const published = members.filter((p) => p.publish === null).map((p) => p.name).sort();
  if (published.join() !== [...PUBLISHED_CRATES].sort().join()) {
    problems.push(`published crates are [${published.join(", ")}], expected [${PUBLISHED_CRATES.join(", ")}] (set publish = false on the others)`);
  }
  for (const p of members.filter((m) => PUBLISHED_CRATES.includes(m.name))) {
    const where = `crate ${p.name}`;
    for (const field of ["description", "license", "readme", "repository"]) {
      if (!p[field]) problems.push(`${where}: ${field} missing`);
    }
    if (!Array.isArray(p.keywords) || p.keywords.length === 0 || p.keywords.length > 5) {
      problems.push(`${where}: 1 to 5 keywords needed, has ${p.keywords?.length ?? 0}`);
    }
    for (const k of p.keywords ?? []) {
      if (!/^[a-zA-Z][a-zA-Z0-9_-]{0,19}$/.test(k)) problems.push(`${where}: keyword ${JSON.stringify(k)} is not in crates.io's form`);
    }
    if (!Array.isArray(p.categories) || p.categories.length === 0 || p.categories.length > 5) {
      problems.push(`${where}: 1 to 5 categories needed, has ${p.categories?.length ?? 0}`);
    }
    const isLib = p.targets.some((t) => t.kind.includes("lib"));
    if (isLib && !p.documentation) problems.push(`${where}: documentation (docs.rs URL) missing`);
    if (isLib && !p.metadata?.docs?.rs) problems.push(`${where}: [package.metadata.docs.rs] missing`);
    for (const d of p.dependencies) {
      if (d.kind === "dev" || !d.path) continue; // cargo strips path-only dev-dependencies itself
      if (d.req === "*") {
        problems.push(`${where}: dependency ${d.name} has a path and no version (cargo publish refuses it)`);
      } else if (names.has(d.name) && d.req !== `^${version}` && d.req !== `=${version}`) {
        problems.push(`${where}: dependency ${d.name} asks for ${d.req}, this release is ${version}`);
      }
    }
  }
  return problems;
}

/**
 * The npm package's own metadata: license as the crates, a repository field that provenance
 * (`npm publish --provenance`) can match against the source repository, `files` and `exports`.
 */
export function checkNpmMetadata({ packageJson, repository, license, publish }) {
  const problems = [];
  const pkg = packageJson;
  if (pkg.name !== "tokengate") problems.push(`js/package.json name ${pkg.name} != tokengate`);
  if (pkg.private) problems.push("js/package.json is private");
  if (pkg.license !== license) problems.push(`js/package.json license ${pkg.license} != ${license} (the crates')`);
  const repo = pkg.repository;
  const want = `git+${repository.replace(/\/$/, "")}.git`;
  if (!repo || typeof repo !== "object") {
    problems.push(`js/package.json repository missing: {"type": "git", "url": "${want}", "directory": "js"}`);
  } else {
    if (repo.type !== "git") problems.push(`js/package.json repository.type ${repo.type} != git`);
    if (repo.url !== want) problems.push(`js/package.json repository.url ${repo.url} != ${want} (the workspace repository)`);
    if (repo.directory !== "js") problems.push(`js/package.json repository.directory ${repo.directory} != js`);
  }
  if (publish && repository.includes(PLACEHOLDER_HOST)) {
    problems.push(`the repository is still ${repository}: set [workspace.package] repository and js/package.json repository before publishing`);
  }
  if (!pkg.exports?.["."]) problems.push("js/package.json exports has no \".\" entry");
  if (!Array.isArray(pkg.files)) problems.push("js/package.json files missing");
  if (!pkg.types) problems.push("js/package.json types missing");
  if (!pkg.engines?.node) problems.push("js/package.json engines.node missing");
  return problems;
}

/** Every file the package.json names (main, module, types, each exports target) is in the tarball. */
export function checkPackedFiles({ packageJson, files }) {
  const problems = [];
  const have = new Set(files);
  const targets = new Set();
  for (const f of ["main", "module", "types"]) if (typeof packageJson[f] === "string") targets.add(packageJson[f]);
  collectTargets(packageJson.exports, targets);
  for (const t of targets) {
    const path = t.replace(/^\.\//, "");
    if (!have.has(path)) problems.push(`${t} is named in package.json but not in the tarball`);
  }
  for (const f of ["package.json", "README.md", "LICENSE", "index.d.ts", "dist/wasm/tokengate_wasm_bg.wasm"]) {
    if (!have.has(f)) problems.push(`${f} missing from the tarball`);
  }
  for (const f of files) {
    if (/^(test|bench|scripts|node_modules)\//.test(f) || f.endsWith(".tgz")) problems.push(`${f} should not be in the tarball`);
  }
  return problems;
}

/**
 * The CHANGELOG entry for `version`: `## [VERSION] - YYYY-MM-DD` (or `- Unreleased` while the
 * release is being prepared; never when publishing), Keep a Changelog section names only, and
 * some text. Returns { problems, notes }.
 */
export function checkChangelog({ text, version, publish }) {
  const problems = [];
  const lines = text.split("\n");
  if (!/^# Changelog\s*$/.test(lines[0] ?? "")) problems.push("CHANGELOG.md does not start with '# Changelog'");
  if (!lines.some((l) => /^## \[Unreleased\]\s*$/.test(l))) problems.push("CHANGELOG.md has no '## [Unreleased]' section");
  const esc = version.replace(/[.+]/g, "\\$&");
  const head = new RegExp(`^## \\[${esc}\\] - (\\d{4}-\\d{2}-\\d{2}|Unreleased)\\s*$`);
  const at = lines.findIndex((l) => head.test(l));
  if (at < 0) {
    problems.push(`CHANGELOG.md has no entry '## [${version}] - YYYY-MM-DD'`);
    return { problems, notes: "" };
  }
  const date = lines[at].match(head)[1];
  if (date === "Unreleased" && publish) problems.push(`CHANGELOG.md: write the release date in '## [${version}] - ${date}'`);
  if (date !== "Unreleased" && Number.isNaN(Date.parse(`${date}T00:00:00Z`))) problems.push(`CHANGELOG.md: ${date} is not a date`);
  let end = lines.findIndex((l, i) => i > at && /^## /.test(l));
  if (end < 0) end = lines.length;
  const body = lines.slice(at + 1, end);
  for (const l of body) {
    const m = l.match(/^### (.*)$/);
    if (m && !CHANGELOG_SECTIONS.includes(m[1].trim())) {
      problems.push(`CHANGELOG.md [${version}]: section '${m[1]}' is not one of ${CHANGELOG_SECTIONS.join(", ")}`);
    }
  }
  if (!body.some((l) => /^\s*[-*] \S/.test(l))) problems.push(`CHANGELOG.md [${version}] lists no change`);
  const notes = body.join("\n").replace(/^\n+|\n+$/g, "") + "\n";
  return { problems, notes };
}

/** `name → version` of every [[package]] in a Cargo.lock. */
export function parseCargoLock(text) {
  const out = {};
  for (const block of text.split(/^\[\[package\]\]$/m).slice(1)) {
    const name = block.match(/^name = "([^"]+)"$/m)?.[1];
    const version = block.match(/^version = "([^"]+)"$/m)?.[1];
    // Registry packages carry `source`; the workspace's own do not.
    if (name && version && !/^source = /m.test(block)) out[name] = version;
  }
  return out;
}

function workspaceMembers(metadata) {
  const ids = new Set(metadata.workspace_members);
  return metadata.packages.filter((p) => ids.has(p.id));
}

function collectTargets(node, out) {
  if (typeof node === "string") out.add(node);
  else if (node && typeof node === "object") for (const v of Object.values(node)) collectTargets(v, out);
}

function readJson(path) {
  return JSON.parse(readFileSync(path, "utf8"));
}

function main(argv) {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const [cmd, ...rest] = argv;
  if (cmd === "metadata") {
    const publish = rest.includes("--publish");
    const metadata = JSON.parse(
      execFileSync("cargo", ["metadata", "--format-version", "1", "--no-deps", "--offline"], {
        cwd: root, encoding: "utf8", maxBuffer: 64 << 20,
      }),
    );
    const packageJson = readJson(join(root, "js/package.json"));
    const npm = {
      packageJson,
      packageLock: existsSync(join(root, "js/package-lock.json")) ? readJson(join(root, "js/package-lock.json")) : null,
      deployLock: existsSync(join(root, "deploy/package-lock.json")) ? readJson(join(root, "deploy/package-lock.json")) : null,
    };
    const lockedVersions = parseCargoLock(readFileSync(join(root, "Cargo.lock"), "utf8"));
    const { version, problems } = checkVersions({ metadata, lockedVersions, npm });
    problems.push(...checkCrates({ metadata, version }));
    const core = metadata.packages.find((p) => p.name === "tokengate");
    problems.push(...checkNpmMetadata({ packageJson, repository: core?.repository ?? "", license: core?.license, publish }));
    const license = readFileSync(join(root, "LICENSE"));
    for (const copy of ["js/LICENSE", "crates/tokengate-mont/LICENSE", "crates/tokengate-json/LICENSE", "crates/tokengate/LICENSE", "crates/tokengate-cli/LICENSE"]) {
      if (!existsSync(join(root, copy)) || !readFileSync(join(root, copy)).equals(license)) {
        problems.push(`${copy} is missing or differs from LICENSE`);
      }
    }
    const changelog = checkChangelog({ text: readFileSync(join(root, "CHANGELOG.md"), "utf8"), version, publish });
    problems.push(...changelog.problems);
    return finish(problems, version);
  }
  if (cmd === "notes") {
    const { notes, problems } = checkChangelog({ text: readFileSync(join(root, "CHANGELOG.md"), "utf8"), version: rest[0], publish: false });
    if (problems.length) return finish(problems, "");
    process.stdout.write(notes);
    return 0;
  }
  if (cmd === "npm-pack") {
    const out = readJson(rest[0]);
    const entry = Array.isArray(out) ? out[0] : Object.values(out)[0];
    const files = entry.files.map((f) => f.path);
    return finish(checkPackedFiles({ packageJson: readJson(join(root, "js/package.json")), files }), `${files.length} files`);
  }
  process.stderr.write("usage: release-check.mjs metadata [--publish] | notes VERSION | npm-pack FILE.json\n");
  return 2;
}

function finish(problems, ok) {
  if (problems.length) {
    for (const p of problems) process.stderr.write(`release-check: ${p}\n`);
    return 1;
  }
  process.stdout.write(`${ok}\n`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
