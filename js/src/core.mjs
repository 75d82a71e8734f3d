// The runtime-neutral part of the package: option mapping, the JS side of the wasm core's
// calling convention, JWKS fetching and the signature hand-off. Every verdict comes from the
// core (crates/tokengate via crates/tokengate-wasm); this file only moves bytes and keys.
//
// Each entry (node.mjs, workerd.mjs, browser.mjs) instantiates the wasm module its own way and
// calls createApi() with the runtime's crypto adapter.

import { fetchCapped } from "./http.mjs";

const ACCEPT = 0;
const SIGNATURE = 1;
const ERROR = 2;
const LOST = 3;

const FLAG_AUDIT = 1;
const FLAG_PURE = 2;

const OUTCOME_INVALID = 0;
const OUTCOME_VALID = 1;
const OUTCOME_PURE = 2;

const NONE = 0xffffffff;
const RS256 = 0;
const MAX_CLAIMS_CACHED = 4096;
const MAX_ROUTE_SCOPES = 1000;
const JWKS_RETRY_AFTER_SECONDS = 5;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Why a token was refused. `code` is one of the core's stable codes; `status` and
 * `wwwAuthenticate` are what an HTTP answer should carry (RFC 6750 §3).
 */
export class TokenError extends Error {
  constructor(code, message, details) {
    super(message);
    const d = details || {};
    this.name = "TokenError";
    this.code = code;
    this.status = d.status ?? 401;
    this.wwwAuthenticate = d.wwwAuthenticate ?? null;
    this.claims = d.claims ?? null;
  }
}

function configError(message) {
  return new TypeError(`tokengate: ${message}`);
}

function deepFreeze(v) {
  if (v !== null && typeof v === "object") {
    for (const k of Object.keys(v)) deepFreeze(v[k]);
    Object.freeze(v);
  }
  return v;
}

function clockSeconds() {
  return Date.now() / 1000;
}

function nowOption(options) {
  const now = options.now;
  if (now === undefined) return clockSeconds();
  if (typeof now !== "number" || !Number.isFinite(now) || now < 0) {
    throw configError("options.now must be a finite number of seconds since the epoch");
  }
  return now;
}

// ---------------------------------------------------------------------------------------------
// Option mapping: JS options -> the shared policy object (tests/vectors/README.md).

const POLICY_KEYS = new Set([
  "tokenUse",
  "clientId",
  "scope",
  "audience",
  "leewaySeconds",
  "maxTokenAgeSeconds",
  "customClaims",
  "mtlsBinding",
  "minRsaBits",
  "maxTokenBytes",
  "jwks",
  "jwksUri",
]);
const VERIFIER_KEYS = new Set([
  "cache",
  "jwksCache",
  "realm",
  "onDecision",
  "crypto",
  "fetch",
  "revocation",
]);
const RENAMED = {
  graceSeconds: "leewaySeconds",
  customJwtCheck: "customClaims (declarative rules) or a check on the returned claims",
  includeRawJwtInErrors: "the claims on TokenError (the raw token is never included)",
  issuers: "issuer",
};

function checkKeys(obj, allowed, where) {
  for (const k of Object.keys(obj)) {
    if (allowed.has(k)) continue;
    const hint = RENAMED[k] ? ` (tokengate calls this ${RENAMED[k]})` : "";
    throw configError(`${where}: unknown option ${JSON.stringify(k)}${hint}`);
  }
}

function stringList(v, name, { allowNull = false, single = true } = {}) {
  if (v === null && allowNull) return null;
  if (typeof v === "string" && single) return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return [...v];
  throw configError(
    `${name} must be ${single ? "a string or " : ""}an array of strings${allowNull ? " or null" : ""}`,
  );
}

function scopeRequirement(v, name) {
  if (v === undefined || v === null) return null;
  if (typeof v === "string" || Array.isArray(v)) return { all: stringList(v, name) };
  if (typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && (keys[0] === "all" || keys[0] === "any")) {
      return { [keys[0]]: stringList(v[keys[0]], `${name}.${keys[0]}`, { single: false }) };
    }
  }
  throw configError(`${name} must be a string, an array of strings, {all: [...]} or {any: [...]}`);
}

function seconds(v, name) {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw configError(`${name} must be a whole number of seconds >= 0`);
  }
  return v;
}

