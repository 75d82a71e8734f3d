// node:crypto adapter: one KeyObject per kid, built once; crypto.verify is synchronous, so
// verifySync() uses it too. ES256 signatures in JWS are r || s (P1363), as dsaEncoding says.
import { createPublicKey, verify as cryptoVerify } from "node:crypto";

export const nodeCrypto = {
  sync: true,
  importKey(jwk, alg) {
    const key = createPublicKey({ key: jwk, format: "jwk" });
    return alg === 0 ? key : { key, dsaEncoding: "ieee-p1363" };
  },
  verify(alg, key, data, signature) {
    return cryptoVerify("sha256", data, key, signature);
  },
};
