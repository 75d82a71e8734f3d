//! HTTP routes: token and revocation endpoints, JWKS, discovery, the edge policy feed, admin
//! rotation, minting and feed changes; CORS for the public routes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, AUTHORIZATION, CACHE_CONTROL,
    CONTENT_TYPE, ETAG, IF_NONE_MATCH, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit::{rfc3339, AuditRecord, EventRecord};
use crate::client_cert::forwarded_certificate;
use crate::edge_policy::{if_none_match_matches, settle};
use crate::oauth::{
    client_credentials, grant_scopes, ClientCredentials, Rejection, RevokeForm, TokenError,
    TokenForm,
};
use crate::token::{sign_compact, verify_compact, AccessTokenClaims};
use crate::{Client, Error, Issuer, PolicyChange, PolicyOp, Pool, Rotation};

/// Token requests are a few hundred bytes; anything far larger is not one.
const MAX_TOKEN_REQUEST_BYTES: usize = 16 * 1024;

const JSON: &str = "application/json;charset=UTF-8";

pub(crate) fn router(issuer: Issuer) -> Router {
    let mut router = Router::new()
        .route(
            "/oauth2/token",
            post(token_for_default_pool).options(preflight_post),
        )
        .route(
            "/{pool}/oauth2/token",
            post(token_for_pool).options(preflight_post),
        )
        .route(
            "/{pool}/.well-known/jwks.json",
            get(jwks).options(preflight_get),
        )
        .route(
            "/{pool}/.well-known/openid-configuration",
            get(openid_configuration).options(preflight_get),
        )
        .route(
            "/oauth2/revoke",
            post(revoke_for_default_pool).options(preflight_post),
        )
        .route(
            "/{pool}/oauth2/revoke",
            post(revoke_for_pool).options(preflight_post),
        )
        .route(
            "/{pool}/edge-policy.json",
            get(edge_policy).options(preflight_feed),
        )
        .route(
            "/{pool}/edge-policy-keys.json",
            get(edge_policy_keys).options(preflight_get),
        );
    // Without an admin token the admin routes do not exist at all (404, not 401).
    if issuer.inner.admin_token.is_some() {
        router = router
            .route("/admin/{pool}/rotate", post(rotate))
            .route("/admin/{pool}/mint", post(mint))
            .route("/admin/{pool}/revoke-client", post(admin_revoke_client))
            .route(
                "/admin/{pool}/revoke-issued-before",
                post(admin_revoke_issued_before),
            )
            .route("/admin/{pool}/edge-clients", post(admin_edge_clients))
            .route(
                "/admin/{pool}/clients/{client_id}/secrets",
                post(admin_client_secrets),
            );
    }
    router
        .fallback(not_found)
        .layer(middleware::from_fn(cors))
        .with_state(issuer)
}

/// Lets browser pages (the demo's token debugger) call the token endpoint and read the JWKS and
/// discovery documents, as they can with Cognito's. Admin routes get no CORS headers, so no page
/// can call them. `*` never carries cookies; clients send their own `Authorization`.
async fn cors(request: Request, next: Next) -> Response {
    let public = !request.uri().path().starts_with("/admin/");
    let mut response = next.run(request).await;
    if public {
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after, www-authenticate, etag"),
        );
    }
    response
}

/// CORS preflight (Fetch standard §3.2.2) for the token endpoint: `Authorization` (Basic) and
/// the form `Content-Type` may be sent.
async fn preflight_post() -> Response {
    preflight("POST, OPTIONS")
}

/// CORS preflight for the JWKS and discovery documents.
async fn preflight_get() -> Response {
    preflight("GET, OPTIONS")
}

/// CORS preflight for the edge policy feed: a page may revalidate it with `If-None-Match`.
async fn preflight_feed() -> Response {
    preflight_with("GET, OPTIONS", "if-none-match")
}

fn preflight(methods: &'static str) -> Response {
    preflight_with(methods, "authorization, content-type")
}

fn preflight_with(methods: &'static str, headers: &'static str) -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (ACCESS_CONTROL_ALLOW_METHODS, methods),
            (ACCESS_CONTROL_ALLOW_HEADERS, headers),
            (ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    )
        .into_response()
}

