// Hand-written types for the `tokengate` package. They describe every runtime entry (Node ESM
// and CJS, workerd/worker, browser) alike; test/types/consumer.ts checks them with tsc and
// test/api.test.mjs checks that the runtime exports exactly these names.

/** The stable rejection codes (never renamed; new ones are only added). */
export type ErrorCode =
  | "token_missing"
  | "token_malformed"
  | "token_too_large"
  | "alg_not_allowed"
  | "header_unsupported"
  | "kid_missing"
  | "kid_unknown"
  | "key_unusable"
  | "signature_invalid"
  | "token_expired"
  | "token_not_yet_valid"
  | "token_issued_in_future"
  | "claim_missing"
  | "claim_invalid"
  | "issuer_mismatch"
  | "token_use_mismatch"
  | "client_not_allowed"
  | "audience_mismatch"
  | "token_revoked"
  | "binding_mismatch"
  | "scope_insufficient"
  | "rate_limited"
  | "jwks_unavailable"
  | "request_invalid"
  | "policy_unavailable"
  | "identity_mismatch"
  | "identity_missing"
  | "signature_budget_exhausted";

/** The verified payload. Frozen: the same object may be returned for the same token. */
export interface Claims {
  readonly iss?: string;
  readonly sub?: string;
  readonly client_id?: string;
  readonly token_use?: string;
  readonly scope?: string;
  readonly exp?: number;
  readonly iat?: number;
  readonly nbf?: number;
  readonly auth_time?: number;
  readonly jti?: string;
  readonly aud?: string | readonly string[];
  readonly [claim: string]: unknown;
}

/** A JWK Set (RFC 7517 §5). */
export interface Jwks {
  readonly keys: readonly { readonly [member: string]: unknown }[];
}

/** Required scopes: a string or array means all of them. */
export type ScopeRequirement =
  | string
  | readonly string[]
  | { readonly all: readonly string[] }
  | { readonly any: readonly string[] };

/** A rule on a claim, checked after every other step (missing claim: claim_missing). */
export type ClaimRule =
  | { readonly claim: string; readonly equals: unknown }
  | { readonly claim: string; readonly oneOf: readonly unknown[] }
  | { readonly claim: string; readonly contains: string };

export interface RevocationList {
  readonly jti?: readonly string[];
  readonly clientIds?: readonly string[];
  /** Per client id: tokens with `iat` before this time (seconds or Date) are revoked. */
  readonly issuedBefore?: { readonly [clientId: string]: number | Date };
}

/** What one issuer's tokens must satisfy (shared by both verifier kinds). */
export interface PolicyOptions {
  /** Allowed `client_id` values; `null` accepts any client (an explicit choice). */
  clientId: string | readonly string[] | null;
  /** Required scopes (a string or array: all of them). */
  scope?: ScopeRequirement | null;
  /** When set, `aud` must contain one of these. */
  audience?: string | readonly string[] | null;
  /** Clock skew allowed on exp / nbf / iat, in whole seconds. Default 0. */
  leewaySeconds?: number;
  /** When set, `now - iat` must not exceed it (plus leeway). */
  maxTokenAgeSeconds?: number | null;
  customClaims?: readonly ClaimRule[];
  /** RFC 8705 certificate binding (`cnf.x5t#S256`). Default "off". */
  mtlsBinding?: "off" | "when_present" | "required";
  /**
   * Workload identity pins: `client_id` → the client certificates its tokens are accepted
   * from (any one of the list). Core field names, as in the Envoy configuration.
   */
  clientIdentities?: { readonly [clientId: string]: readonly IdentityPin[] };
  /** "when_listed" (default with pins): pinned clients need a matching certificate; "always": every client; "off". */
  requireIdentity?: "off" | "when_listed" | "always";
  /** Smallest RSA modulus accepted. Default 2048. */
  minRsaBits?: number;
  /** Longer tokens are refused before any parsing. Default 16384. */
  maxTokenBytes?: number;
  /** Keys known up front (refreshed from jwksUri when that is set too). */
  jwks?: Jwks | string;
  jwksUri?: string;
}

/**
 * One pin (exactly one member): a URI SAN (`"spiffe://prod/orders-writer"`, or a prefix ending
 * in `/*`), a DNS SAN (case-insensitive), an RFC 4514 subject (`"CN=reports,O=Example"`), or
 * the SHA-256 of the certificate (hex or base64url).
 */
export type IdentityPin =
  | { readonly uri_san: string }
  | { readonly dns_san: string }
  | { readonly subject: string }
  | { readonly sha256: string };

