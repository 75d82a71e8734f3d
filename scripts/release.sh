#!/usr/bin/env bash
# Builds every release artifact into dist/ and checks that each registry would take it. A dry run
# by default: nothing leaves the machine.
#
#   scripts/release.sh              dry run: artifacts + checksums in dist/, cargo publish --dry-run
#   scripts/release.sh --offline    the same without asking crates.io anything (CI: scripts/test-release.sh)
#   scripts/release.sh --publish    after every check: cargo publish, npm publish, and the OCI push
#                                   when TOKENGATE_OCI_REPOSITORY is set (docs/releasing.md)
#   --out DIR                       instead of dist/
#
# dist/ after a run:
#   tokengate-mont-VERSION.crate, tokengate-json-VERSION.crate, tokengate-VERSION.crate,
#   tokengate-cli-VERSION.crate                             what cargo publish uploads (built and verified)
#   tokengate-VERSION.tgz                                   what npm publish uploads
#   tokengate_proxy.wasm, tokengate_proxy.wasm.sha256       the Envoy filter and its SHA-256
#   oci/                                                    the filter as an OCI image layout (Wasm image
#                                                           format Istio and Envoy Gateway pull), tag VERSION
#   RELEASE_NOTES.md                                        the CHANGELOG entry
#   release.json                                            version, revision, digests (for CI and docs)
#   SHA256SUMS                                              every file above
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=dry-run
ONLINE=1
OUT=dist
while [ $# -gt 0 ]; do
  case "$1" in
    --publish) MODE=publish ;;
    --offline) ONLINE=0 ;;
    --out) OUT=${2:?--out needs a directory}; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "release: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$MODE" = publish ] && [ "$ONLINE" = 0 ]; then
  echo "release: --publish needs the registries; drop --offline" >&2
  exit 2
fi

say() { printf '[release] %s\n' "$*"; }
die() { printf '[release] error: %s\n' "$*" >&2; exit 1; }

tmp=$(mktemp -d -t tokengate-release.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

bash scripts/setup.sh

# 1. One version everywhere, publishable metadata, a CHANGELOG entry (scripts/lib/release-check.mjs).
say "checking versions, crate and npm metadata, CHANGELOG.md"
check_flags=()
[ "$MODE" = dry-run ] || check_flags+=(--publish)
VERSION=$(node scripts/lib/release-check.mjs metadata "${check_flags[@]}" | tail -1) ||
  die "fix the problems above first"
REPOSITORY=$(cargo metadata --format-version 1 --no-deps --offline |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).packages.find(p=>p.name==="tokengate").repository))')
say "version $VERSION"

DIRTY=0
REVISION=""
if git rev-parse --git-dir >/dev/null 2>&1; then
  [ -z "$(git status --porcelain --untracked-files=no)" ] || DIRTY=1
  [ "$DIRTY" = 1 ] || REVISION=$(git rev-parse HEAD)
fi
if [ "$MODE" = publish ]; then
  [ "$DIRTY" = 0 ] || die "the work tree has uncommitted changes: publish from a clean checkout"
  [ "$(git tag --points-at HEAD | grep -cx "v$VERSION")" = 1 ] || die "tag v$VERSION is not on HEAD (git tag v$VERSION)"
  # The tests check these preconditions with this set, so that no test run can ever upload.
  [ "${TOKENGATE_RELEASE_NO_UPLOAD:-}" != 1 ] || die "--publish preconditions hold; stopping here (TOKENGATE_RELEASE_NO_UPLOAD=1)"
fi
# Reproducible timestamps: SOURCE_DATE_EPOCH when set, else the commit's time.
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
elif git rev-parse --git-dir >/dev/null 2>&1; then
  CREATED=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)
else
  CREATED=""
fi

# dist/ is ours alone: only an empty directory or an earlier release's output is replaced.
OUT=$(realpath -m -- "$OUT")
case "$OUT" in
  / | "$ROOT" | "$HOME" | "$ROOT"/crates* | "$ROOT"/js* | "$ROOT"/target) die "--out $OUT: choose a directory of its own" ;;
esac
if [ -e "$OUT" ]; then
  [ -d "$OUT" ] || die "$OUT exists and is not a directory"
  if [ -n "$(ls -A "$OUT")" ] && [ ! -f "$OUT/release.json" ]; then
    die "$OUT holds files release.sh did not write; choose another --out"
  fi
  rm -rf "$OUT"
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# 2. The artifacts people deploy (js/dist for npm, target/tokengate_proxy.opt.wasm).
say "scripts/build.sh"
bash scripts/build.sh

