//! The Discord leg: begin a login (state, PKCE, browser binding) and complete it at the callback.
//!
//! The pending login is stored before the browser leaves, keyed by SHA-256 of `state` and bound
//! to a browser cookie, so any guildgate process can finish it and a forged or replayed `state`
//! is refused before Discord is called. Nothing about the person is written here: a completed
//! login goes to `signed_in.rs`, which writes it once the app's decision is known, so a failure
//! leaves no half-made session.

use super::Context;
use super::authorize::AuthorizationRequest;
use super::membership::{self, Membership};
use super::refusal::Refusal;
use super::response::{AuthorizationResponse, error_redirect};
use super::session;
use super::signed_in::Completed;
use super::upstream_failure;
pub use super::upstream_failure::{CallbackError, Failure};
use crate::audit::{Event, RuleLevel};
use crate::discord::{DiscordError, DiscordTokens, api};
use crate::domain::{DiscordId, OpaqueToken, PkceChallenge, PkceVerifier};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::limits::source_key;
use crate::metrics::SignIn;
use crate::store::{PendingLoginCap, SessionDevice, UpstreamLogin, UserRecord};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use time::OffsetDateTime;
use url::Url;

/// How long a person may spend at Discord before the pending login expires.
pub const UPSTREAM_LOGIN_TTL: time::Duration = time::Duration::minutes(10);

/// Discord's issuer identifier, sent as `iss` on its authorization responses (RFC 9207).
pub const DISCORD_ISSUER: &str = "https://discord.com";

/// How long a browser over the pending-login cap is asked to wait: pending logins expire within
/// [`UPSTREAM_LOGIN_TTL`], and most are finished or abandoned much sooner.
pub const PENDING_CAP_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// What a Discord sign-in is for; stored (as JSON) with the pending login.
///
/// Untagged so that pending logins stored before the account page existed (a bare
/// authorization request) still complete after an upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignInFor {
    /// An app's authorization request, finished after the callback.
    App(AuthorizationRequest),
    /// The account page: after the callback the browser goes back to `/account`.
    Account(AccountSignIn),
    /// A device sign-in (RFC 8628): after the callback, its confirmation on `/device`.
    Device(super::device_page::DeviceSignIn),
}

/// The marker of a sign-in for the account page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSignIn {
    /// Always `true`: what tells this variant apart in the stored JSON.
    pub account: bool,
    /// Ask Discord to show its account screen ("use another Discord account").
    #[serde(default)]
    pub another: bool,
}

impl SignInFor {
    /// The app this sign-in is for; `None` for the account page.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::App(request) => Some(request.client_id.as_str()),
            Self::Account(_) | Self::Device(_) => None,
        }
    }

    /// The sign-in for the account page; `another` shows Discord's account screen.
    pub fn account(another: bool) -> Self {
        Self::Account(AccountSignIn {
            account: true,
            another,
        })
    }

    /// Where an error goes: the app's redirect URI with the error, or back to the account page.
    pub(super) fn error_redirect(
        &self,
        ctx: &Context<'_>,
        error: &OAuthError,
    ) -> AuthorizationResponse {
        match self {
            Self::App(request) => error_redirect(ctx, request, error),
            Self::Account(_) => {
                AuthorizationResponse::to_page(ctx.config.issuer.endpoint("/account"))
            }
            Self::Device(_) => {
                AuthorizationResponse::to_page(ctx.config.issuer.endpoint("/device"))
            }
        }
    }

    /// Discord's `prompt`: `none` skips its consent screen for a person who already authorized
    /// us; `consent` shows it, and with it Discord's choice of account. An app asking for
    /// `prompt=login` (OIDC Core §3.1.2.1: re-authenticate) gets the latter, which is also how
    /// the denial page's "use another Discord account" works.
    fn discord_prompt(&self) -> &'static str {
        match self {
            Self::App(request) if request.prompt.login => "consent",
            Self::Account(AccountSignIn { another: true, .. }) => "consent",
            _ => "none",
        }
    }
}

/// Where to send the browser, and the binding cookie to set.
pub struct UpstreamStart {
    /// Discord's authorize URL with our parameters.
    pub redirect_to: Url,
    /// The browser-binding cookie value: always freshly generated.
    pub binding: OpaqueToken,
}

/// The browser starting a Discord login.
#[derive(Debug, Clone, Copy)]
pub struct StartingBrowser<'a> {
    /// The binding cookie it presented, naming its previous pending login (which this one
    /// replaces); never reused as the new binding.
    pub previous_binding: Option<&'a str>,
    /// Its source address, for the cap on pending logins.
    pub source: IpAddr,
}

