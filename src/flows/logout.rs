//! RP-initiated logout (OIDC RP-Initiated Logout 1.0) and back-channel logout fan-out
//! (OIDC Back-Channel Logout 1.0): end the session, then tell every app that took part.

use super::Context;
use crate::config::ValidClient;
use crate::domain::{ClientId, DiscordId, OpaqueToken, SessionId};
use crate::error::OAuthError;
use crate::store::{EndedSession, LogoutDelivery, SessionRecord, StoreError};
use crate::tokens::{self, BACKCHANNEL_LOGOUT_EVENT, LogoutTokenClaims};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use time::OffsetDateTime;

/// How long a signed logout token stays valid at the receiver.
pub const LOGOUT_TOKEN_TTL: i64 = 120;

/// A validated logout request.
#[derive(Debug, Default)]
pub struct LogoutRequest {
    /// The client named by `client_id` or the hint's `aud`.
    pub client: Option<Arc<ValidClient>>,
    /// The hint's `sub`, when a valid `id_token_hint` of ours was sent.
    pub hint_sub: Option<String>,
    /// The hint's `sid`, when present.
    pub hint_sid: Option<String>,
    /// A registered post-logout redirect URI, exactly as sent.
    pub redirect: Option<String>,
    /// Echoed on the redirect.
    pub state: Option<String>,
}

/// A logout request that must not be acted on: shown as a page, never redirected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutError {
    /// `client_id` names another client than the `id_token_hint`'s audience.
    ClientMismatch,
}

/// Reads the parameters: an expired hint is accepted (it only identifies), a foreign or
/// tampered one (or any other kind of token) is ignored, and a redirect URI is kept only when
/// registered for the client. A `client_id` contradicting the hint's audience is an error
/// (RP-Initiated Logout §2: the OP must verify they agree), so whoever built the link cannot
/// borrow one client's hint to be redirected to another client's URI.
pub fn parse(
    ctx: &Context<'_>,
    id_token_hint: Option<&str>,
    client_id: Option<&str>,
    post_logout_redirect_uri: Option<&str>,
    logout_state: Option<&str>,
) -> Result<LogoutRequest, LogoutError> {
    let hint = id_token_hint.and_then(|h| {
        tokens::verify_id_token_hint(ctx.keys, ctx.config.issuer.as_str(), h, &|aud| {
            ctx.clients.signs_id_tokens_es256(aud)
        })
        .ok()
    });
    let hint_aud: Vec<String> = match hint.as_ref().and_then(|c| c.get("aud")) {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    if let Some(id) = client_id {
        if hint.is_some() && !hint_aud.iter().any(|aud| aud == id) {
            tracing::info!("logout client_id does not match the id_token_hint's audience");
            return Err(LogoutError::ClientMismatch);
        }
    }
    let client = hint_aud
        .first()
        .map(String::as_str)
        .or(client_id)
        .and_then(|id| ctx.clients.get(id));
    let redirect = post_logout_redirect_uri.filter(|uri| {
        client.as_ref().is_some_and(|c| {
            c.post_logout_redirect_uris
                .iter()
                .any(|r| r.as_str() == *uri)
        })
    });
    if post_logout_redirect_uri.is_some() && redirect.is_none() {
        tracing::info!("post_logout_redirect_uri not registered for the client; not redirecting");
    }
    let claim = |name: &str| {
        hint.as_ref()
            .and_then(|c| c.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Ok(LogoutRequest {
        hint_sub: claim("sub"),
        hint_sid: claim("sid"),
        client,
        redirect: redirect.map(str::to_owned),
        state: logout_state.map(str::to_owned),
    })
}

/// Whether the request proves the app asked for this person's logout, so no confirmation
/// page is needed: a valid hint naming the session's person.
pub fn is_confirmed_by_hint(
    ctx: &Context<'_>,
    request: &LogoutRequest,
    session: &SessionRecord,
) -> bool {
    // A hint from an earlier session of the same person does not speak for this one, and a
    // hint without `sid` (an offline_access ID token) cannot show which session it is from.
    let same_session = request.hint_sid.as_deref() == Some(session.id.as_str());
    match (&request.hint_sub, &request.client) {
        (Some(sub), Some(client)) => same_session && *sub == ctx.subject(client, &session.user_id),
        _ => false,
    }
}

/// The CSRF token for the confirmation form: derived from the session cookie, so only the
/// browser holding the session can produce it and nothing needs storing.
pub fn csrf_token(session_secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("guildgate-logout:{session_secret}")))
}

/// Where the browser goes after logout, if anywhere.
pub fn redirect_after(request: &LogoutRequest) -> Option<String> {
    let uri = request.redirect.as_ref()?;
    let mut url = url::Url::parse(uri).ok()?;
    if let Some(s) = &request.state {
        url.query_pairs_mut().append_pair("state", s);
    }
    Some(url.to_string())
}

/// What `/logout` was sent, as the route read it (first value of each parameter, empty ones
/// left out).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogoutInput<'a> {
    /// `id_token_hint`.
    pub id_token_hint: Option<&'a str>,
    /// `client_id`.
    pub client_id: Option<&'a str>,
    /// `post_logout_redirect_uri`.
    pub post_logout_redirect_uri: Option<&'a str>,
    /// `state`.
    pub state: Option<&'a str>,
    /// The confirmation form's `csrf`, only when it was POSTed with `confirm=yes`.
    pub confirmed_csrf: Option<&'a str>,
    /// The SSO session cookie's value.
    pub session_cookie: Option<&'a str>,
}

