// Browser entry (also the default for bundlers without a better condition). The .wasm is
// fetched next to this file once, at import (top-level await). Signatures are checked by
// crypto.subtle in verify() (async); verifySync() checks them in wasm.
import init, { Core } from "../dist/wasm/tokengate_wasm.js";
import { createApi, TokenError } from "./core.mjs";
import { subtleCrypto } from "./subtle.mjs";
import { TokenClient, TokenClientError } from "./client.mjs";

const wasm = await init({
  module_or_path: new URL("../dist/wasm/tokengate_wasm_bg.wasm", import.meta.url),
});

const api = createApi({
  Core,
  memory: wasm.memory,
  crypto: subtleCrypto(),
  fetch: (url, init) => globalThis.fetch(url, init),
});
const CognitoVerifier = api.CognitoVerifier;
const JwtVerifier = api.JwtVerifier;
const authorize = api.authorize;

export { CognitoVerifier, JwtVerifier, TokenError, TokenClient, TokenClientError, authorize };
