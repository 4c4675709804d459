//! Role names in the membership snapshot (issue 26): read through the bot for the guilds whose
//! role names a client shows (`group_format`), and kept true to Discord. A snapshot is saved as
//! old as the oldest role list behind it, so a rename shows at the first re-check after
//! `discord.membership_ttl`; with the bot's Gateway, a role event rewrites the snapshots of the
//! people holding the role at once (a deleted role is a lost role, enforced like one).

use super::{Context, deprovision, membership};
use crate::discord::gateway::RoleEvent;
use crate::discord::{DiscordError, Membership};
use crate::domain::DiscordId;
use crate::error::OAuthError;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// Fills in the Discord names of the person's roles in every guild whose role names some
/// client shows, from the bot's (cached) role lists, and notes how old the oldest list is.
pub async fn name_roles(
    ctx: &Context<'_>,
    membership: &mut Membership,
    now: OffsetDateTime,
) -> Result<(), DiscordError> {
    membership.role_names.clear();
    for guild in &ctx.config.role_name_guilds {
        if membership.roles.contains_key(guild) {
            name_guild(ctx, membership, guild, now).await?;
        }
    }
    Ok(())
}

/// Names the person's roles in one guild (which must be one whose names are kept).
async fn name_guild(
    ctx: &Context<'_>,
    membership: &mut Membership,
    guild: &str,
    now: OffsetDateTime,
) -> Result<(), DiscordError> {
    let list = ctx.discord.guild_role_names(guild, now).await?;
    let held = membership.roles.get(guild).cloned().unwrap_or_default();
    let names: BTreeMap<String, String> = held
        .iter()
        .filter_map(|role| Some((role.clone(), list.names.get(role)?.clone())))
        .collect();
    membership.role_names.insert(guild.to_owned(), names);
    membership.names_read_at = Some(
        membership
            .names_read_at
            .map_or(list.read_at, |at| at.min(list.read_at)),
    );
    Ok(())
}

/// After a Gateway member update changed the person's roles in `guild`: names the roles they
/// hold now. When the role list cannot be read, the names already known for roles still held
/// stay (they are no older than the snapshot) and the others are left unnamed (the claim then
/// shows those by their configured name) until the next re-check.
pub async fn rename_after_update(
    ctx: &Context<'_>,
    membership: &mut Membership,
    guild: &str,
    now: OffsetDateTime,
) {
    if !ctx.config.role_name_guilds.iter().any(|g| g == guild) {
        return;
    }
    let before = membership.role_names.remove(guild).unwrap_or_default();
    if let Err(e) = name_guild(ctx, membership, guild, now).await {
        tracing::warn!(error = %e, guild, "cannot read the server's role names; keeping the known ones until the next re-check");
        let held = membership.roles.get(guild).cloned().unwrap_or_default();
        let kept = before
            .into_iter()
            .filter(|(role, _)| held.contains(role))
            .collect();
        membership.role_names.insert(guild.to_owned(), kept);
    }
}

/// Applies a Gateway role event: this process's role-name cache takes it, then every person
/// with a live session or grant who holds the role has their snapshot updated (keeping its
/// age): a new name is written in; a deleted role is removed and its loss enforced like a
/// lost role ([`deprovision::enforce`]). Guilds the bot does not watch are ignored. Returns
/// how many people's snapshots changed.
pub async fn apply_role_event(
    ctx: &Context<'_>,
    event: &RoleEvent,
    now: OffsetDateTime,
) -> Result<usize, OAuthError> {
    let guild = event.guild_id();
    let watched = ctx
        .config
        .bot
        .as_ref()
        .is_some_and(|b| b.guilds.iter().any(|g| g == guild));
    if !watched {
        return Ok(0);
    }
    let cache = ctx.discord.role_name_cache();
    let names_kept = ctx.config.role_name_guilds.iter().any(|g| g == guild);
    match event {
        RoleEvent::Named { role_id, name, .. } => {
            let unchanged = cache
                .get(guild, now)
                .is_some_and(|list| list.names.get(role_id) == Some(name));
            cache.set_name(guild, role_id, name);
            // Discord also sends an update when a role only moves in the list: with the name
            // known unchanged, no snapshot needs a look.
            if !names_kept || unchanged {
                return Ok(0);
            }
        }
        RoleEvent::Deleted { role_id, .. } => cache.remove_role(guild, role_id),
    }
    let mut changed = 0;
    for user_id in deprovision::live_people(ctx, now).await? {
        if update_holder(ctx, &user_id, event, now).await? {
            changed += 1;
        }
    }
    Ok(changed)
}

/// Updates one person's snapshot for a role event, if they hold the role.
async fn update_holder(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    event: &RoleEvent,
    now: OffsetDateTime,
) -> Result<bool, OAuthError> {
    let (guild, role) = (event.guild_id(), event.role_id());
    let (mut snapshot, fetched_at) = membership::load(ctx, user_id).await?;
    let Some(fetched_at) = fetched_at else {
        return Ok(false);
    };
    let holds = snapshot
        .roles
        .get(guild)
        .is_some_and(|roles| roles.iter().any(|r| r == role));
    if !holds {
        return Ok(false);
    }
    match event {
        RoleEvent::Named { name, .. } => {
            snapshot
                .role_names
                .entry(guild.to_owned())
                .or_default()
                .insert(role.to_owned(), name.clone());
            membership::save(ctx, user_id, &snapshot, fetched_at).await?;
        }
        RoleEvent::Deleted { .. } => {
            if let Some(roles) = snapshot.roles.get_mut(guild) {
                roles.retain(|r| r != role);
            }
            if let Some(names) = snapshot.role_names.get_mut(guild) {
                names.remove(role);
            }
            ctx.discord.forget_membership(user_id.as_str());
            deprovision::enforce(ctx, user_id, &snapshot, fetched_at, now).await?;
        }
    }
    Ok(true)
}
