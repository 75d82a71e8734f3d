// Maps a conformance case (tests/vectors/README.md) onto the package's public options, so the
// vector run also checks the option mapping. Usable in Node, workerd and the browser (no I/O).

const POLICY_FIELDS = new Set([
  "issuers", "algorithms", "token_use", "client_ids", "scopes", "audience", "leeway_s",
  "max_token_age_s", "claims", "revocation", "mtls_binding", "min_rsa_bits", "max_token_bytes",
]);

/** JwtVerifier.create() options for a case. */
export function optionsFor(c, extra) {
  const p = c.policy;
  for (const k of Object.keys(p)) {
    if (!POLICY_FIELDS.has(k)) throw new Error(`vector ${c.name}: unmapped policy field ${k}`);
  }
  const o = {
    issuer: p.issuers,
    jwks: c.jwks,
    clientId: p.client_ids,
    // The policy object defaults token_use to "access"; JwtVerifier defaults it to null.
    tokenUse: "token_use" in p ? p.token_use : "access",
  };
  if (p.algorithms !== undefined) o.algorithms = p.algorithms;
  if (p.scopes !== undefined) o.scope = p.scopes;
  if (p.audience !== undefined) o.audience = p.audience;
  if (p.leeway_s !== undefined) o.leewaySeconds = p.leeway_s;
  if (p.max_token_age_s !== undefined) o.maxTokenAgeSeconds = p.max_token_age_s;
  if (p.claims !== undefined) {
    o.customClaims = p.claims.map((r) => ("one_of" in r ? { claim: r.claim, oneOf: r.one_of } : r));
  }
  if (p.revocation !== undefined) {
    const r = p.revocation;
    o.revocation = { jti: r.jti, clientIds: r.client_ids, issuedBefore: r.issued_before };
  }
  if (p.mtls_binding !== undefined) o.mtlsBinding = p.mtls_binding;
  if (p.min_rsa_bits !== undefined) o.minRsaBits = p.min_rsa_bits;
  if (p.max_token_bytes !== undefined) o.maxTokenBytes = p.max_token_bytes;
  return { ...o, ...extra };
}

/** verify options for a case. */
export function requestFor(c) {
  const o = { now: c.now };
  if (c.context && c.context.cert_thumbprint !== undefined) o.certThumbprint = c.context.cert_thumbprint;
  return o;
}

/**
 * Compare an outcome with the case: returns null when it matches, else a description.
 * `outcome` is { claims } or { error }.
 */
export function mismatch(c, outcome) {
  if (c.expect === "accept") {
    if (outcome.error) return `expected accept, got ${outcome.error.code || outcome.error}`;
    for (const [k, v] of Object.entries(c.expect_claims || {})) {
      if (!jsonEqual(outcome.claims[k], v)) {
        return `claim ${k}: expected ${JSON.stringify(v)}, got ${JSON.stringify(outcome.claims[k])}`;
      }
    }
    return null;
  }
  if (!outcome.error) return `expected ${c.expect}, got accept`;
  if (outcome.error.name !== "TokenError") return `expected TokenError ${c.expect}, got ${outcome.error}`;
  if (outcome.error.code !== c.expect) return `expected ${c.expect}, got ${outcome.error.code}`;
  return null;
}

/** Run one case through a freshly created verifier; `how` is "sync" or "async". */
export async function runCase(api, c, how, extra) {
  let v;
  try {
    v = api.JwtVerifier.create(optionsFor(c, extra));
  } catch (error) {
    return { error: { name: "ConfigError", code: `config error: ${error.message}` } };
  }
  const req = requestFor(c);
  try {
    const claims = how === "sync" ? v.verifySync(c.token, req) : await v.verify(c.token, req);
    return { claims };
  } catch (error) {
    return { error };
  }
}

/** JSON equality that ignores member order. */
export function jsonEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
}

// ---------------------------------------------------------------------------------------------
// HTTP vectors (tests/vectors/http/README.md): a request and a gate configuration in, the
// answer (status, code, challenge, Retry-After, forwarded headers) out.

/**
 * decide() facts for an HTTP case: the connection's certificate as facts (`peer`), and the
 * values of the header the verifier trusts for certificates (`clientCert`).
 */
export function factsFor(c, verifier) {
  const r = c.request;
  const facts = { method: r.method, target: r.target, authorization: r.authorization };
  if (r.peer) {
    facts.peer = { uriSans: r.peer.uri_sans, dnsSans: r.peer.dns_sans, subject: r.peer.subject, sha256: r.peer.sha256 };
  }
  const header = verifier ? verifier.certificateHeader : null;
  if (header !== null && Array.isArray(r.headers)) {
    facts.clientCert = r.headers.filter(([n]) => n.toLowerCase() === header).map(([, v]) => v);
  }
  return facts;
}

/** The vector's terms for an authorize()/decide() result. */
export function answerOf(result) {
  const h = result.headers || {};
  return {
    status: result.status,
    code: result.code ?? null,
    www_authenticate: result.ok ? null : (h["www-authenticate"] ?? null),
    retry_after: result.ok ? null : (h["retry-after"] ?? null),
    forward: result.ok ? { ...result.forward } : null,
  };
}

/** null when `result` is the case's expected answer, else a description. */
export function httpMismatch(c, result) {
  if (result.error && result.error.name === "ConfigError") return result.error.message;
  const got = answerOf(result);
  return jsonEqual(got, c.expect) ? null : `expected ${JSON.stringify(c.expect)}, got ${JSON.stringify(got)}`;
}

/** One HTTP case through JwtVerifier.fromConfig(); `how` is "sync" or "async". */
export async function runHttpCase(api, c, config, how, extra) {
  let v;
  try {
    v = api.JwtVerifier.fromConfig(config, extra);
  } catch (error) {
    return { status: 0, error: { name: "ConfigError", message: `config error: ${error.message}` } };
  }
  await replayBefore(v, c, how);
  const o = { now: c.now };
  return how === "sync" ? v.decideSync(factsFor(c, v), o) : await v.decide(factsFor(c, v), o);
}

/**
 * A stateful case (`before`, e.g. the signature budget): its earlier requests through the same
 * verifier; their answers are not the case's business.
 */
export async function replayBefore(v, c, how = "sync") {
  for (const step of c.before ?? []) {
    const facts = factsFor({ request: step.request }, v);
    const o = { now: step.now };
    if (how === "sync") v.decideSync(facts, o);
    else await v.decide(facts, o);
  }
}
