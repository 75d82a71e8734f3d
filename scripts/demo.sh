#!/usr/bin/env bash
# The main job in one command: tokengate decides which machine-to-machine requests may pass.
# This version runs the `tokengate` CLI (the same core every host embeds) over a short story
# of Cognito-shaped client-credentials tokens from the committed TEST vectors, printing each
# verdict and its reason code. Exits 0 only if every verdict is the expected one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
cargo build --quiet -p tokengate-cli
CLI=target/debug/tokengate
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# story: what happens | vector file | vector case | expected verdict
story=(
  "orders-reader calls GET /orders|accept.json|cognito_rs256_access_token_is_accepted|accept"
  "a client that lacks the route's scope|scopes.json|scope_prefix_extension_is_insufficient|scope_insufficient"
  "a client outside the allow-list|claims.json|client_id_not_in_list_is_not_allowed|client_not_allowed"
  "a token whose scope claim was edited|signature.json|tampered_payload_scope_is_invalid|signature_invalid"
  "alg none, the oldest trick|attacks.json|alg_none_with_kid_and_junk_signature_is_not_allowed|alg_not_allowed"
  "RS256 key used as an HS256 secret|attacks.json|hs256_keyed_with_public_key_pem_is_not_allowed|alg_not_allowed"
  "after a key rotation: the new key signs|accept.json|rotation_new_key_is_accepted|accept"
)

pass=0; fail=0
printf '%-46s %-20s %s\n' "request" "verdict" "expected"
for line in "${story[@]}"; do
  IFS='|' read -r title file name expect <<<"$line"
  node -e '
    const [file, name, dir] = process.argv.slice(1);
    const doc = JSON.parse(require("fs").readFileSync(`tests/vectors/${file}`, "utf8"));
    const c = doc.cases.find((c) => c.name === name);
    if (!c) { console.error(`no vector ${name} in ${file}`); process.exit(2); }
    const fs = require("fs");
    fs.writeFileSync(`${dir}/token`, c.token);
    fs.writeFileSync(`${dir}/jwks.json`, JSON.stringify(c.jwks));
    fs.writeFileSync(`${dir}/policy.json`, JSON.stringify(c.policy));
    fs.writeFileSync(`${dir}/now`, String(c.now));
  ' "$file" "$name" "$WORK"
  out=$("$CLI" verify --jwks "$WORK/jwks.json" --policy "$WORK/policy.json" --now "$(cat "$WORK/now")" \
        --token-file "$WORK/token" 2>/dev/null || true)
  verdict=$(node -e 'const o = JSON.parse(process.argv[1]); console.log(o.valid ? "accept" : o.error)' "$out")
  if [ "$verdict" = "$expect" ]; then mark=ok; pass=$((pass+1)); else mark=MISMATCH; fail=$((fail+1)); fi
  printf '%-46s %-20s %s %s\n' "$title" "$verdict" "$expect" "$mark"
done
echo
echo "demo: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