export interface CognitoPoolOptions extends PolicyOptions {
  /** e.g. "eu-west-1_AbCdEf123": both issuer forms and the JWKS URL are derived from it. */
  userPoolId: string;
  /** "access", "id", or null to not check `token_use`. */
  tokenUse: "access" | "id" | null;
}

interface JwtIssuerBase extends PolicyOptions {
  /** Accepted `iss` values, compared byte for byte. */
  issuer: string | readonly string[];
  /** Default ["RS256"]. */
  algorithms?: readonly ("RS256" | "ES256")[];
  /** Default null (not checked): generic issuers do not emit `token_use`. */
  tokenUse?: "access" | "id" | null;
}

export type JwtIssuerOptions = JwtIssuerBase &
  ({ jwksUri: string; jwks?: Jwks | string } | { jwks: Jwks | string; jwksUri?: string });

/** The audit record passed to onDecision. It never contains the token. */
export interface DecisionRecord {
  decision: "allow" | "deny";
  code: ErrorCode | null;
  iss: string | null;
  client_id: string | null;
  scopes: string | null;
  kid: string | null;
  /** Hex SHA-256 of `jti`. */
  jti_sha256: string | null;
  route: string | null;
  cached: boolean;
  /** The client certificate pin that matched (`uri_san=spiffe://…`), when one did. */
  identity?: string;
}

/** The policy feed's state (crates/tokengate/README.md, "Policy feed"). */
export interface FeedState {
  /** "loading" (first document not here yet), "fresh", or "stale" (past max_stale_s). */
  status: "loading" | "fresh" | "stale";
  /** The document version in use, or null. */
  version: number | null;
  /** When it was last fetched or confirmed (seconds; 0: never). */
  fresh_at: number;
  /** Why the last answer was not taken, or null. */
  last_error: string | null;
}

/** A Cache API cache (`caches.default` in Workers) that JWKS and feed documents are shared through. */
export interface SharedCache {
  match(key: string): Promise<{ headers: { get(name: string): string | null }; arrayBuffer(): Promise<ArrayBuffer> } | undefined>;
  put(key: string, response: any): Promise<void>;
}

/** A fetch-compatible function (the global `fetch` fits). */
export type FetchFunction = (input: string, init?: any) => Promise<any>;

/**
 * A route rule, exactly as in the Envoy filter's configuration (crates/tokengate/README.md,
 * "Configuration"): first match wins; paths are compared in normal form.
 */
export interface RouteRule {
  /** Name in audit records. Default `rules[i]`. */
  readonly name?: string;
  readonly match: {
    /** Matches the path and anything below it at a `/` boundary. */
    readonly prefix?: string;
    /** Matches the path, one trailing `/` ignored. */
    readonly exact?: string;
    /** Only these methods (`HEAD` also matches `GET`). Default: every method. */
    readonly methods?: readonly string[];
    /** Compare letters without case (for origins that fold case). Default false. */
    readonly case_insensitive?: boolean;
  };
  /** No token needed, or any valid token. Give either this or `scopes`. */
  readonly allow?: "anonymous" | "authenticated";
  readonly scopes?: { readonly all: readonly string[] } | { readonly any: readonly string[] };
  /** Only these clients may use the route. */
  readonly client_ids?: readonly string[];
  /** The route's own pins (replace the issuer's for this route). */
  readonly client_identities?: { readonly [clientId: string]: readonly IdentityPin[] };
  /** The route's own require_identity. */
  readonly require_identity?: "off" | "when_listed" | "always";
}

