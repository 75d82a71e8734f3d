#!/usr/bin/env node
// HTTP conformance vector generator for tokengate (see README.md in this directory: it is the contract).
//
//   node tests/vectors/http/generate.mjs
//
// Uses only node:crypto, node:fs and node:path, and no tokengate code, so a bug in tokengate cannot
// bless itself. The TEST keys are read from ../keys/ and the TEST client certificates from
// ../keys/certs/ (made once by ../keys/certs/make-certs.sh with the openssl CLI; never created
// here), and every token is RS256, so the output is byte-identical on every run.
//
// Every case below states its expected answer explicitly. Before anything is written, a
// self-check (1) replays every case through an independent reference model of README rules 1-7
// and of "Client certificates and identity pinning" (method, target normalisation, route, access,
// bearer parsing, a token check for the tokens made here with the signature verified by
// node:crypto, the RFC 8705 binding, the certificate sources and pins, route client_ids, the
// answer table and forward rules) and requires the same answer, field by field; (2) requires at
// least 80 distinct path targets, each replayed in both path configurations; (3) requires every
// gate-level code to be expected somewhere and at least 250 cases; (4) requires every certificate
// source to be covered. Nothing is written unless all of it passes.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const DIR = path.dirname(decodeURIComponent(new URL(import.meta.url).pathname));
const KEY_DIR = path.join(DIR, '..', 'keys');

// ---------------------------------------------------------------------------------------------
// Fixed values (the same as ../generate.mjs)
// ---------------------------------------------------------------------------------------------

const NOW = 1767268800; // 2026-01-01T12:00:00Z
const ISS = 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST0pool';
const CLIENT = '3q9f1k7c2m8v4n6b0x5z1l2h7d';
const CLIENT2 = '6p2w8r4t0y1u7i3o5a9s2d4f6g';
const CLIENT_OTHER = '9z8y7x6w5v4u3t2s1r0q9p8o7n'; // not in any provider's client_ids

const REQUIRED_CODES = ['request_invalid', 'token_missing', 'token_malformed', 'token_too_large', 'token_expired',
  'token_not_yet_valid', 'token_issued_in_future', 'scope_insufficient', 'client_not_allowed', 'identity_missing',
  'identity_mismatch', 'signature_budget_exhausted'];

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

const DEL = Symbol('delete'); // override value meaning "remove this member"
const has = (o, k) => o !== null && typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, k);
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();

function merge(base, over = {}) {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === DEL) delete out[k];
    else out[k] = v;
  }
  return out;
}

function assert(cond, msg) {
  if (!cond) throw new Error('generator assertion failed: ' + msg);
}

const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x), 'utf8').toString('base64url');