/// Rotate pools whose `rotate_every_s` has passed. Rotations run one after another, so a slow
/// key generation cannot start a second one for the same pool.
pub(crate) async fn scheduled_rotations(issuer: Issuer) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        for pool in &issuer.inner.pools {
            let now = issuer.inner.clock.now();
            if !pool.ring().rotation_due(now) {
                continue;
            }
            let (rotating, id) = (issuer.clone(), pool.id.clone());
            let rotated =
                tokio::task::spawn_blocking(move || rotating.rotate(&id, Rotation::Prepublish))
                    .await;
            match rotated {
                Ok(Ok(key)) => eprintln!(
                    "pool {}: scheduled rotation, new kid {} signs from {}",
                    pool.id,
                    key.kid,
                    rfc3339(key.active_from)
                ),
                Ok(Err(error)) => eprintln!("pool {}: scheduled rotation failed: {error}", pool.id),
                Err(error) => eprintln!("pool {}: scheduled rotation failed: {error}", pool.id),
            }
        }
    }
}

async fn token_for_default_pool(
    State(issuer): State<Issuer>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    token_endpoint(&issuer, 0, remote, &headers, body).await
}

async fn token_for_pool(
    State(issuer): State<Issuer>,
    Path(pool): Path<String>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match issuer.inner.pool_index(&pool) {
        Some(index) => token_endpoint(&issuer, index, remote, &headers, body).await,
        None => not_found().await,
    }
}

/// An issued token, before it becomes a response.
struct Issued {
    access_token: String,
    expires_in: u64,
    scopes: Vec<String>,
    /// The RFC 8705 thumbprint of the certificate the token is bound to.
    x5t_s256: Option<String>,
}

async fn token_endpoint(
    issuer: &Issuer,
    pool: usize,
    remote: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let mut client_id = None;
    let outcome = exchange(issuer, pool, remote, headers, body, &mut client_id).await;
    let pool_id = issuer
        .inner
        .pools
        .get(pool)
        .map_or("", |pool| pool.id.as_str());
    let (result, detail, scopes, x5t_s256) = match &outcome {
        Ok(issued) => (
            "issued",
            None,
            issued.scopes.as_slice(),
            issued.x5t_s256.as_deref(),
        ),
        Err(rejection) => (
            rejection.error.as_str(),
            Some(rejection.detail),
            &[][..],
            None,
        ),
    };
    issuer.inner.audit.write(&AuditRecord {
        ts: rfc3339(issuer.inner.clock.now()),
        pool: pool_id,
        client_id: client_id.as_deref(),
        scopes_granted: scopes,
        result,
        remote,
        x5t_s256,
        detail,
    });
    match outcome {
        Ok(issued) => token_response(&issued),
        Err(rejection) => error_response(rejection, headers.contains_key(AUTHORIZATION)),
    }
}

/// The client-credentials grant, check by check. `client_id` is filled in as soon as the
/// caller has claimed one, for the audit line.
async fn exchange(
    issuer: &Issuer,
    pool_index: usize,
    remote: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    client_id: &mut Option<String>,
) -> Result<Issued, Rejection> {
    let inner = &issuer.inner;
    let pool = inner
        .pools
        .get(pool_index)
        .ok_or(Rejection::new(TokenError::ServerError, "no such pool"))?;

    if !is_form_content_type(headers) {
        return Err(Rejection::new(
            TokenError::InvalidRequest,
            "Content-Type is not application/x-www-form-urlencoded",
        ));
    }
    let body = to_bytes(body, MAX_TOKEN_REQUEST_BYTES)
        .await
        .map_err(|_| Rejection::new(TokenError::InvalidRequest, "body unreadable or too large"))?;
    let form = TokenForm::parse(&body)?;
    let Some(grant_type) = form.grant_type.as_deref() else {
        *client_id = form.client_id.clone();
        return Err(Rejection::new(
            TokenError::InvalidRequest,
            "grant_type is missing",
        ));
    };
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let credentials = client_credentials(authorization, &form).map_err(|(rejection, id)| {
        *client_id = id;
        rejection
    })?;
    *client_id = Some(credentials.client_id.clone());
    if grant_type != "client_credentials" {
        return Err(Rejection::new(
            TokenError::UnsupportedGrantType,
            "only client_credentials is supported",
        ));
    }

    let Authenticated { client, x5t_s256 } =
        authenticate(issuer, pool_index, pool, remote, headers, &credentials).await?;
    if client.allowed_scopes.is_empty() {
        // Cognito only lets app clients with custom scopes use client_credentials.
        return Err(Rejection::new(
            TokenError::UnauthorizedClient,
            "client has no allowed scopes",
        ));
    }
    let scopes = grant_scopes(form.scope.as_deref(), &client.allowed_scopes)?;

    let now = inner.clock.now();
    let mut claims = AccessTokenClaims::new(
        &inner.issuer_url(pool),
        &credentials.client_id,
        &scopes,
        client.token_lifetime_s,
        now,
    );
    if let Some(thumbprint) = &x5t_s256 {
        // RFC 8705 §3.1: a client that authenticated with a certificate gets tokens bound to it.
        claims = claims.bound_to_certificate(thumbprint.clone());
    }
    let signer = pool
        .signer(now)
        .map_err(|_| Rejection::new(TokenError::ServerError, "no signing key"))?;
    // One RSA-2048 signature is about a millisecond: not worth a trip to the blocking pool.
    let access_token = sign_compact(&signer, &claims)
        .map_err(|_| Rejection::new(TokenError::ServerError, "signing failed"))?;
    Ok(Issued {
        access_token,
        expires_in: client.token_lifetime_s,
        scopes,
        x5t_s256,
    })
}

