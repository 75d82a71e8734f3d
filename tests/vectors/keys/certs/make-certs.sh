#!/bin/sh
# Makes the TEST client certificates of this directory with the openssl CLI (see README.md).
# TEST ONLY: every private key here is public. Never trust this CA anywhere.
#
#   sh tests/vectors/keys/certs/make-certs.sh           # refuses to overwrite existing files
#   sh tests/vectors/keys/certs/make-certs.sh --force   # makes everything anew
#
# Fresh keys and ECDSA signatures are random, so a new run gives new certificates with new
# SHA-256 fingerprints: run `node tests/vectors/http/generate.mjs` afterwards, update the table
# in README.md from the lines this script prints, and commit all of it together.
# Tested with OpenSSL 3.0.
set -eu
cd "$(dirname "$0")"

if [ -e ca.pem ] && [ "${1:-}" != "--force" ]; then
  echo "certificates exist; pass --force to replace them (every fingerprint in the vectors changes)" >&2
  exit 1
fi

# Fixed, long validity: the gate never checks validity (the TLS layer does), and a TLS test run
# at any real date from 2025 to 2099 accepts them.
START=20250101000000Z
END=20991231235959Z
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
: > "$TMP/index.txt"

# A self-contained configuration, so that the system openssl.cnf adds nothing. `openssl ca`
# (not `openssl x509 -req`) because only it takes a fixed -startdate in OpenSSL 3.0.
cat > "$TMP/openssl.cnf" <<CNF
[req]
distinguished_name = dn
[dn]
[ca]
default_ca = test_ca
[test_ca]
database = $TMP/index.txt
new_certs_dir = $TMP
serial = $TMP/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[policy_any]
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF

# sign NAME SERIAL(hex) EXTFILE SECTION [ca options...]: signs $TMP/NAME.csr into NAME.pem
sign() {
  name=$1 serial=$2 extfile=$3 section=$4
  shift 4
  echo "$serial" > "$TMP/serial"
  if ! openssl ca -batch -notext -preserveDN -config "$TMP/openssl.cnf" -extfile "$extfile" \
    -extensions "$section" -startdate "$START" -enddate "$END" -in "$TMP/$name.csr" -out "$name.pem" \
    "$@" > "$TMP/ca.log" 2>&1; then
    cat "$TMP/ca.log" >&2
    exit 1
  fi
}

# --- the CA: stands in for an IAM Roles Anywhere trust anchor
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca-key.pem
openssl req -new -config "$TMP/openssl.cnf" -key ca-key.pem -subj "/O=Example/CN=tokengate TEST client CA" -out "$TMP/ca.csr"
sign ca 01 "$TMP/openssl.cnf" ca_ext -selfsign -keyfile ca-key.pem

# leaf NAME SERIAL(hex) SUBJECT [SAN entries, one "TYPE.n = value" per argument]
# The subject is written in certificate order (first RDN first, as -subj wants it); its RFC 4514
# string is the reverse. SANs appear in the certificate in the order given.
leaf() {
  name=$1 serial=$2 subj=$3
  shift 3
  {
    echo '[ext]'
    echo 'basicConstraints = critical, CA:FALSE'
    echo 'keyUsage = critical, digitalSignature'
    echo 'extendedKeyUsage = clientAuth'
    echo 'subjectKeyIdentifier = hash'
    echo 'authorityKeyIdentifier = keyid'
    if [ $# -gt 0 ]; then
      echo 'subjectAltName = @san'
      echo '[san]'
      for entry in "$@"; do echo "$entry"; done
    fi
  } > "$TMP/$name.ext"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name-key.pem"
  openssl req -new -config "$TMP/openssl.cnf" -key "$name-key.pem" -subj "$subj" -out "$TMP/$name.csr"
  sign "$name" "$serial" "$TMP/$name.ext" ext -cert ca.pem -keyfile ca-key.pem
}

leaf orders-writer 10 "/O=Example/OU=payments/CN=orders-writer" \
  "URI.1 = spiffe://prod/orders-writer" "DNS.1 = orders-writer.internal"
leaf batch-7 11 "/O=Example/OU=batch/CN=batch-7" \
  "URI.1 = spiffe://prod/batch/7" "DNS.1 = Batch.Internal"
leaf intruder 12 "/O=Example/CN=intruder" \
  "URI.1 = spiffe://prod/intruder"
leaf no-san 13 "/O=Example/OU=finance/CN=reports"
leaf two-uris 14 "/O=Example/CN=migrator" \
  "URI.1 = spiffe://prod/legacy/migrator" "URI.2 = spiffe://prod/batch/9"
leaf batch-root 15 "/O=Example/CN=batch-root" \
  "URI.1 = spiffe://prod/batch"
leaf batchx 16 "/O=Example/CN=batchx" \
  "URI.1 = spiffe://prod/batchx"
leaf batch-slash 17 "/O=Example/CN=batch-slash" \
  "URI.1 = spiffe://prod/batch/"
# big: a valid leaf whose DER is larger than 16384 bytes (the certificate header limit)
set -- "URI.1 = spiffe://prod/big"
i=1
while [ "$i" -le 700 ]; do
  set -- "$@" "DNS.$i = $(printf 'host-%04d' "$i").big.internal"
  i=$((i + 1))
done
leaf big 18 "/O=Example/CN=big" "$@"
chmod 644 ./*.pem

# The facts every host derives (README.md lists them).
for f in ca orders-writer batch-7 intruder no-san two-uris batch-root batchx batch-slash big; do
  der_len=$(openssl x509 -in "$f.pem" -outform DER | wc -c)
  sha=$(openssl x509 -in "$f.pem" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
  echo "$f.pem  DER $der_len bytes  sha256 $sha"
  openssl x509 -in "$f.pem" -noout -subject -nameopt RFC2253
  openssl x509 -in "$f.pem" -noout -ext subjectAltName 2>/dev/null | sed -n '2p' | cut -c1-100
done
