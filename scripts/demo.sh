#!/usr/bin/env bash
# The main job in one command: machines get OAuth2 client-credentials tokens from a local
# Cognito-compatible issuer, and the edges that run tokengate — real Envoy with the proxy-wasm
# filter, and a Cloudflare worker (demo/worker: the sample worker plus revocation and a rate
# limit) in real workerd — let through only what their scopes allow, and a pinned client's
# tokens only from the workload holding its certificate (Envoy's mTLS listener; certificates
# made at run time by demo/certs.sh). Starts everything on 127.0.0.1 (free ports), plays the
# story in demo/story.mjs, prints each request with both edges' verdicts, and stops everything
# it started.
#
#   scripts/demo.sh            the story, then stop (exit 0 only if every verdict matched)
#   scripts/demo.sh --quick    the same story with minimal output (scripts/test-demo.sh)
#   scripts/demo.sh --serve    start the stack, print the URLs (and the page's), run until Ctrl-C
#   scripts/demo.sh --feed-bench   20 breach trials: revoke-to-deny time per edge (scripts/bench-feed.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=story
for a in "$@"; do
  case "$a" in
    --quick) MODE=quick ;;
    --serve) MODE=serve ;;
    --feed-bench) MODE=feed-bench ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done

say() { if [ "$MODE" != quick ]; then printf '[demo] %s\n' "$*"; fi; }
die() { printf '[demo] error: %s\n' "$*" >&2; exit 1; }

