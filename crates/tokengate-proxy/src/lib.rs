#![doc = include_str!("../README.md")]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod config;
pub mod hostcrypto;
pub mod pairs;
pub mod replay;
pub mod report;
pub mod shared;

#[cfg(target_arch = "wasm32")]
mod filter;
