//! The last step of every authorization: with a session in hand, apply the client's consent
//! rule and issue the code. Shared by the SSO path and the Discord callback.

use super::Context;
use super::authorize::AuthorizationRequest;
use super::membership::{self, Membership};
use super::recheck::{self, RecheckError};
use super::refusal::Refusal;
use super::response::{AuthorizationResponse, error_redirect, success_redirect};
use super::{code, logout};
use crate::audit::Event;
use crate::config::{Consent, ValidClient};
use crate::domain::Scopes;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::metrics::SignIn;
use crate::store::{SessionRecord, UserRecord};
use crate::tokens;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use time::OffsetDateTime;

/// What the browser gets next.
#[derive(Debug)]
pub enum Finish {
    /// Back to the app (with a code or an error).
    Redirect(AuthorizationResponse),
    /// The access rules refuse this person for this app: explain, then return with the error
    /// or sign in with another Discord account.
    Denied(Refusal),
    /// The session's membership is stale and only a new Discord sign-in can renew it (no kept
    /// Discord tokens, or Discord ended the authorization): send the browser to Discord again.
    SignInAgain,
    /// Discord could not be asked to confirm a stale membership (fail closed): explain, then
    /// return to the app with `temporarily_unavailable`.
    Unavailable {
        /// The app's redirect URI carrying `error=temporarily_unavailable`.
        redirect: AuthorizationResponse,
    },
    /// Show the consent page for this client and these scopes.
    AskConsent {
        /// Display name of the app.
        client_name: String,
        /// Scopes it asks for.
        scopes: Scopes,
        /// The sealed pending request for the consent form.
        ticket: String,
        /// The claims this app maps from Discord roles and memberships that these scopes
        /// release (`[[clients.claims]]`), named on the page too.
        mapped_claims: Vec<String>,
    },
}

/// The scope that asks for access outliving the session (OIDC Core §11).
const OFFLINE_ACCESS: &str = "offline_access";

/// How long the person may look at the consent page.
const CONSENT_TICKET_TTL: i64 = 600;

/// The pending request sealed into the consent form, bound to the session.
#[derive(Serialize, Deserialize)]
struct ConsentTicket {
    iss: String,
    exp: i64,
    sid: String,
    request: AuthorizationRequest,
}

/// What an app's request comes to before anything is written for it.
#[derive(Debug)]
pub enum Decision {
    /// Issue a code for this request (its scopes as they will be granted).
    Code(AuthorizationRequest),
    /// Anything else the browser gets.
    Answer(Finish),
}

/// The app's access rules (on the membership snapshot, renewed first when stale and the app
/// depends on it), consent as configured
/// (`never` | `once` | `always`, `prompt=consent`), then the code.
pub async fn finish(
    ctx: &Context<'_>,
    client: &ValidClient,
    request: &AuthorizationRequest,
    session: &SessionRecord,
    now: OffsetDateTime,
) -> Result<Finish, OAuthError> {
    let user = ctx.store.get_user(&session.user_id).await?.ok_or_else(|| {
        OAuthError::new(
            OAuthErrorCode::ServerError,
            "the session's person is unknown",
        )
    })?;
    match decide(ctx, client, request, session, &user, None, now).await? {
        Decision::Code(request) => {
            let code = code::issue(ctx, &request, session, now).await?;
            Ok(Finish::Redirect(success_redirect(ctx, &request, &code)))
        }
        Decision::Answer(next) => Ok(next),
    }
}

