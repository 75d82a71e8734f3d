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
const FLAG_FINAL = 4;

const OUTCOME_INVALID = 0;
const OUTCOME_VALID = 1;
const OUTCOME_PURE = 2;

const NONE = 0xffffffff;
// The start of the input buffer keeps the last few tokens written, one per slot: clients reuse
// a token for its lifetime, so a server that sees a handful of them in turn writes none again.
const TOKEN_SLOTS = 4;
const SLOT_BYTES = 4096;
const RS256 = 0;
const MAX_CLAIMS_CACHED = 4096;
const MAX_ROUTE_SCOPES = 1000;

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

// Claims are frozen on every uncached verification: recurse only into nested objects (a
// Cognito payload has none), never call out per primitive member.
function deepFreeze(v) {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) {
    for (const x of v) if (x !== null && typeof x === "object") deepFreeze(x);
  } else {
    for (const k of Object.keys(v)) {
      const x = v[k];
      if (x !== null && typeof x === "object") deepFreeze(x);
    }
  }
  return Object.freeze(v);
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
  "clientIdentities",
  "requireIdentity",
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
  "routes",
  "default",
  "forward",
  "sharedCache",
  "feed",
  "clientCertificate",
  "signatureChecksPerSecond",
]);
const HOST_KEYS = new Set(["onDecision", "fetch", "sharedCache"]);
// fromConfig's options: the host's, and `crypto`, which replaces the document's.
const FROM_CONFIG_KEYS = new Set([...HOST_KEYS, "crypto"]);
const RENAMED = {
  graceSeconds: "leewaySeconds",
  customJwtCheck: "customClaims (declarative rules) or a check on the returned claims",
  includeRawJwtInErrors: "the claims on TokenError (the raw token is never included)",
  issuers: "issuer",
  rules: "routes",
};

