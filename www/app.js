// The token debugger. Decoding is plain base64url (anyone can do it); the verdict comes from
// tokengate's wasm core through the npm package's browser entry, with the issuer's JWKS fetched
// by the package itself. Served by demo/web.mjs, which mounts the package at /pkg/ and answers
// /demo-config.json with the local issuer's URLs and demo clients.

const $ = (id) => document.getElementById(id);

// The core's pipeline (ARCHITECTURE.md), grouped into the checks a person reads; each check
// lists the error codes it produces. First failure wins, so every check before it passed.
const CHECKS = [
  { name: "format", what: "size limit, three base64url segments, header JSON", codes: ["token_missing", "token_too_large", "token_malformed"] },
  { name: "algorithm", what: "alg in the allow-list (RS256), no crit", codes: ["alg_not_allowed", "header_unsupported"] },
  { name: "key", what: "kid selects exactly one key of the issuer's JWKS", codes: ["kid_missing", "kid_unknown", "key_unusable", "jwks_unavailable"] },
  { name: "signature", what: "RS256 signature over header.payload", codes: ["signature_invalid"] },
  { name: "claims", what: "payload JSON, claim types", codes: [] },
  { name: "time", what: "exp (required), nbf, iat against the clock", codes: ["token_expired", "token_not_yet_valid", "token_issued_in_future"] },
  { name: "issuer", what: "iss equals the configured issuer", codes: ["issuer_mismatch"] },
  { name: "token_use", what: "token_use as configured", codes: ["token_use_mismatch"] },
  { name: "client_id", what: "client_id in the allow-list", codes: ["client_not_allowed", "audience_mismatch"] },
  { name: "revocation", what: "jti / client_id not revoked", codes: ["token_revoked"] },
  { name: "scopes", what: "every required scope present", codes: ["scope_insufficient"] },
];

// claim_missing / claim_invalid belong to the check of the claim their message names.
const CLAIM_CHECK = { exp: "time", nbf: "time", iat: "time", iss: "issuer", token_use: "token_use", client_id: "client_id", aud: "client_id", scope: "scopes", jti: "revocation" };

function checkFor(error) {
  if (error.code === "claim_missing" || error.code === "claim_invalid") {
    const claim = /^([a-z_]+)\b/.exec(error.message || "")?.[1];
    return CLAIM_CHECK[claim] ?? "claims";
  }
  return CHECKS.find((c) => c.codes.includes(error.code))?.name ?? "claims";
}

let pkg = null; // the npm package's browser entry
let config = null; // /demo-config.json
let verifier = null;
let verifierKey = "";
let run = 0;

// ---- decoding -------------------------------------------------------------------------------

