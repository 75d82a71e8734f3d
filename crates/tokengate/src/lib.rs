#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Nothing in the core may panic on any input: no unwrap/expect/panic and no indexing that can
// go out of bounds (the RSA loops included). Tests may.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

/// `serde_json::json!`, as a [`json::Value`] (unit tests build their documents with it): written
/// by serde_json and read back by the core's own reader, which gives serde_json's values.
#[cfg(test)]
macro_rules! json {
    ($($t:tt)+) => {
        match ::serde_json::to_vec(&::serde_json::json!($($t)+))
            .map(|bytes| $crate::json::parse(&bytes))
        {
            Ok(Ok(v)) => v,
            _ => panic!("json! document that does not read back"),
        }
    };
}

pub mod audit;
pub mod bearer;
pub mod claims;
pub mod config;
pub mod error;
pub mod feed;
pub mod gate;
/// Strict JSON: the crate `tokengate-json`, compiled at opt-level 3 in every build.
pub use tokengate_json as json;
pub mod jwks;
pub mod keycache;
pub mod peer;
pub mod policy;
pub mod ratelimit;
pub mod route;
pub mod signature;
pub use tokengate_json::sorted;
pub mod target;
pub mod token;
pub mod tokencache;
pub mod verify;

pub use audit::{Decision, Verdict};
pub use claims::Claims;
pub use config::{AuditSink, Config, Crypto, Mode};
pub use error::{ConfigError, Error, ErrorCode};
pub use gate::{
    Allowed, Begin, Clock, Denied, Gate, HostCheck, Outcome, PendingRequest, RequestFacts, Response,
};
pub use jwks::{JwksError, KeySet, KeySetLimits};
pub use keycache::{FetchReason, FetchRequest, KeyCache, KeyCacheConfig, Lookup, RefreshError};
pub use policy::{
    Algorithm, ClaimRule, CognitoPool, MtlsBinding, Policy, PolicyBuilder, Revocation, Scopes,
    TokenUse,
};
pub use route::{Access, DefaultAccess, Routes, Rule};
pub use signature::{PublicKey, PureRust, SignatureBackend};
pub use verify::{PendingSignature, Provider, Request, Step, Verified, Verifier};
