//! Tests and `guildgate dev` change what members set for themselves (server nickname and
//! avatar) and what roles are called, with or without telling the fake Gateway; the payloads
//! are Discord's (docs: gateway-events#guild-member-update, #guild-role-update).

use super::{FakeDiscordHandle, bot, rest};

impl FakeDiscordHandle {
    /// Sets (or with `None` clears) the member's server nickname, without telling the Gateway
    /// (Discord is asked again at the next re-check). Returns false when they are not a member.
    pub fn set_nick(&self, user_id: &str, guild_id: &str, nick: Option<&str>) -> bool {
        self.state()
            .data
            .edit_member(user_id, guild_id, |m| m.nick = nick.map(str::to_owned))
    }

    /// Sets (or clears) the member's server avatar hash, without telling the Gateway.
    pub fn set_server_avatar(&self, user_id: &str, guild_id: &str, avatar: Option<&str>) -> bool {
        self.state()
            .data
            .edit_member(user_id, guild_id, |m| m.avatar = avatar.map(str::to_owned))
    }

    /// Dispatches `GUILD_MEMBER_UPDATE` with the member as the data now has them (after
    /// [`FakeDiscordHandle::set_nick`] and the like). Returns false when they are not a member.
    pub fn dispatch_member_update(&self, user_id: &str, guild_id: &str) -> bool {
        let Some(data) = self.member_update_payload(user_id, guild_id) else {
            return false;
        };
        self.inner.gateway.dispatch("GUILD_MEMBER_UPDATE", data);
        true
    }

    /// The `GUILD_MEMBER_UPDATE` payload of a member (docs: gateway-events#guild-member-update).
    pub fn member_update_payload(
        &self,
        user_id: &str,
        guild_id: &str,
    ) -> Option<serde_json::Value> {
        let s = self.state();
        let user = s.data.user(user_id)?;
        let m = user.memberships.iter().find(|m| m.guild == guild_id)?;
        Some(serde_json::json!({
            "guild_id": guild_id, "user": rest::user_json(user, false), "roles": m.roles,
            "nick": m.nick, "avatar": m.avatar, "banner": null, "joined_at": m.joined_at,
            "premium_since": null, "deaf": false, "mute": false, "pending": false, "flags": 0,
            "communication_disabled_until": null,
        }))
    }

    /// Renames a role in the data without telling the Gateway (the role list answers the new
    /// name). Returns false when the guild or role is unknown.
    pub fn set_role_name(&self, guild_id: &str, role_id: &str, name: &str) -> bool {
        self.state().data.rename_role(guild_id, role_id, name)
    }

    /// A moderator renames a role: the data changes and the Gateway dispatches
    /// `GUILD_ROLE_UPDATE` with the role object. Returns false when the guild or role is unknown.
    pub fn rename_role(&self, guild_id: &str, role_id: &str, name: &str) -> bool {
        if !self.set_role_name(guild_id, role_id, name) {
            return false;
        }
        let Some(payload) = self.role_update_payload(guild_id, role_id) else {
            return false;
        };
        self.inner.gateway.dispatch("GUILD_ROLE_UPDATE", payload);
        true
    }

    /// The `GUILD_ROLE_UPDATE` payload of a role (docs: gateway-events#guild-role-update).
    pub fn role_update_payload(&self, guild_id: &str, role_id: &str) -> Option<serde_json::Value> {
        let s = self.state();
        let guild = s.data.guild(guild_id)?;
        let (position, role) = guild
            .roles
            .iter()
            .enumerate()
            .find(|(_, r)| r.id == role_id)?;
        Some(serde_json::json!({
            "guild_id": guild_id,
            "role": bot::role_json(&role.id, &role.name, position + 1),
        }))
    }
}