export interface VerifierOptions {
  /** Route rules for decide()/authorize(), the same list the Envoy filter takes. */
  routes?: readonly RouteRule[];
  /** For requests no rule matches. Default "deny" with routes, "authenticated" without. */
  default?: "deny" | "authenticated";
  /**
   * The policy feed (crates/tokengate/README.md, "Policy feed"), with the core's field names:
   * `{ uri, poll_s?, max_stale_s?, stale?: "keep" | "fail_closed", keys?: Jwk[], unsigned?: true, … }`.
   */
  feed?: { readonly uri: string; readonly [field: string]: unknown };
  /**
   * Where authorize() takes the client certificate from: "connection" (default: Node's TLS
   * socket, Workers' `request.cf.tlsClientAuth`), or the header of a trusted TLS-terminating
   * proxy: "client_cert_header" (RFC 9440 `Client-Cert`) or "alb" (`X-Amzn-Mtls-Clientcert-Leaf`).
   */
  clientCertificate?: { source: "connection" | "client_cert_header" | "alb" };
  /**
   * Most signature checks (RSA/ECDSA operations) this verifier makes per second; past it a token
   * that is not already verified gets 503 `signature_budget_exhausted` (`Retry-After: 1`)
   * instead of a check, so a flood of forged tokens cannot take the process. Default 1000;
   * `"unlimited"` turns it off. Cached tokens never count.
   */
  signatureChecksPerSecond?: number | "unlimited";
  /** Claim name → request header the origin gets on an allowed request (decide().forward). */
  forward?: { readonly [claim: string]: string };
  /** The verified-token cache; `false` disables it. Default 4096 entries, 600 s. */
  cache?: false | { maxEntries?: number; maxTtlSeconds?: number };
  jwksCache?: {
    refreshSeconds?: number;
    maxStaleSeconds?: number;
    timeoutMs?: number;
    maxBytes?: number;
    maxKeys?: number;
    unknownKidCooldownSeconds?: number;
  };
  /** `realm` of WWW-Authenticate challenges. Default "tokengate". */
  realm?: string;
  /** Called once per verify/verifySync/authorize decision. Exceptions it throws are ignored. */
  onDecision?: (record: DecisionRecord) => void;
  /** "native" (default): node:crypto or crypto.subtle checks signatures; "wasm": the core does. */
  crypto?: "native" | "wasm";
  fetch?: FetchFunction;
  revocation?: RevocationList;
  /**
   * Where fetched JWKS and policy feed documents are shared between isolates. Workers default
   * to `caches.default`; `false` turns sharing off.
   */
  sharedCache?: SharedCache | false;
}

export interface VerifyOptions {
  /** The time, in seconds since the epoch (tests). Default: the clock. Judged at its second. */
  now?: number;
  /**
   * Scopes this call requires in addition to the verifier's (and the matched route's). A list
   * that names no scope (`[]`, `{all: []}`) is a TypeError: it would require nothing.
   */
  scope?: ScopeRequirement;
  /** base64url SHA-256 of the client certificate (RFC 8705 §3.1). */
  certThumbprint?: string;
  /**
   * The client certificate of the connection, for `client_identities` pins and the RFC 8705
   * binding (authorize() reads it from the request itself; this overrides that).
   */
  peer?: PeerCertificate;
  /** Route name for the audit record. */
  route?: string;
  /**
   * Workers: `ctx.waitUntil.bind(ctx)`, so JWKS and feed refreshes this call starts finish after
   * the response. Without it the Workers entry waits for them before answering.
   */
  waitUntil?: (promise: Promise<unknown>) => void;
}

/**
 * A Node IncomingMessage, a Fetch API Request, or a plain object. Its method and target (Node:
 * `url` as received; Fetch: the URL's path and query) and every Authorization value go to the
 * core as they are. Without `method` / `url`, GET / is assumed.
 */
export type RequestLike =
  | { readonly method?: string; readonly url?: string; readonly headers: { get(name: string): string | null } }
  | {
      readonly method?: string;
      readonly url?: string;
      readonly headers: { readonly [name: string]: string | readonly string[] | undefined };
      readonly headersDistinct?: { readonly [name: string]: readonly string[] | undefined };
    };

/** What a host received, for decide(): nothing parsed, nothing judged. */
export interface RequestFacts {
  /** As received, any case. */
  readonly method: string;
  /** The request target as received (`/path?query`), or `*`. */
  readonly target: string;
  /** Every Authorization value, in order (a repeated header is a list, refused). */
  readonly authorization?: string | readonly string[] | null;
  /** base64url SHA-256 of the client certificate (RFC 8705 §3.1); `peer` says more. */
  readonly certThumbprint?: string | null;
  /** The client certificate of the connection (`client_certificate.source: "connection"`). */
  readonly peer?: PeerCertificate | null;
  /**
   * Every value of the header `certificateHeader` names (`client_certificate.source`
   * `"client_cert_header"` or `"alb"`), as the trusted proxy sent them.
   */
  readonly clientCert?: string | readonly string[] | null;
}

/**
 * A client certificate as a host knows it: the DER bytes (Node: `getPeerCertificate().raw`),
 * a PEM text, a SHA-256 thumbprint (base64url or hex), or the facts a TLS stack reports.
 */
export type PeerCertificate =
  | Uint8Array
  | string
  | {
      /** uniformResourceIdentifier subjectAltNames (SPIFFE IDs), in certificate order. */
      readonly uriSans?: readonly string[];
      /** dNSName subjectAltNames, in certificate order. */
      readonly dnsSans?: readonly string[];
      /** The subject, RFC 4514 / 2253 (`CN=…,OU=…,O=…`). */
      readonly subject?: string | null;
      /** SHA-256 of the DER, hex or base64url. */
      readonly sha256?: string | null;
    };

