//! `POST /api/v10/oauth2/token` (authorization_code, refresh_token) and `.../token/revoke`.
//!
//! Form bodies only ("JSON content is not permitted", docs: topics/oauth2); client auth by HTTP
//! Basic or `client_id`/`client_secret` in the body; errors as RFC 6749 §5.2 JSON.

use super::faults::{Prelude, count_window, prelude, with_limits};
use super::oauth::{Params, is_pkce_value, param, parse_params};
use super::state::{RateInfo, State};
use super::{FakeRoute, lock};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::sync::Mutex;
use std::time::Instant;
use url::form_urlencoded;

/// Discord's description for a bad, expired or reused code.
const INVALID_CODE: &str = "Invalid \"code\" in request.";

/// `POST /oauth2/token`.
pub(super) async fn token(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let malformed = match prelude(&state, FakeRoute::Token).await {
        Prelude::Respond(answer) => return answer,
        Prelude::Continue { malformed } => malformed,
    };
    let mut s = lock(&state);
    let info = match count_window(&mut s, FakeRoute::Token, "app") {
        Ok(info) => info,
        Err(answer) => return answer,
    };
    let (params, client_id) = match form_and_client(&req, &body, &s, &info) {
        Ok(ok) => ok,
        Err(answer) => return answer,
    };
    let result = match param(&params, "grant_type") {
        Some("authorization_code") => authorization_code(&mut s, &params, &client_id),
        Some("refresh_token") => refresh_token(&mut s, &params, &client_id),
        Some(_) => Err((
            "unsupported_grant_type",
            "unsupported grant_type".to_owned(),
        )),
        None => Err(("invalid_request", "grant_type is missing".to_owned())),
    };
    match result {
        Ok(_) if malformed => with_limits(HttpResponse::Ok(), &info)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("application/json")
            .body(r#"{"access_token": "#),
        Ok(tokens) => with_limits(HttpResponse::Ok(), &info)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(tokens),
        Err((error, description)) => {
            oauth_error(StatusCode::BAD_REQUEST, &info, error, &description)
        }
    }
}

/// `POST /oauth2/token/revoke`: revokes the whole authorization the token belongs to
/// (docs: "any active access or refresh tokens associated with that authorization will be
/// revoked"); an unknown token still gets 200 (RFC 7009 §2.2).
pub(super) async fn revoke(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    if let Prelude::Respond(answer) = prelude(&state, FakeRoute::Revoke).await {
        return answer;
    }
    let mut s = lock(&state);
    let info = match count_window(&mut s, FakeRoute::Revoke, "app") {
        Ok(info) => info,
        Err(answer) => return answer,
    };
    let (params, _client) = match form_and_client(&req, &body, &s, &info) {
        Ok(ok) => ok,
        Err(answer) => return answer,
    };
    let Some(token) = param(&params, "token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            &info,
            "invalid_request",
            "token is missing",
        );
    };
    let grant = s
        .access
        .get(token)
        .map(|t| t.grant)
        .or_else(|| s.refresh.get(token).map(|t| t.grant));
    if let Some(grant) = grant {
        s.revoke_grant(grant);
    }
    with_limits(HttpResponse::Ok(), &info).json(serde_json::json!({}))
}

