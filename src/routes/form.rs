//! Reading OAuth2 form bodies: `application/x-www-form-urlencoded` only, each parameter once.

use crate::error::{OAuthError, OAuthErrorCode};
use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::Bytes;
use std::collections::HashMap;

/// Parsed form parameters, guaranteed to hold each name at most once.
pub struct FormParams(HashMap<String, String>);

impl FormParams {
    /// A parameter, treating an empty value as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Whether the request declares a form body.
pub fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Parses a form body: wrong content type, a query string, or a repeated parameter is
/// `invalid_request` (RFC 6749 §3.2 and §3.1: parameters must not be included more than once).
pub fn parse(req: &HttpRequest, body: &Bytes) -> Result<FormParams, OAuthError> {
    let bad = |why: &'static str| OAuthError::new(OAuthErrorCode::InvalidRequest, why);
    if !req.query_string().is_empty() {
        return Err(bad(
            "parameters must be sent in the request body, not the query string",
        ));
    }
    if !is_form(req) {
        return Err(bad("the body must be application/x-www-form-urlencoded"));
    }
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if params
            .insert(name.into_owned(), value.into_owned())
            .is_some()
        {
            return Err(bad("a parameter was sent more than once"));
        }
    }
    Ok(FormParams(params))
}

/// All pairs of a query string or form body, in order, duplicates kept (for `/authorize`).
pub fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
