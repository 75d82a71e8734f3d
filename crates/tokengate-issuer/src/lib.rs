#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// A bad request must end in an error response, never in a panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod audit;
mod client_cert;
mod clock;
mod config;
mod edge_policy;
mod keys;
mod oauth;
mod rate_limit;
mod secret;
mod server;
mod token;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockWriteGuard};

use serde_json::json;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use audit::{AuditBuffer, AuditSink};
pub use clock::{Clock, ManualClock};
pub use config::{
    is_pool_id, AuditTarget, ClientCertHeader, ClientConfig, Config, ConfigError, EdgePolicyConfig,
    KeysConfig, PoolConfig, RateLimitConfig, ServerConfig, TokenEndpointAuthMethod,
    DEFAULT_TOKEN_LIFETIME_S, MAX_TOKEN_LIFETIME_S, MIN_TOKEN_LIFETIME_S, SAMPLE_CONFIG,
};
pub use edge_policy::{EdgeClient, EdgePolicyDocument, PolicyChange, EDGE_POLICY_JWS_TYPE};
pub use keys::{IssuerKey, KeyError, RotatedKey, Rotation, RSA_BITS};
pub use oauth::TokenError;
pub use secret::{hash_secret, HashError, HASH_ITERATIONS, HASH_MEMORY_KIB, HASH_PARALLELISM};
pub use token::{AccessTokenClaims, Confirmation};

use client_cert::CertificateRegistration;
use edge_policy::{EdgePolicy, FeedSigner};
use keys::KeyRing;
use rate_limit::RateLimiter;
use secret::SecretVerifier;

/// Where a server listens when neither the command line nor the config says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";

/// A running Cognito stand-in: pools, their keys and clients. Cheap to clone; clones share
/// state, so a test can keep one while the server uses another.
#[derive(Clone)]
pub struct Issuer {
    inner: Arc<Inner>,
}

/// Why an [`Issuer`] could not be built or could not do what was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The config is invalid (including unreadable key files).
    Config(ConfigError),
    /// No pool has this id.
    UnknownPool(String),
    /// Key generation or signing failed.
    Key(KeyError),
    /// Binding or serving failed.
    Io(io::Error),
    /// The pool has no client with this id.
    UnknownClient(String),
    /// A policy or secret change that cannot be made; says why.
    Invalid(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(error) => error.fmt(f),
            Error::UnknownPool(id) => write!(f, "no user pool with id {id:?}"),
            Error::Key(error) => error.fmt(f),
            Error::Io(error) => error.fmt(f),
            Error::UnknownClient(id) => write!(f, "no client with id {id:?} in this pool"),
            Error::Invalid(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(error) => Some(error),
            Error::Key(error) => Some(error),
            Error::Io(error) => Some(error),
            Error::UnknownPool(_) | Error::UnknownClient(_) | Error::Invalid(_) => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Error::Config(error)
    }
}

impl From<KeyError> for Error {
    fn from(error: KeyError) -> Self {
        Error::Key(error)
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Io(error)
    }
}

/// Options beyond the config file: clock and audit destination.
pub struct IssuerBuilder {
    config: Config,
    clock: Clock,
    audit: Option<AuditSink>,
}