/// Stores the pending login and builds Discord's authorize URL.
///
/// The binding is generated here for every login and never taken from the request: a value a
/// browser presents may have been planted by a sibling subdomain or a plain-http page, and an
/// attacker who knows the binding can finish a login in another browser (login CSRF). A
/// browser has one pending login at a time (a new one replaces the previous), and one source
/// address at most `limits.pending_logins_per_ip`: beyond that the answer is a rate limit.
pub async fn begin(
    ctx: &Context<'_>,
    request: &SignInFor,
    browser: StartingBrowser<'_>,
    now: OffsetDateTime,
) -> Result<UpstreamStart, OAuthError> {
    let binding = OpaqueToken::generate();
    let upstream_state = OpaqueToken::generate();
    let verifier = PkceVerifier::generate();
    let serialized = serde_json::to_string(request).map_err(OAuthError::internal)?;
    let previous = browser
        .previous_binding
        .map(|b| OpaqueToken::from_presented(b).hash());
    let source = source_key(browser.source).to_string();
    let stored = ctx
        .store
        .insert_upstream_login(
            &UpstreamLogin {
                state_hash: upstream_state.hash(),
                binding_hash: binding.hash(),
                pkce_verifier: verifier.clone(),
                request: serialized,
                created_at: now,
                expires_at: now + UPSTREAM_LOGIN_TTL,
            },
            &PendingLoginCap {
                source: &source,
                max_per_source: ctx.config.limits.pending_logins_per_ip,
                replaces: previous.as_ref(),
            },
        )
        .await?;
    if !stored {
        tracing::warn!(
            source,
            "too many pending Discord logins from one source; refusing another"
        );
        return Err(OAuthError::rate_limited(
            "too many sign-ins in progress from this address",
            PENDING_CAP_RETRY,
        ));
    }
    let redirect_to = ctx.discord.authorize_url(
        upstream_state.expose(),
        PkceChallenge::of(&verifier).as_str(),
        Some(request.discord_prompt()),
    );
    Ok(UpstreamStart {
        redirect_to,
        binding,
    })
}

/// The query of Discord's redirect to `/callback/discord`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackParams {
    /// Discord's code.
    pub code: Option<String>,
    /// Our state.
    pub state: Option<String>,
    /// RFC 9207 issuer.
    pub iss: Option<String>,
    /// Error code when the person cancelled or Discord refused.
    pub error: Option<String>,
}

/// Completes a login: checks binding and state before anything else, then talks to Discord.
/// A login that fails here is counted as a sign-in by its outcome; one that succeeds is
/// counted when the app gets its code (`code::issue`) or is refused (`finish`).
pub async fn complete(
    ctx: &Context<'_>,
    params: CallbackParams,
    binding_cookie: Option<&str>,
    device: SessionDevice,
    now: OffsetDateTime,
) -> Result<Completed, CallbackError> {
    let result = complete_login(ctx, params, binding_cookie, device, now).await;
    if let Err(e) = &result {
        let outcome = match e {
            CallbackError::Unmatched
            | CallbackError::ToApp {
                failure: Failure::BadRequest | Failure::Refused,
                ..
            } => Some(SignIn::Invalid),
            CallbackError::ToApp {
                failure: Failure::Cancelled,
                ..
            } => Some(SignIn::Cancelled),
            CallbackError::ToApp {
                failure: Failure::Upstream,
                ..
            }
            | CallbackError::Busy { .. } => Some(SignIn::UpstreamError),
            // Counted where the rules refused, with the unmet rule.
            CallbackError::Refused(_) => None,
            // Our own failure: counted as a 500 by the HTTP metrics.
            CallbackError::Internal(_) => None,
        };
        if let Some(outcome) = outcome {
            ctx.metrics.sign_in(outcome);
        }
    }
    result
}

