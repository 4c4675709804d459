//! One integration-test binary (fast to link): a real server, a real database, the fake Discord.

mod access;
mod authorize;
mod browser;
mod callback;
mod client_auth_limits;
mod config_validation;
mod consent;
mod cors;
mod discovery;
mod endpoint_helpers;
mod flow;
mod health;
mod helpers;
mod key_rotation;
mod lifecycle_helpers;
mod logout;
mod memory;
mod refresh;
mod revocation;
mod startup_errors;
mod store_conformance;
mod test_db;
mod token;
mod userinfo;