# ---- processes: each in its own process group, all stopped on exit, Ctrl-C or SIGTERM --------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tokengate-demo.XXXXXX")
GROUPS_STARTED=()   # process group ids (setsid leaders)
NAMES=()
WAITING=""         # a foreground-like child we `wait` for (so signals are handled at once)

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$WAITING" ]; then kill -TERM "$WAITING" 2>/dev/null || true; fi
  local pg
  for pg in "${GROUPS_STARTED[@]}"; do kill -TERM -- "-$pg" 2>/dev/null || true; done
  # Up to 5 s for a graceful stop, then SIGKILL whatever is left.
  local deadline=$((SECONDS + 5)) alive
  while :; do
    alive=0
    for pg in "${GROUPS_STARTED[@]}"; do kill -0 -- "-$pg" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] || [ "$SECONDS" -ge "$deadline" ] && break
    sleep 0.1
  done
  for pg in "${GROUPS_STARTED[@]}"; do kill -KILL -- "-$pg" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$INTERRUPTED" ]; then
    say "stopped everything it started"
  elif [ "$status" -ne 0 ] && [ "${KEEP_LOGS:-0}" = 0 ]; then
    # On failure, show the end of each log before it goes.
    for f in "$WORK"/*.log; do
      [ -s "$f" ] || continue
      printf '\n---- %s (tail) ----\n' "$(basename "$f")" >&2
      tail -n 15 "$f" >&2
    done
  fi
  if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "[demo] logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$status"
}
INTERRUPTED=""
trap cleanup EXIT
trap 'INTERRUPTED=1; exit 130' INT
trap 'INTERRUPTED=1; exit 143' TERM

# start NAME CMD...: runs CMD in a new session (so its whole process group can be stopped),
# stdout+stderr to $WORK/NAME.log.
start() {
  local name=$1
  shift
  setsid "$@" >"$WORK/$name.log" 2>&1 </dev/null &
  GROUPS_STARTED+=("$!")
  NAMES+=("$name")
}

# wait_for_line NAME REGEX TIMEOUT_S: the first line of NAME's log matching REGEX.
wait_for_line() {
  local name=$1 re=$2 timeout=$3 pid=${GROUPS_STARTED[-1]} deadline line
  deadline=$((SECONDS + timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    line=$(grep -m1 -E "$re" "$WORK/$name.log" 2>/dev/null || true)
    if [ -n "$line" ]; then printf '%s\n' "$line"; return 0; fi
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up:
$(tail -n 20 "$WORK/$name.log")"
    sleep 0.1
  done
  die "$name not ready within ${timeout}s:
$(tail -n 20 "$WORK/$name.log")"
}

# wait_for_http NAME URL TIMEOUT_S: until URL answers 200.
wait_for_http() {
  local name=$1 url=$2 timeout=$3 pid=${GROUPS_STARTED[-1]} deadline
  deadline=$((SECONDS + timeout))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)" = 200 ]; then return 0; fi
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up:
$(tail -n 20 "$WORK/$name.log")"
    sleep 0.2
  done
  die "$name not ready within ${timeout}s ($url):
$(tail -n 20 "$WORK/$name.log")"
}

# free_ports N: N distinct free loopback ports (held open together while picked).
free_ports() {
  node -e '
    const net = require("node:net");
    const n = Number(process.argv[1]);
    const servers = [];
    const next = () => {
      if (servers.length === n) {
        console.log(servers.map((s) => s.address().port).join(" "));
        servers.forEach((s) => s.close());
        return;
      }
      const s = net.createServer().listen(0, "127.0.0.1", () => { servers.push(s); next(); });
    };
    next();
  ' "$1"
}

json_field() { node -e 'console.log(JSON.parse(process.argv[1])[process.argv[2]])' "$1" "$2"; }

# ---- setup and builds -------------------------------------------------------------------------
quiet() { if [ "$MODE" = quick ]; then "$@" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; return 1; }; else "$@"; fi; }

say "setup"
quiet bash scripts/setup.sh
say "build: tokengate-issuer, the Envoy filter, the npm package"
quiet cargo build --quiet -p tokengate-issuer
quiet bash scripts/build-proxy.sh
quiet bash scripts/build-js.sh
ENVOY_BIN=$ROOT/.venv/bin/envoy
[ -x "$ENVOY_BIN" ] || die "$ENVOY_BIN missing: run scripts/setup.sh"

# ---- the stack --------------------------------------------------------------------------------
say "starting the stack on 127.0.0.1 (logs in $WORK)"

# TEST certificates for this run only: a CA standing in for an IAM Roles Anywhere trust anchor,
# the workloads orders-batch and reports (SPIFFE IDs), Envoy's server certificate.
CERTS=$WORK/certs
bash demo/certs.sh "$CERTS" >"$WORK/certs.log" 2>&1 || die "demo/certs.sh failed:
$(tail -n 20 "$WORK/certs.log")"
say "certs    $CERTS (demo CA, spiffe://demo/orders-batch, spiffe://demo/reports)"

start issuer "$ROOT/target/debug/tokengate-issuer" serve --config "$ROOT/demo/issuer.toml" --listen 127.0.0.1:0
ISSUER=$(wait_for_line issuer '^listening on http://' 20 | sed 's/^listening on //')
POOL=$(node -p 'require("./demo/policy.json").pool')
# The tokens' iss (demo/issuer.toml gives the pool a Cognito-style issuer).
ISS=$(curl -sf --max-time 5 "$ISSUER/$POOL/.well-known/openid-configuration" | node -p 'JSON.parse(require("fs").readFileSync(0)).issuer')
JWKS=$ISSUER/$POOL/.well-known/jwks.json
say "issuer   $ISSUER/$POOL  (iss $ISS)"

start origin node "$ROOT/demo/origin.mjs" --port 0
ORIGIN=$(json_field "$(wait_for_line origin '^\{"origin"' 10)" origin)
say "origin   $ORIGIN"

start web node "$ROOT/demo/web.mjs" --issuer "$ISSUER" --port 0
WEB=$(json_field "$(wait_for_line web '^\{"web"' 10)" web)
say "page     $WEB/"

read -r ENVOY_PORT ENVOY_ADMIN_PORT ENVOY_MTLS_PORT TOKEN_MTLS_PORT < <(free_ports 4)
node demo/envoy-config.mjs --issuer "$ISSUER" --iss "$ISS" --origin "$ORIGIN" --listen "$ENVOY_PORT" \
  --admin "$ENVOY_ADMIN_PORT" --wasm target/tokengate_proxy.opt.wasm \
  --certs "$CERTS" --mtls-listen "$ENVOY_MTLS_PORT" --token-listen "$TOKEN_MTLS_PORT" >"$WORK/envoy.json"
start envoy "$ENVOY_BIN" -c "$WORK/envoy.json" --concurrency 2 --disable-hot-restart \
  -l warning --component-log-level wasm:info --log-format '[%l][%n] %v'
wait_for_http envoy "http://127.0.0.1:$ENVOY_ADMIN_PORT/ready" 30
ENVOY=http://127.0.0.1:$ENVOY_PORT
ENVOY_MTLS=https://127.0.0.1:$ENVOY_MTLS_PORT
TOKEN_MTLS=https://127.0.0.1:$TOKEN_MTLS_PORT
say "Envoy    $ENVOY (admin http://127.0.0.1:$ENVOY_ADMIN_PORT)"
say "Envoy    $ENVOY_MTLS (mTLS: client certificate from the demo CA required)"
say "Envoy    $TOKEN_MTLS/$POOL/oauth2/token (mTLS in front of the issuer: tls_client_auth)"

WORKERD_BIN=$ROOT/js/node_modules/.bin/workerd
[ -x "$WORKERD_BIN" ] || die "$WORKERD_BIN missing: run scripts/setup.sh (npm ci in js/)"
read -r WORKER_PORT < <(free_ports 1)
mkdir -p "$WORK/workerd"
node demo/workerd-config.mjs --dir "$WORK/workerd" --port "$WORKER_PORT" --iss "$ISS" --jwks "$JWKS" \
  --origin "$ORIGIN" >/dev/null
start workerd "$WORKERD_BIN" serve "$WORK/workerd/config.capnp" --verbose
WORKER=http://127.0.0.1:$WORKER_PORT
# Any HTTP answer means the worker is up (it answers 401 without a token).
deadline=$((SECONDS + 30))
until curl -s -o /dev/null --max-time 1 "$WORKER/health"; do
  kill -0 "${GROUPS_STARTED[-1]}" 2>/dev/null || die "workerd exited during start-up:
$(tail -n 20 "$WORK/workerd.log")"
  [ "$SECONDS" -lt "$deadline" ] || die "workerd not ready within 30s"
  sleep 0.2
done
say "worker   $WORKER (workerd)"

# ---- the story, or serve until Ctrl-C ---------------------------------------------------------
if [ "$MODE" = serve ]; then
  cat <<EOF

tokengate demo stack (127.0.0.1 only):
  issuer          $ISSUER/$POOL   (token endpoint: $ISSUER/$POOL/oauth2/token)
  Envoy + filter  $ENVOY/orders
  Envoy mTLS      $ENVOY_MTLS/orders   (client certificate required: $CERTS)
  token (mTLS)    $TOKEN_MTLS/$POOL/oauth2/token   (tls_client_auth clients, e.g. reports)
  worker          $WORKER/orders   (workerd)
  origin          $ORIGIN
  page            $WEB/   (token debugger: the npm package's browser entry)

Try:
  TOKEN=\$(curl -s -u orders-reader:orders-reader-secret -d grant_type=client_credentials \\
          $ISSUER/$POOL/oauth2/token | node -p 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -i -H "authorization: Bearer \$TOKEN" $ENVOY/orders

  # orders-batch is pinned to spiffe://demo/orders-batch: its token passes only with that certificate
  TOKEN=\$(curl -s -u orders-batch:orders-batch-secret -d grant_type=client_credentials \\
          $ISSUER/$POOL/oauth2/token | node -p 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -i --cacert $CERTS/ca.pem --cert $CERTS/orders-batch.pem --key $CERTS/orders-batch-key.pem \\
       -H "authorization: Bearer \$TOKEN" $ENVOY_MTLS/orders

  # reports authenticates with its certificate (tls_client_auth) and gets a token bound to it (cnf)
  curl -s --cacert $CERTS/ca.pem --cert $CERTS/reports.pem --key $CERTS/reports-key.pem \\
       -d grant_type=client_credentials -d client_id=reports $TOKEN_MTLS/$POOL/oauth2/token

Ctrl-C stops everything.
EOF
  while :; do
    for i in "${!GROUPS_STARTED[@]}"; do
      kill -0 "${GROUPS_STARTED[$i]}" 2>/dev/null || die "${NAMES[$i]} stopped unexpectedly:
$(tail -n 20 "$WORK/${NAMES[$i]}.log")"
    done
    sleep 1 &
    WAITING=$!
    wait "$WAITING" || true
    WAITING=""
  done
fi

say "the story"
[ "$MODE" = story ] && echo
story_args=(--issuer "$ISSUER" --envoy "$ENVOY" --worker "$WORKER" --envoy-mtls "$ENVOY_MTLS" \
  --token-mtls "$TOKEN_MTLS" --certs "$CERTS")
[ "$MODE" = quick ] && story_args+=(--quick)
[ "$MODE" = feed-bench ] && story_args+=(--feed-bench "${FEED_TRIALS:-20}")
# In the background and waited for: bash runs the INT/TERM traps only once a foreground child
# has exited, but interrupts `wait` at once. timeout(1) bounds the story and passes TERM on.
timeout 180 node demo/story.mjs "${story_args[@]}" &
WAITING=$!
story_status=0
wait "$WAITING" || story_status=$?
WAITING=""
exit "$story_status"