// The core's configuration (crates/tokengate/README.md, "Configuration") names its fields in
// snake_case; these options are the same fields with JavaScript names. Nothing is defaulted or
// bounded here: the core does both, and its errors are translated back to these names.
const PROVIDER_FIELDS = {
  tokenUse: "token_use",
  clientId: "client_ids",
  scope: "scopes",
  audience: "audience",
  leewaySeconds: "leeway_s",
  maxTokenAgeSeconds: "max_token_age_s",
  customClaims: "claims",
  mtlsBinding: "mtls_binding",
  clientIdentities: "client_identities",
  requireIdentity: "require_identity",
  minRsaBits: "min_rsa_bits",
  maxTokenBytes: "max_token_bytes",
  userPoolId: "cognito_user_pool_id",
  algorithms: "algorithms",
  jwksUri: "jwks.uri",
  jwks: "jwks.keys",
};
const JWKS_CACHE_FIELDS = {
  refreshSeconds: "refresh_s",
  maxStaleSeconds: "max_stale_s",
  timeoutMs: "timeout_ms",
  maxBytes: "max_bytes",
  maxKeys: "max_keys",
  unknownKidCooldownSeconds: "unknown_kid_cooldown_s",
};
const TOP_FIELDS = {
  "token_cache.capacity": "cache.maxEntries",
  "token_cache.max_ttl_s": "cache.maxTtlSeconds",
  rules: "routes",
  client_certificate: "clientCertificate",
  signature_checks_per_s: "signatureChecksPerSecond",
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

// A string or an array means "all of them". Per call, a requirement that lists nothing is
// refused: an empty list would silently require nothing.
function scopeRequirement(v, name, { perCall = true } = {}) {
  if (v === undefined || v === null) return null;
  let req = null;
  if (typeof v === "string" || Array.isArray(v)) req = { all: stringList(v, name) };
  else if (typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && (keys[0] === "all" || keys[0] === "any")) {
      req = { [keys[0]]: stringList(v[keys[0]], `${name}.${keys[0]}`, { single: false }) };
    }
  }
  if (req === null) {
    throw configError(`${name} must be a string, an array of strings, {all: [...]} or {any: [...]}`);
  }
  const list = req.all ?? req.any;
  if (!perCall) return req;
  if (list.length === 0) throw configError(`${name} must list at least one scope (an empty list would require nothing)`);
  if (list.some((s) => s === "" || s.includes(" "))) throw configError(`${name}: a scope is a non-empty string without spaces`);
  return req;
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
        return { claim: r.claim, one_of: r.oneOf };
      case "contains":
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

// One provider (issuer or Cognito pool) of the core configuration, from user options.
function providerConfig(o, kind, jwksCache) {
  const p = {};
  const set = (field, value) => {
    if (value !== undefined) p[field] = value;
  };
  if (kind === "cognito") {
    set("cognito_user_pool_id", o.userPoolId);
    p.algorithms = ["RS256"];
    if (!("tokenUse" in o)) throw configError("tokenUse is required: \"access\", \"id\" or null (not checked)");
    p.token_use = o.tokenUse;
  } else {
    if (o.issuer === undefined) throw configError("issuer is required");
    if (Array.isArray(o.issuer)) p.issuers = o.issuer;
    else p.issuer = o.issuer;
    set("algorithms", o.algorithms);
    // Generic issuers do not emit token_use: unchecked unless asked for.
    p.token_use = o.tokenUse === undefined ? null : o.tokenUse;
  }
  if (!("clientId" in o)) {
    throw configError("clientId is required: the allowed client ids, or null to accept any client");
  }
  p.client_ids = typeof o.clientId === "string" ? [o.clientId] : o.clientId;
  const scope = o.scope === undefined ? undefined : scopeRequirement(o.scope, "scope", { perCall: false });
  set("scopes", scope);
  set("audience", typeof o.audience === "string" ? [o.audience] : o.audience);
  set("leeway_s", o.leewaySeconds);
  set("max_token_age_s", o.maxTokenAgeSeconds);
  if (o.customClaims !== undefined) p.claims = claimRules(o.customClaims);
  set("mtls_binding", o.mtlsBinding);
  set("client_identities", o.clientIdentities);
  set("require_identity", o.requireIdentity);
  set("min_rsa_bits", o.minRsaBits);
  set("max_token_bytes", o.maxTokenBytes);
  const jwks = {};
  if (o.jwks !== undefined) jwks.keys = parseJwks(o.jwks, "jwks").keys;
  if (o.jwksUri !== undefined) jwks.uri = o.jwksUri;
  for (const [js, core] of Object.entries(JWKS_CACHE_FIELDS)) {
    if (jwksCache[js] !== undefined) jwks[core] = jwksCache[js];
  }
  if (kind !== "cognito" && jwks.keys === undefined && jwks.uri === undefined) {
    throw configError("jwksUri or jwks is required");
  }
  if (Object.keys(jwks).length > 0) p.jwks = jwks;
  return p;
}

// User options -> { config: the core configuration, host: this host's own settings }.
function buildConfig(props, extra, kind) {
  const list = Array.isArray(props) ? props : [props];
  if (list.length === 0) throw configError("at least one issuer is required");
  const allowed = new Set(kind === "cognito" ? ["userPoolId", ...POLICY_KEYS] : ["issuer", "algorithms", ...POLICY_KEYS]);
  const shared = {};
  const own = list.map((o, i) => {
    if (o === null || typeof o !== "object") throw configError("options must be an object");
    const mine = {};
    for (const [k, v] of Object.entries(o)) {
      if (VERIFIER_KEYS.has(k) && !Array.isArray(props)) shared[k] = v;
      else mine[k] = v;
    }
    checkKeys(mine, allowed, Array.isArray(props) ? `options[${i}]` : "options");
    return mine;
  });
  if (extra !== undefined) {
    if (extra === null || typeof extra !== "object") throw configError("verifier options must be an object");
    checkKeys(extra, VERIFIER_KEYS, "verifier options");
    Object.assign(shared, extra);
  }
  const jc = shared.jwksCache ?? {};
  if (jc === null || typeof jc !== "object") throw configError("jwksCache must be an object");
  checkKeys(jc, new Set(Object.keys(JWKS_CACHE_FIELDS)), "jwksCache");
  const config = {
    providers: own.map((o, i) => {
      try {
        return providerConfig(o, kind, jc);
      } catch (e) {
        if (!(e instanceof TypeError) || !Array.isArray(props)) throw e;
        throw configError(`options[${i}].${e.message.replace(/^tokengate: /, "")}`);
      }
    }),
  };
  const cache = shared.cache;
  if (cache === false) config.token_cache = { capacity: 0 };
  else if (cache !== undefined) {
    if (cache === null || typeof cache !== "object") throw configError("cache must be an object or false");
    checkKeys(cache, new Set(["maxEntries", "maxTtlSeconds"]), "cache");
    config.token_cache = {};
    if (cache.maxEntries !== undefined) config.token_cache.capacity = cache.maxEntries;
    if (cache.maxTtlSeconds !== undefined) config.token_cache.max_ttl_s = cache.maxTtlSeconds;
  }
  if (shared.realm !== undefined) config.realm = shared.realm;
  if (shared.routes !== undefined) config.rules = shared.routes;
  if (shared.default !== undefined) config.default = shared.default;
  if (shared.forward !== undefined) config.forward = shared.forward;
  if (shared.feed !== undefined) config.feed = shared.feed;
  if (shared.clientCertificate !== undefined) config.client_certificate = shared.clientCertificate;
  if (shared.signatureChecksPerSecond !== undefined) config.signature_checks_per_s = shared.signatureChecksPerSecond;
  if (shared.crypto !== undefined) config.crypto = shared.crypto;
  const revocation = revocationJson(shared.revocation);
  config.revocation = revocation;
  const host = {};
  for (const k of HOST_KEYS) if (shared[k] !== undefined) host[k] = shared[k];
  return { config, host, revocation, names: Array.isArray(props) ? "options[i]" : "options" };
}

// A core error names the core's field; say it with the option name the user wrote.
function translateError(message, names) {
  let m = /^([^:]+): (.*)$/s.exec(message);
  if (!m) return message;
  let [, field, rest] = m;
  const p = /^providers\[(\d+)\]\.(.*)$/.exec(field);
  if (p && names !== null) {
    const prefix = names === "options" ? "" : `options[${p[1]}].`;
    let sub = p[2];
    const jc = /^jwks\.(.*)$/.exec(sub);
    const jsName =
      Object.entries(PROVIDER_FIELDS).find(([, core]) => sub === core || sub.startsWith(`${core}[`) || sub.startsWith(`${core}.`)) ??
      (jc && Object.entries(JWKS_CACHE_FIELDS).find(([, core]) => core === jc[1]));
    if (jsName) {
      const [js, core] = jsName;
      const cacheField = jc !== null && JWKS_CACHE_FIELDS[js] === core;
      const name = cacheField ? `jwksCache.${js}` : js;
      const written = cacheField ? `jwks.${core}` : core;
      field = `${prefix}${name}${sub.slice(written.length)}`;
    } else field = `${prefix}${sub}`;
  } else if (names !== null) {
    for (const [core, js] of Object.entries(TOP_FIELDS)) {
      if (field === core || field.startsWith(`${core}[`) || field.startsWith(`${core}.`)) {
        field = `${js}${field.slice(core.length)}`;
        break;
      }
    }
  }
  return `${field}: ${rest}`;
}

// ---------------------------------------------------------------------------------------------
// JWKS fetching: bounded in time and size; every failure is reported to the core, which keeps
// the last good keys.

async function fetchJwks(fetchFn, url, timeoutMs, maxBytes) {
  // A redirect is not followed: it could lead to keys served in clear text. Its 3xx (or a
  // browser's opaque status 0) is a failed refresh, and the last good keys stay.
  const init = { headers: { accept: "application/json" }, redirect: "manual" };
  const r = await fetchCapped(fetchFn, url, init, timeoutMs, maxBytes);
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

// Every value of header `name` (lower case) in a Node IncomingMessage, a Fetch Request or a
// plain object; a Fetch Headers gives one (comma-joined) value.
function headerValues(req, name) {
  const h = req.headers;
  if (h && typeof h.get === "function") {
    const v = h.get(name);
    return v === null ? [] : [v];
  }
  if (req.headersDistinct && typeof req.headersDistinct === "object") {
    return req.headersDistinct[name] ?? [];
  }
  const values = [];
  if (Array.isArray(req.rawHeaders)) {
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      if (String(req.rawHeaders[i]).toLowerCase() === name) values.push(String(req.rawHeaders[i + 1]));
    }
  } else if (h && typeof h === "object") {
    for (const k of Object.keys(h)) {
      if (k.toLowerCase() !== name) continue;
      const v = h[k];
      if (Array.isArray(v)) values.push(...v.map(String));
      else if (v !== undefined && v !== null) values.push(String(v));
    }
  }
  return values;
}

// The client certificate of the connection as the runtime reports it: Node's TLSSocket (the DER
// of a certificate the server verified), or Workers' request.cf.tlsClientAuth (its subject and
// SHA-256 when Cloudflare verified it). null when none was presented or it was not verified.
function connectionPeer(req) {
  const socket = req.socket;
  if (socket && typeof socket.getPeerCertificate === "function") {
    if (socket.authorized !== true) return null;
    const cert = socket.getPeerCertificate();
    return cert && cert.raw instanceof Uint8Array && cert.raw.length > 0 ? cert.raw : null;
  }
  const tls = req.cf && req.cf.tlsClientAuth;
  if (tls && typeof tls === "object") {
    if (tls.certPresented !== "1" || tls.certVerified !== "SUCCESS") return null;
    return {
      subject: typeof tls.certSubjectDNRFC2253 === "string" && tls.certSubjectDNRFC2253 !== "" ? tls.certSubjectDNRFC2253 : null,
      sha256: typeof tls.certFingerprintSHA256 === "string" && tls.certFingerprintSHA256 !== "" ? tls.certFingerprintSHA256 : null,
    };
  }
  return null;
}

// What a host received, from a Node IncomingMessage, a Fetch API Request or a plain object
// {method, url, headers}: the method, the request target, every Authorization value as they
// came, and the client certificate when the configuration looks at it (`cert`: how). Nothing is
// parsed or judged here; the core does that.
function requestFacts(req, cert) {
  if (req === null || typeof req !== "object") throw configError("authorize(req): req must be a request object");
  const h = req.headers;
  let values = [];
  if (h && typeof h.get === "function") {
    // Fetch Headers join repeated values with ", ": the core reads that as a list (malformed).
    const v = h.get("authorization");
    if (v !== null) values = [v];
  } else if (req.headersDistinct && typeof req.headersDistinct === "object") {
    // Node: req.headers keeps only the first Authorization; headersDistinct has them all.
    values = req.headersDistinct.authorization ?? [];
  } else if (Array.isArray(req.rawHeaders)) {
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
      if (String(req.rawHeaders[i]).toLowerCase() === "authorization") values.push(String(req.rawHeaders[i + 1]));
    }
  } else if (h && typeof h === "object") {
    for (const k of Object.keys(h)) {
      if (k.toLowerCase() !== "authorization") continue;
      const v = h[k];
      if (Array.isArray(v)) values.push(...v.map(String));
      else if (v !== undefined && v !== null) values.push(String(v));
    }
  }
  let target = "/";
  if (typeof req.url === "string") {
    // A Fetch Request carries an absolute URL (already parsed by the runtime, as the origin
    // will see it); Node carries the request-target as received.
    target = /^[a-z][a-z0-9+.-]*:\/\//i.test(req.url) && h && typeof h.get === "function"
      ? requestTarget(req.url)
      : req.url;
  }
  const method = typeof req.method === "string" ? req.method : "GET";
  const facts = { method, target, authorization: values };
  if (cert.header !== null) facts.clientCert = headerValues(req, cert.header);
  else if (cert.connection) facts.peer = connectionPeer(req);
  return facts;
}