impl IssuerBuilder {
    /// Read time from `clock` instead of the system clock.
    pub fn clock(mut self, clock: impl Into<Clock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// Send audit lines to `sink` instead of the config's `server.audit`.
    pub fn audit(mut self, sink: AuditSink) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Validate the config, load or generate keys.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad field (an unreadable or unusable `pem_files` entry
    /// included), or [`Error::Key`] when key generation fails.
    pub fn build(self) -> Result<Issuer, Error> {
        let IssuerBuilder {
            config,
            clock,
            audit,
        } = self;
        config.validate()?;
        let now = clock.now();
        let pools = config
            .pools
            .iter()
            .enumerate()
            .map(|(index, pool)| Pool::from_config(index, pool, now))
            .collect::<Result<Vec<_>, Error>>()?;
        let server = &config.server;
        let listen = server
            .listen
            .map_or_else(|| DEFAULT_LISTEN.to_owned(), |a| a.to_string());
        let limits = &server.rate_limit;
        Ok(Issuer {
            inner: Arc::new(Inner {
                pools,
                base_url: RwLock::new(
                    server
                        .base_url
                        .clone()
                        .unwrap_or_else(|| format!("http://{listen}")),
                ),
                base_url_configured: server.base_url.is_some(),
                jwks_max_age_s: server.jwks_max_age_s,
                admin_token: server.admin_token.clone(),
                trusted_client_cert_header: server.trusted_client_cert_header,
                clock,
                audit: audit.unwrap_or_else(|| server.audit.into()),
                secrets: SecretVerifier::new(),
                client_limiter: RateLimiter::new(limits.per_s, limits.burst),
                ip_failure_limiter: RateLimiter::new(
                    limits.ip_failures_per_s,
                    limits.ip_failures_burst,
                ),
            }),
        })
    }
}

impl Issuer {
    /// An issuer with the system clock and the config's audit destination.
    ///
    /// # Errors
    /// As [`IssuerBuilder::build`].
    pub fn from_config(config: Config) -> Result<Issuer, Error> {
        Issuer::builder(config).build()
    }

    /// Start configuring an issuer beyond its config file.
    pub fn builder(config: Config) -> IssuerBuilder {
        IssuerBuilder {
            config,
            clock: Clock::System,
            audit: None,
        }
    }

    /// Serve HTTP on `listener` in a new task until [`ServerHandle::shutdown`] is called or the
    /// handle is dropped. Unless `server.base_url` is configured, issuer URLs become
    /// `http://{listener address}/{poolId}`.
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub fn serve(&self, listener: TcpListener) -> io::Result<ServerHandle> {
        let (stop, stopped) = oneshot::channel::<()>();
        let mut handle = self.serve_with_shutdown(listener, async {
            // A dropped sender also ends the wait: dropping the handle stops the server.
            let _ = stopped.await;
        })?;
        handle.stop = Some(stop);
        Ok(handle)
    }

    /// Like [`Issuer::serve`], stopping gracefully when `signal` completes (e.g. SIGTERM).
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub fn serve_with_shutdown(
        &self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<ServerHandle> {
        let local_addr = listener.local_addr()?;
        if !self.inner.base_url_configured {
            *self
                .inner
                .base_url
                .write()
                .unwrap_or_else(PoisonError::into_inner) = format!("http://{local_addr}");
        }
        let app = server::router(self.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let rotations = self
            .inner
            .pools
            .iter()
            .any(|pool| pool.rotate_every_s.is_some())
            .then(|| tokio::spawn(server::scheduled_rotations(self.clone())));
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await;
            if let Some(rotations) = rotations {
                rotations.abort();
            }
            served
        });
        Ok(ServerHandle {
            local_addr,
            stop: None,
            task,
        })
    }

    /// Bind `127.0.0.1:0` and [`serve`](Issuer::serve): the one call a test needs.
    ///
    /// # Errors
    /// When binding fails.
    pub async fn serve_loopback(&self) -> io::Result<ServerHandle> {
        let listener = TcpListener::bind((IpAddr::from([127, 0, 0, 1]), 0)).await?;
        self.serve(listener)
    }

    /// `http://host:port` under which pools are served (see `server.base_url`).
    pub fn base_url(&self) -> String {
        self.inner
            .base_url
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Pool ids in config order; the first answers `POST /oauth2/token`.
    pub fn pool_ids(&self) -> Vec<String> {
        self.inner
            .pools
            .iter()
            .map(|pool| pool.id.clone())
            .collect()
    }

    /// The `iss` of the pool's tokens.
    ///
    /// # Errors
    /// [`Error::UnknownPool`].
    pub fn issuer_url(&self, pool: &str) -> Result<String, Error> {
        Ok(self.inner.issuer_url(self.pool(pool)?))
    }

    /// `{base_url}/{poolId}/.well-known/jwks.json`.
    ///
    /// # Errors
    /// [`Error::UnknownPool`].
    pub fn jwks_uri(&self, pool: &str) -> Result<String, Error> {
        let pool = self.pool(pool)?;
        Ok(format!(
            "{}/{}/.well-known/jwks.json",
            self.base_url(),
            pool.id
        ))
    }

    /// `{base_url}/{poolId}/oauth2/token`.
    ///
    /// # Errors
    /// [`Error::UnknownPool`].
    pub fn token_endpoint(&self, pool: &str) -> Result<String, Error> {
        let pool = self.pool(pool)?;
        Ok(format!("{}/{}/oauth2/token", self.base_url(), pool.id))
    }

    /// The pool's JWKS as served now: `{"keys":[…]}`.
    ///
    /// # Errors
    /// [`Error::UnknownPool`].
    pub fn jwks(&self, pool: &str) -> Result<serde_json::Value, Error> {
        let now = self.inner.clock.now();
        Ok(self.pool(pool)?.jwks(now))
    }

    /// The kid that signs the pool's tokens now.
    ///
    /// # Errors
    /// [`Error::UnknownPool`].
    pub fn signing_kid(&self, pool: &str) -> Result<String, Error> {
        let now = self.inner.clock.now();
        let signer = self.pool(pool)?.signer(now)?;
        Ok(signer.kid().to_owned())
    }

    /// Add a new signing key to the pool: the next `pem_files` key, or a fresh one. Generating
    /// an RSA key takes a moment: call this from a blocking context (`spawn_blocking`) inside
    /// an async runtime.
    ///
    /// # Errors
    /// [`Error::UnknownPool`], or [`Error::Key`] when generation fails.
    pub fn rotate(&self, pool: &str, rotation: Rotation) -> Result<RotatedKey, Error> {
        let pool = self.pool(pool)?;
        let spare = pool.ring().take_spare();
        // Generated outside the lock so that token requests are not held up meanwhile.
        let key = match spare {
            Some(key) => key,
            None => IssuerKey::generate()?,
        };
        let now = self.inner.clock.now();
        Ok(pool.ring().add(key, rotation, now))
    }

    /// Mint an access token for tests, exactly as the token endpoint would, but without
    /// checking that the client exists or may have these scopes, and with any lifetime and
    /// issue time (so tests can make expired tokens or tokens for unknown clients). Signed with
    /// the key that signs now.
    ///
    /// # Errors
    /// [`Error::UnknownPool`], or [`Error::Key`] when signing fails.
    pub fn issue_token(
        &self,
        pool: &str,
        client_id: &str,
        scopes: &[&str],
        lifetime_s: u64,
        now: u64,
    ) -> Result<String, Error> {
        let issuer = self.issuer_url(pool)?;
        let claims = AccessTokenClaims::new(&issuer, client_id, scopes, lifetime_s, now);
        self.sign_claims(pool, &claims)
    }

    /// Sign any claim set with the pool's current key (header `{"kid","alg":"RS256"}`), for
    /// tests that need tokens the token endpoint would never issue.
    ///
    /// # Errors
    /// [`Error::UnknownPool`], or [`Error::Key`] when encoding or signing fails.
    pub fn sign_claims(&self, pool: &str, claims: &impl serde::Serialize) -> Result<String, Error> {
        let now = self.inner.clock.now();
        let signer = self.pool(pool)?.signer(now)?;
        Ok(token::sign_compact(&signer, claims)?)
    }

    /// The pool's edge policy feed as `GET /{poolId}/edge-policy.json` serves it now.
    ///
    /// # Errors
    /// [`Error::UnknownPool`], or [`Error::Key`] when signing fails.
    pub fn edge_policy(&self, pool: &str) -> Result<EdgePolicyDocument, Error> {
        let state = self.pool(pool)?;
        Ok(state.edge_policy.render(&self.inner.issuer_url(state))?)
    }

    /// The JWK Set of the key that signs the pool's feed (`edge-policy-keys.json`), `None`
    /// when the feed is unsigned.
    ///
    /// # Errors
    /// [`Error::UnknownPool`].
    pub fn edge_policy_keys(&self, pool: &str) -> Result<Option<serde_json::Value>, Error> {
        Ok(self
            .pool(pool)?
            .edge_policy
            .signer()
            .map(|signer| json!({ "keys": [signer.jwk()] })))
    }

    /// Add a token id to the feed's `revoke.jti` until `until` (the token's `exp`). The
    /// revocation endpoint does this after checking the token; this does not.
    ///
    /// # Errors
    /// [`Error::UnknownPool`], [`Error::Invalid`] for an empty `jti`.
    pub fn revoke_jti(&self, pool: &str, jti: &str, until: u64) -> Result<PolicyChange, Error> {
        settled(self.policy_change(
            pool,
            PolicyOp::RevokeJti {
                jti: jti.to_owned(),
                until,
            },
        ))
    }

    /// Revoke every token of `client_id` at the edges (`revoke.client_ids`) until `until`,
    /// by default now + the client's token lifetime (the pool's longest for a client it does
    /// not know): every token the client holds now has expired by then. An explicit `until`
    /// replaces the entry's (so `until` ≤ now lifts a revocation); the default only extends it.
    ///
    /// # Errors
    /// [`Error::UnknownPool`], [`Error::Invalid`] for a malformed client id.
    pub fn revoke_client(
        &self,
        pool: &str,
        client_id: &str,
        until: Option<u64>,
    ) -> Result<PolicyChange, Error> {
        settled(self.policy_change(
            pool,
            PolicyOp::RevokeClient {
                client_id: client_id.to_owned(),
                until,
            },
        ))
    }

    /// Revoke the tokens of `client_id` issued before `before` (default: now) at the edges
    /// (`revoke.issued_before`), until `before` + the client's token lifetime (the pool's
    /// longest for a client it does not know). An existing cut-off for the client is merged:
    /// the later cut-off and the later `until` win.
    ///
    /// # Errors
    /// [`Error::UnknownPool`], [`Error::Invalid`] for a malformed client id or a cut-off so
    /// old that every token issued before it has expired.
    pub fn revoke_issued_before(
        &self,
        pool: &str,
        client_id: &str,
        before: Option<u64>,
    ) -> Result<PolicyChange, Error> {
        settled(self.policy_change(
            pool,
            PolicyOp::RevokeIssuedBefore {
                client_id: client_id.to_owned(),
                before,
            },
        ))
    }

    /// Put `client_id` on the feed's `client_ids` allow-list (creating the list, which then
    /// replaces the edges' configured one), for good or until `until`. Adding a listed client
    /// again replaces its `until`.
    ///
    /// # Errors
    /// [`Error::UnknownPool`], [`Error::Invalid`] for a malformed client id or an `until` not
    /// in the future.
    pub fn add_edge_client(
        &self,
        pool: &str,
        client_id: &str,
        until: Option<u64>,
    ) -> Result<PolicyChange, Error> {
        settled(self.policy_change(
            pool,
            PolicyOp::AddEdgeClient {
                client_id: client_id.to_owned(),
                until,
            },
        ))
    }

    /// Take `client_id` off the feed's `client_ids` allow-list. Removing the last one leaves
    /// an empty list: the edges then admit no client of this pool.
    ///
    /// # Errors
    /// [`Error::UnknownPool`], [`Error::Invalid`] when the feed has no allow-list yet (it
    /// cannot remove a client from the edges' own list: add the clients to keep first).
    pub fn remove_edge_client(&self, pool: &str, client_id: &str) -> Result<PolicyChange, Error> {
        settled(self.policy_change(
            pool,
            PolicyOp::RemoveEdgeClient {
                client_id: client_id.to_owned(),
            },
        ))
    }

    /// The feed's `client_ids` allow-list with each entry's `until`, in id order; `None` while
    /// the feed has none.
    ///
    /// # Errors
    /// [`Error::UnknownPool`].
    pub fn edge_client_ids(&self, pool: &str) -> Result<Option<Vec<EdgeClient>>, Error> {
        Ok(self.pool(pool)?.edge_policy.with_entries(|entries| {
            entries.client_ids.as_ref().map(|list| {
                list.iter()
                    .map(|(id, until)| EdgeClient {
                        client_id: id.clone(),
                        until: *until,
                    })
                    .collect()
            })
        }))
    }

    /// Let `client_id` also authenticate with the secret of `phc` (an argon2id PHC string from
    /// [`hash_secret`]), e.g. during a secret rotation. Returns how many secrets it has now.
    ///
    /// # Errors
    /// [`Error::UnknownPool`], [`Error::UnknownClient`], [`Error::Invalid`] for a malformed hash.
    pub fn add_client_secret_hash(
        &self,
        pool: &str,
        client_id: &str,
        phc: &str,
    ) -> Result<usize, Error> {
        secret::check_phc(phc).map_err(Error::Invalid)?;
        let client = self.client(pool, client_id)?;
        if let Some(registration) = &client.certificate {
            return Err(Error::Invalid(format!(
                "the client authenticates with its certificate ({}), not a secret",
                registration.method.as_str()
            )));
        }
        let mut hashes = client.hashes_mut();
        if !hashes.iter().any(|hash| hash == phc) {
            hashes.push(phc.to_owned());
        }
        Ok(hashes.len())
    }

    /// Stop accepting the secret of `phc` for `client_id`, at once (its cached verification is
    /// forgotten). Returns how many secrets the client has left.
    ///
    /// # Errors
    /// [`Error::UnknownPool`], [`Error::UnknownClient`], [`Error::Invalid`] when the client has
    /// no such hash or it is its last one.
    pub fn remove_client_secret_hash(
        &self,
        pool: &str,
        client_id: &str,
        phc: &str,
    ) -> Result<usize, Error> {
        let pool_index = self
            .inner
            .pool_index(pool)
            .ok_or_else(|| Error::UnknownPool(pool.to_owned()))?;
        let client = self.client(pool, client_id)?;
        let mut hashes = client.hashes_mut();
        let Some(position) = hashes.iter().position(|hash| hash == phc) else {
            return Err(Error::Invalid(
                "the client has no such secret hash".to_owned(),
            ));
        };
        if hashes.len() == 1 {
            return Err(Error::Invalid(
                "that is the client's only secret hash: add the new one first".to_owned(),
            ));
        }
        hashes.remove(position);
        let left = hashes.len();
        // Forgotten while the write lock is held, so no request can re-cache it meanwhile.
        self.inner.secrets.forget(pool_index, client_id, phc);
        drop(hashes);
        Ok(left)
    }

    /// The clock this issuer reads.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn pool(&self, id: &str) -> Result<&Pool, Error> {
        self.inner
            .pool_index(id)
            .and_then(|index| self.inner.pools.get(index))
            .ok_or_else(|| Error::UnknownPool(id.to_owned()))
    }

    fn client(&self, pool: &str, client_id: &str) -> Result<&Client, Error> {
        self.pool(pool)?
            .clients
            .get(client_id)
            .ok_or_else(|| Error::UnknownClient(client_id.to_owned()))
    }

    /// Make a feed change without waiting for the clock to pass its version (request handlers
    /// wait asynchronously with [`edge_policy::settle`], the public methods with [`settled`]).
    pub(crate) fn policy_change(&self, pool: &str, op: PolicyOp) -> Result<PolicyChange, Error> {
        let pool = self.pool(pool)?;
        let now = self.inner.clock.now();
        let check_id = |id: &str| {
            if config::is_client_id(id) {
                Ok(())
            } else {
                Err(Error::Invalid(format!(
                    "client_id {id:?} is not 1 to 128 of A-Z a-z 0-9 . _ -"
                )))
            }
        };
        let policy = &pool.edge_policy;
        let (version, changed, until, at) = match op {
            PolicyOp::RevokeJti { jti, until } => {
                if jti.is_empty() || jti.len() > 256 {
                    return Err(Error::Invalid("jti must be 1 to 256 bytes".to_owned()));
                }
                let (version, changed) = policy.change(now, |entries| {
                    // An expired token needs no entry.
                    if until > now {
                        let slot = entries.jti.entry(jti).or_insert(until);
                        *slot = (*slot).max(until);
                    }
                });
                (version, changed, Some(until), None)
            }
            PolicyOp::RevokeClient { client_id, until } => {
                check_id(&client_id)?;
                let default = now.saturating_add(pool.lifetime_of(&client_id));
                let mut in_force = None;
                let (version, changed) = policy.change(now, |entries| {
                    let next = match (until, entries.revoked_clients.get(&client_id)) {
                        (Some(until), _) => until,
                        (None, Some(&current)) => current.max(default),
                        (None, None) => default,
                    };
                    if next > now {
                        entries.revoked_clients.insert(client_id, next);
                        in_force = Some(next);
                    } else {
                        entries.revoked_clients.remove(&client_id);
                    }
                });
                (version, changed, in_force, None)
            }
            PolicyOp::RevokeIssuedBefore { client_id, before } => {
                check_id(&client_id)?;
                let at = before.unwrap_or(now);
                let until = at.saturating_add(pool.lifetime_of(&client_id));
                if until <= now {
                    return Err(Error::Invalid(format!(
                        "every token issued before {at} has expired by now: nothing to revoke"
                    )));
                }
                let mut merged = (at, until);
                let (version, changed) = policy.change(now, |entries| {
                    let slot = entries
                        .issued_before
                        .entry(client_id)
                        .or_insert((at, until));
                    *slot = (slot.0.max(at), slot.1.max(until));
                    merged = *slot;
                });
                (version, changed, Some(merged.1), Some(merged.0))
            }
            PolicyOp::AddEdgeClient { client_id, until } => {
                check_id(&client_id)?;
                if until.is_some_and(|until| until <= now) {
                    return Err(Error::Invalid("until must be in the future".to_owned()));
                }
                let (version, changed) = policy.change(now, |entries| {
                    entries
                        .client_ids
                        .get_or_insert_with(Default::default)
                        .insert(client_id, until);
                });
                (version, changed, until, None)
            }
            PolicyOp::RemoveEdgeClient { client_id } => {
                check_id(&client_id)?;
                // The list only ever goes from absent to present, so this check cannot race.
                if policy.with_entries(|entries| entries.client_ids.is_none()) {
                    return Err(Error::Invalid(
                        "the feed has no client_ids allow-list yet (the edges use their own): \
                         add the clients to keep first"
                            .to_owned(),
                    ));
                }
                let (version, changed) = policy.change(now, |entries| {
                    if let Some(list) = &mut entries.client_ids {
                        list.remove(&client_id);
                    }
                });
                (version, changed, None, None)
            }
        };
        Ok(PolicyChange {
            version,
            changed,
            until,
            at,
        })
    }
}

/// Wait (a millisecond or so) until the system clock has passed the change's version.
fn settled(change: Result<PolicyChange, Error>) -> Result<PolicyChange, Error> {
    if let Ok(change) = &change {
        edge_policy::settle_blocking(change.version);
    }
    change
}

/// A change to a pool's edge policy feed.
pub(crate) enum PolicyOp {
    RevokeJti {
        jti: String,
        until: u64,
    },
    RevokeClient {
        client_id: String,
        until: Option<u64>,
    },
    RevokeIssuedBefore {
        client_id: String,
        before: Option<u64>,
    },
    AddEdgeClient {
        client_id: String,
        until: Option<u64>,
    },
    RemoveEdgeClient {
        client_id: String,
    },
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("base_url", &self.base_url())
            .field("pools", &self.pool_ids())
            .finish_non_exhaustive()
    }
}

/// A server started by [`Issuer::serve`].
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl ServerHandle {
    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://{local_addr}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stop accepting connections, let requests in flight finish, and wait for that.
    ///
    /// # Errors
    /// When serving failed.
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.wait().await
    }