function claimRules(v) {
  if (!Array.isArray(v)) throw configError("customClaims must be an array of rules");
  return v.map((r, i) => {
    const where = `customClaims[${i}]`;
    if (r === null || typeof r !== "object" || typeof r.claim !== "string") {
      throw configError(`${where} must be {claim, equals | oneOf | contains}`);
    }
    const keys = Object.keys(r).filter((k) => k !== "claim");
    if (keys.length !== 1) throw configError(`${where} needs exactly one of equals, oneOf, contains`);
    switch (keys[0]) {
      case "equals":
        return { claim: r.claim, equals: r.equals };
      case "oneOf":
        if (!Array.isArray(r.oneOf)) throw configError(`${where}.oneOf must be an array`);
        return { claim: r.claim, one_of: r.oneOf };
      case "contains":
        if (typeof r.contains !== "string") throw configError(`${where}.contains must be a string`);
        return { claim: r.claim, contains: r.contains };
      default:
        throw configError(`${where}: unknown rule ${JSON.stringify(keys[0])}`);
    }
  });
}

function revocationJson(v) {
  if (v === undefined || v === null) return { jti: [], client_ids: [], issued_before: {} };
  if (typeof v !== "object") throw configError("revocation must be an object");
  for (const k of Object.keys(v)) {
    if (k !== "jti" && k !== "clientIds" && k !== "issuedBefore") {
      throw configError(`revocation: unknown field ${JSON.stringify(k)}`);
    }
  }
  const issued = {};
  for (const [client, t] of Object.entries(v.issuedBefore || {})) {
    issued[client] = timeSeconds(t, `revocation.issuedBefore[${JSON.stringify(client)}]`);
  }
  return {
    jti: v.jti === undefined ? [] : stringList(v.jti, "revocation.jti", { single: false }),
    client_ids:
      v.clientIds === undefined ? [] : stringList(v.clientIds, "revocation.clientIds", { single: false }),
    issued_before: issued,
  };
}

function timeSeconds(t, name) {
  if (t instanceof Date) t = t.getTime() / 1000;
  if (typeof t !== "number" || !Number.isFinite(t)) {
    throw configError(`${name} must be seconds since the epoch or a Date`);
  }
  return t;
}

function parseJwks(v, name) {
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      throw configError(`${name} is not JSON`);
    }
  }
  if (v === null || typeof v !== "object" || !Array.isArray(v.keys)) {
    throw configError(`${name} must be a JWK Set ({"keys": [...]})`);
  }
  return v;
}

// One provider (issuer or Cognito pool) from user options.
function providerConfig(o, kind, where) {
  const p = {};
  const policy = {};
  if (kind === "cognito") {
    if (typeof o.userPoolId !== "string") throw configError(`${where}.userPoolId is required`);
    p.cognito_user_pool_id = o.userPoolId;
    policy.algorithms = ["RS256"];
    if (!("tokenUse" in o)) {
      throw configError(`${where}.tokenUse is required: "access", "id" or null (not checked)`);
    }
  } else {
    if (o.issuer === undefined) throw configError(`${where}.issuer is required`);
    policy.issuers = stringList(o.issuer, `${where}.issuer`);
    if (o.algorithms !== undefined) {
      policy.algorithms = stringList(o.algorithms, `${where}.algorithms`, { single: false });
    }
    if (o.jwks === undefined && o.jwksUri === undefined) {
      throw configError(`${where} needs jwksUri or jwks`);
    }
  }
  if (!("clientId" in o)) {
    throw configError(
      `${where}.clientId is required: the allowed client ids, or null to accept any client`,
    );
  }
  const tokenUse = o.tokenUse === undefined ? null : o.tokenUse;
  if (tokenUse !== null && tokenUse !== "access" && tokenUse !== "id") {
    throw configError(`${where}.tokenUse must be "access", "id" or null`);
  }
  policy.token_use = tokenUse;
  policy.client_ids = stringList(o.clientId, `${where}.clientId`, { allowNull: true });
  const scope = scopeRequirement(o.scope, `${where}.scope`);
  if (scope) policy.scopes = scope;
  if (o.audience !== undefined) {
    policy.audience = stringList(o.audience, `${where}.audience`, { allowNull: true });
  }
  if (o.leewaySeconds !== undefined) policy.leeway_s = seconds(o.leewaySeconds, `${where}.leewaySeconds`);
  if (o.maxTokenAgeSeconds !== undefined && o.maxTokenAgeSeconds !== null) {
    policy.max_token_age_s = seconds(o.maxTokenAgeSeconds, `${where}.maxTokenAgeSeconds`);
  }
  if (o.customClaims !== undefined) policy.claims = claimRules(o.customClaims);
  if (o.mtlsBinding !== undefined) policy.mtls_binding = o.mtlsBinding;
  if (o.minRsaBits !== undefined) policy.min_rsa_bits = o.minRsaBits;
  if (o.maxTokenBytes !== undefined) policy.max_token_bytes = o.maxTokenBytes;
  p.policy = policy;
  if (o.jwksUri !== undefined) {
    if (typeof o.jwksUri !== "string" || !/^https?:\/\//.test(o.jwksUri)) {
      throw configError(`${where}.jwksUri must be an http(s) URL`);
    }
    p.jwks_uri = o.jwksUri;
  }
  if (o.jwks !== undefined) p.jwks = parseJwks(o.jwks, `${where}.jwks`);
  return p;
}