/// How `/logout` ends; `routes/logout.rs` renders it.
#[derive(Debug)]
pub enum LogoutOutcome {
    /// The `client_id` contradicts the hint: nothing changes, a page says so.
    LinkNotValid,
    /// Ask the person first (no hint from this session, no confirmed form).
    Confirm(LogoutRequest),
    /// Signed out (or was not signed in): clear the cookie, then the registered redirect or
    /// the signed-out page.
    SignedOut(LogoutRequest),
}

/// `/logout` end to end (RP-Initiated Logout 1.0 §2–3): read the request, find the session,
/// and end it when the app's hint or the person's confirmation speaks for it.
pub async fn run(
    ctx: &Context<'_>,
    input: LogoutInput<'_>,
    now: OffsetDateTime,
) -> Result<LogoutOutcome, OAuthError> {
    let request = match parse(
        ctx,
        input.id_token_hint,
        input.client_id,
        input.post_logout_redirect_uri,
        input.state,
    ) {
        Ok(request) => request,
        Err(LogoutError::ClientMismatch) => return Ok(LogoutOutcome::LinkNotValid),
    };
    let Some(current) = super::session::current(ctx, input.session_cookie, now).await? else {
        return Ok(LogoutOutcome::SignedOut(request));
    };
    // The form carries a token only the browser holding the session can make.
    let confirmed_by_form = input
        .confirmed_csrf
        .zip(input.session_cookie)
        .is_some_and(|(csrf, secret)| csrf == csrf_token(secret));
    if !confirmed_by_form && !is_confirmed_by_hint(ctx, &request, &current) {
        return Ok(LogoutOutcome::Confirm(request));
    }
    sign_out(ctx, &request, &current.id, now).await?;
    Ok(LogoutOutcome::SignedOut(request))
}

/// Ends a session (revoking its grants) and queues back-channel logout for its clients.
pub async fn end_session(
    ctx: &Context<'_>,
    session_id: &SessionId,
    now: OffsetDateTime,
) -> Result<Option<EndedSession>, OAuthError> {
    let Some(ended) = ctx.store.end_session(session_id, now).await? else {
        return Ok(None);
    };
    notify_clients(ctx, &ended, now).await?;
    tracing::info!(sid = %ended.session.id, user = %ended.session.user_id, "session ended");
    Ok(Some(ended))
}