async fn complete_login(
    ctx: &Context<'_>,
    params: CallbackParams,
    binding_cookie: Option<&str>,
    device: SessionDevice,
    now: OffsetDateTime,
) -> Result<Completed, CallbackError> {
    let (Some(binding), Some(upstream_state)) = (binding_cookie, params.state.as_deref()) else {
        return Err(CallbackError::Unmatched);
    };
    let login = ctx
        .store
        .take_upstream_login(
            &OpaqueToken::from_presented(upstream_state).hash(),
            &OpaqueToken::from_presented(binding).hash(),
            now,
        )
        .await?
        .ok_or(CallbackError::Unmatched)?;
    let request: SignInFor = serde_json::from_str(&login.request)
        .map_err(|e| CallbackError::Internal(OAuthError::internal(e)))?;
    let to_app =
        |code: OAuthErrorCode, description: &'static str, explain, failure| CallbackError::ToApp {
            redirect: request.error_redirect(ctx, &OAuthError::new(code, description)),
            explain,
            failure,
        };

    // RFC 9207 §2.4: a response naming another issuer is refused (a mix-up attack); the
    // request is at fault, not Discord, so the page is a 400.
    if params
        .iss
        .as_deref()
        .is_some_and(|iss| iss != DISCORD_ISSUER)
    {
        tracing::warn!(iss = ?params.iss, "callback carried an unexpected issuer; refusing it");
        return Err(to_app(
            OAuthErrorCode::AccessDenied,
            "the upstream authorization response came from an unexpected issuer",
            Some((
                "Sign-in refused",
                "The answer from Discord could not be trusted, so the sign-in was stopped for your safety.",
            )),
            Failure::BadRequest,
        ));
    }
    if let Some(error) = params.error.as_deref() {
        tracing::info!(error, "Discord returned an error to the callback");
        return Err(if error == "access_denied" {
            to_app(
                OAuthErrorCode::AccessDenied,
                "the person declined to sign in with Discord",
                None,
                Failure::Cancelled,
            )
        } else {
            to_app(
                OAuthErrorCode::ServerError,
                "Discord refused the sign-in request",
                Some((
                    "Discord refused the sign-in",
                    "Discord did not accept the sign-in request. Please try again later.",
                )),
                Failure::Upstream,
            )
        });
    }
    let Some(discord_code) = params.code.as_deref() else {
        return Err(to_app(
            OAuthErrorCode::ServerError,
            "Discord returned neither a code nor an error",
            Some((
                "Sign-in failed",
                "Discord's answer was incomplete. Please try again.",
            )),
            Failure::Upstream,
        ));
    };

    let (tokens, id, user, membership) = fetch_identity(ctx, discord_code, &login.pkce_verifier)
        .await
        .map_err(|e| upstream_failure::from_discord(ctx, &request, &e))?;
    let record = UserRecord {
        id,
        username: user.username.clone(),
        global_name: user.global_name.clone(),
        avatar: user.avatar.clone(),
        email: user.email.clone(),
        email_verified: user.verified.unwrap_or(false),
        locale: user.locale.clone(),
        updated_at: now,
    };
    // The global rules decide whether a session may exist at all; the app's own rules are
    // checked when the session is used for it.
    if let Err(denial) = membership::check(ctx, None, &record, &membership) {
        ctx.metrics.sign_in(SignIn::Denied(denial.as_str()));
        ctx.audit(&Event::AccessDenied {
            client_id: request.client_id(),
            user_id: record.id.as_str(),
            rule: denial.as_str(),
            level: RuleLevel::Global,
        });
        tracing::info!(user = %record.id, reason = denial.as_str(), "sign-in refused by the access rules");
        return Err(CallbackError::Refused(match &request {
            SignInFor::App(app_request) => Refusal::for_app(
                ctx,
                &ctx.clients
                    .get(app_request.client_id.as_str())
                    .map_or_else(|| app_request.client_id.to_string(), |c| c.name.clone()),
                app_request,
                &record.username,
                denial.explanation(),
            ),
            SignInFor::Account(_) | SignInFor::Device(_) => {
                Refusal::for_account(ctx, &record.username, denial.explanation())
            }
        }));
    }

    // Discord has answered everything: the person, the snapshot, the kept tokens and the new
    // session are written by `signed_in::after_sign_in`, with the app's code when there is one.
    let snapshot = membership::snapshot(&membership, now).map_err(CallbackError::Internal)?;
    let kept =
        membership::seal_tokens(ctx, &record.id, &tokens, now).map_err(CallbackError::Internal)?;
    let (session, session_secret) = session::new(ctx, &record.id, device, now);
    Ok(Completed {
        request,
        session,
        session_secret,
        user: record,
        membership,
        snapshot,
        kept,
    })
}

/// Discord's tokens, the person's id (a snowflake, checked here: it becomes the `sub`), their
/// user object and their membership.
async fn fetch_identity(
    ctx: &Context<'_>,
    discord_code: &str,
    verifier: &PkceVerifier,
) -> Result<(DiscordTokens, DiscordId, api::User, Membership), DiscordError> {
    let tokens = ctx
        .discord
        .exchange_code(discord_code, verifier.expose())
        .await?;
    let user = ctx.discord.fetch_user(&tokens.access_token).await?;
    let id = DiscordId::parse(&user.id).map_err(DiscordError::Malformed)?;
    let membership = membership::fetch(ctx, &id, Some(&tokens.access_token)).await?;
    Ok((tokens, id, user, membership))
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