type Failure = (&'static str, String);

fn authorization_code(
    s: &mut State,
    params: &Params,
    client_id: &str,
) -> Result<serde_json::Value, Failure> {
    let code = param(params, "code").ok_or(("invalid_request", "code is missing".to_owned()))?;
    let redirect_uri = param(params, "redirect_uri")
        .ok_or(("invalid_request", "redirect_uri is missing".to_owned()))?;
    // Single use: the code is gone whatever happens next.
    let Some(pending) = s.codes.remove(code) else {
        // A replayed code revokes what it issued (RFC 6749 §4.1.2).
        if let Some(grant) = s.used_codes.get(code).copied() {
            s.revoke_grant(grant);
        }
        return Err(("invalid_grant", INVALID_CODE.to_owned()));
    };
    let grant = s.new_grant();
    s.used_codes.insert(code.to_owned(), grant);
    if pending.expires_at <= Instant::now() || pending.client_id != client_id {
        return Err(("invalid_grant", INVALID_CODE.to_owned()));
    }
    if pending.redirect_uri != redirect_uri {
        return Err((
            "invalid_grant",
            "Invalid \"redirect_uri\" in request.".to_owned(),
        ));
    }
    match (&pending.code_challenge, param(params, "code_verifier")) {
        (Some(challenge), Some(verifier)) if is_pkce_value(verifier) => {
            let digest = Sha256::digest(verifier.as_bytes());
            let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            if &computed != challenge {
                return Err((
                    "invalid_grant",
                    "code_verifier does not match code_challenge".to_owned(),
                ));
            }
        }
        (Some(_), _) => {
            return Err((
                "invalid_grant",
                "a valid code_verifier is required".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err((
                "invalid_grant",
                "code_verifier sent without code_challenge".to_owned(),
            ));
        }
        (None, None) => {}
    }
    let tokens = s.issue_tokens(grant, &pending.user_id, &pending.scopes, client_id);
    serde_json::to_value(tokens).map_err(|e| ("server_error", e.to_string()))
}

fn refresh_token(
    s: &mut State,
    params: &Params,
    client_id: &str,
) -> Result<serde_json::Value, Failure> {
    s.refresh_uses += 1;
    let token = param(params, "refresh_token")
        .ok_or(("invalid_request", "refresh_token is missing".to_owned()))?;
    let Some(old) = s.refresh.get(token) else {
        return Err((
            "invalid_grant",
            "Invalid \"refresh_token\" in request.".to_owned(),
        ));
    };
    if old.client_id != client_id {
        return Err((
            "invalid_grant",
            "Invalid \"refresh_token\" in request.".to_owned(),
        ));
    }
    let mut scopes = old.scopes.clone();
    if let Some(requested) = param(params, "scope") {
        let requested: Vec<String> = requested.split_whitespace().map(str::to_owned).collect();
        if requested.iter().any(|r| !scopes.contains(r)) {
            return Err((
                "invalid_scope",
                "scope exceeds the original grant".to_owned(),
            ));
        }
        scopes = requested;
    }
    let (grant, user_id) = (old.grant, old.user_id.clone());
    // Rotation: the old refresh token stops working.
    s.refresh.remove(token);
    let tokens = s.issue_tokens(grant, &user_id, &scopes, client_id);
    serde_json::to_value(tokens).map_err(|e| ("server_error", e.to_string()))
}

/// Checks the content type, parses the form and authenticates the client; returns its id.
fn form_and_client(
    req: &HttpRequest,
    body: &[u8],
    s: &State,
    info: &RateInfo,
) -> Result<(Params, String), HttpResponse> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        let msg = "Content-Type must be application/x-www-form-urlencoded";
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            info,
            "invalid_request",
            msg,
        ));
    }
    let params = parse_params(body)
        .map_err(|e| oauth_error(StatusCode::BAD_REQUEST, info, "invalid_request", &e))?;
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .map(decode_basic);
    let (id, secret) = match (basic, param(&params, "client_secret")) {
        (Some(_), Some(_)) => {
            let msg = "use one client authentication method";
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                info,
                "invalid_request",
                msg,
            ));
        }
        (Some(Some((id, secret))), None) => (Some(id), Some(secret)),
        (Some(None), None) => (None, None),
        (None, secret) => (
            param(&params, "client_id").map(str::to_owned),
            secret.map(str::to_owned),
        ),
    };
    match (id, secret) {
        (Some(id), Some(secret)) if id == s.data.client_id && secret == s.data.client_secret => {
            Ok((params, id))
        }
        _ => Err(with_limits(HttpResponse::Unauthorized(), info)
            .insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"discord\""))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({"error": "invalid_client"}))),
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1) → (id, secret).
fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

fn form_decode(value: &str) -> String {
    let escaped = value.replace('&', "%26");
    form_urlencoded::parse(format!("v={escaped}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn oauth_error(
    status: StatusCode,
    info: &RateInfo,
    error: &str,
    description: &str,
) -> HttpResponse {
    with_limits(HttpResponse::build(status), info)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"error": error, "error_description": description}))
}
