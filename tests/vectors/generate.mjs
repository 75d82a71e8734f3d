#!/usr/bin/env node
// Conformance vector generator for tokengate (see README.md in this directory: it is the contract).
//
//   node tests/vectors/generate.mjs
//
// Uses only node:crypto, node:fs and node:path. No tokengate code is used, so a bug in tokengate
// cannot bless itself. Keys in keys/ are created once and reused on every later run; all token
// bytes are deterministic except ES256/ES384/ES512 signature nonces.
//
// At the end a self-check (1) replays every case through an independent reference model of the
// README pipeline and requires the same verdict, (2) verifies with node:crypto the signature of
// every case whose expected verdict is reached only after the signature step (accept included),
// (3) requires every error code to be expected by at least one case and >= 200 cases in total.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const DIR = path.dirname(decodeURIComponent(new URL(import.meta.url).pathname));
const KEY_DIR = path.join(DIR, 'keys');

// ---------------------------------------------------------------------------------------------
// Fixed values
// ---------------------------------------------------------------------------------------------

const NOW = 1767268800; // 2026-01-01T12:00:00Z
const ISS = 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST0pool';
const ISS_ALT = 'https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST0pool';
const ISS_ES = 'https://auth.example.test';
const AUD_ES = 'https://api.example.test';
const CLIENT = '3q9f1k7c2m8v4n6b0x5z1l2h7d';
const CLIENT2 = '6p2w8r4t0y1u7i3o5a9s2d4f6g';
const HMAC_SECRET = 'tokengate-test-hmac-secret';

const CODES = [
  'token_missing', 'token_malformed', 'token_too_large', 'alg_not_allowed', 'header_unsupported',
  'kid_missing', 'kid_unknown', 'key_unusable', 'signature_invalid', 'token_expired',
  'token_not_yet_valid', 'token_issued_in_future', 'claim_missing', 'claim_invalid',
  'issuer_mismatch', 'token_use_mismatch', 'client_not_allowed', 'audience_mismatch',
  'token_revoked', 'binding_mismatch', 'scope_insufficient',
];

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

const DEL = Symbol('delete'); // override value meaning "remove this member"
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const sha1 = (b) => crypto.createHash('sha1').update(b).digest();

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

// Own base64 encoder over raw bytes, so malformed encodings can be crafted on purpose.
const ALPHA_URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const ALPHA_STD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function b64encode(bytes, alphabet, pad) {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += alphabet[(n >> 18) & 63] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + alphabet[n & 63];
  }
  const rem = bytes.length - i;
  if (rem === 1) {
    const n = bytes[i] << 16;
    out += alphabet[(n >> 18) & 63] + alphabet[(n >> 12) & 63] + (pad ? '==' : '');
  } else if (rem === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += alphabet[(n >> 18) & 63] + alphabet[(n >> 12) & 63] + alphabet[(n >> 6) & 63] + (pad ? '=' : '');
  }
  return out;
}

function toBytes(x) {
  if (Buffer.isBuffer(x)) return x;
  if (typeof x === 'string') return Buffer.from(x, 'utf8');
  return Buffer.from(JSON.stringify(x), 'utf8');
}
const b64u = (x) => b64encode(toBytes(x), ALPHA_URL, false);
const b64std = (x) => b64encode(toBytes(x), ALPHA_STD, true);

// Strict base64url decoder (README step 2): alphabet, no padding, len % 4 != 1, canonical bits.
function b64uDecodeStrict(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return null;
  const buf = Buffer.from(s, 'base64url');
  if (b64u(buf) !== s) return null; // non-zero unused trailing bits re-encode differently
  return buf;
}

// Flip an unused trailing bit of the last character (segment length must be 2 or 3 mod 4).
function nonCanonical(seg) {
  assert(seg.length % 4 === 2 || seg.length % 4 === 3, 'nonCanonical needs a partial quantum');
  const v = ALPHA_URL.indexOf(seg[seg.length - 1]);
  return seg.slice(0, -1) + ALPHA_URL[v ^ 1];
}

function padSeg(seg) {
  const r = seg.length % 4;
  assert(r === 2 || r === 3, 'padSeg needs a partial quantum');
  return seg + (r === 2 ? '==' : '=');
}

// BigInt helpers
const bn = (buf) => (buf.length ? BigInt('0x' + buf.toString('hex')) : 0n);
function bnBuf(x, len) {
  let h = x.toString(16);
  if (h.length % 2) h = '0' + h;
  const b = Buffer.from(h, 'hex');
  if (len === undefined) return b;
  assert(b.length <= len, 'integer too large for ' + len + ' octets');
  return Buffer.concat([Buffer.alloc(len - b.length), b]);
}
function modPow(b, e, m) {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    e >>= 1n;
    b = (b * b) % m;
  }
  return r;
}
const bitLen = (x) => (x === 0n ? 0 : x.toString(2).length);

function uuidFor(s) {
  const h = sha256('tokengate-test-jti:' + s);
  h[6] = (h[6] & 0x0f) | 0x40;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

// ---------------------------------------------------------------------------------------------
// Keys (TEST keys, created once, then reused)
// ---------------------------------------------------------------------------------------------

const KEY_SPECS = {
  'rsa-a': { type: 'rsa', modulusLength: 2048, alg: 'RS256' },
  'rsa-b': { type: 'rsa', modulusLength: 2048, alg: 'RS256' },
  'rsa-3072': { type: 'rsa', modulusLength: 3072, alg: 'RS256' },
  'rsa-4096': { type: 'rsa', modulusLength: 4096, alg: 'RS256' },
  'rsa-1024': { type: 'rsa', modulusLength: 1024, alg: 'RS256' },
  'rsa-e3': { type: 'rsa', modulusLength: 2048, publicExponent: 3, alg: 'RS256' },
  'ec-a': { type: 'ec', namedCurve: 'P-256', alg: 'ES256' },
  'ec-b': { type: 'ec', namedCurve: 'P-256', alg: 'ES256' },
  'ec-p384': { type: 'ec', namedCurve: 'P-384', alg: 'ES384' },
  'ec-p521': { type: 'ec', namedCurve: 'P-521', alg: 'ES512' },
  'ed25519': { type: 'ed25519', alg: 'EdDSA' },
  'attacker-rsa': { type: 'rsa', modulusLength: 2048, alg: 'RS256' },
  'attacker-ec': { type: 'ec', namedCurve: 'P-256', alg: 'ES256' },
};

fs.mkdirSync(KEY_DIR, { recursive: true });
const PRIV = {};
for (const [name, spec] of Object.entries(KEY_SPECS)) {
  const file = path.join(KEY_DIR, `${name}.pem`);
  if (fs.existsSync(file)) {
    PRIV[name] = crypto.createPrivateKey(fs.readFileSync(file, 'utf8'));
  } else {
    const opts = {};
    if (spec.type === 'rsa') {
      opts.modulusLength = spec.modulusLength;
      opts.publicExponent = spec.publicExponent ?? 0x10001;
    }
    if (spec.type === 'ec') opts.namedCurve = spec.namedCurve;
    const { privateKey } = crypto.generateKeyPairSync(spec.type, opts);
    fs.writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    PRIV[name] = privateKey;
    console.error(`created ${path.relative(process.cwd(), file)}`);
  }
  const k = PRIV[name];
  assert(k.asymmetricKeyType === spec.type, `${name}: key type ${k.asymmetricKeyType} != ${spec.type}`);
  if (spec.type === 'rsa') assert(k.asymmetricKeyDetails.modulusLength === spec.modulusLength, `${name}: size`);
  if (spec.type === 'ec') assert(k.asymmetricKeyDetails.namedCurve === { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }[spec.namedCurve], `${name}: curve`);
}
const PUB = Object.fromEntries(Object.keys(PRIV).map((n) => [n, crypto.createPublicKey(PRIV[n])]));

// Cognito-style kid: standard base64 (with + / and = padding) of 32 bytes derived from the key
// name; the first counter value whose encoding contains both '+' and '/' is taken (stable).
function kidFor(name) {
  for (let i = 0; ; i++) {
    const k = b64std(sha256(`tokengate-test-kid:${name}:${i}`));
    if (k.includes('+') && k.includes('/')) return k;
  }
}
const KID = Object.fromEntries(Object.keys(KEY_SPECS).map((n) => [n, kidFor(n)]));
const KA = KID['rsa-a'];
const KB = KID['rsa-b'];
const KEA = KID['ec-a'];
assert(KA.endsWith('=') && KA.includes('+') && KA.includes('/'), 'rsa-a kid must contain + / =');

function pub(name, over = {}) {
  const spec = KEY_SPECS[name];
  const j = PUB[name].export({ format: 'jwk' });
  let jwk;
  if (spec.type === 'rsa') jwk = { alg: spec.alg, e: j.e, kid: KID[name], kty: 'RSA', n: j.n, use: 'sig' };
  else if (spec.type === 'ec') jwk = { kty: 'EC', crv: j.crv, x: j.x, y: j.y, kid: KID[name], alg: spec.alg, use: 'sig' };
  else jwk = { kty: 'OKP', crv: j.crv, x: j.x, kid: KID[name], alg: spec.alg, use: 'sig' };
  return merge(jwk, over);
}

fs.writeFileSync(
  path.join(KEY_DIR, 'jwks-public.json'),
  JSON.stringify({ keys: Object.keys(KEY_SPECS).map((n) => pub(n)) }, null, 2) + '\n',
);

function rsaParts(name) {
  const j = PRIV[name].export({ format: 'jwk' });
  const n = bn(Buffer.from(j.n, 'base64url'));
  return { n, e: bn(Buffer.from(j.e, 'base64url')), d: bn(Buffer.from(j.d, 'base64url')), k: Math.ceil(bitLen(n) / 8) };
}

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

const RSA_HASH = { RS256: 'sha256', RS384: 'sha384', RS512: 'sha512' };
const EC_HASH = { ES256: 'sha256', ES384: 'sha384', ES512: 'sha512' };
const HS_HASH = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

function signWith(alg, keyName, input) {
  const data = Buffer.from(input, 'utf8');
  const key = PRIV[keyName];
  if (RSA_HASH[alg]) return crypto.sign(RSA_HASH[alg], data, { key, padding: crypto.constants.RSA_PKCS1_PADDING });
  if (alg === 'PS256') return crypto.sign('sha256', data, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 0 });
  if (EC_HASH[alg]) return crypto.sign(EC_HASH[alg], data, { key, dsaEncoding: 'ieee-p1363' });
  if (alg === 'EdDSA') return crypto.sign(null, data, key);
  throw new Error('cannot sign ' + alg);
}

const hmac = (alg, secret, input) => crypto.createHmac(HS_HASH[alg], secret).update(input).digest();

// EMSA-PKCS1-v1_5 block and raw RSA (for forged / broken signatures).
const DI_SHA256 = Buffer.from('3031300d060960864801650304020105000420', 'hex');
const DI_SHA256_NO_NULL = Buffer.from('302f300b06096086480165030402010420', 'hex');
const DI_SHA1 = Buffer.from('3021300906052b0e03021a05000414', 'hex');
const DI_SHA384_OID_32 = Buffer.from('3031300d060960864801650304020205000420', 'hex'); // SHA-384 OID, 32-byte digest

function emBlock(k, t, { lead = 0x00, bt = 0x01, padByte = 0xff, padLen } = {}) {
  const ps = padLen ?? k - 3 - t.length;
  const tail = k - 3 - ps - t.length; // garbage after t when padLen is short
  assert(ps >= 0 && tail >= 0, 'emBlock sizes');
  return Buffer.concat([Buffer.from([lead, bt]), Buffer.alloc(ps, padByte), Buffer.from([0]), t, Buffer.alloc(tail, 0xab)]);
}

function rawRsa(name, block) {
  const { n, d, k } = rsaParts(name);
  const m = bn(block);
  assert(m < n, 'raw RSA block must be < n');
  return bnBuf(modPow(m, d, n), k);
}

// ---------------------------------------------------------------------------------------------
// Token building
// ---------------------------------------------------------------------------------------------

// A segment source: Buffer = raw bytes, string = raw JSON text, object = JSON.stringify'd.
const enc = (x) => b64u(x);

// signer: key name (alg from the key), {alg, key}, a function(input) -> Buffer, or a Buffer.
function sigFor(signer, input) {
  if (Buffer.isBuffer(signer)) return signer;
  if (typeof signer === 'function') return signer(input);
  if (typeof signer === 'string') return signWith(KEY_SPECS[signer].alg, signer, input);
  return signWith(signer.alg, signer.key, input);
}

function signSegs(hs, ps, signer = 'rsa-a') {
  const input = hs + '.' + ps;
  return input + '.' + b64u(sigFor(signer, input));
}
const jwt = (header, payload, signer = 'rsa-a') => signSegs(enc(header), enc(payload), signer);
const splitTok = (t) => t.split('.');

// Header, Cognito style: kid first, then alg.
const H = (keyName = 'rsa-a', over = {}) => merge({ kid: KID[keyName], alg: KEY_SPECS[keyName].alg }, over);

let CUR = ''; // name of the case being built (for deterministic jti values)

// Cognito client-credentials access token claims.
function C(over = {}) {
  return merge({
    sub: CLIENT,
    token_use: 'access',
    scope: 'orders/read orders/write',
    auth_time: NOW - 60,
    iss: ISS,
    exp: NOW + 3600,
    iat: NOW - 60,
    version: 2,
    jti: uuidFor(CUR),
    client_id: CLIENT,
  }, over);
}

// Generic ES256 issuer claims.
function E(over = {}) {
  return merge({ iss: ISS_ES, sub: 'user-7f3a9c', aud: AUD_ES, exp: NOW + 900, nbf: NOW - 60, iat: NOW - 60, jti: uuidFor(CUR) }, over);
}

const POLICY_KEYS = ['issuers', 'algorithms', 'token_use', 'client_ids', 'scopes', 'leeway_s',
  'audience', 'max_token_age_s', 'claims', 'revocation', 'mtls_binding', 'min_rsa_bits', 'max_token_bytes'];

function P(over = {}) {
  const m = merge({ issuers: [ISS], algorithms: ['RS256'], token_use: 'access', client_ids: [CLIENT], scopes: null, leeway_s: 0 }, over);
  const out = {};
  for (const k of POLICY_KEYS) if (has(m, k)) out[k] = m[k];
  for (const k of Object.keys(m)) assert(POLICY_KEYS.includes(k), 'unknown policy field ' + k);
  return out;
}
const PES = (over = {}) => P(merge({ issuers: [ISS_ES], algorithms: ['ES256'], token_use: null, client_ids: null, audience: [AUD_ES] }, over));

const JWKS = (...entries) => ({ keys: (entries.length ? entries : ['rsa-a', 'rsa-b']).map((e) => (typeof e === 'string' ? pub(e) : e)) });
const JWKS_ES = () => JWKS('ec-a', 'ec-b');

// Build a JSON text from an object and splice raw text in before the closing brace.
const rawJson = (obj, extra) => JSON.stringify(obj).replace(/}$/, extra + '}');

// ---------------------------------------------------------------------------------------------
// Groups and cases
// ---------------------------------------------------------------------------------------------

const GROUPS = [];
const ALL_NAMES = new Set();
function group(name, description) {
  const g = { group: name, description, cases: [] };
  GROUPS.push(g);
  return g;
}
function add(g, name, description, build) {
  assert(/^[a-z0-9]+(_[a-z0-9]+)*$/.test(name), 'snake_case name: ' + name);
  assert(!ALL_NAMES.has(name), 'duplicate case name ' + name);
  ALL_NAMES.add(name);
  CUR = name;
  const c = build();
  assert(c.expect === 'accept' || CODES.includes(c.expect), `${name}: bad expect ${c.expect}`);
  assert(typeof c.token === 'string', `${name}: no token`);
  const out = { name, description, token: c.token, jwks: c.jwks ?? JWKS(), policy: c.policy ?? P(), now: c.now ?? NOW };
  if (c.context !== undefined) out.context = c.context;
  out.expect = c.expect;
  if (c.expect_claims !== undefined) out.expect_claims = c.expect_claims;
  g.cases.push(out);
}

// Payload claims whose base64url form ends in a partial quantum (so padding / bits can be crafted).
function partialPayload(claims) {
  for (let i = 0; i < 3; i++) {
    const c = i ? merge(claims, { 'custom:pad': 'x'.repeat(i) }) : claims;
    if (enc(c).length % 4) return c;
  }
  throw new Error('unreachable');
}

// A valid rsa-a token of exactly `target` characters, grown through a long string claim.
function tokenOfLength(target, claims, field = 'custom:blob') {
  const b64len = (L) => Math.floor(L / 3) * 4 + [0, 2, 3][L % 3];
  for (const h of [H(), H('rsa-a', { typ: 'JOSE' }), H('rsa-a', { typ: 'JWT' })]) {
    const want = target - enc(h).length - b64len(256) - 2;
    const base = Buffer.byteLength(JSON.stringify(merge(claims, { [field]: '' })));
    for (let f = 0; ; f++) {
      const l = b64len(base + f);
      if (l === want) {
        const t = jwt(h, merge(claims, { [field]: 'a'.repeat(f) }));
        assert(t.length === target, 'tokenOfLength');
        return t;
      }
      if (l > want) break;
    }
  }
  throw new Error('cannot build a token of length ' + target);
}

const esTok = (over = {}, signer = 'ec-a', hdrOver = {}) => jwt(H('ec-a', hdrOver), E(over), signer);
const swapCase = (s) => {
  const i = [...s].findIndex((ch) => /[A-Za-z]/.test(ch));
  const ch = s[i];
  return s.slice(0, i) + (ch === ch.toUpperCase() ? ch.toLowerCase() : ch.toUpperCase()) + s.slice(i + 1);
};