// Certificate facts as the core reads them (Peer::from_host_bytes): DER bytes as they are, a
// thumbprint as text, facts as JSON with the core's member names. `what` names the option.
function peerInput(peer, what) {
  if (peer === undefined || peer === null) return null;
  if (peer instanceof Uint8Array) return peer;
  if (typeof peer === "string") {
    // A PEM certificate or a thumbprint: the core tells them apart.
    return peer;
  }
  if (typeof peer !== "object") throw configError(`${what} must be certificate facts, DER bytes, PEM or a thumbprint`);
  let json = "{";
  for (const k in peer) {
    const v = peer[k];
    if (v === undefined) continue;
    const key = PEER_KEYS[k];
    if (key === undefined) throw configError(`${what}: unknown member ${JSON.stringify(k)} (uriSans, dnsSans, subject, sha256)`);
    json += `${json.length > 1 ? "," : ""}"${key}":${JSON.stringify(v)}`;
  }
  return json + "}";
}

const PEER_KEYS = { uriSans: "uri_sans", dnsSans: "dns_sans", subject: "subject", sha256: "sha256" };

function requestTarget(url) {
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return url;
  }
}

function headerObject(pairs) {
  const out = {};
  for (const [n, v] of pairs) out[n] = v;
  return out;
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
    #slotToken = new Array(TOKEN_SLOTS).fill(null);
    #slotLen = new Array(TOKEN_SLOTS).fill(0);
    #slotNext = 0;
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
    #revocation;
    #crypto;
    #removeHeaders;
    #cert;
    #feedSource;
    #shared;

    // `built`: { config: the core configuration (with "crypto"), host: {onDecision, fetch, sharedCache},
    // revocation: the lists revoke() adds to, names: how to name fields in errors }.
    constructor(secret, built) {
      if (secret !== CONSTRUCT) {
        throw new TypeError("tokengate: use CognitoVerifier.create(), JwtVerifier.create() or JwtVerifier.fromConfig()");
      }
      const { config, host } = built;
      if (host.onDecision !== undefined && typeof host.onDecision !== "function") {
        throw configError("onDecision must be a function");
      }
      if (host.fetch !== undefined && typeof host.fetch !== "function") throw configError("fetch must be a function");
      this.#revocation = built.revocation;

      const now = clockSeconds();
      let core;
      try {
        core = new rt.Core(JSON.stringify(config), now, Math.floor(Math.random() * 2 ** 52));
      } catch (e) {
        throw configError(translateError(e && e.message ? e.message : String(e), built.names));
      }
      this.#core = core;
      const info = JSON.parse(core.info());
      // The configuration's "crypto", defaulted and checked by the core.
      this.#crypto = info.crypto === "native" ? rt.crypto : null;
      this.#providers = info.providers;
      this.#maxChars = info.max_token_bytes;
      this.#removeHeaders = Object.freeze([...info.remove_headers]);
      this.#cert = Object.freeze({ header: info.certificate_header ?? null, connection: info.needs_peer === true });
      this.#feedSource = info.feed;
      const shared = host.sharedCache === undefined ? rt.sharedCache : host.sharedCache;
      this.#shared = sharedStore(shared === false ? null : shared ?? null);
      this.#meta = core.meta() >>> 2;
      this.#onDecision = host.onDecision;
      this.#fetch = host.fetch ?? rt.fetch;
      const audit = this.#onDecision ? FLAG_AUDIT : 0;
      // Without synchronous host crypto, verifySync checks signatures in wasm.
      this.#flagsSync = audit | (this.#crypto && this.#crypto.sync ? 0 : FLAG_PURE);
      this.#flagsAsync = audit | (this.#crypto ? 0 : FLAG_PURE);
      this.#keyTables = config.providers.map(() => null);
      config.providers.forEach((p, i) => {
        if (p.jwks && Array.isArray(p.jwks.keys)) this.#keyTable(i, { keys: p.jwks.keys }, now);
      });
      this.#grow(TOKEN_SLOTS * SLOT_BYTES);
    }

    /**
     * Header names a host removes from every request it lets through: those decide()/authorize()
     * may set from claims (`forward`), and client certificate headers (`client-cert`,
     * the six `x-amzn-mtls-clientcert…` headers ALB sets) the configuration does not trust. A client never sets what the
     * origin trusts.
     */
    get removeHeaders() {
      return this.#removeHeaders;
    }

    /** The same list as removeHeaders (its earlier name). */
    get forwardHeaders() {
      return this.#removeHeaders;
    }

    /**
     * The header a trusted TLS-terminating proxy puts the client certificate in
     * (`client-cert`, `x-amzn-mtls-clientcert-leaf`), whose values decide() takes as
     * `clientCert`; null when the certificate comes from the connection.
     */
    get certificateHeader() {
      return this.#cert.header;
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
      const started = this.#refreshInBackground(now);
      try {
        return await this.#verifyFetching(token, o, now);
      } finally {
        await this.#keepAlive(started, o);
      }
    }

    async #verifyFetching(token, o, now) {
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

    /** Fetch every remote issuer's JWKS (and the policy feed) now (optional: verify() fetches on first use). */
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
      const feed = this.feedState();
      if (feed !== null && feed.status !== "fresh") {
        this.#core.deny("policy_unavailable", `the policy feed is ${feed.status}${feed.last_error ? ` (${feed.last_error})` : ""}`, NONE, 0);
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
     * Decide on one request from what was received: { method, target, authorization: [values],
     * peer?, clientCert?: [values] }. `peer` is the connection's client certificate (DER bytes,
     * PEM, {uriSans, dnsSans, subject, sha256} or a SHA-256 thumbprint); `clientCert` the values
     * of the header `certificateHeader` names. Fetches keys when needed. The answer is the
     * core's, ready to send.
     */
    async decide(facts, options) {
      const o = options === undefined ? EMPTY : options;
      let now = o === EMPTY || o.now === undefined ? clockSeconds() : nowOption(o);
      // Background refreshes start only from requests that carry credentials: a request that
      // starts a fetch and ends without waiting for it would leave a promise that, in workerd,
      // no later request may await.
      const auth = facts && facts.authorization;
      const started = auth !== undefined && auth !== null && auth.length !== 0 ? this.#refreshInBackground(now) : [];
      try {
        return await this.#decideFetching(facts, o, now);
      } finally {
        await this.#keepAlive(started, o);
      }
    }

    async #decideFetching(facts, o, now) {
      for (let attempt = 0; ; attempt++) {
        const flags = this.#flagsAsync | (attempt >= 2 ? FLAG_FINAL : 0);
        let st = this.#runRequest(facts, o, now, flags);
        if (st === SIGNATURE) {
          st = this.#crypto.sync ? this.#signSync(now, flags) : await this.#signAsync(now, flags);
        }
        if (st === LOST) st = this.#runRequest(facts, o, now, flags | FLAG_PURE);
        if (st === ERROR && this.#fetchPending()) {
          // The core scheduled a JWKS fetch that may change the answer (first use, unknown kid).
          await this.#fetchDue(now);
          if (o.now === undefined) now = clockSeconds();
          continue;
        }
        return this.#requestOutcome(st);
      }
    }

    /** decide() with the keys already cached; no I/O. */
    decideSync(facts, options) {
      const o = options === undefined ? EMPTY : options;
      const now = o === EMPTY || o.now === undefined ? clockSeconds() : nowOption(o);
      const flags = this.#flagsSync | FLAG_FINAL;
      let st = this.#runRequest(facts, o, now, flags);
      if (st === SIGNATURE) st = this.#signSync(now, flags);
      if (st === LOST) st = this.#runRequest(facts, o, now, flags | FLAG_PURE);
      return this.#requestOutcome(st);
    }

    /**
     * Check a request (Node IncomingMessage, Fetch Request, or {method, url, headers}): the
     * method, target and Authorization values go to the core's request gate (routes, path
     * rules, bearer parsing) and its answer comes back ready to send: { ok, status, headers,
     * body, claims, forward, error }.
     */
    async authorize(req, options) {
      const facts = requestFacts(req, this.#cert);
      const o = options === undefined ? EMPTY : options;
      if (o !== EMPTY && o.peer !== undefined) facts.peer = o.peer;
      if (o !== EMPTY && o.certThumbprint !== undefined) facts.certThumbprint = o.certThumbprint;
      return this.decide(facts, o);
    }

    // Write method, target, certificate facts, up to two Authorization values and up to two
    // certificate header values into wasm memory.
    #runRequest(facts, o, now, flags) {
      if (facts === null || typeof facts !== "object") throw configError("decide(facts): facts must be an object");
      const { method, target } = facts;
      if (typeof method !== "string" || typeof target !== "string") {
        throw configError("decide(facts): method and target must be strings");
      }
      let auth = facts.authorization;
      if (auth === undefined || auth === null) auth = [];
      else if (typeof auth === "string") auth = [auth];
      if (!Array.isArray(auth) || !auth.every((v) => typeof v === "string")) {
        throw configError("decide(facts): authorization must be a string or an array of strings");
      }
      const tp = facts.certThumbprint;
      if (tp !== undefined && tp !== null && typeof tp !== "string") throw configError("certThumbprint must be a string");
      let cert = facts.clientCert;
      if (cert === undefined || cert === null) cert = [];
      else if (typeof cert === "string") cert = [cert];
      if (!Array.isArray(cert) || !cert.every((v) => typeof v === "string")) {
        throw configError("decide(facts): clientCert must be a string or an array of strings");
      }
      const peer = facts.peer !== undefined && facts.peer !== null ? peerInput(facts.peer, "decide(facts): peer") : tp ?? null;
      const scopesId = o !== EMPTY && o.scope !== undefined ? this.#scopesId(o.scope) : 0;
      this.#forgetTokens();
      // Values go in whole: cutting one could change what the core reads (spaces before the
      // credential count towards its length). Runtimes bound header sizes already.
      const parts = [method, target, peer];
      parts.push(auth.length > 0 ? auth[0] : null);
      parts.push(auth.length > 1 ? auth[1] : null);
      parts.push(cert.length > 0 ? cert[0] : null);
      parts.push(cert.length > 1 ? cert[1] : null);
      let need = 0;
      for (const p of parts) if (p !== null) need += typeof p === "string" ? p.length * 3 : p.length;
      if (need > this.#inCap) this.#grow(need);
      let view = this.#inView;
      if (view.byteLength === 0) view = this.#refreshInput();
      const lens = [];
      let at = 0;
      for (const p of parts) {
        if (p === null) {
          lens.push(NONE);
          continue;
        }
        let n;
        if (typeof p === "string") n = encoder.encodeInto(p, view.subarray(at)).written;
        else {
          view.set(p, at);
          n = p.length;
        }
        lens.push(n);
        at += n;
      }
      return this.#core.decide(lens[0], lens[1], lens[2], lens[3], lens[4], lens[5], lens[6], now, scopesId, flags);
    }

    #requestOutcome(st) {
      views();
      if (this.#onDecision !== undefined) this.#audit();
      const m = this.#meta;
      if (st === ACCEPT) {
        const answerPtr = U32[m + 6];
        const answer = JSON.parse(decoder.decode(U8.subarray(answerPtr, answerPtr + U32[m + 7])));
        let claims = null;
        if (U32[m + 8] === 1) {
          const id = U32[m + 1];
          if (U32[m + 3] === 0) {
            claims = this.#claims.get(id);
            if (claims === undefined) {
              this.#core.claims_json(id);
              claims = this.#newClaims(id);
            }
          } else claims = this.#newClaims(id);
        }
        const wd = answer.would_deny;
        return {
          ok: true,
          status: 200,
          code: null,
          headers: {},
          body: null,
          claims,
          forward: answer.forward,
          stripAuthorization: answer.strip_authorization,
          route: answer.route,
          wouldDeny: wd ? { status: wd.status, code: wd.code, headers: headerObject(wd.headers), body: wd.body } : null,
          error: null,
        };
      }
      const e = this.#error();
      if (e.code === "jwks_unavailable") this.#explain(e);
      const ptr = U32[m + 2];
      const doc = JSON.parse(decoder.decode(U8.subarray(ptr, ptr + U32[m + 3])));
      const r = doc.response;
      return {
        ok: false,
        status: r.status,
        code: r.code,
        headers: headerObject(r.headers),
        body: r.body,
        claims: null,
        forward: null,
        stripAuthorization: false,
        route: null,
        wouldDeny: null,
        error: e,
      };
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
        if (o.peer !== undefined && o.peer !== null) tp = peerInput(o.peer, "options.peer");
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
        // A token written before (a client reusing its token) is still in its slot.
        const slots = this.#slotToken;
        for (let k = 0; k < TOKEN_SLOTS; k++) {
          if (slots[k] === token) return core.verify(k * SLOT_BYTES, this.#slotLen[k], NONE, NONE, now, scopesId, flags);
        }
        let view = this.#inView;
        if (view.byteLength === 0) view = this.#refreshInput();
        const k = this.#slotNext;
        const at = k * SLOT_BYTES;
        const r = encoder.encodeInto(token, view.subarray(at, at + SLOT_BYTES));
        if (r.read === token.length) {
          slots[k] = token;
          this.#slotLen[k] = r.written;
          this.#slotNext = (k + 1) % TOKEN_SLOTS;
          return core.verify(at, r.written, NONE, NONE, now, scopesId, flags);
        }
        // Longer than a slot: written from the start of the buffer like per-request strings.
      }
      len = this.#write(token, 0);
      const tpLen = tp === undefined ? NONE : typeof tp === "string" ? this.#write(tp, len) : this.#writeBytes(tp, len);
      const routeLen = route === undefined ? NONE : this.#write(route, len + (tpLen === NONE ? 0 : tpLen));
      return core.verify(0, len, tpLen, routeLen, now, scopesId, flags);
    }

    // Anything written from the start of the input buffer overwrites the token slots.
    #forgetTokens() {
      this.#slotToken.fill(null);
      this.#slotNext = 0;
    }

    #write(s, at) {
      this.#forgetTokens();
      const need = at + s.length * 3;
      if (need > this.#inCap) this.#grow(need);
      let view = this.#inView;
      if (view.byteLength === 0) view = this.#refreshInput();
      return encoder.encodeInto(s, view.subarray(at)).written;
    }

    #writeBytes(bytes, at) {
      this.#forgetTokens();
      const need = at + bytes.length;
      if (need > this.#inCap) this.#grow(need);
      let view = this.#inView;
      if (view.byteLength === 0) view = this.#refreshInput();
      view.set(bytes, at);
      return bytes.length;
    }

    #grow(cap) {
      this.#forgetTokens();
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
        if (req === null) throw configError("options.scope must not be null (leave it out to require nothing more)");
        if (this.#scopeIds.size >= MAX_ROUTE_SCOPES) {
          this.#core.clear_scopes();
          this.#scopeIds.clear();
        }
        try {
          id = this.#core.register_scopes(JSON.stringify(req));
        } catch (e) {
          throw configError(e && e.message ? e.message : String(e));
        }
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
            U8.subarray(U32[m + 9], U32[m + 9] + U32[m + 5]),
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
      const data = U8.slice(U32[m + 9], U32[m + 9] + U32[m + 5]);
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

    // Starts the JWKS and feed fetches that are due; returns their promises.
    #refreshInBackground(now) {
      const core = this.#core;
      const started = [];
      for (let p = core.poll(now); p >= 0; p = core.poll(now)) started.push(this.#startFetch(p));
      const feed = core.poll_feed(now);
      if (feed !== undefined) started.push(this.#startFeedFetch(JSON.parse(feed)));
      return started;
    }

    // Refreshes a call started must be able to finish after it answers. `waitUntil` (a
    // Workers ExecutionContext's) keeps the request alive for them; without it, runtimes that
    // cancel a request's unfinished work when it ends (workerd) wait for them here, so a
    // refresh — a revocation in the feed — is never lost; elsewhere they run on by themselves.
    async #keepAlive(started, o) {
      if (started.length === 0) return;
      const all = Promise.allSettled(started);
      if (o !== EMPTY && typeof o.waitUntil === "function") o.waitUntil(all);
      else if (rt.holdRefreshes) await all;
    }

    async #fetchDue(now) {
      this.#refreshInBackground(now);
      while (this.#inflight.size > 0) await Promise.all([...this.#inflight.values()]);
    }

    // A JWKS from the shared cache (another isolate fetched it), else from the network. A
    // cached copy is handed to the core as fetched when it was fetched, so freshness and
    // staleness count from then; when the core then still wants a fetch, it goes out.
    #startFetch(p) {
      const url = this.#providers[p].jwks_uri;
      const run = async () => {
        try {
          const cached = await this.#shared.get("jwks", url);
          if (cached && this.#takeJwks(p, cached.fetchedAt, cached) >= 0 && this.#core.poll(clockSeconds()) !== p) {
            return;
          }
          const p0 = this.#providers[p];
          const r = await fetchJwks(this.#fetch, url, p0.timeout_ms, p0.max_jwks_bytes);
          const now = clockSeconds();
          if (this.#takeJwks(p, now, r) >= 0) await this.#shared.put("jwks", url, now, r);
        } catch (e) {
          this.#core.on_jwks_failure(p, clockSeconds());
          const aborted = e && (e.name === "AbortError" || e.name === "TimeoutError");
          const ms = this.#providers[p].timeout_ms;
          this.#lastFetchError.set(p, aborted ? `JWKS fetch timed out after ${ms} ms` : "JWKS fetch failed");
        } finally {
          this.#inflight.delete(p);
        }
      };
      const promise = run();
      this.#inflight.set(p, promise);
      return promise;
    }

    #takeJwks(p, at, r) {
      const taken = this.#core.on_jwks_response(p, at, r.status, r.cacheControl ?? undefined, r.body);
      if (taken >= 0) {
        this.#lastFetchError.delete(p);
        let doc = null;
        try {
          doc = JSON.parse(decoder.decode(r.body));
        } catch {
          doc = null;
        }
        if (doc) this.#keyTable(p, doc, at);
        else this.#keyTables[p] = null;
      } else {
        this.#lastFetchError.set(p, this.#core.last_refresh_error());
      }
      return taken;
    }

    // The policy feed: shared cache first (as for the JWKS), then the network with
    // If-None-Match. A 304 confirms the document in use.
    #startFeedFetch(fetch) {
      const source = this.#feedSource;
      const run = async () => {
        try {
          const cached = await this.#shared.get("feed", source.uri);
          if (cached && this.#core.on_feed_response(cached.fetchedAt, 200, cached.etag ?? undefined, cached.cacheControl ?? undefined, cached.body) >= 0) {
            const again = this.#core.poll_feed(clockSeconds());
            if (again === undefined) return;
            fetch = JSON.parse(again);
          }
          const headers = { accept: "application/json, application/jose" };
          if (fetch.if_none_match) headers["if-none-match"] = fetch.if_none_match;
          const r = await fetchCapped(this.#fetch, source.uri, { headers, redirect: "manual" }, source.timeout_ms, source.max_bytes);
          const body = r.truncated ? new Uint8Array(source.max_bytes + 1) : r.body;
          const now = clockSeconds();
          const etag = r.headers.get("etag");
          const cacheControl = r.headers.get("cache-control");
          const taken = this.#core.on_feed_response(now, r.status, etag ?? undefined, cacheControl ?? undefined, body);
          if (taken < 0) return;
          if (r.status === 200) await this.#shared.put("feed", source.uri, now, { status: 200, etag, cacheControl, body });
          else await this.#shared.touch("feed", source.uri, now);
        } catch {
          this.#core.on_feed_failure(clockSeconds());
        } finally {
          this.#inflight.delete(FEED);
        }
      };
      const promise = run();
      this.#inflight.set(FEED, promise);
      return promise;
    }

    /** Where the policy feed stands: { status, version, fresh_at, last_error }, or null. */
    feedState() {
      return JSON.parse(this.#core.feed_state(clockSeconds()));
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
      return new CognitoVerifier(CONSTRUCT, buildConfig(props, options, "cognito"));
    }
  }

  class JwtVerifier extends Verifier {
    /** A verifier for any OIDC/OAuth2 issuer (or several: pass an array). */
    static create(props, options) {
      return new JwtVerifier(CONSTRUCT, buildConfig(props, options, "jwt"));
    }

    /**
     * A verifier from the gate configuration every tokengate host loads (the Envoy filter's
     * plugin configuration: providers, rules, forward, …), as an object or JSON text. Remote
     * key sets need `jwks.uri` here. `options`: { fetch, crypto, onDecision }.
     */
    static fromConfig(config, options) {
      let doc = config;
      if (typeof doc === "string") {
        try {
          doc = JSON.parse(doc);
        } catch {
          throw configError("configuration: is not valid JSON");
        }
      }
      if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw configError("configuration: must be a JSON object");
      const host = options === undefined ? {} : options;
      if (host === null || typeof host !== "object") throw configError("fromConfig options must be an object");
      checkKeys(host, FROM_CONFIG_KEYS, "fromConfig options");
      if (host.crypto !== undefined) doc = { ...doc, crypto: host.crypto };
      let revocation;
      try {
        revocation = doc.revocation === undefined ? { jti: [], client_ids: [], issued_before: {} } : structuredClone(doc.revocation);
      } catch {
        throw configError("revocation: must be JSON");
      }
      for (const k of ["jti", "client_ids"]) if (!Array.isArray(revocation[k])) revocation[k] = [];
      if (revocation.issued_before === null || typeof revocation.issued_before !== "object") revocation.issued_before = {};
      return new JwtVerifier(CONSTRUCT, { config: doc, host, revocation, names: null });
    }
  }

  function authorize(verifier, req, options) {
    if (!(verifier instanceof Verifier)) throw configError("authorize(verifier, req, options?) needs a verifier");
    return verifier.authorize(req, options);
  }

  return { CognitoVerifier, JwtVerifier, authorize };
}