    /// Wait until the server stops (for [`Issuer::serve_with_shutdown`]: until its signal).
    ///
    /// # Errors
    /// When serving failed.
    pub async fn wait(self) -> io::Result<()> {
        match self.task.await {
            Ok(served) => served,
            Err(join) => Err(io::Error::other(join)),
        }
    }
}

struct Inner {
    pools: Vec<Pool>,
    base_url: RwLock<String>,
    base_url_configured: bool,
    jwks_max_age_s: u64,
    admin_token: Option<String>,
    /// The one header a TLS-terminating proxy forwards client certificates in; others ignored.
    trusted_client_cert_header: Option<ClientCertHeader>,
    clock: Clock,
    audit: AuditSink,
    secrets: SecretVerifier,
    client_limiter: RateLimiter<(usize, String)>,
    ip_failure_limiter: RateLimiter<IpAddr>,
}

impl Inner {
    fn pool_index(&self, id: &str) -> Option<usize> {
        self.pools.iter().position(|pool| pool.id == id)
    }

    fn issuer_url(&self, pool: &Pool) -> String {
        match &pool.issuer {
            Some(issuer) => issuer.clone(),
            None => format!(
                "{}/{}",
                self.base_url.read().unwrap_or_else(PoisonError::into_inner),
                pool.id
            ),
        }
    }
}