/// RP-initiated logout confirmed: ends the session like [`end_session`] and writes the audit
/// line (the app named by the request, the person).
pub async fn sign_out(
    ctx: &Context<'_>,
    request: &LogoutRequest,
    session_id: &SessionId,
    now: OffsetDateTime,
) -> Result<Option<EndedSession>, OAuthError> {
    let ended = end_session(ctx, session_id, now).await?;
    if let Some(ended) = &ended {
        ctx.audit(&crate::audit::Event::Logout {
            client_id: request.client.as_ref().map(|c| c.id.as_str()),
            user_id: ended.session.user_id.as_str(),
        });
    }
    Ok(ended)
}

/// Queues one logout token per participating client that has a back-channel URI.
pub async fn notify_clients(
    ctx: &Context<'_>,
    ended: &EndedSession,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let session = &ended.session;
    queue(
        ctx,
        &ended.clients,
        &session.user_id,
        Some(&session.id),
        now,
    )
    .await
}

/// `guildgate users revoke`: ends every session and revokes every grant of a person, and tells
/// every app involved: those of the sessions (with `sid`) and those holding session-less
/// `offline_access` grants (with `sub` only, Back-Channel Logout §2.4).
pub async fn revoke_user(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    now: OffsetDateTime,
) -> Result<Vec<EndedSession>, StoreError> {
    let offline_clients: Vec<ClientId> = ctx
        .store
        .list_user_grants(user_id, now)
        .await?
        .into_iter()
        .filter(|g| g.session_id.is_none())
        .map(|g| g.client_id)
        .collect();
    let ended = ctx.store.end_user_sessions(user_id, now).await?;
    for session in &ended {
        notify_clients(ctx, session, now).await?;
    }
    let mut offline_clients = offline_clients;
    offline_clients.sort();
    offline_clients.dedup();
    queue(ctx, &offline_clients, user_id, None, now).await?;
    Ok(ended)
}

/// Tells one app by back-channel logout that a person's grant ended (with `sid` when the grant
/// belonged to a session), without ending the session for other apps.
pub async fn notify_client(
    ctx: &Context<'_>,
    client_id: &ClientId,
    user_id: &DiscordId,
    sid: Option<&SessionId>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    queue(ctx, std::slice::from_ref(client_id), user_id, sid, now).await
}

pub(super) async fn queue(
    ctx: &Context<'_>,
    client_ids: &[ClientId],
    user_id: &DiscordId,
    sid: Option<&SessionId>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let deliveries: Vec<LogoutDelivery> = client_ids
        .iter()
        .filter_map(|id| ctx.clients.get(id.as_str()))
        .filter_map(|client| {
            let uri = client.backchannel_logout_uri.as_ref()?;
            match delivery(ctx, &client, user_id, sid, uri.as_str(), now) {
                Ok(delivery) => Some(delivery),
                // Never queue an empty message that would fail for a day: say so instead.
                Err(e) => {
                    tracing::error!(error = %e, client_id = %client.id, "cannot prepare a back-channel logout; this app is not told");
                    None
                }
            }
        })
        .collect();
    if deliveries.is_empty() {
        return Ok(());
    }
    ctx.store.enqueue_logout_deliveries(&deliveries).await?;
    ctx.logout_wakeup.notify_one();
    Ok(())
}

fn delivery(
    ctx: &Context<'_>,
    client: &ValidClient,
    user_id: &DiscordId,
    sid: Option<&SessionId>,
    uri: &str,
    now: OffsetDateTime,
) -> Result<LogoutDelivery, serde_json::Error> {
    let mut events = Map::new();
    events.insert(BACKCHANNEL_LOGOUT_EVENT.into(), json!({}));
    let claims = LogoutTokenClaims {
        iss: ctx.config.issuer.as_str().to_owned(),
        aud: client.id.as_str().to_owned(),
        iat: now.unix_timestamp(),
        exp: now.unix_timestamp() + LOGOUT_TOKEN_TTL,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        sub: ctx.subject(client, user_id),
        sid: sid.map(ToString::to_string),
        events,
    };
    Ok(LogoutDelivery {
        id: OpaqueToken::generate().expose().to_owned(),
        client_id: client.id.clone(),
        session_id: sid.cloned(),
        user_id: user_id.clone(),
        uri: uri.to_owned(),
        logout_token: serde_json::to_string(&claims)?,
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
    })
}
