// Cloudflare Workers / workerd entry. The .wasm is imported as a module (workerd and wrangler
// both compile it ahead of time) and instantiated synchronously. Signatures are checked by
// crypto.subtle in verify() (async); verifySync() checks them in wasm. Fetched JWKS and policy
// feed documents are shared across isolates through the Cache API (caches.default).
import wasmModule from "../dist/wasm/tokengate_wasm_bg.wasm";
import { initSync, Core } from "../dist/wasm/tokengate_wasm.js";
import { createApi, TokenError } from "./core.mjs";
import { subtleCrypto } from "./subtle.mjs";
import { TokenClient, TokenClientError } from "./client.mjs";

const wasm = initSync({ module: wasmModule });

const api = createApi({
  Core,
  memory: wasm.memory,
  crypto: subtleCrypto(),
  fetch: (url, init) => globalThis.fetch(url, init),
  // JWKS and policy feed documents are shared between isolates through the Cache API, so a
  // cold isolate does not fetch them again (verifier option `sharedCache` overrides it).
  sharedCache: globalThis.caches && globalThis.caches.default,
  // workerd cancels a request's unfinished work when it answers: a refresh it started is waited
  // for, unless the call passes { waitUntil: ctx.waitUntil.bind(ctx) }.
  holdRefreshes: true,
});
const CognitoVerifier = api.CognitoVerifier;
const JwtVerifier = api.JwtVerifier;
const authorize = api.authorize;

export { CognitoVerifier, JwtVerifier, TokenError, TokenClient, TokenClientError, authorize };
