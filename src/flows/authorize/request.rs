//! The authorization request's parameters, parsed and checked against the client's
//! registration (OIDC Core §3.1.2.1, RFC 6749 §4.1.1, RFC 9126, RFC 9449 §10): the request a
//! sign-in carries through Discord and back.

use crate::clients::Clients;
use crate::config::ValidClient;
use crate::domain::{ClientId, Jkt, PkceChallenge, Scopes};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::keys::KeySet;
use crate::store::SessionRecord;
use crate::tokens;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;
/// The `prompt` values we act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// `none`: no interaction allowed.
    pub none: bool,
    /// `login`: force a fresh Discord login.
    pub login: bool,
    /// `consent`: force the consent page.
    pub consent: bool,
}

/// A validated authorization request; also stored with a pending Discord login and sealed
/// into the consent form.
///
/// Its JSON keeps the shape it had when every field was a string (the newtypes serialize as
/// plain strings, and are checked again when read), so a login pending across an upgrade
/// still finishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The verified client.
    pub client_id: ClientId,
    /// The verified redirect URI, exactly as sent.
    pub redirect_uri: String,
    /// Granted-to-be scopes (written in canonical order).
    pub scope: Scopes,
    /// Echoed back unchanged.
    pub state: Option<String>,
    /// Echoed into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<PkceChallenge>,
    /// Prompt flags.
    pub prompt: Prompt,
    /// Maximum authentication age in seconds.
    pub max_age: Option<i64>,
    /// The `sub` from a valid `id_token_hint`.
    pub hint_sub: Option<String>,
    /// How the response is returned (`response_mode`).
    #[serde(default, skip_serializing_if = "ResponseMode::is_query")]
    pub response_mode: ResponseMode,
    /// The DPoP key the code will be bound to (`dpop_jkt`, RFC 9449 §10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<Jkt>,
}

/// How an authorization response reaches the app (OAuth 2.0 Multiple Response Types §2.1,
/// Form Post Response Mode §2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// In the redirect URI's query (the default for `code`).
    #[default]
    Query,
    /// In a form the browser posts to the redirect URI.
    FormPost,
}

impl ResponseMode {
    /// Whether it is the default, query.
    pub fn is_query(&self) -> bool {
        *self == Self::Query
    }
}

impl AuthorizationRequest {
    /// The same request without one scope.
    pub fn without_scope(&self, scope: &str) -> Self {
        Self {
            scope: self.scope.without(scope),
            ..self.clone()
        }
    }
}

/// Why a request cannot proceed, and where the answer goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI is not verified: show a page, never redirect.
    Page {
        /// Heading.
        title: &'static str,
        /// Explanation (no reflected input).
        message: &'static str,
    },
    /// Send the error to the verified redirect URI.
    Redirect {
        /// Verified redirect URI.
        redirect_uri: String,
        /// How (the request's `response_mode`, when it could be read).
        mode: ResponseMode,
        /// The request's `state`.
        state: Option<String>,
        /// The error.
        error: OAuthError,
    },
}

/// What to do with a valid request.
#[derive(Debug)]
pub enum Decision {
    /// The SSO session may be used: issue a code now.
    UseSession(SessionRecord),
    /// Sign in at Discord first.
    SignInUpstream,
}

/// A parameter that appeared more than once.
fn duplicates(params: &[(String, String)]) -> HashSet<&str> {
    let mut seen = HashSet::new();
    params
        .iter()
        .filter(|(k, _)| !seen.insert(k.as_str()))
        .map(|(k, _)| k.as_str())
        .collect()
}

fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
        .filter(|v| !v.is_empty())
}