/// A client that proved who it is.
struct Authenticated<'p> {
    client: &'p Client,
    /// RFC 8705 thumbprint of its certificate, when that is how it authenticated.
    x5t_s256: Option<String>,
}

/// Client authentication shared by the token and revocation endpoints: the source-IP failure
/// limit, the client's method — a secret (any of the client's), or RFC 8705's certificate from
/// the trusted header — then the client's rate limit.
async fn authenticate<'p>(
    issuer: &Issuer,
    pool_index: usize,
    pool: &'p Pool,
    remote: SocketAddr,
    headers: &HeaderMap,
    credentials: &ClientCredentials,
) -> Result<Authenticated<'p>, Rejection> {
    let inner = &issuer.inner;
    // An IP that keeps failing is refused before argon2 runs, so guessing stays slow and cheap.
    let ip = remote.ip();
    inner
        .ip_failure_limiter
        .check(&ip, Instant::now())
        .map_err(|retry| Rejection::rate_limited("too many failed authentications", retry))?;
    let authenticated = match pool.clients.get(&credentials.client_id) {
        None => Err("unknown client"),
        Some(client) if !client.enabled => Err("client disabled"),
        Some(client) => match (&client.certificate, &credentials.secret) {
            (None, None) => Err("no client secret presented"),
            (None, Some(secret)) => {
                // A copy: the admin API may change the list while argon2 runs.
                let hashes = client.hashes();
                let matched = inner
                    .secrets
                    .verify_any(pool_index, &credentials.client_id, secret, &hashes)
                    .await;
                if matched {
                    Ok(Authenticated {
                        client,
                        x5t_s256: None,
                    })
                } else {
                    Err("wrong client secret")
                }
            }
            (Some(_), Some(_)) => {
                Err("the client authenticates with its certificate, not a secret")
            }
            (Some(registration), None) => {
                let forwarded = match inner.trusted_client_cert_header {
                    // Certificate headers are ignored unless the config names one: without a
                    // proxy that sets it, anyone could send one.
                    None => Err("no trusted client certificate header is configured"),
                    Some(header) => forwarded_certificate(header, headers),
                };
                match forwarded {
                    Err(why) => Err(why),
                    Ok(None) => Err("no client certificate presented"),
                    Ok(Some(peer)) if registration.accepts(&peer) => Ok(Authenticated {
                        client,
                        x5t_s256: peer.thumbprint(),
                    }),
                    Ok(Some(_)) => {
                        Err("the client certificate is not the one registered for this client")
                    }
                }
            }
        },
    };
    let authenticated = match authenticated {
        Ok(authenticated) => authenticated,
        Err(detail) => {
            // Only counting; this request is answered invalid_client either way.
            let _ = inner.ip_failure_limiter.acquire(ip, Instant::now());
            return Err(Rejection::new(TokenError::InvalidClient, detail));
        }
    };
    inner
        .client_limiter
        .acquire((pool_index, credentials.client_id.clone()), Instant::now())
        .map_err(|retry| Rejection::rate_limited("client over its rate limit", retry))?;
    Ok(authenticated)
}

