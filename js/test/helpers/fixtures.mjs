// Test and benchmark fixtures (Node only): tokens signed with the TEST keys committed in
// tests/vectors/keys/, with any claims and a real-clock `exp`, plus their JWKS.
import { createPrivateKey, createPublicKey, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const KEYS_DIR = fileURLToPath(new URL("../../../tests/vectors/keys/", import.meta.url));
const published = JSON.parse(readFileSync(KEYS_DIR + "jwks-public.json", "utf8")).keys;

export const POOL_ID = "eu-west-1_TEST0pool";
export const ISSUER = `https://cognito-idp.eu-west-1.amazonaws.com/${POOL_ID}`;
export const CLIENT_ID = "3q9f1k7c2m8v4n6b0x5z1l2h7d";

const cache = new Map();
/** { name, kid, alg, privateKey, jwk } for a key file in tests/vectors/keys (rsa-a, rsa-b, ec-a, …). */
export function testKey(name) {
  if (cache.has(name)) return cache.get(name);
  const privateKey = createPrivateKey(readFileSync(`${KEYS_DIR}${name}.pem`, "utf8"));
  const pub = createPublicKey(privateKey).export({ format: "jwk" });
  const entry = published.find((k) => (pub.kty === "RSA" ? k.n === pub.n : k.x === pub.x && k.y === pub.y));
  if (!entry) throw new Error(`${name} is not in jwks-public.json`);
  const k = { name, kid: entry.kid, alg: entry.alg, privateKey, jwk: entry };
  cache.set(name, k);
  return k;
}

/** A JWK Set with the named keys (default: the two Cognito-style RSA keys). */
export function jwks(...names) {
  return { keys: (names.length ? names : ["rsa-a", "rsa-b"]).map((n) => testKey(n).jwk) };
}

const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** A signed compact JWS. */
export function signToken(claims, { key = "rsa-a", header = {} } = {}) {
  const k = testKey(key);
  const h = b64url({ kid: k.kid, alg: k.alg, ...header });
  const p = b64url(claims);
  const input = Buffer.from(`${h}.${p}`);
  const sig =
    k.alg === "RS256"
      ? sign("sha256", input, k.privateKey)
      : sign("sha256", input, { key: k.privateKey, dsaEncoding: "ieee-p1363" });
  return `${h}.${p}.${sig.toString("base64url")}`;
}

/** Claims of a Cognito client-credentials access token valid for an hour from the real clock. */
export function cognitoClaims(over = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    sub: CLIENT_ID,
    token_use: "access",
    scope: "orders/read orders/write",
    auth_time: now - 60,
    iss: ISSUER,
    exp: now + 3600,
    iat: now - 60,
    version: 2,
    jti: "c4584f2c-9b84-4854-be7b-cfcb3795258d",
    client_id: CLIENT_ID,
    ...over,
  };
}