# 3. Crates: cargo package builds each .crate and compiles it as crates.io would (tokengate
# against the packaged tokengate-mont and tokengate-json, tokengate-cli against the packaged
# tokengate, through cargo's local overlay registry). Listed in dependency order: the publish
# loop below keeps it.
CRATES=(tokengate-mont tokengate-json tokengate tokengate-cli)
cargo_flags=(--locked)
[ "$ONLINE" = 1 ] || cargo_flags+=(--offline)
if [ "$MODE" = dry-run ] && [ -n "$(git status --porcelain -- crates/tokengate-mont crates/tokengate-json crates/tokengate crates/tokengate-cli Cargo.toml Cargo.lock 2>/dev/null)" ]; then
  say "warning: uncommitted changes in the published crates: packaging them as they are (--allow-dirty)"
  cargo_flags+=(--allow-dirty)
fi
pkg_args=()
for c in "${CRATES[@]}"; do pkg_args+=(-p "$c"); done

# cargo package resolves each package's dependencies, dev-dependencies included, from the local
# registry cache: everything in Cargo.lock must be there (a workspace build or test run fills it).
if ! cargo fetch --locked --offline >/dev/null 2>&1; then
  [ "$ONLINE" = 1 ] || die "crates in Cargo.lock are not all downloaded yet: run cargo fetch --locked (or scripts/release.sh without --offline) once"
  say "cargo fetch --locked"
  cargo fetch --locked
fi

# Cargo warnings fail the release, except the ones that describe what we chose: test, bench and
# example targets stay out of the packages (they read tests/vectors/ at the repository root).
cargo_checked() {
  local log=$tmp/cargo.log status=0
  "$@" >"$log" 2>&1 || status=$?
  grep -E '^(error|warning)' "$log" |
    grep -vE '^warning: ignoring (test|benchmark|example) `[^`]+` as `[^`]+` is not included in the published package$' |
    grep -vE '^warning: aborting upload due to dry run$' >"$tmp/unexpected" || true
  if [ "$status" -ne 0 ] || [ -s "$tmp/unexpected" ]; then
    cat "$log" >&2
    [ ! -s "$tmp/unexpected" ] || { echo "unexpected:" >&2; cat "$tmp/unexpected" >&2; }
    die "$* failed (exit status $status, or a warning above)"
  fi
  grep -E '^ *(Packaged|Verifying) ' "$log" | sed 's/^ */[release]   /' || true
}

# cargo package verifies each crate against the packaged others through a local overlay
# registry, unpacked under $CARGO_HOME/registry/src/-<hash>/NAME-VERSION, and cargo never unpacks
# a crate again while that directory exists: a second run at the same version would verify the
# CLI against the first run's core. Remove our crates' old unpacked copies first (the overlay
# registry is the one without a name, hence "-*"; crates.io's is index.crates.io-*).
for c in "${CRATES[@]}"; do
  for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/"$c-$VERSION"; do
    if [ -d "$d" ]; then rm -rf "$d"; fi
  done
done
say "cargo package ${pkg_args[*]} (builds and verifies each .crate)"
cargo_checked cargo package "${pkg_args[@]}" "${cargo_flags[@]}"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps --offline |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
for c in "${CRATES[@]}"; do
  cp "$TARGET_DIR/package/$c-$VERSION.crate" "$OUT/"
done
if [ "$ONLINE" = 1 ]; then
  say "cargo publish --dry-run ${pkg_args[*]} (asks crates.io's index, uploads nothing)"
  cargo_checked cargo publish --dry-run "${pkg_args[@]}" "${cargo_flags[@]}"
  say "  crates.io's index has every dependency; upload aborted (dry run)"
else
  say "cargo publish --dry-run skipped (--offline): cargo package above built and verified the same files"
fi

# 4. npm: the tarball, its file list against package.json, and what npm publish would upload.
say "npm pack (js/)"
(cd js && npm pack --json --pack-destination "$OUT" >"$tmp/pack.json")
node scripts/lib/release-check.mjs npm-pack "$tmp/pack.json" | sed 's/^/[release]   tarball: /'
say "npm publish --dry-run (js/)"
(cd js && npm publish --dry-run --json --offline >"$tmp/publish.json" 2>"$tmp/publish.err") ||
  { cat "$tmp/publish.err" >&2; die "npm publish --dry-run failed"; }
# The only warning a dry run may print: that nobody is logged in.
if grep -E '^npm (warn|error)' "$tmp/publish.err" | grep -vq 'requires you to be logged in'; then
  cat "$tmp/publish.err" >&2
  die "npm publish --dry-run warned"
fi
NPM_FILE=$(node -e 'console.log(require(process.argv[1])[0].filename)' "$tmp/pack.json")
NPM_INTEGRITY=$(node -e 'console.log(require(process.argv[1])[0].integrity)' "$tmp/pack.json")
PUB_INTEGRITY=$(node -e 'const j=require(process.argv[1]);console.log((j.tokengate??Object.values(j)[0]).integrity)' "$tmp/publish.json")
[ "$NPM_INTEGRITY" = "$PUB_INTEGRITY" ] || die "npm publish would upload another tarball than dist/$NPM_FILE"
[ "$NPM_FILE" = "tokengate-$VERSION.tgz" ] || die "npm pack wrote $NPM_FILE, expected tokengate-$VERSION.tgz"