function splitOptions(props, extra, kind) {
  const list = Array.isArray(props) ? props : [props];
  if (list.length === 0) throw configError("at least one issuer is required");
  const allowed = new Set(kind === "cognito" ? ["userPoolId", ...POLICY_KEYS] : ["issuer", "algorithms", ...POLICY_KEYS]);
  const shared = {};
  list.forEach((o, i) => {
    if (o === null || typeof o !== "object") throw configError("options must be an object");
    const own = {};
    for (const [k, v] of Object.entries(o)) {
      if (VERIFIER_KEYS.has(k) && !Array.isArray(props)) shared[k] = v;
      else own[k] = v;
    }
    checkKeys(own, allowed, Array.isArray(props) ? `options[${i}]` : "options");
  });
  if (extra !== undefined) {
    if (extra === null || typeof extra !== "object") throw configError("verifier options must be an object");
    checkKeys(extra, VERIFIER_KEYS, "verifier options");
    Object.assign(shared, extra);
  }
  const providers = list.map((o, i) =>
    providerConfig(o, kind, Array.isArray(props) ? `options[${i}]` : "options"),
  );
  return { providers, shared };
}

function positive(v, name, dflt) {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw configError(`${name} must be a positive number`);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// JWKS fetching: bounded in time and size; every failure is reported to the core, which keeps
// the last good keys.

async function fetchJwks(fetchFn, url, timeoutMs, maxBytes) {
  const r = await fetchCapped(fetchFn, url, { headers: { accept: "application/json" } }, timeoutMs, maxBytes);
  // A body over the cap is handed over as cap + 1 bytes: the core refuses it as too large.
  const body = r.truncated ? new Uint8Array(maxBytes + 1) : r.body;
  return { status: r.status, cacheControl: r.headers.get("cache-control"), body };
}

function publicJwk(jwk, alg) {
  if (!jwk || typeof jwk !== "object") return null;
  return alg === RS256
    ? { kty: "RSA", n: jwk.n, e: jwk.e }
    : { kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y };
}

function bearerToken(req) {
  let value;
  const h = req && req.headers;
  if (h && typeof h.get === "function") value = h.get("authorization");
  else if (h && typeof h === "object") {
    value = h.authorization ?? h.Authorization;
    if (value === undefined) {
      for (const k of Object.keys(h)) if (k.toLowerCase() === "authorization") value = h[k];
    }
  }
  if (Array.isArray(value)) value = value[0];
  if (typeof value !== "string") return undefined;
  // RFC 6750 §2.1: "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 7235 §2.1).
  const m = /^bearer +/i.exec(value);
  if (!m) return undefined;
  return value.slice(m[0].length);
}

// ---------------------------------------------------------------------------------------------

/**
 * Bind the verifier classes to one instantiated wasm module.
 *
 * rt.Core: the wasm-bindgen class; rt.memory: its WebAssembly.Memory; rt.crypto: the host's
 * signature adapter { sync, importKey(jwk, alg), verify(alg, key, data, sig) } or null (pure
 * wasm); rt.fetch: the fetch function.
 */
export function createApi(rt) {
  const memory = rt.memory;
  let U8 = new Uint8Array(memory.buffer);
  let U32 = new Uint32Array(memory.buffer);
  // Growing a (non-shared) wasm memory detaches its old buffer: a zero length means "stale".
  function views() {
    if (U8.byteLength === 0) {
      U8 = new Uint8Array(memory.buffer);
      U32 = new Uint32Array(memory.buffer);
    }
  }

  class Verifier {
    #core;
    #meta;
    #inPtr = 0;
    #inCap = 0;
    #inView = null;
    #inToken = null;
    #inTokenLen = 0;
    #maxChars;
    #providers;
    #keyTables;
    #claims = new Map();
    #scopeIds = new Map();
    #inflight = new Map();
    #lastFetchError = new Map();
    #onDecision;
    #flagsSync;
    #flagsAsync;
    #fetch;
    #timeoutMs;
    #maxJwksBytes;
    #revocation;
    #crypto;

    constructor(secret, providers, shared) {
      if (secret !== CONSTRUCT) {
        throw new TypeError("tokengate: use CognitoVerifier.create() or JwtVerifier.create()");
      }
      const cache = shared.cache;
      const jc = shared.jwksCache || {};
      if (typeof jc !== "object") throw configError("jwksCache must be an object");
      checkKeys(
        jc,
        new Set(["refreshSeconds", "maxStaleSeconds", "timeoutMs", "maxBytes", "maxKeys", "unknownKidCooldownSeconds"]),
        "jwksCache",
      );
      this.#timeoutMs = positive(jc.timeoutMs, "jwksCache.timeoutMs", 5000);
      this.#maxJwksBytes = positive(jc.maxBytes, "jwksCache.maxBytes", 64 * 1024);
      const keyCache = {
        fetch_timeout_s: Math.ceil(this.#timeoutMs / 1000) + 1,
        max_jwks_bytes: this.#maxJwksBytes,
        jitter_seed: Math.floor(Math.random() * 2 ** 52),
      };
      if (jc.refreshSeconds !== undefined) keyCache.refresh_s = seconds(jc.refreshSeconds, "jwksCache.refreshSeconds");
      if (jc.maxStaleSeconds !== undefined) keyCache.max_stale_s = seconds(jc.maxStaleSeconds, "jwksCache.maxStaleSeconds");
      if (jc.maxKeys !== undefined) keyCache.max_keys = seconds(jc.maxKeys, "jwksCache.maxKeys");
      if (jc.unknownKidCooldownSeconds !== undefined) {
        keyCache.unknown_kid_cooldown_s = seconds(jc.unknownKidCooldownSeconds, "jwksCache.unknownKidCooldownSeconds");
      }
      let tokenCache;
      if (cache === false) tokenCache = { capacity: 0, max_ttl_s: 0 };
      else if (cache !== undefined) {
        if (cache === null || typeof cache !== "object") throw configError("cache must be an object or false");
        checkKeys(cache, new Set(["maxEntries", "maxTtlSeconds"]), "cache");
        tokenCache = {};
        if (cache.maxEntries !== undefined) tokenCache.capacity = seconds(cache.maxEntries, "cache.maxEntries");
        if (cache.maxTtlSeconds !== undefined) tokenCache.max_ttl_s = seconds(cache.maxTtlSeconds, "cache.maxTtlSeconds");
      }
      if (shared.realm !== undefined && typeof shared.realm !== "string") throw configError("realm must be a string");
      if (shared.onDecision !== undefined && typeof shared.onDecision !== "function") {
        throw configError("onDecision must be a function");
      }
      if (shared.fetch !== undefined && typeof shared.fetch !== "function") throw configError("fetch must be a function");
      const mode = shared.crypto ?? "native";
      if (mode !== "native" && mode !== "wasm") throw configError('crypto must be "native" or "wasm"');
      this.#crypto = mode === "native" ? rt.crypto : null;
      this.#revocation = revocationJson(shared.revocation);
      for (const p of providers) p.policy.revocation = this.#revocation;

      const now = clockSeconds();
      const config = { providers, key_cache: keyCache, realm: shared.realm ?? "", now: Math.floor(now) };
      if (tokenCache) config.token_cache = tokenCache;
      let core;
      try {
        core = new rt.Core(JSON.stringify(config));
      } catch (e) {
        throw configError(e && e.message ? e.message : String(e));
      }
      this.#core = core;
      const info = JSON.parse(core.info());
      this.#providers = info.providers;
      this.#maxChars = info.max_token_bytes;
      this.#meta = core.meta() >>> 2;
      this.#onDecision = shared.onDecision;
      this.#fetch = shared.fetch ?? rt.fetch;
      const audit = this.#onDecision ? FLAG_AUDIT : 0;
      // Without synchronous host crypto, verifySync checks signatures in wasm.
      this.#flagsSync = audit | (this.#crypto && this.#crypto.sync ? 0 : FLAG_PURE);
      this.#flagsAsync = audit | (this.#crypto ? 0 : FLAG_PURE);
      this.#keyTables = providers.map(() => null);
      providers.forEach((p, i) => {
        if (p.jwks) this.#keyTable(i, p.jwks, now);
      });
      this.#grow(4096);
    }

    /** Verify with the keys already cached; no I/O. Returns the claims or throws TokenError. */
    verifySync(token, options) {
      const o = options === undefined ? EMPTY : options;
      const now = o === EMPTY ? clockSeconds() : nowOption(o);
      let st = this.#run(token, o, now, this.#flagsSync);
      if (st === SIGNATURE) st = this.#signSync(now, this.#flagsSync);
      if (st === LOST) st = this.#run(token, o, now, this.#flagsSync | FLAG_PURE);
      return this.#outcome(st);
    }

    /** Verify, fetching or refreshing the issuer's JWKS when needed. */
    async verify(token, options) {
      const o = options === undefined ? EMPTY : options;
      let now = o === EMPTY ? clockSeconds() : nowOption(o);
      this.#refreshInBackground(now);
      for (let attempt = 0; ; attempt++) {
        let st = this.#run(token, o, now, this.#flagsAsync);
        if (st === SIGNATURE) {
          st = this.#crypto.sync ? this.#signSync(now, this.#flagsAsync) : await this.#signAsync(now, this.#flagsAsync);
        }
        if (st === LOST) st = this.#run(token, o, now, this.#flagsAsync | FLAG_PURE);
        if (st === ERROR && attempt < 2 && this.#fetchPending()) {
          // The core scheduled a JWKS fetch that may change the answer (first use, unknown kid).
          await this.#fetchDue(now);
          if (o.now === undefined) now = clockSeconds();
          continue;
        }
        return this.#outcome(st);
      }
    }

    /** Fetch every remote issuer's JWKS now (optional: verify() fetches on first use). */
    async hydrate() {
      const now = clockSeconds();
      await this.#fetchDue(now);
      const missing = this.#providers.findIndex((p, i) => !this.#core.has_keys(i, clockSeconds()));
      if (missing >= 0) {
        const why = this.#lastFetchError.get(missing);
        this.#core.deny(
          "jwks_unavailable",
          `no key set is available for ${this.#providers[missing].issuers[0]}${why ? ` (${why})` : ""}`,
          NONE,
          0,
        );
        throw this.#error();
      }
    }

    /** Install a JWKS for an issuer or Cognito pool id (optional with one issuer), as if fetched now. */
    cacheJwks(jwks, issuer) {
      const doc = parseJwks(jwks, "cacheJwks(jwks)");
      let index = 0;
      if (issuer !== undefined) {
        // An issuer, or (as aws-jwt-verify takes it) a Cognito user pool id.
        index = this.#providers.findIndex((p) => p.issuers.includes(issuer));
        if (index < 0 && typeof issuer === "string" && /^[\w-]+_\w+$/.test(issuer)) {
          index = this.#providers.findIndex((p) => p.issuers.some((i) => i.endsWith(`/${issuer}`)));
        }
        if (index < 0) throw configError(`cacheJwks: ${JSON.stringify(issuer)} is not a configured issuer`);
      } else if (this.#providers.length > 1) {
        throw configError("cacheJwks: several issuers are configured; pass the issuer");
      }
      const now = clockSeconds();
      try {
        this.#core.cache_jwks(index, now, JSON.stringify(doc));
      } catch (e) {
        throw configError(`cacheJwks: ${e && e.message ? e.message : e}`);
      }
      this.#keyTable(index, doc, now);
    }

    /** Revoke a token (jti), a client, or a client's tokens issued before a time. */
    revoke(what) {
      if (what === null || typeof what !== "object") throw configError("revoke() takes {jti} | {clientId} | {clientId, issuedBefore}");
      const { jti, clientId, issuedBefore } = what;
      const r = this.#revocation;
      const keys = Object.keys(what);
      if (keys.some((k) => k !== "jti" && k !== "clientId" && k !== "issuedBefore") || keys.length === 0) {
        throw configError("revoke() takes {jti} | {clientId} | {clientId, issuedBefore}");
      }
      if (jti !== undefined) {
        if (typeof jti !== "string" || keys.length !== 1) throw configError("revoke({jti}) takes one string jti");
        if (!r.jti.includes(jti)) r.jti.push(jti);
      } else if (typeof clientId !== "string") {
        throw configError("revoke() needs a string clientId");
      } else if (issuedBefore !== undefined) {
        r.issued_before[clientId] = timeSeconds(issuedBefore, "revoke({issuedBefore})");
      } else if (!r.client_ids.includes(clientId)) {
        r.client_ids.push(clientId);
      }
      this.#core.set_revocation(JSON.stringify(r));
    }

    /** Replace all revocations at once (e.g. from a central list). */
    setRevocation(list) {
      const r = revocationJson(list);
      this.#core.set_revocation(JSON.stringify(r));
      this.#revocation = r;
    }

    /**
     * Check the request's bearer token: { ok: true, claims } or { ok: false, status, headers,
     * body, error } ready to send (RFC 6750 §3).
     */
    async authorize(req, options) {
      const token = bearerToken(req);
      try {
        const claims = token === undefined ? this.#missing(options) : await this.verify(token, options);
        return { ok: true, status: 200, claims, headers: {} };
      } catch (error) {
        if (!(error instanceof TokenError)) throw error;
        const headers = { "content-type": "application/json", "cache-control": "no-store" };
        if (error.wwwAuthenticate) headers["www-authenticate"] = error.wwwAuthenticate;
        if (error.status === 503 || error.status === 429) headers["retry-after"] = String(JWKS_RETRY_AFTER_SECONDS);
        const body = JSON.stringify({ error: error.code, message: error.message });
        return { ok: false, status: error.status, claims: null, headers, body, error };
      }
    }

    #missing(options) {
      const o = options === undefined ? EMPTY : options;
      this.#run(undefined, o, 0, this.#flagsSync);
      return this.#outcome(ERROR);
    }

    // Write the token (and per-request strings) into wasm memory and run steps 1–7 (or all).
    #run(token, o, now, flags) {
      const core = this.#core;
      let scopesId = 0;
      let tp;
      let route;
      if (o !== EMPTY) {
        if (o.scope !== undefined) scopesId = this.#scopesId(o.scope);
        tp = o.certThumbprint;
        route = o.route;
        if (tp !== undefined && typeof tp !== "string") throw configError("options.certThumbprint must be a string");
        if (route !== undefined && typeof route !== "string") throw configError("options.route must be a string");
      }
      if (typeof token !== "string") {
        const routeLen = route === undefined ? NONE : this.#write(route, 0);
        return token === undefined || token === null
          ? core.deny("token_missing", "no token was presented", routeLen, flags)
          : core.deny("token_malformed", `the token is not a string but ${typeof token}`, routeLen, flags);
      }
      // Longer than the byte limit in UTF-16 units means longer in UTF-8 too: only a prefix one
      // past the limit is copied, so a huge string costs nothing and still gets token_too_large.
      if (token.length > this.#maxChars) token = token.slice(0, this.#maxChars + 1);
      let len;
      if (tp === undefined && route === undefined) {
        // The same token as last time (a client reusing its token) is already in the buffer.
        if (token === this.#inToken) return core.verify(this.#inTokenLen, NONE, NONE, now, scopesId, flags);
        if (token.length * 3 > this.#inCap) this.#grow(token.length * 3);
        let view = this.#inView;
        if (view.byteLength === 0) view = this.#refreshInput();
        len = encoder.encodeInto(token, view).written;
        this.#inToken = token;
        this.#inTokenLen = len;
        return core.verify(len, NONE, NONE, now, scopesId, flags);
      }
      len = this.#write(token, 0);
      const tpLen = tp === undefined ? NONE : this.#write(tp, len);
      const routeLen = route === undefined ? NONE : this.#write(route, len + (tpLen === NONE ? 0 : tpLen));
      return core.verify(len, tpLen, routeLen, now, scopesId, flags);
    }

    #write(s, at) {
      this.#inToken = null;
      const need = at + s.length * 3;
      if (need > this.#inCap) this.#grow(need);
      let view = this.#inView;
      if (view.byteLength === 0) view = this.#refreshInput();
      return encoder.encodeInto(s, view.subarray(at)).written;
    }

    #grow(cap) {
      this.#inToken = null;
      this.#inCap = Math.max(cap, this.#inCap * 2);
      this.#inPtr = this.#core.input(this.#inCap);
      this.#refreshInput();
    }

    #refreshInput() {
      views();
      this.#inView = new Uint8Array(memory.buffer, this.#inPtr, this.#inCap);
      return this.#inView;
    }

    #scopesId(scope) {
      const key = typeof scope === "string" ? `s${scope}` : `j${JSON.stringify(scope)}`;
      let id = this.#scopeIds.get(key);
      if (id === undefined) {
        const req = scopeRequirement(scope, "options.scope");
        if (req === null) return 0;
        if (this.#scopeIds.size >= MAX_ROUTE_SCOPES) {
          this.#core.clear_scopes();
          this.#scopeIds.clear();
        }
        id = this.#core.register_scopes(JSON.stringify(req));
        this.#scopeIds.set(key, id);
      }
      return id;
    }

    // The host's synchronous crypto (node:crypto) checks the signature the core handed out.
    #signSync(now, flags) {
      views();
      const m = this.#meta;
      const id = U32[m + 1];
      const key = this.#key(U32[m + 2], U32[m + 3], U32[m + 8], U32[m + 4]);
      let outcome = OUTCOME_PURE;
      if (key) {
        const sigPtr = U32[m + 6];
        try {
          const ok = this.#crypto.verify(
            U32[m + 4],
            key,
            U8.subarray(this.#inPtr, this.#inPtr + U32[m + 5]),
            U8.subarray(sigPtr, sigPtr + U32[m + 7]),
          );
          outcome = ok === true ? OUTCOME_VALID : OUTCOME_INVALID;
        } catch {
          outcome = OUTCOME_PURE; // let the core decide rather than guess
        }
      }
      return this.#core.finish(id, outcome, now, flags);
    }

    // crypto.subtle: copy what the signature needs out of wasm memory, await, then finish.
    async #signAsync(now, flags) {
      views();
      const m = this.#meta;
      const id = U32[m + 1];
      const alg = U32[m + 4];
      let key = this.#key(U32[m + 2], U32[m + 3], U32[m + 8], alg);
      const data = U8.slice(this.#inPtr, this.#inPtr + U32[m + 5]);
      const sigPtr = U32[m + 6];
      const sig = U8.slice(sigPtr, sigPtr + U32[m + 7]);
      let outcome = OUTCOME_PURE;
      try {
        key = await key;
        if (key) outcome = (await this.#crypto.verify(alg, key, data, sig)) === true ? OUTCOME_VALID : OUTCOME_INVALID;
      } catch {
        outcome = OUTCOME_PURE;
      }
      return this.#core.finish(id, outcome, now, flags);
    }

    // The host key for (provider, key index), imported once per key set generation; null means
    // "no host key": the core then checks the signature itself.
    #key(provider, index, generation, alg) {
      const t = this.#keyTables[provider];
      if (!t || t.generation !== generation || index >= t.jwks.length) return null;
      const slot = alg === RS256 ? t.rs : t.es;
      let key = slot[index];
      if (key === undefined) {
        const jwk = publicJwk(t.jwks[index], alg);
        try {
          key = jwk ? this.#crypto.importKey(jwk, alg) : null;
          if (key && typeof key.then === "function") key = key.catch(() => null);
        } catch {
          key = null;
        }
        slot[index] = key;
      }
      return key;
    }

    // Remember the document the core just accepted, indexed like the core's kids.
    #keyTable(provider, doc, now) {
      const kids = JSON.parse(this.#core.kids(provider, now));
      const entries = Array.isArray(doc.keys) ? doc.keys : [];
      const jwks = kids.map((kid) => entries.find((k) => k && typeof k === "object" && k.kid === kid) || null);
      this.#keyTables[provider] = { generation: this.#core.generation(provider), jwks, rs: [], es: [] };
    }

    #fetchPending() {
      views();
      return U32[this.#meta + 4] === 1;
    }

    #refreshInBackground(now) {
      const core = this.#core;
      for (let p = core.poll(now); p >= 0; p = core.poll(now)) this.#startFetch(p);
    }

    async #fetchDue(now) {
      this.#refreshInBackground(now);
      if (this.#inflight.size > 0) await Promise.all([...this.#inflight.values()]);
    }

    #startFetch(p) {
      const url = this.#providers[p].jwks_uri;
      const run = async () => {
        try {
          const r = await fetchJwks(this.#fetch, url, this.#timeoutMs, this.#maxJwksBytes);
          const now = clockSeconds();
          const taken = this.#core.on_jwks_response(p, now, r.status, r.cacheControl ?? undefined, r.body);
          if (taken >= 0) {
            this.#lastFetchError.delete(p);
            let doc = null;
            try {
              doc = JSON.parse(decoder.decode(r.body));
            } catch {
              doc = null;
            }
            if (doc) this.#keyTable(p, doc, now);
            else this.#keyTables[p] = null;
          } else {
            this.#lastFetchError.set(p, this.#core.last_refresh_error());
          }
        } catch (e) {
          this.#core.on_jwks_failure(p, clockSeconds());
          const aborted = e && (e.name === "AbortError" || e.name === "TimeoutError");
          this.#lastFetchError.set(p, aborted ? `JWKS fetch timed out after ${this.#timeoutMs} ms` : "JWKS fetch failed");
        } finally {
          this.#inflight.delete(p);
        }
      };
      this.#inflight.set(p, run());
    }

    #explain(e) {
      const why = [...this.#lastFetchError.values()];
      if (why.length > 0) e.message += ` (last JWKS fetch: ${why.join("; ")})`;
    }

    #outcome(st) {
      views();
      if (this.#onDecision !== undefined) this.#audit();
      if (st === ACCEPT) {
        const m = this.#meta;
        const id = U32[m + 1];
        const len = U32[m + 3];
        if (len === 0) {
          const hit = this.#claims.get(id);
          if (hit !== undefined) return hit;
          this.#core.claims_json(id);
          views();
        }
        return this.#newClaims(id);
      }
      const e = this.#error();
      if (e.code === "jwks_unavailable") this.#explain(e);
      throw e;
    }

    #newClaims(id) {
      const m = this.#meta;
      views();
      const ptr = U32[m + 2];
      const claims = deepFreeze(JSON.parse(decoder.decode(U8.subarray(ptr, ptr + U32[m + 3]))));
      if (id !== 0) {
        if (this.#claims.size >= MAX_CLAIMS_CACHED) this.#claims.clear();
        this.#claims.set(id, claims);
      }
      return claims;
    }

    #error() {
      views();
      const m = this.#meta;
      const ptr = U32[m + 2];
      const doc = JSON.parse(decoder.decode(U8.subarray(ptr, ptr + U32[m + 3])));
      return new TokenError(doc.code, doc.message, {
        status: doc.status,
        wwwAuthenticate: doc.www_authenticate,
        claims: doc.claims ? deepFreeze(doc.claims) : null,
      });
    }

    #audit() {
      views();
      const ptr = U32[this.#meta + 10];
      const len = U32[this.#meta + 11];
      if (len === 0) return;
      const record = JSON.parse(decoder.decode(U8.subarray(ptr, ptr + len)));
      try {
        this.#onDecision(record);
      } catch {
        // An audit sink that throws must not turn into a different verdict.
      }
    }
  }

  class CognitoVerifier extends Verifier {
    /** A verifier for one Amazon Cognito user pool, or several (pass an array). */
    static create(props, options) {
      const { providers, shared } = splitOptions(props, options, "cognito");
      return new CognitoVerifier(CONSTRUCT, providers, shared);
    }
  }

  class JwtVerifier extends Verifier {
    /** A verifier for any OIDC/OAuth2 issuer (or several: pass an array). */
    static create(props, options) {
      const { providers, shared } = splitOptions(props, options, "jwt");
      return new JwtVerifier(CONSTRUCT, providers, shared);
    }
  }

  function authorize(verifier, req, options) {
    if (!(verifier instanceof Verifier)) throw configError("authorize(verifier, req, options?) needs a verifier");
    return verifier.authorize(req, options);
  }

  return { CognitoVerifier, JwtVerifier, authorize };
}

const CONSTRUCT = Symbol("tokengate.construct");
const EMPTY = Object.freeze({});