/** A refusal as sent to the client. */
export interface DeniedAnswer {
  status: 400 | 401 | 403 | 429 | 503;
  code: ErrorCode;
  /** content-type, cache-control, and www-authenticate or retry-after. */
  headers: { [name: string]: string };
  /** JSON: {"error": code, "message": …}. */
  body: string;
}

/** The core's answer to a request, ready to send (decide() and authorize()). */
export type AuthorizeResult =
  | {
      ok: true;
      status: 200;
      code: null;
      headers: {};
      body: null;
      /** The verified claims; null on an anonymous route. */
      claims: Claims | null;
      /** Headers to set on the request to the origin (remove incoming copies first). */
      forward: { [header: string]: string };
      /** Remove Authorization before the request goes on. */
      stripAuthorization: boolean;
      /** The matched rule's name, or "default". */
      route: string | null;
      /** In report mode, the answer the request would have had. */
      wouldDeny: DeniedAnswer | null;
      error: null;
    }
  | (DeniedAnswer & {
      ok: false;
      claims: null;
      forward: null;
      stripAuthorization: false;
      route: null;
      wouldDeny: null;
      error: TokenError;
    });

export type RevokeRequest = { jti: string } | { clientId: string; issuedBefore?: number | Date };

/** The methods both verifier classes have. */
export interface TokenVerifier {
  /** Verify, fetching or refreshing the JWKS as needed. Rejects with TokenError. */
  verify(token: string | null | undefined, options?: VerifyOptions): Promise<Claims>;
  /** Verify with cached keys only (no I/O). Throws TokenError. */
  verifySync(token: string | null | undefined, options?: VerifyOptions): Claims;
  /** Fetch every remote issuer's JWKS now. Rejects with TokenError jwks_unavailable. */
  hydrate(): Promise<void>;
  /** Install a JWKS as if just fetched, for `issuer` (an issuer or a Cognito user pool id;
   * required when several issuers are configured). Throws TypeError for an unusable JWKS. */
  cacheJwks(jwks: Jwks | string, issuer?: string): void;
  revoke(what: RevokeRequest): void;
  /** Replace every revocation at once. */
  setRevocation(list: RevocationList): void;
  /** Check a request (method, target, Authorization) against the routes; never rejects with TokenError. */
  authorize(req: RequestLike, options?: VerifyOptions): Promise<AuthorizeResult>;
  /** The core's answer to a request given as received; fetches keys when needed. */
  decide(facts: RequestFacts, options?: VerifyOptions): Promise<AuthorizeResult>;
  /** decide() with cached keys only (no I/O). */
  decideSync(facts: RequestFacts, options?: VerifyOptions): AuthorizeResult;
  /**
   * Headers to remove from every request let through: those the verifier may set from claims,
   * and client certificate headers the configuration does not trust.
   */
  readonly removeHeaders: readonly string[];
  /** @deprecated The same list as removeHeaders. */
  readonly forwardHeaders: readonly string[];
  /** The trusted client certificate header (`client-cert`, `x-amzn-mtls-clientcert-leaf`), or null. */
  readonly certificateHeader: string | null;
  /** Where the policy feed stands (null without one). */
  feedState(): FeedState | null;
}

export declare class CognitoVerifier implements TokenVerifier {
  private constructor();
  static create(props: CognitoPoolOptions & VerifierOptions): CognitoVerifier;
  static create(props: readonly CognitoPoolOptions[], options?: VerifierOptions): CognitoVerifier;
  verify(token: string | null | undefined, options?: VerifyOptions): Promise<Claims>;
  verifySync(token: string | null | undefined, options?: VerifyOptions): Claims;
  hydrate(): Promise<void>;
  cacheJwks(jwks: Jwks | string, issuer?: string): void;
  revoke(what: RevokeRequest): void;
  setRevocation(list: RevocationList): void;
  authorize(req: RequestLike, options?: VerifyOptions): Promise<AuthorizeResult>;
  decide(facts: RequestFacts, options?: VerifyOptions): Promise<AuthorizeResult>;
  decideSync(facts: RequestFacts, options?: VerifyOptions): AuthorizeResult;
  readonly removeHeaders: readonly string[];
  /** @deprecated The same list as removeHeaders. */
  readonly forwardHeaders: readonly string[];
  readonly certificateHeader: string | null;
  feedState(): FeedState | null;
}

