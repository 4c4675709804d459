//! Re-checking a person's Discord membership once their snapshot is older than
//! `discord.membership_ttl` (at refresh, and when the SSO session opens another app).
//!
//! Discord rotates refresh tokens: every use returns a new one and the old one stops working.
//! So the re-check is **single flight per person**: one in this process at a time (the others
//! wait and then read the snapshot it saved), and one across processes through the store's
//! re-check lease. A refresh token Discord refuses is only proof that the person's authorization
//! is gone if it is still the one stored: if another re-check renewed the tokens meanwhile, the
//! new ones are used instead. When the authorization really is gone (the person removed the app
//! in Discord's settings, or Discord revoked it), every grant and session of the person ends at
//! once, with back-channel logouts, instead of one app at a time.

use super::Context;
use super::{logout, membership};
use crate::discord::{DiscordError, Membership, kept_tokens};
use crate::domain::DiscordId;
use crate::error::OAuthError;
use crate::store::{StoredUpstreamTokens, UserRecord};
use secrecy::SecretString;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Why no up-to-date membership could be had.
#[derive(Debug)]
pub enum RecheckError {
    /// No Discord tokens are kept for this person (no `[secrets]` key, or none were
    /// stored): only a new Discord sign-in can tell.
    NoKeptTokens,
    /// Discord says the person's authorization of guildgate is gone; every grant and session of
    /// the person has been ended.
    AuthorizationGone,
    /// Discord cannot be asked now (down, rate limited, slow), or another process's re-check of
    /// the same person did not finish in time; no grace applies.
    Unavailable(String),
    /// The store failed.
    Internal(OAuthError),
}

impl From<OAuthError> for RecheckError {
    fn from(e: OAuthError) -> Self {
        RecheckError::Internal(e)
    }
}

impl From<crate::store::StoreError> for RecheckError {
    fn from(e: crate::store::StoreError) -> Self {
        RecheckError::Internal(e.into())
    }
}

/// The person's membership, brought up to date with Discord when the stored snapshot is older
/// than `discord.membership_ttl`. Discord being unreachable fails closed unless
/// `discord.membership_grace` lets the last snapshot stand in.
pub async fn current(
    ctx: &Context<'_>,
    user: &UserRecord,
    now: OffsetDateTime,
) -> Result<Membership, RecheckError> {
    let (snapshot, fetched_at) = membership::load(ctx, &user.id).await?;
    if !ctx.config.needs_membership || is_fresh(ctx, fetched_at, now) {
        return Ok(snapshot);
    }
    // One re-check per person in this process; whoever waited reads what the first one saved.
    let _turn = ctx.rechecks.lock(user.id.as_str()).await;
    let (snapshot, fetched_at) = membership::load(ctx, &user.id).await?;
    if is_fresh(ctx, fetched_at, now) {
        return Ok(snapshot);
    }
    let holder = uuid::Uuid::new_v4().simple().to_string();
    match claim_lease(ctx, &user.id, &holder, fetched_at).await? {
        Lease::Renewed(membership) => return Ok(membership),
        Lease::Held => {}
        Lease::TimedOut if within_grace(ctx, fetched_at, now) => return Ok(snapshot),
        Lease::TimedOut => {
            return Err(RecheckError::Unavailable(
                "another re-check of this person did not finish in time".into(),
            ));
        }
    }
    let result = with_discord(ctx, user, now).await;
    if let Err(e) = ctx.store.release_recheck(&user.id, &holder).await {
        // The lease runs out on its own; the next re-check only waits for that.
        tracing::warn!(error = %e, user = %user.id, "cannot release the membership re-check lease");
    }
    match result {
        Err(RecheckError::Unavailable(why)) if within_grace(ctx, fetched_at, now) => {
            tracing::warn!(reason = %why, user = %user.id, "Discord unreachable; using the last snapshot within discord.membership_grace");
            Ok(snapshot)
        }
        other => other,
    }
}

fn is_fresh(ctx: &Context<'_>, fetched_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    fetched_at.is_some_and(|at| now - at < ctx.config.lifetimes.membership)
}

