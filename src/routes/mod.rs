//! HTTP routes: thin handlers that extract, parse, call one flow and render. The mount list.

mod authorize;
mod callback;
mod consent;
mod cookies;
mod discovery;
mod form;
mod health;
mod logout;
mod revocation;
mod token;
mod userinfo;

pub use discovery::build_metadata;
pub use health::configure_starting;

use crate::error::PageError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};

/// Mounts every endpoint family.
pub fn configure(cfg: &mut web::ServiceConfig) {
    discovery::configure(cfg);
    authorize::configure(cfg);
    callback::configure(cfg);
    consent::configure(cfg);
    token::configure(cfg);
    userinfo::configure(cfg);
    revocation::configure(cfg);
    logout::configure(cfg);
    health::configure(cfg);
}

/// A readable HTML page for a person.
fn page(status: StatusCode, title: &'static str, message: &'static str) -> HttpResponse {
    PageError::new(status, title, message).error_response()
}
