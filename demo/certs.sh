#!/usr/bin/env bash
# Makes the demo's TEST certificates at run time (nothing here is committed): a small CA that
# stands in for an IAM Roles Anywhere trust anchor, two workload leaves with SPIFFE IDs, and the
# server certificate of Envoy's mTLS listeners. EC P-256 keys, valid for two days.
#
#   bash demo/certs.sh DIR
#
# DIR/ca.pem                           the trust anchor: Envoy's listeners verify clients with it,
#                                      and clients verify Envoy's server certificate with it
# DIR/orders-batch.pem, -key.pem       URI SAN spiffe://demo/orders-batch (clientAuth)
# DIR/reports.pem, -key.pem            URI SAN spiffe://demo/reports (clientAuth)
# DIR/server.pem, -key.pem             DNS localhost, IP 127.0.0.1 (serverAuth)
set -euo pipefail
dir=${1:?usage: demo/certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

key ca-key.pem
openssl req -x509 -new -key ca-key.pem -sha256 -days 2 -set_serial 1 \
  -subj "/O=tokengate demo/CN=demo workload trust anchor (TEST)" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem

# leaf NAME SERIAL SUBJECT SAN EXTENDED_KEY_USAGE
leaf() {
  local name=$1 serial=$2 subject=$3 san=$4 eku=$5
  key "$name-key.pem"
  openssl req -new -key "$name-key.pem" -subj "$subject" -out "$name.csr"
  printf '%s\n' \
    "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=$eku" \
    "subjectAltName=$san" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -set_serial "$serial" \
    -days 2 -sha256 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

leaf orders-batch 16 "/O=tokengate demo/OU=orders/CN=orders-batch" "URI:spiffe://demo/orders-batch" clientAuth
leaf reports 17 "/O=tokengate demo/OU=finance/CN=reports" "URI:spiffe://demo/reports" clientAuth
leaf server 32 "/O=tokengate demo/CN=localhost" "DNS:localhost,IP:127.0.0.1" serverAuth
# Envoy reads the private keys; nothing else on the machine needs to.
chmod 600 ./*-key.pem