/// Whether a snapshot taken at `fetched_at` may stand in while Discord is down.
fn within_grace(
    ctx: &Context<'_>,
    fetched_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> bool {
    let limits = ctx.config.lifetimes;
    !limits.membership_grace.is_zero()
        && fetched_at.is_some_and(|at| now - at < limits.membership + limits.membership_grace)
}

/// How the cross-process lease came out.
enum Lease {
    /// This process holds it.
    Held,
    /// Another process finished a re-check while we waited: its snapshot.
    Renewed(Membership),
    /// Another process held it for longer than a re-check can take.
    TimedOut,
}

/// The longest one re-check can take: a token refresh, the guild list and member look-ups, each
/// bounded by `discord.timeout`, plus the rate-limit wait budget.
fn lease_length(ctx: &Context<'_>) -> Duration {
    ctx.config
        .lifetimes
        .discord_timeout
        .saturating_mul(3)
        .saturating_add(Duration::from_secs(3))
}

/// Takes the person's re-check lease, waiting (polling, with backoff) while another process
/// holds it; stops waiting as soon as that process has saved a newer snapshot.
async fn claim_lease(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    holder: &str,
    seen_fetched_at: Option<OffsetDateTime>,
) -> Result<Lease, RecheckError> {
    let length = lease_length(ctx);
    let deadline = Instant::now() + length.min(Duration::from_secs(24 * 3600));
    let mut pause = Duration::from_millis(20);
    loop {
        let now = ctx.clock.now();
        // An absurd `discord.timeout` must not overflow the clock: cap the lease at a day.
        let until = time::Duration::try_from(length)
            .ok()
            .and_then(|l| now.checked_add(l.min(time::Duration::DAY)))
            .unwrap_or(now);
        if ctx.store.claim_recheck(user_id, holder, until, now).await? {
            return Ok(Lease::Held);
        }
        let (snapshot, fetched_at) = membership::load(ctx, user_id).await?;
        if fetched_at.is_some() && fetched_at > seen_fetched_at {
            return Ok(Lease::Renewed(snapshot));
        }
        if Instant::now() >= deadline {
            return Ok(Lease::TimedOut);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Asks Discord with the person's kept tokens (renewing them when the access token has
/// expired or is refused) and saves the new snapshot. Called with the lease held.
async fn with_discord(
    ctx: &Context<'_>,
    user: &UserRecord,
    now: OffsetDateTime,
) -> Result<Membership, RecheckError> {
    if !membership::needs_person_token(ctx) {
        return by_bot(ctx, user, now).await;
    }
    let mut tokens = Kept::load(ctx, &user.id).await?;
    if tokens.access_expires_at <= now {
        tokens = renew(ctx, user, tokens, now).await?;
    }
    // The snapshot is stale: ask Discord, not this process's cache of the same age.
    ctx.discord.forget_membership(user.id.as_str());
    let fetched = match membership::fetch(ctx, &user.id, Some(&tokens.access)).await {
        // An access token refused before its expiry: renew once, then believe Discord.
        Err(DiscordError::Unauthorized) => {
            tokens = renew(ctx, user, tokens, now).await?;
            membership::fetch(ctx, &user.id, Some(&tokens.access)).await
        }
        other => other,
    };
    let membership = match fetched {
        Ok(m) => m,
        Err(DiscordError::Unauthorized) => {
            return Err(authorization_gone(ctx, &user.id, "access token refused", now).await);
        }
        Err(e) => return Err(RecheckError::Unavailable(e.to_string())),
    };
    membership::save(ctx, &user.id, &membership, now).await?;
    Ok(membership)
}

/// The re-check when the bot reads every membership the rules need: no person's token, so
/// nothing here can mean the person's authorization is gone (a refused bot token is an outage).
async fn by_bot(
    ctx: &Context<'_>,
    user: &UserRecord,
    now: OffsetDateTime,
) -> Result<Membership, RecheckError> {
    ctx.discord.forget_membership(user.id.as_str());
    let membership = membership::fetch(ctx, &user.id, None)
        .await
        .map_err(|e| RecheckError::Unavailable(e.to_string()))?;
    membership::save(ctx, &user.id, &membership, now).await?;
    Ok(membership)
}

/// The person's kept Discord tokens, opened, with the stored ciphertext they came from.
struct Kept {
    stored: StoredUpstreamTokens,
    access: SecretString,
    refresh: Option<SecretString>,
    access_expires_at: OffsetDateTime,
}

impl Kept {
    /// The person's stored tokens, opened.
    async fn load(ctx: &Context<'_>, user_id: &DiscordId) -> Result<Self, RecheckError> {
        let stored = ctx
            .store
            .get_upstream_tokens(user_id)
            .await?
            .ok_or(RecheckError::NoKeptTokens)?;
        Self::open(ctx, user_id, stored)
    }

    /// Opens what is (or was just) stored for `user_id`.
    fn open(
        ctx: &Context<'_>,
        user_id: &DiscordId,
        stored: StoredUpstreamTokens,
    ) -> Result<Self, RecheckError> {
        let sealer = ctx.sealer.ok_or(RecheckError::NoKeptTokens)?;
        let opened =
            kept_tokens::open_tokens(sealer, user_id.as_str(), &stored.ciphertext).map_err(|_| {
                // A changed encryption key or a damaged row: a new sign-in stores fresh tokens.
                tracing::warn!(user = %user_id, "kept Discord tokens cannot be opened by any configured key (was the key that sealed them removed from [secrets] before `guildgate reencrypt` ran?)");
                RecheckError::NoKeptTokens
            })?;
        Ok(Kept {
            access_expires_at: stored.access_expires_at,
            stored,
            access: opened.access_token,
            refresh: opened.refresh_token,
        })
    }
}

/// How many times a refused refresh is retried with tokens another re-check renewed meanwhile.
const RENEW_ATTEMPTS: usize = 3;

/// Spends the kept refresh token and keeps what Discord returns. A refusal is re-read before it
/// is believed: if the stored tokens changed meanwhile, someone else won the race and their
/// tokens are used; only the refusal of the current token means the authorization is gone.
async fn renew(
    ctx: &Context<'_>,
    user: &UserRecord,
    mut tokens: Kept,
    now: OffsetDateTime,
) -> Result<Kept, RecheckError> {
    for _ in 0..RENEW_ATTEMPTS {
        let Some(refresh) = tokens.refresh.clone() else {
            return Err(authorization_gone(ctx, &user.id, "no refresh token kept", now).await);
        };
        match ctx.discord.refresh(&refresh).await {
            Ok(renewed) => {
                let stored = membership::keep_tokens(ctx, &user.id, &renewed, now)
                    .await?
                    .ok_or(RecheckError::NoKeptTokens)?;
                return Kept::open(ctx, &user.id, stored);
            }
            Err(DiscordError::InvalidGrant | DiscordError::Unauthorized) => {
                let latest = Kept::load(ctx, &user.id).await?;
                if latest.stored.ciphertext == tokens.stored.ciphertext {
                    return Err(
                        authorization_gone(ctx, &user.id, "refresh token refused", now).await,
                    );
                }
                tracing::info!(user = %user.id, "Discord tokens were renewed by another re-check; using those");
                if latest.access_expires_at > now {
                    return Ok(latest);
                }
                tokens = latest;
            }
            Err(e) => return Err(RecheckError::Unavailable(e.to_string())),
        }
    }
    Err(RecheckError::Unavailable(
        "Discord tokens kept changing during the re-check".into(),
    ))
}

/// The person's authorization of guildgate at Discord is gone: forget their Discord tokens, end
/// every session and grant, and tell every app by back-channel logout.
async fn authorization_gone(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    why: &'static str,
    now: OffsetDateTime,
) -> RecheckError {
    let ended = async {
        ctx.store.save_upstream_tokens(user_id, None).await?;
        logout::revoke_user(ctx, user_id, now).await
    }
    .await;
    match ended {
        Ok(sessions) => {
            tracing::info!(user = %user_id, sessions_ended = sessions.len(), "every session and grant of the person ended");
            ctx.audit(&crate::audit::Event::DiscordAuthorizationGone {
                user_id: user_id.as_str(),
                reason: why,
            });
            RecheckError::AuthorizationGone
        }
        Err(e) => RecheckError::Internal(e.into()),
    }
}
