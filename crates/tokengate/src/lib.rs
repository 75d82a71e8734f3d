#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod audit;
pub mod claims;
pub mod error;
pub mod jwks;
pub mod keycache;
pub mod policy;
pub mod signature;
pub mod token;
pub mod tokencache;
pub mod verify;

pub use audit::{Decision, Verdict};
pub use claims::Claims;
pub use error::{ConfigError, Error, ErrorCode};
pub use jwks::{JwksError, KeySet, KeySetLimits};
pub use keycache::{FetchReason, FetchRequest, KeyCache, KeyCacheConfig, Lookup, RefreshError};
pub use policy::{
    Algorithm, ClaimRule, CognitoPool, MtlsBinding, Policy, PolicyBuilder, Revocation, Scopes,
    TokenUse,
};
pub use signature::{PublicKey, PureRust, SignatureBackend};
pub use verify::{PendingSignature, Provider, Request, Step, Verified, Verifier};
