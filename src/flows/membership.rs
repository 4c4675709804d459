//! Guild membership: fetched from Discord at sign-in, kept as a snapshot, re-checked at refresh
//! once older than `discord.membership_ttl`, and turned into policy facts and groups.

use crate::config::ValidClient;
use crate::discord::{DiscordError, DiscordTokens};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::policy::{self, Denial, Facts};
use crate::sealed::Sealer;
use crate::state::AppState;
use crate::store::{MembershipSnapshot, StoredUpstreamTokens, UserRecord};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// What Discord said about a person's guilds and roles (stored as JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Guild ids the person is in (from `/users/@me/guilds`, or member lookups without it).
    pub guilds: Vec<String>,
    /// Role ids per guild, for guilds whose member object was fetched.
    pub roles: BTreeMap<String, Vec<String>>,
}

impl Membership {
    /// The policy's view of this membership and the person.
    pub fn facts<'a>(&'a self, user: &'a UserRecord) -> Facts<'a> {
        Facts {
            user_id: &user.id,
            email_verified: user.email_verified,
            guilds: &self.guilds,
            roles: &self.roles,
        }
    }
}

/// Asks Discord for exactly what the configured rules and groups need.
pub async fn fetch(
    state: &AppState,
    user_id: &str,
    access_token: &SecretString,
) -> Result<Membership, DiscordError> {
    if !state.config.needs_membership {
        return Ok(Membership::default());
    }
    let with_guild_list = state.settings.discord.scopes.iter().any(|s| s == "guilds");
    let cache = &state.membership_cache;
    let now = state.clock.now();
    let mut membership = Membership::default();
    if with_guild_list {
        membership.guilds = match cache.guilds(user_id, now) {
            Some(guilds) => guilds,
            None => {
                let guilds: Vec<String> = state
                    .discord
                    .fetch_guilds(access_token)
                    .await?
                    .into_iter()
                    .map(|g| g.id)
                    .collect();
                cache.put_guilds(user_id, guilds.clone(), now);
                guilds
            }
        };
    }
    for guild in &state.config.member_guilds {
        // The member endpoint is tightly rate limited: skip guilds the list says they are not in.
        if with_guild_list && !membership.guilds.contains(guild) {
            continue;
        }
        let roles = match cache.member(user_id, guild, now) {
            Some(roles) => roles,
            None => {
                let roles = state
                    .discord
                    .fetch_member(access_token, guild)
                    .await?
                    .map(|m| m.roles);
                cache.put_member(user_id, guild, roles.clone(), now);
                roles
            }
        };
        if let Some(roles) = roles {
            if !membership.guilds.contains(guild) {
                membership.guilds.push(guild.clone());
            }
            membership.roles.insert(guild.clone(), roles);
        }
    }
    Ok(membership)
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
    policy::evaluate(&state.config.access, client_rules, &membership.facts(user))
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
    let plain = serde_json::json!({
        "access_token": tokens.access_token.expose_secret(),
        "refresh_token": tokens.refresh_token.as_ref().map(|t| t.expose_secret().to_owned()),
    });
    let ciphertext = sealer
        .seal(plain.to_string().as_bytes(), user_id.as_bytes())
        .map_err(OAuthError::internal)?;
    let expires = now + tokens.expires_in;
    let stored = StoredUpstreamTokens {
        ciphertext,
        access_expires_at: expires,
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
    let unavailable = |e: &dyn std::fmt::Display| {
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
    let plain = sealer
        .open(&stored.ciphertext, user.id.as_bytes())
        .map_err(|_| lost())?;
    let kept: serde_json::Value = serde_json::from_slice(&plain).map_err(|_| lost())?;
    let mut access =
        SecretString::from(kept["access_token"].as_str().unwrap_or_default().to_owned());
    if stored.access_expires_at <= now {
        let Some(refresh) = kept["refresh_token"].as_str() else {
            return Err(lost());
        };
        let renewed = match state
            .discord
            .refresh(&SecretString::from(refresh.to_owned()))
            .await
        {
            Ok(t) => t,
            Err(DiscordError::InvalidGrant | DiscordError::Unauthorized) => return Err(lost()),
            Err(e) => return Err(unavailable(&e)),
        };
        keep_tokens(state, &user.id, &renewed, now).await?;
        access = renewed.access_token;
    }
    // The snapshot is stale: ask Discord, not this process's cache of the same age.
    state.membership_cache.forget(&user.id);
    let membership = match fetch(state, &user.id, &access).await {
        Ok(m) => m,
        Err(DiscordError::Unauthorized) => return Err(lost()),
        Err(e) => return Err(unavailable(&e)),
    };
    save(state, &user.id, &membership, now).await?;
    Ok(membership)
}

/// The claims a scope set releases about `user` to `client`, including `groups` from the
/// stored snapshot: one definition for the ID token, `/userinfo` and introspection.
pub async fn claims_for(
    state: &AppState,
    user: &UserRecord,
    scopes: &crate::domain::Scopes,
    client: Option<&ValidClient>,
) -> Result<serde_json::Map<String, serde_json::Value>, OAuthError> {
    let mut claims = crate::claims::user_claims(user, scopes);
    if scopes.contains("groups") {
        let (snapshot, _) = load(state, &user.id).await?;
        let visible = client.map(|c| c.groups.as_slice()).unwrap_or_default();
        let groups = crate::claims::groups(&state.config.groups, visible, &snapshot.facts(user));
        claims.insert("groups".into(), serde_json::json!(groups));
    }
    Ok(claims)
}
