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

    /// Every parameter but the named ones (e.g. the client's credentials), in name order.
    pub fn pairs_without(&self, names: &[&str]) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .0
            .iter()
            .filter(|(k, _)| !names.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        pairs.sort();
        pairs
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

/// Parses a form body: wrong content type, a query string, a repeated parameter or one that does
/// not decode to UTF-8 is `invalid_request` (RFC 6749 §3.2 and §3.1: parameters must not be
/// included more than once; Appendix B: UTF-8).
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
    let pairs = decode_strict(body)
        .map_err(|NotUtf8| bad("a parameter does not percent-decode to valid UTF-8"))?;
    let mut params = HashMap::new();
    for (name, value) in pairs {
        if params.insert(name, value).is_some() {
            return Err(bad("a parameter was sent more than once"));
        }
    }
    Ok(FormParams(params))
}

/// The first value of `name` among `pairs` (a page's form or query, read with [`pairs`]).
pub fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// All pairs of a query string or form body, in order, duplicates kept (for `/authorize`).
/// The edge checks (`edges.rs`) have already refused every query and form body that does not
/// decode to UTF-8, so the one decoder here never fails for a routed request; if it did, the
/// request reads as carrying no parameters (and is refused as such), never as altered ones.
pub fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    decode_strict(raw).unwrap_or_default()
}

/// A name or value whose percent-decoding is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8;

/// Decodes `application/x-www-form-urlencoded` pairs (WHATWG URL §5.1: `&`-separated, `+` is a
/// space, `%XX` escapes) and refuses, rather than replaces, bytes that are not UTF-8.
pub fn decode_strict(raw: &[u8]) -> Result<Vec<(String, String)>, NotUtf8> {
    raw.split(|b| *b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = match piece.iter().position(|b| *b == b'=') {
                Some(at) => (&piece[..at], &piece[at + 1..]),
                None => (piece, &b""[..]),
            };
            Ok((decode_component(name)?, decode_component(value)?))
        })
        .collect()
}

fn decode_component(raw: &[u8]) -> Result<String, NotUtf8> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(decoded).map_err(|_| NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding_matches_the_lenient_one_on_valid_input() {
        let raw = b"a=1&b=x+y&c=caf%C3%A9&&d&e=%2B&f=%zz";
        let lenient: Vec<(String, String)> = url::form_urlencoded::parse(raw)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(decode_strict(raw), Ok(lenient));
    }

    #[test]
    fn invalid_utf8_is_refused_not_replaced() {
        assert_eq!(decode_strict(b"state=%FF"), Err(NotUtf8));
        assert_eq!(decode_strict(b"st%E9=1"), Err(NotUtf8));
        assert_eq!(
            decode_strict(&[b'x', b'=', 0xFF]),
            Err(NotUtf8),
            "a raw byte"
        );
    }
}