function b64urlDecode(segment) {
  if (!/^[A-Za-z0-9_-]*$/.test(segment)) throw new Error("not base64url");
  const b64 = segment.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((segment.length + 3) % 4);
  const bin = atob(b64);
  return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

function b64urlEncode(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decode(token) {
  const parts = token.split(".");
  const part = (i) => {
    try {
      return JSON.parse(b64urlDecode(parts[i] ?? ""));
    } catch {
      return undefined;
    }
  };
  return { header: part(0), claims: part(1) };
}

const TIME_CLAIMS = new Set(["exp", "iat", "nbf", "auth_time"]);

function relative(seconds) {
  const d = Math.round(seconds - Date.now() / 1000);
  const abs = Math.abs(d);
  const span = abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : `${(abs / 3600).toFixed(1)} h`;
  return d >= 0 ? `in ${span}` : `${span} ago`;
}

function escapeHtml(s) {
  return s.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
}

// Pretty JSON with light highlighting; time claims get a readable date as a trailing note.
function renderJson(el, value) {
  if (value === undefined) {
    el.textContent = "(not decodable)";
    return;
  }
  const lines = JSON.stringify(value, null, 2).split("\n");
  el.innerHTML = lines
    .map((line) => {
      let html = escapeHtml(line)
        .replace(/^(\s*)"([^"]+)":/, '$1<span class="k">"$2"</span>:')
        .replace(/: ("(?:[^"\\]|\\.)*")(,?)$/, ': <span class="s">$1</span>$2')
        .replace(/: (-?\d[\d.e+-]*)(,?)$/, ': <span class="n">$1</span>$2');
      const m = /^\s*"([a-z_]+)": (\d+),?$/.exec(line);
      if (m && TIME_CLAIMS.has(m[1])) {
        const t = Number(m[2]);
        html += `  <span class="t">// ${new Date(t * 1000).toISOString().replace(".000Z", "Z")} (${relative(t)})</span>`;
      }
      return html;
    })
    .join("\n");
}

// ---- verdict --------------------------------------------------------------------------------

function renderChecks(failed) {
  const list = $("checks");
  list.textContent = "";
  let seenFailure = false;
  for (const c of CHECKS) {
    const li = document.createElement("li");
    let result = "pending";
    if (failed === null) result = "pass";
    else if (failed === undefined) result = "pending";
    else if (seenFailure) result = "skipped";
    else if (c.name === failed) {
      result = "fail";
      seenFailure = true;
    } else result = "pass";
    li.dataset.check = c.name;
    li.dataset.result = result;
    const mark = { pass: "✓", fail: "✗", skipped: "·", pending: "·" }[result];
    li.innerHTML = `<span class="mark">${mark}</span><span class="name">${c.name}</span><span class="what">${escapeHtml(c.what)}</span>`;
    list.append(li);
  }
}

function showVerdict(state, label, http, message, challenge, failedCheck) {
  const v = $("verdict");
  v.dataset.state = state;
  v.dataset.code = state === "valid" ? "valid" : state === "invalid" ? label : "";
  $("verdict-label").textContent = label;
  $("verdict-http").textContent = http;
  $("verdict-message").textContent = message;
  $("verdict-challenge").textContent = challenge ? `WWW-Authenticate: ${challenge}` : "";
  renderChecks(failedCheck);
}

function policyFromForm() {
  const list = (s) => s.split(/[\s,]+/).filter(Boolean);
  const clientIds = list($("client-ids").value);
  const scopes = list($("scopes").value);
  return {
    issuer: $("issuer").value.trim(),
    jwksUri: $("jwks-uri").value.trim(),
    algorithms: ["RS256"],
    tokenUse: $("token-use").value || null,
    clientId: clientIds.length ? clientIds : null,
    ...(scopes.length ? { scope: scopes } : {}),
  };
}

function currentVerifier() {
  const options = policyFromForm();
  const key = JSON.stringify(options);
  if (key !== verifierKey) {
    // One verifier per policy: its JWKS cache (and unknown-kid refetch) lives as long as it.
    verifier = pkg.JwtVerifier.create(options);
    verifierKey = key;
  }
  return verifier;
}

async function verify() {
  const token = $("token").value.trim();
  const mine = ++run;
  const { header, claims } = decode(token);
  renderJson($("header-json"), token ? header : null);
  renderJson($("claims-json"), token ? claims : null);
  if (!pkg) return;
  if (!token) {
    showVerdict("idle", "no token yet", "", "Fetch a token or paste one.", "", undefined);
    return;
  }
  let v;
  try {
    v = currentVerifier();
  } catch (e) {
    showVerdict("error", "policy error", "", e.message, "", undefined);
    return;
  }
  showVerdict("pending", "verifying…", "", "", "", undefined);
  try {
    const verified = await v.verify(token);
    if (mine !== run) return;
    const who = verified.client_id ? `client ${verified.client_id}` : "the token";
    showVerdict("valid", "valid", "HTTP 200", `${who} passes every check; scopes: ${verified.scope ?? "(none)"}.`, "", null);
  } catch (e) {
    if (mine !== run) return;
    if (e && e.name === "TokenError") {
      showVerdict("invalid", e.code, `HTTP ${e.status}`, e.message, e.wwwAuthenticate, checkFor(e));
    } else {
      showVerdict("error", "error", "", String(e && e.message ? e.message : e), "", undefined);
    }
  }
}

// ---- token sources --------------------------------------------------------------------------

function setToken(token, note) {
  $("token").value = token;
  $("token-note").textContent = note;
  verify();
}

async function fetchToken() {
  const client = config.clients.find((c) => c.id === $("client").value);
  const button = $("fetch-token");
  button.disabled = true;
  try {
    // A fresh client each time, so every click is a new token request.
    const tc = new pkg.TokenClient({ tokenEndpoint: config.tokenEndpoint, clientId: client.id, clientSecret: client.secret, maxRetries: 0 });
    const token = await tc.getToken();
    setToken(token, `from ${config.tokenEndpoint} for ${client.id} (client credentials, HTTP Basic)`);
  } catch (e) {
    $("token-note").textContent = `token request failed: ${e.code ?? ""} ${e.message}`;
  } finally {
    button.disabled = false;
  }
}

async function expiredToken() {
  const client = $("client").value;
  try {
    const r = await fetch(`/demo/expired-token?client=${encodeURIComponent(client)}`, { method: "POST" });
    const doc = await r.json();
    if (!r.ok || !doc.access_token) throw new Error(doc.message || doc.error || `HTTP ${r.status}`);
    setToken(doc.access_token, `minted for ${client} two hours ago with a one-hour lifetime (issuer admin API, via the demo server)`);
  } catch (e) {
    $("token-note").textContent = `could not mint an expired token: ${e.message}`;
  }
}

function tamper() {
  const parts = $("token").value.trim().split(".");
  const { claims } = decode(parts.join("."));
  if (parts.length !== 3 || !claims) {
    $("token-note").textContent = "paste or fetch a token first";
    return;
  }
  const scopes = new Set(String(claims.scope ?? "").split(" ").filter(Boolean));
  scopes.add("orders/write");
  claims.scope = [...scopes].join(" ");
  parts[1] = b64urlEncode(JSON.stringify(claims));
  setToken(parts.join("."), "payload edited (orders/write added to scope), signature unchanged");
}

// ---- start ----------------------------------------------------------------------------------

async function main() {
  renderChecks(undefined);
  try {
    config = await (await fetch("/demo-config.json")).json();
  } catch {
    config = { issuer: "", jwksUri: "", tokenEndpoint: "", clients: [], policy: { clientIds: [], scopes: [], tokenUse: "access" } };
  }
  $("issuer").value = config.issuer;
  $("jwks-uri").value = config.jwksUri;
  $("client-ids").value = config.policy.clientIds.join(" ");
  $("scopes").value = config.policy.scopes.join(" ");
  $("token-use").value = config.policy.tokenUse ?? "";
  for (const c of config.clients) {
    const o = document.createElement("option");
    o.value = c.id;
    o.textContent = `${c.id}  [${c.scopes.join(" ")}]`;
    $("client").append(o);
  }
  $("config-note").textContent = config.tokenEndpoint
    ? `issuer ${config.issuer} · token endpoint ${config.tokenEndpoint} · JWKS ${config.jwksUri}`
    : "no local issuer configured: paste a token and fill in the policy";

  $("policy").addEventListener("submit", (e) => {
    e.preventDefault();
    verify();
  });
  $("policy").addEventListener("change", () => verify());
  let typing;
  $("token").addEventListener("input", () => {
    clearTimeout(typing);
    $("token-note").textContent = "";
    typing = setTimeout(verify, 250);
  });
  $("fetch-token").addEventListener("click", fetchToken);
  $("expired-token").addEventListener("click", expiredToken);
  $("tamper").addEventListener("click", tamper);
  $("clear").addEventListener("click", () => setToken("", ""));

  try {
    pkg = await import("/pkg/src/browser.mjs");
    $("engine").dataset.state = "ready";
    $("engine").textContent = "tokengate wasm core ready · npm package browser entry · signatures by crypto.subtle";
  } catch (e) {
    $("engine").dataset.state = "error";
    $("engine").textContent = `could not load the tokengate package: ${e.message}`;
    return;
  }
  verify();
}

main();
