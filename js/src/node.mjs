// Node entry (ESM). dist/node.cjs is generated from this file by scripts/make-cjs.mjs.
// Signatures are checked by node:crypto with one prebuilt KeyObject per kid: synchronous, so
// verifySync() uses it too.
import { readFileSync } from "node:fs";
import { createPublicKey, verify as cryptoVerify } from "node:crypto";
import { initSync, Core } from "../dist/wasm/tokengate_wasm.js";
import { createApi, TokenError } from "./core.mjs";
import { TokenClient, TokenClientError } from "./client.mjs";

const wasm = initSync({
  module: readFileSync(new URL("../dist/wasm/tokengate_wasm_bg.wasm", import.meta.url)),
});

const nodeCrypto = {
  sync: true,
  importKey(jwk, alg) {
    const key = createPublicKey({ key: jwk, format: "jwk" });
    return alg === 0 ? key : { key, dsaEncoding: "ieee-p1363" };
  },
  verify(alg, key, data, signature) {
    return cryptoVerify("sha256", data, key, signature);
  },
};

const api = createApi({
  Core,
  memory: wasm.memory,
  crypto: nodeCrypto,
  fetch: (url, init) => globalThis.fetch(url, init),
});
const CognitoVerifier = api.CognitoVerifier;
const JwtVerifier = api.JwtVerifier;
const authorize = api.authorize;

export { CognitoVerifier, JwtVerifier, TokenError, TokenClient, TokenClientError, authorize };
