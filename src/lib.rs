//! guildgate: an OpenID Connect provider that signs people in with Discord.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod allocator;
pub mod audit;
pub mod claims;
pub mod cli;
pub mod client_ip;
pub mod clients;
pub mod config;
#[cfg(feature = "dev")]
pub mod demo;
#[cfg(feature = "dev")]
pub mod dev;
pub mod discord;
pub mod discovery;
pub mod domain;
pub mod dpop;
pub mod error;
pub mod flows;
pub mod jobs;
pub mod jws;
pub mod keyed_lock;
pub mod keys;
pub mod limits;
pub mod live;
pub mod metrics;
pub mod pages;
pub mod policy;
pub mod reload;
pub mod report;
pub mod routes;
pub mod sealed;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod tokens;