const CONSTRUCT = Symbol("tokengate.construct");
const FEED = "feed";

// What fetched JWKS and feed documents are shared through, between the isolates of a Workers
// deployment: a Cache API cache (`caches.default` in Workers). Entries are keyed by kind and
// source URL under a name no real request uses, and carry the time they were fetched.
function sharedStore(cache) {
  const key = (kind, url) => `https://tokengate-shared.invalid/${kind}/${encodeURIComponent(url)}`;
  if (cache === null || typeof cache.match !== "function" || typeof cache.put !== "function") {
    return { get: async () => null, put: async () => {}, touch: async () => {} };
  }
  const store = {
    async get(kind, url) {
      try {
        const r = await cache.match(key(kind, url));
        if (!r) return null;
        const fetchedAt = Number(r.headers.get("x-tokengate-fetched-at"));
        if (!Number.isFinite(fetchedAt)) return null;
        return {
          fetchedAt,
          status: 200,
          etag: r.headers.get("x-tokengate-etag"),
          cacheControl: r.headers.get("x-tokengate-cache-control"),
          body: new Uint8Array(await r.arrayBuffer()),
        };
      } catch {
        return null; // the cache is an optimisation: any failure means "fetch it"
      }
    },
    async put(kind, url, fetchedAt, r) {
      try {
        const headers = { "cache-control": "max-age=86400", "x-tokengate-fetched-at": String(fetchedAt) };
        if (r.etag) headers["x-tokengate-etag"] = r.etag;
        if (r.cacheControl) headers["x-tokengate-cache-control"] = r.cacheControl;
        await cache.put(key(kind, url), new Response(r.body, { headers }));
      } catch {
        // Not shared this time; every isolate still works on its own.
      }
    },
    async touch(kind, url, fetchedAt) {
      const old = await store.get(kind, url);
      if (old) await store.put(kind, url, fetchedAt, old);
    },
  };
  return store;
}
const EMPTY = Object.freeze({});
