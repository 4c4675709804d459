//! The authorization request (OIDC Core §3.1.2): parse, validate, and decide what happens next.
//!
//! Errors before `client_id` and `redirect_uri` are verified render a page and never redirect
//! (RFC 6749 §4.1.2.1); every later error goes back to the verified redirect URI.

mod request;

pub use request::*;

use crate::domain::DiscordId;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::store::SessionRecord;
use time::OffsetDateTime;

/// How `GET`/`POST /authorize` ends; `routes/authorize.rs` renders it.
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// The client or redirect URI is not verified: a page (400), never a redirect.
    Page {
        /// Heading.
        title: &'static str,
        /// Explanation (no reflected input).
        message: &'static str,
    },
    /// Back to the app's verified redirect URI (an error response).
    Redirect(super::response::AuthorizationResponse),
    /// The person signs in at Discord first.
    SignInUpstream(AuthorizationRequest),
    /// Answered from the SSO session: a code, the consent page, a denial, ….
    Finished(super::finish::Finish),
}

/// `/authorize` end to end (OIDC Core §3.1.2): validate the request, read the SSO session
/// from its cookie, decide, and finish from the session or send the person to Discord.
pub async fn run(
    ctx: &super::Context<'_>,
    params: &[(String, String)],
    session_cookie: Option<&str>,
    now: OffsetDateTime,
) -> Result<AuthorizeOutcome, OAuthError> {
    let issuer = ctx.config.issuer.as_str();
    // A request_uri from /par stands for the pushed parameters (RFC 9126 §4), used once.
    let (params, pushed) = match super::pushed::resolve(ctx, params, now).await? {
        super::pushed::Parameters::Direct => (std::borrow::Cow::Borrowed(params), false),
        super::pushed::Parameters::Pushed(pushed) => (std::borrow::Cow::Owned(pushed), true),
        super::pushed::Parameters::Unusable => {
            return Ok(AuthorizeOutcome::Page {
                title: "This sign-in link has expired",
                message: "The app's sign-in request has expired or was already used. Go back to the app and sign in again.",
            });
        }
    };
    let (request, client) = match validate(&params, &ctx.clients, ctx.keys, issuer, pushed) {
        Ok(valid) => valid,
        Err(AuthorizeError::Page { title, message }) => {
            tracing::info!(
                title,
                "authorization request refused before the client was verified"
            );
            return Ok(AuthorizeOutcome::Page { title, message });
        }
        Err(AuthorizeError::Redirect {
            redirect_uri,
            mode,
            state,
            error,
        }) => {
            tracing::info!(error = %error, "authorization request refused");
            return Ok(AuthorizeOutcome::Redirect(super::response::redirect_error(
                &redirect_uri,
                mode,
                state.as_deref(),
                &error,
                issuer,
            )));
        }
    };
    tracing::Span::current().record("client_id", request.client_id.as_str());
    let current = super::session::current(ctx, session_cookie, now).await?;
    match decide(&request, current, now, |uid| ctx.subject(&client, uid)) {
        Ok(Decision::UseSession(s)) => {
            if let Err(e) = ctx.store.touch_session(&s.id, now).await {
                tracing::warn!(error = %e, "could not record session use");
            }
            Ok(
                match super::finish::finish(ctx, &client, &request, &s, now).await? {
                    super::finish::Finish::SignInAgain => AuthorizeOutcome::SignInUpstream(request),
                    next => AuthorizeOutcome::Finished(next),
                },
            )
        }
        Ok(Decision::SignInUpstream) => Ok(AuthorizeOutcome::SignInUpstream(request)),
        Err(code) => {
            let error = OAuthError::new(
                code,
                match code {
                    OAuthErrorCode::LoginRequired => "the person is not signed in",
                    _ => "interaction is required",
                },
            );
            Ok(AuthorizeOutcome::Redirect(super::response::error_redirect(
                ctx, &request, &error,
            )))
        }
    }
}

/// Whether the SSO session can answer this request, or Discord must be asked, or neither.
/// `subject_of` maps a Discord id to the `sub` this client sees (for `id_token_hint`).
pub fn decide(
    request: &AuthorizationRequest,
    session: Option<SessionRecord>,
    now: OffsetDateTime,
    subject_of: impl Fn(&DiscordId) -> String,
) -> Result<Decision, OAuthErrorCode> {
    let usable = session.filter(|s| {
        // OIDC Core §3.1.2.1: max_age=0 always re-authenticates (like prompt=login); with
        // whole seconds, a sign-in earlier within the same second would otherwise pass.
        let fresh_enough = request
            .max_age
            .is_none_or(|max| max > 0 && (now - s.auth_time).whole_seconds() <= max);
        let same_person = request
            .hint_sub
            .as_ref()
            .is_none_or(|sub| *sub == subject_of(&s.user_id));
        fresh_enough && same_person && !request.prompt.login
    });
    match (usable, request.prompt.none) {
        (Some(session), _) => Ok(Decision::UseSession(session)),
        (None, true) => Err(OAuthErrorCode::LoginRequired),
        (None, false) => Ok(Decision::SignInUpstream),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ClientId, Scopes, SessionId, TokenHash};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2030-01-01 12:00:00.500 UTC);

    fn request(max_age: Option<i64>) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: ClientId::parse("app").unwrap(),
            redirect_uri: "https://app.example.com/cb".into(),
            scope: Scopes::parse_request("openid"),
            state: None,
            nonce: None,
            code_challenge: None,
            prompt: Prompt::default(),
            max_age,
            hint_sub: None,
            response_mode: Default::default(),
            dpop_jkt: None,
        }
    }

    fn session_authenticated_at(auth_time: OffsetDateTime) -> SessionRecord {
        SessionRecord {
            id: SessionId::parse("sid").unwrap(),
            secret_hash: TokenHash::of("secret"),
            user_id: DiscordId::parse("318172463195504640").unwrap(),
            auth_time,
            created_at: auth_time,
            expires_at: auth_time + time::Duration::hours(12),
            last_seen_at: auth_time,
            device: Default::default(),
        }
    }

    #[test]
    fn max_age_zero_asks_discord_even_for_a_sign_in_of_this_very_second() {
        let session = session_authenticated_at(datetime!(2030-01-01 12:00:00 UTC));
        let decision = decide(&request(Some(0)), Some(session), NOW, DiscordId::to_string);
        assert!(
            matches!(decision, Ok(Decision::SignInUpstream)),
            "{decision:?}"
        );
    }

    #[test]
    fn max_age_admits_a_sign_in_exactly_that_old_and_no_older() {
        let at = |secs| session_authenticated_at(NOW - time::Duration::seconds(secs));
        let young = decide(&request(Some(60)), Some(at(60)), NOW, DiscordId::to_string);
        let old = decide(&request(Some(60)), Some(at(61)), NOW, DiscordId::to_string);
        assert!(matches!(young, Ok(Decision::UseSession(_))), "{young:?}");
        assert!(matches!(old, Ok(Decision::SignInUpstream)), "{old:?}");
    }
}