fn is_form_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn token_response(issued: &Issued) -> Response {
    let body = json!({
        "access_token": issued.access_token,
        "expires_in": issued.expires_in,
        "token_type": "Bearer",
    });
    // RFC 6749 §5.1: tokens must not be cached.
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, JSON),
            (CACHE_CONTROL, "no-store"),
            (PRAGMA, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn error_response(rejection: Rejection, authorization_sent: bool) -> Response {
    let status =
        StatusCode::from_u16(rejection.error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (
        status,
        [
            (CONTENT_TYPE, JSON),
            (CACHE_CONTROL, "no-store"),
            (PRAGMA, "no-cache"),
        ],
        json!({ "error": rejection.error.as_str() }).to_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    // RFC 6749 §5.2: a client that tried the Authorization header gets a challenge back.
    if rejection.error == TokenError::InvalidClient && authorization_sent {
        headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tokengate-issuer\""),
        );
    }
    if let Some(seconds) = rejection.retry_after_s {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

async fn jwks(State(issuer): State<Issuer>, Path(pool): Path<String>) -> Response {
    match issuer.jwks(&pool) {
        Ok(jwks) => cacheable_json(&issuer, &jwks),
        Err(_) => not_found().await,
    }
}

async fn openid_configuration(State(issuer): State<Issuer>, Path(pool): Path<String>) -> Response {
    let Some(state) = issuer
        .inner
        .pool_index(&pool)
        .and_then(|index| issuer.inner.pools.get(index))
    else {
        return not_found().await;
    };
    let base = issuer.base_url();
    // The RFC 8705 methods work only when a proxy forwards certificates in a trusted header.
    let mtls = issuer.inner.trusted_client_cert_header.is_some();
    let mut methods = vec!["client_secret_basic", "client_secret_post"];
    if mtls {
        methods.extend(["tls_client_auth", "self_signed_tls_client_auth"]);
    }
    let mut document = json!({
        "issuer": issuer.inner.issuer_url(state),
        "jwks_uri": format!("{base}/{pool}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/{pool}/oauth2/token"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": methods,
        "revocation_endpoint": format!("{base}/{pool}/oauth2/revoke"),
        "revocation_endpoint_auth_methods_supported": methods,
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": state.scopes,
    });
    if let (true, Some(members)) = (mtls, document.as_object_mut()) {
        // RFC 8705 §3.3: tokens of certificate-authenticated clients carry cnf.x5t#S256.
        members.insert(
            "tls_client_certificate_bound_access_tokens".to_owned(),
            json!(true),
        );
    }
    cacheable_json(&issuer, &document)
}

fn cacheable_json(issuer: &Issuer, document: &serde_json::Value) -> Response {
    let cache_control = format!("public, max-age={}", issuer.inner.jwks_max_age_s);
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, JSON.to_owned()),
            (CACHE_CONTROL, cache_control),
        ],
        document.to_string(),
    )
        .into_response()
}

async fn rotate(
    State(issuer): State<Issuer>,
    Path(pool): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !admin_authorized(&issuer, &headers) {
        return admin_denied();
    }
    let rotation = match immediate_flag(uri.query()) {
        Ok(true) => Rotation::Immediate,
        Ok(false) => Rotation::Prepublish,
        Err(()) => return bad_request("immediate must be true or false"),
    };
    if issuer.inner.pool_index(&pool).is_none() {
        return not_found().await;
    }
    let rotating = issuer.clone();
    let pool_id = pool.clone();
    // Generating an RSA key is slow CPU work.
    let rotated = tokio::task::spawn_blocking(move || rotating.rotate(&pool_id, rotation)).await;
    match rotated {
        Ok(Ok(key)) => {
            let signing_kid = issuer.signing_kid(&pool).ok();
            (
                StatusCode::OK,
                [(CONTENT_TYPE, JSON)],
                json!({
                    "pool": pool,
                    "kid": key.kid,
                    "active_from": key.active_from,
                    "signing_kid": signing_kid,
                })
                .to_string(),
            )
                .into_response()
        }
        Ok(Err(error)) => server_error(&error.to_string()),
        Err(error) => server_error(&error.to_string()),
    }
}

/// `POST /admin/{pool}/mint` with `{"client_id", "scope"?, "issued_at"?, "lifetime_s"?}`: a
/// signed access token with any issue time and lifetime, so demos and tests can show expired
/// or not-yet-seen clients without waiting. No client or scope checks: admin only.
async fn mint(
    State(issuer): State<Issuer>,
    Path(pool): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !admin_authorized(&issuer, &headers) {
        return admin_denied();
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct MintRequest {
        client_id: String,
        #[serde(default)]
        scope: String,
        issued_at: Option<u64>,
        lifetime_s: Option<u64>,
    }
    let request: MintRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&format!("mint body: {e}")),
    };
    if issuer.inner.pool_index(&pool).is_none() {
        return not_found().await;
    }
    let now = request
        .issued_at
        .unwrap_or_else(|| issuer.inner.clock.now());
    let scopes: Vec<&str> = request.scope.split_whitespace().collect();
    let lifetime = request.lifetime_s.unwrap_or(3600).clamp(1, 86_400);
    match issuer.issue_token(&pool, &request.client_id, &scopes, lifetime, now) {
        Ok(token) => (
            StatusCode::OK,
            [(CONTENT_TYPE, JSON)],
            json!({ "access_token": token, "expires_in": lifetime, "token_type": "Bearer" })
                .to_string(),
        )
            .into_response(),
        Err(error) => server_error(&error.to_string()),
    }
}

