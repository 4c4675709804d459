//! The device authorization grant (RFC 8628), the person's side: on `/device` they type the
//! user code, sign in (Discord or the SSO session), see which app on which device asks, and
//! approve or decline. The app's access rules apply as at any sign-in, and the confirmation is
//! always shown (RFC 8628 §5.4: a person must not approve a device without seeing what it is).

use super::Context;
use super::recheck;
use super::refusal::Refusal;
use super::response::AuthorizationResponse;
use super::upstream::SignInFor;
use crate::audit::Event;
use crate::config::{Consent, ValidClient};
use crate::domain::{Scopes, TokenHash, UserCode};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::metrics::SignIn;
use crate::store::{DeviceAuthorization, DeviceStatus, SessionDevice, SessionRecord, UserRecord};
use crate::tokens::{self, TokenKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What the device page shows next.
#[derive(Debug)]
pub enum DevicePage {
    /// No such code (wrong, expired, used or declined): the entry form again, saying so. The
    /// route counts it against the source address.
    WrongCode,
    /// The code was entered more often than `limits.user_code_entries`: it no longer works.
    TooManyEntries,
    /// The person must sign in first: at Discord, for this device sign-in.
    SignIn(SignInFor),
    /// The confirmation: which app, on which device, wants what.
    Confirm(Confirmation),
    /// The access rules refuse this person for this app (the device is told `access_denied`).
    Denied(Refusal),
    /// Discord could not confirm a stale membership: try again shortly.
    Unavailable,
}

/// The confirmation page's content.
#[derive(Debug, Clone)]
pub struct Confirmation {
    /// The app's display name.
    pub app: String,
    /// The Discord username the person is signed in as (who the device would sign in as).
    pub signed_in_as: String,
    /// The scopes it would receive.
    pub scopes: Scopes,
    /// The device as it asked: its User-Agent and address.
    pub device: SessionDevice,
    /// When it asked.
    pub requested_at: OffsetDateTime,
    /// The sealed answer form.
    pub ticket: String,
}

/// How the person's answer ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Answered {
    /// Approved: the device gets its tokens at its next poll.
    Approved {
        /// The app's display name.
        app: String,
    },
    /// Declined: the device is told `access_denied`.
    Declined,
    /// The form or the device code expired, or it was already answered.
    Expired,
}

/// A device sign-in for the browser that signs in at Discord for it, stored with the pending
/// login: the device code's hash (never the code itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSignIn {
    /// `device_code_hash` of the authorization being approved.
    pub device: String,
}

/// The pending answer sealed into the confirmation form, bound to the session.
#[derive(Serialize, Deserialize)]
struct DeviceTicket {
    iss: String,
    exp: i64,
    sid: String,
    /// The device code's hash.
    dch: String,
    /// The scopes shown, as they will be granted.
    scope: Scopes,
}

/// How long the person may look at the confirmation page.
const TICKET_TTL: i64 = 600;

/// The person typed `typed` on the device page.
pub async fn enter(
    ctx: &Context<'_>,
    typed: &str,
    session: Option<&SessionRecord>,
    now: OffsetDateTime,
) -> Result<DevicePage, OAuthError> {
    let Some(code) = UserCode::parse(typed) else {
        return Ok(DevicePage::WrongCode);
    };
    let Some(found) = ctx.store.enter_user_code(&code.hash(), now).await? else {
        return Ok(DevicePage::WrongCode);
    };
    if found.entries > ctx.config.limits.user_code_entries {
        deny(ctx, &found, None, "too_many_entries", now).await?;
        return Ok(DevicePage::TooManyEntries);
    }
    match session {
        None => Ok(DevicePage::SignIn(SignInFor::Device(DeviceSignIn {
            device: found.device_code_hash.as_str().to_owned(),
        }))),
        Some(session) => confirm(ctx, &found, session, None, now).await,
    }
}

/// After the Discord sign-in this device sign-in started: the confirmation (or a refusal).
pub async fn after_sign_in(
    ctx: &Context<'_>,
    sign_in: &DeviceSignIn,
    session: &SessionRecord,
    user: &UserRecord,
    now: OffsetDateTime,
) -> Result<DevicePage, OAuthError> {
    let hash = TokenHash::from_stored(sign_in.device.clone());
    match ctx.store.find_device_authorization(&hash, now).await? {
        Some(found) if found.status == DeviceStatus::Pending => {
            confirm(ctx, &found, session, Some(user), now).await
        }
        _ => Ok(DevicePage::WrongCode),
    }
}

