//! The issuer over real HTTP on 127.0.0.1: one test binary, so the server stack links once.

#[path = "../support/mod.rs"]
mod support;

mod client_certificates;
mod core_accepts;
mod cors;
mod discovery;
mod edge_policy;
mod edge_policy_admin;
mod rate_limit;
mod revocation;
mod rotation;
mod secrets;
mod token_endpoint;
mod token_shape;
