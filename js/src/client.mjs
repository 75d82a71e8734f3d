// The client side of OAuth2 client credentials (RFC 6749 §4.4): one cached token, one request
// for many concurrent callers, retries on 5xx and network errors, 429 Retry-After honoured.
// The client secret is held in a private field and never appears in messages or errors.
import { fetchCapped } from "./http.mjs";

const MAX_RESPONSE_BYTES = 64 * 1024;

/** A token endpoint failure. `code` is the OAuth `error` (e.g. invalid_client) or one of
 * token_endpoint_error, token_endpoint_unreachable, token_response_invalid, rate_limited. */
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
]);

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
  #token = null;
  #refreshAt = 0;
  #inflight = null;

  constructor(options) {
    if (options === null || typeof options !== "object") throw bad("options are required");
    for (const k of Object.keys(options)) if (!KEYS.has(k)) throw bad(`unknown option ${JSON.stringify(k)}`);
    const o = options;
    if (typeof o.tokenEndpoint !== "string" || !/^https?:\/\//.test(o.tokenEndpoint)) {
      throw bad("tokenEndpoint must be an http(s) URL");
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
    const init = { method: "POST", headers, body: form.join("&") };
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= this.#maxRetries;
      let res;
      try {
        res = await fetchCapped(this.#fetch, this.#endpoint, init, this.#timeoutMs, MAX_RESPONSE_BYTES);
      } catch (e) {
        if (!last) {
          await sleep(this.#backoff(attempt));
          continue;
        }
        const timedOut = e && (e.name === "AbortError" || e.name === "TimeoutError");
        throw new TokenClientError(
          "token_endpoint_unreachable",
          `token endpoint ${this.#endpoint} ${timedOut ? `did not answer within ${this.#timeoutMs} ms` : "could not be reached"}`,
        );
      }
      const { status } = res;
      if (status === 200) return this.#take(res);
      if (status === 429) {
        const wait = retryAfterSeconds(res.headers.get("retry-after"), Date.now()) ?? this.#backoff(attempt) / 1000;
        if (!last && wait <= this.#maxRetryAfter) {
          await sleep(wait * 1000);
          continue;
        }
        throw new TokenClientError("rate_limited", `token endpoint ${this.#endpoint} answered HTTP 429`, {
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
      throw new TokenClientError("token_response_invalid", `token endpoint ${this.#endpoint} answered without an access_token`, {
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
    const oauth = doc && typeof doc.error === "string" && /^[\x20-\x7e]{1,64}$/.test(doc.error) ? doc.error : null;
    let message = `token endpoint ${this.#endpoint} answered HTTP ${res.status}${oauth ? `: ${oauth}` : ""}`;
    if (doc && typeof doc.error_description === "string") {
      message += ` (${doc.error_description.slice(0, 200).split(this.#secret).join("[redacted]")})`;
    }
    return new TokenClientError(oauth ?? "token_endpoint_error", message, { status: res.status });
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