/// The app's access rules for this person (membership re-checked when stale), then the
/// confirmation page.
async fn confirm(
    ctx: &Context<'_>,
    found: &DeviceAuthorization,
    session: &SessionRecord,
    user: Option<&UserRecord>,
    now: OffsetDateTime,
) -> Result<DevicePage, OAuthError> {
    let Some(client) = ctx.clients.get(found.client_id.as_str()) else {
        return Ok(DevicePage::WrongCode);
    };
    let user = match user {
        Some(user) => user.clone(),
        None => ctx.store.get_user(&session.user_id).await?.ok_or_else(|| {
            OAuthError::new(
                OAuthErrorCode::ServerError,
                "the session's person is unknown",
            )
        })?,
    };
    let snapshot = if super::membership::matters_for(ctx, &client) {
        match recheck::current(ctx, &user, now).await {
            Ok(m) => m,
            Err(recheck::RecheckError::Internal(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(error = ?e, "cannot re-check membership for a device sign-in");
                return Ok(DevicePage::Unavailable);
            }
        }
    } else {
        super::membership::Membership::default()
    };
    if let Err(denial) = super::membership::check(ctx, Some(&client), &user, &snapshot) {
        super::refusal::record_app_denial(ctx, client.id.as_str(), user.id.as_str(), denial);
        deny(ctx, found, Some(user.id.as_str()), "access_rules", now).await?;
        return Ok(DevicePage::Denied(Refusal {
            app: Some(client.name.clone()),
            signed_in_as: user.username.clone(),
            explanation: denial.explanation(),
            back: AuthorizationResponse::to_page(ctx.config.issuer.endpoint("/device")),
            switch_account: ctx.config.issuer.endpoint("/account/sign-in?another=1"),
        }));
    }
    let scopes = granted_scopes(&client, found.scopes);
    let ticket = DeviceTicket {
        iss: ctx.config.issuer.as_str().to_owned(),
        exp: (now.unix_timestamp() + TICKET_TTL).min(found.expires_at.unix_timestamp()),
        sid: session.id.to_string(),
        dch: found.device_code_hash.as_str().to_owned(),
        scope: scopes,
    };
    let ticket =
        tokens::sign(ctx.keys, TokenKind::DeviceTicket, &ticket).map_err(OAuthError::internal)?;
    Ok(DevicePage::Confirm(Confirmation {
        app: client.name.clone(),
        signed_in_as: user.username.clone(),
        scopes,
        device: found.device.clone(),
        requested_at: found.created_at,
        ticket,
    }))
}

/// What approving grants: `offline_access` only to a client allowed it (the confirmation is
/// its consent, OIDC Core §11).
fn granted_scopes(client: &ValidClient, asked: Scopes) -> Scopes {
    if client.offline_access {
        asked
    } else {
        asked.without("offline_access")
    }
}

/// The person's answer on the confirmation page.
pub async fn answer(
    ctx: &Context<'_>,
    ticket: &str,
    session: &SessionRecord,
    approved: bool,
    now: OffsetDateTime,
) -> Result<Answered, OAuthError> {
    let Ok(ticket) = tokens::verify_typed::<DeviceTicket>(
        ctx.keys,
        ctx.config.issuer.as_str(),
        ticket,
        TokenKind::DeviceTicket,
    ) else {
        return Ok(Answered::Expired);
    };
    if ticket.exp <= now.unix_timestamp() || ticket.sid != session.id.as_str() {
        return Ok(Answered::Expired);
    }
    let hash = TokenHash::from_stored(ticket.dch);
    let Some(found) = ctx.store.find_device_authorization(&hash, now).await? else {
        return Ok(Answered::Expired);
    };
    let Some(client) = ctx.clients.get(found.client_id.as_str()) else {
        return Ok(Answered::Expired);
    };
    if !approved {
        return Ok(
            if deny(ctx, &found, Some(session.user_id.as_str()), "declined", now).await? {
                Answered::Declined
            } else {
                Answered::Expired
            },
        );
    }
    let status = DeviceStatus::Approved {
        user_id: session.user_id.clone(),
        auth_time: session.auth_time,
    };
    if !ctx
        .store
        .decide_device_authorization(&hash, &status, ticket.scope, now)
        .await?
    {
        return Ok(Answered::Expired);
    }
    if client.consent == Consent::Once {
        ctx.store
            .save_consent(&session.user_id, &client.id, ticket.scope, now)
            .await?;
    }
    ctx.metrics.device_authorization("approved");
    ctx.metrics.sign_in(SignIn::Ok);
    ctx.audit(&Event::DeviceApproved {
        client_id: client.id.as_str(),
        user_id: session.user_id.as_str(),
    });
    Ok(Answered::Approved {
        app: client.name.clone(),
    })
}

/// Marks the authorization denied (the device is told `access_denied`); whether it was pending.
async fn deny(
    ctx: &Context<'_>,
    found: &DeviceAuthorization,
    user_id: Option<&str>,
    reason: &'static str,
    now: OffsetDateTime,
) -> Result<bool, OAuthError> {
    let changed = ctx
        .store
        .decide_device_authorization(
            &found.device_code_hash,
            &DeviceStatus::Denied,
            found.scopes,
            now,
        )
        .await?;
    if changed {
        ctx.metrics.device_authorization("denied");
        ctx.audit(&Event::DeviceDenied {
            client_id: found.client_id.as_str(),
            user_id,
            reason,
        });
    }
    Ok(changed)
}