# 5. The Envoy filter, under the name the docs use, with its SHA-256 (Envoy's and Istio's
# `sha256` for an HTTP source).
say "tokengate_proxy.wasm"
install -m 0644 target/tokengate_proxy.opt.wasm "$OUT/tokengate_proxy.wasm"
(cd "$OUT" && sha256sum tokengate_proxy.wasm >tokengate_proxy.wasm.sha256)
WASM_SHA256=$(cut -d' ' -f1 "$OUT/tokengate_proxy.wasm.sha256")

# 6. The filter as an OCI image layout (scripts/lib/oci-layout.mjs), tagged with the version.
say "OCI image layout (oci/, tag $VERSION)"
oci_args=(--wasm "$OUT/tokengate_proxy.wasm" --out "$OUT/oci" --version "$VERSION" --source "$REPOSITORY")
[ -z "$REVISION" ] || oci_args+=(--revision "$REVISION")
[ -z "$CREATED" ] || oci_args+=(--created "$CREATED")
node scripts/lib/oci-layout.mjs "${oci_args[@]}" >"$tmp/oci.json"
MANIFEST_DIGEST=$(node -e 'console.log(require(process.argv[1]).manifestDigest)' "$tmp/oci.json")

# 7. Release notes, a machine-readable summary, checksums.
node scripts/lib/release-check.mjs notes "$VERSION" >"$OUT/RELEASE_NOTES.md"
export VERSION REPOSITORY REVISION DIRTY CREATED NPM_FILE NPM_INTEGRITY WASM_SHA256 MANIFEST_DIGEST
CRATE_NAMES="${CRATES[*]}" node -e '
  const e = process.env;
  process.stdout.write(JSON.stringify({
    version: e.VERSION,
    repository: e.REPOSITORY,
    revision: e.REVISION || null,
    dirty: e.DIRTY === "1",
    created: e.CREATED || null,
    crates: e.CRATE_NAMES.split(" ").map((name) => ({ name, file: `${name}-${e.VERSION}.crate` })),
    npm: { name: "tokengate", file: e.NPM_FILE, integrity: e.NPM_INTEGRITY },
    filter: { file: "tokengate_proxy.wasm", sha256: e.WASM_SHA256 },
    oci: { layout: "oci", tag: e.VERSION, manifestDigest: e.MANIFEST_DIGEST },
  }, null, 2) + "\n");' >"$OUT/release.json"
(cd "$OUT" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort |
  xargs -d '\n' sha256sum >SHA256SUMS && sha256sum --quiet -c SHA256SUMS)

say "dist: $OUT"
(cd "$OUT" && find . -maxdepth 1 -type f -printf '[release]   %f\t%s bytes\n' | LC_ALL=C sort)
printf '[release] oci/\t%s bytes in %s files; manifest %s\n' \
  "$(du -sb "$OUT/oci" | cut -f1)" "$(find "$OUT/oci" -type f | wc -l)" "$MANIFEST_DIGEST"
say "filter sha256 $WASM_SHA256 (HTTP sources); image sha256 ${MANIFEST_DIGEST#sha256:} (WasmPlugin / EnvoyExtensionPolicy)"

if [ "$MODE" = dry-run ]; then
  say "dry run complete: nothing was uploaded (scripts/release.sh --publish uploads, docs/releasing.md)"
  exit 0
fi

# 8. Publish, in dependency order. Each step stops the script on failure; a rerun skips nothing,
# so a partial publish is finished by hand with the command that failed (docs/releasing.md).
for c in "${CRATES[@]}"; do
  say "cargo publish -p $c"
  cargo publish -p "$c" --locked
done
say "npm publish (js/)"
npm_flags=(--access public)
# Provenance needs an OIDC identity from the CI system (GitHub Actions: permissions id-token: write).
[ "${GITHUB_ACTIONS:-}" != true ] || npm_flags+=(--provenance)
(cd js && npm publish "${npm_flags[@]}")
if [ -n "${TOKENGATE_OCI_REPOSITORY:-}" ]; then
  say "skopeo copy oci:$OUT/oci:$VERSION docker://$TOKENGATE_OCI_REPOSITORY:$VERSION"
  skopeo copy --preserve-digests "oci:$OUT/oci:$VERSION" "docker://$TOKENGATE_OCI_REPOSITORY:$VERSION"
else
  say "OCI image not pushed (set TOKENGATE_OCI_REPOSITORY, or: oras cp --from-oci-layout $OUT/oci:$VERSION REGISTRY/tokengate-proxy:$VERSION)"
fi
say "published $VERSION; attach dist/ files and SHA256SUMS to the release page"
