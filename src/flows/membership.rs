//! Guild membership: fetched from Discord at sign-in, kept as a snapshot (re-checked by
//! [`super::recheck`] once older than `discord.membership_ttl`), and turned into policy facts
//! and groups.

use super::Context;
use crate::config::ValidClient;
use crate::discord::{DiscordError, DiscordTokens, kept_tokens};
use crate::error::OAuthError;
use crate::policy::{self, Denial, Facts};
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
    ctx: &Context<'_>,
    user_id: &str,
    access_token: &SecretString,
) -> Result<Membership, DiscordError> {
    if !ctx.config.needs_membership {
        return Ok(Membership::default());
    }
    let with_guild_list = ctx.config.discord_guild_list;
    ctx.discord
        .fetch_membership(
            user_id,
            access_token,
            &ctx.config.member_guilds,
            with_guild_list,
            ctx.clock.now(),
        )
        .await
}

/// Whether this client's answer depends on guild membership: the global rules or its own name a
/// guild or role, or it may see groups. Only then is a stale snapshot re-checked for it, so an
/// app without such rules never waits for Discord.
pub fn matters_for(ctx: &Context<'_>, client: &ValidClient) -> bool {
    let names_guilds = |rules: &crate::config::AccessRules| {
        !rules.allowed_guilds.is_empty() || !rules.required_roles.is_empty()
    };
    ctx.config.needs_membership
        && (names_guilds(&ctx.config.access)
            || names_guilds(&client.access)
            || !client.groups.is_empty())
}

/// The global and the client's rules against a membership.
pub fn check(
    ctx: &Context<'_>,
    client: Option<&ValidClient>,
    user: &UserRecord,
    membership: &Membership,
) -> Result<(), Denial> {
    let none = crate::config::AccessRules::default();
    let client_rules = client.map_or(&none, |c| &c.access);
    policy::evaluate(&ctx.config.access, client_rules, &facts(membership, user))
}

/// The stored snapshot (empty when none was taken).
pub async fn load(
    ctx: &Context<'_>,
    user_id: &str,
) -> Result<(Membership, Option<OffsetDateTime>), OAuthError> {
    Ok(read(
        ctx.store.get_membership(user_id).await?.as_ref(),
        user_id,
    ))
}

/// Decodes a stored snapshot (empty and never taken when there is none).
pub fn read(
    stored: Option<&MembershipSnapshot>,
    user_id: &str,
) -> (Membership, Option<OffsetDateTime>) {
    match stored {
        Some(s) => match serde_json::from_str(&s.snapshot) {
            Ok(membership) => (membership, Some(s.fetched_at)),
            // Unreadable (written by an incompatible release): treat as never taken, so the
            // next use asks Discord again instead of trusting an empty membership.
            Err(e) => {
                tracing::warn!(error = %e, user = %user_id, "stored membership snapshot is unreadable; it will be fetched again");
                (Membership::default(), None)
            }
        },
        None => (Membership::default(), None),
    }
}

/// Stores a fresh snapshot.
pub async fn save(
    ctx: &Context<'_>,
    user_id: &str,
    membership: &Membership,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    let snapshot = MembershipSnapshot {
        snapshot: serde_json::to_string(membership).map_err(OAuthError::internal)?,
        fetched_at: now,
    };
    Ok(ctx.store.save_membership(user_id, &snapshot).await?)
}

/// Keeps the person's Discord tokens, sealed, for later re-checks (when a key is configured);
/// returns what was stored.
pub async fn keep_tokens(
    ctx: &Context<'_>,
    user_id: &str,
    tokens: &DiscordTokens,
    now: OffsetDateTime,
) -> Result<Option<StoredUpstreamTokens>, OAuthError> {
    let Some(sealer) = ctx.sealer else {
        return Ok(None);
    };
    let (ciphertext, access_expires_at) =
        kept_tokens::seal_tokens(sealer, user_id, tokens, now).map_err(OAuthError::internal)?;
    let stored = StoredUpstreamTokens {
        ciphertext,
        access_expires_at,
    };
    ctx.store
        .save_upstream_tokens(user_id, Some(&stored))
        .await?;
    Ok(Some(stored))
}

/// The claims a scope set releases about `user` to `client`, including `groups` from the
/// stored snapshot: one definition for the ID token, `/userinfo` and introspection.
pub async fn claims_for(
    ctx: &Context<'_>,
    user: &UserRecord,
    scopes: &crate::domain::Scopes,
    client: Option<&ValidClient>,
) -> Result<Map<String, Value>, OAuthError> {
    let snapshot = if scopes.contains("groups") {
        load(ctx, &user.id).await?.0
    } else {
        Membership::default()
    };
    Ok(claims_with(ctx, user, &snapshot, scopes, client))
}

/// [`claims_for`] with the snapshot already in hand.
pub fn claims_with(
    ctx: &Context<'_>,
    user: &UserRecord,
    snapshot: &Membership,
    scopes: &crate::domain::Scopes,
    client: Option<&ValidClient>,
) -> Map<String, Value> {
    let mut claims = crate::claims::user_claims(user, scopes);
    if scopes.contains("groups") {
        let visible = client.map(|c| c.groups.as_slice()).unwrap_or_default();
        let groups = crate::claims::groups(&ctx.config.groups, visible, &facts(snapshot, user));
        claims.insert("groups".into(), json!(groups));
    }
    claims
}
