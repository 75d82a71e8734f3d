// Node entry (ESM). dist/node.cjs is generated from this file by scripts/make-cjs.mjs.
// Signatures are checked by node:crypto (src/node-crypto.mjs).
import { readFileSync } from "node:fs";
import { nodeCrypto } from "./node-crypto.mjs";
import { initSync, Core } from "../dist/wasm/tokengate_wasm.js";
import { createApi, TokenError } from "./core.mjs";
import { TokenClient, TokenClientError } from "./client.mjs";

const wasm = initSync({
  module: readFileSync(new URL("../dist/wasm/tokengate_wasm_bg.wasm", import.meta.url)),
});

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
