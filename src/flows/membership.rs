//! Guild membership: fetched from Discord at sign-in, kept as a snapshot, re-checked at refresh
//! once older than `discord.membership_ttl`, and turned into policy facts and groups.

use crate::config::ValidClient;
use crate::discord::{DiscordError, DiscordTokens, kept_tokens};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::policy::{self, Denial, Facts};
use crate::sealed::Sealer;
use crate::state::AppState;
use crate::store::{MembershipSnapshot, StoredUpstreamTokens, UserRecord};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

pub use crate::discord::Membership;

/// The policy's view of a membership and the person.
pub fn facts<'a>(membership: &'a Membership, user: &'a UserRecord) -> Facts<'a> {
    Facts {
        user_id: &user.id,
        email_verified: user.email_verified,
        guilds: &membership.guilds,
        roles: &membership.roles,
    }
}

/// Asks Discord for exactly what the configured rules and groups need (cached per person and
/// guild for `discord.membership_ttl` inside the Discord client).
pub async fn fetch(
    state: &AppState,
    user_id: &str,
    access_token: &SecretString,
) -> Result<Membership, DiscordError> {
    if !state.config.needs_membership {
        return Ok(Membership::default());
    }
    let with_guild_list = state.settings.discord.scopes.iter().any(|s| s == "guilds");
    state
        .discord
        .fetch_membership(
            user_id,
            access_token,
            &state.config.member_guilds,
            with_guild_list,
            state.clock.now(),
        )
        .await
}

/// The global and the client's rules against a membership.
pub fn check(
    state: &AppState,
    client: Option<&ValidClient>,
    user: &UserRecord,
    membership: &Membership,
) -> Result<(), Denial> {
    let none = crate::config::AccessRules::default();
    let client_rules = client.map_or(&none, |c| &c.access);
    policy::evaluate(&state.config.access, client_rules, &facts(membership, user))
}

/// The stored snapshot (empty when none was taken).
pub async fn load(
    state: &AppState,
    user_id: &str,
) -> Result<(Membership, Option<OffsetDateTime>), OAuthError> {
    Ok(match state.store.get_membership(user_id).await? {
        Some(s) => (
            serde_json::from_str(&s.snapshot).unwrap_or_default(),
            Some(s.fetched_at),
        ),
        None => (Membership::default(), None),
    })
}

/// Stores a fresh snapshot.
pub async fn save(
    state: &AppState,
    user_id: &str,
    membership: &Membership,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    let snapshot = MembershipSnapshot {
        snapshot: serde_json::to_string(membership).map_err(OAuthError::internal)?,
        fetched_at: now,
    };
    Ok(state.store.save_membership(user_id, &snapshot).await?)
}

/// Keeps the person's Discord tokens, sealed, for later re-checks (when a key is configured).
pub async fn keep_tokens(
    state: &AppState,
    user_id: &str,
    tokens: &DiscordTokens,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    let Some(sealer) = sealer(state) else {
        return Ok(());
    };
    let (ciphertext, access_expires_at) =
        kept_tokens::seal_tokens(&sealer, user_id, tokens, now).map_err(OAuthError::internal)?;
    let stored = StoredUpstreamTokens {
        ciphertext,
        access_expires_at,
    };
    Ok(state
        .store
        .save_upstream_tokens(user_id, Some(&stored))
        .await?)
}

fn sealer(state: &AppState) -> Option<Sealer> {
    state
        .config
        .encryption_key
        .as_ref()
        .and_then(|k| Sealer::new(k).ok())
}

/// For a refresh: the snapshot if fresh enough, else a new one from Discord (refreshing the
/// Discord token when it has expired). Discord being unreachable fails closed:
/// `temporarily_unavailable`, and the grant stays usable once Discord answers again.
pub async fn current(
    state: &AppState,
    user: &UserRecord,
    now: OffsetDateTime,
) -> Result<Membership, OAuthError> {
    let (snapshot, fetched_at) = load(state, &user.id).await?;
    let fresh = fetched_at.is_some_and(|at| now - at < state.config.lifetimes.membership);
    if !state.config.needs_membership || fresh {
        return Ok(snapshot);
    }
    let unavailable = |e: &DiscordError| {
        tracing::warn!(error = %e, user = %user.id, "cannot re-check Discord membership; refusing the refresh");
        OAuthError::new(
            OAuthErrorCode::TemporarilyUnavailable,
            "Discord could not be asked to confirm access; try again shortly",
        )
    };
    let lost = || {
        OAuthError::new(
            OAuthErrorCode::InvalidGrant,
            "Discord access for this person has ended; sign in again",
        )
    };
    let (Some(sealer), Some(stored)) = (
        sealer(state),
        state.store.get_upstream_tokens(&user.id).await?,
    ) else {
        return Err(lost());
    };
    let kept =
        kept_tokens::open_tokens(&sealer, &user.id, &stored.ciphertext).map_err(|_| lost())?;
    let mut access = kept.access_token;
    if stored.access_expires_at <= now {
        let Some(refresh) = kept.refresh_token else {
            return Err(lost());
        };
        let renewed = match state.discord.refresh(&refresh).await {
            Ok(t) => t,
            Err(DiscordError::InvalidGrant | DiscordError::Unauthorized) => return Err(lost()),
            Err(_) if within_grace(state, fetched_at, now) => return Ok(snapshot),
            Err(e) => return Err(unavailable(&e)),
        };
        keep_tokens(state, &user.id, &renewed, now).await?;
        access = renewed.access_token;
    }
    // The snapshot is stale: ask Discord, not this process's cache of the same age.
    state.discord.forget_membership(&user.id);
    let membership = match fetch(state, &user.id, &access).await {
        Ok(m) => m,
        Err(DiscordError::Unauthorized) => return Err(lost()),
        Err(e) if within_grace(state, fetched_at, now) => {
            tracing::warn!(error = %e, user = %user.id, "Discord unreachable; using the last snapshot within discord.membership_grace");
            return Ok(snapshot);
        }
        Err(e) => return Err(unavailable(&e)),
    };
    save(state, &user.id, &membership, now).await?;
    Ok(membership)
}

/// Whether a snapshot taken at `fetched_at` may stand in while Discord is down.
fn within_grace(state: &AppState, fetched_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    let limits = state.config.lifetimes;
    !limits.membership_grace.is_zero()
        && fetched_at.is_some_and(|at| now - at < limits.membership + limits.membership_grace)
}

/// The claims a scope set releases about `user` to `client`, including `groups` from the
/// stored snapshot: one definition for the ID token, `/userinfo` and introspection.
pub async fn claims_for(
    state: &AppState,
    user: &UserRecord,
    scopes: &crate::domain::Scopes,
    client: Option<&ValidClient>,
) -> Result<Map<String, Value>, OAuthError> {
    let mut claims = crate::claims::user_claims(user, scopes);
    if scopes.contains("groups") {
        let (snapshot, _) = load(state, &user.id).await?;
        let visible = client.map(|c| c.groups.as_slice()).unwrap_or_default();
        let groups = crate::claims::groups(&state.config.groups, visible, &facts(&snapshot, user));
        claims.insert("groups".into(), json!(groups));
    }
    Ok(claims)
}