struct Pool {
    id: String,
    issuer: Option<String>,
    clients: HashMap<String, Client>,
    /// Union of the clients' allowed scopes, for discovery's `scopes_supported`.
    scopes: Vec<String>,
    rotate_every_s: Option<u64>,
    keys: Mutex<KeyRing>,
    /// The longest token lifetime of the pool's clients.
    max_lifetime_s: u64,
    edge_policy: EdgePolicy,
}

struct Client {
    /// argon2id PHC strings; any of them authenticates. Changed at runtime by the admin API.
    /// Empty for a client that authenticates with a certificate.
    secret_hashes: RwLock<Vec<String>>,
    /// `Some` for `tls_client_auth` and `self_signed_tls_client_auth` clients (RFC 8705).
    certificate: Option<CertificateRegistration>,
    allowed_scopes: Vec<String>,
    token_lifetime_s: u64,
    enabled: bool,
}

impl Client {
    fn hashes(&self) -> Vec<String> {
        self.secret_hashes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn hashes_mut(&self) -> RwLockWriteGuard<'_, Vec<String>> {
        self.secret_hashes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pool {
    fn from_config(index: usize, config: &PoolConfig, now: u64) -> Result<Pool, Error> {
        let mut loaded = VecDeque::new();
        for (file_index, path) in config.keys.pem_files.iter().enumerate() {
            let field = format!("pools[{index}].keys.pem_files[{file_index}]");
            let pem = std::fs::read_to_string(path).map_err(|error| {
                ConfigError::invalid(&field, format!("cannot read {}: {error}", path.display()))
            })?;
            let key = IssuerKey::from_pkcs8_pem(&pem).map_err(|error| {
                ConfigError::invalid(&field, format!("{}: {error}", path.display()))
            })?;
            loaded.push_back(key);
        }
        let initial = match loaded.pop_front() {
            Some(key) => key,
            None => IssuerKey::generate()?,
        };
        let mut scopes: Vec<String> = Vec::new();
        let clients = config
            .clients
            .iter()
            .map(|client| {
                for scope in &client.allowed_scopes {
                    if !scopes.contains(scope) {
                        scopes.push(scope.clone());
                    }
                }
                let state = Client {
                    secret_hashes: RwLock::new(client.secret_hashes()),
                    certificate: CertificateRegistration::of(client),
                    allowed_scopes: client.allowed_scopes.clone(),
                    token_lifetime_s: client.token_lifetime_s.unwrap_or(config.token_lifetime_s),
                    enabled: client.enabled,
                };
                (client.client_id.clone(), state)
            })
            .collect();
        let signer = match &config.edge_policy {
            None => None,
            Some(edge_policy) => Some(FeedSigner::load(edge_policy).map_err(|message| {
                ConfigError::invalid(
                    format!("pools[{index}].edge_policy.signing_key_pem"),
                    message,
                )
            })?),
        };
        Ok(Pool {
            id: config.id.clone(),
            max_lifetime_s: config.max_token_lifetime_s(),
            edge_policy: EdgePolicy::new(signer, config.edge_client_ids.as_deref(), now),
            issuer: config.issuer.clone(),
            clients,
            scopes,
            rotate_every_s: config.keys.rotate_every_s,
            keys: Mutex::new(KeyRing::new(
                initial,
                loaded,
                config.keys.prepublish_s,
                config.max_token_lifetime_s(),
                config.keys.rotate_every_s,
                now,
            )),
        })
    }

    fn ring(&self) -> MutexGuard<'_, KeyRing> {
        // Every ring method leaves it consistent, so a panic elsewhere cannot corrupt it.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn signer(&self, now: u64) -> Result<Arc<IssuerKey>, Error> {
        self.ring()
            .signer(now)
            .ok_or_else(|| Error::Key(KeyError::from_message("pool has no key".to_owned())))
    }

    /// How long tokens of `client_id` live: its own lifetime, or the pool's longest for a
    /// client the pool does not know (minted tokens).
    fn lifetime_of(&self, client_id: &str) -> u64 {
        self.clients
            .get(client_id)
            .map_or(self.max_lifetime_s, |client| client.token_lifetime_s)
    }

    fn jwks(&self, now: u64) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .ring()
            .published(now)
            .iter()
            .map(|key| key.jwk())
            .collect();
        serde_json::json!({ "keys": keys })
    }
}
