//! `GET /oauth2/authorize` and the picker's approve/cancel links.
//!
//! Errors about the client or redirect URI render a page (never redirect to an unverified URI,
//! RFC 6749 §4.1.2.1); every other error redirects back with `error`, `state` and `iss`.

use super::faults::{Prelude, prelude};
use super::state::{PendingCode, State};
use super::{FakeRoute, lock, pages};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;
use url::{Url, form_urlencoded};

/// The scopes Discord documents (docs: topics/oauth2#shared-resources-oauth2-scopes).
const KNOWN_SCOPES: &[&str] = &[
    "activities.read",
    "activities.write",
    "applications.builds.read",
    "applications.builds.upload",
    "applications.commands",
    "applications.commands.update",
    "applications.commands.permissions.update",
    "applications.entitlements",
    "applications.store.update",
    "bot",
    "connections",
    "dm_channels.read",
    "email",
    "gdm.join",
    "guilds",
    "guilds.join",
    "guilds.members.read",
    "identify",
    "messages.read",
    "relationships.read",
    "role_connections.write",
    "rpc",
    "rpc.activities.write",
    "rpc.notifications.read",
    "rpc.voice.read",
    "rpc.voice.write",
    "voice",
    "webhook.incoming",
];

/// Request parameters by name.
pub(super) type Params = HashMap<String, String>;

/// Parses form/query parameters; a repeated parameter is an error (RFC 6749 §3.1, §3.2).
pub(super) fn parse_params(raw: &[u8]) -> Result<Params, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw) {
        if out.insert(k.clone().into_owned(), v.into_owned()).is_some() {
            return Err(format!("parameter {k} is repeated"));
        }
    }
    Ok(out)
}

/// A parameter; an empty value counts as absent (RFC 6749 §3.1).
pub(super) fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    prompt: Option<String>,
    /// The parameters, form-encoded in a stable order, for the picker's links.
    query: String,
}

/// `GET /oauth2/authorize`.
pub(super) async fn authorize(req: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    if let Prelude::Respond(answer) = prelude(&state, FakeRoute::Authorize).await {
        return answer;
    }
    let params = match parse_params(req.query_string().as_bytes()) {
        Ok(p) => p,
        Err(e) => return pages::error_page(StatusCode::BAD_REQUEST, "Invalid OAuth2 request", &e),
    };
    let mut s = lock(&state);
    let request = match validate(&s, &params) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    // Like Discord for a signed-in user who already authorized the app: no screen at all.
    if let Some(user_id) = s.signed_in.clone() {
        if request.prompt.as_deref() != Some("consent") {
            return approve_as(&mut s, &request, &user_id);
        }
    }
    pages::picker(&s.data.users, &request.scopes, &request.query)
}

/// `GET /oauth2/authorize/approve?...&user_id=ID`: the picker's "I am this user, I consent".
pub(super) async fn approve(req: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    let mut params = match parse_params(req.query_string().as_bytes()) {
        Ok(p) => p,
        Err(e) => return pages::error_page(StatusCode::BAD_REQUEST, "Invalid OAuth2 request", &e),
    };
    let Some(user_id) = params.remove("user_id") else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "Invalid OAuth2 request",
            "user_id is missing",
        );
    };
    let mut s = lock(&state);
    match validate(&s, &params) {
        Ok(request) => approve_as(&mut s, &request, &user_id),
        Err(answer) => answer,
    }
}

/// `GET /oauth2/authorize/cancel`: the user declined; `access_denied` goes back to the client.
pub(super) async fn cancel(req: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    let params = match parse_params(req.query_string().as_bytes()) {
        Ok(p) => p,
        Err(e) => return pages::error_page(StatusCode::BAD_REQUEST, "Invalid OAuth2 request", &e),
    };
    let s = lock(&state);
    match validate(&s, &params) {
        Ok(request) => redirect(
            &request.redirect_uri,
            &[
                ("error", "access_denied"),
                (
                    "error_description",
                    "The resource owner or authorization server denied the request",
                ),
            ],
            request.state.as_deref(),
            s.issuer(),
        ),
        Err(answer) => answer,
    }
}

fn approve_as(s: &mut State, request: &AuthRequest, user_id: &str) -> HttpResponse {
    if s.data.user(user_id).is_none() {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "Unknown user",
            "No such user in the fake data.",
        );
    }
    let pending = PendingCode {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        user_id: user_id.to_owned(),
        scopes: request.scopes.clone(),
        code_challenge: request.code_challenge.clone(),
        expires_at: Instant::now() + s.code_ttl,
    };
    let code = s.issue_code(pending);
    redirect(
        &request.redirect_uri,
        &[("code", &code)],
        request.state.as_deref(),
        s.issuer(),
    )
}

fn validate(s: &State, params: &Params) -> Result<AuthRequest, HttpResponse> {
    let bad =
        |detail: &str| pages::error_page(StatusCode::BAD_REQUEST, "Invalid OAuth2 request", detail);
    let client_id = param(params, "client_id").ok_or_else(|| bad("client_id is missing"))?;
    if client_id != s.data.client_id {
        return Err(bad("Unknown application (client_id)."));
    }
    let redirect_uri =
        param(params, "redirect_uri").ok_or_else(|| bad("redirect_uri is missing"))?;
    if !s.data.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(bad("Invalid OAuth2 redirect_uri"));
    }
    let state = param(params, "state").map(str::to_owned);
    let fail = |error: &str, description: &str| {
        redirect(
            redirect_uri,
            &[("error", error), ("error_description", description)],
            state.as_deref(),
            s.issuer(),
        )
    };
    if param(params, "response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let scopes: Vec<String> = param(params, "scope")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return Err(fail("invalid_scope", "scope is missing"));
    }
    if let Some(unknown) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return Err(fail("invalid_scope", &format!("unknown scope {unknown}")));
    }
    // Discord's metadata lists only S256 (RFC 7636 §4.2: 43-128 characters of the unreserved set).
    let code_challenge = match (
        param(params, "code_challenge"),
        param(params, "code_challenge_method"),
    ) {
        (None, None) => None,
        (Some(c), Some("S256")) if is_pkce_value(c) => Some(c.to_owned()),
        (Some(_), Some("S256")) => return Err(fail("invalid_request", "malformed code_challenge")),
        _ => {
            return Err(fail(
                "invalid_request",
                "PKCE needs code_challenge with code_challenge_method=S256",
            ));
        }
    };
    let prompt = param(params, "prompt").map(str::to_owned);
    if !matches!(prompt.as_deref(), None | Some("none") | Some("consent")) {
        return Err(fail("invalid_request", "prompt must be none or consent"));
    }
    let mut keys: Vec<&String> = params.keys().collect();
    keys.sort();
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(keys.into_iter().map(|k| (k.as_str(), params[k].as_str())))
        .finish();
    Ok(AuthRequest {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state,
        code_challenge,
        prompt,
        query,
    })
}

/// RFC 7636 §4.1/§4.2: 43-128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub(super) fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// 302 to a registered redirect URI with `pairs`, `state` (if sent) and `iss` (RFC 9207).
fn redirect(
    redirect_uri: &str,
    pairs: &[(&str, &str)],
    state: Option<&str>,
    iss: &str,
) -> HttpResponse {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "Invalid OAuth2 redirect_uri",
            redirect_uri,
        );
    };
    {
        let mut query = url.query_pairs_mut();
        query.extend_pairs(pairs);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", iss);
    }
    HttpResponse::Found()
        .insert_header(("Location", url.as_str()))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}