export declare class JwtVerifier implements TokenVerifier {
  private constructor();
  static create(props: JwtIssuerOptions & VerifierOptions): JwtVerifier;
  static create(props: readonly JwtIssuerOptions[], options?: VerifierOptions): JwtVerifier;
  /**
   * From the gate configuration every tokengate host loads (the Envoy filter's plugin
   * configuration), as an object or JSON text; remote key sets need `jwks.uri` here.
   */
  static fromConfig(
    config: object | string,
    options?: {
      fetch?: FetchFunction;
      crypto?: "native" | "wasm";
      onDecision?: (record: DecisionRecord) => void;
      sharedCache?: SharedCache | false;
    },
  ): JwtVerifier;
  verify(token: string | null | undefined, options?: VerifyOptions): Promise<Claims>;
  verifySync(token: string | null | undefined, options?: VerifyOptions): Claims;
  hydrate(): Promise<void>;
  cacheJwks(jwks: Jwks | string, issuer?: string): void;
  revoke(what: RevokeRequest): void;
  setRevocation(list: RevocationList): void;
  authorize(req: RequestLike, options?: VerifyOptions): Promise<AuthorizeResult>;
  decide(facts: RequestFacts, options?: VerifyOptions): Promise<AuthorizeResult>;
  decideSync(facts: RequestFacts, options?: VerifyOptions): AuthorizeResult;
  readonly removeHeaders: readonly string[];
  /** @deprecated The same list as removeHeaders. */
  readonly forwardHeaders: readonly string[];
  readonly certificateHeader: string | null;
  feedState(): FeedState | null;
}

/** `verifier.authorize(req, options)` as a function. */
export declare function authorize(
  verifier: CognitoVerifier | JwtVerifier,
  req: RequestLike,
  options?: VerifyOptions,
): Promise<AuthorizeResult>;

export declare class TokenError extends Error {
  constructor(
    code: ErrorCode,
    message: string,
    details?: { status?: number; wwwAuthenticate?: string | null; claims?: Claims | null },
  );
  readonly name: "TokenError";
  readonly code: ErrorCode;
  /** 400 (request_invalid), 401, 403 (scope_insufficient), 429 or 503 (jwks_unavailable, policy_unavailable, signature_budget_exhausted). */
  readonly status: 400 | 401 | 403 | 429 | 503;
  /** The WWW-Authenticate value to send, or null (429, 503). */
  readonly wwwAuthenticate: string | null;
  /** The claims, when the signature was valid and a later check failed. */
  readonly claims: Claims | null;
}

export interface TokenClientOptions {
  /**
   * An https URL (http only for loopback: 127.0.0.0/8, [::1], localhost), without user:password@.
   * Redirects are never followed: a 3xx answer rejects with token_endpoint_redirected.
   */
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  scope?: string | readonly string[] | null;
  /** Default "client_secret_basic". */
  authMethod?: "client_secret_basic" | "client_secret_post";
  /** Per request. Default 5000. */
  timeoutMs?: number;
  /** Retries after 5xx, network errors and 429. Default 3. */
  maxRetries?: number;
  /** A longer 429 Retry-After is not waited for. Default 30. */
  maxRetryAfterSeconds?: number;
  /** Refresh this long before expiry (at most half the lifetime). Default 60. */
  refreshSkewSeconds?: number;
  /** Called with `redirect: "manual"`; an answer it reached through a redirect is refused. */
  fetch?: FetchFunction;
  /**
   * Accept an http:// tokenEndpoint that is not loopback, sending the client secret (and the
   * token back) in clear text over the network. Only for test networks. Default false.
   */
  allowInsecureHttp?: boolean;
}

/** The client side of OAuth2 client credentials (RFC 6749 §4.4). */
export declare class TokenClient {
  constructor(options: TokenClientOptions);
  /** The cached access token, or a new one; concurrent callers share one request. */
  getToken(): Promise<string>;
  /** Drop the cached token. */
  invalidate(): void;
  /** Endpoint, client id and scope (never the secret). */
  toJSON(): { tokenEndpoint: string; clientId: string; scope: string | null };
}

export type TokenClientErrorCode =
  | "token_endpoint_error"
  | "token_endpoint_redirected"
  | "token_endpoint_unreachable"
  | "token_response_invalid"
  | "rate_limited";

export declare class TokenClientError extends Error {
  constructor(code: string, message: string, details?: { status?: number | null; retryAfter?: number | null });
  readonly name: "TokenClientError";
  /** One of TokenClientErrorCode, or the OAuth `error` the endpoint sent (e.g. invalid_client). */
  readonly code: TokenClientErrorCode | (string & {});
  readonly status: number | null;
  /** Seconds, for rate_limited. */
  readonly retryAfter: number | null;
}