async fn revoke_for_default_pool(
    State(issuer): State<Issuer>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    revocation_endpoint(&issuer, 0, remote, &headers, body).await
}

async fn revoke_for_pool(
    State(issuer): State<Issuer>,
    Path(pool): Path<String>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match issuer.inner.pool_index(&pool) {
        Some(index) => revocation_endpoint(&issuer, index, remote, &headers, body).await,
        None => not_found().await,
    }
}

/// What a well-formed, authenticated revocation request did (RFC 7009 answers 200 for both).
enum Revocation {
    /// The token's `jti` is in the feed until its `exp`.
    Revoked {
        jti: String,
        until: u64,
        change: PolicyChange,
    },
    /// Not a live token of this pool: nothing to revoke (RFC 7009 §2.2).
    NothingToRevoke(&'static str),
}

/// RFC 7009 `POST /oauth2/revoke`: one audit line, then `200` with an empty body, or an
/// RFC 6749 §5.2 error body like the token endpoint's.
async fn revocation_endpoint(
    issuer: &Issuer,
    pool: usize,
    remote: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let mut client_id = None;
    let outcome = revoke(issuer, pool, remote, headers, body, &mut client_id).await;
    let pool_id = issuer
        .inner
        .pools
        .get(pool)
        .map_or("", |pool| pool.id.as_str());
    let mut record = EventRecord {
        ts: rfc3339(issuer.inner.clock.now()),
        pool: pool_id,
        event: "revoke",
        client_id: client_id.as_deref(),
        remote: Some(remote),
        ..EventRecord::default()
    };
    match &outcome {
        Ok(Revocation::Revoked { jti, until, change }) => {
            record.result = "revoked";
            record.jti = Some(jti);
            record.until = Some(*until);
            record.version = Some(change.version);
            record.detail = (!change.changed).then_some("already revoked");
        }
        Ok(Revocation::NothingToRevoke(detail)) => {
            record.result = "not_revoked";
            record.detail = Some(detail);
        }
        Err(rejection) => {
            record.result = rejection.error.as_str();
            record.detail = Some(rejection.detail);
        }
    }
    issuer.inner.audit.write(&record);
    match outcome {
        // RFC 7009 §2.2: the body is ignored; Cognito sends none either.
        Ok(_) => (
            StatusCode::OK,
            [(CACHE_CONTROL, "no-store"), (PRAGMA, "no-cache")],
        )
            .into_response(),
        Err(rejection) => error_response(rejection, headers.contains_key(AUTHORIZATION)),
    }
}

/// The revocation request, check by check, in the token endpoint's order: content type and
/// form, credentials present, `token` present, IP failure limit, authentication, client rate
/// limit; then the token.
async fn revoke(
    issuer: &Issuer,
    pool_index: usize,
    remote: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    client_id: &mut Option<String>,
) -> Result<Revocation, Rejection> {
    let inner = &issuer.inner;
    let pool = inner
        .pools
        .get(pool_index)
        .ok_or(Rejection::new(TokenError::ServerError, "no such pool"))?;
    if !is_form_content_type(headers) {
        return Err(Rejection::new(
            TokenError::InvalidRequest,
            "Content-Type is not application/x-www-form-urlencoded",
        ));
    }
    let body = to_bytes(body, MAX_TOKEN_REQUEST_BYTES)
        .await
        .map_err(|_| Rejection::new(TokenError::InvalidRequest, "body unreadable or too large"))?;
    let form = RevokeForm::parse(&body)?;
    let authorization = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let credentials =
        client_credentials(authorization, &form.auth).map_err(|(rejection, id)| {
            *client_id = id;
            rejection
        })?;
    *client_id = Some(credentials.client_id.clone());
    // token_type_hint is only a hint (RFC 7009 §2.1): there are only access tokens here, and
    // "refresh_token" or an unknown hint just means the search covers those.
    let Some(token) = form.token else {
        return Err(Rejection::new(
            TokenError::InvalidRequest,
            "token is missing",
        ));
    };
    authenticate(issuer, pool_index, pool, remote, headers, &credentials).await?;

    let now = inner.clock.now();
    // Current, prepublished and retired keys: every token this pool signed that may be live.
    let keys = pool.ring().verification_keys(now);
    let Some(claims) = verify_compact(&token, &keys) else {
        return Ok(Revocation::NothingToRevoke(
            "not a token signed by this pool",
        ));
    };
    if claims.iss.as_deref() != Some(inner.issuer_url(pool).as_str()) {
        return Ok(Revocation::NothingToRevoke("token of another issuer"));
    }
    let (Some(jti), Some(exp)) = (claims.jti, claims.exp) else {
        return Ok(Revocation::NothingToRevoke("token has no jti or exp"));
    };
    if exp <= now {
        return Ok(Revocation::NothingToRevoke("token has expired"));
    }
    // RFC 7009 §2.1: the server "verifies whether the token was issued to the client making
    // the revocation request. If this validation fails, the request is refused".
    if claims.client_id.as_deref() != Some(credentials.client_id.as_str()) {
        return Err(Rejection::new(
            TokenError::UnauthorizedClient,
            "token was issued to another client",
        ));
    }
    let change = issuer
        .policy_change(
            &pool.id,
            PolicyOp::RevokeJti {
                jti: jti.clone(),
                until: exp,
            },
        )
        .map_err(|_| Rejection::new(TokenError::ServerError, "feed change failed"))?;
    settle(change.version).await;
    Ok(Revocation::Revoked {
        jti,
        until: exp,
        change,
    })
}

/// `GET /{pool}/edge-policy.json`: the feed document, `ETag: "<version>"`, revalidated on
/// every poll (`no-cache`), `304` for a matching `If-None-Match`.
async fn edge_policy(
    State(issuer): State<Issuer>,
    Path(pool): Path<String>,
    headers: HeaderMap,
) -> Response {
    let document = match issuer.edge_policy(&pool) {
        Ok(document) => document,
        Err(Error::UnknownPool(_)) => return not_found().await,
        Err(error) => return server_error(&error.to_string()),
    };
    let etag = document.etag();
    let not_modified = headers
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| if_none_match_matches(value, &etag));
    if not_modified {
        return (
            StatusCode::NOT_MODIFIED,
            [(ETAG, etag), (CACHE_CONTROL, "no-cache".to_owned())],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, document.content_type().to_owned()),
            (ETAG, etag),
            (CACHE_CONTROL, "no-cache".to_owned()),
        ],
        document.body,
    )
        .into_response()
}

