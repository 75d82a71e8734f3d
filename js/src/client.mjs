// The client side of OAuth2 client credentials (RFC 6749 §4.4): one cached token, one request
// for many concurrent callers, retries on 5xx and network errors, 429 Retry-After honoured.
// The client secret is held in a private field and never appears in messages or errors.
// Redirects are never followed (credentials would be re-sent to wherever the Location points),
// and the secret goes over plain http only to loopback unless allowInsecureHttp is set.
import { fetchCapped } from "./http.mjs";

const MAX_RESPONSE_BYTES = 64 * 1024;

/** A token endpoint failure. `code` is the OAuth `error` (e.g. invalid_client) or one of
 * token_endpoint_error, token_endpoint_redirected, token_endpoint_unreachable,
 * token_response_invalid, rate_limited. */
export class TokenClientError extends Error {
  constructor(code, message, details) {
    super(message);
    const d = details || {};
    this.name = "TokenClientError";
    this.code = code;
    this.status = d.status ?? null;
    this.retryAfter = d.retryAfter ?? null;
  }
}

function bad(message) {
  return new TypeError(`tokengate: TokenClient: ${message}`);
}

// application/x-www-form-urlencoded, as RFC 6749 §2.3.1 asks for Basic credentials.
function formEncode(s) {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, "+");
}

