//! One integration-test binary (fast to link): a real server, a real database, the fake Discord.

mod access;
mod browser;
mod config_validation;
mod discovery;
mod flow;
mod health;
mod helpers;
mod lifecycle;
mod security;
mod startup_errors;
mod store_conformance;
mod test_db;
mod authorize;
mod callback;
mod endpoint_helpers;
mod token;
mod userinfo;