/// `GET /{pool}/edge-policy-keys.json`: the feed's verification key as a JWK Set (for the
/// edges' `feed.keys`); 404 when the feed is unsigned.
async fn edge_policy_keys(State(issuer): State<Issuer>, Path(pool): Path<String>) -> Response {
    match issuer.edge_policy_keys(&pool) {
        Ok(Some(jwks)) => cacheable_json(&issuer, &jwks),
        _ => not_found().await,
    }
}

/// A JSON admin body into `T`, or what is wrong with it.
fn admin_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|error| format!("{what} body: {error}"))
}

/// The answer to a refused change: 404 for an unknown pool or client, 400 otherwise.
fn change_refused(error: &Error) -> Response {
    match error {
        Error::UnknownPool(_) => not_found_response(),
        Error::UnknownClient(_) => (
            StatusCode::NOT_FOUND,
            [(CONTENT_TYPE, JSON)],
            json!({ "error": "not_found", "message": error.to_string() }).to_string(),
        )
            .into_response(),
        Error::Invalid(message) => bad_request(message),
        other => server_error(&other.to_string()),
    }
}

fn ok_json(document: &serde_json::Value) -> Response {
    (StatusCode::OK, [(CONTENT_TYPE, JSON)], document.to_string()).into_response()
}

/// The audit line of an admin change; `outcome` is the change or why it was refused.
fn audit_admin(
    issuer: &Issuer,
    pool: &str,
    event: &str,
    client_id: &str,
    action: Option<&str>,
    remote: SocketAddr,
    outcome: &Result<PolicyChange, Error>,
) {
    let detail = outcome.as_ref().err().map(ToString::to_string);
    let mut record = EventRecord {
        ts: rfc3339(issuer.inner.clock.now()),
        pool,
        event,
        client_id: Some(client_id),
        action,
        remote: Some(remote),
        detail: detail.as_deref(),
        ..EventRecord::default()
    };
    match outcome {
        Ok(change) => {
            record.result = if change.changed {
                "changed"
            } else {
                "unchanged"
            };
            record.at = change.at;
            record.until = change.until;
            record.version = Some(change.version);
        }
        Err(_) => record.result = "invalid_request",
    }
    issuer.inner.audit.write(&record);
}