/// [`finish`]'s decision for a session whose person is at hand, without the code's write.
/// `fresh` is the membership a sign-in has just fetched and not yet stored (the sign-in is
/// written with its code, `code::issue_at_sign_in`); `None` reads the stored snapshot.
pub async fn decide(
    ctx: &Context<'_>,
    client: &ValidClient,
    request: &AuthorizationRequest,
    session: &SessionRecord,
    user: &UserRecord,
    fresh: Option<&Membership>,
    now: OffsetDateTime,
) -> Result<Decision, OAuthError> {
    // An app whose rules or groups do not involve guilds never reads the snapshot; for the
    // others a snapshot older than discord.membership_ttl is brought up to date first, so a
    // person removed from a server cannot walk into new apps on an old sign-in.
    let snapshot = match fresh {
        _ if !membership::matters_for(ctx, client) => Cow::Owned(Membership::default()),
        Some(fresh) => Cow::Borrowed(fresh),
        None => match recheck::current(ctx, user, now).await {
            Ok(m) => Cow::Owned(m),
            Err(e) => return stale_membership(ctx, request, e).map(Decision::Answer),
        },
    };
    if let Err(denial) = membership::check(ctx, Some(client), user, &snapshot) {
        super::refusal::record_app_denial(ctx, client.id.as_str(), user.id.as_str(), denial);
        // The global rules no longer admit the person: the session must not open other apps.
        // (Never so for a sign-in being finished: the same rules just admitted it on `fresh`.)
        if membership::check(ctx, None, user, &snapshot).is_err() {
            logout::end_session(ctx, &session.id, now).await?;
        }
        return Ok(Decision::Answer(Finish::Denied(Refusal::for_app(
            ctx,
            &client.name,
            request,
            &user.username,
            denial.explanation(),
        ))));
    }
    let remembered = remembered_consent(ctx, client, request, session).await?;
    let (granted, ask) = plan_consent(client, request, remembered.as_ref());
    let request = &granted;
    if ask {
        if request.prompt.none {
            let error = OAuthError::new(
                OAuthErrorCode::ConsentRequired,
                "the person must consent first",
            );
            return Ok(Decision::Answer(Finish::Redirect(error_redirect(
                ctx, request, &error,
            ))));
        }
        let ticket = ConsentTicket {
            iss: ctx.config.issuer.as_str().to_owned(),
            exp: now.unix_timestamp() + CONSENT_TICKET_TTL,
            sid: session.id.to_string(),
            request: request.clone(),
        };
        let ticket = tokens::sign(ctx.keys, tokens::TokenKind::ConsentTicket, &ticket)
            .map_err(OAuthError::internal)?;
        return Ok(Decision::Answer(Finish::AskConsent {
            client_name: client.name.clone(),
            scopes: request.scope,
            ticket,
            mapped_claims: client
                .claims
                .iter()
                .filter(|m| request.scope.contains(&m.scope))
                .map(|m| m.name.clone())
                .collect(),
        }));
    }
    Ok(Decision::Code(granted))
}

/// What the browser gets when the stale membership could not be renewed.
fn stale_membership(
    ctx: &Context<'_>,
    request: &AuthorizationRequest,
    e: RecheckError,
) -> Result<Finish, OAuthError> {
    let to_app = |code, description| {
        Finish::Redirect(error_redirect(
            ctx,
            request,
            &OAuthError::new(code, description),
        ))
    };
    match e {
        // OIDC Core §3.1.2.6: without interaction the person cannot be signed in again.
        RecheckError::NoKeptTokens | RecheckError::AuthorizationGone if request.prompt.none => {
            Ok(to_app(
                OAuthErrorCode::LoginRequired,
                "the person must sign in with Discord again",
            ))
        }
        RecheckError::NoKeptTokens | RecheckError::AuthorizationGone => Ok(Finish::SignInAgain),
        RecheckError::Unavailable(why) => {
            tracing::warn!(reason = %why, client_id = %request.client_id, "cannot re-check Discord membership for single sign-on; refusing");
            ctx.metrics.sign_in(SignIn::UpstreamError);
            let description = "Discord could not be asked to confirm access; try again shortly";
            if request.prompt.none {
                return Ok(to_app(OAuthErrorCode::TemporarilyUnavailable, description));
            }
            let error = OAuthError::new(OAuthErrorCode::TemporarilyUnavailable, description);
            Ok(Finish::Unavailable {
                redirect: error_redirect(ctx, request, &error),
            })
        }
        RecheckError::Internal(e) => Err(e),
    }
}