// ============================================================================ syntax
{
  const g = group('syntax', 'Token shape: empty token, segment count, strict base64url, header/payload JSON, duplicate members');
  const good = () => jwt(H(), C());
  const parts = () => splitTok(good());

  add(g, 'empty_token_is_missing', 'an empty string after "Bearer " is no token at all', () => ({ token: '', expect: 'token_missing' }));
  add(g, 'one_segment_is_malformed', 'only the header segment, no dots', () => ({ token: parts()[0], expect: 'token_malformed' }));
  add(g, 'two_segments_is_malformed', 'header.payload without a second dot or signature', () => {
    const [h, p] = parts();
    return { token: `${h}.${p}`, expect: 'token_malformed' };
  });
  add(g, 'four_segments_is_malformed', 'a valid token followed by a fourth segment', () => ({ token: good() + '.' + parts()[2], expect: 'token_malformed' }));
  add(g, 'five_segments_jwe_shape_is_malformed', 'JWE compact serialization (5 segments) is not a JWS', () => {
    const segs = [enc({ alg: 'RSA-OAEP', enc: 'A256GCM', kid: KA }), b64u(sha256('cek')), b64u(sha256('iv').subarray(0, 12)), enc(C()), b64u(sha256('tag').subarray(0, 16))];
    return { token: segs.join('.'), expect: 'token_malformed' };
  });
  add(g, 'trailing_dot_is_malformed', 'a dot after the signature adds a fourth (empty) segment', () => ({ token: good() + '.', expect: 'token_malformed' }));
  add(g, 'leading_dot_is_malformed', 'a dot before the header adds an empty first segment', () => ({ token: '.' + good(), expect: 'token_malformed' }));
  add(g, 'empty_signature_segment_is_malformed', 'header.payload. with an empty signature segment', () => {
    const [h, p] = parts();
    return { token: `${h}.${p}.`, expect: 'token_malformed' };
  });
  add(g, 'empty_header_segment_is_malformed', 'empty header segment, signature over ".payload"', () => ({ token: signSegs('', enc(C())), expect: 'token_malformed' }));
  add(g, 'empty_payload_segment_is_malformed', 'empty payload segment, signature over "header."', () => ({ token: signSegs(enc(H()), ''), expect: 'token_malformed' }));
  add(g, 'only_two_dots_is_malformed', 'three empty segments', () => ({ token: '..', expect: 'token_malformed' }));
  add(g, 'single_dot_is_malformed', 'two empty segments', () => ({ token: '.', expect: 'token_malformed' }));
  add(g, 'padding_on_header_segment_is_malformed', 'header segment carries "=" padding (signature covers the padded text)', () => ({ token: signSegs(padSeg(enc(H())), enc(C())), expect: 'token_malformed' }));
  add(g, 'padding_on_payload_segment_is_malformed', 'payload segment carries "=" padding (signature covers the padded text)', () => ({ token: signSegs(enc(H()), padSeg(enc(partialPayload(C())))), expect: 'token_malformed' }));
  add(g, 'padding_on_signature_segment_is_malformed', 'the 342-character RS256 signature segment carries "==" padding', () => {
    const [h, p, s] = parts();
    return { token: `${h}.${p}.${padSeg(s)}`, expect: 'token_malformed' };
  });
  add(g, 'header_segment_length_1_mod_4_is_malformed', 'header segment length is 1 mod 4, which no byte string encodes to', () => {
    const hs = enc(H()) + 'AA';
    assert(hs.length % 4 === 1, 'hs mod 4');
    return { token: signSegs(hs, enc(C())), expect: 'token_malformed' };
  });
  add(g, 'signature_segment_length_1_mod_4_is_malformed', 'last signature character dropped: 341 characters, 1 mod 4', () => {
    const [h, p, s] = parts();
    return { token: `${h}.${p}.${s.slice(0, -1)}`, expect: 'token_malformed' };
  });
  add(g, 'noncanonical_trailing_bits_in_header_is_malformed', 'last header character has a non-zero unused bit (decodes leniently to the same bytes; signature covers it)', () => ({ token: signSegs(nonCanonical(enc(H())), enc(C())), expect: 'token_malformed' }));
  add(g, 'noncanonical_trailing_bits_in_payload_is_malformed', 'last payload character has a non-zero unused bit (signature covers it)', () => ({ token: signSegs(enc(H()), nonCanonical(enc(partialPayload(C())))), expect: 'token_malformed' }));
  add(g, 'noncanonical_trailing_bits_in_signature_is_malformed', 'last signature character has a non-zero unused bit; lenient decoders get the valid signature', () => {
    const [h, p, s] = parts();
    return { token: `${h}.${p}.${nonCanonical(s)}`, expect: 'token_malformed' };
  });
  add(g, 'standard_base64_alphabet_in_signature_is_malformed', 'signature written with "+" and "/" instead of "-" and "_"', () => {
    const [h, p, s] = parts();
    const std = s.replace(/-/g, '+').replace(/_/g, '/');
    assert(std !== s, 'signature has no - or _');
    return { token: `${h}.${p}.${std}`, expect: 'token_malformed' };
  });
  add(g, 'standard_base64_alphabet_in_payload_is_malformed', 'payload written with "+" or "/" (signature covers the standard-alphabet text)', () => {
    for (let i = 0; i < 3; i++) {
      const ps = enc(C({ 'custom:note': 'x'.repeat(i) + '>>>???~~~' }));
      if (/[-_]/.test(ps)) return { token: signSegs(enc(H()), ps.replace(/-/g, '+').replace(/_/g, '/')), expect: 'token_malformed' };
    }
    throw new Error('no - or _ in payload');
  });
  add(g, 'leading_space_is_malformed', 'a space before the token (hosts must not trim)', () => ({ token: ' ' + good(), expect: 'token_malformed' }));
  add(g, 'trailing_space_is_malformed', 'a space after the token (hosts must not trim)', () => ({ token: good() + ' ', expect: 'token_malformed' }));
  add(g, 'trailing_newline_is_malformed', 'a line feed after the token', () => ({ token: good() + '\n', expect: 'token_malformed' }));
  add(g, 'trailing_crlf_is_malformed', 'CR LF after the token', () => ({ token: good() + '\r\n', expect: 'token_malformed' }));
  add(g, 'space_inside_signature_is_malformed', 'a space in the middle of the signature segment', () => {
    const [h, p, s] = parts();
    return { token: `${h}.${p}.${s.slice(0, 100)} ${s.slice(100)}`, expect: 'token_malformed' };
  });
  add(g, 'newline_after_dot_is_malformed', 'a line feed at the start of the payload segment (signature covers it)', () => ({ token: signSegs(enc(H()), '\n' + enc(C())), expect: 'token_malformed' }));
  add(g, 'tab_inside_payload_is_malformed', 'a tab inside the payload segment (signature covers it)', () => {
    const ps = enc(C());
    return { token: signSegs(enc(H()), ps.slice(0, 10) + '\t' + ps.slice(10)), expect: 'token_malformed' };
  });
  add(g, 'asterisk_in_header_is_malformed', 'a "*" in the header segment (signature covers it)', () => {
    const hs = enc(H());
    return { token: signSegs(hs.slice(0, 5) + '*' + hs.slice(6), enc(C())), expect: 'token_malformed' };
  });
  add(g, 'percent_encoded_character_is_malformed', 'a "-" or "_" of the signature percent-encoded', () => {
    const [h, p, s] = parts();
    const i = s.search(/[-_]/);
    assert(i >= 0, 'signature has no - or _');
    return { token: `${h}.${p}.${s.slice(0, i)}${s[i] === '-' ? '%2D' : '%5F'}${s.slice(i + 1)}`, expect: 'token_malformed' };
  });
  add(g, 'non_ascii_letter_in_payload_segment_is_malformed', 'a non-ASCII "é" inside the payload segment (signature covers its UTF-8)', () => {
    const ps = enc(C());
    return { token: signSegs(enc(H()), ps.slice(0, 8) + 'é' + ps.slice(8)), expect: 'token_malformed' };
  });
  add(g, 'nul_character_in_token_is_malformed', 'a NUL character inside the payload segment (signature covers it)', () => {
    const ps = enc(C());
    return { token: signSegs(enc(H()), ps.slice(0, 8) + '\u0000' + ps.slice(8)), expect: 'token_malformed' };
  });
  add(g, 'byte_order_mark_before_token_is_malformed', 'U+FEFF before the token', () => ({ token: '\uFEFF' + good(), expect: 'token_malformed' }));
  add(g, 'utf8_bom_in_header_json_is_malformed', 'the header bytes start with EF BB BF before the JSON object', () => ({ token: jwt(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), toBytes(H())]), C()), expect: 'token_malformed' }));
  add(g, 'utf8_bom_in_payload_json_is_malformed', 'validly signed payload whose bytes start with EF BB BF', () => ({ token: jwt(H(), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), toBytes(C())])), expect: 'token_malformed' }));
  add(g, 'header_not_json_is_malformed', 'header decodes to text that is not JSON', () => ({ token: jwt(`kid=${KA};alg=RS256`, C()), expect: 'token_malformed' }));
  add(g, 'header_json_array_is_malformed', 'header is a JSON array holding the header object', () => ({ token: jwt(JSON.stringify([H()]), C()), expect: 'token_malformed' }));
  add(g, 'header_json_string_is_malformed', 'header is the JSON string "RS256"', () => ({ token: jwt('"RS256"', C()), expect: 'token_malformed' }));
  add(g, 'header_json_null_is_malformed', 'header is JSON null', () => ({ token: jwt('null', C()), expect: 'token_malformed' }));
  add(g, 'header_json_number_is_malformed', 'header is the JSON number 256', () => ({ token: jwt('256', C()), expect: 'token_malformed' }));
  add(g, 'header_truncated_json_is_malformed', 'header JSON lacks its closing brace', () => ({ token: jwt(JSON.stringify(H()).slice(0, -1), C()), expect: 'token_malformed' }));
  add(g, 'header_trailing_garbage_after_json_is_malformed', 'header JSON object followed by "x"', () => ({ token: jwt(JSON.stringify(H()) + 'x', C()), expect: 'token_malformed' }));
  add(g, 'header_two_concatenated_objects_is_malformed', 'header is two JSON objects back to back', () => ({ token: jwt(JSON.stringify(H()) + JSON.stringify(H()), C()), expect: 'token_malformed' }));
  add(g, 'header_trailing_comma_is_malformed', 'header JSON object with a trailing comma', () => ({ token: jwt(rawJson(H(), ','), C()), expect: 'token_malformed' }));
  add(g, 'header_single_quoted_json_is_malformed', 'header uses single quotes (JavaScript, not JSON)', () => ({ token: jwt(JSON.stringify(H()).replace(/"/g, "'"), C()), expect: 'token_malformed' }));
  add(g, 'header_invalid_utf8_is_malformed', 'header kid contains the byte FF (not UTF-8)', () => {
    const [a, b] = JSON.stringify(H('rsa-a', { kid: '@@' })).split('@@');
    return { token: jwt(Buffer.concat([Buffer.from(a), Buffer.from([0xff]), Buffer.from(b)]), C()), expect: 'token_malformed' };
  });
  add(g, 'header_overlong_utf8_is_malformed', 'header kid contains the overlong encoding C0 AF of "/"', () => {
    const [a, b] = JSON.stringify(H('rsa-a', { kid: '@@' })).split('@@');
    return { token: jwt(Buffer.concat([Buffer.from(a), Buffer.from([0xc0, 0xaf]), Buffer.from(b)]), C()), expect: 'token_malformed' };
  });
  add(g, 'header_utf8_encoded_surrogate_is_malformed', 'header kid contains ED A0 80 (a UTF-16 surrogate encoded as UTF-8)', () => {
    const [a, b] = JSON.stringify(H('rsa-a', { kid: '@@' })).split('@@');
    return { token: jwt(Buffer.concat([Buffer.from(a), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(b)]), C()), expect: 'token_malformed' };
  });
  add(g, 'header_duplicate_alg_same_value_is_malformed', 'header has "alg" twice, both "RS256"', () => ({ token: jwt(rawJson(H(), ',"alg":"RS256"'), C()), expect: 'token_malformed' }));
  add(g, 'header_duplicate_alg_none_then_rs256_is_malformed', 'header {"alg":"none","kid":…,"alg":"RS256"}: a last-wins parser would accept it', () => ({ token: jwt(`{"alg":"none","kid":${JSON.stringify(KA)},"alg":"RS256"}`, C()), expect: 'token_malformed' }));
  add(g, 'header_duplicate_kid_is_malformed', 'header has "kid" twice (unknown first, real last)', () => ({ token: jwt(`{"kid":"unknown","kid":${JSON.stringify(KA)},"alg":"RS256"}`, C()), expect: 'token_malformed' }));
  add(g, 'header_duplicate_name_via_unicode_escape_is_malformed', 'header has "alg" and "\\u0061lg", the same member name once unescaped', () => ({ token: jwt(rawJson(H(), ',"\\u0061lg":"RS256"'), C()), expect: 'token_malformed' }));
  add(g, 'header_with_json_whitespace_is_accepted', 'pretty-printed header JSON is still JSON', () => ({ token: jwt(JSON.stringify(H(), null, 1), C()), expect: 'accept' }));
  add(g, 'payload_not_json_is_malformed', 'validly signed payload that is not JSON', () => ({ token: jwt(H(), 'client_id=' + CLIENT), expect: 'token_malformed' }));
  add(g, 'payload_json_array_is_malformed', 'validly signed payload that is a JSON array of the claims object', () => ({ token: jwt(H(), JSON.stringify([C()])), expect: 'token_malformed' }));
  add(g, 'payload_json_string_is_malformed', 'validly signed payload that is a JSON string holding the claims', () => ({ token: jwt(H(), JSON.stringify(JSON.stringify(C()))), expect: 'token_malformed' }));
  add(g, 'payload_json_null_is_malformed', 'validly signed payload that is JSON null', () => ({ token: jwt(H(), 'null'), expect: 'token_malformed' }));
  add(g, 'payload_json_number_is_malformed', 'validly signed payload that is a JSON number', () => ({ token: jwt(H(), String(NOW + 3600)), expect: 'token_malformed' }));
  add(g, 'payload_truncated_json_is_malformed', 'validly signed payload lacking its closing brace', () => ({ token: jwt(H(), JSON.stringify(C()).slice(0, -1)), expect: 'token_malformed' }));
  add(g, 'payload_trailing_garbage_is_malformed', 'validly signed payload object followed by more text', () => ({ token: jwt(H(), JSON.stringify(C()) + '{}'), expect: 'token_malformed' }));
  add(g, 'payload_invalid_utf8_is_malformed', 'validly signed payload containing C3 28 (invalid UTF-8)', () => {
    const [a, b] = JSON.stringify(C({ 'custom:note': '@@' })).split('@@');
    return { token: jwt(H(), Buffer.concat([Buffer.from(a), Buffer.from([0xc3, 0x28]), Buffer.from(b)])), expect: 'token_malformed' };
  });
  add(g, 'payload_lone_continuation_byte_is_malformed', 'validly signed payload containing a lone 80 byte', () => {
    const [a, b] = JSON.stringify(C({ 'custom:note': '@@' })).split('@@');
    return { token: jwt(H(), Buffer.concat([Buffer.from(a), Buffer.from([0x80]), Buffer.from(b)])), expect: 'token_malformed' };
  });
  add(g, 'payload_duplicate_exp_is_malformed', 'payload has "exp" twice: expired first, valid last', () => ({ token: jwt(H(), rawJson(C({ exp: NOW - 10 }), `,"exp":${NOW + 3600}`)), expect: 'token_malformed' }));
  add(g, 'payload_duplicate_client_id_is_malformed', 'payload has "client_id" twice: foreign first, allowed last', () => ({ token: jwt(H(), rawJson(C({ client_id: CLIENT2 }), `,"client_id":"${CLIENT}"`)), expect: 'token_malformed' }));
  add(g, 'payload_duplicate_iss_is_malformed', 'payload has "iss" twice: foreign first, trusted last', () => ({ token: jwt(H(), rawJson(C({ iss: 'https://evil.example' }), `,"iss":"${ISS}"`)), expect: 'token_malformed' }));
  add(g, 'payload_duplicate_name_via_unicode_escape_is_malformed', 'payload has "exp" and "\\u0065xp", the same member name once unescaped', () => ({ token: jwt(H(), rawJson(C(), `,"\\u0065xp":${NOW + 3600}`)), expect: 'token_malformed' }));
  add(g, 'payload_nested_duplicate_member_is_accepted', 'duplicate names inside a nested object are not top-level duplicates', () => ({ token: jwt(H(), rawJson(C(), ',"custom:meta":{"a":1,"a":2}')), expect: 'accept' }));
  add(g, 'payload_pretty_printed_json_is_accepted', 'payload JSON with newlines and indentation is still JSON', () => ({ token: jwt(H(), JSON.stringify(C(), null, 2)), expect: 'accept' }));
}

// ============================================================================ header
{
  const g = group('header', 'JOSE header: alg allow-list, crit/b64, kid presence and exact lookup, ignored key-location parameters');
  const rsSig = { alg: 'RS256', key: 'rsa-a' };

  for (const [alg, nm] of [['none', 'none'], ['None', 'none_capitalised'], ['NONE', 'none_uppercase'], ['nOnE', 'none_mixed_case'], ['', 'empty_string']]) {
    add(g, `alg_${nm}_is_not_allowed`, `alg "${alg}" (with a real RS256 signature so only alg is wrong)`, () => ({ token: jwt(H('rsa-a', { alg }), C(), rsSig), expect: 'alg_not_allowed' }));
  }
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    add(g, `alg_${alg.toLowerCase()}_is_not_allowed`, `${alg} token with an HMAC over a shared secret`, () => ({ token: jwt(H('rsa-a', { alg }), C(), (i) => hmac(alg, HMAC_SECRET, i)), expect: 'alg_not_allowed' }));
  }
  add(g, 'alg_ps256_is_not_allowed', 'PS256 (RSASSA-PSS) signature by rsa-a under its kid', () => ({ token: jwt(H('rsa-a', { alg: 'PS256' }), C(), { alg: 'PS256', key: 'rsa-a' }), expect: 'alg_not_allowed' }));
  add(g, 'alg_rs384_is_not_allowed', 'RS384 signature by rsa-a under its kid', () => ({ token: jwt(H('rsa-a', { alg: 'RS384' }), C(), { alg: 'RS384', key: 'rsa-a' }), expect: 'alg_not_allowed' }));
  add(g, 'alg_rs512_is_not_allowed', 'RS512 signature by rsa-a under its kid', () => ({ token: jwt(H('rsa-a', { alg: 'RS512' }), C(), { alg: 'RS512', key: 'rsa-a' }), expect: 'alg_not_allowed' }));
  add(g, 'alg_es384_is_not_allowed', 'ES384 signature by a P-384 key listed in the JWKS', () => ({ token: jwt(H('ec-p384'), C(), 'ec-p384'), jwks: JWKS('rsa-a', 'ec-p384'), policy: P({ algorithms: ['RS256', 'ES256'] }), expect: 'alg_not_allowed' }));
  add(g, 'alg_es512_is_not_allowed', 'ES512 signature by a P-521 key listed in the JWKS', () => ({ token: jwt(H('ec-p521'), C(), 'ec-p521'), jwks: JWKS('rsa-a', 'ec-p521'), policy: P({ algorithms: ['RS256', 'ES256'] }), expect: 'alg_not_allowed' }));
  add(g, 'alg_eddsa_is_not_allowed', 'EdDSA signature by an Ed25519 key listed in the JWKS', () => ({ token: jwt(H('ed25519'), C(), 'ed25519'), jwks: JWKS('rsa-a', 'ed25519'), expect: 'alg_not_allowed' }));
  add(g, 'alg_rs256_lowercase_is_not_allowed', 'alg "rs256": the allow-list is case-sensitive', () => ({ token: jwt(H('rsa-a', { alg: 'rs256' }), C(), rsSig), expect: 'alg_not_allowed' }));
  add(g, 'alg_rs256_with_trailing_space_is_not_allowed', 'alg "RS256 " with a trailing space', () => ({ token: jwt(H('rsa-a', { alg: 'RS256 ' }), C(), rsSig), expect: 'alg_not_allowed' }));
  add(g, 'alg_rs256_with_trailing_nul_is_not_allowed', 'alg "RS256\\u0000" with a trailing NUL', () => ({ token: jwt(H('rsa-a', { alg: 'RS256\u0000' }), C(), rsSig), expect: 'alg_not_allowed' }));
  add(g, 'alg_es256_outside_rs256_only_policy_is_not_allowed', 'valid ES256 token by a listed key, but the policy allows only RS256', () => ({ token: jwt(H('ec-a'), C(), 'ec-a'), jwks: JWKS('rsa-a', 'ec-a'), expect: 'alg_not_allowed' }));
  add(g, 'alg_rs256_outside_es256_only_policy_is_not_allowed', 'valid RS256 token, but the policy allows only ES256', () => ({ token: jwt(H(), C()), policy: P({ algorithms: ['ES256'] }), expect: 'alg_not_allowed' }));
  add(g, 'alg_missing_is_malformed', 'header without "alg"', () => ({ token: jwt(H('rsa-a', { alg: DEL }), C(), rsSig), expect: 'token_malformed' }));
  add(g, 'alg_null_is_malformed', 'header "alg": null', () => ({ token: jwt(H('rsa-a', { alg: null }), C(), rsSig), expect: 'token_malformed' }));
  add(g, 'alg_number_is_malformed', 'header "alg": 256', () => ({ token: jwt(H('rsa-a', { alg: 256 }), C(), rsSig), expect: 'token_malformed' }));
  add(g, 'alg_array_is_malformed', 'header "alg": ["RS256"]', () => ({ token: jwt(H('rsa-a', { alg: ['RS256'] }), C(), rsSig), expect: 'token_malformed' }));
  add(g, 'alg_object_is_malformed', 'header "alg": {"name":"RS256"}', () => ({ token: jwt(H('rsa-a', { alg: { name: 'RS256' } }), C(), rsSig), expect: 'token_malformed' }));
  add(g, 'alg_written_with_json_unicode_escape_is_accepted', 'header "alg":"\\u0052S256" is the string "RS256" once unescaped', () => ({ token: jwt(`{"kid":${JSON.stringify(KA)},"alg":"\\u0052S256"}`, C()), expect: 'accept' }));
  add(g, 'crit_with_exp_is_unsupported', 'header "crit": ["exp"]', () => ({ token: jwt(H('rsa-a', { crit: ['exp'] }), C()), expect: 'header_unsupported' }));
  add(g, 'crit_empty_array_is_unsupported', 'header "crit": [] (present, even though empty)', () => ({ token: jwt(H('rsa-a', { crit: [] }), C()), expect: 'header_unsupported' }));
  add(g, 'crit_null_is_unsupported', 'header "crit": null (present with any value)', () => ({ token: jwt(H('rsa-a', { crit: null }), C()), expect: 'header_unsupported' }));
  add(g, 'crit_unknown_extension_is_unsupported', 'header "crit" names an extension the header carries', () => ({ token: jwt(H('rsa-a', { crit: ['urn:example:ext'], 'urn:example:ext': true }), C()), expect: 'header_unsupported' }));
  add(g, 'b64_false_with_crit_is_unsupported', 'RFC 7797 unencoded payload: "b64": false, "crit": ["b64"]', () => ({ token: jwt(H('rsa-a', { b64: false, crit: ['b64'] }), C()), expect: 'header_unsupported' }));
  add(g, 'b64_false_without_crit_is_unsupported', 'header "b64": false without crit', () => ({ token: jwt(H('rsa-a', { b64: false }), C()), expect: 'header_unsupported' }));
  add(g, 'b64_true_is_unsupported', 'header "b64": true (present with any value)', () => ({ token: jwt(H('rsa-a', { b64: true }), C()), expect: 'header_unsupported' }));
  add(g, 'kid_missing_is_kid_missing', 'header without "kid"; there is no fallback to trying keys', () => ({ token: jwt(H('rsa-a', { kid: DEL }), C()), expect: 'kid_missing' }));
  add(g, 'kid_null_is_kid_missing', 'header "kid": null', () => ({ token: jwt(H('rsa-a', { kid: null }), C()), expect: 'kid_missing' }));
  add(g, 'kid_number_is_kid_missing', 'header "kid": 1', () => ({ token: jwt(H('rsa-a', { kid: 1 }), C()), expect: 'kid_missing' }));
  add(g, 'kid_array_is_kid_missing', 'header "kid": [<real kid>]', () => ({ token: jwt(H('rsa-a', { kid: [KA] }), C()), expect: 'kid_missing' }));
  add(g, 'kid_object_is_kid_missing', 'header "kid": {"value": <real kid>}', () => ({ token: jwt(H('rsa-a', { kid: { value: KA } }), C()), expect: 'kid_missing' }));
  add(g, 'kid_boolean_is_kid_missing', 'header "kid": true', () => ({ token: jwt(H('rsa-a', { kid: true }), C()), expect: 'kid_missing' }));
  add(g, 'kid_empty_string_is_unknown', 'header "kid": "" matches no JWK', () => ({ token: jwt(H('rsa-a', { kid: '' }), C()), expect: 'kid_unknown' }));
  add(g, 'kid_not_in_jwks_is_unknown', 'a well-formed Cognito-style kid that no JWK carries', () => ({ token: jwt(H('rsa-a', { kid: b64std(sha256('no such key')) }), C()), expect: 'kid_unknown' }));
  add(g, 'kid_differing_only_by_case_is_unknown', 'real kid with one letter case-swapped', () => ({ token: jwt(H('rsa-a', { kid: swapCase(KA) }), C()), expect: 'kid_unknown' }));
  add(g, 'kid_without_trailing_padding_is_unknown', 'real kid with its trailing "=" removed', () => ({ token: jwt(H('rsa-a', { kid: KA.slice(0, -1) }), C()), expect: 'kid_unknown' }));
  add(g, 'kid_with_extra_padding_is_unknown', 'real kid with one more "=" appended', () => ({ token: jwt(H('rsa-a', { kid: KA + '=' }), C()), expect: 'kid_unknown' }));
  add(g, 'kid_with_minus_instead_of_plus_is_unknown', 'real kid with "+" rewritten to "-" (base64url form)', () => ({ token: jwt(H('rsa-a', { kid: KA.replace(/\+/g, '-') }), C()), expect: 'kid_unknown' }));
  add(g, 'kid_with_underscore_instead_of_slash_is_unknown', 'real kid with "/" rewritten to "_" (base64url form)', () => ({ token: jwt(H('rsa-a', { kid: KA.replace(/\//g, '_') }), C()), expect: 'kid_unknown' }));
  add(g, 'kid_with_trailing_space_is_unknown', 'real kid followed by a space', () => ({ token: jwt(H('rsa-a', { kid: KA + ' ' }), C()), expect: 'kid_unknown' }));
  add(g, 'kid_percent_encoded_is_unknown', 'real kid percent-encoded (%2B, %2F, %3D)', () => ({ token: jwt(H('rsa-a', { kid: encodeURIComponent(KA) }), C()), expect: 'kid_unknown' }));
  add(g, 'kid_of_key_rotated_out_is_unknown', 'token by rsa-b under its own kid, but the JWKS lists only rsa-a', () => ({ token: jwt(H('rsa-b'), C(), 'rsa-b'), jwks: JWKS('rsa-a'), expect: 'kid_unknown' }));
  add(g, 'kid_written_with_escaped_slashes_is_accepted', 'header kid uses "\\/" escapes; once unescaped it is byte-equal to the JWK kid', () => ({ token: jwt(`{"kid":${JSON.stringify(KA).replace(/\//g, '\\/')},"alg":"RS256"}`, C()), expect: 'accept' }));
  add(g, 'jku_header_is_ignored', 'header "jku" pointing elsewhere is never used; real kid and signature accept', () => ({ token: jwt(H('rsa-a', { jku: 'https://evil.example/jwks.json' }), C()), expect: 'accept' }));
  add(g, 'x5u_header_is_ignored', 'header "x5u" pointing elsewhere is never used; real kid and signature accept', () => ({ token: jwt(H('rsa-a', { x5u: 'https://evil.example/cert.pem' }), C()), expect: 'accept' }));
  add(g, 'jwk_header_is_ignored', 'header "jwk" (the attacker public key) is never used; real kid and signature accept', () => ({ token: jwt(H('rsa-a', { jwk: pub('attacker-rsa', { alg: DEL, use: DEL }) }), C()), expect: 'accept' }));
  add(g, 'x5c_header_is_ignored', 'header "x5c" (a junk certificate chain) is never used; real kid and signature accept', () => ({ token: jwt(H('rsa-a', { x5c: [b64std(Buffer.concat([sha256('cert-1'), sha256('cert-2')]))] }), C()), expect: 'accept' }));
  add(g, 'typ_jwt_header_is_accepted', 'header "typ": "JWT" is neither required nor refused', () => ({ token: jwt(H('rsa-a', { typ: 'JWT' }), C()), expect: 'accept' }));
  add(g, 'unknown_header_parameter_is_accepted', 'an unknown header parameter not listed in crit is ignored', () => ({ token: jwt(H('rsa-a', { 'x-trace': 'abc123' }), C()), expect: 'accept' }));
}
// ============================================================================ keys
{
  const g = group('keys', 'JWK selection and suitability for the header alg: anything unusable answers key_unusable');
  const tok = () => jwt(H(), C());
  const nA = pub('rsa-a').n;
  const rsaA = (over) => pub('rsa-a', over);
  const es = (extra) => ({ token: esTok(), policy: PES(), ...extra });
  const ecA = pub('ec-a');
  const P256_P = BigInt('0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff');

  add(g, 'jwk_alg_rs384_for_rs256_token_is_unusable', 'the JWK says alg RS384, the header says RS256', () => ({ token: tok(), jwks: JWKS(rsaA({ alg: 'RS384' }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'jwk_alg_es256_on_rsa_key_is_unusable', 'an RSA JWK labelled alg ES256 used for an RS256 token', () => ({ token: tok(), jwks: JWKS(rsaA({ alg: 'ES256' }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'jwk_alg_lowercase_rs256_is_unusable', 'JWK alg "rs256" is not equal to header alg "RS256"', () => ({ token: tok(), jwks: JWKS(rsaA({ alg: 'rs256' }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'jwk_alg_absent_is_usable', 'a JWK without "alg" is usable', () => ({ token: tok(), jwks: JWKS(rsaA({ alg: DEL }), 'rsa-b'), expect: 'accept' }));
  add(g, 'jwk_without_alg_and_use_is_usable', 'a JWK with neither "alg" nor "use" is usable', () => ({ token: tok(), jwks: JWKS(rsaA({ alg: DEL, use: DEL })), expect: 'accept' }));
  add(g, 'jwk_use_enc_is_unusable', 'JWK "use": "enc" is an encryption key', () => ({ token: tok(), jwks: JWKS(rsaA({ use: 'enc' }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'jwk_use_uppercase_sig_is_unusable', 'JWK "use": "SIG" is not "sig"', () => ({ token: tok(), jwks: JWKS(rsaA({ use: 'SIG' }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'jwk_kty_ec_for_rs256_token_is_unusable', 'the kid names a P-256 key (no alg member) but the header says RS256', () => ({ token: tok(), jwks: JWKS(pub('ec-a', { kid: KA, alg: DEL }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'jwk_kty_rsa_for_es256_token_is_unusable', 'the kid names an RSA key (no alg member) but the header says ES256', () => ({ token: esTok(), jwks: JWKS(pub('rsa-a', { kid: KEA, alg: DEL }), 'ec-b'), policy: PES({ algorithms: ['RS256', 'ES256'] }), expect: 'key_unusable' }));
  add(g, 'jwk_kty_lowercase_rsa_is_unusable', 'JWK "kty": "rsa" is not "RSA"', () => ({ token: tok(), jwks: JWKS(rsaA({ kty: 'rsa' }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'jwk_kty_oct_is_unusable', 'the kid names a symmetric (kty oct) key', () => ({ token: tok(), jwks: JWKS({ kty: 'oct', kid: KA, k: b64u(HMAC_SECRET), alg: 'RS256', use: 'sig' }, 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'rsa_exponent_1_is_unusable', 'rsa-a modulus with e = 1', () => ({ token: tok(), jwks: JWKS(rsaA({ e: 'AQ' }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'rsa_exponent_2_is_unusable', 'rsa-a modulus with e = 2', () => ({ token: tok(), jwks: JWKS(rsaA({ e: 'Ag' }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'rsa_even_exponent_65536_is_unusable', 'rsa-a modulus with e = 65536 (even)', () => ({ token: tok(), jwks: JWKS(rsaA({ e: 'AQAA' }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'rsa_exponent_0_is_unusable', 'rsa-a modulus with e = 0', () => ({ token: tok(), jwks: JWKS(rsaA({ e: 'AA' }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'rsa_exponent_empty_is_unusable', 'rsa-a modulus with e = "" (no octets)', () => ({ token: tok(), jwks: JWKS(rsaA({ e: '' }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'rsa_exponent_missing_is_unusable', 'RSA JWK without "e"', () => ({ token: tok(), jwks: JWKS(rsaA({ e: DEL }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'rsa_exponent_json_number_is_unusable', 'RSA JWK with "e": 65537 as a JSON number, not base64url', () => ({ token: tok(), jwks: JWKS(rsaA({ e: 65537 }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'rsa_modulus_missing_is_unusable', 'RSA JWK without "n"', () => ({ token: tok(), jwks: JWKS(rsaA({ n: DEL }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'rsa_modulus_with_padding_is_unusable', 'RSA JWK "n" with "==" padding is not strict base64url', () => ({ token: tok(), jwks: JWKS(rsaA({ n: padSeg(nA) }), 'rsa-b'), expect: 'key_unusable' }));
  add(g, 'rsa_modulus_standard_base64_is_unusable', 'RSA JWK "n" written in the standard alphabet ("+" "/")', () => {
    const n = nA.replace(/-/g, '+').replace(/_/g, '/');
    assert(n !== nA, 'rsa-a n has no - or _');
    return { token: tok(), jwks: JWKS(rsaA({ n }), 'rsa-b'), expect: 'key_unusable' };
  });
  add(g, 'rsa_exponent_with_padding_is_unusable', 'the e=3 key with "e": "Aw==" (padded)', () => ({ token: jwt(H('rsa-e3'), C(), 'rsa-e3'), jwks: JWKS(pub('rsa-e3', { e: 'Aw==' }), 'rsa-a'), expect: 'key_unusable' }));
  add(g, 'rsa_exponent_3_is_usable', 'a 2048-bit key with e = 3 is odd and >= 3, so usable', () => ({ token: jwt(H('rsa-e3'), C(), 'rsa-e3'), jwks: JWKS('rsa-e3', 'rsa-a'), expect: 'accept' }));
  add(g, 'rsa_1024_bit_modulus_is_unusable', 'a real 1024-bit key signs; below the 2048-bit default minimum', () => ({ token: jwt(H('rsa-1024'), C(), 'rsa-1024'), jwks: JWKS('rsa-1024', 'rsa-a'), expect: 'key_unusable' }));
  add(g, 'rsa_2047_bit_modulus_is_unusable', 'a 2047-bit modulus (256 octets long) is below 2048 bits', () => {
    const n = (bn(Buffer.from(nA, 'base64url')) >> 1n) | 1n;
    assert(bitLen(n) === 2047, '2047 bits');
    return { token: tok(), jwks: JWKS(rsaA({ n: b64u(bnBuf(n)) }), 'rsa-b'), expect: 'key_unusable' };
  });
  add(g, 'rsa_2048_below_min_rsa_bits_3072_is_unusable', 'policy min_rsa_bits 3072 refuses the 2048-bit rsa-a', () => ({ token: tok(), policy: P({ min_rsa_bits: 3072 }), expect: 'key_unusable' }));
  add(g, 'rsa_3072_is_accepted', 'a 3072-bit key', () => ({ token: jwt(H('rsa-3072'), C(), 'rsa-3072'), jwks: JWKS('rsa-a', 'rsa-3072'), expect: 'accept' }));
  add(g, 'rsa_4096_is_accepted', 'a 4096-bit key', () => ({ token: jwt(H('rsa-4096'), C(), 'rsa-4096'), jwks: JWKS('rsa-a', 'rsa-4096'), expect: 'accept' }));
  add(g, 'rsa_3072_with_min_rsa_bits_3072_is_accepted', 'the minimum is inclusive', () => ({ token: jwt(H('rsa-3072'), C(), 'rsa-3072'), jwks: JWKS('rsa-a', 'rsa-3072'), policy: P({ min_rsa_bits: 3072 }), expect: 'accept' }));
  add(g, 'rsa_modulus_over_8192_bits_is_unusable', 'an 8256-bit modulus exceeds the 8192-bit ceiling', () => {
    let bytes = Buffer.alloc(0);
    for (let i = 0; bytes.length < 1032; i++) bytes = Buffer.concat([bytes, sha256('big-modulus:' + i)]);
    bytes = Buffer.from(bytes.subarray(0, 1032));
    bytes[0] |= 0x80;
    bytes[1031] |= 1;
    return { token: tok(), jwks: JWKS(rsaA({ n: b64u(bytes) }), 'rsa-b'), expect: 'key_unusable' };
  });
  add(g, 'ec_point_not_on_curve_is_unusable', 'ec-a with y + 1: (x, y) is not on P-256', () => {
    const y = (bn(Buffer.from(ecA.y, 'base64url')) + 1n) % P256_P;
    return es({ jwks: JWKS(pub('ec-a', { y: b64u(bnBuf(y, 32)) }), 'ec-b'), expect: 'key_unusable' });
  });
  add(g, 'ec_point_zero_zero_is_unusable', 'x = y = 0 (32 zero octets each) is not on P-256', () => es({ jwks: JWKS(pub('ec-a', { x: b64u(Buffer.alloc(32)), y: b64u(Buffer.alloc(32)) }), 'ec-b'), expect: 'key_unusable' }));
  add(g, 'ec_x_of_31_octets_is_unusable', 'x coordinate with its first octet dropped (31 octets)', () => es({ jwks: JWKS(pub('ec-a', { x: b64u(Buffer.from(ecA.x, 'base64url').subarray(1)) }), 'ec-b'), expect: 'key_unusable' }));
  add(g, 'ec_y_of_33_octets_is_unusable', 'y coordinate with a leading zero octet (33 octets, same integer)', () => es({ jwks: JWKS(pub('ec-a', { y: b64u(Buffer.concat([Buffer.alloc(1), Buffer.from(ecA.y, 'base64url')])) }), 'ec-b'), expect: 'key_unusable' }));
  add(g, 'ec_x_with_padding_is_unusable', 'x coordinate with "=" padding', () => es({ jwks: JWKS(pub('ec-a', { x: padSeg(ecA.x) }), 'ec-b'), expect: 'key_unusable' }));
  add(g, 'ec_crv_p384_for_es256_is_unusable', 'the kid names a P-384 key (no alg member) but the header says ES256', () => es({ jwks: JWKS(pub('ec-p384', { kid: KEA, alg: DEL }), 'ec-b'), expect: 'key_unusable' }));
  add(g, 'ec_crv_missing_is_unusable', 'EC JWK without "crv"', () => es({ jwks: JWKS(pub('ec-a', { crv: DEL }), 'ec-b'), expect: 'key_unusable' }));
  add(g, 'ec_y_missing_is_unusable', 'EC JWK without "y"', () => es({ jwks: JWKS(pub('ec-a', { y: DEL }), 'ec-b'), expect: 'key_unusable' }));
  add(g, 'ec_jwk_alg_es384_is_unusable', 'P-256 JWK labelled alg ES384', () => es({ jwks: JWKS(pub('ec-a', { alg: 'ES384' }), 'ec-b'), expect: 'key_unusable' }));
  add(g, 'ec_jwk_use_enc_is_unusable', 'P-256 JWK with "use": "enc"', () => es({ jwks: JWKS(pub('ec-a', { use: 'enc' }), 'ec-b'), expect: 'key_unusable' }));
  add(g, 'ec_jwk_with_alg_es256_is_accepted', 'P-256 JWK labelled alg ES256 and use sig', () => es({ jwks: JWKS('ec-a', 'ec-b'), expect: 'accept' }));
  add(g, 'duplicate_kid_on_different_keys_is_unusable', 'rsa-a and rsa-b both published under the kid of rsa-a', () => ({ token: tok(), jwks: JWKS('rsa-a', pub('rsa-b', { kid: KA })), expect: 'key_unusable' }));
  add(g, 'duplicate_kid_on_identical_entries_is_unusable', 'the same rsa-a JWK listed twice', () => ({ token: tok(), jwks: JWKS('rsa-a', 'rsa-a'), expect: 'key_unusable' }));
  add(g, 'duplicate_kid_with_one_unusable_entry_is_unusable', 'an enc-use copy and the good rsa-a JWK under the same kid', () => ({ token: tok(), jwks: JWKS(rsaA({ use: 'enc' }), 'rsa-a'), expect: 'key_unusable' }));
  add(g, 'duplicated_other_kid_does_not_affect_this_kid', 'kid of rsa-a is duplicated, the token uses rsa-b', () => ({ token: jwt(H('rsa-b'), C(), 'rsa-b'), jwks: JWKS('rsa-a', pub('rsa-3072', { kid: KA }), 'rsa-b'), expect: 'accept' }));
  const junk = () => [
    { kty: 'oct', kid: 'junk-oct', k: b64u(HMAC_SECRET) },
    { kty: 'RSA', kid: 'junk-no-n', e: 'AQAB', alg: 'RS256', use: 'sig' },
    { kty: 'RSA', kid: 'junk-bad-base64', n: '!!not*base64url!!', e: 'AQAB', alg: 'RS256', use: 'sig' },
    { kty: 'OKP', crv: 'Ed25519', x: pub('ed25519').x, kid: 'junk-okp' },
    { kid: 'junk-no-kty', n: nA, e: 'AQAB' },
    pub('rsa-b', { kid: DEL }),
  ];
  add(g, 'jwks_with_junk_entries_and_good_key_accepts', 'oct, missing-n, bad-base64, OKP, no-kty and kid-less entries next to the good rsa-a', () => ({ token: tok(), jwks: { keys: [...junk(), pub('rsa-a')] }, expect: 'accept' }));
  add(g, 'kid_pointing_at_junk_entry_is_unusable', 'the kid selects the entry whose "n" is not base64url', () => ({ token: jwt(H('rsa-a', { kid: 'junk-bad-base64' }), C()), jwks: { keys: [...junk(), pub('rsa-a')] }, expect: 'key_unusable' }));
  add(g, 'kid_pointing_at_entry_without_kty_is_unusable', 'the kid selects an entry with n and e but no "kty"', () => ({ token: jwt(H('rsa-a', { kid: 'junk-no-kty' }), C()), jwks: { keys: [...junk(), pub('rsa-a')] }, expect: 'key_unusable' }));
  add(g, 'jwk_without_kid_is_never_selected', 'the only JWK is rsa-a without a kid: no fallback', () => ({ token: tok(), jwks: JWKS(rsaA({ kid: DEL })), expect: 'kid_unknown' }));
  add(g, 'empty_jwks_is_kid_unknown', 'a JWK Set with no keys', () => ({ token: tok(), jwks: { keys: [] }, expect: 'kid_unknown' }));
}

// ============================================================================ signature
{
  const g = group('signature', 'RS256 (RSASSA-PKCS1-v1_5 SHA-256) and ES256 (r || s) signature checks');
  const hs = () => enc(H());
  const tok = () => jwt(H(), C());
  const withSig = (t, sig) => splitTok(t).slice(0, 2).join('.') + '.' + b64u(sig);
  const sigOf = (t) => Buffer.from(splitTok(t)[2], 'base64url');
  const { n: nA, k: kA } = rsaParts('rsa-a');
  const raw = (t) => signSegs(hs(), enc(C()), (input) => rawRsa('rsa-a', t(input)));
  const h256 = (input) => sha256(Buffer.from(input, 'ascii'));

  // Self-test: the raw BigInt construction reproduces node:crypto's RS256 signature.
  {
    const input = hs() + '.' + enc({ self: 'test' });
    assert(rawRsa('rsa-a', emBlock(kA, Buffer.concat([DI_SHA256, h256(input)]))).equals(signWith('RS256', 'rsa-a', input)), 'raw RSA self-test');
  }

  add(g, 'tampered_payload_scope_is_invalid', 'payload re-encoded with an extra scope, original signature kept', () => {
    const [h, , s] = splitTok(tok());
    return { token: `${h}.${enc(C({ scope: 'orders/read orders/write orders/admin' }))}.${s}`, expect: 'signature_invalid' };
  });
  add(g, 'tampered_payload_exp_is_invalid', 'payload re-encoded with a later exp, original signature kept', () => {
    const [h, , s] = splitTok(tok());
    return { token: `${h}.${enc(C({ exp: NOW + 86400 * 365 }))}.${s}`, expect: 'signature_invalid' };
  });
  add(g, 'tampered_payload_single_character_is_invalid', 'one character of the jti changed, original signature kept', () => {
    const [h, , s] = splitTok(tok());
    const c = C();
    const jti = c.jti.slice(0, -1) + (c.jti.endsWith('0') ? '1' : '0');
    return { token: `${h}.${enc(merge(c, { jti }))}.${s}`, expect: 'signature_invalid' };
  });
  add(g, 'tampered_header_is_invalid', 'header re-encoded with "typ": "JWT" added, original signature kept', () => {
    const [, p, s] = splitTok(tok());
    return { token: `${enc(H('rsa-a', { typ: 'JWT' }))}.${p}.${s}`, expect: 'signature_invalid' };
  });
  add(g, 'header_reserialised_with_whitespace_is_invalid', 'same header members re-serialised with whitespace: the signature covers the bytes', () => {
    const [, p, s] = splitTok(tok());
    return { token: `${enc(JSON.stringify(H(), null, 1))}.${p}.${s}`, expect: 'signature_invalid' };
  });
  add(g, 'signature_truncated_by_one_byte_is_invalid', '255-octet signature for a 256-octet modulus', () => { const t = tok(); return { token: withSig(t, sigOf(t).subarray(0, 255)), expect: 'signature_invalid' }; });
  add(g, 'signature_with_extra_trailing_byte_is_invalid', '257 octets: valid signature plus one octet', () => { const t = tok(); return { token: withSig(t, Buffer.concat([sigOf(t), Buffer.from([0])])), expect: 'signature_invalid' }; });
  add(g, 'signature_with_extra_leading_zero_byte_is_invalid', '257 octets: one 00 octet before the valid signature (same integer)', () => { const t = tok(); return { token: withSig(t, Buffer.concat([Buffer.from([0]), sigOf(t)])), expect: 'signature_invalid' }; });
  add(g, 'signature_all_zero_is_invalid', '256 zero octets (s = 0)', () => ({ token: withSig(tok(), Buffer.alloc(256)), expect: 'signature_invalid' }));
  add(g, 'signature_value_one_is_invalid', 's = 1 in 256 octets', () => ({ token: withSig(tok(), bnBuf(1n, 256)), expect: 'signature_invalid' }));
  add(g, 'signature_all_ff_exceeds_modulus_is_invalid', '256 FF octets: s > n', () => ({ token: withSig(tok(), Buffer.alloc(256, 0xff)), expect: 'signature_invalid' }));
  add(g, 'signature_equal_to_modulus_is_invalid', 's = n (congruent to 0)', () => ({ token: withSig(tok(), bnBuf(nA, 256)), expect: 'signature_invalid' }));
  {
    // s + n < 2^2048 for some deterministic variant: s + n is congruent to a valid signature.
    let found = null;
    for (let i = 0; i < 2000 && !found; i++) {
      CUR = 'signature_plus_modulus_is_invalid';
      const t = jwt(H(), C({ 'custom:attempt': i }));
      const s = bn(sigOf(t));
      if (s + nA < 1n << 2048n) found = { t, s };
    }
    if (found) {
      add(g, 'signature_plus_modulus_is_invalid', 's + n fits in 256 octets and is congruent to the valid s, but s >= n must be refused', () => ({ token: withSig(found.t, bnBuf(found.s + nA, 256)), expect: 'signature_invalid' }));
    } else {
      console.error('warning: no s + n < 2^2048 variant found; signature_plus_modulus_is_invalid skipped');
    }
  }
  add(g, 'signature_with_sha1_digestinfo_is_invalid', 'rsa-a signs (raw RSA) a PKCS#1 block holding a SHA-1 DigestInfo of the input', () => ({ token: raw((i) => emBlock(kA, Buffer.concat([DI_SHA1, sha1(Buffer.from(i))]))), expect: 'signature_invalid' }));
  add(g, 'signature_digestinfo_without_null_params_is_invalid', 'SHA-256 DigestInfo with the NULL parameters omitted (30 2f …)', () => ({ token: raw((i) => emBlock(kA, Buffer.concat([DI_SHA256_NO_NULL, h256(i)]))), expect: 'signature_invalid' }));
  add(g, 'signature_digestinfo_with_sha384_oid_is_invalid', 'DigestInfo names SHA-384 but carries the 32-octet SHA-256 hash', () => ({ token: raw((i) => emBlock(kA, Buffer.concat([DI_SHA384_OID_32, h256(i)]))), expect: 'signature_invalid' }));
  add(g, 'signature_block_type_02_is_invalid', 'PKCS#1 block type 02 (encryption padding) instead of 01', () => ({ token: raw((i) => emBlock(kA, Buffer.concat([DI_SHA256, h256(i)]), { bt: 0x02 })), expect: 'signature_invalid' }));
  add(g, 'signature_padding_with_fe_byte_is_invalid', 'one octet of the FF padding string is FE', () => ({
    token: raw((i) => { const b = emBlock(kA, Buffer.concat([DI_SHA256, h256(i)])); b[10] = 0xfe; return b; }),
    expect: 'signature_invalid',
  }));
  add(g, 'signature_short_padding_with_trailing_garbage_is_invalid', 'Bleichenbacher 2006 shape: 8 FF octets, DigestInfo, hash, then garbage to fill the block', () => ({ token: raw((i) => emBlock(kA, Buffer.concat([DI_SHA256, h256(i)]), { padLen: 8 })), expect: 'signature_invalid' }));
  add(g, 'signature_leading_octet_not_zero_is_invalid', 'block starts 01 01 FF … instead of 00 01 FF …', () => ({ token: raw((i) => emBlock(kA, Buffer.concat([DI_SHA256, h256(i)]), { lead: 0x01 })), expect: 'signature_invalid' }));
  add(g, 'signature_missing_zero_separator_is_invalid', 'FF padding runs straight into the DigestInfo without the 00 separator', () => ({
    token: raw((i) => { const t = Buffer.concat([DI_SHA256, h256(i)]); return Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(kA - 2 - t.length, 0xff), t]); }),
    expect: 'signature_invalid',
  }));
  add(g, 'signature_hash_of_other_message_is_invalid', 'well-formed block, but the hash is of a different message', () => ({ token: raw(() => emBlock(kA, Buffer.concat([DI_SHA256, sha256('some other message')]))), expect: 'signature_invalid' }));
  add(g, 'signature_of_different_token_is_invalid', 'the valid signature of another token (other scope) by the same key', () => ({ token: withSig(tok(), sigOf(jwt(H(), C({ scope: 'orders/read' })))), expect: 'signature_invalid' }));
  add(g, 'signature_by_attacker_key_with_real_kid_is_invalid', 'an attacker key signs under the kid of rsa-a', () => ({ token: jwt(H(), C(), 'attacker-rsa'), expect: 'signature_invalid' }));
  add(g, 'rotation_signed_by_rsa_b_with_kid_of_rsa_a_is_invalid', 'both keys are listed; the kid of rsa-a selects rsa-a, no fallback to rsa-b', () => ({ token: jwt(H('rsa-a'), C(), 'rsa-b'), expect: 'signature_invalid' }));
  add(g, 'rotation_signed_by_rsa_a_with_kid_of_rsa_b_is_invalid', 'both keys are listed; the kid of rsa-b selects rsa-b, no fallback to rsa-a', () => ({ token: jwt(H('rsa-b'), C(), 'rsa-a'), expect: 'signature_invalid' }));
  add(g, 'signature_by_3072_bit_key_under_2048_bit_kid_is_invalid', 'a 384-octet signature for a 256-octet modulus', () => ({ token: jwt(H(), C(), 'rsa-3072'), jwks: JWKS('rsa-a', 'rsa-3072'), expect: 'signature_invalid' }));

  const esSig = (t) => sigOf(t);
  const esWith = (fn, extra = {}) => { const t = esTok(); return { token: withSig(t, fn(esSig(t))), policy: PES(), jwks: JWKS_ES(), ...extra }; };
  const ORDER = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
  const der = (sig) => {
    const int = (b) => { let i = 0; while (i < b.length - 1 && b[i] === 0) i++; b = b.subarray(i); if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]); return Buffer.concat([Buffer.from([0x02, b.length]), b]); };
    const body = Buffer.concat([int(sig.subarray(0, 32)), int(sig.subarray(32))]);
    return Buffer.concat([Buffer.from([0x30, body.length]), body]);
  };
  add(g, 'es256_der_encoded_signature_is_invalid', 'the valid ES256 signature in ASN.1 DER form instead of r || s', () => esWith((s) => der(s), { expect: 'signature_invalid' }));
  add(g, 'es256_psychic_signature_r0_s0_is_invalid', 'CVE-2022-21449: r = s = 0 (64 zero octets)', () => esWith(() => Buffer.alloc(64), { expect: 'signature_invalid' }));
  add(g, 'es256_r_zero_is_invalid', 'r = 0 with the real s', () => esWith((s) => Buffer.concat([Buffer.alloc(32), s.subarray(32)]), { expect: 'signature_invalid' }));
  add(g, 'es256_s_zero_is_invalid', 'the real r with s = 0', () => esWith((s) => Buffer.concat([s.subarray(0, 32), Buffer.alloc(32)]), { expect: 'signature_invalid' }));
  add(g, 'es256_r_equal_to_order_is_invalid', 'r = n (the group order) with the real s', () => esWith((s) => Buffer.concat([bnBuf(ORDER, 32), s.subarray(32)]), { expect: 'signature_invalid' }));
  add(g, 'es256_s_equal_to_order_is_invalid', 'the real r with s = n', () => esWith((s) => Buffer.concat([s.subarray(0, 32), bnBuf(ORDER, 32)]), { expect: 'signature_invalid' }));
  add(g, 'es256_r_and_s_equal_to_order_is_invalid', 'r = s = n (reduces to the psychic signature mod n)', () => esWith(() => Buffer.concat([bnBuf(ORDER, 32), bnBuf(ORDER, 32)]), { expect: 'signature_invalid' }));
  add(g, 'es256_all_ff_is_invalid', 'r = s = 2^256 - 1 (both >= n)', () => esWith(() => Buffer.alloc(64, 0xff), { expect: 'signature_invalid' }));
  add(g, 'es256_signature_of_63_octets_is_invalid', 'the valid signature with its last octet dropped', () => esWith((s) => s.subarray(0, 63), { expect: 'signature_invalid' }));
  add(g, 'es256_signature_of_65_octets_is_invalid', 'the valid signature with a 00 octet appended', () => esWith((s) => Buffer.concat([s, Buffer.alloc(1)]), { expect: 'signature_invalid' }));
  add(g, 'es256_r_and_s_swapped_is_invalid', 's || r instead of r || s', () => esWith((s) => Buffer.concat([s.subarray(32), s.subarray(0, 32)]), { expect: 'signature_invalid' }));
  add(g, 'es256_tampered_payload_is_invalid', 'ES256 payload re-encoded with another aud, original signature kept', () => {
    const [h, , s] = splitTok(esTok());
    return { token: `${h}.${enc(E({ aud: 'https://other.example.test' }))}.${s}`, policy: PES(), jwks: JWKS_ES(), expect: 'signature_invalid' };
  });
  add(g, 'es256_signed_by_ec_b_with_kid_of_ec_a_is_invalid', 'both keys listed; the kid of ec-a selects ec-a', () => ({ token: esTok({}, 'ec-b'), policy: PES(), jwks: JWKS_ES(), expect: 'signature_invalid' }));
  add(g, 'es256_signed_by_attacker_with_kid_of_ec_a_is_invalid', 'an attacker P-256 key signs under the kid of ec-a', () => ({ token: esTok({}, 'attacker-ec'), policy: PES(), jwks: JWKS_ES(), expect: 'signature_invalid' }));
  add(g, 'es256_negated_s_is_accepted', 's replaced by n - s: also a valid ECDSA signature; the contract asks only 1 <= r, s < n (no low-S rule)', () => esWith((s) => Buffer.concat([s.subarray(0, 32), bnBuf(ORDER - bn(s.subarray(32)), 32)]), { expect: 'accept' }));
}
// ============================================================================ time
{
  const g = group('time', 'exp / nbf / iat types, leeway edges, fractional times, max_token_age_s');
  const t = (over) => jwt(H(), C(over));
  const rawT = (over, extra) => jwt(H(), rawJson(C(over), extra));
  const L60 = P({ leeway_s: 60 });

  add(g, 'exp_missing_is_claim_missing', 'no exp claim', () => ({ token: t({ exp: DEL }), expect: 'claim_missing' }));
  add(g, 'payload_empty_object_is_claim_missing', 'payload {} lacks exp, the first claim checked', () => ({ token: jwt(H(), {}), expect: 'claim_missing' }));
  add(g, 'exp_string_is_claim_invalid', 'exp as the numeric string "1767272400"', () => ({ token: t({ exp: String(NOW + 3600) }), expect: 'claim_invalid' }));
  add(g, 'exp_null_is_claim_invalid', 'exp: null is present but not a number', () => ({ token: t({ exp: null }), expect: 'claim_invalid' }));
  add(g, 'exp_boolean_is_claim_invalid', 'exp: true', () => ({ token: t({ exp: true }), expect: 'claim_invalid' }));
  add(g, 'exp_array_is_claim_invalid', 'exp: [1767272400]', () => ({ token: t({ exp: [NOW + 3600] }), expect: 'claim_invalid' }));
  add(g, 'exp_object_is_claim_invalid', 'exp: {"$date": 1767272400}', () => ({ token: t({ exp: { $date: NOW + 3600 } }), expect: 'claim_invalid' }));
  add(g, 'nbf_string_is_claim_invalid', 'nbf as a numeric string', () => ({ token: t({ nbf: String(NOW - 60) }), expect: 'claim_invalid' }));
  add(g, 'nbf_null_is_claim_invalid', 'nbf: null is present but not a number', () => ({ token: t({ nbf: null }), expect: 'claim_invalid' }));
  add(g, 'iat_string_is_claim_invalid', 'iat as a numeric string', () => ({ token: t({ iat: String(NOW - 60) }), expect: 'claim_invalid' }));
  add(g, 'iat_null_is_claim_invalid', 'iat: null is present but not a number', () => ({ token: t({ iat: null }), expect: 'claim_invalid' }));
  add(g, 'iat_boolean_is_claim_invalid', 'iat: false', () => ({ token: t({ iat: false }), expect: 'claim_invalid' }));
  add(g, 'exp_equal_to_now_is_expired', 'now == exp: RFC 7519 says on or after exp is expired', () => ({ token: t({ exp: NOW }), expect: 'token_expired' }));
  add(g, 'exp_one_second_after_now_is_accepted', 'now == exp - 1', () => ({ token: t({ exp: NOW + 1 }), expect: 'accept' }));
  add(g, 'exp_one_second_before_now_is_expired', 'now == exp + 1', () => ({ token: t({ exp: NOW - 1 }), expect: 'token_expired' }));
  add(g, 'exp_plus_leeway_equal_to_now_is_expired', 'leeway 60, exp = now - 60: now >= exp + leeway', () => ({ token: t({ exp: NOW - 60 }), policy: L60, expect: 'token_expired' }));
  add(g, 'exp_plus_leeway_one_second_after_now_is_accepted', 'leeway 60, exp = now - 59', () => ({ token: t({ exp: NOW - 59 }), policy: L60, expect: 'accept' }));
  add(g, 'nbf_equal_to_now_is_accepted', 'nbf == now is valid', () => ({ token: t({ nbf: NOW }), expect: 'accept' }));
  add(g, 'nbf_one_second_in_future_is_not_yet_valid', 'nbf = now + 1, no leeway', () => ({ token: t({ nbf: NOW + 1 }), expect: 'token_not_yet_valid' }));
  add(g, 'nbf_at_leeway_edge_is_accepted', 'leeway 60, nbf = now + 60', () => ({ token: t({ nbf: NOW + 60 }), policy: L60, expect: 'accept' }));
  add(g, 'nbf_one_second_past_leeway_is_not_yet_valid', 'leeway 60, nbf = now + 61', () => ({ token: t({ nbf: NOW + 61 }), policy: L60, expect: 'token_not_yet_valid' }));
  add(g, 'nbf_far_in_future_is_not_yet_valid', 'nbf = now + 3000 (exp = now + 3600)', () => ({ token: t({ nbf: NOW + 3000 }), expect: 'token_not_yet_valid' }));
  add(g, 'iat_equal_to_now_is_accepted', 'iat == now', () => ({ token: t({ iat: NOW }), expect: 'accept' }));
  add(g, 'iat_one_second_in_future_is_issued_in_future', 'iat = now + 1, no leeway', () => ({ token: t({ iat: NOW + 1 }), expect: 'token_issued_in_future' }));
  add(g, 'iat_at_leeway_edge_is_accepted', 'leeway 60, iat = now + 60', () => ({ token: t({ iat: NOW + 60 }), policy: L60, expect: 'accept' }));
  add(g, 'iat_one_second_past_leeway_is_issued_in_future', 'leeway 60, iat = now + 61', () => ({ token: t({ iat: NOW + 61 }), policy: L60, expect: 'token_issued_in_future' }));
  add(g, 'iat_missing_without_max_age_is_accepted', 'iat is optional when max_token_age_s is not set', () => ({ token: t({ iat: DEL }), expect: 'accept' }));
  add(g, 'iat_a_year_old_without_max_age_is_accepted', 'an old iat alone does not expire a token', () => ({ token: t({ iat: NOW - 86400 * 365, auth_time: NOW - 86400 * 365 }), expect: 'accept' }));
  add(g, 'exp_half_second_ahead_is_accepted', 'exp = now + 0.5 (fractional, compared as a real number)', () => ({ token: t({ exp: NOW + 0.5 }), expect: 'accept' }));
  add(g, 'exp_half_second_behind_is_expired', 'exp = now - 0.5', () => ({ token: t({ exp: NOW - 0.5 }), expect: 'token_expired' }));
  add(g, 'exp_fractional_within_leeway_is_accepted', 'leeway 60, exp = now - 59.5', () => ({ token: t({ exp: NOW - 59.5 }), policy: L60, expect: 'accept' }));
  add(g, 'nbf_half_second_ahead_is_not_yet_valid', 'nbf = now + 0.5, no leeway', () => ({ token: t({ nbf: NOW + 0.5 }), expect: 'token_not_yet_valid' }));
  add(g, 'iat_half_second_ahead_is_issued_in_future', 'iat = now + 0.5, no leeway', () => ({ token: t({ iat: NOW + 0.5 }), expect: 'token_issued_in_future' }));
  add(g, 'max_age_exactly_reached_is_accepted', 'max_token_age_s 300, iat = now - 300', () => ({ token: t({ iat: NOW - 300 }), policy: P({ max_token_age_s: 300 }), expect: 'accept' }));
  add(g, 'max_age_exceeded_by_one_second_is_expired', 'max_token_age_s 300, iat = now - 301', () => ({ token: t({ iat: NOW - 301 }), policy: P({ max_token_age_s: 300 }), expect: 'token_expired' }));
  add(g, 'max_age_at_leeway_edge_is_accepted', 'max_token_age_s 300, leeway 60, iat = now - 360', () => ({ token: t({ iat: NOW - 360 }), policy: P({ leeway_s: 60, max_token_age_s: 300 }), expect: 'accept' }));
  add(g, 'max_age_past_leeway_edge_is_expired', 'max_token_age_s 300, leeway 60, iat = now - 361', () => ({ token: t({ iat: NOW - 361 }), policy: P({ leeway_s: 60, max_token_age_s: 300 }), expect: 'token_expired' }));
  add(g, 'max_age_exceeded_by_half_second_is_expired', 'max_token_age_s 300, iat = now - 300.5', () => ({ token: t({ iat: NOW - 300.5 }), policy: P({ max_token_age_s: 300 }), expect: 'token_expired' }));
  add(g, 'max_age_with_iat_missing_is_claim_missing', 'max_token_age_s set and no iat', () => ({ token: t({ iat: DEL }), policy: P({ max_token_age_s: 300 }), expect: 'claim_missing' }));
  add(g, 'max_age_zero_with_iat_now_is_accepted', 'max_token_age_s 0, iat = now', () => ({ token: t({ iat: NOW }), policy: P({ max_token_age_s: 0 }), expect: 'accept' }));
  add(g, 'exp_huge_integer_1e20_is_accepted', 'exp = 100000000000000000000 (beyond i64 and u64)', () => ({ token: t({ exp: 1e20 }), expect: 'accept' }));
  add(g, 'exp_huge_in_exponent_notation_is_accepted', 'exp written as the JSON number 1e20', () => ({ token: rawT({ exp: DEL }, ',"exp":1e20'), expect: 'accept' }));
  add(g, 'exp_in_exponent_notation_is_accepted', 'exp written as 1.7672724e9 (= now + 3600)', () => ({ token: rawT({ exp: DEL }, ',"exp":1.7672724e9'), expect: 'accept' }));
  add(g, 'exp_with_zero_fraction_is_accepted', 'exp written as 1767272400.0', () => ({ token: rawT({ exp: DEL }, `,"exp":${NOW + 3600}.0`), expect: 'accept' }));
  add(g, 'exp_negative_is_expired', 'exp = -1', () => ({ token: t({ exp: -1 }), expect: 'token_expired' }));
  add(g, 'exp_zero_is_expired', 'exp = 0', () => ({ token: t({ exp: 0 }), expect: 'token_expired' }));
}

// ============================================================================ claims
{
  const g = group('claims', 'iss, token_use, client_id, aud and custom claim rules');
  const t = (over) => jwt(H(), C(over));

  add(g, 'iss_missing_is_claim_missing', 'no iss claim', () => ({ token: t({ iss: DEL }), expect: 'claim_missing' }));
  add(g, 'iss_number_is_claim_invalid', 'iss: 42', () => ({ token: t({ iss: 42 }), expect: 'claim_invalid' }));
  add(g, 'iss_null_is_claim_invalid', 'iss: null is present but not a string', () => ({ token: t({ iss: null }), expect: 'claim_invalid' }));
  add(g, 'iss_array_is_claim_invalid', 'iss: [<trusted issuer>]', () => ({ token: t({ iss: [ISS] }), expect: 'claim_invalid' }));
  const lookalikes = [
    ['iss_with_trailing_slash_is_mismatch', 'trusted issuer plus a trailing "/"', ISS + '/'],
    ['iss_with_http_scheme_is_mismatch', 'http:// instead of https://', ISS.replace('https://', 'http://')],
    ['iss_with_uppercase_host_is_mismatch', 'host written in upper case', ISS.replace('cognito-idp.eu-west-1.amazonaws.com', 'COGNITO-IDP.EU-WEST-1.AMAZONAWS.COM')],
    ['iss_with_extra_path_segment_is_mismatch', 'trusted issuer plus "/extra"', ISS + '/extra'],
    ['iss_with_cyrillic_homoglyph_is_mismatch', 'Cyrillic "о" (U+043E) in place of "o" in the pool id', ISS.replace('TEST0pool', 'TEST0p\u043eol')],
    ['iss_with_zero_width_space_is_mismatch', 'a U+200B zero-width space before the pool id', ISS.replace('/eu-west-1_', '/\u200beu-west-1_')],
    ['iss_with_user_pool_id_case_changed_is_mismatch', 'pool id "TEST0POOL" instead of "TEST0pool"', ISS.replace('TEST0pool', 'TEST0POOL')],
    ['iss_other_region_is_mismatch', 'same pool id under eu-west-2', ISS.replace('cognito-idp.eu-west-1', 'cognito-idp.eu-west-2')],
    ['iss_with_explicit_port_is_mismatch', 'explicit ":443" in the authority', ISS.replace('.com/', '.com:443/')],
    ['iss_with_trailing_space_is_mismatch', 'trusted issuer plus a space', ISS + ' '],
    ['iss_empty_string_is_mismatch', 'iss: ""', ''],
  ];
  for (const [name, desc, iss] of lookalikes) add(g, name, desc, () => ({ token: t({ iss }), expect: 'issuer_mismatch' }));
  add(g, 'iss_alternate_form_accepted_when_listed', 'the issuer-cognito-idp form is accepted when the policy lists it', () => ({ token: t({ iss: ISS_ALT }), policy: P({ issuers: [ISS, ISS_ALT] }), expect: 'accept' }));
  add(g, 'iss_alternate_form_rejected_when_not_listed', 'the issuer-cognito-idp form is a different issuer unless listed', () => ({ token: t({ iss: ISS_ALT }), expect: 'issuer_mismatch' }));
  add(g, 'iss_with_json_escaped_slashes_is_accepted', 'iss written with "\\/" escapes equals the trusted issuer once unescaped', () => ({
    token: jwt(H(), rawJson(C({ iss: DEL }), `,"iss":${JSON.stringify(ISS).replace(/\//g, '\\/')}`)),
    expect: 'accept',
  }));
  add(g, 'token_use_id_is_mismatch', 'token_use "id" where the policy wants "access"', () => ({ token: t({ token_use: 'id' }), expect: 'token_use_mismatch' }));
  add(g, 'token_use_missing_is_claim_missing', 'no token_use claim', () => ({ token: t({ token_use: DEL }), expect: 'claim_missing' }));
  add(g, 'token_use_capitalised_is_mismatch', 'token_use "Access"', () => ({ token: t({ token_use: 'Access' }), expect: 'token_use_mismatch' }));
  add(g, 'token_use_number_is_mismatch', 'token_use: 1 (not a string)', () => ({ token: t({ token_use: 1 }), expect: 'token_use_mismatch' }));
  add(g, 'token_use_null_value_is_mismatch', 'token_use: null is present but not a string', () => ({ token: t({ token_use: null }), expect: 'token_use_mismatch' }));
  add(g, 'token_use_array_is_mismatch', 'token_use: ["access"]', () => ({ token: t({ token_use: ['access'] }), expect: 'token_use_mismatch' }));
  add(g, 'policy_token_use_null_accepts_id', 'policy token_use null does not check the claim', () => ({ token: t({ token_use: 'id' }), policy: P({ token_use: null }), expect: 'accept' }));
  add(g, 'policy_token_use_null_accepts_missing_token_use', 'policy token_use null with no token_use claim', () => ({ token: t({ token_use: DEL }), policy: P({ token_use: null }), expect: 'accept' }));
  const idPolicy = () => P({ token_use: 'id', client_ids: null, audience: [CLIENT], scopes: null });
  const idClaims = (over) => merge({ sub: 'b1f2c3d4-0000-4000-8000-00000000abcd', aud: CLIENT, email_verified: true, token_use: 'id', auth_time: NOW - 60, iss: ISS, 'cognito:username': 'alice', exp: NOW + 3600, iat: NOW - 60, jti: uuidFor(CUR), email: 'alice@example.test' }, over);
  add(g, 'policy_token_use_id_accepts_id_token', 'an ID token (aud = app client) under an id-token policy', () => ({ token: jwt(H(), idClaims()), policy: idPolicy(), expect: 'accept' }));
  add(g, 'policy_token_use_id_rejects_access_token', 'an access token under an id-token policy', () => ({ token: t({ aud: CLIENT }), policy: idPolicy(), expect: 'token_use_mismatch' }));
  add(g, 'client_id_missing_is_claim_missing', 'no client_id claim', () => ({ token: t({ client_id: DEL }), expect: 'claim_missing' }));
  add(g, 'client_id_not_in_list_is_not_allowed', 'client_id of another app client', () => ({ token: t({ client_id: CLIENT2, sub: CLIENT2 }), expect: 'client_not_allowed' }));
  add(g, 'client_id_array_is_claim_invalid', 'client_id: [<allowed client>]', () => ({ token: t({ client_id: [CLIENT] }), expect: 'claim_invalid' }));
  add(g, 'client_id_number_is_claim_invalid', 'client_id: 12345', () => ({ token: t({ client_id: 12345 }), expect: 'claim_invalid' }));
  add(g, 'client_id_null_is_claim_invalid', 'client_id: null is present but not a string', () => ({ token: t({ client_id: null }), expect: 'claim_invalid' }));
  add(g, 'client_id_only_in_aud_is_claim_missing', 'no client_id, the allowed client only in aud: aud never stands in', () => ({ token: t({ client_id: DEL, aud: CLIENT }), expect: 'claim_missing' }));
  add(g, 'client_id_case_changed_is_not_allowed', 'client_id upper-cased', () => ({ token: t({ client_id: CLIENT.toUpperCase() }), expect: 'client_not_allowed' }));
  add(g, 'client_id_with_trailing_space_is_not_allowed', 'client_id plus a space', () => ({ token: t({ client_id: CLIENT + ' ' }), expect: 'client_not_allowed' }));
  add(g, 'client_id_second_in_list_is_accepted', 'policy lists two clients, the token has the second', () => ({ token: t(), policy: P({ client_ids: [CLIENT2, CLIENT] }), expect: 'accept' }));
  add(g, 'client_ids_null_accepts_any_client', 'policy client_ids null accepts a client it has never heard of', () => ({ token: t({ client_id: 'unlisted0client0id0000000', sub: 'unlisted0client0id0000000' }), policy: P({ client_ids: null }), expect: 'accept' }));
  add(g, 'client_ids_null_accepts_missing_client_id', 'policy client_ids null does not require the claim', () => ({ token: t({ client_id: DEL }), policy: P({ client_ids: null }), expect: 'accept' }));
  const audP = (aud = ['api://orders']) => P({ audience: aud });
  add(g, 'audience_string_match_is_accepted', 'aud "api://orders" with policy audience ["api://orders"]', () => ({ token: t({ aud: 'api://orders' }), policy: audP(), expect: 'accept' }));
  add(g, 'audience_array_containing_match_is_accepted', 'aud ["api://billing", "api://orders"]', () => ({ token: t({ aud: ['api://billing', 'api://orders'] }), policy: audP(), expect: 'accept' }));
  add(g, 'audience_second_policy_entry_is_accepted', 'policy audience lists two, aud has the second', () => ({ token: t({ aud: 'api://orders' }), policy: audP(['api://billing', 'api://orders']), expect: 'accept' }));
  add(g, 'audience_missing_is_claim_missing', 'policy audience set and no aud claim', () => ({ token: t(), policy: audP(), expect: 'claim_missing' }));
  add(g, 'audience_string_mismatch', 'aud "api://billing"', () => ({ token: t({ aud: 'api://billing' }), policy: audP(), expect: 'audience_mismatch' }));
  add(g, 'audience_array_without_match', 'aud ["api://billing", "api://shipping"]', () => ({ token: t({ aud: ['api://billing', 'api://shipping'] }), policy: audP(), expect: 'audience_mismatch' }));
  add(g, 'audience_empty_array_is_mismatch', 'aud []', () => ({ token: t({ aud: [] }), policy: audP(), expect: 'audience_mismatch' }));
  add(g, 'audience_with_extra_path_is_mismatch', 'aud "api://orders/extra"', () => ({ token: t({ aud: 'api://orders/extra' }), policy: audP(), expect: 'audience_mismatch' }));
  add(g, 'audience_number_is_mismatch', 'aud: 42 has no element equal to a policy audience', () => ({ token: t({ aud: 42 }), policy: audP(), expect: 'audience_mismatch' }));
  add(g, 'audience_not_checked_when_policy_null', 'aud is ignored when policy audience is null', () => ({ token: t({ aud: 'api://anything' }), expect: 'accept' }));
  const rule = (r) => P({ claims: [r] });
  const eqAcme = () => rule({ claim: 'custom:tenant', equals: 'acme' });
  add(g, 'claim_rule_equals_passes', 'custom:tenant "acme" equals "acme"', () => ({ token: t({ 'custom:tenant': 'acme' }), policy: eqAcme(), expect: 'accept' }));
  add(g, 'claim_rule_equals_fails', 'custom:tenant "globex" is not "acme"', () => ({ token: t({ 'custom:tenant': 'globex' }), policy: eqAcme(), expect: 'claim_invalid' }));
  add(g, 'claim_rule_equals_case_sensitive_fails', 'custom:tenant "ACME" is not "acme"', () => ({ token: t({ 'custom:tenant': 'ACME' }), policy: eqAcme(), expect: 'claim_invalid' }));
  add(g, 'claim_rule_equals_missing_claim', 'no custom:tenant claim', () => ({ token: t(), policy: eqAcme(), expect: 'claim_missing' }));
  add(g, 'claim_rule_equals_array_is_not_string', 'custom:tenant ["acme"] is not JSON-equal to "acme"', () => ({ token: t({ 'custom:tenant': ['acme'] }), policy: eqAcme(), expect: 'claim_invalid' }));
  add(g, 'claim_rule_equals_number_is_not_string', 'custom:tier "2" is not JSON-equal to 2', () => ({ token: t({ 'custom:tier': '2' }), policy: rule({ claim: 'custom:tier', equals: 2 }), expect: 'claim_invalid' }));
  add(g, 'claim_rule_equals_number_passes', 'custom:tier 2 equals 2', () => ({ token: t({ 'custom:tier': 2 }), policy: rule({ claim: 'custom:tier', equals: 2 }), expect: 'accept' }));
  add(g, 'claim_rule_equals_object_ignores_member_order', 'objects are JSON-equal regardless of member order', () => ({ token: t({ 'custom:org': { region: 'eu', id: 'acme' } }), policy: rule({ claim: 'custom:org', equals: { id: 'acme', region: 'eu' } }), expect: 'accept' }));
  const oneOf = () => rule({ claim: 'custom:tenant', one_of: ['acme', 'globex'] });
  add(g, 'claim_rule_one_of_passes', 'custom:tenant "globex" is one of ["acme","globex"]', () => ({ token: t({ 'custom:tenant': 'globex' }), policy: oneOf(), expect: 'accept' }));
  add(g, 'claim_rule_one_of_fails', 'custom:tenant "initech" is not one of them', () => ({ token: t({ 'custom:tenant': 'initech' }), policy: oneOf(), expect: 'claim_invalid' }));
  add(g, 'claim_rule_one_of_missing_claim', 'no custom:tenant claim', () => ({ token: t(), policy: oneOf(), expect: 'claim_missing' }));
  const contains = () => rule({ claim: 'custom:tenant', contains: 'acme' });
  add(g, 'claim_rule_contains_in_space_separated_string_passes', 'custom:tenant "globex acme" contains "acme"', () => ({ token: t({ 'custom:tenant': 'globex acme' }), policy: contains(), expect: 'accept' }));
  add(g, 'claim_rule_contains_in_array_passes', 'custom:tenant ["globex","acme"] contains "acme"', () => ({ token: t({ 'custom:tenant': ['globex', 'acme'] }), policy: contains(), expect: 'accept' }));
  add(g, 'claim_rule_contains_substring_only_fails', 'custom:tenant "acme-evil" has "acme" only as a substring', () => ({ token: t({ 'custom:tenant': 'acme-evil' }), policy: contains(), expect: 'claim_invalid' }));
  add(g, 'claim_rule_contains_array_without_element_fails', 'custom:tenant ["globex","acme-evil"]', () => ({ token: t({ 'custom:tenant': ['globex', 'acme-evil'] }), policy: contains(), expect: 'claim_invalid' }));
  add(g, 'claim_rule_contains_on_number_fails', 'custom:tenant 7 is neither an array nor a string', () => ({ token: t({ 'custom:tenant': 7 }), policy: contains(), expect: 'claim_invalid' }));
  add(g, 'claim_rule_contains_missing_claim', 'no custom:tenant claim', () => ({ token: t(), policy: contains(), expect: 'claim_missing' }));
  add(g, 'claim_rules_all_must_pass', 'two rules: the first passes, the second fails', () => ({ token: t({ 'custom:tenant': 'acme', 'custom:tier': 'free' }), policy: P({ claims: [{ claim: 'custom:tenant', equals: 'acme' }, { claim: 'custom:tier', one_of: ['gold', 'silver'] }] }), expect: 'claim_invalid' }));
}

// ============================================================================ scopes
{
  const g = group('scopes', 'scope claim: space-split whole-element matching, all / any');
  const t = (over) => jwt(H(), C(over));
  const all = (...s) => P({ scopes: { all: s } });
  const any = (...s) => P({ scopes: { any: s } });

  add(g, 'scope_all_single_present_is_accepted', 'all ["orders/read"], token "orders/read orders/write"', () => ({ token: t(), policy: all('orders/read'), expect: 'accept' }));
  add(g, 'scope_all_both_present_is_accepted', 'all ["orders/write","orders/read"] (order irrelevant)', () => ({ token: t(), policy: all('orders/write', 'orders/read'), expect: 'accept' }));
  add(g, 'scope_all_one_missing_is_insufficient', 'all ["orders/read","orders/delete"]', () => ({ token: t(), policy: all('orders/read', 'orders/delete'), expect: 'scope_insufficient' }));
  add(g, 'scope_any_one_present_is_accepted', 'any ["orders/delete","orders/write"]', () => ({ token: t(), policy: any('orders/delete', 'orders/write'), expect: 'accept' }));
  add(g, 'scope_any_none_present_is_insufficient', 'any ["orders/delete","admin"]', () => ({ token: t(), policy: any('orders/delete', 'admin'), expect: 'scope_insufficient' }));
  add(g, 'scope_prefix_extension_is_insufficient', 'required "orders/read", token has "orders/readwrite"', () => ({ token: t({ scope: 'orders/readwrite' }), policy: all('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_truncated_is_insufficient', 'required "orders/read", token has "orders/rea"', () => ({ token: t({ scope: 'orders/rea' }), policy: all('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_with_leading_character_is_insufficient', 'required "orders/read", token has "xorders/read"', () => ({ token: t({ scope: 'xorders/read' }), policy: all('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_required_is_substring_of_granted_path_is_insufficient', 'required "orders/read", token has "orders/read/all"', () => ({ token: t({ scope: 'orders/read/all' }), policy: all('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_double_space_still_matches_whole_elements', '"orders/read  orders/write" splits to ["orders/read","","orders/write"]: both present', () => ({ token: t({ scope: 'orders/read  orders/write' }), policy: all('orders/read', 'orders/write'), expect: 'accept' }));
  add(g, 'scope_leading_and_trailing_spaces_are_accepted', '" orders/read " still has the element "orders/read"', () => ({ token: t({ scope: ' orders/read ' }), policy: all('orders/read'), expect: 'accept' }));
  add(g, 'scope_tab_separator_is_insufficient', '"orders/read\\torders/write" is one element', () => ({ token: t({ scope: 'orders/read\torders/write' }), policy: all('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_newline_separator_is_insufficient', '"orders/read\\norders/write" is one element', () => ({ token: t({ scope: 'orders/read\norders/write' }), policy: all('orders/write'), expect: 'scope_insufficient' }));
  add(g, 'scope_comma_separator_is_insufficient', '"orders/read,orders/write" is one element', () => ({ token: t({ scope: 'orders/read,orders/write' }), policy: all('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_case_differs_is_insufficient', 'required "orders/read", token has "Orders/Read"', () => ({ token: t({ scope: 'Orders/Read' }), policy: all('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_as_array_is_insufficient', 'scope ["orders/read","orders/write"] is not a string and grants nothing', () => ({ token: t({ scope: ['orders/read', 'orders/write'] }), policy: all('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_only_in_scp_string_is_insufficient', 'no scope, scp "orders/read": scp does not count', () => ({ token: t({ scope: DEL, scp: 'orders/read orders/write' }), policy: all('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_only_in_scp_array_is_insufficient', 'no scope, scp ["orders/read"]', () => ({ token: t({ scope: DEL, scp: ['orders/read'] }), policy: any('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_missing_is_insufficient', 'no scope claim, scopes required', () => ({ token: t({ scope: DEL }), policy: all('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_null_is_insufficient', 'scope: null grants nothing', () => ({ token: t({ scope: null }), policy: all('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_empty_string_is_insufficient', 'scope ""', () => ({ token: t({ scope: '' }), policy: any('orders/read'), expect: 'scope_insufficient' }));
  add(g, 'scope_duplicate_elements_are_accepted', 'scope "orders/read orders/read"', () => ({ token: t({ scope: 'orders/read orders/read' }), policy: all('orders/read'), expect: 'accept' }));
  add(g, 'scopes_all_empty_list_accepts_without_scope', '{"all":[]} requires nothing, even with no scope claim', () => ({ token: t({ scope: DEL }), policy: all(), expect: 'accept' }));
  add(g, 'scopes_null_policy_ignores_missing_scope', 'policy scopes null with no scope claim', () => ({ token: t({ scope: DEL }), expect: 'accept' }));
  add(g, 'scope_resource_server_url_form_is_accepted', 'Cognito resource-server scope "https://api.example.test/orders.read"', () => ({ token: t({ scope: 'https://api.example.test/orders.read' }), policy: all('https://api.example.test/orders.read'), expect: 'accept' }));
}

// ============================================================================ revocation
{
  const g = group('revocation', 'revocation lists: jti, client_ids, issued_before per client');
  const t = (over) => jwt(H(), C(over));
  const rev = (r, over = {}) => P(merge({ revocation: merge({ jti: [], client_ids: [], issued_before: {} }, r) }, over));
  const IAT = NOW - 60;

  add(g, 'revoked_jti_is_rejected', 'the token jti is in revocation.jti', () => ({ token: t(), policy: rev({ jti: [uuidFor('unrelated'), uuidFor(CUR)] }), expect: 'token_revoked' }));
  add(g, 'unrevoked_jti_is_accepted', 'revocation.jti lists other tokens only', () => ({ token: t(), policy: rev({ jti: [uuidFor('unrelated')] }), expect: 'accept' }));
  add(g, 'revocation_jti_without_jti_claim_is_accepted', 'revocation.jti is set but the token has no jti', () => ({ token: t({ jti: DEL }), policy: rev({ jti: [uuidFor('unrelated')] }), expect: 'accept' }));
  add(g, 'revoked_client_is_rejected', 'the token client_id is in revocation.client_ids', () => ({ token: t(), policy: rev({ client_ids: [CLIENT] }), expect: 'token_revoked' }));
  add(g, 'other_client_revoked_does_not_affect', 'revocation.client_ids lists another client only', () => ({ token: t(), policy: rev({ client_ids: [CLIENT2] }), expect: 'accept' }));
  add(g, 'revoked_client_with_client_ids_null_policy_is_rejected', 'client_ids null still honours revocation.client_ids', () => ({ token: t(), policy: rev({ client_ids: [CLIENT] }, { client_ids: null }), expect: 'token_revoked' }));
  add(g, 'issued_before_later_than_iat_is_revoked', 'issued_before = iat + 1: iat < T', () => ({ token: t(), policy: rev({ issued_before: { [CLIENT]: IAT + 1 } }), expect: 'token_revoked' }));
  add(g, 'issued_before_equal_to_iat_is_accepted', 'issued_before = iat: not strictly before', () => ({ token: t(), policy: rev({ issued_before: { [CLIENT]: IAT } }), expect: 'accept' }));
  add(g, 'issued_before_earlier_than_iat_is_accepted', 'issued_before = iat - 1', () => ({ token: t(), policy: rev({ issued_before: { [CLIENT]: IAT - 1 } }), expect: 'accept' }));
  add(g, 'issued_before_with_fractional_iat_just_below_is_revoked', 'iat = T - 0.5', () => ({ token: t({ iat: IAT - 0.5 }), policy: rev({ issued_before: { [CLIENT]: IAT } }), expect: 'token_revoked' }));
  add(g, 'issued_before_with_iat_missing_is_revoked', 'issued_before set for the client and the token has no iat', () => ({ token: t({ iat: DEL }), policy: rev({ issued_before: { [CLIENT]: IAT } }), expect: 'token_revoked' }));
  add(g, 'issued_before_for_other_client_is_accepted', 'issued_before set for another client only', () => ({ token: t(), policy: rev({ issued_before: { [CLIENT2]: NOW } }), expect: 'accept' }));
  add(g, 'empty_revocation_lists_are_accepted', 'revocation with three empty lists', () => ({ token: t(), policy: rev({}), expect: 'accept' }));
}

// ============================================================================ binding
{
  const g = group('binding', 'RFC 8705 certificate-bound tokens: cnf.x5t#S256 against the presented certificate');
  const THUMB_A = b64u(sha256('tokengate test client certificate A (stand-in for DER bytes)'));
  const THUMB_B = b64u(sha256('tokengate test client certificate B (stand-in for DER bytes)'));
  const t = (cnf) => jwt(H(), C(cnf === undefined ? {} : { cnf }));
  const mode = (m) => P({ mtls_binding: m });
  const ctx = (th) => ({ cert_thumbprint: th });

  add(g, 'binding_off_ignores_thumbprint_mismatch', 'mode off: cnf names certificate A, certificate B presented', () => ({ token: t({ 'x5t#S256': THUMB_A }), policy: mode('off'), context: ctx(THUMB_B), expect: 'accept' }));
  add(g, 'binding_off_ignores_missing_certificate', 'mode off: cnf present, no certificate presented', () => ({ token: t({ 'x5t#S256': THUMB_A }), policy: mode('off'), expect: 'accept' }));
  add(g, 'binding_default_mode_is_off', 'mtls_binding omitted (default off): cnf mismatch is ignored', () => ({ token: t({ 'x5t#S256': THUMB_A }), context: ctx(THUMB_B), expect: 'accept' }));
  add(g, 'binding_when_present_without_cnf_is_accepted', 'mode when_present: unbound token, certificate presented', () => ({ token: t(), policy: mode('when_present'), context: ctx(THUMB_A), expect: 'accept' }));
  add(g, 'binding_when_present_without_cnf_or_certificate_is_accepted', 'mode when_present: unbound token, no certificate', () => ({ token: t(), policy: mode('when_present'), expect: 'accept' }));
  add(g, 'binding_when_present_matching_is_accepted', 'mode when_present: cnf and certificate both A', () => ({ token: t({ 'x5t#S256': THUMB_A }), policy: mode('when_present'), context: ctx(THUMB_A), expect: 'accept' }));
  add(g, 'binding_when_present_mismatch_is_rejected', 'mode when_present: cnf A, certificate B', () => ({ token: t({ 'x5t#S256': THUMB_A }), policy: mode('when_present'), context: ctx(THUMB_B), expect: 'binding_mismatch' }));
  add(g, 'binding_when_present_without_certificate_is_rejected', 'mode when_present: cnf A, no certificate presented', () => ({ token: t({ 'x5t#S256': THUMB_A }), policy: mode('when_present'), expect: 'binding_mismatch' }));
  add(g, 'binding_when_present_with_empty_context_is_rejected', 'mode when_present: cnf A, context without cert_thumbprint', () => ({ token: t({ 'x5t#S256': THUMB_A }), policy: mode('when_present'), context: {}, expect: 'binding_mismatch' }));
  add(g, 'binding_when_present_cnf_without_x5t_is_accepted', 'mode when_present: cnf holds only a DPoP "jkt", no x5t#S256', () => ({ token: t({ jkt: b64u(sha256('dpop key')) }), policy: mode('when_present'), context: ctx(THUMB_A), expect: 'accept' }));
  add(g, 'binding_required_without_cnf_is_rejected', 'mode required: unbound token', () => ({ token: t(), policy: mode('required'), context: ctx(THUMB_A), expect: 'binding_mismatch' }));
  add(g, 'binding_required_with_empty_cnf_is_rejected', 'mode required: cnf {}', () => ({ token: t({}), policy: mode('required'), context: ctx(THUMB_A), expect: 'binding_mismatch' }));
  add(g, 'binding_required_with_sha1_x5t_only_is_rejected', 'mode required: cnf has "x5t" but not "x5t#S256"', () => ({ token: t({ x5t: b64u(sha1('cert')) }), policy: mode('required'), context: ctx(THUMB_A), expect: 'binding_mismatch' }));
  add(g, 'binding_required_matching_is_accepted', 'mode required: cnf and certificate both A', () => ({ token: t({ 'x5t#S256': THUMB_A }), policy: mode('required'), context: ctx(THUMB_A), expect: 'accept' }));
  add(g, 'binding_required_mismatch_is_rejected', 'mode required: cnf A, certificate B', () => ({ token: t({ 'x5t#S256': THUMB_A }), policy: mode('required'), context: ctx(THUMB_B), expect: 'binding_mismatch' }));
  add(g, 'binding_required_without_certificate_is_rejected', 'mode required: cnf A, no certificate presented', () => ({ token: t({ 'x5t#S256': THUMB_A }), policy: mode('required'), expect: 'binding_mismatch' }));
  add(g, 'binding_required_padded_thumbprint_is_rejected', 'cnf thumbprint with "=" padding is not byte-equal', () => ({ token: t({ 'x5t#S256': THUMB_A + '=' }), policy: mode('required'), context: ctx(THUMB_A), expect: 'binding_mismatch' }));
  add(g, 'binding_required_hex_thumbprint_is_rejected', 'cnf thumbprint as hex of the same hash is not byte-equal', () => ({ token: t({ 'x5t#S256': Buffer.from(THUMB_A, 'base64url').toString('hex') }), policy: mode('required'), context: ctx(THUMB_A), expect: 'binding_mismatch' }));
  add(g, 'binding_required_case_changed_thumbprint_is_rejected', 'cnf thumbprint with one letter case-swapped', () => ({ token: t({ 'x5t#S256': swapCase(THUMB_A) }), policy: mode('required'), context: ctx(THUMB_A), expect: 'binding_mismatch' }));
  add(g, 'binding_x5t_number_is_rejected', 'mode when_present: cnf.x5t#S256 is a number', () => ({ token: t({ 'x5t#S256': 12345 }), policy: mode('when_present'), context: ctx(THUMB_A), expect: 'binding_mismatch' }));
  add(g, 'cnf_string_is_claim_invalid', 'mode required: cnf is a string', () => ({ token: t(THUMB_A), policy: mode('required'), context: ctx(THUMB_A), expect: 'claim_invalid' }));
  add(g, 'cnf_array_is_claim_invalid', 'mode when_present: cnf is an array', () => ({ token: t([{ 'x5t#S256': THUMB_A }]), policy: mode('when_present'), context: ctx(THUMB_A), expect: 'claim_invalid' }));
  add(g, 'cnf_null_is_claim_invalid', 'mode when_present: cnf null is present but not an object', () => ({ token: t(null), policy: mode('when_present'), context: ctx(THUMB_A), expect: 'claim_invalid' }));
  add(g, 'cnf_string_with_binding_off_is_ignored', 'mode off: cnf is not examined at all', () => ({ token: t(THUMB_A), policy: mode('off'), expect: 'accept' }));
}
// ============================================================================ size
{
  const g = group('size', 'max_token_bytes (default 16384): larger tokens are refused before any parsing');
  add(g, 'token_of_8192_bytes_is_accepted', 'an 8 KiB token grown by a long custom claim, default limit', () => ({ token: tokenOfLength(8192, C()), expect: 'accept' }));
  add(g, 'token_of_16384_bytes_is_accepted', 'exactly the default limit', () => ({ token: tokenOfLength(16384, C()), expect: 'accept' }));
  add(g, 'token_of_16385_bytes_is_too_large', 'one byte over the default limit (otherwise valid)', () => ({ token: tokenOfLength(16385, C()), expect: 'token_too_large' }));
  add(g, 'token_of_1_mib_is_too_large', 'a 1 MiB token (otherwise valid)', () => ({ token: tokenOfLength(1048576, C()), expect: 'token_too_large' }));
  add(g, 'token_of_4096_bytes_with_limit_4096_is_accepted', 'max_token_bytes 4096, token exactly 4096', () => ({ token: tokenOfLength(4096, C()), policy: P({ max_token_bytes: 4096 }), expect: 'accept' }));
  add(g, 'token_of_4097_bytes_with_limit_4096_is_too_large', 'max_token_bytes 4096, token 4097', () => ({ token: tokenOfLength(4097, C()), policy: P({ max_token_bytes: 4096 }), expect: 'token_too_large' }));
  add(g, 'ordinary_token_over_small_limit_is_too_large', 'max_token_bytes 256 refuses an ordinary Cognito token', () => ({ token: jwt(H(), C()), policy: P({ max_token_bytes: 256 }), expect: 'token_too_large' }));
  add(g, 'oversized_garbage_is_too_large_not_malformed', '20000 "!" characters: size is checked before syntax', () => ({ token: '!'.repeat(20000), expect: 'token_too_large' }));
  add(g, 'oversized_expired_token_is_too_large', 'an expired 16385-byte token: size is checked first', () => ({ token: tokenOfLength(16385, C({ exp: NOW - 3600 })), expect: 'token_too_large' }));
}

// ============================================================================ accept
{
  const g = group('accept', 'Tokens every host must accept, with the claims it must return');
  add(g, 'cognito_rs256_access_token_is_accepted', 'plain Cognito client-credentials access token', () => {
    const c = C();
    return { token: jwt(H(), c), policy: P({ scopes: { all: ['orders/read'] } }), expect: 'accept', expect_claims: c };
  });
  add(g, 'cognito_alternate_issuer_form_is_accepted', 'iss in the issuer-cognito-idp form, listed in the policy', () => {
    const c = C({ iss: ISS_ALT });
    return { token: jwt(H(), c), policy: P({ issuers: [ISS, ISS_ALT] }), expect: 'accept', expect_claims: { iss: ISS_ALT, client_id: CLIENT } };
  });
  add(g, 'rotation_old_key_is_accepted', 'JWKS lists rsa-a and rsa-b; token by rsa-a', () => ({ token: jwt(H('rsa-a'), C(), 'rsa-a'), jwks: JWKS('rsa-a', 'rsa-b'), expect: 'accept', expect_claims: { client_id: CLIENT } }));
  add(g, 'rotation_new_key_is_accepted', 'JWKS lists rsa-a and rsa-b; token by rsa-b', () => ({ token: jwt(H('rsa-b'), C(), 'rsa-b'), jwks: JWKS('rsa-a', 'rsa-b'), expect: 'accept', expect_claims: { client_id: CLIENT } }));
  add(g, 'rotation_key_order_is_irrelevant', 'JWKS lists rsa-b first; token by rsa-a', () => ({ token: jwt(H('rsa-a'), C(), 'rsa-a'), jwks: JWKS('rsa-b', 'rsa-a'), expect: 'accept' }));
  add(g, 'cognito_kid_with_plus_slash_and_padding_is_matched', `kid "${KA}" contains "+", "/" and "=" and is matched byte for byte`, () => ({ token: jwt(H(), C()), jwks: JWKS('rsa-b', 'rsa-a'), expect: 'accept' }));
  add(g, 'es256_generic_issuer_with_audience_is_accepted', 'ES256 token of a generic issuer, aud string, audience policy', () => {
    const c = E();
    return { token: jwt(H('ec-a'), c, 'ec-a'), jwks: JWKS_ES(), policy: PES(), expect: 'accept', expect_claims: c };
  });
  add(g, 'es256_second_key_with_audience_array_is_accepted', 'ES256 by ec-b, aud array containing the audience', () => ({ token: jwt(H('ec-b'), E({ aud: ['https://other.example.test', AUD_ES] }), 'ec-b'), jwks: JWKS_ES(), policy: PES(), expect: 'accept', expect_claims: { aud: ['https://other.example.test', AUD_ES] } }));
  add(g, 'multi_algorithm_policy_accepts_rs256', 'algorithms ["RS256","ES256"], RSA and EC keys listed, RS256 token', () => ({ token: jwt(H(), C()), jwks: JWKS('rsa-a', 'ec-a'), policy: P({ algorithms: ['RS256', 'ES256'] }), expect: 'accept' }));
  add(g, 'multi_algorithm_policy_accepts_es256', 'algorithms ["RS256","ES256"], RSA and EC keys listed, ES256 token with Cognito claims', () => ({ token: jwt(H('ec-a'), C(), 'ec-a'), jwks: JWKS('rsa-a', 'ec-a'), policy: P({ algorithms: ['RS256', 'ES256'] }), expect: 'accept', expect_claims: { client_id: CLIENT, token_use: 'access' } }));
  add(g, 'extra_claims_are_kept', 'unknown, nested and array claims pass through unchanged', () => {
    const extra = { 'custom:tenant': 'acme', 'custom:roles': ['reader', 'auditor'], 'custom:meta': { region: 'eu', tier: 3, flags: [true, null] }, 'x-unicode': 'Zürich ☃' };
    const c = C(extra);
    return { token: jwt(H(), c), expect: 'accept', expect_claims: extra };
  });
  add(g, 'all_policy_features_together_are_accepted', 'scopes, audience, max age, claim rule, revocation lists and required binding all satisfied', () => {
    const th = b64u(sha256('tokengate test client certificate A (stand-in for DER bytes)'));
    const c = C({ aud: 'api://orders', 'custom:tenant': 'acme', cnf: { 'x5t#S256': th } });
    return {
      token: jwt(H(), c),
      policy: P({ scopes: { all: ['orders/read', 'orders/write'] }, leeway_s: 30, audience: ['api://orders'], max_token_age_s: 300, claims: [{ claim: 'custom:tenant', equals: 'acme' }], revocation: { jti: [uuidFor('other')], client_ids: [CLIENT2], issued_before: { [CLIENT]: NOW - 3600 } }, mtls_binding: 'required', min_rsa_bits: 2048, max_token_bytes: 8192 }),
      context: { cert_thumbprint: th },
      expect: 'accept',
      expect_claims: { cnf: { 'x5t#S256': th }, 'custom:tenant': 'acme' },
    };
  });
  add(g, 'minimal_claims_are_accepted', 'only iss, exp, token_use and client_id', () => {
    const c = { iss: ISS, exp: NOW + 60, token_use: 'access', client_id: CLIENT };
    return { token: jwt(H(), c), expect: 'accept', expect_claims: c };
  });
}

// ============================================================================ attacks
{
  const g = group('attacks', 'Classic JWT attacks, collected explicitly');
  const spkiPem = PUB['rsa-a'].export({ type: 'spki', format: 'pem' });
  const spkiDer = PUB['rsa-a'].export({ type: 'spki', format: 'der' });
  const pkcs1Pem = PUB['rsa-a'].export({ type: 'pkcs1', format: 'pem' });
  const hs256With = (secret) => (i) => hmac('HS256', secret, i);

  add(g, 'hs256_keyed_with_public_key_pem_is_not_allowed', 'RS256->HS256 confusion: HMAC-SHA256 keyed with the SPKI PEM of rsa-a, alg HS256', () => ({ token: jwt(H('rsa-a', { alg: 'HS256' }), C(), hs256With(spkiPem)), expect: 'alg_not_allowed' }));
  add(g, 'hs256_keyed_with_public_key_der_is_not_allowed', 'RS256->HS256 confusion: HMAC keyed with the SPKI DER of rsa-a', () => ({ token: jwt(H('rsa-a', { alg: 'HS256' }), C(), hs256With(spkiDer)), expect: 'alg_not_allowed' }));
  add(g, 'hs256_keyed_with_pkcs1_pem_is_not_allowed', 'RS256->HS256 confusion: HMAC keyed with the PKCS#1 PEM of rsa-a', () => ({ token: jwt(H('rsa-a', { alg: 'HS256' }), C(), hs256With(pkcs1Pem)), expect: 'alg_not_allowed' }));
  add(g, 'hs256_confusion_without_kid_is_not_allowed', 'HS256 with no kid: alg is checked before kid', () => ({ token: jwt(H('rsa-a', { alg: 'HS256', kid: DEL }), C(), hs256With(spkiPem)), expect: 'alg_not_allowed' }));
  add(g, 'hmac_bytes_under_rs256_header_are_invalid', 'header says RS256 but the signature is HMAC-SHA256 keyed with the PEM public key (32 octets)', () => ({ token: jwt(H(), C(), hs256With(spkiPem)), expect: 'signature_invalid' }));
  add(g, 'hmac_der_bytes_under_rs256_header_are_invalid', 'header says RS256 but the signature is HMAC-SHA256 keyed with the DER public key', () => ({ token: jwt(H(), C(), hs256With(spkiDer)), expect: 'signature_invalid' }));
  add(g, 'alg_none_with_empty_signature_is_malformed', 'the classic unsigned token "header.payload." : the empty signature segment fails syntax first', () => {
    const hs = enc({ alg: 'none' });
    return { token: `${hs}.${enc(C())}.`, expect: 'token_malformed' };
  });
  add(g, 'alg_none_with_kid_and_junk_signature_is_not_allowed', 'alg none, real kid, a non-empty junk signature', () => ({ token: jwt({ kid: KA, alg: 'none' }, C(), () => Buffer.from('unsigned')), expect: 'alg_not_allowed' }));
  add(g, 'alg_none_with_real_signature_is_not_allowed', 'alg none carrying a genuine RS256 signature of the same input', () => ({ token: jwt({ kid: KA, alg: 'none' }, C(), { alg: 'RS256', key: 'rsa-a' }), expect: 'alg_not_allowed' }));
  add(g, 'embedded_jwk_with_attacker_kid_is_unknown', 'header jwk = attacker key, kid = attacker kid, signed by the attacker', () => ({ token: jwt(H('attacker-rsa', { jwk: pub('attacker-rsa') }), C(), 'attacker-rsa'), expect: 'kid_unknown' }));
  add(g, 'embedded_jwk_with_real_kid_is_invalid', 'header jwk = attacker key relabelled with the real kid, signed by the attacker', () => ({ token: jwt(H('rsa-a', { jwk: pub('attacker-rsa', { kid: KA }) }), C(), 'attacker-rsa'), expect: 'signature_invalid' }));
  add(g, 'jku_to_attacker_jwks_with_attacker_kid_is_unknown', 'header jku = attacker JWKS URL, kid = attacker kid', () => ({ token: jwt(H('attacker-rsa', { jku: 'https://evil.example/.well-known/jwks.json' }), C(), 'attacker-rsa'), expect: 'kid_unknown' }));
  add(g, 'x5c_attacker_chain_with_real_kid_is_invalid', 'header x5c = attacker chain, real kid, signed by the attacker', () => ({ token: jwt(H('rsa-a', { x5c: [b64std(PUB['attacker-rsa'].export({ type: 'spki', format: 'der' }))] }), C(), 'attacker-rsa'), expect: 'signature_invalid' }));
  add(g, 'kid_path_traversal_is_unknown', 'kid "../../../../dev/null"', () => ({ token: jwt(H('rsa-a', { kid: '../../../../dev/null' }), C(), 'attacker-rsa'), expect: 'kid_unknown' }));
  add(g, 'kid_sql_injection_is_unknown', 'kid "x\' UNION SELECT \'key\' --"', () => ({ token: jwt(H('rsa-a', { kid: "x' UNION SELECT 'key' --" }), C(), 'attacker-rsa'), expect: 'kid_unknown' }));
  add(g, 'psychic_signature_es256_is_invalid', 'CVE-2022-21449: ES256 with r = s = 0', () => {
    const t = esTok();
    return { token: splitTok(t).slice(0, 2).join('.') + '.' + b64u(Buffer.alloc(64)), policy: PES(), jwks: JWKS_ES(), expect: 'signature_invalid' };
  });
  add(g, 'rsa_e1_forgery_is_unusable', 'JWK with the rsa-a modulus and e = 1; the "signature" is the padded PKCS#1 block itself', () => {
    const { k } = rsaParts('rsa-a');
    return { token: signSegs(enc(H()), enc(C()), (i) => emBlock(k, Buffer.concat([DI_SHA256, sha256(Buffer.from(i))]))), jwks: JWKS(pub('rsa-a', { e: 'AQ' })), expect: 'key_unusable' };
  });
  add(g, 'key_confusion_es256_header_with_rsa_kid_is_unusable', 'alg ES256 under the kid of an RSA key, both algorithms allowed', () => ({ token: jwt(H('rsa-a', { alg: 'ES256' }), C(), 'ec-a'), jwks: JWKS('rsa-a', 'ec-a'), policy: P({ algorithms: ['RS256', 'ES256'] }), expect: 'key_unusable' }));
  const adminP = () => P({ scopes: { all: ['orders/admin'] } });
  for (const [nm, scope, desc] of [
    ['comma', 'orders/read,orders/admin', 'comma-joined'],
    ['plus', 'orders/read+orders/admin', 'URL form-encoded "+"'],
    ['percent_20', 'orders/read%20orders/admin', 'percent-encoded space'],
    ['newline', 'orders/read\norders/admin', 'newline-joined'],
    ['concatenated', 'orders/readorders/admin', 'concatenated without separator'],
  ]) {
    add(g, `scope_injection_${nm}_is_insufficient`, `required "orders/admin"; token scope "${scope.replace('\n', '\\n')}" (${desc})`, () => ({ token: jwt(H(), C({ scope })), policy: adminP(), expect: 'scope_insufficient' }));
  }
  add(g, 'scope_injection_via_scp_array_is_insufficient', 'required "orders/admin"; scope "orders/read" plus scp ["orders/admin"]', () => ({ token: jwt(H(), C({ scope: 'orders/read', scp: ['orders/admin'] })), policy: adminP(), expect: 'scope_insufficient' }));
  add(g, 'scope_injection_via_duplicate_member_is_malformed', 'payload {"scope":"orders/read",…,"scope":"orders/admin"}', () => ({ token: jwt(H(), rawJson(C({ scope: 'orders/read' }), ',"scope":"orders/admin"')), policy: adminP(), expect: 'token_malformed' }));
  for (const [nm, iss] of [
    ['suffix_domain', 'https://cognito-idp.eu-west-1.amazonaws.com.evil.example/eu-west-1_TEST0pool'],
    ['embedded_in_path', 'https://evil.example/https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST0pool'],
    ['userinfo', 'https://cognito-idp.eu-west-1.amazonaws.com@evil.example/eu-west-1_TEST0pool'],
    ['dot_segments', ISS + '/../eu-west-1_EVIL0pool'],
    ['prefix', ISS.slice(0, -1)],
  ]) {
    add(g, `issuer_lookalike_${nm}_is_mismatch`, `iss "${iss}"`, () => ({ token: jwt(H(), C({ iss })), expect: 'issuer_mismatch' }));
  }
  add(g, 'issuer_of_another_trusted_pool_is_mismatch', 'a genuine token of another pool signed by a key the JWKS trusts', () => ({ token: jwt(H(), C({ iss: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_OTHERpool' })), expect: 'issuer_mismatch' }));
  add(g, 'id_token_replayed_as_access_token_is_mismatch', 'an ID token (aud = client, no client_id) presented where access tokens are expected', () => ({ token: jwt(H(), C({ token_use: 'id', client_id: DEL, aud: CLIENT, scope: DEL })), expect: 'token_use_mismatch' }));
}

// ============================================================================ order
{
  const g = group('order', 'First failure wins: each case fails two checks and expects the earlier one');
  const t = (over) => jwt(H(), C(over));
  add(g, 'too_large_beats_malformed', '20000 dots', () => ({ token: '.'.repeat(20000), expect: 'token_too_large' }));
  add(g, 'malformed_payload_base64_beats_alg_none', 'alg none and a payload segment with "*" in it', () => ({ token: `${enc({ alg: 'none' })}.${enc(C()).replace(/^(.{4})./, '$1*')}.${b64u('x')}`, expect: 'token_malformed' }));
  add(g, 'malformed_header_json_beats_bad_signature', 'header not JSON and signature of something else', () => ({ token: `${b64u('not json')}.${enc(C())}.${b64u(Buffer.alloc(256, 1))}`, expect: 'token_malformed' }));
  add(g, 'alg_not_allowed_beats_crit', 'alg HS256 with crit present', () => ({ token: jwt(H('rsa-a', { alg: 'HS256', crit: ['exp'] }), C(), (i) => hmac('HS256', HMAC_SECRET, i)), expect: 'alg_not_allowed' }));
  add(g, 'alg_not_allowed_beats_unknown_kid', 'alg none with a kid no JWK has', () => ({ token: jwt(H('rsa-a', { alg: 'none', kid: 'nope' }), C(), { alg: 'RS256', key: 'rsa-a' }), expect: 'alg_not_allowed' }));
  add(g, 'header_unsupported_beats_missing_kid', 'crit present and no kid', () => ({ token: jwt(H('rsa-a', { kid: DEL, crit: ['exp'] }), C()), expect: 'header_unsupported' }));
  add(g, 'header_unsupported_beats_unknown_kid', 'b64 false and an unknown kid', () => ({ token: jwt(H('rsa-a', { kid: 'nope', b64: false }), C()), expect: 'header_unsupported' }));
  add(g, 'kid_unknown_beats_bad_signature', 'unknown kid and an all-zero signature', () => ({ token: `${enc(H('rsa-a', { kid: 'nope' }))}.${enc(C())}.${b64u(Buffer.alloc(256))}`, expect: 'kid_unknown' }));
  add(g, 'key_unusable_beats_bad_signature', 'use enc key and a signature by another key', () => ({ token: jwt(H(), C(), 'attacker-rsa'), jwks: JWKS(pub('rsa-a', { use: 'enc' })), expect: 'key_unusable' }));
  add(g, 'signature_invalid_beats_malformed_payload', 'payload not JSON and signature of another input: the payload is parsed only after the signature', () => {
    const hs = enc(H());
    return { token: `${hs}.${b64u('not json')}.${b64u(signWith('RS256', 'rsa-a', hs + '.' + enc(C())))}`, expect: 'signature_invalid' };
  });
  add(g, 'signature_invalid_beats_expired', 'expired token with a tampered signature', () => {
    const [h, p, s] = splitTok(t({ exp: NOW - 3600 }));
    const sig = Buffer.from(s, 'base64url');
    sig[100] ^= 1;
    return { token: `${h}.${p}.${b64u(sig)}`, expect: 'signature_invalid' };
  });
  add(g, 'malformed_payload_beats_expired', 'duplicate iat and exp in the past', () => ({ token: jwt(H(), rawJson(C({ exp: NOW - 10 }), `,"iat":${NOW - 60}`)), expect: 'token_malformed' }));
  add(g, 'exp_missing_beats_nbf_invalid', 'no exp and nbf a string', () => ({ token: t({ exp: DEL, nbf: 'soon' }), expect: 'claim_missing' }));
  add(g, 'nbf_invalid_beats_expired', 'nbf a string and exp in the past', () => ({ token: t({ exp: NOW - 10, nbf: 'soon' }), expect: 'claim_invalid' }));
  add(g, 'expired_beats_not_yet_valid', 'exp in the past and nbf in the future', () => ({ token: t({ exp: NOW - 10, nbf: NOW + 10 }), expect: 'token_expired' }));
  add(g, 'not_yet_valid_beats_issued_in_future', 'nbf and iat both in the future', () => ({ token: t({ nbf: NOW + 10, iat: NOW + 10 }), expect: 'token_not_yet_valid' }));
  add(g, 'issued_in_future_beats_max_age_missing_iat', 'iat in the future with max age set', () => ({ token: t({ iat: NOW + 10 }), policy: P({ max_token_age_s: 300 }), expect: 'token_issued_in_future' }));
  add(g, 'expired_beats_issuer_mismatch', 'exp in the past and a foreign issuer', () => ({ token: t({ exp: NOW - 10, iss: 'https://evil.example' }), expect: 'token_expired' }));
  add(g, 'issuer_mismatch_beats_token_use_mismatch', 'foreign issuer and token_use id', () => ({ token: t({ iss: 'https://evil.example', token_use: 'id' }), expect: 'issuer_mismatch' }));
  add(g, 'token_use_mismatch_beats_client_not_allowed', 'token_use id and a foreign client', () => ({ token: t({ token_use: 'id', client_id: CLIENT2 }), expect: 'token_use_mismatch' }));
  add(g, 'client_not_allowed_beats_audience_mismatch', 'foreign client and foreign audience', () => ({ token: t({ client_id: CLIENT2, aud: 'api://billing' }), policy: P({ audience: ['api://orders'] }), expect: 'client_not_allowed' }));
  add(g, 'client_not_allowed_beats_revoked', 'foreign client that is also revoked', () => ({ token: t({ client_id: CLIENT2 }), policy: P({ revocation: { jti: [], client_ids: [CLIENT2], issued_before: {} } }), expect: 'client_not_allowed' }));
  add(g, 'audience_mismatch_beats_revoked', 'foreign audience and a revoked jti', () => ({ token: t({ aud: 'api://billing' }), policy: P({ audience: ['api://orders'], revocation: { jti: [uuidFor(CUR)], client_ids: [], issued_before: {} } }), expect: 'audience_mismatch' }));
  add(g, 'revoked_beats_binding_mismatch', 'revoked client and a certificate mismatch', () => ({ token: t({ cnf: { 'x5t#S256': b64u(sha256('a')) } }), policy: P({ mtls_binding: 'required', revocation: { jti: [], client_ids: [CLIENT], issued_before: {} } }), context: { cert_thumbprint: b64u(sha256('b')) }, expect: 'token_revoked' }));
  add(g, 'binding_mismatch_beats_scope_insufficient', 'certificate mismatch and missing scope', () => ({ token: t({ cnf: { 'x5t#S256': b64u(sha256('a')) } }), policy: P({ mtls_binding: 'required', scopes: { all: ['orders/admin'] } }), context: { cert_thumbprint: b64u(sha256('b')) }, expect: 'binding_mismatch' }));
  add(g, 'cnf_invalid_beats_scope_insufficient', 'cnf a string and missing scope', () => ({ token: t({ cnf: 'x' }), policy: P({ mtls_binding: 'when_present', scopes: { all: ['orders/admin'] } }), expect: 'claim_invalid' }));
  add(g, 'scope_insufficient_beats_claim_rule', 'missing scope and a failing claim rule', () => ({ token: t({ 'custom:tenant': 'globex' }), policy: P({ scopes: { all: ['orders/admin'] }, claims: [{ claim: 'custom:tenant', equals: 'acme' }] }), expect: 'scope_insufficient' }));
  add(g, 'scope_insufficient_beats_missing_rule_claim', 'missing scope and a claim rule on an absent claim', () => ({ token: t(), policy: P({ scopes: { any: ['orders/admin'] }, claims: [{ claim: 'custom:tenant', one_of: ['acme'] }] }), expect: 'scope_insufficient' }));
}
// ---------------------------------------------------------------------------------------------
// Self-check 1: an independent reference model of the README pipeline
// ---------------------------------------------------------------------------------------------

// Strict JSON (RFC 8259) parser that also reports duplicate member names at the top level.
function parseJsonStrict(text) {
  let i = 0;
  let dupTop = false;
  const fail = () => { throw new SyntaxError('json'); };
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  function str() {
    i++;
    let out = '';
    for (;;) {
      const c = text[i++];
      if (c === undefined) fail();
      if (c === '"') return out;
      if (c === '\\') {
        const e = text[i++];
        const simple = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (has(simple, e)) out += simple[e];
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i, i + 4))) { out += String.fromCharCode(parseInt(text.slice(i, i + 4), 16)); i += 4; } else fail();
      } else {
        if (c.charCodeAt(0) < 0x20) fail();
        out += c;
      }
    }
  }
  function val(depth) {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o = {};
      const seen = new Set();
      ws();
      if (text[i] === '}') { i++; return o; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        const k = str();
        ws();
        if (text[i++] !== ':') fail();
        const v = val(depth + 1);
        if (seen.has(k) && depth === 0) dupTop = true;
        seen.add(k);
        Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return o; }
        fail();
      }
    }
    if (c === '[') {
      i++;
      const a = [];
      ws();
      if (text[i] === ']') { i++; return a; }
      for (;;) {
        a.push(val(depth + 1));
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return a; }
        fail();
      }
    }
    if (c === '"') return str();
    for (const [lit, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(lit, i)) { i += lit.length; return v; }
    }
    const m = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
    m.lastIndex = i;
    const r = m.exec(text);
    if (!r || r[0] === '' || r[0] === '-') fail();
    i += r[0].length;
    return Number(r[0]);
  }
  const v = val(0);
  ws();
  if (i !== text.length) fail();
  return { value: v, dupTop };
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// UTF-8 (fatal, BOM kept so that it fails JSON) -> JSON object without top-level duplicates, or null.
function jsonObject(bytes) {
  let text;
  try { text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes); } catch { return null; }
  try {
    const { value, dupTop } = parseJsonStrict(text);
    return isObj(value) && !dupTop ? value : null;
  } catch { return null; }
}

function jsonEqual(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isObj(a) || isObj(b)) {
    if (!isObj(a) || !isObj(b)) return false;
    const ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => has(b, k) && jsonEqual(a[k], b[k]));
  }
  return a === b;
}

const P256 = {
  p: BigInt('0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff'),
  b: BigInt('0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b'),
  n: BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'),
};

function usableKey(jwk, alg, minBits) {
  if (has(jwk, 'alg') && jwk.alg !== alg) return null;
  if (has(jwk, 'use') && jwk.use !== 'sig') return null;
  if (alg === 'RS256') {
    if (jwk.kty !== 'RSA') return null;
    const n = b64uDecodeStrict(jwk.n), e = b64uDecodeStrict(jwk.e);
    if (!n || !e) return null;
    const N = bn(n), Ev = bn(e);
    if (Ev < 3n || Ev % 2n === 0n || bitLen(N) < minBits || bitLen(N) > 8192) return null;
    return { alg, n: N, e: Ev, k: Math.ceil(bitLen(N) / 8) };
  }
  if (alg === 'ES256') {
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') return null;
    const x = b64uDecodeStrict(jwk.x), y = b64uDecodeStrict(jwk.y);
    if (!x || !y || x.length !== 32 || y.length !== 32) return null;
    const X = bn(x), Y = bn(y), { p, b } = P256;
    if (X >= p || Y >= p || (Y * Y - (X * X * X - 3n * X + b)) % p !== 0n) return null;
    return { alg, jwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } };
  }
  return null;
}

function verifySig(key, input, sig) {
  if (key.alg === 'RS256') {
    if (sig.length !== key.k) return false;
    const s = bn(sig);
    if (s >= key.n) return false;
    const em = bnBuf(modPow(s, key.e, key.n), key.k);
    return em.equals(emBlock(key.k, Buffer.concat([DI_SHA256, sha256(input)])));
  }
  if (sig.length !== 64) return false;
  const r = bn(sig.subarray(0, 32)), s = bn(sig.subarray(32));
  if (r < 1n || s < 1n || r >= P256.n || s >= P256.n) return false;
  return crypto.verify('sha256', input, { key: crypto.createPublicKey({ key: key.jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, sig);
}

function refVerify(c) {
  const { token: t, policy: P_, now } = c;
  const ctx = c.context ?? {};
  if (t.length === 0) return 'token_missing';
  if (Buffer.byteLength(t, 'utf8') > (P_.max_token_bytes ?? 16384)) return 'token_too_large';
  const parts = t.split('.');
  if (parts.length !== 3) return 'token_malformed';
  const dec = parts.map(b64uDecodeStrict);
  if (dec.some((d) => d === null) || dec[2].length === 0) return 'token_malformed';
  const hdr = jsonObject(dec[0]);
  if (!hdr) return 'token_malformed';
  if (!has(hdr, 'alg') || typeof hdr.alg !== 'string') return 'token_malformed';
  if (!(P_.algorithms ?? ['RS256']).includes(hdr.alg)) return 'alg_not_allowed';
  if (has(hdr, 'crit') || has(hdr, 'b64')) return 'header_unsupported';
  if (!has(hdr, 'kid') || typeof hdr.kid !== 'string') return 'kid_missing';
  const matches = (c.jwks.keys ?? []).filter((k) => isObj(k) && k.kid === hdr.kid);
  if (matches.length === 0) return 'kid_unknown';
  const key = matches.length === 1 ? usableKey(matches[0], hdr.alg, P_.min_rsa_bits ?? 2048) : null;
  if (!key) return 'key_unusable';
  if (!verifySig(key, Buffer.from(parts[0] + '.' + parts[1], 'ascii'), dec[2])) return 'signature_invalid';
  const cl = jsonObject(dec[1]);
  if (!cl) return 'token_malformed';
  // time
  const L = P_.leeway_s ?? 0;
  if (!has(cl, 'exp')) return 'claim_missing';
  for (const f of ['exp', 'nbf', 'iat']) if (has(cl, f) && typeof cl[f] !== 'number') return 'claim_invalid';
  if (now >= cl.exp + L) return 'token_expired';
  if (has(cl, 'nbf') && cl.nbf > now + L) return 'token_not_yet_valid';
  if (has(cl, 'iat') && cl.iat > now + L) return 'token_issued_in_future';
  if (P_.max_token_age_s != null) {
    if (!has(cl, 'iat')) return 'claim_missing';
    if (now - cl.iat > P_.max_token_age_s + L) return 'token_expired';
  }
  // issuer
  if (!has(cl, 'iss')) return 'claim_missing';
  if (typeof cl.iss !== 'string') return 'claim_invalid';
  if (!P_.issuers.includes(cl.iss)) return 'issuer_mismatch';
  // token_use
  const tu = has(P_, 'token_use') ? P_.token_use : 'access';
  if (tu !== null) {
    if (!has(cl, 'token_use')) return 'claim_missing';
    if (cl.token_use !== tu) return 'token_use_mismatch';
  }
  // client_id, audience
  if (P_.client_ids !== null) {
    if (!has(cl, 'client_id')) return 'claim_missing';
    if (typeof cl.client_id !== 'string') return 'claim_invalid';
    if (!P_.client_ids.includes(cl.client_id)) return 'client_not_allowed';
  }
  if (P_.audience != null) {
    if (!has(cl, 'aud')) return 'claim_missing';
    const auds = Array.isArray(cl.aud) ? cl.aud : [cl.aud];
    if (!auds.some((a) => typeof a === 'string' && P_.audience.includes(a))) return 'audience_mismatch';
  }
  // revocation
  const rv = P_.revocation ?? {};
  const cid = typeof cl.client_id === 'string' ? cl.client_id : undefined;
  if (has(cl, 'jti') && (rv.jti ?? []).includes(cl.jti)) return 'token_revoked';
  if (cid !== undefined && (rv.client_ids ?? []).includes(cid)) return 'token_revoked';
  if (cid !== undefined && rv.issued_before && has(rv.issued_before, cid) && (!has(cl, 'iat') || cl.iat < rv.issued_before[cid])) return 'token_revoked';
  // mTLS binding
  const mode = P_.mtls_binding ?? 'off';
  if (mode !== 'off' && has(cl, 'cnf') && !isObj(cl.cnf)) return 'claim_invalid';
  const x5t = has(cl, 'cnf') && has(cl.cnf, 'x5t#S256') ? cl.cnf['x5t#S256'] : undefined;
  if (mode === 'required' && x5t === undefined) return 'binding_mismatch';
  if (mode !== 'off' && x5t !== undefined && (typeof ctx.cert_thumbprint !== 'string' || x5t !== ctx.cert_thumbprint)) return 'binding_mismatch';
  // scopes
  if (P_.scopes != null) {
    const granted = typeof cl.scope === 'string' ? cl.scope.split(' ') : [];
    const ok = has(P_.scopes, 'all') ? P_.scopes.all.every((s) => granted.includes(s)) : P_.scopes.any.some((s) => granted.includes(s));
    if (!ok) return 'scope_insufficient';
  }
  // claim rules
  for (const r of P_.claims ?? []) {
    if (!has(cl, r.claim)) return 'claim_missing';
    const v = cl[r.claim];
    let ok;
    if (has(r, 'equals')) ok = jsonEqual(v, r.equals);
    else if (has(r, 'one_of')) ok = r.one_of.some((x) => jsonEqual(v, x));
    else ok = Array.isArray(v) ? v.some((x) => x === r.contains) : typeof v === 'string' && v.split(' ').includes(r.contains);
    if (!ok) return 'claim_invalid';
  }
  return 'accept';
}

// ---------------------------------------------------------------------------------------------
// Write files
// ---------------------------------------------------------------------------------------------

for (const g of GROUPS) {
  fs.writeFileSync(path.join(DIR, `${g.group}.json`), JSON.stringify(g, null, 2) + '\n');
}

// ---------------------------------------------------------------------------------------------
// Self-check 2 and 3: node:crypto signature verification and coverage
// ---------------------------------------------------------------------------------------------

const POST_SIGNATURE = new Set(['accept', 'token_expired', 'token_not_yet_valid', 'token_issued_in_future', 'claim_missing',
  'claim_invalid', 'issuer_mismatch', 'token_use_mismatch', 'client_not_allowed', 'audience_mismatch', 'token_revoked',
  'binding_mismatch', 'scope_insufficient']);

function nodeVerify(c) {
  const [h, p, s] = c.token.split('.');
  const hdr = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
  const jwk = c.jwks.keys.find((k) => k.kid === hdr.kid);
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${h}.${p}`, 'ascii');
  const sig = Buffer.from(s, 'base64url');
  if (hdr.alg === 'RS256') return crypto.verify('sha256', data, { key, padding: crypto.constants.RSA_PKCS1_PADDING }, sig);
  if (hdr.alg === 'ES256') return crypto.verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  return false;
}

let failures = 0;
const perCode = Object.fromEntries(['accept', ...CODES].map((k) => [k, 0]));
const perGroup = [];
let total = 0;
for (const g of GROUPS) {
  perGroup.push([g.group, g.cases.length]);
  for (const c of g.cases) {
    total++;
    perCode[c.expect]++;
    const got = refVerify(c);
    if (got !== c.expect) {
      failures++;
      console.error(`MODEL MISMATCH ${g.group}/${c.name}: expect ${c.expect}, reference model says ${got}`);
    }
    // Verdicts that are only reachable after the signature step must carry a valid signature.
    // (token_malformed after the signature step is covered by the reference model.)
    if (POST_SIGNATURE.has(c.expect) && c.token.length <= (c.policy.max_token_bytes ?? 16384)) {
      let ok = false;
      try { ok = nodeVerify(c); } catch (e) { ok = false; }
      if (!ok) {
        failures++;
        console.error(`SIGNATURE ${g.group}/${c.name}: expect ${c.expect} but node:crypto does not verify the signature`);
      }
    }
    if (c.expect === 'accept') {
      for (const [k, v] of Object.entries(c.expect_claims ?? {})) {
        const claims = jsonObject(Buffer.from(c.token.split('.')[1], 'base64url'));
        if (!claims || !jsonEqual(claims[k], v)) { failures++; console.error(`EXPECT_CLAIMS ${c.name}: ${k}`); }
      }
    }
  }
}

console.log('cases per group:');
for (const [name, n] of perGroup) console.log(`  ${name.padEnd(12)} ${String(n).padStart(4)}`);
console.log('cases per expected verdict:');
for (const [code, n] of Object.entries(perCode)) console.log(`  ${code.padEnd(24)} ${String(n).padStart(4)}`);
console.log(`total ${total} cases in ${GROUPS.length} files`);

for (const code of CODES) {
  if (perCode[code] === 0) { failures++; console.error(`COVERAGE: no case expects ${code}`); }
}
if (total < 200) { failures++; console.error(`COVERAGE: only ${total} cases (< 200)`); }
if (failures) {
  console.error(`self-check FAILED (${failures} problems)`);
  process.exit(1);
}
console.log('self-check passed');