/// `POST /admin/{pool}/revoke-client` with `{"client_id", "until"?}`.
async fn admin_revoke_client(
    State(issuer): State<Issuer>,
    Path(pool): Path<String>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !admin_authorized(&issuer, &headers) {
        return admin_denied();
    }
    if issuer.inner.pool_index(&pool).is_none() {
        return not_found_response();
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RevokeClient {
        client_id: String,
        until: Option<u64>,
    }
    let request: RevokeClient = match admin_body(&body, "revoke-client") {
        Ok(request) => request,
        Err(message) => return bad_request(&message),
    };
    let outcome = issuer.policy_change(
        &pool,
        PolicyOp::RevokeClient {
            client_id: request.client_id.clone(),
            until: request.until,
        },
    );
    audit_admin(
        &issuer,
        &pool,
        "admin.revoke_client",
        &request.client_id,
        None,
        remote,
        &outcome,
    );
    match outcome {
        Ok(change) => {
            settle(change.version).await;
            ok_json(&json!({
                "pool": pool,
                "version": change.version,
                "changed": change.changed,
                "client_id": request.client_id,
                "until": change.until,
            }))
        }
        Err(error) => change_refused(&error),
    }
}

/// `POST /admin/{pool}/revoke-issued-before` with `{"client_id", "before"?}`.
async fn admin_revoke_issued_before(
    State(issuer): State<Issuer>,
    Path(pool): Path<String>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !admin_authorized(&issuer, &headers) {
        return admin_denied();
    }
    if issuer.inner.pool_index(&pool).is_none() {
        return not_found_response();
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RevokeIssuedBefore {
        client_id: String,
        before: Option<u64>,
    }
    let request: RevokeIssuedBefore = match admin_body(&body, "revoke-issued-before") {
        Ok(request) => request,
        Err(message) => return bad_request(&message),
    };
    let outcome = issuer.policy_change(
        &pool,
        PolicyOp::RevokeIssuedBefore {
            client_id: request.client_id.clone(),
            before: request.before,
        },
    );
    audit_admin(
        &issuer,
        &pool,
        "admin.revoke_issued_before",
        &request.client_id,
        None,
        remote,
        &outcome,
    );
    match outcome {
        Ok(change) => {
            settle(change.version).await;
            ok_json(&json!({
                "pool": pool,
                "version": change.version,
                "changed": change.changed,
                "client_id": request.client_id,
                "at": change.at,
                "until": change.until,
            }))
        }
        Err(error) => change_refused(&error),
    }
}

/// `POST /admin/{pool}/edge-clients` with `{"add": id, "until"?}` or `{"remove": id}`.
async fn admin_edge_clients(
    State(issuer): State<Issuer>,
    Path(pool): Path<String>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !admin_authorized(&issuer, &headers) {
        return admin_denied();
    }
    if issuer.inner.pool_index(&pool).is_none() {
        return not_found_response();
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EdgeClients {
        add: Option<String>,
        remove: Option<String>,
        until: Option<u64>,
    }
    let request: EdgeClients = match admin_body(&body, "edge-clients") {
        Ok(request) => request,
        Err(message) => return bad_request(&message),
    };
    let (action, client_id, op) = match (request.add, request.remove, request.until) {
        (Some(id), None, until) => (
            "add",
            id.clone(),
            PolicyOp::AddEdgeClient {
                client_id: id,
                until,
            },
        ),
        (None, Some(id), None) => (
            "remove",
            id.clone(),
            PolicyOp::RemoveEdgeClient { client_id: id },
        ),
        (None, Some(_), Some(_)) => return bad_request("until only goes with add"),
        _ => return bad_request("give either add or remove"),
    };
    let outcome = issuer.policy_change(&pool, op);
    audit_admin(
        &issuer,
        &pool,
        "admin.edge_clients",
        &client_id,
        Some(action),
        remote,
        &outcome,
    );
    match outcome {
        Ok(change) => {
            settle(change.version).await;
            let list = issuer.edge_client_ids(&pool).ok().flatten().map(|list| {
                list.into_iter()
                    .map(|entry| match entry.until {
                        None => json!(entry.client_id),
                        Some(until) => json!({ "id": entry.client_id, "until": until }),
                    })
                    .collect::<Vec<_>>()
            });
            ok_json(&json!({
                "pool": pool,
                "version": change.version,
                "changed": change.changed,
                "client_ids": list,
            }))
        }
        Err(error) => change_refused(&error),
    }
}

/// `POST /admin/{pool}/clients/{client_id}/secrets` with `{"add_hash": phc}` or
/// `{"remove_hash": phc}`. Not a feed change: answers how many secrets the client has.
async fn admin_client_secrets(
    State(issuer): State<Issuer>,
    Path((pool, client_id)): Path<(String, String)>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !admin_authorized(&issuer, &headers) {
        return admin_denied();
    }
    if issuer.inner.pool_index(&pool).is_none() {
        return not_found_response();
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Secrets {
        add_hash: Option<String>,
        remove_hash: Option<String>,
    }
    let request: Secrets = match admin_body(&body, "secrets") {
        Ok(request) => request,
        Err(message) => return bad_request(&message),
    };
    let (action, outcome) = match (&request.add_hash, &request.remove_hash) {
        (Some(phc), None) => ("add", issuer.add_client_secret_hash(&pool, &client_id, phc)),
        (None, Some(phc)) => (
            "remove",
            issuer.remove_client_secret_hash(&pool, &client_id, phc),
        ),
        _ => return bad_request("give either add_hash or remove_hash"),
    };
    // Which hash is never logged: the line says what was done to which client.
    let detail = outcome.as_ref().err().map(ToString::to_string);
    issuer.inner.audit.write(&EventRecord {
        ts: rfc3339(issuer.inner.clock.now()),
        pool: &pool,
        event: "admin.client_secrets",
        client_id: Some(&client_id),
        result: match &outcome {
            Ok(_) => "ok",
            Err(Error::UnknownClient(_)) => "not_found",
            Err(_) => "invalid_request",
        },
        action: Some(action),
        remote: Some(remote),
        detail: detail.as_deref(),
        ..EventRecord::default()
    });
    match outcome {
        Ok(count) => ok_json(&json!({
            "pool": pool,
            "client_id": client_id,
            "secret_hashes": count,
        })),
        Err(error) => change_refused(&error),
    }
}

fn admin_denied() -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [(CONTENT_TYPE, JSON)],
        json!({ "error": "unauthorized" }).to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tokengate-issuer admin\""),
    );
    response
}

fn admin_authorized(issuer: &Issuer, headers: &HeaderMap) -> bool {
    let Some(expected) = &issuer.inner.admin_token else {
        return false;
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(presented) = presented else {
        return false;
    };
    // Comparing digests keeps the time independent of where the first differing byte is.
    let (a, b) = (
        Sha256::digest(presented.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |diff, (x, y)| diff | (x ^ y))
        == 0
}

fn immediate_flag(query: Option<&str>) -> Result<bool, ()> {
    let mut immediate = false;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if name == "immediate" {
            immediate = match value.as_ref() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(()),
            };
        }
    }
    Ok(immediate)
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(CONTENT_TYPE, JSON)],
        json!({ "error": "invalid_request", "message": message }).to_string(),
    )
        .into_response()
}

fn server_error(message: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(CONTENT_TYPE, JSON)],
        json!({ "error": "server_error", "message": message }).to_string(),
    )
        .into_response()
}

async fn not_found() -> Response {
    not_found_response()
}

fn not_found_response() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(CONTENT_TYPE, JSON)],
        json!({ "error": "not_found" }).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immediate_flag_accepts_booleans_only() {
        assert_eq!(immediate_flag(None), Ok(false));
        assert_eq!(immediate_flag(Some("immediate=true")), Ok(true));
        assert_eq!(immediate_flag(Some("immediate=0&x=y")), Ok(false));
        assert_eq!(immediate_flag(Some("immediate=yes")), Err(()));
    }

    #[test]
    fn form_content_type_allows_a_charset() {
        let mut headers = HeaderMap::new();
        assert!(!is_form_content_type(&headers));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
        );
        assert!(is_form_content_type(&headers));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!is_form_content_type(&headers));
    }
}
