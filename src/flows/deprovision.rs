//! Live deprovisioning: a member event from the bot's Gateway connection (removal, ban, update
//! of roles, server nickname or avatar) or a catch-up re-read changes a person's membership
//! snapshot (so their claims follow at once), and whatever the person no longer qualifies for
//! ends at once: every grant and session when the global rules no longer admit them, else the
//! grants of each app whose own rules they no longer meet. Apps are told by back-channel
//! logout. A role added is only recorded: it takes effect at the next sign-in or refresh, like
//! any other grant of access.

use super::Context;
use super::{logout, membership};
use crate::discord::Membership;
use crate::discord::cache::CachedMember;
use crate::discord::gateway::MemberEvent;
use crate::domain::{ClientId, DiscordId};
use crate::error::OAuthError;
use time::OffsetDateTime;

/// What an event changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deprovisioned {
    /// Every session and grant ended: the global rules no longer admit the person.
    pub signed_out: bool,
    /// Apps whose grants were revoked (one entry per app).
    pub apps: Vec<ClientId>,
}

impl Deprovisioned {
    /// Whether anything ended.
    pub fn ended_anything(&self) -> bool {
        self.signed_out || !self.apps.is_empty()
    }
}

/// Applies a Gateway member event to the person's snapshot, then enforces the rules.
/// People guildgate never saw sign in, and guilds the bot does not watch (it may be in others),
/// are ignored.
pub async fn apply(
    ctx: &Context<'_>,
    event: &MemberEvent,
    now: OffsetDateTime,
) -> Result<Deprovisioned, OAuthError> {
    let watched = ctx
        .config
        .bot
        .as_ref()
        .is_some_and(|b| b.guilds.iter().any(|g| g == event.guild_id()));
    if !watched {
        return Ok(Deprovisioned::default());
    }
    // Not a snowflake: nobody guildgate signed in.
    let Ok(user_id) = DiscordId::parse(event.user_id()) else {
        return Ok(Deprovisioned::default());
    };
    let stored = ctx.store.get_membership(&user_id).await?;
    let Some(stored) = stored else {
        return Ok(Deprovisioned::default());
    };
    let (mut snapshot, fetched_at) = membership::read(Some(&stored), &user_id);
    let guild = event.guild_id().to_owned();
    match event {
        MemberEvent::Removed { .. } | MemberEvent::Banned { .. } => {
            snapshot.guilds.retain(|g| *g != guild);
            snapshot.roles.remove(&guild);
        }
        MemberEvent::Updated {
            roles,
            nick,
            avatar,
            ..
        } => {
            let member = CachedMember {
                roles: roles.clone(),
                nick: nick.clone(),
                avatar: avatar.clone(),
            };
            snapshot.record_member(&guild, Some(member));
            super::community::rename_after_update(ctx, &mut snapshot, &guild, now).await;
        }
    }
    // This process's cached Discord answers are older than the event.
    ctx.discord.forget_membership(user_id.as_str());
    enforce(ctx, &user_id, &snapshot, fetched_at.unwrap_or(now), now).await
}

/// Stores `snapshot` (keeping `fetched_at`, so the regular re-check schedule is unchanged) and
/// ends what the person no longer qualifies for.
pub async fn enforce(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    snapshot: &Membership,
    fetched_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Deprovisioned, OAuthError> {
    membership::save(ctx, user_id, snapshot, fetched_at).await?;
    let Some(user) = ctx.store.get_user(user_id).await? else {
        return Ok(Deprovisioned::default());
    };
    if membership::check(ctx, None, &user, snapshot).is_err() {
        let ended = logout::revoke_user(ctx, user_id, now).await?;
        let grants_or_sessions = !ended.is_empty();
        if grants_or_sessions {
            tracing::info!(target: "audit", event = "live_deprovision", user = %user_id, sessions_ended = ended.len(), "the global rules no longer admit this person; signed out everywhere");
        }
        return Ok(Deprovisioned {
            signed_out: grants_or_sessions,
            apps: Vec::new(),
        });
    }
    let mut out = Deprovisioned::default();
    for grant in ctx.store.list_user_grants(user_id, now).await? {
        let Some(client) = ctx.clients.get(grant.client_id.as_str()) else {
            continue;
        };
        if membership::check(ctx, Some(&client), &user, snapshot).is_ok() {
            continue;
        }
        if ctx.store.revoke_grant(&grant.id, now).await? {
            logout::notify_client(
                ctx,
                &grant.client_id,
                user_id,
                grant.session_id.as_ref(),
                now,
            )
            .await?;
            tracing::info!(target: "audit", event = "live_deprovision", user = %user_id, client_id = %grant.client_id, "the app's rules no longer admit this person; grant revoked");
            if !out.apps.contains(&grant.client_id) {
                out.apps.push(grant.client_id);
            }
        }
    }
    Ok(out)
}

/// After a Gateway outage (a new session, so events may have been missed): re-reads with the
/// bot the memberships of everyone with a live session and enforces the rules where they
/// changed. Returns how many people lost something. Discord errors stop the round (the next
/// new session tries again); they are logged by the caller.
pub async fn catch_up(ctx: &Context<'_>, now: OffsetDateTime) -> Result<usize, CatchUpError> {
    let people = live_people(ctx, now).await.map_err(CatchUpError::Store)?;
    let mut affected = 0;
    for user_id in people {
        let (stored, fetched_at) = membership::load(ctx, &user_id)
            .await
            .map_err(CatchUpError::Store)?;
        let Some(fetched_at) = fetched_at else {
            continue;
        };
        ctx.discord.forget_membership(user_id.as_str());
        let mut fresh = ctx
            .discord
            .fetch_membership_by_bot(user_id.as_str(), &ctx.config.rule_guilds, now)
            .await
            .map_err(CatchUpError::Discord)?;
        super::community::name_roles(ctx, &mut fresh, now)
            .await
            .map_err(CatchUpError::Discord)?;
        if fresh.guilds == stored.guilds
            && fresh.roles == stored.roles
            && fresh.profiles == stored.profiles
            && fresh.role_names == stored.role_names
        {
            continue;
        }
        // Linked accounts are not the bot's to read: they stay as last fetched.
        let merged = Membership {
            connections: stored.connections,
            ..fresh
        };
        let outcome = enforce(ctx, &user_id, &merged, fetched_at, now)
            .await
            .map_err(CatchUpError::Store)?;
        if outcome.ended_anything() {
            affected += 1;
        }
    }
    Ok(affected)
}

/// Everyone who could still use an app: people with a live session, and with a grant without
/// one (offline access).
pub async fn live_people(
    ctx: &Context<'_>,
    now: OffsetDateTime,
) -> Result<Vec<DiscordId>, OAuthError> {
    let mut people: Vec<DiscordId> = ctx
        .store
        .list_sessions(None, now)
        .await?
        .into_iter()
        .map(|s| s.user_id)
        .collect();
    people.extend(ctx.store.people_with_live_grants(now).await?);
    people.sort();
    people.dedup();
    Ok(people)
}

/// Why a catch-up round stopped.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    /// The store failed.
    #[error("store: {0}")]
    Store(OAuthError),
    /// Discord could not be asked.
    #[error("Discord: {0}")]
    Discord(crate::discord::DiscordError),
}
