//! What a callback that did not finish means: [`CallbackError`] (the route turns it into a page
//! or a redirect to the app), and how Discord's failures map onto it.

use super::Context;
use super::refusal::Refusal;
use super::response::AuthorizationResponse;
use super::upstream::SignInFor;
use crate::discord::DiscordError;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::store::StoreError;

/// Why a callback did not finish.
#[derive(Debug)]
pub enum CallbackError {
    /// No pending login matches (missing cookie, forged, expired or replayed state): a page,
    /// no redirect, no call to Discord.
    Unmatched,
    /// The login failed after its app was known: `redirect` carries the error to the app;
    /// `explain` says whether the person should first see a page about it.
    ToApp {
        /// The app's redirect URI with `error`, `error_description`, `state`, `iss`.
        redirect: AuthorizationResponse,
        /// Page heading and text when the person deserves an explanation before returning.
        explain: Option<(&'static str, &'static str)>,
        /// Why it failed, which decides the status of the explanation page.
        failure: Failure,
    },
    /// The global access rules refuse the person: the denial page (403).
    Refused(Refusal),
    /// Discord asked us to wait longer than a person should: 503 with `Retry-After`
    /// (RFC 9110 §15.6.4); `redirect` carries `temporarily_unavailable` to the app.
    Busy {
        /// The app's redirect URI with the error.
        redirect: AuthorizationResponse,
        /// How long Discord asked us to wait.
        retry_after: std::time::Duration,
    },
    /// Our own failure (store): a 503 page when it is passing (`is_temporary`), else a 500.
    Internal(OAuthError),
}

/// Why a login failed after its app was known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The callback itself is not acceptable (e.g. the wrong `iss`): 400.
    BadRequest,
    /// Discord refused the code it sent us at the exchange: the code was not this sign-in's
    /// (an attacker's code injected into someone's sign-in, or a stale one), not Discord's
    /// failure: 400.
    Refused,
    /// Discord failed or refused: 502.
    Upstream,
    /// The person declined at Discord: straight back to the app, no page.
    Cancelled,
}

impl From<StoreError> for CallbackError {
    /// Through `OAuthError`'s own mapping, so a database that is down or full stays a passing
    /// outage (a 503 page), as it is on every other path.
    fn from(e: StoreError) -> Self {
        Self::Internal(OAuthError::from(e))
    }
}

/// What a failed Discord call during the callback means for the person and the app: a 503 with
/// `Retry-After` when Discord rate-limits us, otherwise an explanation page and the error sent
/// on to the app (`temporarily_unavailable` when trying later may work, else `server_error`).
pub(super) fn from_discord(
    ctx: &Context<'_>,
    request: &SignInFor,
    e: &DiscordError,
) -> CallbackError {
    tracing::warn!(error = %e, "Discord call failed during the callback");
    if let DiscordError::RateLimited { retry_after } = e {
        let error = OAuthError::new(
            OAuthErrorCode::TemporarilyUnavailable,
            "Discord is limiting sign-ins right now",
        );
        return CallbackError::Busy {
            redirect: request.error_redirect(ctx, &error),
            retry_after: *retry_after,
        };
    }
    // Discord refusing the code it just sent us means the code was not this sign-in's: replayed,
    // stale, or injected by an attacker into someone else's sign-in. The request is at fault,
    // not Discord: a 400 that asks for a fresh sign-in.
    if matches!(e, DiscordError::InvalidGrant) {
        return CallbackError::ToApp {
            redirect: request.error_redirect(
                ctx,
                &OAuthError::new(
                    OAuthErrorCode::AccessDenied,
                    "Discord did not accept the code of this sign-in",
                ),
            ),
            explain: Some((
                "This sign-in cannot be completed",
                "Discord did not accept the sign-in code it sent back. This happens when a sign-in link is used twice or was not started in this browser. Go back to the app and sign in again.",
            )),
            failure: Failure::Refused,
        };
    }
    let (code, description, page) = if e.is_temporary() {
        (
            OAuthErrorCode::TemporarilyUnavailable,
            "Discord is not answering right now",
            (
                "Discord is not answering",
                "Discord is busy or unreachable right now. Please wait a minute and try again.",
            ),
        )
    } else {
        (
            OAuthErrorCode::ServerError,
            "the sign-in with Discord failed",
            (
                "Sign-in with Discord failed",
                "Discord gave an answer we could not use. Please try again; if it keeps happening, tell the administrator.",
            ),
        )
    };
    CallbackError::ToApp {
        redirect: request.error_redirect(ctx, &OAuthError::new(code, description)),
        explain: Some(page),
        failure: Failure::Upstream,
    }
}
