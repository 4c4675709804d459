//! The protocol state machine: no HTTP types, time passed in. Routes call one function here.

pub mod account;
pub mod authorize;
pub mod client_auth;
pub mod client_credentials;
pub mod code;
pub mod community;
mod context;
pub mod deprovision;
pub mod device;
pub mod device_page;
pub mod dpop;
pub mod finish;
pub mod grant;
pub mod logout;
pub mod membership;
pub mod pushed;
pub mod recheck;
pub mod refresh;
pub mod refusal;
pub mod response;
pub mod revocation;
pub mod session;
pub mod signed_in;
pub mod upstream;
mod upstream_failure;
pub mod userinfo;

pub use context::Context;

#[cfg(test)]
mod tests;