/// The consent remembered for this person and client, read only when it can matter: for
/// `consent = "once"`, and for an `offline_access` request.
async fn remembered_consent(
    ctx: &Context<'_>,
    client: &ValidClient,
    request: &AuthorizationRequest,
    session: &SessionRecord,
) -> Result<Option<Scopes>, OAuthError> {
    let matters = client.consent == Consent::Once || request.scope.contains(OFFLINE_ACCESS);
    if !matters {
        return Ok(None);
    }
    Ok(ctx.store.get_consent(&session.user_id, &client.id).await?)
}

/// Whether to show the consent page, and the request as it will be granted.
///
/// The client's mode decides for the ordinary scopes (`never` | `once`, which `prompt=consent`
/// re-asks | `always`). `offline_access` (OIDC Core §11) is granted only to a client allowed it
/// (`offline_access = true`; `validate` drops it otherwise) and only with consent: asked on this
/// request (`prompt=consent`, or a page shown anyway) or remembered for it. Otherwise it is
/// dropped without a word and the grant stays tied to the session.
fn plan_consent(
    client: &ValidClient,
    request: &AuthorizationRequest,
    remembered: Option<&Scopes>,
) -> (AuthorizationRequest, bool) {
    let scopes = request.scope;
    let covered = |wanted: &Scopes| remembered.is_some_and(|r| wanted.is_subset_of(r));
    let without_offline = request.without_scope(OFFLINE_ACCESS);
    let ask = match client.consent {
        Consent::Never => false,
        Consent::Always => true,
        Consent::Once => request.prompt.consent || !covered(&without_offline.scope),
    };
    if !scopes.contains(OFFLINE_ACCESS) || !client.offline_access {
        return (without_offline, ask);
    }
    if ask || request.prompt.consent {
        (request.clone(), true)
    } else if covered(&scopes) {
        (request.clone(), false)
    } else {
        tracing::info!(client_id = %client.id, "offline_access without consent; dropped");
        (without_offline, false)
    }
}

/// The person answered the consent page: record it (for `once`) and finish, or refuse.
pub async fn answer_consent(
    ctx: &Context<'_>,
    ticket: &str,
    session: &SessionRecord,
    approved: bool,
    now: OffsetDateTime,
) -> Result<Option<AuthorizationResponse>, OAuthError> {
    let Ok(ticket) = tokens::verify_typed::<ConsentTicket>(
        ctx.keys,
        ctx.config.issuer.as_str(),
        ticket,
        tokens::TokenKind::ConsentTicket,
    ) else {
        return Ok(None);
    };
    if ticket.exp <= now.unix_timestamp() || ticket.sid != session.id.as_str() {
        return Ok(None);
    }
    let Some(client) = ctx.clients.get(ticket.request.client_id.as_str()) else {
        return Ok(None);
    };
    let request = ticket.request;
    if !approved {
        ctx.audit(&Event::ConsentDeclined {
            client_id: client.id.as_str(),
            user_id: session.user_id.as_str(),
        });
        ctx.metrics.sign_in(SignIn::Cancelled);
        let error = OAuthError::new(
            OAuthErrorCode::AccessDenied,
            "the person declined to share their information",
        );
        return Ok(Some(error_redirect(ctx, &request, &error)));
    }
    // Remembered for `once`, and for an approved offline_access, whatever the mode: later
    // requests may then have it without asking again (OIDC Core §11).
    if client.consent == Consent::Once || request.scope.contains(OFFLINE_ACCESS) {
        ctx.store
            .save_consent(&session.user_id, &client.id, request.scope, now)
            .await?;
    }
    ctx.audit(&Event::ConsentGiven {
        client_id: client.id.as_str(),
        user_id: session.user_id.as_str(),
    });
    let code = code::issue(ctx, &request, session, now).await?;
    Ok(Some(success_redirect(ctx, &request, &code)))
}
