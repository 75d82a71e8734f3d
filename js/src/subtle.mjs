// Web Crypto adapter (Workers, browsers): imported CryptoKeys, async verify. ECDSA signatures
// in Web Crypto are r || s (P1363), the JWS format, so they pass through unchanged.
const RSA = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
const EC_IMPORT = { name: "ECDSA", namedCurve: "P-256" };
const EC_VERIFY = { name: "ECDSA", hash: "SHA-256" };

export function subtleCrypto() {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) return null;
  return {
    sync: false,
    importKey(jwk, alg) {
      return subtle.importKey("jwk", jwk, alg === 0 ? RSA : EC_IMPORT, false, ["verify"]);
    },
    verify(alg, key, data, signature) {
      return subtle.verify(alg === 0 ? RSA : EC_VERIFY, key, signature, data);
    },
  };
}