/// Validates `client_id` and `redirect_uri`, then everything else. `pushed` says the parameters
/// come from a pushed authorization request (RFC 9126), which a client may be held to.
pub fn validate(
    params: &[(String, String)],
    clients: &Clients,
    keys: &KeySet,
    issuer: &str,
    pushed: bool,
) -> Result<(AuthorizationRequest, Arc<ValidClient>), AuthorizeError> {
    let dups = duplicates(params);
    let page = |title, message| AuthorizeError::Page { title, message };
    if dups.contains("client_id") || dups.contains("redirect_uri") {
        return Err(page(
            "Invalid sign-in request",
            "The app sent client_id or redirect_uri more than once. Please contact the app's administrator.",
        ));
    }
    let client = first(params, "client_id")
        .and_then(|id| clients.get(id))
        .ok_or(page(
            "Unknown app",
            "The app that sent you here is not registered with this sign-in service. Please contact the app's administrator.",
        ))?;
    let redirect_uri = first(params, "redirect_uri").ok_or(page(
        "Invalid sign-in request",
        "The app did not say where to return after sign-in (redirect_uri is missing).",
    ))?;
    let public = client.is_public();
    if !client
        .redirect_uris
        .iter()
        .any(|r| r.matches(redirect_uri, public))
    {
        return Err(page(
            "Invalid return address",
            "The app asked to return to an address that is not registered for it, so this sign-in was stopped for your safety.",
        ));
    }

    // From here on, errors go back to the app.
    let state = if dups.contains("state") {
        None
    } else {
        first(params, "state").map(str::to_owned)
    };
    // The response mode first, so that every later error goes back the way the app asked.
    let (response_mode, mode_error) = match first(params, "response_mode") {
        None | Some("query") => (ResponseMode::Query, None),
        Some("form_post") => (ResponseMode::FormPost, None),
        Some(_) => (
            ResponseMode::Query,
            Some("response_mode must be query or form_post"),
        ),
    };
    let fail = |code, description: &'static str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        mode: response_mode,
        state: state.clone(),
        error: OAuthError::new(code, description),
    };
    use OAuthErrorCode as C;
    if let Some(why) = mode_error {
        return Err(fail(C::InvalidRequest, why));
    }
    if client.require_par && !pushed {
        return Err(fail(
            C::InvalidRequest,
            "this app must push its authorization requests first (POST /par, RFC 9126)",
        ));
    }
    if !dups.is_empty() {
        return Err(fail(
            C::InvalidRequest,
            "a parameter was sent more than once",
        ));
    }
    if first(params, "request").is_some() {
        return Err(fail(
            C::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if first(params, "request_uri").is_some() {
        return Err(fail(
            C::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match first(params, "response_type") {
        None => return Err(fail(C::InvalidRequest, "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                C::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    let mut scopes = Scopes::parse_request(first(params, "scope").unwrap_or_default());
    if !scopes.contains("openid") {
        return Err(fail(C::InvalidScope, "the openid scope is required"));
    }
    // OIDC Core §11: offline_access is only for clients allowed it; for others the scope is
    // ignored like any scope we do not grant (consent is settled when the code is issued).
    if !client.offline_access {
        scopes = scopes.without("offline_access");
    }
    // Likewise `connections`, for a client not allowed linked accounts.
    if !client.connections {
        scopes = scopes.without("connections");
    }
    let code_challenge = match (
        first(params, "code_challenge"),
        first(params, "code_challenge_method"),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(fail(
                C::InvalidRequest,
                "code_challenge_method without code_challenge",
            ));
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(fail(
                C::InvalidRequest,
                "only code_challenge_method=S256 is supported",
            ));
        }
        // RFC 7636 §4.3: an absent method means plain, which we refuse.
        (Some(_), None) => {
            return Err(fail(
                C::InvalidRequest,
                "code_challenge_method=S256 is required",
            ));
        }
        (Some(c), Some(_)) => Some(PkceChallenge::parse_s256(c).map_err(|_| {
            fail(
                C::InvalidRequest,
                "code_challenge is not a valid S256 challenge",
            )
        })?),
    };
    if public && code_challenge.is_none() {
        return Err(fail(
            C::InvalidRequest,
            "public clients must use PKCE (code_challenge with S256)",
        ));
    }
    // OIDC Core §3.1.2.1 defines four values; anything else is a malformed request.
    let mut prompt = Prompt::default();
    let mut prompt_count = 0;
    for value in first(params, "prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        prompt_count += 1;
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // Accounts are chosen at Discord: a fresh Discord login is the way to offer it.
            "select_account" => prompt.login = true,
            _ => {
                return Err(fail(
                    C::InvalidRequest,
                    "prompt must be none, login, consent or select_account",
                ));
            }
        }
    }
    if prompt.none && prompt_count > 1 {
        return Err(fail(
            C::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match first(params, "max_age") {
        None => None,
        Some(raw) => Some(
            raw.parse::<u32>()
                .map(i64::from)
                .map_err(|_| fail(C::InvalidRequest, "max_age must be a non-negative integer"))?,
        ),
    };
    let hint_sub = match first(params, "id_token_hint") {
        None => None,
        Some(hint) => {
            let es256 = |aud: &str| clients.signs_id_tokens_es256(aud);
            let claims =
                tokens::verify_id_token_hint(keys, issuer, hint, &es256).map_err(|_| {
                    fail(
                        C::InvalidRequest,
                        "id_token_hint is not an ID token issued here",
                    )
                })?;
            claims
                .get("sub")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        }
    };
    let dpop_jkt = match first(params, "dpop_jkt") {
        None => None,
        Some(raw) => Some(Jkt::parse(raw).map_err(|_| {
            fail(
                C::InvalidRequest,
                "dpop_jkt is not a JWK SHA-256 thumbprint (RFC 9449 §10)",
            )
        })?),
    };
    let request = AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope: scopes,
        state,
        nonce: first(params, "nonce").map(str::to_owned),
        code_challenge,
        prompt,
        max_age,
        hint_sub,
        response_mode,
        dpop_jkt,
    };
    Ok((request, client))
}