function toBase64(s) {
  const bytes = new TextEncoder().encode(s);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

// Where the secret may go over plain http: 127.0.0.0/8, [::1] and localhost (hostnames as the
// WHATWG URL parser normalises them, so 0x7f.1 and [0:0:0:0:0:0:0:1] count too).
function isLoopback(hostname) {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

// Only the origin of a redirect's Location is worth naming: its path or query may carry anything.
function locationOrigin(location, base) {
  if (location === null || location === undefined) return null;
  try {
    const u = new URL(location, base);
    return u.protocol === "https:" || u.protocol === "http:" ? u.origin : "a non-http(s) URL";
  } catch {
    return "an unparseable Location";
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function retryAfterSeconds(value, nowMs) {
  if (value === null || value === undefined) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, (at - nowMs) / 1000);
}

const KEYS = new Set([
  "tokenEndpoint",
  "clientId",
  "clientSecret",
  "scope",
  "authMethod",
  "timeoutMs",
  "maxRetries",
  "maxRetryAfterSeconds",
  "refreshSkewSeconds",
  "fetch",
  "allowInsecureHttp",
]);

const DESCRIPTION_LIMIT = 200;

export class TokenClient {
  #endpoint;
  #clientId;
  #secret;
  #scope;
  #authMethod;
  #timeoutMs;
  #maxRetries;
  #maxRetryAfter;
  #skew;
  #fetch;
  #secretForms;
  #token = null;
  #refreshAt = 0;
  #inflight = null;

  constructor(options) {
    if (options === null || typeof options !== "object") throw bad("options are required");
    for (const k of Object.keys(options)) if (!KEYS.has(k)) throw bad(`unknown option ${JSON.stringify(k)}`);
    const o = options;
    // Messages here never echo the URL: it is refused precisely when it may be unsafe to show.
    let endpoint = null;
    try {
      if (typeof o.tokenEndpoint === "string") endpoint = new URL(o.tokenEndpoint);
    } catch {
      endpoint = null;
    }
    if (endpoint === null || (endpoint.protocol !== "https:" && endpoint.protocol !== "http:")) {
      throw bad("tokenEndpoint must be an https URL");
    }
    if (endpoint.username !== "" || endpoint.password !== "") {
      throw bad("tokenEndpoint must not carry user:password@ credentials (they would appear in errors); use clientId and clientSecret");
    }
    const insecure = o.allowInsecureHttp ?? false;
    if (typeof insecure !== "boolean") throw bad("allowInsecureHttp must be a boolean");
    if (endpoint.protocol === "http:" && !isLoopback(endpoint.hostname) && !insecure) {
      throw bad(
        "tokenEndpoint must be https: the client secret would cross the network in clear text over http " +
          "(http is accepted for 127.0.0.0/8, [::1] and localhost; set allowInsecureHttp: true to send it anyway)",
      );
    }
    if (typeof o.clientId !== "string" || o.clientId === "") throw bad("clientId is required");
    if (typeof o.clientSecret !== "string" || o.clientSecret === "") throw bad("clientSecret is required");
    let scope = o.scope ?? null;
    if (Array.isArray(scope)) scope = scope.join(" ");
    if (scope !== null && typeof scope !== "string") throw bad("scope must be a string or an array of strings");
    const method = o.authMethod ?? "client_secret_basic";
    if (method !== "client_secret_basic" && method !== "client_secret_post") {
      throw bad('authMethod must be "client_secret_basic" or "client_secret_post"');
    }
    this.#endpoint = o.tokenEndpoint;
    this.#clientId = o.clientId;
    this.#secret = o.clientSecret;
    this.#scope = scope;
    this.#authMethod = method;
    this.#timeoutMs = o.timeoutMs ?? 5000;
    this.#maxRetries = o.maxRetries ?? 3;
    this.#maxRetryAfter = o.maxRetryAfterSeconds ?? 30;
    this.#skew = o.refreshSkewSeconds ?? 60;
    this.#fetch = o.fetch ?? ((url, init) => globalThis.fetch(url, init));
    if (typeof this.#fetch !== "function") throw bad("fetch must be a function");
    // Every form in which this client sends the secret, longest first, for redaction.
    const id = formEncode(o.clientId);
    this.#secretForms = [
      ...new Set([
        o.clientSecret,
        formEncode(o.clientSecret),
        encodeURIComponent(o.clientSecret),
        toBase64(`${id}:${formEncode(o.clientSecret)}`),
        toBase64(`${o.clientId}:${o.clientSecret}`),
      ]),
    ].sort((a, b) => b.length - a.length);
  }

  /** An access token: the cached one until shortly before it expires, else a fresh one. */
  getToken() {
    if (this.#token !== null && Date.now() / 1000 < this.#refreshAt) return Promise.resolve(this.#token);
    if (this.#inflight === null) {
      this.#inflight = this.#request().finally(() => {
        this.#inflight = null;
      });
    }
    return this.#inflight;
  }

  /** Forget the cached token (e.g. after a resource server answered 401). */
  invalidate() {
    this.#token = null;
    this.#refreshAt = 0;
  }

  toJSON() {
    return { tokenEndpoint: this.#endpoint, clientId: this.#clientId, scope: this.#scope };
  }

  async #request() {
    const form = ["grant_type=client_credentials"];
    const headers = {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    };
    if (this.#scope !== null) form.push(`scope=${formEncode(this.#scope)}`);
    if (this.#authMethod === "client_secret_basic") {
      headers.authorization = `Basic ${toBase64(`${formEncode(this.#clientId)}:${formEncode(this.#secret)}`)}`;
    } else {
      form.push(`client_id=${formEncode(this.#clientId)}`, `client_secret=${formEncode(this.#secret)}`);
    }
    // redirect: "manual": a redirect comes back as the 3xx itself (Node, Workers) or as an
    // opaqueredirect (browsers), never as a second request carrying the credentials.
    const init = { method: "POST", headers, body: form.join("&"), redirect: "manual" };
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= this.#maxRetries;
      let res;
      let meta = null;
      const fetchFn = async (url, i) => {
        const r = await this.#fetch(url, i);
        meta = { type: r.type, redirected: r.redirected === true };
        return r;
      };
      try {
        res = await fetchCapped(fetchFn, this.#endpoint, init, this.#timeoutMs, MAX_RESPONSE_BYTES);
      } catch (e) {
        if (!last) {
          await sleep(this.#backoff(attempt));
          continue;
        }
        const timedOut = e && (e.name === "AbortError" || e.name === "TimeoutError");
        throw this.#error(
          "token_endpoint_unreachable",
          `token endpoint ${this.#endpoint} ${timedOut ? `did not answer within ${this.#timeoutMs} ms` : "could not be reached"}`,
        );
      }
      const { status } = res;
      // Never retried: the same request would be redirected again.
      if (meta !== null && meta.type === "opaqueredirect") throw this.#redirected(null, null);
      // A fetch option that followed the redirect anyway: the answer is not the endpoint's.
      if (meta !== null && meta.redirected) throw this.#redirected(status, null, true);
      if (status >= 300 && status < 400) throw this.#redirected(status, res.headers.get("location"));
      if (status === 200) return this.#take(res);
      if (status === 429) {
        const wait = retryAfterSeconds(res.headers.get("retry-after"), Date.now()) ?? this.#backoff(attempt) / 1000;
        if (!last && wait <= this.#maxRetryAfter) {
          await sleep(wait * 1000);
          continue;
        }
        throw this.#error("rate_limited", `token endpoint ${this.#endpoint} answered HTTP 429`, {
          status,
          retryAfter: wait,
        });
      }
      if (status >= 500 && !last) {
        await sleep(this.#backoff(attempt));
        continue;
      }
      throw this.#failure(res);
    }
  }

  // Every error goes through here, so no message can carry the secret in any form it is sent in.
  #error(code, message, details) {
    return new TokenClientError(code, this.#redact(message), details);
  }

  #redact(s) {
    for (const form of this.#secretForms) s = s.split(form).join("[redacted]");
    return s;
  }

  #redirected(status, location, followed = false) {
    const at = `token endpoint ${this.#endpoint}`;
    let message;
    if (followed) {
      message =
        `${at} redirected and the fetch option followed it although redirect: "manual" was asked for, ` +
        `so the credentials may have been re-sent; the HTTP ${status} answer is not used: make the fetch option pass init.redirect on`;
    } else {
      let what = "redirected (the runtime hides where to)";
      if (status !== null) {
        const to = locationOrigin(location, this.#endpoint);
        what = `redirected with HTTP ${status}${to === null ? " without a Location" : ` to ${to}`}`;
      }
      message = `${at} ${what}; redirects are not followed and credentials are never re-sent: configure the final token endpoint URL`;
    }
    return this.#error("token_endpoint_redirected", message, { status });
  }

  #backoff(attempt) {
    const base = Math.min(250 * 2 ** attempt, 5000);
    return base / 2 + Math.random() * (base / 2);
  }

  #take(res) {
    let doc;
    try {
      doc = JSON.parse(new TextDecoder().decode(res.body));
    } catch {
      doc = null;
    }
    if (res.truncated || !doc || typeof doc.access_token !== "string" || doc.access_token === "") {
      throw this.#error("token_response_invalid", `token endpoint ${this.#endpoint} answered without an access_token`, {
        status: 200,
      });
    }
    const now = Date.now() / 1000;
    let lifetime = typeof doc.expires_in === "number" && doc.expires_in > 0 ? doc.expires_in : null;
    if (lifetime === null) {
      const exp = unverifiedExp(doc.access_token);
      lifetime = exp !== null ? Math.max(0, exp - now) : 60;
    }
    this.#token = doc.access_token;
    this.#refreshAt = now + lifetime - Math.min(this.#skew, lifetime / 2);
    return this.#token;
  }

  #failure(res) {
    let doc = null;
    try {
      doc = JSON.parse(new TextDecoder().decode(res.body));
    } catch {
      doc = null;
    }
    let oauth = doc && typeof doc.error === "string" && /^[\x20-\x7e]{1,64}$/.test(doc.error) ? doc.error : null;
    // An `error` that echoes the secret is not kept as .code (which is not a message).
    if (oauth !== null && this.#redact(oauth) !== oauth) oauth = null;
    let message = `token endpoint ${this.#endpoint} answered HTTP ${res.status}${oauth ? `: ${oauth}` : ""}`;
    if (doc && typeof doc.error_description === "string") {
      // Redact first, then truncate: a cut through the secret would hide it from redaction.
      message += ` (${this.#redact(doc.error_description).slice(0, DESCRIPTION_LIMIT)})`;
    }
    return this.#error(oauth ?? "token_endpoint_error", message, { status: res.status });
  }
}

// The token's exp, read without verification: only used to schedule a refresh.
function unverifiedExp(token) {
  try {
    const part = token.split(".")[1];
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" ? exp : null;
  } catch {
    return null;
  }
}
