//! Guild membership: fetched from Discord at sign-in, kept as a snapshot (re-checked by
//! [`super::recheck`] once older than `discord.membership_ttl`), and turned into policy facts
//! and the person's claims (groups, linked accounts, the server profile, mapped claims).

use super::Context;
use crate::config::ValidClient;
use crate::discord::{DiscordError, DiscordTokens, kept_tokens};
use crate::domain::DiscordId;
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
        user_id: user.id.as_str(),
        email_verified: user.email_verified,
        guilds: &membership.guilds,
        roles: &membership.roles,
        connections: &membership.connections,
    }
}

/// Asks Discord for exactly what the configured rules and groups need (cached per person and
/// guild for `discord.membership_ttl` inside the Discord client): guilds and roles with the bot
/// token when a bot is configured, else with the person's token; linked accounts always with
/// the person's token. `access_token` may be `None` only when [`needs_person_token`] is false.
pub async fn fetch(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    access_token: Option<&SecretString>,
) -> Result<Membership, DiscordError> {
    let person = || {
        access_token.ok_or_else(|| {
            DiscordError::Config("the person's Discord token is needed and not at hand".into())
        })
    };
    let now = ctx.clock.now();
    let mut membership = if !ctx.config.needs_guilds {
        Membership::default()
    } else if ctx.discord.has_bot() {
        ctx.discord
            .fetch_membership_by_bot(user_id.as_str(), &ctx.config.rule_guilds, now)
            .await?
    } else {
        ctx.discord
            .fetch_membership(
                user_id.as_str(),
                person()?,
                &ctx.config.member_guilds,
                ctx.config.discord_guild_list,
                now,
            )
            .await?
    };
    if ctx.config.needs_connections {
        membership.connections = ctx.discord.fetch_connections(person()?).await?;
    }
    super::community::name_roles(ctx, &mut membership, now).await?;
    Ok(membership)
}

/// Whether a re-check needs the person's own Discord token: for linked accounts, and for
/// guilds unless the bot reads them.
pub fn needs_person_token(ctx: &Context<'_>) -> bool {
    ctx.config.needs_connections || (ctx.config.needs_guilds && !ctx.discord.has_bot())
}

/// Whether this client's answer depends on the snapshot: the global rules or its own name a
/// guild or role, it may see groups, it receives or requires linked accounts, it shows a server
/// profile, or it maps claims from roles, guilds or linked accounts. Only then is a stale
/// snapshot re-checked for it, so an app without such rules never waits for Discord.
pub fn matters_for(ctx: &Context<'_>, client: &ValidClient) -> bool {
    let names_guilds = |rules: &crate::config::AccessRules| {
        !rules.allowed_guilds.is_empty() || !rules.required_roles.is_empty()
    };
    ctx.config.needs_membership
        && (names_guilds(&ctx.config.access)
            || names_guilds(&client.access)
            || !client.groups.is_empty()
            || client.connections
            || !client.access.required_connections.is_empty()
            || client.profile_guild.is_some()
            || client
                .claims
                .iter()
                .any(crate::config::MappedClaim::reads_membership))
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
    user_id: &DiscordId,
) -> Result<(Membership, Option<OffsetDateTime>), OAuthError> {
    Ok(read(
        ctx.store.get_membership(user_id).await?.as_ref(),
        user_id,
    ))
}

/// Decodes a stored snapshot (empty and never taken when there is none).
pub fn read(
    stored: Option<&MembershipSnapshot>,
    user_id: &DiscordId,
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
    user_id: &DiscordId,
    membership: &Membership,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    Ok(ctx
        .store
        .save_membership(user_id, &snapshot(membership, now)?)
        .await?)
}

/// The stored form of `membership`, taken at `now`, or as old as the oldest role list behind
/// its role names when that is earlier (so a renamed role is re-read within the TTL).
pub fn snapshot(
    membership: &Membership,
    now: OffsetDateTime,
) -> Result<MembershipSnapshot, OAuthError> {
    Ok(MembershipSnapshot {
        snapshot: serde_json::to_string(membership).map_err(OAuthError::internal)?,
        fetched_at: membership.names_read_at.map_or(now, |at| at.min(now)),
    })
}

/// Keeps the person's Discord tokens, sealed, for later re-checks (when a key is configured);
/// returns what was stored.
pub async fn keep_tokens(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    tokens: &DiscordTokens,
    now: OffsetDateTime,
) -> Result<Option<StoredUpstreamTokens>, OAuthError> {
    let Some(stored) = seal_tokens(ctx, user_id, tokens, now)? else {
        return Ok(None);
    };
    ctx.store
        .save_upstream_tokens(user_id, Some(&stored))
        .await?;
    Ok(Some(stored))
}

/// The person's Discord tokens sealed for the store, or `None` when no key is configured (then
/// nothing is kept and re-checks use the bot or ask the person to sign in again).
pub fn seal_tokens(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    tokens: &DiscordTokens,
    now: OffsetDateTime,
) -> Result<Option<StoredUpstreamTokens>, OAuthError> {
    let Some(sealer) = ctx.sealer else {
        return Ok(None);
    };
    let (ciphertext, access_expires_at) =
        kept_tokens::seal_tokens(sealer, user_id.as_str(), tokens, now)
            .map_err(OAuthError::internal)?;
    Ok(Some(StoredUpstreamTokens {
        ciphertext,
        access_expires_at,
    }))
}

/// The claims a scope set releases about `user` to `client`, including those read from the
/// stored snapshot (`groups`, `connections`, the server profile, mapped claims): one
/// definition for the ID token, `/userinfo` and introspection.
pub async fn claims_for(
    ctx: &Context<'_>,
    user: &UserRecord,
    scopes: &crate::domain::Scopes,
    client: Option<&ValidClient>,
) -> Result<Map<String, Value>, OAuthError> {
    let community = client.is_some_and(|c| {
        (scopes.contains("profile") && c.profile_guild.is_some())
            || c.claims
                .iter()
                .any(|m| scopes.contains(&m.scope) && m.reads_membership())
    });
    let snapshot = if scopes.contains("groups") || scopes.contains("connections") || community {
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
    let facts = facts(snapshot, user);
    let mut claims = crate::claims::user_claims(user, scopes);
    if let Some(guild) = client.and_then(|c| c.profile_guild.as_ref()) {
        if scopes.contains("profile") {
            let profile = snapshot.profiles.get(guild.as_str());
            let server = crate::claims::ServerProfile {
                guild: guild.as_str(),
                nick: profile.and_then(|p| p.nick.as_deref()),
                avatar: profile.and_then(|p| p.avatar.as_deref()),
            };
            crate::claims::apply_server_profile(&mut claims, user, server);
        }
    }
    if scopes.contains("groups") {
        let visible = client.map(|c| c.groups.as_slice()).unwrap_or_default();
        let format = client.map(|c| c.group_format).unwrap_or_default();
        let groups = crate::claims::groups(
            &ctx.config.groups,
            visible,
            format,
            &facts,
            &snapshot.role_names,
        );
        claims.insert("groups".into(), json!(groups));
    }
    // Only for a client allowed them; `authorize` already drops the scope for the others.
    if scopes.contains("connections") && client.is_some_and(|c| c.connections) {
        claims.insert("connections".into(), crate::claims::connections(&facts));
    }
    // Mapped claims never take a name set above: check-config refuses those names.
    if let Some(client) = client {
        claims.extend(crate::claims::mapped(&client.claims, scopes, &facts));
    }
    claims
}
