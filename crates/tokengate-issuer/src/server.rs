//! HTTP routes: token endpoint, JWKS, discovery, admin rotation; CORS for the public routes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, AUTHORIZATION, CACHE_CONTROL,
    CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit::{rfc3339, AuditRecord};
use crate::oauth::{client_credentials, grant_scopes, Rejection, TokenError, TokenForm};
use crate::token::{sign_compact, AccessTokenClaims};
use crate::{Issuer, Rotation};

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
        );
    // Without an admin token the admin routes do not exist at all (404, not 401).
    if issuer.inner.admin_token.is_some() {
        router = router
            .route("/admin/{pool}/rotate", post(rotate))
            .route("/admin/{pool}/mint", post(mint));
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
            HeaderValue::from_static("retry-after, www-authenticate"),
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

fn preflight(methods: &'static str) -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (ACCESS_CONTROL_ALLOW_METHODS, methods),
            (ACCESS_CONTROL_ALLOW_HEADERS, "authorization, content-type"),
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
    let (result, detail, scopes) = match &outcome {
        Ok(issued) => ("issued", None, issued.scopes.as_slice()),
        Err(rejection) => (rejection.error.as_str(), Some(rejection.detail), &[][..]),
    };
    issuer.inner.audit.write(&AuditRecord {
        ts: rfc3339(issuer.inner.clock.now()),
        pool: pool_id,
        client_id: client_id.as_deref(),
        scopes_granted: scopes,
        result,
        remote,
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

    // An IP that keeps failing is refused before argon2 runs, so guessing stays slow and cheap.
    let ip = remote.ip();
    inner
        .ip_failure_limiter
        .check(&ip, Instant::now())
        .map_err(|retry| Rejection::rate_limited("too many failed authentications", retry))?;
    let authenticated = match pool.clients.get(&credentials.client_id) {
        None => Err("unknown client"),
        Some(client) if !client.enabled => Err("client disabled"),
        Some(client) => {
            let matched = inner
                .secrets
                .verify(
                    pool_index,
                    &credentials.client_id,
                    &credentials.secret,
                    &client.secret_hash,
                )
                .await;
            if matched {
                Ok(client)
            } else {
                Err("wrong client secret")
            }
        }
    };
    let client = match authenticated {
        Ok(client) => client,
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
    if client.allowed_scopes.is_empty() {
        // Cognito only lets app clients with custom scopes use client_credentials.
        return Err(Rejection::new(
            TokenError::UnauthorizedClient,
            "client has no allowed scopes",
        ));
    }
    let scopes = grant_scopes(form.scope.as_deref(), &client.allowed_scopes)?;

    let now = inner.clock.now();
    let claims = AccessTokenClaims::new(
        &inner.issuer_url(pool),
        &credentials.client_id,
        &scopes,
        client.token_lifetime_s,
        now,
    );
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
    })
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
    let document = json!({
        "issuer": issuer.inner.issuer_url(state),
        "jwks_uri": format!("{base}/{pool}/.well-known/jwks.json"),
        "token_endpoint": format!("{base}/{pool}/oauth2/token"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": state.scopes,
    });
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