function uuidFor(s) {
  const h = sha256('tokengate-test-jti:' + s);
  h[6] = (h[6] & 0x0f) | 0x40;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

// ---------------------------------------------------------------------------------------------
// Keys: the TEST keys of ../keys/, read only
// ---------------------------------------------------------------------------------------------

const KEY_NAMES = ['rsa-a', 'rsa-b', 'attacker-rsa'];
const PRIV = {};
for (const name of KEY_NAMES) {
  const file = path.join(KEY_DIR, `${name}.pem`);
  if (!fs.existsSync(file)) {
    console.error(`missing TEST key ${file}: run node tests/vectors/generate.mjs once (this generator never creates keys)`);
    process.exit(1);
  }
  PRIV[name] = crypto.createPrivateKey(fs.readFileSync(file, 'utf8'));
  assert(PRIV[name].asymmetricKeyType === 'rsa' && PRIV[name].asymmetricKeyDetails.modulusLength === 2048, `${name}: RSA 2048`);
}

// Cognito-style kid, derived exactly as ../generate.mjs does: standard base64 (with + / and =) of
// SHA-256("tokengate-test-kid:<name>:<i>") for the first i whose encoding holds both '+' and '/'.
function kidFor(name) {
  for (let i = 0; ; i++) {
    const k = sha256(`tokengate-test-kid:${name}:${i}`).toString('base64');
    if (k.includes('+') && k.includes('/')) return k;
  }
}
const KID = Object.fromEntries(KEY_NAMES.map((n) => [n, kidFor(n)]));

function publicJwk(name) {
  const j = crypto.createPublicKey(PRIV[name]).export({ format: 'jwk' });
  return { alg: 'RS256', e: j.e, kid: KID[name], kty: 'RSA', n: j.n, use: 'sig' };
}
const JWK = Object.fromEntries(KEY_NAMES.map((n) => [n, publicJwk(n)]));

// The public JWKs must be the ones published in ../keys/jwks-public.json.
{
  const published = JSON.parse(fs.readFileSync(path.join(KEY_DIR, 'jwks-public.json'), 'utf8')).keys;
  for (const name of ['rsa-a', 'rsa-b']) {
    const p = published.find((k) => k.kid === KID[name]);
    assert(p && JSON.stringify(p) === JSON.stringify(JWK[name]), `${name}: public JWK differs from keys/jwks-public.json`);
  }
}

// ---------------------------------------------------------------------------------------------
// Client certificates: the TEST certificates of ../keys/certs/, read only
// ---------------------------------------------------------------------------------------------

const CERT_DIR = path.join(KEY_DIR, 'certs');
const CERT_NAMES = ['ca', 'orders-writer', 'batch-7', 'intruder', 'no-san', 'two-uris', 'batch-root', 'batchx', 'batch-slash', 'big'];
const CERT = {}; // name -> { pem, der }
for (const name of CERT_NAMES) {
  const file = path.join(CERT_DIR, `${name}.pem`);
  if (!fs.existsSync(file)) {
    console.error(`missing TEST certificate ${file}: run sh tests/vectors/keys/certs/make-certs.sh once (this generator never creates certificates)`);
    process.exit(1);
  }
  const pem = fs.readFileSync(file, 'ascii');
  CERT[name] = { pem, der: new crypto.X509Certificate(pem).raw };
}

// The facts of a certificate as a host's TLS stack reports them (request.peer), from node:crypto:
// subjectAltName "URI:a, DNS:b" -> uri_sans / dns_sans in order; subject "O=..\nCN=.." (certificate
// order) -> RFC 4514 (last RDN first, joined with ","); fingerprint256 -> lower-case hex.
function peerOf(name) {
  const x = new crypto.X509Certificate(CERT[name].der);
  const uri = [], dns = [];
  if (x.subjectAltName !== undefined) {
    assert(!x.subjectAltName.includes('"'), `${name}: a quoted subjectAltName entry`);
    for (const item of x.subjectAltName.split(', ')) {
      const i = item.indexOf(':');
      if (item.slice(0, i) === 'URI') uri.push(item.slice(i + 1));
      else if (item.slice(0, i) === 'DNS') dns.push(item.slice(i + 1));
    }
  }
  const rdns = x.subject === '' ? [] : x.subject.split('\n');
  for (const r of rdns) assert(/^(CN|O|OU|C|ST|L)=[^,+\\"=\n]+$/.test(r), `${name}: a plain single-valued RDN: ${r}`);
  return {
    uri_sans: uri,
    dns_sans: dns,
    subject: rdns.length ? [...rdns].reverse().join(',') : null,
    sha256: x.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}

// The same facts from a DER walk written here (no X.509 library), to cross-check node:crypto.
function derTlv(buf, off, limit = buf.length) {
  assert(off + 2 <= limit, 'DER: truncated');
  let len = buf[off + 1], hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    assert(n >= 1 && n <= 3 && off + 2 + n <= limit, 'DER: length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i];
    hdr += n;
  }
  assert(off + hdr + len <= limit, 'DER: overrun');
  return { tag: buf[off], start: off + hdr, end: off + hdr + len };
}
function derChildren(buf, t) {
  const out = [];
  for (let o = t.start; o < t.end;) {
    const c = derTlv(buf, o, t.end);
    out.push(c);
    o = c.end;
  }
  return out;
}
const ATTR_TYPE = { '550403': 'CN', '55040a': 'O', '55040b': 'OU', '550406': 'C', '550408': 'ST', '550407': 'L' };
function derFacts(der) {
  const cert = derTlv(der, 0);
  assert(cert.tag === 0x30 && cert.end === der.length, 'DER: one certificate');
  const tbs = derChildren(der, derChildren(der, cert)[0]);
  const v = tbs[0].tag === 0xa0 ? 1 : 0; // [0] version
  const rdns = derChildren(der, tbs[v + 4]).map((set) => { // serial, signature, issuer, validity, subject
    const atvs = derChildren(der, set);
    assert(set.tag === 0x31 && atvs.length === 1, 'DER: single-valued RDN');
    const [oid, val] = derChildren(der, atvs[0]);
    const type = ATTR_TYPE[der.subarray(oid.start, oid.end).toString('hex')];
    assert(type !== undefined, 'DER: attribute type');
    return `${type}=${der.subarray(val.start, val.end).toString('utf8')}`;
  });
  const uri = [], dns = [];
  const exts = tbs.find((t) => t.tag === 0xa3);
  for (const e of exts ? derChildren(der, derChildren(der, exts)[0]) : []) {
    const parts = derChildren(der, e);
    if (der.subarray(parts[0].start, parts[0].end).toString('hex') !== '551d11') continue; // subjectAltName
    const value = parts[parts.length - 1];
    for (const n of derChildren(der, derTlv(der, value.start, value.end))) {
      const text = der.subarray(n.start, n.end).toString('ascii');
      if (n.tag === 0x86) uri.push(text); // uniformResourceIdentifier
      else if (n.tag === 0x82) dns.push(text); // dNSName
    }
  }
  return { uri_sans: uri, dns_sans: dns, subject: rdns.length ? rdns.reverse().join(',') : null, sha256: sha256(der).toString('hex') };
}
const PEER = {};
for (const name of CERT_NAMES) {
  PEER[name] = peerOf(name);
  assert(JSON.stringify(PEER[name]) === JSON.stringify(derFacts(CERT[name].der)), `${name}: node:crypto and the DER walk disagree`);
}
// What make-certs.sh asked for (README.md in ../keys/certs/ lists the same).
{
  const want = {
    'orders-writer': [['spiffe://prod/orders-writer'], ['orders-writer.internal'], 'CN=orders-writer,OU=payments,O=Example'],
    'batch-7': [['spiffe://prod/batch/7'], ['Batch.Internal'], 'CN=batch-7,OU=batch,O=Example'],
    intruder: [['spiffe://prod/intruder'], [], 'CN=intruder,O=Example'],
    'no-san': [[], [], 'CN=reports,OU=finance,O=Example'],
    'two-uris': [['spiffe://prod/legacy/migrator', 'spiffe://prod/batch/9'], [], 'CN=migrator,O=Example'],
    'batch-root': [['spiffe://prod/batch'], [], 'CN=batch-root,O=Example'],
    batchx: [['spiffe://prod/batchx'], [], 'CN=batchx,O=Example'],
    'batch-slash': [['spiffe://prod/batch/'], [], 'CN=batch-slash,O=Example'],
  };
  for (const [name, [uri, dns, subject]] of Object.entries(want)) {
    const p = PEER[name];
    assert(JSON.stringify([p.uri_sans, p.dns_sans, p.subject]) === JSON.stringify([uri, dns, subject]), `${name}: unexpected certificate facts`);
  }
  assert(PEER.big.uri_sans[0] === 'spiffe://prod/big' && CERT.big.der.length > 16384, 'big: a certificate of more than 16384 bytes');
  for (const name of CERT_NAMES) if (name !== 'big') assert(CERT[name].der.length < 2048, `${name}: a small certificate`);
}

// ---------------------------------------------------------------------------------------------
// Tokens (RS256, deterministic)
// ---------------------------------------------------------------------------------------------

function signRs256(keyName, input) {
  return crypto.sign('sha256', Buffer.from(input, 'utf8'), { key: PRIV[keyName], padding: crypto.constants.RSA_PKCS1_PADDING });
}

// Cognito client-credentials access token claims.
function C(label, over = {}) {
  return merge({
    sub: CLIENT,
    token_use: 'access',
    scope: 'orders/read orders/write',
    auth_time: NOW - 60,
    iss: ISS,
    exp: NOW + 3600,
    iat: NOW - 60,
    version: 2,
    jti: uuidFor('http:' + label),
    client_id: CLIENT,
  }, over);
}

const TOKENS = new Map(); // label -> { token, spec }
// A token is named by a label; the same label always means the same claims (checked).
function tok(label, over = {}, { signer = 'rsa-a', kid = KID['rsa-a'], header = {} } = {}) {
  const spec = JSON.stringify({ over, signer, kid, header }, (k, v) => (v === DEL ? '<DEL>' : v));
  if (TOKENS.has(label)) {
    assert(TOKENS.get(label).spec === spec, `token label ${label} reused with other claims`);
    return TOKENS.get(label).token;
  }
  const input = b64u(merge({ kid, alg: 'RS256' }, header)) + '.' + b64u(C(label, over));
  const token = input + '.' + signRs256(signer, input).toString('base64url');
  TOKENS.set(label, { token, spec });
  return token;
}

// A valid token of exactly `target` characters, grown through a string claim (a header "typ" is
// added when the header length leaves no payload length that fits: base64url never has length 1 mod 4).
function tokOfLength(label, target) {
  for (const header of [{}, { typ: 'JOSE' }]) {
    const hs = b64u(merge({ kid: KID['rsa-a'], alg: 'RS256' }, header));
    for (let f = 0; f < 10000; f++) {
      const over = { 'custom:blob': 'a'.repeat(f) };
      const len = hs.length + 1 + b64u(C(label, over)).length + 1 + 342;
      if (len === target) {
        const t = tok(label, over, { header });
        assert(t.length === target, 'tokOfLength');
        return t;
      }
      if (len > target) break;
    }
  }
  throw new Error('cannot build a token of length ' + target);
}

// Frequently used tokens.
const T = {
  user: () => tok('user'), // CLIENT, scope "orders/read orders/write" (no admin)
  admin: () => tok('admin', { scope: 'admin orders/read orders/write' }),
  reader: () => tok('reader', { scope: 'orders/read' }),
  writer: () => tok('writer', { scope: 'orders/write' }),
  expired: () => tok('expired', { exp: NOW - 1, iat: NOW - 3601, auth_time: NOW - 3601 }),
};
const SCOPE_USER = 'orders/read orders/write';
const SCOPE_ADMIN = 'admin orders/read orders/write';

// ---------------------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------------------

const PROVIDER_KEYS = ['issuer', 'jwks', 'token_use', 'client_ids', 'algorithms', 'leeway_s', 'scopes', 'max_token_age_s', 'max_token_bytes',
  'mtls_binding', 'client_identities', 'require_identity'];
function provider(over = {}) {
  const m = merge({
    issuer: ISS,
    jwks: { keys: [JWK['rsa-a'], JWK['rsa-b']] },
    token_use: 'access',
    client_ids: [CLIENT, CLIENT2],
    algorithms: ['RS256'],
    leeway_s: 0,
  }, over);
  for (const k of Object.keys(m)) assert(PROVIDER_KEYS.includes(k), 'unknown provider field ' + k);
  const out = {};
  for (const k of PROVIDER_KEYS) if (has(m, k)) out[k] = m[k];
  return out;
}

// rule(name, match, access, client_ids?, { client_identities?, require_identity? }) with access =
// 'anonymous' | 'authenticated' | {all|any}
function rule(name, match, access, clientIds, identity = {}) {
  const m = {};
  for (const k of ['prefix', 'exact', 'methods', 'case_insensitive']) if (has(match, k)) m[k] = match[k];
  for (const k of Object.keys(match)) assert(has(m, k), 'unknown match field ' + k);
  const r = { name, match: m };
  if (typeof access === 'string') r.allow = access;
  else r.scopes = access;
  if (clientIds !== undefined) r.client_ids = clientIds;
  for (const k of Object.keys(identity)) assert(k === 'client_identities' || k === 'require_identity', 'unknown rule field ' + k);
  if (has(identity, 'client_identities')) r.client_identities = identity.client_identities;
  if (has(identity, 'require_identity')) r.require_identity = identity.require_identity;
  return r;
}

function config({ providers = [provider()], rules, deflt, forward, realm, source }) {
  const c = { providers };
  if (rules !== undefined) c.rules = rules;
  if (deflt !== undefined) c.default = deflt;
  if (forward !== undefined) c.forward = forward;
  if (realm !== undefined) c.realm = realm;
  if (source !== undefined) c.client_certificate = { source };
  checkIdentityConfig(c);
  return c;
}

// The pin syntax of the README, so that no case rests on a configuration a host must refuse.
function checkIdentityConfig(c) {
  const pins = (where, m) => {
    assert(m !== null && typeof m === 'object' && !Array.isArray(m), where + ': client_identities is an object');
    for (const [client, list] of Object.entries(m)) {
      assert(Array.isArray(list) && list.length > 0, `${where}.${client}: a non-empty list`);
      for (const pin of list) {
        const ks = Object.keys(pin);
        assert(ks.length === 1 && ['uri_san', 'dns_san', 'subject', 'sha256'].includes(ks[0]) && typeof pin[ks[0]] === 'string', `${where}.${client}: one pin kind`);
        if (ks[0] === 'sha256') assert(/^[0-9A-Fa-f]{64}$/.test(pin.sha256) || /^[A-Za-z0-9_-]{43}$/.test(pin.sha256), `${where}.${client}: sha256 syntax`);
        if (ks[0] === 'subject') assert(!/[\\"+]/.test(pin.subject) && pin.subject.split(',').every((p) => /^ *[A-Za-z]+=[^ =]+ *$/.test(p)), `${where}.${client}: plain subject`);
      }
    }
  };
  const mode = (where, m) => assert(['off', 'when_listed', 'always'].includes(m), where + ': require_identity');
  if (has(c, 'client_certificate')) assert(['connection', 'client_cert_header', 'alb'].includes(c.client_certificate.source), 'client_certificate.source');
  c.providers.forEach((p, i) => {
    if (has(p, 'client_identities')) pins(`providers[${i}]`, p.client_identities);
    if (has(p, 'require_identity')) mode(`providers[${i}]`, p.require_identity);
    if (has(p, 'mtls_binding')) assert(['off', 'when_present', 'required'].includes(p.mtls_binding), 'mtls_binding');
  });
  (c.rules ?? []).forEach((r, i) => {
    if (has(r, 'client_identities')) pins(`rules[${i}]`, r.client_identities);
    if (has(r, 'require_identity')) mode(`rules[${i}]`, r.require_identity);
  });
}

const FWD_STD = { client_id: 'x-tokengate-client-id', scope: 'x-tokengate-scope' };
const FWD_CLIENT = { client_id: 'x-tokengate-client-id' };

// ---------------------------------------------------------------------------------------------
// Expected answers, as written by the case author
// ---------------------------------------------------------------------------------------------

const answer = (status, code, www, forward) => ({ status, code, www_authenticate: www, retry_after: null, forward });
const X = {
  ok: (forward) => answer(200, null, null, forward),
  anon: () => answer(200, null, null, {}),
  bad: () => answer(400, 'request_invalid', null, null),
  missing: (realm = 'tokengate') => answer(401, 'token_missing', `Bearer realm="${realm}"`, null),
  invalid: (code, realm = 'tokengate') => answer(401, code, `Bearer realm="${realm}", error="invalid_token"`, null),
  scope: (scopes, realm = 'tokengate') => answer(403, 'scope_insufficient', `Bearer realm="${realm}", error="insufficient_scope", scope="${scopes}"`, null),
  deny: (realm = 'tokengate') => answer(403, 'scope_insufficient', `Bearer realm="${realm}", error="insufficient_scope"`, null),
};

// ---------------------------------------------------------------------------------------------
// Groups and cases
// ---------------------------------------------------------------------------------------------

const GROUPS = [];
const ALL_NAMES = new Set();
function group(name, description, configs) {
  const g = { group: name, description, configs, cases: [] };
  GROUPS.push(g);
  return g;
}

// req: { config, method = 'GET', target, auth = [], peer = null, headers?, now = NOW }
function add(g, name, description, req, expect) {
  assert(/^[a-z0-9]+(_[a-z0-9]+)*$/.test(name), 'snake_case name: ' + name);
  assert(!ALL_NAMES.has(name), 'duplicate case name ' + name);
  assert(has(g.configs, req.config), `${name}: unknown config ${req.config}`);
  assert(Array.isArray(req.auth ?? []), `${name}: auth must be an array`);
  const peer = req.peer ?? null;
  if (peer !== null) {
    assert(JSON.stringify(Object.keys(peer)) === '["uri_sans","dns_sans","subject","sha256"]', `${name}: peer members`);
    assert(peer.sha256 === null || /^[0-9a-f]{64}$/.test(peer.sha256), `${name}: peer.sha256 is 64 lower-case hex digits or null`);
  }
  if (req.headers !== undefined) {
    assert(Array.isArray(req.headers) && req.headers.every((h) => Array.isArray(h) && h.length === 2 && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(h[0])
      && typeof h[1] === 'string' && /^[\x20-\x7e]*$/.test(h[1])), `${name}: headers are [token, visible ASCII] pairs`);
    assert(req.headers.every(([n]) => n.toLowerCase() !== 'authorization'), `${name}: Authorization goes in request.authorization`);
  }
  if (req.before !== undefined) {
    assert(Array.isArray(req.before) && req.before.length > 0, `${name}: before is a non-empty list`);
    for (const b of req.before) assert(Array.isArray(b.auth) && typeof b.target === 'string' && Number.isInteger(b.now), `${name}: before entries`);
  }
  ALL_NAMES.add(name);
  const e = {
    status: expect.status,
    code: expect.code,
    www_authenticate: expect.www_authenticate,
    retry_after: expect.retry_after,
    forward: expect.forward,
  };
  g.cases.push({
    name,
    description,
    config: req.config,
    request: {
      method: req.method ?? 'GET',
      target: req.target,
      authorization: req.auth ?? [],
      peer,
      ...(req.headers !== undefined ? { headers: req.headers } : {}),
    },
    ...(req.before !== undefined ? {
      before: req.before.map((b) => ({
        request: { method: b.method ?? 'GET', target: b.target, authorization: b.auth, peer: null },
        now: b.now,
      })),
    } : {}),
    now: req.now ?? NOW,
    expect: e,
  });
}
const bearer = (t) => [`Bearer ${t}`];

// ============================================================================ paths
{
  const rules = [
    rule('health', { prefix: '/health' }, 'anonymous'),
    rule('admin', { prefix: '/admin' }, { all: ['admin'] }),
    rule('ops-home', { prefix: '/~ops' }, { all: ['admin'] }),
    rule('docs-encoded-question-mark', { prefix: '/docs/a%3Fb' }, { all: ['admin'] }),
    rule('metrics', { exact: '/metrics' }, { all: ['admin'] }),
    rule('orders-read', { prefix: '/orders', methods: ['GET'] }, { all: ['orders/read'] }),
    rule('orders-write', { prefix: '/orders' }, { all: ['orders/write'] }),
    rule('reports', { exact: '/reports', case_insensitive: true }, { any: ['reports/read', 'admin'] }, [CLIENT2]),
  ];
  const g = group('paths', 'path confusion: what a rule sees is what the origin serves; every target is replayed with a catch-all rule and with default "authenticated"', {
    catchall: config({ rules: [...rules, rule('rest', { prefix: '/' }, 'authenticated')], deflt: 'deny', forward: FWD_STD }),
    default_authenticated: config({ rules, deflt: 'authenticated', forward: FWD_STD }),
  });

  const U = 'user', A = 'admin', N = 'none';
  const OKU = X.ok({ 'x-tokengate-client-id': CLIENT, 'x-tokengate-scope': SCOPE_USER });
  const OKA = X.ok({ 'x-tokengate-client-id': CLIENT, 'x-tokengate-scope': SCOPE_ADMIN });
  const BAD = X.bad(), ANON = X.anon(), MISSING = X.missing(), S_ADMIN = X.scope('admin');
  const CNA = X.invalid('client_not_allowed');

  // [name, target, token, expect (or {catchall, default_authenticated}), description, method?]
  const P = [
    // --- matrix parameters: ';' and '..;' (Tomcat / Spring / Jetty path parameters)
    ['matrix_param_after_admin', '/admin;x=1', U, BAD, 'Tomcat/Spring read /admin;x=1 as /admin: ";" is refused in a path'],
    ['matrix_param_semicolon_slash_after_admin', '/admin;/', U, BAD, '/admin;/ is /admin/ to servlet containers'],
    ['matrix_param_dotdot_semicolon_from_health', '/health/..;/admin', N, BAD, 'Tomcat reads "..;" as "..": /health/..;/admin is /admin there, under /health for a naive proxy'],
    ['matrix_param_semicolon_then_dotdot_from_health', '/health;/../admin', N, BAD, '/health;/../admin normalises to /admin after stripping ";"'],
    ['matrix_param_jsessionid_on_orders', '/orders;jsessionid=1', U, BAD, 'session id as a path parameter'],
    ['matrix_param_encoded_semicolon_lower', '/admin%3bx=1', U, BAD, '%3b (encoded ";") is refused: servers disagree whether it starts a parameter'],
    ['matrix_param_encoded_semicolon_upper_with_admin_token', '/admin%3B', A, BAD, 'refused even with a token that would be allowed: a refused path never reaches the origin'],
    ['matrix_param_trailing_semicolon_on_anonymous_route', '/health;', N, BAD, 'refused even under an anonymous prefix'],
    ['matrix_param_in_later_segment', '/admin/users;role=x', A, BAD, '";" anywhere in the path is refused'],
    // --- dot segments (CVE-2019-9901: Envoy matched routes on unnormalised paths)
    ['cve_2019_9901_dotdot_from_health_to_admin', '/health/../admin', N, BAD, 'the origin resolves /health/../admin to /admin; a ".." segment is refused'],
    ['cve_2019_9901_dot_segment_before_admin', '/./admin', U, BAD, 'a "." segment is refused'],
    ['cve_2019_9901_dot_segment_after_admin', '/admin/.', U, BAD, 'a trailing "." segment is refused'],
    ['cve_2019_9901_dotdot_after_admin_with_admin_token', '/admin/..', A, BAD, 'a trailing ".." segment is refused, whatever the token'],
    ['cve_2019_9901_encoded_dotdot_lower', '/health/%2e%2e/admin', N, BAD, '%2e%2e is ".." to many origins; an encoded dot is refused'],
    ['cve_2019_9901_half_encoded_dotdot', '/health/.%2e/admin', N, BAD, '".%2e" is ".." once decoded'],
    ['cve_2019_9901_half_encoded_dotdot_upper', '/health/%2E./admin', N, BAD, '"%2E." is ".." once decoded'],
    ['cve_2019_9901_root_dotdot', '/..', U, BAD, '".." at the root'],
    ['cve_2019_9901_root_dot', '/.', U, BAD, '"." at the root'],
    ['cve_2019_9901_dot_then_empty_last_segment', '/health/./', N, BAD, 'a "." segment followed by the (allowed) empty last segment'],
    ['cve_2019_9901_encoded_dot_segment', '/%2e/admin', U, BAD, 'an encoded "." segment'],
    ['cve_2019_9901_encoded_dot_inside_a_name', '/admin%2e', U, BAD, 'an encoded dot is refused anywhere, not only as a whole segment'],
    ['cve_2019_9901_dotdot_from_orders_with_post', '/orders/../admin', U, BAD, 'POST through ".." from a route the token may use', 'POST'],
    ['three_dots_segment_is_a_name', '/admin/...', U, S_ADMIN, '"..." is an ordinary segment name, under /admin'],
    ['dot_prefixed_segment_is_a_name', '/.well-known/openid-configuration', N, MISSING, '".well-known" is an ordinary segment name (no rule but the default)'],
    ['dot_prefixed_segment_under_health', '/health/.hidden', N, ANON, '".hidden" is an ordinary segment under /health'],
    // --- empty segments
    ['empty_segment_double_slash_before_admin', '//admin', U, BAD, '"//admin" is /admin to origins that merge slashes'],
    ['empty_segment_then_dotdot_from_health', '/health//../admin', N, BAD, 'merge-then-resolve gives /admin, resolve-then-merge gives /health'],
    ['empty_segment_inside_admin', '/admin//x', U, BAD, 'an empty segment that is not the last'],
    ['empty_segment_only_slashes', '//', U, BAD, 'two slashes: the first segment is empty and not the last'],
    ['empty_segment_triple_slash_before_health', '///health', N, BAD, 'refused even towards an anonymous route'],
    ['empty_segment_double_trailing_slash', '/admin//', U, BAD, 'only the last segment may be empty'],
    ['trailing_slash_is_normal_form_under_admin', '/admin/', U, S_ADMIN, '"/admin/" ends with the one allowed empty segment: prefix /admin applies'],
    ['trailing_slash_is_normal_form_under_health', '/health/', N, ANON, '"/health/" matches prefix /health'],
    ['root_path_without_token', '/', N, MISSING, '"/" is in normal form and needs a token'],
    ['root_path_with_token', '/', U, OKU, '"/" with a valid token'],
    // --- backslashes (Windows / IIS / some Java stacks treat "\" as "/")
    ['backslash_raw_dotdot_from_health', '/health\\..\\admin', N, BAD, 'a raw "\\" is refused: "/health\\..\\admin" is /admin to origins that read "\\" as "/"'],
    ['backslash_encoded_dotdot_from_health', '/health%5c..%5cadmin', N, BAD, '%5c (encoded "\\") is refused'],
    ['backslash_encoded_before_admin', '/%5cadmin', U, BAD, '/%5cadmin'],
    ['backslash_raw_after_health', '/health\\', N, BAD, 'a raw "\\" is refused even under an anonymous prefix'],
    ['backslash_encoded_upper_after_health', '/health%5C', N, BAD, '%5C upper case'],
    ['backslash_raw_before_admin', '/\\admin', U, BAD, '"/\\admin" is //admin to some origins'],
    // --- encoded slash (CVE-2021-29492: Envoy decoded %2F after routing)
    ['cve_2021_29492_encoded_slash_lower', '/health%2fadmin', N, BAD, '%2f is "/" to origins that decode it: refused'],
    ['cve_2021_29492_encoded_slash_dotdot', '/health%2F..%2Fadmin', N, BAD, '/health%2F..%2Fadmin is /admin once decoded and resolved'],
    ['cve_2021_29492_encoded_slash_after_admin_with_admin_token', '/admin%2F', A, BAD, 'refused whatever the token'],
    ['cve_2021_29492_encoded_slash_before_admin', '/%2Fadmin', U, BAD, '/%2Fadmin is //admin once decoded'],
    ['cve_2021_29492_encoded_slash_under_orders', '/orders%2F7', U, BAD, '/orders%2F7'],
    // --- percent-encoded unreserved characters: decoded, then matched (RFC 3986 §6.2.2.2)
    ['encoded_letter_decodes_to_admin', '/%61dmin', U, S_ADMIN, '/%61dmin is /admin: it needs the admin scope'],
    ['encoded_letter_decodes_to_admin_with_admin_token', '/%61dmin', A, OKA, '/%61dmin is /admin, allowed with the admin scope'],
    ['every_letter_encoded_mixed_hex_case', '/%61%64%6D%69%6e', U, S_ADMIN, 'every letter of "admin" encoded, hex digits in both cases'],
    ['encoded_letter_in_the_middle', '/adm%69n/users', U, S_ADMIN, '/adm%69n/users is /admin/users'],
    ['encoded_capital_letter_is_not_folded', '/%41dmin', U, OKU, '/%41dmin is /Admin, which prefix /admin does not match (no case folding)'],
    ['encoded_letter_decodes_to_health', '/%68ealth', N, ANON, '/%68ealth is /health: anonymous'],
    ['fully_encoded_health_with_subpath', '/%68%65%61%6c%74%68/status', N, ANON, '/health/status spelt in escapes'],
    ['encoded_tilde_upper_hex', '/%7Eops', U, S_ADMIN, '%7E is "~" (unreserved): /~ops needs admin'],
    ['encoded_tilde_lower_hex', '/%7eops/keys', U, S_ADMIN, '%7e is "~": /~ops/keys needs admin'],
    ['raw_tilde', '/~ops', U, S_ADMIN, 'raw "~"'],
    ['encoded_digit', '/orders/%37', U, OKU, '/orders/%37 is /orders/7 (GET: orders/read)'],
    ['encoded_hyphen_right_after_admin', '/admin%2D', U, OKU, '/admin%2D is /admin-, which prefix /admin does not match'],
    ['encoded_hyphen_right_after_health', '/health%2Dcheck', N, MISSING, '/health%2Dcheck is /health-check: not anonymous'],
    ['encoded_underscore_under_admin', '/admin/%5Fx', U, S_ADMIN, '/admin/%5Fx is /admin/_x'],
    ['encoded_letter_then_dotdot', '/h%65alth/../admin', N, BAD, 'decoding letters does not excuse a ".." segment'],
    // --- case
    ['uppercase_admin_is_not_folded', '/ADMIN', U, OKU, 'rules are case-sensitive unless case_insensitive: /ADMIN is not under /admin'],
    ['capitalised_admin_is_not_folded', '/Admin/users', U, OKU, '/Admin/users is not under /admin'],
    ['uppercase_health_is_not_anonymous', '/HEALTH', N, MISSING, '/HEALTH does not match the anonymous /health prefix'],
    ['case_insensitive_exact_rule_upper', '/REPORTS', U, CNA, 'the reports rule is case_insensitive and lists only CLIENT2'],
    ['case_insensitive_exact_rule_encoded_capital', '/%52eports', U, CNA, '/%52eports is /Reports, matched by the case_insensitive rule'],
    ['exact_rule_with_trailing_slash', '/reports/', U, CNA, 'an exact rule ignores one trailing "/"'],
    ['exact_rule_does_not_match_a_subpath', '/Reports/x', U, OKU, 'exact /reports does not match /Reports/x'],
    ['exact_metrics', '/metrics', U, S_ADMIN, 'exact /metrics needs admin'],
    ['exact_metrics_with_trailing_slash', '/metrics/', U, S_ADMIN, 'exact /metrics matches /metrics/'],
    ['exact_metrics_subpath_does_not_match', '/metrics/x', U, OKU, 'exact /metrics does not match /metrics/x'],
    ['exact_metrics_longer_name_does_not_match', '/metricsx', U, OKU, 'exact /metrics does not match /metricsx'],
    ['exact_metrics_double_trailing_slash', '/metrics//', U, BAD, 'two trailing slashes: an empty segment that is not the last'],
    // --- encodings that stay encoded: hex digits upper-cased for matching (RFC 3986 §6.2.2.1)
    ['kept_encoding_lower_hex_is_normalised', '/docs/a%3fb', U, S_ADMIN, '%3f is matched as %3F: the rule prefix /docs/a%3Fb applies'],
    ['kept_encoding_upper_hex', '/docs/a%3Fb', U, S_ADMIN, 'the rule prefix exactly'],
    ['kept_encoding_lower_hex_subpath', '/docs/a%3fb/c', U, S_ADMIN, 'under the rule prefix after normalisation'],
    ['kept_encoding_prefix_boundary', '/docs/a%3Fbc', U, OKU, '/docs/a%3Fbc is not under /docs/a%3Fb (segment boundary)'],
    ['raw_question_mark_starts_the_query', '/docs/a?b', U, OKU, 'a raw "?" ends the path: the path is /docs/a'],
    ['kept_encoding_space_under_admin', '/admin/%20x', U, S_ADMIN, '%20 stays encoded, under /admin'],
    ['kept_encoding_at_sign_under_admin', '/admin/%40x', U, S_ADMIN, '%40 stays encoded, under /admin'],
    ['kept_encoding_lower_question_mark_under_admin', '/admin/%3f', U, S_ADMIN, '%3f stays encoded, under /admin'],
    ['kept_encoding_hash_under_admin', '/admin/%23x', U, S_ADMIN, '%23 (encoded "#") stays encoded: it is no fragment'],
    ['kept_encoding_space_under_orders', '/orders/a%20b', U, OKU, '/orders/a%20b with GET: orders/read'],
    ['kept_encoding_under_health', '/health/%3F', N, ANON, '%3F under /health'],
    ['kept_encoding_lower_hex_under_orders', '/orders/a%3fb', U, OKU, '/orders/a%3fb is matched as /orders/a%3Fb (GET: orders/read)'],
    ['kept_encoding_upper_hex_under_orders', '/orders/a%3Fb', U, OKU, '/orders/a%3Fb (GET: orders/read)'],
    ['kept_encoding_lower_hex_under_orders_post', '/orders/a%3fb', U, OKU, 'POST /orders/a%3fb: orders-write (orders/write)', 'POST'],
    // --- double encoding
    ['double_encoded_letter', '/%2561dmin', U, BAD, '%25 (encoded "%") is double encoding: /%2561dmin is /%61dmin then /admin'],
    ['double_encoded_dotdot', '/health/%252e%252e/admin', N, BAD, 'double-encoded ".." segment'],
    ['double_encoded_percent_at_end', '/admin%25', U, BAD, '%25 alone'],
    ['double_encoded_slash', '/health%252fadmin', N, BAD, 'double-encoded "/"'],
    // --- encoded control, NUL and non-ASCII octets
    ['encoded_nul_after_admin', '/admin%00', U, BAD, '%00 truncates paths in C-based origins'],
    ['encoded_line_feed_after_admin', '/admin%0a', U, BAD, '%0a (control octet)'],
    ['encoded_crlf_after_admin', '/admin%0D%0A', U, BAD, '%0D%0A (header injection in some logs and redirects)'],
    ['encoded_tab_after_admin', '/admin%09', U, BAD, '%09 (control octet; some origins trim it)'],
    ['encoded_del_after_admin', '/admin%7f', U, BAD, '%7f (DEL)'],
    ['encoded_utf8_e_acute', '/caf%C3%A9', U, BAD, 'non-ASCII octets (%C3%A9 = "é") are refused'],
    ['encoded_nul_after_health', '/health%00', N, BAD, 'refused even under an anonymous prefix'],
    ['encoded_octet_ff_under_health', '/health/%FF', N, BAD, '%FF'],
    ['overlong_utf8_dotdot', '/%c0%ae%c0%ae/admin', U, BAD, '%c0%ae is an overlong "." that lenient decoders accept: non-ASCII octets are refused'],
    ['overlong_utf8_slash', '/health%c0%afadmin', N, BAD, '%c0%af is an overlong "/"'],
    ['encoded_bidi_override', '/%E2%80%AEnimda', U, BAD, 'U+202E RIGHT-TO-LEFT OVERRIDE, encoded'],
    // --- raw control, space and non-ASCII characters
    ['raw_nul_after_admin', '/admin\u0000', U, BAD, 'a raw NUL'],
    ['raw_space_after_admin', '/admin x', U, BAD, 'a raw space (HTTP/1.1 would split the request line here)'],
    ['raw_non_ascii', '/café', U, BAD, 'a raw non-ASCII character'],
    ['raw_tab_after_admin', '/admin\t', U, BAD, 'a raw tab'],
    ['raw_del_after_admin', '/admin\u007f', U, BAD, 'a raw DEL'],
    ['raw_line_feed_after_admin', '/admin\n', U, BAD, 'a raw line feed'],
    ['raw_nul_after_health', '/health\u0000', N, BAD, 'a raw NUL under an anonymous prefix'],
    ['raw_space_after_health', '/health x', N, BAD, 'a raw space under an anonymous prefix'],
    ['unicode_lookalike_fullwidth_a', '/\uff41dmin', U, BAD, 'U+FF41 FULLWIDTH a, folded to "a" by NFKC-normalising origins'],
    ['unicode_lookalike_cyrillic_a', '/\u0430dmin', U, BAD, 'U+0430 CYRILLIC a'],
    ['unicode_lookalike_division_slash', '/health\u2215..\u2215admin', N, BAD, 'U+2215 DIVISION SLASH'],
    ['unicode_no_break_space_after_admin', '/admin\u00a0', U, BAD, 'U+00A0 NO-BREAK SPACE'],
    ['unicode_one_dot_leaders', '/health/\u2024\u2024/admin', N, BAD, 'U+2024 ONE DOT LEADER twice, ".." after NFKC'],
    // --- fragments (CVE-2021-32779: Envoy kept the fragment in the matched path)
    ['cve_2021_32779_fragment_after_admin', '/admin#x', U, BAD, '"#" is refused: clients never send a fragment'],
    ['cve_2021_32779_fragment_hides_dotdot', '/health#/../admin', N, BAD, 'a fragment that hides a ".." from a naive prefix match'],
    ['cve_2021_32779_empty_fragment_after_health', '/health#', N, BAD, 'an empty fragment'],
    ['cve_2021_32779_fragment_in_query', '/health?x#y', N, BAD, '"#" is refused in the query too'],
    ['cve_2021_32779_fragment_with_admin_token', '/admin#', A, BAD, 'refused whatever the token'],
    // --- request-target forms (RFC 9112 §3.2)
    ['absolute_form_to_admin', 'http://example.com/admin', U, BAD, 'absolute-form is refused (only origin-form is in normal form)'],
    ['absolute_form_upper_scheme_to_health', 'HTTP://x/health', N, BAD, 'absolute-form to an anonymous path is still refused'],
    ['absolute_form_https_to_health', 'https://example.com/health', N, BAD, 'absolute-form with https'],
    ['authority_form_with_get', 'example.com:443', U, BAD, 'authority-form'],
    ['asterisk_with_get', '*', U, BAD, '"*" is accepted only with OPTIONS'],
    ['asterisk_with_options_and_token', '*', U, { catchall: X.deny(), default_authenticated: OKU }, 'OPTIONS * matches no rule: default applies (deny: 403 without a scope attribute)', 'OPTIONS'],
    ['asterisk_with_options_and_admin_token', '*', A, { catchall: X.deny(), default_authenticated: OKA }, 'OPTIONS * matches no rule, not even the catch-all', 'OPTIONS'],
    ['asterisk_with_options_without_token', '*', N, MISSING, 'OPTIONS * without a token: the token error comes first', 'OPTIONS'],
    ['asterisk_with_query', '*?x', U, BAD, 'only the target "*" itself is the asterisk form', 'OPTIONS'],
    ['missing_leading_slash', 'admin', U, BAD, 'a target must start with "/"'],
    ['missing_leading_slash_health', 'health', N, BAD, 'a target must start with "/"'],
    ['empty_target', '', U, BAD, 'an empty target'],
    ['target_is_only_a_query', '?x=/admin', U, BAD, 'a target that starts with "?"'],
    ['slash_asterisk_is_a_path', '/*', U, OKU, '"/*" is an ordinary path ("*" is allowed in a path)'],
    // --- query
    ['query_dotdot_is_not_path', '/health?/../admin', N, ANON, 'the query is never matched and never resolved: the path is /health'],
    ['query_mentioning_health_does_not_help', '/admin?x=/health', U, S_ADMIN, 'the path is /admin'],
    ['query_bad_percent_is_not_validated', '/health?a=%zz', N, ANON, 'percent-encoding is not checked in the query'],
    ['query_encoded_nul_is_not_validated', '/health?a=%00', N, ANON, '%00 in the query is not checked'],
    ['query_raw_space_is_refused', '/health?a b', N, BAD, 'every byte of the target, query included, is visible ASCII'],
    ['query_non_ascii_is_refused', '/health?q=\u00e9', N, BAD, 'a raw non-ASCII character in the query'],
    ['query_raw_control_is_refused', '/health?a=\u0001', N, BAD, 'a raw control character in the query'],
    ['query_with_path_only_specials_is_accepted', '/health?;x\\y"z<>[]{}|^`', N, ANON, 'characters refused in a path are fine in a query'],
    ['query_empty', '/health?', N, ANON, 'an empty query'],
    ['query_empty_after_admin', '/admin?', U, S_ADMIN, 'an empty query after /admin'],
    ['query_on_root', '/?', U, OKU, 'the path "/" and an empty query'],
    ['query_double_question_mark', '/health??', N, ANON, 'the query is "?"'],
    ['query_semicolon_dotdot_after_admin', '/admin?;/../health', U, S_ADMIN, 'the path is /admin'],
    // --- prefix boundaries
    ['prefix_boundary_adminx', '/adminx', U, OKU, 'prefix /admin does not match /adminx'],
    ['prefix_boundary_healthz', '/healthz', N, MISSING, 'prefix /health does not match /healthz: not anonymous'],
    ['prefix_exact_health', '/health', N, ANON, 'prefix /health matches /health'],
    ['prefix_boundary_healthcheck', '/healthcheck', N, MISSING, 'prefix /health does not match /healthcheck'],
    ['prefix_subpath_health', '/health/x', N, ANON, 'prefix /health matches /health/x'],
    ['prefix_exact_admin', '/admin', U, S_ADMIN, 'prefix /admin needs the admin scope'],
    ['prefix_exact_admin_with_admin_token', '/admin', A, OKA, 'the admin token is allowed'],
    ['prefix_subpath_admin_with_admin_token', '/admin/users', A, OKA, 'the admin token is allowed under /admin'],
    ['prefix_boundary_ordersx_post', '/ordersx', U, OKU, 'prefix /orders does not match /ordersx', 'POST'],
    ['prefix_orders_post', '/orders', U, OKU, 'POST /orders: orders-write (orders/write)', 'POST'],
    // --- characters allowed and refused in a path
    ['allowed_sub_delims_in_path', "/a!$&'()*+,=:@b", U, OKU, 'every sub-delim except ";", and ":" and "@", are allowed raw'],
    ['allowed_colon_segment_under_admin', '/admin/:id', U, S_ADMIN, '":" is allowed raw'],
    ['allowed_at_sign_under_health', '/health/@x', N, ANON, '"@" is allowed raw'],
    ['refused_square_brackets', '/admin[0]', U, BAD, '"[" and "]" are refused in a path'],
    ['refused_braces', '/admin{x}', U, BAD, '"{" and "}" are refused in a path'],
    ['refused_pipe', '/admin|x', U, BAD, '"|" is refused in a path'],
    ['refused_caret', '/admin^', U, BAD, '"^" is refused in a path'],
    ['refused_backtick', '/admin`', U, BAD, '"`" is refused in a path'],
    ['refused_double_quote', '/admin"', U, BAD, '"\\"" is refused in a path'],
    ['refused_angle_brackets_under_health', '/health<x>', N, BAD, '"<" and ">" are refused in a path'],
    // --- malformed percent-encoding
    ['percent_at_end', '/admin%', U, BAD, '"%" at the end of the path'],
    ['percent_with_one_hex_digit', '/admin%4', U, BAD, '"%4" at the end'],
    ['percent_with_non_hex_digits', '/%zzadmin', U, BAD, '"%zz"'],
    ['percent_at_end_under_health', '/health%', N, BAD, 'a malformed path never falls back to the anonymous rule'],
    ['percent_with_g', '/admin%g1', U, BAD, '"%g1"'],
    ['percent_percent', '/admin%%30', U, BAD, '"%%30": "%" followed by "%3"'],
  ];
  const tokenFor = { user: () => bearer(T.user()), admin: () => bearer(T.admin()), none: () => [] };
  const tokenText = { user: 'a valid token without admin', admin: 'an admin token', none: 'no token' };
  for (const [name, target, who, expect, desc, method = 'GET'] of P) {
    for (const [cfg, suffix] of [['catchall', 'catchall'], ['default_authenticated', 'default_authenticated']]) {
      const e = has(expect, 'status') ? expect : expect[cfg];
      add(g, `${name}_${suffix}`, `${desc} (${tokenText[who]}; ${cfg === 'catchall' ? 'catch-all rule, default deny' : 'no catch-all, default authenticated'})`,
        { config: cfg, method, target, auth: tokenFor[who]() }, e);
    }
  }
}

// ============================================================================ bearer
{
  const g = group('bearer', 'Authorization header values: scheme, separators, token68, lists, repeated fields, size', {
    bearer: config({
      providers: [provider({ max_token_bytes: 4096 })],
      rules: [rule('health', { prefix: '/health' }, 'anonymous'), rule('rest', { prefix: '/' }, 'authenticated')],
      deflt: 'deny',
      forward: FWD_CLIENT,
    }),
  });
  const t = T.user();
  const OK = X.ok({ 'x-tokengate-client-id': CLIENT });
  const MAL = X.invalid('token_malformed');
  const a = (name, description, auth, expect, target = '/api/orders') => add(g, name, description, { config: 'bearer', target, auth }, expect);

  a('bearer_scheme_canonical', '"Bearer <token>"', [`Bearer ${t}`], OK);
  a('bearer_scheme_lower_case', 'the scheme is case-insensitive (RFC 9110 §11.1)', [`bearer ${t}`], OK);
  a('bearer_scheme_upper_case', 'the scheme is case-insensitive', [`BEARER ${t}`], OK);
  a('bearer_scheme_mixed_case', 'the scheme is case-insensitive', [`bEaReR ${t}`], OK);
  a('two_spaces_after_scheme', 'one or more spaces separate scheme and credential', [`Bearer  ${t}`], OK);
  a('three_spaces_after_scheme', 'one or more spaces separate scheme and credential', [`Bearer   ${t}`], OK);
  a('tab_after_scheme_is_malformed', 'a tab between scheme and credential', [`Bearer\t${t}`], MAL);
  a('space_then_tab_after_scheme_is_malformed', 'a space then a tab: the tab is not token68', [`Bearer \t${t}`], MAL);
  a('leading_space_is_dropped', 'leading whitespace is not part of the field value', [` Bearer ${t}`], OK);
  a('trailing_space_is_dropped', 'trailing whitespace is not part of the field value', [`Bearer ${t} `], OK);
  a('leading_and_trailing_tabs_are_dropped', 'tabs around the value are dropped too', [`\tBearer ${t}\t`], OK);
  a('mixed_surrounding_whitespace_is_dropped', 'spaces and tabs around the value', [`  \t Bearer ${t} \t `], OK);
  a('scheme_alone_is_missing', '"Bearer" with no credential', ['Bearer'], X.missing());
  a('scheme_and_space_is_missing', '"Bearer " is "Bearer" once trimmed', ['Bearer '], X.missing());
  a('scheme_and_whitespace_is_missing', '"Bearer \\t " is "Bearer" once trimmed', ['Bearer \t '], X.missing());
  a('lower_case_scheme_alone_is_missing', '"bearer" alone', ['bearer'], X.missing());
  a('basic_scheme_is_missing', 'another scheme is no bearer token (RFC 6750 §3.1: no error attribute)', ['Basic dXNlcjpwYXNz'], X.missing());
  a('token_scheme_is_missing', '"Token <token>" is another scheme', [`Token ${t}`], X.missing());
  a('jwt_scheme_is_missing', '"JWT <token>" is another scheme', [`JWT ${t}`], X.missing());
  a('no_separator_after_scheme_is_missing', '"Bearer<token>": the scheme runs to the first space, so it is not Bearer', [`Bearer${t}`], X.missing());
  a('comma_after_scheme_is_missing', '"Bearer,<token>" is one unknown scheme', [`Bearer,${t}`], X.missing());
  a('no_break_space_after_scheme_is_missing', 'U+00A0 is not a separator: the whole value is one unknown scheme', [`Bearer\u00a0${t}`], X.missing());
  a('no_authorization_is_missing', 'no Authorization field', [], X.missing());
  a('empty_value_is_missing', 'an empty Authorization value', [''], X.missing());
  a('whitespace_value_is_missing', 'an Authorization value of spaces and tabs', [' \t '], X.missing());
  a('credential_list_is_malformed', 'a comma-separated list of credentials', [`Bearer ${t}, Basic dXNlcjpwYXNz`], MAL);
  a('trailing_comma_is_malformed', 'a comma after the credential', [`Bearer ${t},`], MAL);
  a('extra_word_is_malformed', 'a space inside the credential', [`Bearer ${t} extra`], MAL);
  a('quoted_credential_is_malformed', 'a quoted-string is not token68', [`Bearer "${t}"`], MAL);
  a('auth_param_syntax_is_malformed', 'auth-param syntax instead of token68', [`Bearer token="${t}"`], MAL);
  a('two_valid_values_are_malformed', 'two Authorization fields, both valid', [`Bearer ${t}`, `Bearer ${t}`], MAL);
  a('valid_value_then_empty_value_is_accepted', 'two Authorization fields, the second empty: an empty value carries no credential and is left out', [`Bearer ${t}`, ''], OK);
  a('empty_value_then_valid_value_is_accepted', 'two Authorization fields, the first empty: left out, as HTTP stacks that merge fields do', ['', `Bearer ${t}`], OK);
  a('blank_value_then_valid_value_is_accepted', 'a value of spaces and tabs is empty too', [' \t', `Bearer ${t}`], OK);
  a('two_empty_values_are_missing', 'two empty Authorization fields carry no credential', ['', ''], X.missing());
  a('bearer_then_basic_values_are_malformed', 'two Authorization fields with different schemes', [`Bearer ${t}`, 'Basic dXNlcjpwYXNz'], MAL);
  a('trailing_equals_is_token68_but_malformed_token', 'token68 allows trailing "=", the token syntax (no padding) does not', [`Bearer ${t}=`], MAL);
  a('trailing_double_equals_is_malformed_token', 'two trailing "="', [`Bearer ${t}==`], MAL);
  a('three_one_char_segments_are_malformed', '"a.b.c": each segment has length 1 mod 4', ['Bearer a.b.c'], MAL);
  a('one_segment_is_malformed', 'an opaque token', ['Bearer abc'], MAL);
  a('only_equals_is_malformed', 'token68 needs at least one character before "="', ['Bearer ='], MAL);
  a('standard_base64_characters_are_malformed_token', '"+" and "/" are token68 but not base64url', [`Bearer ${t.replace(/-/g, '+').replace(/_/g, '/')}`], MAL);
  a('tilde_is_token68_but_malformed_token', '"~" is token68 but not base64url', [`Bearer ~${t}`], MAL);
  a('non_ascii_credential_is_malformed', 'a non-ASCII character inside the credential', [`Bearer ${t.slice(0, 20)}é${t.slice(20)}`], MAL);
  a('non_ascii_short_credential_is_malformed', 'a short non-ASCII credential', ['Bearer tökén'], MAL);
  a('token_at_max_token_bytes_is_accepted', 'a valid token of exactly max_token_bytes (4096) characters', [`Bearer ${tokOfLength('size-4096', 4096)}`], OK);
  a('token_one_over_max_token_bytes_is_too_large', 'a valid token of 4097 characters, max_token_bytes 4096', [`Bearer ${tokOfLength('size-4097', 4097)}`], X.invalid('token_too_large'));
  a('long_token68_credential_is_too_large', '5000 token68 characters, refused before any parsing', [`Bearer ${'A'.repeat(5000)}`], X.invalid('token_too_large'));
  a('expired_token_is_expired', 'a well-formed credential goes through the pipeline', [`Bearer ${T.expired()}`], X.invalid('token_expired'));
  a('attacker_signature_is_invalid', 'a token signed by another key under the kid of rsa-a', [`Bearer ${tok('attacker', {}, { signer: 'attacker-rsa' })}`], X.invalid('signature_invalid'));
  a('unknown_kid_is_kid_unknown', 'a token whose kid is not in the provider JWKS', [`Bearer ${tok('attacker-kid', {}, { signer: 'attacker-rsa', kid: KID['attacker-rsa'] })}`], X.invalid('kid_unknown'));
  a('client_outside_provider_list_is_refused', 'the provider lists CLIENT and CLIENT2 only', [`Bearer ${tok('other-client', { sub: CLIENT_OTHER, client_id: CLIENT_OTHER })}`], X.invalid('client_not_allowed'));
  a('second_client_is_accepted', 'CLIENT2 is listed by the provider', [`Bearer ${tok('client2', { sub: CLIENT2, client_id: CLIENT2 })}`], X.ok({ 'x-tokengate-client-id': CLIENT2 }));
  a('anonymous_route_ignores_garbage', 'an anonymous route never reads Authorization', ['Bearer "not a token", Basic ###'], X.anon(), '/health');
  a('anonymous_route_ignores_two_values', 'an anonymous route never reads Authorization', [`Bearer ${t}`, `Bearer ${t}`], X.anon(), '/health');
  a('anonymous_route_ignores_expired_token', 'an anonymous route never reads Authorization (nothing is forwarded)', [`Bearer ${T.expired()}`], X.anon(), '/health/live');
  a('anonymous_route_ignores_oversized_credential', 'an anonymous route never reads Authorization', [`Bearer ${'A'.repeat(5000)}`], X.anon(), '/health');
  a('anonymous_route_valid_token_forwards_nothing', 'a valid token on an anonymous route: nothing is forwarded', [`Bearer ${t}`], X.anon(), '/health');
}

// ============================================================================ methods
{
  const g = group('methods', 'methods: RFC 9110 tokens, case, HEAD on GET rules, extension methods, OPTIONS *', {
    methods: config({
      rules: [
        rule('health', { prefix: '/health' }, 'anonymous'),
        rule('cache-purge', { prefix: '/cache', methods: ['PURGE'] }, { all: ['admin'] }),
        rule('cache-read', { prefix: '/cache', methods: ['GET'] }, 'anonymous'),
        rule('status-head', { prefix: '/status', methods: ['HEAD'] }, 'anonymous'),
        rule('orders-read', { prefix: '/orders', methods: ['GET'] }, { all: ['orders/read'] }),
        rule('orders-write', { prefix: '/orders', methods: ['POST', 'PUT', 'DELETE'] }, { all: ['orders/write'] }),
      ],
      deflt: 'deny',
      forward: FWD_CLIENT,
    }),
  });
  const OK = X.ok({ 'x-tokengate-client-id': CLIENT });
  const R = () => bearer(T.reader()), W = () => bearer(T.writer()), A = () => bearer(T.admin()), N = () => [];
  const m = (name, description, method, target, auth, expect) => add(g, name, description, { config: 'methods', method, target, auth }, expect);

  m('get_on_get_rule_with_scope', 'GET /orders, orders/read', 'GET', '/orders', R(), OK);
  m('get_on_get_rule_without_scope', 'GET /orders without orders/read', 'GET', '/orders', W(), X.scope('orders/read'));
  m('head_matches_get_rule_with_scope', 'HEAD matches a rule that lists GET', 'HEAD', '/orders', R(), OK);
  m('head_matches_get_rule_without_scope', 'HEAD takes the GET rule, not the next one', 'HEAD', '/orders/7', W(), X.scope('orders/read'));
  m('post_on_write_rule_with_scope', 'POST /orders, orders/write', 'POST', '/orders', W(), OK);
  m('post_on_write_rule_without_scope', 'POST skips the GET rule and takes the write rule', 'POST', '/orders', R(), X.scope('orders/write'));
  m('put_on_write_rule', 'PUT is listed by the write rule', 'PUT', '/orders/7', W(), OK);
  m('delete_on_write_rule_without_scope', 'DELETE is listed by the write rule', 'DELETE', '/orders/7', R(), X.scope('orders/write'));
  m('patch_matches_no_rule', 'PATCH is listed nowhere: default deny', 'PATCH', '/orders/7', W(), X.deny());
  m('options_matches_no_rule', 'OPTIONS /orders is listed nowhere: default deny', 'OPTIONS', '/orders', A(), X.deny());
  m('options_matches_no_rule_without_token', 'default deny without a token: token_missing', 'OPTIONS', '/orders', N(), X.missing());
  m('trace_matches_no_rule', 'TRACE is listed nowhere', 'TRACE', '/orders', A(), X.deny());
  m('lower_case_get_is_refused', '"get" is GET spelt in lower case', 'get', '/orders', R(), X.bad());
  m('capitalised_get_is_refused', '"Get"', 'Get', '/orders', R(), X.bad());
  m('mixed_case_post_is_refused', '"pOST"', 'pOST', '/orders', W(), X.bad());
  m('lower_case_head_is_refused', '"head"', 'head', '/orders', R(), X.bad());
  m('lower_case_delete_is_refused', '"delete"', 'delete', '/orders/7', W(), X.bad());
  m('mixed_case_patch_is_refused', '"patCH"', 'patCH', '/orders/7', W(), X.bad());
  m('lower_case_connect_is_refused', '"connect"', 'connect', '/orders', A(), X.bad());
  m('lower_case_trace_is_refused', '"trace"', 'trace', '/orders', A(), X.bad());
  m('lower_case_put_is_refused', '"put"', 'put', '/orders/7', W(), X.bad());
  m('lower_case_get_on_anonymous_route_is_refused', 'the method is checked before the route', 'get', '/health', N(), X.bad());
  m('lower_case_options_star_is_refused', '"options *"', 'options', '*', N(), X.bad());
  m('purge_listed_with_scope', 'PURGE is matched exactly as sent', 'PURGE', '/cache', A(), OK);
  m('purge_listed_without_scope', 'PURGE /cache needs admin', 'PURGE', '/cache/x', R(), X.scope('admin'));
  m('purge_lower_case_is_another_method', '"purge" is not a standard method: it is not PURGE and not folded', 'purge', '/cache', A(), X.deny());
  m('purge_lower_case_without_token', '"purge" matches no rule; default deny without a token', 'purge', '/cache', N(), X.missing());
  m('purge_not_listed_on_orders', 'PURGE /orders: the orders rules do not list it', 'PURGE', '/orders/7', A(), X.deny());
  m('get_on_cache_is_anonymous', 'GET /cache takes the anonymous cache-read rule', 'GET', '/cache/x', N(), X.anon());
  m('head_on_cache_is_anonymous', 'HEAD matches the GET rule cache-read', 'HEAD', '/cache', N(), X.anon());
  m('post_on_cache_matches_no_rule', 'POST /cache: no rule, default deny', 'POST', '/cache', N(), X.missing());
  m('head_on_head_rule', 'HEAD /status', 'HEAD', '/status', N(), X.anon());
  m('get_does_not_match_head_rule', 'GET does not match a rule that lists only HEAD', 'GET', '/status', N(), X.missing());
  m('get_does_not_match_head_rule_with_token', 'GET /status: default deny', 'GET', '/status', R(), X.deny());
  m('propfind_matches_no_rule', 'PROPFIND, a WebDAV method', 'PROPFIND', '/orders', R(), X.deny());
  m('m_search_is_a_valid_token', 'M-SEARCH (SSDP) is a valid token', 'M-SEARCH', '/orders', R(), X.deny());
  m('every_tchar_is_a_valid_token', "a method made of every tchar punctuation", "X!#$%&'*+-.^_`|~", '/orders', R(), X.deny());
  m('method_with_inner_space_is_refused', '"GE T"', 'GE T', '/orders', R(), X.bad());
  m('method_with_nul_is_refused', '"GET\\u0000"', 'GET\u0000', '/orders', R(), X.bad());
  m('empty_method_is_refused', 'an empty method', '', '/orders', R(), X.bad());
  m('method_with_trailing_space_is_refused', '"GET "', 'GET ', '/orders', R(), X.bad());
  m('method_with_leading_space_is_refused', '" GET"', ' GET', '/orders', R(), X.bad());
  m('method_with_tab_is_refused', '"GET\\t"', 'GET\t', '/orders', R(), X.bad());
  m('method_with_parenthesis_is_refused', '"(" is a delimiter', 'G(ET', '/orders', R(), X.bad());
  m('method_with_slash_is_refused', '"/" is a delimiter', 'GET/', '/orders', R(), X.bad());
  m('method_with_colon_is_refused', '":" is a delimiter', 'GET:', '/orders', R(), X.bad());
  m('method_quoted_is_refused', '"\\"GET\\""', '"GET"', '/orders', R(), X.bad());
  m('method_non_ascii_is_refused', '"GÉT"', 'GÉT', '/orders', R(), X.bad());
  m('invalid_method_before_missing_token', 'the method is checked before the credentials', 'GE T', '/orders', N(), X.bad());
  m('invalid_method_on_anonymous_route', 'the method is checked before the route', 'GE T', '/health', N(), X.bad());
  m('invalid_method_and_invalid_target', 'both refused: 400', 'get', '/admin;x=1', R(), X.bad());
  m('options_star_with_token', 'OPTIONS * matches no rule: default deny', 'OPTIONS', '*', R(), X.deny());
  m('options_star_without_token', 'OPTIONS * without a token', 'OPTIONS', '*', N(), X.missing());
  m('get_star_is_refused', '"*" only with OPTIONS', 'GET', '*', R(), X.bad());
  m('head_star_is_refused', '"*" only with OPTIONS', 'HEAD', '*', R(), X.bad());
  m('purge_star_is_refused', '"*" only with OPTIONS', 'PURGE', '*', A(), X.bad());
  m('connect_authority_form_is_refused', 'CONNECT with an authority-form target', 'CONNECT', 'example.com:443', A(), X.bad());
  m('connect_origin_form_matches_no_rule', 'CONNECT /orders: a valid method, no rule', 'CONNECT', '/orders', A(), X.deny());
}

// ============================================================================ routes
{
  const g = group('routes', 'route matching: first match wins, prefix boundaries, exact, case_insensitive, per-route client_ids, default', {
    routes: config({
      rules: [
        rule('static', { prefix: '/static/' }, 'anonymous'),
        rule('root', { exact: '/' }, 'anonymous'),
        rule('public', { prefix: '/pub' }, 'anonymous'),
        rule('public-secret', { prefix: '/pub/secret' }, { all: ['admin'] }),
        rule('admin-exact', { exact: '/admin' }, { all: ['admin'] }),
        rule('admin-tree', { prefix: '/admin' }, 'authenticated'),
        rule('reports', { exact: '/reports', case_insensitive: true }, { any: ['reports/read', 'admin'] }, [CLIENT2]),
        rule('partner', { prefix: '/partner' }, 'authenticated', [CLIENT2]),
        rule('archive', { prefix: '/Archive', case_insensitive: true }, { all: ['admin'] }),
        rule('docs', { exact: '/docs/' }, 'anonymous'),
        rule('orders', { prefix: '/orders' }, { all: ['orders/read'] }),
      ],
      deflt: 'deny',
      forward: FWD_CLIENT,
    }),
    routes_any_client: config({
      providers: [provider({ client_ids: null })],
      rules: [
        rule('partner', { prefix: '/partner' }, 'authenticated', [CLIENT2]),
        rule('rest', { prefix: '/' }, 'authenticated'),
      ],
      deflt: 'deny',
      forward: FWD_CLIENT,
    }),
    routes_no_rules: config({ rules: [], forward: FWD_CLIENT }),
    routes_default_authenticated: config({
      rules: [
        rule('health', { prefix: '/health' }, 'anonymous'),
        rule('admin', { prefix: '/admin' }, { all: ['admin'] }),
      ],
      deflt: 'authenticated',
      forward: FWD_CLIENT,
    }),
  });
  const OK1 = X.ok({ 'x-tokengate-client-id': CLIENT });
  const OK2 = X.ok({ 'x-tokengate-client-id': CLIENT2 });
  const CNA = X.invalid('client_not_allowed');
  const U = () => bearer(T.user()), A = () => bearer(T.admin()), N = () => [];
  const c2 = (label, over = {}) => bearer(tok(label, merge({ sub: CLIENT2, client_id: CLIENT2 }, over)));
  const r = (name, description, target, auth, expect, { config: cfg = 'routes', method = 'GET' } = {}) =>
    add(g, name, description, { config: cfg, method, target, auth }, expect);

  r('prefix_with_trailing_slash_matches_below', 'prefix /static/ matches /static/app.js', '/static/app.js', N(), X.anon());
  r('prefix_with_trailing_slash_matches_itself', 'prefix /static/ matches /static/', '/static/', N(), X.anon());
  r('prefix_with_trailing_slash_does_not_match_without', 'prefix /static/ does not match /static: default deny', '/static', N(), X.missing());
  r('prefix_with_trailing_slash_does_not_match_without_token', 'default deny refuses a valid token with 403 and no scope attribute', '/static', U(), X.deny());
  r('exact_root_matches_root', 'exact / matches /', '/', N(), X.anon());
  r('exact_root_does_not_match_other_paths', 'exact / matches only /', '/x', N(), X.missing());
  r('default_deny_with_valid_token', 'no rule matches: 403 scope_insufficient without a scope attribute', '/x', U(), X.deny());
  r('default_deny_with_expired_token', 'no rule matches, the token is expired: its own error', '/x', bearer(T.expired()), X.invalid('token_expired'));
  r('default_deny_with_malformed_token', 'no rule matches, the credential is malformed', '/x', ['Bearer a.b.c'], X.invalid('token_malformed'));
  r('first_match_wins_over_longer_prefix', 'anonymous /pub comes before /pub/secret: first match, not longest', '/pub/secret', N(), X.anon());
  r('first_match_wins_below_longer_prefix', '/pub/secret/x still matches /pub first', '/pub/secret/x', N(), X.anon());
  r('exact_before_prefix', 'exact /admin comes before prefix /admin', '/admin', U(), X.scope('admin'));
  r('exact_with_trailing_slash_before_prefix', 'exact /admin matches /admin/', '/admin/', U(), X.scope('admin'));
  r('exact_with_admin_token', 'exact /admin with the admin scope', '/admin', A(), OK1);
  r('prefix_after_exact', '/admin/x is not /admin: prefix /admin (authenticated)', '/admin/x', U(), OK1);
  r('prefix_after_exact_without_token', '/admin/x without a token', '/admin/x', N(), X.missing());
  r('prefix_boundary_falls_to_default', '/adminx matches neither admin rule', '/adminx', U(), X.deny());
  r('route_client_not_listed_with_scope', 'reports lists CLIENT2 only: CLIENT with reports/read', '/reports', bearer(tok('c1-reports', { scope: 'reports/read' })), CNA);
  r('route_client_listed_with_scope', 'CLIENT2 with reports/read', '/reports', c2('c2-reports', { scope: 'reports/read' }), OK2);
  r('route_client_listed_with_other_alternative', 'CLIENT2 with admin (any: reports/read or admin)', '/reports', c2('c2-admin', { scope: 'admin' }), OK2);
  r('route_client_listed_without_scope', 'CLIENT2 without either scope: 403 listing the alternatives', '/reports', c2('c2-none', { scope: 'orders/read' }), X.scope('reports/read admin'));
  r('route_client_not_listed_and_scope_missing', 'refused for scope and for client: client_not_allowed', '/reports', U(), CNA);
  r('route_client_not_listed_and_token_expired', 'a token error other than scopes comes first', '/reports', bearer(T.expired()), X.invalid('token_expired'));
  r('route_client_rule_without_token', 'no token: token_missing', '/reports', N(), X.missing());
  r('case_insensitive_exact_upper', '/REPORTS matches the case_insensitive exact rule', '/REPORTS', c2('c2-reports', { scope: 'reports/read' }), OK2);
  r('case_insensitive_exact_mixed_with_trailing_slash', '/Reports/ matches the case_insensitive exact rule', '/Reports/', c2('c2-reports', { scope: 'reports/read' }), OK2);
  r('case_insensitive_exact_encoded_capital', '/%52eports is /Reports', '/%52eports', c2('c2-reports', { scope: 'reports/read' }), OK2);
  r('case_insensitive_exact_subpath_falls_to_default', 'exact /reports does not match /reports/x', '/reports/x', c2('c2-reports', { scope: 'reports/read' }), X.deny());
  r('route_client_ids_on_authenticated_rule_other_client', 'partner lists CLIENT2 only', '/partner/x', U(), CNA);
  r('route_client_ids_on_authenticated_rule_listed_client', 'CLIENT2 on partner', '/partner/x', c2('c2-plain'), OK2);
  r('route_client_ids_prefix_boundary', '/partners is not under /partner: default deny', '/partners', c2('c2-plain'), X.deny());
  r('case_insensitive_prefix_lower', 'prefix /Archive with case_insensitive matches /archive', '/archive', U(), X.scope('admin'));
  r('case_insensitive_prefix_upper_subpath', '/ARCHIVE/2025', '/ARCHIVE/2025', U(), X.scope('admin'));
  r('case_insensitive_prefix_with_admin', '/aRcHiVe with admin', '/aRcHiVe', A(), OK1);
  r('case_insensitive_prefix_boundary', '/archives is not under /Archive', '/archives', U(), X.deny());
  r('exact_rule_with_trailing_slash_matches_without', 'exact /docs/ matches /docs', '/docs', N(), X.anon());
  r('exact_rule_with_trailing_slash_matches_itself', 'exact /docs/ matches /docs/', '/docs/', N(), X.anon());
  r('exact_rule_with_trailing_slash_not_below', 'exact /docs/ does not match /docs/x', '/docs/x', N(), X.missing());
  r('orders_prefix_with_scope', '/orders/7 with orders/read', '/orders/7', U(), OK1);
  r('orders_prefix_without_scope', '/orders/7 without orders/read', '/orders/7', bearer(T.writer()), X.scope('orders/read'));
  r('any_client_route_list_refuses_missing_client_id', 'provider client_ids null; the route lists CLIENT2; the token has no client_id', '/partner', bearer(tok('no-client-id', { client_id: DEL })), CNA, { config: 'routes_any_client' });
  r('any_client_without_client_id_elsewhere', 'provider client_ids null: no client_id is fine without a route list (nothing to forward)', '/x', bearer(tok('no-client-id', { client_id: DEL })), X.ok({}), { config: 'routes_any_client' });
  r('any_client_unknown_client_elsewhere', 'provider client_ids null: any client', '/x', bearer(tok('other-client', { sub: CLIENT_OTHER, client_id: CLIENT_OTHER })), X.ok({ 'x-tokengate-client-id': CLIENT_OTHER }), { config: 'routes_any_client' });
  r('any_client_unknown_client_on_route_list', 'the route list still applies', '/partner/x', bearer(tok('other-client', { sub: CLIENT_OTHER, client_id: CLIENT_OTHER })), CNA, { config: 'routes_any_client' });
  r('any_client_non_string_client_id_on_route_list', 'a numeric client_id is not listed', '/partner', bearer(tok('numeric-client-id', { client_id: 42 })), CNA, { config: 'routes_any_client' });
  r('any_client_listed_client_on_route_list', 'CLIENT2 on partner', '/partner', c2('c2-plain'), OK2, { config: 'routes_any_client' });
  r('no_rules_means_authenticated', 'rules [] and no default: authenticated', '/anything', U(), OK1, { config: 'routes_no_rules' });
  r('no_rules_without_token', 'rules [] and no default: a token is needed', '/anything', N(), X.missing(), { config: 'routes_no_rules' });
  r('no_rules_options_star', 'OPTIONS * under default authenticated', '*', U(), OK1, { config: 'routes_no_rules', method: 'OPTIONS' });
  r('no_rules_refused_path', 'a refused path is refused before the default', '/a/../b', U(), X.bad(), { config: 'routes_no_rules' });
  r('default_authenticated_unmatched', 'no rule matches: default authenticated', '/x', U(), OK1, { config: 'routes_default_authenticated' });
  r('default_authenticated_unmatched_without_token', 'default authenticated without a token', '/x', N(), X.missing(), { config: 'routes_default_authenticated' });
  r('default_authenticated_rule_still_applies', 'a matching rule is not relaxed by the default', '/admin', U(), X.scope('admin'), { config: 'routes_default_authenticated' });
  r('default_authenticated_anonymous_rule', 'an anonymous rule', '/health', N(), X.anon(), { config: 'routes_default_authenticated' });
}

// ============================================================================ time
{
  const rules = [rule('api', { prefix: '/' }, 'authenticated')];
  const g = group('time', 'exp / nbf / iat and max_token_age_s at the HTTP level, with leeway 0 and 30', {
    leeway_0: config({ providers: [provider({ leeway_s: 0 })], rules, deflt: 'deny', forward: FWD_CLIENT }),
    leeway_30: config({ providers: [provider({ leeway_s: 30 })], rules, deflt: 'deny', forward: FWD_CLIENT }),
    max_age_600_leeway_0: config({ providers: [provider({ leeway_s: 0, max_token_age_s: 600 })], rules, deflt: 'deny', forward: FWD_CLIENT }),
    max_age_600_leeway_30: config({ providers: [provider({ leeway_s: 30, max_token_age_s: 600 })], rules, deflt: 'deny', forward: FWD_CLIENT }),
  });
  const OK = X.ok({ 'x-tokengate-client-id': CLIENT });
  const EXP = X.invalid('token_expired'), NYV = X.invalid('token_not_yet_valid'), FUT = X.invalid('token_issued_in_future');
  const tm = (name, description, cfg, over, expect, now = NOW) =>
    add(g, name, description, { config: cfg, target: '/api/orders', auth: bearer(tok('time-' + name, over)), now }, expect);
  const old = (exp) => ({ exp, iat: exp - 3600, auth_time: exp - 3600 });

  // exp: now >= exp + L is expired
  tm('exp_one_second_before_now_leeway_0', 'exp = now - 1', 'leeway_0', old(NOW - 1), EXP);
  tm('exp_equal_to_now_leeway_0', 'exp = now: on or after exp is expired', 'leeway_0', old(NOW), EXP);
  tm('exp_one_second_after_now_leeway_0', 'exp = now + 1', 'leeway_0', old(NOW + 1), OK);
  tm('exp_leeway_edge_minus_one_leeway_30', 'exp = now - 31: now >= exp + 30', 'leeway_30', old(NOW - 31), EXP);
  tm('exp_leeway_edge_leeway_30', 'exp = now - 30: now == exp + 30 is expired', 'leeway_30', old(NOW - 30), EXP);
  tm('exp_leeway_edge_plus_one_leeway_30', 'exp = now - 29: within the leeway', 'leeway_30', old(NOW - 29), OK);
  tm('exp_half_second_ahead_leeway_0', 'exp = now + 0.5 (fractional)', 'leeway_0', { exp: NOW + 0.5 }, OK);
  tm('exp_half_second_behind_leeway_0', 'exp = now - 0.5 (fractional)', 'leeway_0', { exp: NOW - 0.5 }, EXP);
  // the same token judged at different "now"
  {
    const label = 'time-clock';
    const auth = bearer(tok(label));
    const at = (name, description, cfg, now, expect) => add(g, name, description, { config: cfg, target: '/api/orders', auth, now }, expect);
    at('clock_one_second_before_exp_leeway_0', 'the default token (exp = NOW + 3600) at now = exp - 1', 'leeway_0', NOW + 3599, OK);
    at('clock_at_exp_leeway_0', 'the default token at now = exp', 'leeway_0', NOW + 3600, EXP);
    at('clock_at_exp_plus_leeway_minus_one_leeway_30', 'now = exp + 29', 'leeway_30', NOW + 3629, OK);
    at('clock_at_exp_plus_leeway_leeway_30', 'now = exp + 30', 'leeway_30', NOW + 3630, EXP);
    at('clock_at_iat_leeway_0', 'now = iat', 'leeway_0', NOW - 60, OK);
    at('clock_one_second_before_iat_leeway_0', 'now = iat - 1: issued in the future', 'leeway_0', NOW - 61, FUT);
    at('clock_leeway_before_iat_leeway_30', 'now = iat - 30', 'leeway_30', NOW - 90, OK);
    at('clock_leeway_and_one_before_iat_leeway_30', 'now = iat - 31', 'leeway_30', NOW - 91, FUT);
    at('clock_at_max_age_leeway_0', 'now = iat + 600', 'max_age_600_leeway_0', NOW + 540, OK);
    at('clock_past_max_age_leeway_0', 'now = iat + 601', 'max_age_600_leeway_0', NOW + 541, EXP);
  }
  // nbf: nbf > now + L is not yet valid
  tm('nbf_one_second_before_now_leeway_0', 'nbf = now - 1', 'leeway_0', { nbf: NOW - 1 }, OK);
  tm('nbf_equal_to_now_leeway_0', 'nbf = now', 'leeway_0', { nbf: NOW }, OK);
  tm('nbf_one_second_after_now_leeway_0', 'nbf = now + 1', 'leeway_0', { nbf: NOW + 1 }, NYV);
  tm('nbf_leeway_edge_minus_one_leeway_30', 'nbf = now + 29', 'leeway_30', { nbf: NOW + 29 }, OK);
  tm('nbf_leeway_edge_leeway_30', 'nbf = now + 30', 'leeway_30', { nbf: NOW + 30 }, OK);
  tm('nbf_leeway_edge_plus_one_leeway_30', 'nbf = now + 31', 'leeway_30', { nbf: NOW + 31 }, NYV);
  // iat: iat > now + L is issued in the future
  tm('iat_one_second_before_now_leeway_0', 'iat = now - 1', 'leeway_0', { iat: NOW - 1, auth_time: NOW - 1 }, OK);
  tm('iat_equal_to_now_leeway_0', 'iat = now', 'leeway_0', { iat: NOW, auth_time: NOW }, OK);
  tm('iat_one_second_after_now_leeway_0', 'iat = now + 1', 'leeway_0', { iat: NOW + 1, auth_time: NOW + 1 }, FUT);
  tm('iat_leeway_edge_minus_one_leeway_30', 'iat = now + 29', 'leeway_30', { iat: NOW + 29, auth_time: NOW + 29 }, OK);
  tm('iat_leeway_edge_leeway_30', 'iat = now + 30', 'leeway_30', { iat: NOW + 30, auth_time: NOW + 30 }, OK);
  tm('iat_leeway_edge_plus_one_leeway_30', 'iat = now + 31', 'leeway_30', { iat: NOW + 31, auth_time: NOW + 31 }, FUT);
  // max_token_age_s M: now - iat > M + L is expired
  tm('max_age_one_second_inside_leeway_0', 'iat = now - 599', 'max_age_600_leeway_0', { iat: NOW - 599, auth_time: NOW - 599 }, OK);
  tm('max_age_exactly_reached_leeway_0', 'iat = now - 600: now - iat == M', 'max_age_600_leeway_0', { iat: NOW - 600, auth_time: NOW - 600 }, OK);
  tm('max_age_one_second_past_leeway_0', 'iat = now - 601', 'max_age_600_leeway_0', { iat: NOW - 601, auth_time: NOW - 601 }, EXP);
  tm('max_age_leeway_edge_minus_one_leeway_30', 'iat = now - 629', 'max_age_600_leeway_30', { iat: NOW - 629, auth_time: NOW - 629 }, OK);
  tm('max_age_leeway_edge_leeway_30', 'iat = now - 630: now - iat == M + L', 'max_age_600_leeway_30', { iat: NOW - 630, auth_time: NOW - 630 }, OK);
  tm('max_age_leeway_edge_plus_one_leeway_30', 'iat = now - 631', 'max_age_600_leeway_30', { iat: NOW - 631, auth_time: NOW - 631 }, EXP);
  tm('max_age_iat_missing', 'max_token_age_s set and no iat', 'max_age_600_leeway_0', { iat: DEL }, X.invalid('claim_missing'));
  tm('max_age_not_set_old_iat_is_accepted', 'no max_token_age_s: an old iat alone is fine', 'leeway_0', { iat: NOW - 86400, auth_time: NOW - 86400 }, OK);
  tm('max_age_iat_in_future_is_issued_in_future', 'iat = now + 1 under max_token_age_s', 'max_age_600_leeway_0', { iat: NOW + 1, auth_time: NOW + 1 }, FUT);
  // order within the time step
  tm('expired_before_not_yet_valid', 'exp past and nbf in the future: expired is checked first', 'leeway_0', { exp: NOW - 1, nbf: NOW + 1 }, EXP);
  tm('not_yet_valid_before_issued_in_future', 'nbf and iat in the future: nbf is checked first', 'leeway_0', { nbf: NOW + 1, iat: NOW + 1, auth_time: NOW + 1 }, NYV);
}

// ============================================================================ answers
{
  const rules = [
    rule('open', { prefix: '/open' }, 'anonymous'),
    rule('both', { prefix: '/both' }, { all: ['orders/read', 'orders/write', 'admin'] }),
    rule('either', { prefix: '/either' }, { any: ['reports/read', 'admin'] }),
    rule('partner', { prefix: '/partner' }, 'authenticated', [CLIENT2]),
    rule('rest', { prefix: '/' }, 'authenticated'),
  ];
  const FWD_MANY = {
    client_id: 'x-client-id',
    scope: 'x-scope',
    auth_time: 'x-auth-time',
    version: 'x-token-version',
    'custom:tenant': 'x-tenant',
    'custom:roles': 'x-roles',
    'custom:profile': 'x-profile',
    'custom:flag': 'x-flag',
    'custom:note': 'x-note',
  };
  const QUOTED_REALM = 'tokengate "eu" \\ prod';
  const g = group('answers', 'the answer: WWW-Authenticate challenges, realm escaping, 403 scope lists, forwarded claims', {
    answers: config({ rules, deflt: 'deny', forward: FWD_MANY }),
    realm_api: config({ rules, deflt: 'deny', forward: FWD_CLIENT, realm: 'api' }),
    realm_quoted: config({ rules, deflt: 'deny', forward: FWD_CLIENT, realm: QUOTED_REALM }),
    provider_scopes_all: config({ providers: [provider({ scopes: { all: ['api/access', 'api/read'] } })], rules, deflt: 'deny', forward: FWD_CLIENT }),
    provider_scopes_any: config({ providers: [provider({ scopes: { any: ['api/access', 'admin'] } })], rules, deflt: 'deny', forward: FWD_CLIENT }),
  });
  const full = (status, code, www, forward = null) => ({ status, code, www_authenticate: www, retry_after: null, forward });
  const ans = (name, description, cfg, target, auth, expect, method = 'GET') => add(g, name, description, { config: cfg, method, target, auth }, expect);
  const U = () => bearer(T.user());

  // challenges, default realm
  ans('token_missing_challenge_has_no_error', 'RFC 6750 §3.1: no error attribute when no credentials were sent', 'answers', '/api', [],
    full(401, 'token_missing', 'Bearer realm="tokengate"'));
  ans('other_scheme_challenge_has_no_error', 'a Basic credential is no bearer token', 'answers', '/api', ['Basic dXNlcjpwYXNz'],
    full(401, 'token_missing', 'Bearer realm="tokengate"'));
  ans('invalid_token_challenge_expired', 'an expired token', 'answers', '/api', bearer(T.expired()),
    full(401, 'token_expired', 'Bearer realm="tokengate", error="invalid_token"'));
  ans('invalid_token_challenge_malformed', 'a malformed credential', 'answers', '/api', ['Bearer abc'],
    full(401, 'token_malformed', 'Bearer realm="tokengate", error="invalid_token"'));
  ans('invalid_token_challenge_client_not_allowed', 'partner lists CLIENT2 only', 'answers', '/partner', U(),
    full(401, 'client_not_allowed', 'Bearer realm="tokengate", error="invalid_token"'));
  ans('insufficient_scope_all_lists_every_required_scope', 'all: [orders/read, orders/write, admin]; the token lacks admin only; every scope of the requirement is listed in configuration order', 'answers', '/both', U(),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate", error="insufficient_scope", scope="orders/read orders/write admin"'));
  ans('insufficient_scope_all_without_scope_claim', 'a token without a scope claim', 'answers', '/both', bearer(tok('no-scope', { scope: DEL })),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate", error="insufficient_scope", scope="orders/read orders/write admin"'));
  ans('insufficient_scope_any_lists_alternatives', 'any: [reports/read, admin]', 'answers', '/either', U(),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate", error="insufficient_scope", scope="reports/read admin"'));
  ans('default_deny_has_no_scope_attribute', 'OPTIONS * matches no rule; default deny refuses a valid token', 'answers', '*', U(),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate", error="insufficient_scope"'), 'OPTIONS');
  ans('request_invalid_has_no_challenge', '400 carries no WWW-Authenticate', 'answers', '/api;x=1', U(),
    full(400, 'request_invalid', null));
  // custom realm
  ans('custom_realm_token_missing', 'realm "api"', 'realm_api', '/api', [], full(401, 'token_missing', 'Bearer realm="api"'));
  ans('custom_realm_invalid_token', 'realm "api", signature by another key', 'realm_api', '/api', bearer(tok('attacker', {}, { signer: 'attacker-rsa' })),
    full(401, 'signature_invalid', 'Bearer realm="api", error="invalid_token"'));
  ans('custom_realm_insufficient_scope_all', 'realm "api", all', 'realm_api', '/both', U(),
    full(403, 'scope_insufficient', 'Bearer realm="api", error="insufficient_scope", scope="orders/read orders/write admin"'));
  ans('custom_realm_insufficient_scope_any', 'realm "api", any', 'realm_api', '/either', U(),
    full(403, 'scope_insufficient', 'Bearer realm="api", error="insufficient_scope", scope="reports/read admin"'));
  ans('custom_realm_default_deny', 'realm "api", default deny', 'realm_api', '*', U(),
    full(403, 'scope_insufficient', 'Bearer realm="api", error="insufficient_scope"'), 'OPTIONS');
  ans('custom_realm_request_invalid', 'realm "api", 400 has no challenge', 'realm_api', '//api', U(), full(400, 'request_invalid', null));
  // realm escaping
  ans('quoted_realm_token_missing', 'the realm holds " and \\: both escaped with \\', 'realm_quoted', '/api', [],
    full(401, 'token_missing', 'Bearer realm="tokengate \\"eu\\" \\\\ prod"'));
  ans('quoted_realm_invalid_token', 'escaped realm with error="invalid_token"', 'realm_quoted', '/api', bearer(T.expired()),
    full(401, 'token_expired', 'Bearer realm="tokengate \\"eu\\" \\\\ prod", error="invalid_token"'));
  ans('quoted_realm_insufficient_scope', 'escaped realm with a scope list', 'realm_quoted', '/either', U(),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate \\"eu\\" \\\\ prod", error="insufficient_scope", scope="reports/read admin"'));
  // provider-level scopes
  ans('provider_scopes_fail_first', 'provider all: [api/access, api/read] fails before the rule: the provider list is given', 'provider_scopes_all', '/either', U(),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate", error="insufficient_scope", scope="api/access api/read"'));
  ans('provider_scopes_partly_met_lists_the_whole_requirement', 'the token has api/access only', 'provider_scopes_all', '/either', bearer(tok('api-partial', { scope: 'api/access reports/read' })),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate", error="insufficient_scope", scope="api/access api/read"'));
  ans('provider_scopes_met_then_rule_fails', 'provider scopes present, rule any fails: the rule list is given', 'provider_scopes_all', '/either', bearer(tok('api-orders', { scope: 'api/access api/read orders/read' })),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate", error="insufficient_scope", scope="reports/read admin"'));
  ans('provider_scopes_met_and_rule_met', 'both requirements met', 'provider_scopes_all', '/either', bearer(tok('api-reports', { scope: 'api/access api/read reports/read' })),
    full(200, null, null, { 'x-tokengate-client-id': CLIENT }));
  ans('provider_scopes_on_authenticated_rule', 'an authenticated rule still needs the provider scopes', 'provider_scopes_all', '/api', U(),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate", error="insufficient_scope", scope="api/access api/read"'));
  ans('provider_scopes_not_read_on_anonymous_rule', 'an anonymous rule reads no token', 'provider_scopes_all', '/open', U(),
    full(200, null, null, {}));
  ans('provider_scopes_fail_with_unlisted_route_client', 'refused only for scopes, by a client the route does not list', 'provider_scopes_all', '/partner', U(),
    full(401, 'client_not_allowed', 'Bearer realm="tokengate", error="invalid_token"'));
  ans('provider_scopes_fail_with_listed_route_client', 'CLIENT2 on partner without the provider scopes', 'provider_scopes_all', '/partner', bearer(tok('client2', { sub: CLIENT2, client_id: CLIENT2 })),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate", error="insufficient_scope", scope="api/access api/read"'));
  ans('provider_scopes_any_lists_alternatives', 'provider any: [api/access, admin]', 'provider_scopes_any', '/api', U(),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate", error="insufficient_scope", scope="api/access admin"'));
  ans('provider_scopes_any_met_by_admin', 'admin meets the provider any', 'provider_scopes_any', '/api', bearer(T.admin()),
    full(200, null, null, { 'x-tokengate-client-id': CLIENT }));
  ans('provider_scopes_any_met_then_rule_all_fails', 'provider met by api/access, rule all fails', 'provider_scopes_any', '/both', bearer(tok('api-access-orders', { scope: 'api/access orders/read orders/write' })),
    full(403, 'scope_insufficient', 'Bearer realm="tokengate", error="insufficient_scope", scope="orders/read orders/write admin"'));
  // forward
  const base = { 'x-client-id': CLIENT, 'x-scope': SCOPE_USER, 'x-auth-time': String(NOW - 60), 'x-token-version': '2' };
  const fw = (name, description, over, forward, target = '/api') =>
    ans(name, description, 'answers', target, bearer(tok('fwd-' + name, over)), full(200, null, null, forward));
  fw('forward_standard_claims', 'strings copied; auth_time and version are numbers: compact JSON', {}, base);
  fw('forward_string_claim', 'a string claim is copied as is', { 'custom:tenant': 'acme' }, { ...base, 'x-tenant': 'acme' });
  fw('forward_string_claim_with_quotes', 'quotes in a string are copied as is', { 'custom:tenant': 'say "hi"' }, { ...base, 'x-tenant': 'say "hi"' });
  fw('forward_numeric_string_stays_a_string', 'the string "42" is copied without quotes', { 'custom:tenant': '42' }, { ...base, 'x-tenant': '42' });
  fw('forward_array_claim_as_compact_json', 'an array as compact JSON', { 'custom:roles': ['ops', 'billing'] }, { ...base, 'x-roles': '["ops","billing"]' });
  fw('forward_empty_array_claim', 'an empty array is "[]"', { 'custom:roles': [] }, { ...base, 'x-roles': '[]' });
  // Members are in sorted order in the token, so "token order" and "sorted order" agree (README leaves it open).
  fw('forward_object_claim_as_compact_json', 'an object as compact JSON', { 'custom:profile': { seats: 5, tier: 'gold' } }, { ...base, 'x-profile': '{"seats":5,"tier":"gold"}' });
  fw('forward_true_claim', 'true is "true"', { 'custom:flag': true }, { ...base, 'x-flag': 'true' });
  fw('forward_false_claim', 'false is "false"', { 'custom:flag': false }, { ...base, 'x-flag': 'false' });
  fw('forward_fractional_number_claim', '1.5 is "1.5"', { 'custom:flag': 1.5 }, { ...base, 'x-flag': '1.5' });
  fw('forward_null_claim_sets_nothing', 'a null claim sets nothing', { 'custom:flag': null }, base);
  fw('forward_absent_scope_sets_nothing', 'no scope claim: x-scope is not set', { scope: DEL }, { 'x-client-id': CLIENT, 'x-auth-time': String(NOW - 60), 'x-token-version': '2' });
  fw('forward_scope_with_spaces', 'the scope string is copied with its spaces', { scope: 'orders/read  orders/write admin' }, { ...base, 'x-scope': 'orders/read  orders/write admin' });
  fw('forward_line_feed_sets_nothing', 'a string with a line feed sets nothing', { 'custom:note': 'first\nsecond' }, base);
  fw('forward_carriage_return_sets_nothing', 'a string with a carriage return sets nothing', { 'custom:note': 'first\r\nx-admin: 1' }, base);
  fw('forward_nul_sets_nothing', 'a string with a NUL sets nothing', { 'custom:note': 'a\u0000b' }, base);
  fw('forward_tab_sets_nothing', 'a string with a tab (a control character) sets nothing', { 'custom:note': 'a\tb' }, base);
  fw('forward_control_character_only_drops_that_header', 'other headers are still set', { 'custom:note': 'x\ny', 'custom:tenant': 'acme' }, { ...base, 'x-tenant': 'acme' });
  fw('forward_second_client', 'CLIENT2', { sub: CLIENT2, client_id: CLIENT2 }, { ...base, 'x-client-id': CLIENT2 });
  fw('forward_on_the_all_rule', 'the /both rule met', { scope: SCOPE_ADMIN }, { ...base, 'x-scope': SCOPE_ADMIN }, '/both');
  fw('forward_nothing_on_anonymous_rule', 'an anonymous route forwards nothing even with a valid token', { 'custom:tenant': 'acme' }, {}, '/open');
}

// ============================================================================ identity
const USED_CERTS = new Set();
{
  const OW = 'orders-writer';
  const hexOf = (n) => PEER[n].sha256;
  const b64uOf = (n) => Buffer.from(PEER[n].sha256, 'hex').toString('base64url');
  assert(hexOf(OW) !== hexOf(OW).toUpperCase(), 'the orders-writer fingerprint has hex letters');
  const PINS = {
    'orders-writer': [{ uri_san: 'spiffe://prod/orders-writer' }],
    batch: [{ uri_san: 'spiffe://prod/batch/*' }],
    migrator: [{ uri_san: 'spiffe://prod/batch/9' }],
    big: [{ uri_san: 'spiffe://prod/big' }],
    'batch-dns': [{ dns_san: 'batch.internal' }],
    'orders-dns-upper': [{ dns_san: 'ORDERS-WRITER.INTERNAL' }],
    'uri-pin-on-dns-name': [{ uri_san: 'orders-writer.internal' }],
    reports: [{ subject: 'CN=reports,OU=finance,O=Example' }],
    'reports-spaced': [{ subject: ' CN=reports , OU=finance,  O=Example ' }],
    'reports-lower-types': [{ subject: 'cn=reports,ou=finance,o=Example' }],
    'reports-reordered': [{ subject: 'O=Example,OU=finance,CN=reports' }],
    'reports-value-case': [{ subject: 'CN=Reports,OU=finance,O=Example' }],
    'reports-partial': [{ subject: 'CN=reports,O=Example' }],
    'sha-hex': [{ sha256: hexOf(OW) }],
    'sha-hex-upper': [{ sha256: hexOf(OW).toUpperCase() }],
    'sha-b64u': [{ sha256: b64uOf(OW) }],
    'several-pins': [{ uri_san: 'spiffe://prod/billing' }, { dns_san: 'orders-writer.internal' }],
  };
  const rules = [
    rule('health', { prefix: '/health' }, 'anonymous'),
    rule('admin', { prefix: '/admin' }, { all: ['admin'] }),
    rule('job-7', { prefix: '/jobs/7' }, 'authenticated', undefined, { client_identities: { batch: [{ uri_san: 'spiffe://prod/batch/7' }] } }),
    rule('status', { prefix: '/status' }, 'authenticated', undefined, { require_identity: 'off' }),
    rule('strict', { prefix: '/strict' }, 'authenticated', undefined, { require_identity: 'always' }),
    rule('rest', { prefix: '/' }, 'authenticated'),
  ];
  const cfg = (source, over) => config({
    providers: [provider(merge({ client_ids: [CLIENT, ...Object.keys(PINS)], client_identities: PINS }, over))],
    rules, deflt: 'deny', forward: FWD_CLIENT, source,
  });
  const g = group('identity', 'client certificates and identity pinning: the certificate sources (connection, client_cert_header, alb), uri_san / dns_san / subject / sha256 pins, require_identity, rule-level pins, the order against the RFC 8705 binding and scopes', {
    connection: cfg('connection', { require_identity: 'when_listed' }),
    connection_default: cfg(undefined, {}),
    connection_always: cfg('connection', { require_identity: 'always' }),
    connection_always_any_client: cfg('connection', { client_ids: null, require_identity: 'always' }),
    connection_off: cfg('connection', { require_identity: 'off' }),
    connection_binding: cfg('connection', { mtls_binding: 'required' }),
    client_cert_header: cfg('client_cert_header', { mtls_binding: 'when_present' }),
    alb: cfg('alb', { mtls_binding: 'when_present' }),
  });

  // Tokens: Cognito client-credentials tokens whose sub and client_id are the pinned client.
  const as = (client, over = {}, label = '') => bearer(tok(`id-${client}${label}`, merge({ sub: client, client_id: client }, over)));
  const tokenFor = (client) => (client === CLIENT ? bearer(T.user()) : as(client));
  const boundTo = (client, certName) => as(client, { cnf: { 'x5t#S256': b64uOf(certName) } }, `-cnf-${certName}`);
  // Certificates: as the TLS stack reports them, as RFC 9440 Client-Cert, as ALB's leaf header.
  const P = (n) => { USED_CERTS.add(n); return PEER[n]; };
  const sf = (n) => { USED_CERTS.add(n); return `:${CERT[n].der.toString('base64')}:`; };
  const albLeaf = (n) => { USED_CERTS.add(n); return encodeURIComponent(CERT[n].pem); };
  // ALB itself leaves "+", "=" and "/" unencoded: a host must percent-decode, not form-decode ("+" is no space).
  const albAsSent = (n) => albLeaf(n).replace(/%2B/g, '+').replace(/%3D/g, '=').replace(/%2F/g, '/');
  assert(albAsSent(OW).includes('+') && albAsSent(OW).includes('/'), 'the orders-writer PEM has "+" and "/"');

  const OK = (client) => X.ok({ 'x-tokengate-client-id': client });
  const MISSING = X.invalid('identity_missing'), MISMATCH = X.invalid('identity_mismatch');
  const BINDING = X.invalid('binding_mismatch'), BAD = X.bad();
  const id = (name, description, cfgName, { who = OW, auth, peer = null, headers, target = '/api/orders' }, expect) =>
    add(g, name, description, { config: cfgName, target, auth: auth ?? tokenFor(who), peer, headers }, expect);

  // ---------------------------------------------------------------- source "connection": request.peer
  const C = 'connection';
  // uri_san, exact
  id('conn_uri_san_exact_match', 'orders-writer is pinned to uri_san spiffe://prod/orders-writer and presents that certificate', C, { peer: P(OW) }, OK(OW));
  id('conn_uri_san_other_workload_is_mismatch', 'the intruder certificate (spiffe://prod/intruder) with an orders-writer token', C, { peer: P('intruder') }, MISMATCH);
  id('conn_uri_san_pin_does_not_match_a_dns_san', 'a uri_san pin equal to the certificate\'s DNS SAN (orders-writer.internal) does not match: kinds are not mixed', C, { who: 'uri-pin-on-dns-name', peer: P(OW) }, MISMATCH);
  id('conn_uri_san_exact_matches_second_uri_san', 'migrator is pinned to spiffe://prod/batch/9, the second of the two URI SANs of two-uris', C, { who: 'migrator', peer: P('two-uris') }, OK('migrator'));
  id('conn_uri_san_exact_pin_is_no_prefix', 'migrator is pinned exactly to spiffe://prod/batch/9; batch-7 has spiffe://prod/batch/7', C, { who: 'migrator', peer: P('batch-7') }, MISMATCH);
  // uri_san, prefix "/*"
  id('conn_uri_san_prefix_matches_below', 'batch is pinned to spiffe://prod/batch/*; batch-7 has spiffe://prod/batch/7', C, { who: 'batch', peer: P('batch-7') }, OK('batch'));
  id('conn_uri_san_prefix_matches_second_uri_san', 'two-uris has spiffe://prod/legacy/migrator, then spiffe://prod/batch/9 (under spiffe://prod/batch/*)', C, { who: 'batch', peer: P('two-uris') }, OK('batch'));
  id('conn_uri_san_prefix_does_not_match_the_parent', 'spiffe://prod/batch/* does not match spiffe://prod/batch', C, { who: 'batch', peer: P('batch-root') }, MISMATCH);
  id('conn_uri_san_prefix_does_not_match_a_longer_name', 'spiffe://prod/batch/* does not match spiffe://prod/batchx', C, { who: 'batch', peer: P('batchx') }, MISMATCH);
  id('conn_uri_san_prefix_needs_more_than_the_prefix', 'spiffe://prod/batch/* does not match spiffe://prod/batch/ itself: the URI SAN must be longer than the value without "*"', C, { who: 'batch', peer: P('batch-slash') }, MISMATCH);
  id('conn_uri_san_prefix_other_workload', 'spiffe://prod/batch/* against spiffe://prod/intruder', C, { who: 'batch', peer: P('intruder') }, MISMATCH);
  id('conn_uri_san_pin_against_certificate_without_san', 'a certificate without subjectAltName has no URI SAN', C, { peer: P('no-san') }, MISMATCH);
  // dns_san
  id('conn_dns_san_pin_lower_certificate_mixed_case', 'batch-dns is pinned to batch.internal; batch-7 has DNS:Batch.Internal (ASCII case-insensitive)', C, { who: 'batch-dns', peer: P('batch-7') }, OK('batch-dns'));
  id('conn_dns_san_pin_upper_certificate_lower', 'orders-dns-upper is pinned to ORDERS-WRITER.INTERNAL; the certificate has orders-writer.internal', C, { who: 'orders-dns-upper', peer: P(OW) }, OK('orders-dns-upper'));
  id('conn_dns_san_other_name_is_mismatch', 'batch.internal against orders-writer.internal', C, { who: 'batch-dns', peer: P(OW) }, MISMATCH);
  id('conn_dns_san_pin_against_certificate_without_san', 'a certificate without subjectAltName has no DNS SAN', C, { who: 'batch-dns', peer: P('no-san') }, MISMATCH);
  // subject
  id('conn_subject_match_without_san', 'reports is pinned to CN=reports,OU=finance,O=Example; no-san has that subject and no subjectAltName', C, { who: 'reports', peer: P('no-san') }, OK('reports'));
  id('conn_subject_spaces_around_rdns_are_trimmed', 'the pin " CN=reports , OU=finance,  O=Example ": each TYPE=value is trimmed of spaces', C, { who: 'reports-spaced', peer: P('no-san') }, OK('reports-spaced'));
  id('conn_subject_types_compare_without_case', 'the pin "cn=reports,ou=finance,o=Example": attribute types compare without case', C, { who: 'reports-lower-types', peer: P('no-san') }, OK('reports-lower-types'));
  id('conn_subject_other_order_is_mismatch', 'the pin "O=Example,OU=finance,CN=reports" has the same RDNs in certificate order, not RFC 4514 order', C, { who: 'reports-reordered', peer: P('no-san') }, MISMATCH);
  id('conn_subject_values_compare_exactly', 'the pin "CN=Reports,…": values compare exactly (case included)', C, { who: 'reports-value-case', peer: P('no-san') }, MISMATCH);
  id('conn_subject_fewer_rdns_is_mismatch', 'the pin "CN=reports,O=Example" lacks OU=finance: the same RDNs are needed, not a subset', C, { who: 'reports-partial', peer: P('no-san') }, MISMATCH);
  id('conn_subject_other_certificate_is_mismatch', 'CN=reports,OU=finance,O=Example against CN=orders-writer,OU=payments,O=Example', C, { who: 'reports', peer: P(OW) }, MISMATCH);
  // sha256
  id('conn_sha256_lower_hex_match', 'sha-hex is pinned to the orders-writer SHA-256 in lower-case hex', C, { who: 'sha-hex', peer: P(OW) }, OK('sha-hex'));
  id('conn_sha256_upper_hex_match', 'sha-hex-upper: the same SHA-256 in upper-case hex', C, { who: 'sha-hex-upper', peer: P(OW) }, OK('sha-hex-upper'));
  id('conn_sha256_base64url_match', 'sha-b64u: the same SHA-256 as 43 base64url characters', C, { who: 'sha-b64u', peer: P(OW) }, OK('sha-b64u'));
  id('conn_sha256_hex_other_certificate', 'the orders-writer SHA-256 (hex) against the intruder certificate', C, { who: 'sha-hex', peer: P('intruder') }, MISMATCH);
  id('conn_sha256_base64url_other_certificate', 'the orders-writer SHA-256 (base64url) against the intruder certificate', C, { who: 'sha-b64u', peer: P('intruder') }, MISMATCH);
  // several pins
  id('conn_several_pins_second_matches', 'several-pins: uri_san spiffe://prod/billing (no), then dns_san orders-writer.internal (yes)', C, { who: 'several-pins', peer: P(OW) }, OK('several-pins'));
  id('conn_several_pins_none_matches', 'several-pins against the intruder certificate', C, { who: 'several-pins', peer: P('intruder') }, MISMATCH);
  // a peer whose host reports no SHA-256
  const noHash = () => ({ ...P(OW), sha256: null });
  id('conn_peer_without_sha256_uri_pin_matches', 'the orders-writer facts with sha256 null: a uri_san pin still matches', C, { peer: noHash() }, OK(OW));
  id('conn_peer_without_sha256_sha256_pin_is_mismatch', 'the orders-writer facts with sha256 null: a sha256 pin cannot match', C, { who: 'sha-hex', peer: noHash() }, MISMATCH);
  // no certificate, clients without pins (when_listed)
  id('conn_pinned_client_without_certificate', 'orders-writer has pins and the connection presented no certificate', C, { peer: null }, MISSING);
  id('conn_unpinned_client_with_any_certificate', 'under when_listed a client without pins passes with any certificate', C, { who: CLIENT, peer: P('intruder') }, OK(CLIENT));
  id('conn_unpinned_client_without_certificate', 'under when_listed a client without pins passes without a certificate', C, { who: CLIENT, peer: null }, OK(CLIENT));
  id('conn_big_certificate_from_tls_is_fine', 'the 16384-byte limit is for certificate headers: a large certificate from the TLS stack is read', C, { who: 'big', peer: P('big') }, OK('big'));
  // defaults: no client_certificate (connection), no require_identity (when_listed)
  id('conn_default_source_and_mode_match', 'no client_certificate and no require_identity: connection, when_listed', 'connection_default', { peer: P(OW) }, OK(OW));
  id('conn_default_source_and_mode_mismatch', 'defaults, the intruder certificate', 'connection_default', { peer: P('intruder') }, MISMATCH);
  id('conn_default_source_and_mode_no_certificate', 'defaults, no certificate', 'connection_default', { peer: null }, MISSING);
  id('conn_default_source_and_mode_unpinned_client', 'defaults, a client without pins and no certificate', 'connection_default', { who: CLIENT, peer: null }, OK(CLIENT));
  // certificate headers are ignored under "connection"
  id('conn_spoofed_client_cert_header_is_ignored', 'a Client-Cert header sent by the client is no certificate under source "connection"', C, { peer: null, headers: [['Client-Cert', sf(OW)]] }, MISSING);
  id('conn_spoofed_alb_leaf_header_is_ignored', 'an X-Amzn-Mtls-Clientcert-Leaf header sent by the client is no certificate under source "connection"', C, { peer: null, headers: [['X-Amzn-Mtls-Clientcert-Leaf', albLeaf(OW)]] }, MISSING);
  id('conn_spoofed_header_does_not_replace_peer', 'the connection presented the intruder certificate; a Client-Cert header names orders-writer', C, { peer: P('intruder'), headers: [['client-cert', sf(OW)]] }, MISMATCH);
  id('conn_malformed_certificate_headers_are_ignored', 'malformed certificate headers are not read under "connection" (no 400)', C, { peer: P(OW), headers: [['Client-Cert', ':not base64!:'], ['Client-Cert', 'x'], ['X-Amzn-Mtls-Clientcert-Leaf', '%zz']] }, OK(OW));
  id('conn_default_spoofed_client_cert_header_is_ignored', 'the default source is "connection": a Client-Cert header is ignored', 'connection_default', { peer: null, headers: [['Client-Cert', sf(OW)]] }, MISSING);

  // ---------------------------------------------------------------- require_identity
  id('always_pinned_client_match', 'always: orders-writer with its certificate', 'connection_always', { peer: P(OW) }, OK(OW));
  id('always_pinned_client_mismatch', 'always: orders-writer with the intruder certificate', 'connection_always', { peer: P('intruder') }, MISMATCH);
  id('always_pinned_client_without_certificate', 'always: orders-writer without a certificate', 'connection_always', { peer: null }, MISSING);
  id('always_unpinned_client_with_certificate', 'always: every client must have pins; a client without pins fails even with a certificate', 'connection_always', { who: CLIENT, peer: P(OW) }, MISMATCH);
  id('always_token_without_client_id', 'always, provider client_ids null: a token without client_id has no pins', 'connection_always_any_client', { auth: bearer(tok('no-client-id', { client_id: DEL })), peer: P(OW) }, MISMATCH);
  id('always_any_client_pinned_client_match', 'always, provider client_ids null: a pinned client with its certificate', 'connection_always_any_client', { peer: P(OW) }, OK(OW));
  id('always_rule_off_replaces_provider_mode', 'the status rule sets require_identity "off" for its route', 'connection_always', { who: CLIENT, peer: null, target: '/status' }, OK(CLIENT));
  id('off_pins_are_ignored_on_mismatch', 'off: pins are not checked (the intruder certificate)', 'connection_off', { peer: P('intruder') }, OK(OW));
  id('off_pins_are_ignored_without_certificate', 'off: pins are not checked (no certificate)', 'connection_off', { peer: null }, OK(OW));

  // ---------------------------------------------------------------- rule-level client_identities / require_identity
  id('rule_pins_match', 'the job-7 rule pins batch to spiffe://prod/batch/7', C, { who: 'batch', peer: P('batch-7'), target: '/jobs/7' }, OK('batch'));
  id('rule_pins_replace_provider_pins', 'two-uris matches the provider pin spiffe://prod/batch/* but not the rule\'s spiffe://prod/batch/7', C, { who: 'batch', peer: P('two-uris'), target: '/jobs/7/run' }, MISMATCH);
  id('rule_pins_apply_only_to_their_route', 'elsewhere the provider pin spiffe://prod/batch/* applies', C, { who: 'batch', peer: P('two-uris'), target: '/api/jobs/7' }, OK('batch'));
  id('rule_pins_replace_rather_than_merge', 'the rule\'s client_identities replaces the provider\'s for its route: orders-writer is not listed there, so under when_listed it passes', C, { peer: P('intruder'), target: '/jobs/7' }, OK(OW));
  id('rule_pins_without_certificate', 'the job-7 rule pins batch; no certificate', C, { who: 'batch', peer: null, target: '/jobs/7' }, MISSING);
  id('rule_require_identity_off_mismatch', 'the status rule sets require_identity "off": the intruder certificate passes there', C, { peer: P('intruder'), target: '/status' }, OK(OW));
  id('rule_require_identity_off_without_certificate', 'the status rule sets require_identity "off": no certificate passes there', C, { peer: null, target: '/status/live' }, OK(OW));
  id('rule_require_identity_always_unpinned_client', 'the strict rule sets require_identity "always": a client without pins fails there', C, { who: CLIENT, peer: P(OW), target: '/strict' }, MISMATCH);
  id('rule_require_identity_always_pinned_client', 'the strict rule sets require_identity "always": orders-writer with its certificate', C, { peer: P(OW), target: '/strict' }, OK(OW));

  // ---------------------------------------------------------------- order
  id('pin_mismatch_comes_before_scopes', 'the admin route needs the admin scope, which the token lacks; the certificate does not match: identity_mismatch, not 403', C, { peer: P('intruder'), target: '/admin' }, MISMATCH);
  id('pin_missing_comes_before_scopes', 'the admin route needs the admin scope, which the token lacks; no certificate: identity_missing, not 403', C, { peer: null, target: '/admin' }, MISSING);
  id('pin_match_then_scopes', 'the certificate matches, then the missing admin scope gives 403', C, { peer: P(OW), target: '/admin' }, X.scope('admin'));
  id('pin_match_and_scope_met', 'the certificate matches and the token has admin', C, { auth: as(OW, { scope: SCOPE_ADMIN }, '-admin'), peer: P(OW), target: '/admin/users' }, OK(OW));
  id('token_error_comes_before_pins', 'an expired token with a mismatching certificate: token_expired', C, { auth: as(OW, { exp: NOW - 1, iat: NOW - 3601, auth_time: NOW - 3601 }, '-expired'), peer: P('intruder') }, X.invalid('token_expired'));
  id('token_missing_comes_before_pins', 'no Authorization and a mismatching certificate: token_missing', C, { auth: [], peer: P('intruder') }, X.missing());
  id('anonymous_route_checks_no_pins', 'an anonymous route reads neither the token nor the certificate', C, { peer: P('intruder'), target: '/health' }, X.anon());

  // ---------------------------------------------------------------- RFC 8705 binding (mtls_binding "required") against request.peer
  const B = 'connection_binding';
  id('binding_match_and_pin_match', 'cnf.x5t#S256 is the base64url of peer.sha256, and the pin matches', B, { auth: boundTo(OW, OW), peer: P(OW) }, OK(OW));
  id('binding_mismatch_comes_before_pin_mismatch', 'the token is bound to orders-writer, the connection presented intruder: the binding is checked first', B, { auth: boundTo(OW, OW), peer: P('intruder') }, BINDING);
  id('binding_match_then_pin_mismatch', 'the token is bound to the intruder certificate it presents, but orders-writer is pinned to spiffe://prod/orders-writer', B, { auth: boundTo(OW, 'intruder'), peer: P('intruder') }, MISMATCH);
  id('binding_without_certificate_comes_before_identity_missing', 'a bound token without a certificate: binding_mismatch, then (not reached) identity_missing', B, { auth: boundTo(OW, OW), peer: null }, BINDING);
  id('binding_required_token_without_cnf', 'mtls_binding "required" and a token without cnf', B, { peer: P(OW) }, BINDING);
  id('binding_unpinned_client_match', 'a client without pins: only the binding applies', B, { auth: boundTo(CLIENT, OW), peer: P(OW) }, OK(CLIENT));
  id('binding_unpinned_client_mismatch', 'a client without pins, bound to orders-writer, presenting intruder', B, { auth: boundTo(CLIENT, OW), peer: P('intruder') }, BINDING);
  id('binding_peer_without_sha256', 'a bound token and a peer with sha256 null: no thumbprint to compare', B, { auth: boundTo(OW, OW), peer: noHash() }, BINDING);
  id('binding_spoofed_client_cert_header_is_ignored', 'a bound token, no certificate on the connection, the bound certificate in a Client-Cert header', B, { auth: boundTo(OW, OW), peer: null, headers: [['Client-Cert', sf(OW)]] }, BINDING);

  // ---------------------------------------------------------------- source "client_cert_header" (RFC 9440)
  const H = 'client_cert_header';
  const der = (n) => { USED_CERTS.add(n); return CERT[n].der; };
  const b64 = (buf) => buf.toString('base64');
  id('header_match', 'Client-Cert: :<base64 DER of orders-writer>:', H, { headers: [['Client-Cert', sf(OW)]] }, OK(OW));
  id('header_name_lower_case', 'field names are case-insensitive: client-cert', H, { headers: [['client-cert', sf(OW)]] }, OK(OW));
  id('header_name_upper_case', 'field names are case-insensitive: CLIENT-CERT', H, { headers: [['CLIENT-CERT', sf(OW)]] }, OK(OW));
  id('header_mismatch', 'Client-Cert holds the intruder certificate', H, { headers: [['Client-Cert', sf('intruder')]] }, MISMATCH);
  id('header_absent_pinned_client', 'no Client-Cert for a pinned client', H, { headers: [] }, MISSING);
  id('header_absent_unpinned_client', 'no Client-Cert for a client without pins', H, { who: CLIENT }, OK(CLIENT));
  id('header_peer_is_ignored_without_header', 'request.peer (the proxy\'s own connection) is ignored: a matching peer and no Client-Cert', H, { peer: P(OW) }, MISSING);
  id('header_peer_is_ignored_with_header', 'request.peer holds intruder, Client-Cert holds orders-writer: the header counts', H, { peer: P('intruder'), headers: [['Client-Cert', sf(OW)]] }, OK(OW));
  id('header_dns_san_mixed_case', 'batch-dns (batch.internal) with batch-7 (Batch.Internal) from the header', H, { who: 'batch-dns', headers: [['Client-Cert', sf('batch-7')]] }, OK('batch-dns'));
  id('header_subject_without_san', 'reports (subject pin) with no-san from the header', H, { who: 'reports', headers: [['Client-Cert', sf('no-san')]] }, OK('reports'));
  id('header_subject_other_order', 'reports-reordered with no-san from the header', H, { who: 'reports-reordered', headers: [['Client-Cert', sf('no-san')]] }, MISMATCH);
  id('header_uri_prefix_second_uri_san', 'batch (spiffe://prod/batch/*) with two-uris from the header', H, { who: 'batch', headers: [['Client-Cert', sf('two-uris')]] }, OK('batch'));
  id('header_uri_prefix_parent', 'batch (spiffe://prod/batch/*) with batch-root (spiffe://prod/batch)', H, { who: 'batch', headers: [['Client-Cert', sf('batch-root')]] }, MISMATCH);
  id('header_sha256_base64url_match', 'sha-b64u with orders-writer from the header', H, { who: 'sha-b64u', headers: [['Client-Cert', sf(OW)]] }, OK('sha-b64u'));
  id('header_sha256_upper_hex_match', 'sha-hex-upper with orders-writer from the header', H, { who: 'sha-hex-upper', headers: [['Client-Cert', sf(OW)]] }, OK('sha-hex-upper'));
  id('header_sha256_hex_mismatch', 'sha-hex with intruder from the header', H, { who: 'sha-hex', headers: [['Client-Cert', sf('intruder')]] }, MISMATCH);
  // malformed
  id('header_two_values', 'two Client-Cert fields, both the matching certificate', H, { headers: [['Client-Cert', sf(OW)], ['Client-Cert', sf(OW)]] }, BAD);
  id('header_two_values_names_in_other_case', 'Client-Cert and client-cert are the same field: two values', H, { headers: [['Client-Cert', sf(OW)], ['client-cert', sf('intruder')]] }, BAD);
  id('header_without_colons', 'plain base64 without the ":" delimiters of a byte sequence', H, { headers: [['Client-Cert', b64(der(OW))]] }, BAD);
  id('header_without_closing_colon', '":<base64>" without the closing ":"', H, { headers: [['Client-Cert', ':' + b64(der(OW))]] }, BAD);
  id('header_base64url_alphabet', 'base64url ("-" and "_") instead of standard base64, padded', H, { headers: [['Client-Cert', `:${der(OW).toString('base64url')}=:`]] }, BAD);
  id('header_space_inside_base64', 'a space inside the base64 (lenient decoders skip it)', H, { headers: [['Client-Cert', `:${b64(der(OW)).slice(0, 64)} ${b64(der(OW)).slice(64)}:`]] }, BAD);
  id('header_invalid_base64_characters', '":!!!!:"', H, { headers: [['Client-Cert', ':!!!!:']] }, BAD);
  id('header_alb_encoding_in_client_cert', 'the URL-encoded PEM (the ALB format) in Client-Cert', H, { headers: [['Client-Cert', albLeaf(OW)]] }, BAD);
  id('header_empty_byte_sequence', '"::": zero bytes are no certificate', H, { headers: [['Client-Cert', '::']] }, BAD);
  id('header_base64_of_garbage', 'valid base64 of bytes that are not a certificate', H, { headers: [['Client-Cert', `:${b64(Buffer.from('this is not a certificate, only text'))}:`]] }, BAD);
  id('header_certificate_with_trailing_byte', 'the orders-writer DER followed by one zero byte: not exactly one certificate', H, { headers: [['Client-Cert', `:${b64(Buffer.concat([der(OW), Buffer.from([0])]))}:`]] }, BAD);
  id('header_two_certificates_concatenated', 'the DER of orders-writer then intruder: not one certificate', H, { headers: [['Client-Cert', `:${b64(Buffer.concat([der(OW), der('intruder')]))}:`]] }, BAD);
  id('header_truncated_certificate', 'the orders-writer DER without its last byte', H, { headers: [['Client-Cert', `:${b64(der(OW).subarray(0, der(OW).length - 1))}:`]] }, BAD);
  id('header_over_16384_bytes', `big (${CERT.big.der.length} bytes of DER) would match the pin of client big, but is over the 16384-byte limit`, H, { who: 'big', headers: [['Client-Cert', sf('big')]] }, BAD);
  id('header_malformed_with_matching_peer', 'a malformed Client-Cert is refused even when request.peer would match', H, { peer: P(OW), headers: [['Client-Cert', ':!!!!:']] }, BAD);
  // other certificate headers are ignored
  id('header_alb_leaf_is_ignored', 'X-Amzn-Mtls-Clientcert-Leaf is no certificate under source "client_cert_header"', H, { headers: [['X-Amzn-Mtls-Clientcert-Leaf', albLeaf(OW)]] }, MISSING);
  id('header_alb_leaf_does_not_override', 'Client-Cert holds intruder, X-Amzn-Mtls-Clientcert-Leaf holds orders-writer', H, { headers: [['Client-Cert', sf('intruder')], ['X-Amzn-Mtls-Clientcert-Leaf', albLeaf(OW)]] }, MISMATCH);
  id('header_malformed_alb_leaf_is_ignored', 'a malformed x-amzn-mtls-clientcert-leaf is not read (no 400)', H, { headers: [['x-amzn-mtls-clientcert-leaf', '%zz'], ['Client-Cert', sf(OW)]] }, OK(OW));
  // binding (mtls_binding "when_present") against the header certificate
  id('header_binding_match', 'a token bound to orders-writer, Client-Cert holds orders-writer', H, { auth: boundTo(OW, OW), headers: [['Client-Cert', sf(OW)]] }, OK(OW));
  id('header_binding_uses_the_header_certificate', 'a token bound to orders-writer; request.peer is orders-writer but Client-Cert holds intruder', H, { auth: boundTo(OW, OW), peer: P(OW), headers: [['Client-Cert', sf('intruder')]] }, BINDING);
  id('header_binding_unpinned_client', 'a client without pins, bound to orders-writer, Client-Cert holds orders-writer', H, { auth: boundTo(CLIENT, OW), headers: [['Client-Cert', sf(OW)]] }, OK(CLIENT));
  id('header_binding_malformed_header', 'a client without pins, bound: the binding needs the certificate and Client-Cert is malformed', H, { auth: boundTo(CLIENT, OW), headers: [['Client-Cert', `:${b64(Buffer.from('not a certificate'))}:`]] }, BAD);

  // ---------------------------------------------------------------- source "alb" (X-Amzn-Mtls-Clientcert-Leaf)
  const A = 'alb';
  const LEAF = 'X-Amzn-Mtls-Clientcert-Leaf';
  const pemOf = (body) => `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`;
  assert(pemOf(b64(der(OW))) === CERT[OW].pem, 'the orders-writer PEM is in canonical form');
  id('alb_match', 'X-Amzn-Mtls-Clientcert-Leaf: encodeURIComponent of the orders-writer PEM', A, { headers: [[LEAF, albLeaf(OW)]] }, OK(OW));
  id('alb_name_lower_case', 'field names are case-insensitive', A, { headers: [['x-amzn-mtls-clientcert-leaf', albLeaf(OW)]] }, OK(OW));
  id('alb_safe_characters_left_unencoded', 'as ALB sends it: "+", "=" and "/" unencoded (URL decoding keeps "+", it is no space)', A, { headers: [[LEAF, albAsSent(OW)]] }, OK(OW));
  id('alb_mismatch', 'the intruder PEM', A, { headers: [[LEAF, albLeaf('intruder')]] }, MISMATCH);
  id('alb_absent', 'no leaf header for a pinned client', A, {}, MISSING);
  id('alb_absent_unpinned_client', 'no leaf header for a client without pins', A, { who: CLIENT }, OK(CLIENT));
  id('alb_peer_is_ignored', 'request.peer matches but the source is the ALB header, which is absent', A, { peer: P(OW) }, MISSING);
  id('alb_dns_san_mixed_case', 'batch-dns with batch-7 (Batch.Internal)', A, { who: 'batch-dns', headers: [[LEAF, albLeaf('batch-7')]] }, OK('batch-dns'));
  id('alb_subject_without_san', 'reports (subject pin) with no-san', A, { who: 'reports', headers: [[LEAF, albLeaf('no-san')]] }, OK('reports'));
  id('alb_sha256_hex_match', 'sha-hex with orders-writer', A, { who: 'sha-hex', headers: [[LEAF, albLeaf(OW)]] }, OK('sha-hex'));
  id('alb_client_cert_is_ignored', 'Client-Cert is no certificate under source "alb"', A, { headers: [['Client-Cert', sf(OW)]] }, MISSING);
  id('alb_malformed_client_cert_is_ignored', 'a malformed Client-Cert is not read (no 400)', A, { headers: [['Client-Cert', ':!!!!:'], [LEAF, albLeaf(OW)]] }, OK(OW));
  id('alb_passthrough_header_is_not_the_leaf', 'X-Amzn-Mtls-Clientcert (ALB passthrough mode) is not X-Amzn-Mtls-Clientcert-Leaf', A, { headers: [['X-Amzn-Mtls-Clientcert', albLeaf(OW)]] }, MISSING);
  id('alb_subject_header_is_not_read', 'the subject comes from the leaf (intruder), not from X-Amzn-Mtls-Clientcert-Subject', A, { who: 'reports', headers: [[LEAF, albLeaf('intruder')], ['X-Amzn-Mtls-Clientcert-Subject', 'CN=reports,OU=finance,O=Example']] }, MISMATCH);
  // malformed
  id('alb_two_values', 'two leaf headers', A, { headers: [[LEAF, albLeaf(OW)], [LEAF.toLowerCase(), albLeaf(OW)]] }, BAD);
  id('alb_bad_percent_encoding', '"%0G" is no percent-encoding', A, { headers: [[LEAF, albLeaf(OW).replace('%0A', '%0G')]] }, BAD);
  id('alb_not_pem', 'text that is no PEM', A, { headers: [[LEAF, 'not%20a%20certificate']] }, BAD);
  id('alb_base64_der_without_pem_armour', 'the base64 DER without BEGIN/END lines', A, { headers: [[LEAF, encodeURIComponent(b64(der(OW)))]] }, BAD);
  id('alb_pem_chain_of_two', 'two certificates (a chain) where one leaf is expected', A, { headers: [[LEAF, encodeURIComponent(CERT[OW].pem + CERT.ca.pem)]] }, BAD);
  id('alb_pem_of_garbage', 'a CERTIFICATE PEM block around bytes that are not a certificate', A, { headers: [[LEAF, encodeURIComponent(pemOf(b64(Buffer.from('this is not a certificate, only text'))))]] }, BAD);
  id('alb_pem_with_a_line_missing', 'the orders-writer PEM without its second base64 line', A, { headers: [[LEAF, encodeURIComponent(CERT[OW].pem.split('\n').filter((_, i) => i !== 2).join('\n'))]] }, BAD);
  id('alb_public_key_pem', 'the PEM of the orders-writer public key, not of its certificate', A, { headers: [[LEAF, encodeURIComponent(new crypto.X509Certificate(der(OW)).publicKey.export({ type: 'spki', format: 'pem' }))]] }, BAD);
  id('alb_over_16384_bytes', 'big would match the pin of client big, but the header is over the 16384-byte limit', A, { who: 'big', headers: [[LEAF, albLeaf('big')]] }, BAD);
  // binding
  id('alb_binding_match', 'a token bound to orders-writer, the leaf is orders-writer', A, { auth: boundTo(OW, OW), headers: [[LEAF, albLeaf(OW)]] }, OK(OW));
  id('alb_binding_mismatch', 'a token bound to orders-writer, the leaf is intruder', A, { auth: boundTo(OW, OW), headers: [[LEAF, albLeaf('intruder')]] }, BINDING);
}

// ============================================================================ budget
// README "Signature budget": at most `signature_checks_per_s` signature checks per second of the
// request clock in one gate; past it a token that is not already verified is refused with 503
// signature_budget_exhausted and Retry-After: 1 before any signature work. These cases need state,
// so each carries `before`: requests sent to the same gate first (answers not checked), and each
// has a configuration of its own (a distinct realm), so a host that keeps one gate per
// configuration replays them exactly as one that makes a gate per case.
{
  const configs = {};
  const g = group('budget', 'the signature budget: forged-token floods get a cheap 503, verified tokens and cheap refusals never count', configs);
  const X503 = { status: 503, code: 'signature_budget_exhausted', www_authenticate: null, retry_after: '1', forward: null };
  const OK = X.ok({});
  let n = 0;
  const cfg = (limit, rules) => {
    n++;
    const c = config({ realm: `budget-${n}`, ...(rules ? { rules, deflt: 'deny' } : {}) });
    c.signature_checks_per_s = limit;
    configs[`budget_${n}`] = c;
    return `budget_${n}`;
  };
  const fresh = (label) => bearer(tok('budget-' + label));
  const forged = (label) => bearer(tok('budget-forged-' + label, {}, { signer: 'attacker-rsa' })); // rsa-a's kid, another key's signature
  const unknownKid = (label) => bearer(tok('budget-unknown-kid-' + label, {}, { kid: KID['attacker-rsa'] }));
  const expired = (label) => bearer(tok('budget-expired-' + label, { exp: NOW - 10, iat: NOW - 3610, auth_time: NOW - 3610 }));
  const step = (auth, { target = '/api', now = NOW, method = 'GET' } = {}) => ({ method, target, auth, now });
  const budget = (name, description, limit, before, auth, expect, { now = NOW, rules, target = '/api' } = {}) =>
    add(g, name, description, { config: cfg(limit, rules), target, auth, now, before }, expect);

  budget('budget_third_new_token_in_a_second_is_refused', 'limit 2: two new tokens verified this second, a third new one gets 503 before any RSA work', 2,
    [step(fresh('a')), step(fresh('b'))], fresh('c'), X503);
  budget('budget_verified_tokens_do_not_count', 'limit 2: a token verified before is a cache hit and spends nothing', 2,
    [step(fresh('a')), step(fresh('b'))], fresh('a'), OK);
  budget('budget_verified_token_passes_while_exhausted', 'limit 2: the budget is spent (the third token got 503), an already verified token still passes', 2,
    [step(fresh('a')), step(fresh('b')), step(fresh('c'))], fresh('b'), OK);
  budget('budget_refused_token_is_not_remembered', 'limit 2: the token refused with 503 was never verified, so it is refused again in the same second', 2,
    [step(fresh('a')), step(fresh('b')), step(fresh('c'))], fresh('c'), X503);
  budget('budget_starts_again_next_second', 'limit 2: the count is per second of the request clock', 2,
    [step(fresh('a')), step(fresh('b'))], fresh('c'), OK, { now: NOW + 1 });
  budget('budget_forged_tokens_spend_it', 'limit 2: two tokens with a known kid and a wrong signature cost two checks', 2,
    [step(forged('1')), step(forged('2'))], fresh('a'), X503);
  budget('budget_forged_token_repeated_spends_each_time', 'limit 2: a forged token is never remembered, so sending it again costs again', 2,
    [step(forged('1')), step(forged('1'))], fresh('a'), X503);
  budget('budget_forged_token_itself_is_refused_cheaply', 'limit 1: after one forged token, the next forged one gets 503, not signature_invalid', 1,
    [step(forged('1'))], forged('2'), X503);
  budget('budget_expired_tokens_spend_it', 'limit 1: expiry is checked after the signature, so an expired token costs a check', 1,
    [step(expired('1'))], fresh('a'), X503);
  budget('budget_unknown_kid_costs_nothing', 'limit 1: a kid the key set lacks is refused before any signature work', 1,
    [step(unknownKid('1')), step(unknownKid('2')), step(unknownKid('3'))], fresh('a'), OK);
  budget('budget_malformed_and_missing_cost_nothing', 'limit 1: malformed credentials, other schemes and no credential never reach a signature check', 1,
    [step(['Bearer abc']), step([]), step(['Basic dXNlcjpwYXNz']), step(['Bearer a.b.c'])], fresh('a'), OK);
  budget('budget_refused_requests_cost_nothing', 'limit 1: requests refused for their path (400) never look at the token', 1,
    [step(forged('1'), { target: '/api;x=1' }), step(forged('2'), { target: '/a/../api' })], fresh('a'), OK);
  budget('budget_anonymous_route_costs_nothing', 'limit 1: an anonymous route never looks at the token', 1,
    [step(forged('1'), { target: '/health' }), step(forged('2'), { target: '/health' })], fresh('a'), OK,
    { rules: [rule('health', { prefix: '/health' }, 'anonymous'), rule('rest', { prefix: '/' }, 'authenticated')] });
  budget('budget_anonymous_route_passes_while_exhausted', 'limit 1: the budget is spent, an anonymous route still answers', 1,
    [step(forged('1')), step(forged('2'))], forged('3'), OK,
    { target: '/health', rules: [rule('health', { prefix: '/health' }, 'anonymous'), rule('rest', { prefix: '/' }, 'authenticated')] });
  budget('budget_missing_token_while_exhausted_is_401', 'limit 1: with the budget spent, a request without a token still gets 401 token_missing', 1,
    [step(forged('1')), step(forged('2'))], [], X.missing('budget-15'));
  budget('budget_unlimited', '"unlimited": no budget', 'unlimited',
    [step(fresh('a')), step(fresh('b')), step(fresh('c')), step(fresh('d')), step(forged('1')), step(forged('2'))], fresh('e'), OK);
  budget('budget_one_thousand_is_room_for_many', 'limit 1000: ten new tokens and ten forged ones in a second are far below it', 1000,
    [...'0123456789'.split('').map((d) => step(fresh('many-' + d))), ...'0123456789'.split('').map((d) => step(forged('many-' + d)))], fresh('a'), OK);
}

// ---------------------------------------------------------------------------------------------
// Self-check 1: an independent reference model of README rules 1-7 and of "Client certificates
// and identity pinning"
// ---------------------------------------------------------------------------------------------

const STANDARD_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
const asciiUpper = (s) => s.replace(/[a-z]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 32));
const asciiLower = (s) => s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
const TCHAR = new Set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
const PATH_RAW = new Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@/%");
const HEX = new Set('0123456789ABCDEFabcdef');
const UNRESERVED = new Set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~.');
const TOKEN68 = new Set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/');

// Rule 1. true when the method is acceptable.
function methodOk(m) {
  if (m.length === 0) return false;
  for (const ch of m) if (!TCHAR.has(ch)) return false;
  if (STANDARD_METHODS.includes(asciiUpper(m)) && m !== asciiUpper(m)) return false;
  return true;
}

// Rule 2. Returns { star: true }, { path } (normalised) or null (refused).
function normaliseTarget(method, target) {
  if (target === '*') return method === 'OPTIONS' ? { star: true } : null;
  if (target[0] !== '/') return null;
  for (const ch of target) {
    const c = ch.codePointAt(0);
    if (c < 0x21 || c > 0x7e || ch === '#') return null;
  }
  const q = target.indexOf('?');
  const raw = q < 0 ? target : target.slice(0, q);
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i];
    if (!PATH_RAW.has(ch)) return null;
    if (ch !== '%') { out += ch; continue; }
    const h1 = raw[i + 1], h2 = raw[i + 2];
    if (h1 === undefined || h2 === undefined || !HEX.has(h1) || !HEX.has(h2)) return null;
    const v = parseInt(h1 + h2, 16);
    const dec = String.fromCharCode(v);
    if (v < 0x20 || v === 0x7f || v >= 0x80) return null; // control or non-ASCII octet
    if (dec === '.' || dec === '/' || dec === '\\' || dec === ';' || dec === '%') return null;
    if (UNRESERVED.has(dec)) out += dec; // letters, digits, '-', '_', '~' ('.' refused above)
    else out += '%' + asciiUpper(h1 + h2);
    i += 2;
  }
  const segs = out.slice(1).split('/');
  for (let k = 0; k < segs.length; k++) {
    if (segs[k] === '.' || segs[k] === '..') return null;
    if (segs[k] === '' && k !== segs.length - 1) return null;
  }
  return { path: out };
}

// Rule patterns are compared in the same normal form: hex digits of escapes upper-cased.
const upperEscapes = (s) => s.replace(/%([0-9A-Fa-f]{2})/g, (_, h) => '%' + asciiUpper(h));

// Rule 3.
function ruleMatches(r, method, pathStr) {
  const m = r.match;
  if (m.methods !== undefined && !(m.methods.includes(method) || (method === 'HEAD' && m.methods.includes('GET')))) return false;
  const fold = m.case_insensitive === true ? asciiLower : (s) => s;
  const p = fold(pathStr);
  if (m.prefix !== undefined) {
    const P = fold(upperEscapes(m.prefix));
    if (p === P) return true;
    return p.startsWith(P) && (P.endsWith('/') || p[P.length] === '/');
  }
  const strip = (s) => (s.length > 1 && s.endsWith('/') ? s.slice(0, -1) : s);
  return strip(p) === strip(fold(upperEscapes(m.exact)));
}

// Rule 5. Returns { token } or { err }.
function parseAuthorization(values) {
  // Values that are empty once spaces and tabs are dropped carry no credential and are left out
  // (HTTP stacks such as Envoy's merge repeated fields and drop empty ones).
  values = values.filter((v) => v.replace(/^[ \t]+|[ \t]+$/g, '') !== '');
  if (values.length === 0) return { err: 'token_missing' };
  if (values.length > 1) return { err: 'token_malformed' };
  let v = values[0];
  let s = 0, e = v.length;
  while (s < e && (v[s] === ' ' || v[s] === '\t')) s++;
  while (e > s && (v[e - 1] === ' ' || v[e - 1] === '\t')) e--;
  v = v.slice(s, e);
  if (v === '') return { err: 'token_missing' };
  let sep = -1;
  for (let i = 0; i < v.length; i++) if (v[i] === ' ' || v[i] === '\t') { sep = i; break; }
  const scheme = sep < 0 ? v : v.slice(0, sep);
  if (asciiLower(scheme) !== 'bearer') return { err: 'token_missing' };
  if (sep < 0) return { err: 'token_missing' };
  if (v[sep] === '\t') return { err: 'token_malformed' };
  let i = sep;
  while (v[i] === ' ') i++;
  const cred = v.slice(i);
  let j = 0;
  while (j < cred.length && TOKEN68.has(cred[j])) j++;
  if (j === 0) return { err: 'token_malformed' };
  while (j < cred.length && cred[j] === '=') j++;
  if (j !== cred.length) return { err: 'token_malformed' };
  return { token: cred };
}

function strictB64u(seg) {
  if (!/^[A-Za-z0-9_-]*$/.test(seg) || seg.length % 4 === 1) return null;
  const buf = Buffer.from(seg, 'base64url');
  return buf.toString('base64url') === seg ? buf : null;
}
function parseObject(buf) {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
    const v = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch { return null; }
}

// Rule 6 (token part): the pipeline of ../README.md, for the features the configurations here use,
// with the certificate pins between the RFC 8705 binding and scopes. extraScopes: the rule's scopes;
// ctx: { cfg, rule, cert } for the binding and pins. Returns { code: null | string, scopes?: [..], claims }.
function pipeline(token, prov, extraScopes, now, ctx) {
  if (token.length === 0) return { code: 'token_missing' };
  if (Buffer.byteLength(token, 'utf8') > (prov.max_token_bytes ?? 16384)) return { code: 'token_too_large' };
  const parts = token.split('.');
  if (parts.length !== 3) return { code: 'token_malformed' };
  const dec = parts.map(strictB64u);
  if (dec.some((d) => d === null) || dec[2].length === 0) return { code: 'token_malformed' };
  const hdr = parseObject(dec[0]);
  if (!hdr || typeof hdr.alg !== 'string') return { code: 'token_malformed' };
  if (!(prov.algorithms ?? ['RS256']).includes(hdr.alg)) return { code: 'alg_not_allowed' };
  if (has(hdr, 'crit') || has(hdr, 'b64')) return { code: 'header_unsupported' };
  if (typeof hdr.kid !== 'string') return { code: 'kid_missing' };
  const jwks = prov.jwks.keys.filter((k) => k.kid === hdr.kid);
  if (jwks.length === 0) return { code: 'kid_unknown' };
  const jwk = jwks[0];
  if (jwks.length !== 1 || jwk.kty !== 'RSA' || (has(jwk, 'alg') && jwk.alg !== hdr.alg) || (has(jwk, 'use') && jwk.use !== 'sig') || hdr.alg !== 'RS256') return { code: 'key_unusable' };
  const key = crypto.createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' });
  if (key.asymmetricKeyDetails.modulusLength < 2048) return { code: 'key_unusable' };
  const ok = crypto.verify('sha256', Buffer.from(parts[0] + '.' + parts[1], 'ascii'), { key, padding: crypto.constants.RSA_PKCS1_PADDING }, dec[2]);
  if (!ok || dec[2].length !== 256) return { code: 'signature_invalid' };
  const cl = parseObject(dec[1]);
  if (!cl) return { code: 'token_malformed' };
  const L = prov.leeway_s ?? 0;
  if (!has(cl, 'exp')) return { code: 'claim_missing' };
  for (const f of ['exp', 'nbf', 'iat']) if (has(cl, f) && typeof cl[f] !== 'number') return { code: 'claim_invalid' };
  if (now >= cl.exp + L) return { code: 'token_expired' };
  if (has(cl, 'nbf') && cl.nbf > now + L) return { code: 'token_not_yet_valid' };
  if (has(cl, 'iat') && cl.iat > now + L) return { code: 'token_issued_in_future' };
  if (prov.max_token_age_s != null) {
    if (!has(cl, 'iat')) return { code: 'claim_missing' };
    if (now - cl.iat > prov.max_token_age_s + L) return { code: 'token_expired' };
  }
  if (!has(cl, 'iss')) return { code: 'claim_missing' };
  if (typeof cl.iss !== 'string') return { code: 'claim_invalid' };
  if (cl.iss !== prov.issuer) return { code: 'issuer_mismatch' };
  const tu = has(prov, 'token_use') ? prov.token_use : 'access';
  if (tu !== null) {
    if (!has(cl, 'token_use')) return { code: 'claim_missing' };
    if (cl.token_use !== tu) return { code: 'token_use_mismatch' };
  }
  if (prov.client_ids !== null) {
    if (!has(cl, 'client_id')) return { code: 'claim_missing' };
    if (typeof cl.client_id !== 'string') return { code: 'claim_invalid' };
    if (!prov.client_ids.includes(cl.client_id)) return { code: 'client_not_allowed' };
  }
  // (step 14, revocation, is not configured here)
  const stop = bindingAndPins(cl, prov, ctx);
  if (stop !== null) return stop;
  const granted = typeof cl.scope === 'string' ? cl.scope.split(' ') : [];
  for (const req of [prov.scopes ?? null, extraScopes]) {
    if (req === null) continue;
    const met = has(req, 'all') ? req.all.every((s) => granted.includes(s)) : req.any.some((s) => granted.includes(s));
    if (!met) return { code: 'scope_insufficient', scopes: has(req, 'all') ? req.all : req.any, claims: cl, provider: req === prov.scopes };
  }
  return { code: null, claims: cl };
}

// "Client certificates and identity pinning": where the certificate comes from.
const REFUSED = Symbol('certificate header refused');
function unspecified(what) {
  throw new Error(`the README does not pin this down, so no case may land here: ${what}`);
}

// Exactly one DER certificate (the outer SEQUENCE spans every byte and node:crypto parses it), and
// its facts: URI and DNS SANs in order, the subject in RFC 4514 order, the SHA-256 of the DER.
function certificateFacts(der) {
  if (der.length < 2 || der[0] !== 0x30) return null;
  let len = der[1], hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4 || der.length < 2 + n) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[2 + i];
    hdr += n;
  }
  if (hdr + len !== der.length) return null;
  let x;
  try { x = new crypto.X509Certificate(der); } catch { return null; }
  const names = x.subjectAltName === undefined ? [] : x.subjectAltName.split(', ');
  return {
    uri_sans: names.filter((n) => n.startsWith('URI:')).map((n) => n.slice(4)),
    dns_sans: names.filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4)),
    subject: x.subject === '' ? null : x.subject.split('\n').reverse().join(','),
    sha256: crypto.createHash('sha256').update(der).digest('hex'),
  };
}

// Standard base64 with padding; null when it is not.
function standardBase64(text) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  if (text.length % 4 !== 0) unspecified('base64 without "=" padding (RFC 8941 asks parsers to accept it)');
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) unspecified('base64 with non-zero pad bits');
  return bytes;
}

// The facts of the configured source: an object, null (no certificate) or REFUSED (400).
function clientCertificate(cfg, req) {
  const source = has(cfg, 'client_certificate') ? cfg.client_certificate.source : 'connection';
  if (source === 'connection') return req.peer; // certificate headers are ignored
  const field = source === 'client_cert_header' ? 'client-cert' : 'x-amzn-mtls-clientcert-leaf';
  const values = (req.headers ?? []).filter(([name]) => asciiLower(name) === field).map(([, v]) => v);
  if (values.length === 0) return null;
  if (values.length > 1) return REFUSED;
  const value = values[0];
  if (Buffer.byteLength(value, 'utf8') > 16384) return REFUSED;
  let der;
  if (source === 'client_cert_header') {
    const m = /^:([^:]*):$/.exec(value); // RFC 8941 byte sequence
    if (!m) return REFUSED;
    der = standardBase64(m[1]);
  } else {
    let pem;
    try { pem = decodeURIComponent(value); } catch { return REFUSED; } // percent-decoding: "+" stays "+"
    const blocks = pem.split('-----BEGIN CERTIFICATE-----').length - 1;
    if (blocks !== 1) return REFUSED; // no certificate, or a chain
    const m = /^-----BEGIN CERTIFICATE-----\n((?:[A-Za-z0-9+/=]{1,64}\n)+)-----END CERTIFICATE-----\n$/.exec(pem);
    if (!m) unspecified('a PEM leaf that is not in the canonical form');
    der = standardBase64(m[1].replace(/\n/g, ''));
  }
  if (der === null) return REFUSED;
  return certificateFacts(der) ?? REFUSED;
}

function subjectEquals(pin, subject) {
  const rdns = (s) => s.split(',').map((p) => p.replace(/^ +| +$/g, '')).map((p) => {
    const i = p.indexOf('=');
    return [asciiLower(p.slice(0, i)), p.slice(i + 1)];
  });
  const a = rdns(pin), b = rdns(subject);
  return a.length === b.length && a.every(([type, value], i) => type === b[i][0] && value === b[i][1]);
}

function pinMatches(pin, facts) {
  if (has(pin, 'uri_san')) {
    const v = pin.uri_san;
    if (v.endsWith('/*')) {
      const prefix = v.slice(0, -1);
      return facts.uri_sans.some((u) => u.startsWith(prefix) && u.length > prefix.length);
    }
    return facts.uri_sans.includes(v);
  }
  if (has(pin, 'dns_san')) return facts.dns_sans.some((d) => asciiLower(d) === asciiLower(pin.dns_san));
  if (has(pin, 'subject')) return facts.subject !== null && subjectEquals(pin.subject, facts.subject);
  if (facts.sha256 === null) return false;
  if (pin.sha256.length === 64) return asciiLower(pin.sha256) === facts.sha256;
  return Buffer.from(facts.sha256, 'hex').toString('base64url') === pin.sha256;
}

// ../README.md step 15 (RFC 8705) with the certificate of the configured source, then the pins.
// Returns null (go on) or { code }.
function bindingAndPins(cl, prov, { cfg, rule, cert }) {
  const binding = prov.mtls_binding ?? cfg.mtls_binding ?? 'off';
  if (binding !== 'off') {
    if (has(cl, 'cnf') && (cl.cnf === null || typeof cl.cnf !== 'object' || Array.isArray(cl.cnf))) return { code: 'claim_invalid' };
    const bound = has(cl, 'cnf') && has(cl.cnf, 'x5t#S256');
    if (binding === 'required' && !bound) return { code: 'binding_mismatch' };
    if (bound) {
      const c = cert();
      if (c === REFUSED) return { code: 'request_invalid' };
      const x5t = cl.cnf['x5t#S256'];
      if (typeof x5t !== 'string' || c === null || c.sha256 === null || Buffer.from(c.sha256, 'hex').toString('base64url') !== x5t) return { code: 'binding_mismatch' };
    }
  }
  const mode = rule !== undefined && has(rule, 'require_identity') ? rule.require_identity : (prov.require_identity ?? 'when_listed');
  if (mode === 'off') return null;
  const pins = rule !== undefined && has(rule, 'client_identities') ? rule.client_identities : (prov.client_identities ?? {});
  if (has(cl, 'client_id') && typeof cl.client_id !== 'string' && (mode === 'always' || has(pins, String(cl.client_id)))) unspecified('a non-string client_id with pins');
  const list = typeof cl.client_id === 'string' && has(pins, cl.client_id) ? pins[cl.client_id] : null;
  if (list === null) {
    if (mode === 'when_listed') return null;
    const c = cert();
    if (c === REFUSED) unspecified('"always", a client without pins and a refused certificate header');
    if (c === null) unspecified('"always", a client without pins and no certificate: identity_missing or identity_mismatch');
    return { code: 'identity_mismatch' };
  }
  const c = cert();
  if (c === REFUSED) return { code: 'request_invalid' };
  if (c === null) return { code: 'identity_missing' };
  return list.some((pin) => pinMatches(pin, c)) ? null : { code: 'identity_mismatch' };
}

// Rule 7.
function modelAnswer(cfg, code, scopes) {
  const realm = (cfg.realm ?? 'tokengate').replace(/[\\"]/g, (c) => '\\' + c);
  let status, www;
  if (code === 'request_invalid') { status = 400; www = null; }
  else if (code === 'token_missing') { status = 401; www = `Bearer realm="${realm}"`; }
  else if (code === 'scope_insufficient') {
    status = 403;
    www = `Bearer realm="${realm}", error="insufficient_scope"` + (scopes ? `, scope="${scopes.join(' ')}"` : '');
  } else { status = 401; www = `Bearer realm="${realm}", error="invalid_token"`; }
  return { status, code, www_authenticate: www, retry_after: null, forward: null };
}

function modelForward(cfg, claims) {
  const out = {};
  for (const [claim, header] of Object.entries(cfg.forward ?? {})) {
    if (!has(claims, claim) || claims[claim] === null) continue;
    const v = typeof claims[claim] === 'string' ? claims[claim] : JSON.stringify(claims[claim]);
    if (/[\u0000-\u001f\u007f]/.test(v)) continue;
    out[header] = v;
  }
  return out;
}

function model(cfg, req, now) {
  assert(cfg.providers.length === 1, 'the model handles one provider per configuration');
  const ok = (forward) => ({ status: 200, code: null, www_authenticate: null, retry_after: null, forward });
  if (!methodOk(req.method)) return modelAnswer(cfg, 'request_invalid');
  const t = normaliseTarget(req.method, req.target);
  if (t === null) return modelAnswer(cfg, 'request_invalid');
  // The certificate of the configured source; a refused header is a 400 when the decision needs the
  // certificate. Whether a host refuses it when the decision does not is not pinned down.
  const certificate = clientCertificate(cfg, req);
  let consulted = false;
  const cert = () => { consulted = true; return certificate; };
  const rules = cfg.rules ?? [];
  const r = t.star ? undefined : rules.find((x) => ruleMatches(x, req.method, t.path));
  if (r && r.allow === 'anonymous') {
    if (certificate === REFUSED) unspecified('a refused certificate header on an anonymous route');
    return ok({});
  }
  const dflt = cfg.default ?? (rules.length ? 'deny' : 'authenticated');
  const b = parseAuthorization(req.authorization);
  if (b.err) {
    if (certificate === REFUSED) unspecified('a refused certificate header with a bearer credential error');
    return modelAnswer(cfg, b.err);
  }
  const res = pipeline(b.token, cfg.providers[0], r && r.scopes ? r.scopes : null, now, { cfg, rule: r, cert });
  if (certificate === REFUSED && !consulted) unspecified('a refused certificate header the decision did not need');
  if (res.code === 'request_invalid') return modelAnswer(cfg, 'request_invalid');
  const identityCode = ['identity_missing', 'identity_mismatch'].includes(res.code);
  if (r && r.client_ids && identityCode) unspecified('a pin failure on a rule with client_ids (client_not_allowed or identity_*)');
  if (!r && dflt === 'deny' && identityCode) unspecified('a pin failure under default "deny"');
  if (r && r.client_ids && (res.code === null || res.code === 'scope_insufficient')) {
    if (typeof res.claims.client_id !== 'string' || !r.client_ids.includes(res.claims.client_id)) return modelAnswer(cfg, 'client_not_allowed');
  }
  if (!r && dflt === 'deny' && res.code === 'scope_insufficient') {
    // README: default deny + a token refused by the provider's own scopes is not pinned down; no case may land here.
    throw new Error('a case reaches default "deny" with a token that fails the provider scopes (unspecified)');
  }
  if (res.code) return modelAnswer(cfg, res.code, res.scopes);
  if (!r && dflt === 'deny') return modelAnswer(cfg, 'scope_insufficient', null);
  return ok(modelForward(cfg, res.claims));
}

// The signature budget (README "Signature budget") over a sequence of requests to one gate. The
// stateless model above gives each request's answer; a request spends a check when its token
// reached the signature step (the answer is a token answer past key selection) and is not a token
// this gate verified before. Verified means: the signature and the time checks passed (the core
// keeps those tokens whatever the later policy checks say).
const BEFORE_SIGNATURE = ['request_invalid', 'token_missing', 'token_malformed', 'token_too_large', 'alg_not_allowed',
  'header_unsupported', 'kid_missing', 'kid_unknown', 'key_unusable'];
const NOT_REMEMBERED = ['signature_invalid', 'token_expired', 'token_not_yet_valid', 'token_issued_in_future'];
function modelSequence(cfg, steps) {
  const limit = cfg.signature_checks_per_s ?? 1000;
  const verified = new Set();
  let second = null, used = 0;
  let answer = null;
  for (const { request, now } of steps) {
    answer = model(cfg, request, now);
    if (BEFORE_SIGNATURE.includes(answer.code)) continue;
    const t = normaliseTarget(request.method, request.target);
    const r = t.star ? undefined : (cfg.rules ?? []).find((x) => ruleMatches(x, request.method, t.path));
    if (r && r.allow === 'anonymous') continue;
    const b = parseAuthorization(request.authorization);
    assert(!b.err, 'a bearer error answered with a token code');
    if (verified.has(b.token)) continue;
    if (now !== second) { second = now; used = 0; }
    if (limit !== 'unlimited' && used >= limit) {
      answer = { status: 503, code: 'signature_budget_exhausted', www_authenticate: null, retry_after: '1', forward: null };
      continue;
    }
    used++;
    if (!NOT_REMEMBERED.includes(answer.code)) verified.add(b.token);
    if (!['signature_invalid', 'token_expired', null].includes(answer.code)) unspecified('a budget case with a token answered ' + answer.code);
  }
  return answer;
}

// ---------------------------------------------------------------------------------------------
// Run the self-check, then write
// ---------------------------------------------------------------------------------------------

let failures = 0;
const fail = (msg) => { failures++; console.error(msg); };
const perStatus = {};
const perCode = Object.fromEntries(REQUIRED_CODES.map((c) => [c, 0]));
let total = 0;
for (const g of GROUPS) {
  for (const c of g.cases) {
    total++;
    let got;
    try {
      got = c.before === undefined ? model(g.configs[c.config], c.request, c.now)
        : modelSequence(g.configs[c.config], [...c.before, { request: c.request, now: c.now }]);
    } catch (e) { fail(`MODEL ERROR ${g.group}/${c.name}: ${e.message}`); continue; }
    for (const k of ['status', 'code', 'www_authenticate', 'retry_after', 'forward']) {
      if (JSON.stringify(got[k]) !== JSON.stringify(c.expect[k])) {
        fail(`MODEL MISMATCH ${g.group}/${c.name}: ${k} expected ${JSON.stringify(c.expect[k])}, reference model says ${JSON.stringify(got[k])}`);
      }
    }
    // Internal consistency of the expectation itself.
    const e = c.expect;
    if ((e.status === 200) !== (e.code === null) || (e.status === 200) !== (e.forward !== null)) fail(`EXPECT ${c.name}: status/code/forward inconsistent`);
    perStatus[e.status] = (perStatus[e.status] ?? 0) + 1;
    if (e.code !== null) perCode[e.code] = (perCode[e.code] ?? 0) + 1;
  }
}

// Self-check 2: paths coverage.
{
  const g = GROUPS.find((x) => x.group === 'paths');
  const byCfg = { catchall: new Set(), default_authenticated: new Set() };
  for (const c of g.cases) byCfg[c.config].add(c.request.target);
  const both = [...byCfg.catchall].filter((t) => byCfg.default_authenticated.has(t));
  if (both.length < 80) fail(`COVERAGE: only ${both.length} distinct path targets in both path configurations (< 80)`);
  if (both.length !== byCfg.catchall.size || both.length !== byCfg.default_authenticated.size) fail('COVERAGE: a path target is missing from one path configuration');
  console.log(`paths: ${both.length} distinct targets, each in both configurations`);
}

// Self-check 4: identity coverage: every source gives 200, identity_missing, identity_mismatch and
// binding_mismatch somewhere, the header sources a 400 too, and every leaf certificate is used.
{
  const g = GROUPS.find((x) => x.group === 'identity');
  const seen = new Set();
  for (const c of g.cases) {
    const cfg = g.configs[c.config];
    seen.add(`${has(cfg, 'client_certificate') ? cfg.client_certificate.source : 'connection'} ${c.expect.code}`);
  }
  for (const source of ['connection', 'client_cert_header', 'alb']) {
    const codes = [null, 'identity_missing', 'identity_mismatch', 'binding_mismatch', ...(source === 'connection' ? [] : ['request_invalid'])];
    for (const code of codes) if (!seen.has(`${source} ${code}`)) fail(`COVERAGE: no identity case with source ${source} expects ${code}`);
  }
  for (const name of CERT_NAMES) if (name !== 'ca' && !USED_CERTS.has(name)) fail(`COVERAGE: certificate ${name} is used by no case`);
}

// Self-check 3: codes and size.
for (const code of REQUIRED_CODES) if (!perCode[code]) fail(`COVERAGE: no case expects ${code}`);
if (total < 250) fail(`COVERAGE: only ${total} cases (< 250)`);

console.log('cases per file:');
for (const g of GROUPS) console.log(`  ${(g.group + '.json').padEnd(14)} ${String(g.cases.length).padStart(4)}`);
console.log('cases per status:');
for (const [s, n] of Object.entries(perStatus).sort()) console.log(`  ${s} ${String(n).padStart(4)}`);
console.log('cases per code:');
for (const [code, n] of Object.entries(perCode)) console.log(`  ${code.padEnd(24)} ${String(n).padStart(4)}`);
console.log(`total ${total} cases in ${GROUPS.length} files`);

if (failures) {
  console.error(`self-check FAILED (${failures} problems); nothing written`);
  process.exit(1);
}

// JSON with 2-space indentation; every character outside printable ASCII is written as a \u escape,
// so the files are ASCII and control characters / non-ASCII in targets and headers stay visible.
const toJson = (v) => JSON.stringify(v, null, 2).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) + '\n';
for (const g of GROUPS) {
  const text = toJson(g);
  assert(JSON.stringify(JSON.parse(text)) === JSON.stringify(g), `${g.group}: JSON round trip`);
  fs.writeFileSync(path.join(DIR, `${g.group}.json`), text);
}
console.log('self-check passed; files written');
