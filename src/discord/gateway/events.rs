//! The three member dispatches live membership reacts to, read from their JSON payloads
//! (docs: topics/gateway-events#guild-member-remove, #guild-ban-add, #guild-member-update), and
//! the counted kinds of every dispatch it reads (the role dispatches are in `role_events.rs`).
//! Only the fields we act on are parsed, so a field Discord adds or changes elsewhere in these
//! large objects never makes us miss an event.

use serde::Deserialize;

/// A change of one person's membership in one guild, as the Gateway reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// `GUILD_MEMBER_REMOVE`: left or was kicked.
    Removed {
        /// Guild snowflake.
        guild_id: String,
        /// User snowflake.
        user_id: String,
    },
    /// `GUILD_BAN_ADD`: banned (Discord also sends `GUILD_MEMBER_REMOVE`).
    Banned {
        /// Guild snowflake.
        guild_id: String,
        /// User snowflake.
        user_id: String,
    },
    /// `GUILD_MEMBER_UPDATE`: the member's full current role list and server profile.
    Updated {
        /// Guild snowflake.
        guild_id: String,
        /// User snowflake.
        user_id: String,
        /// Role snowflakes now held.
        roles: Vec<String>,
        /// Server nickname (`nick?`: absent or null both mean none).
        nick: Option<String>,
        /// Server avatar hash.
        avatar: Option<String>,
    },
}

impl MemberEvent {
    /// The guild concerned.
    pub fn guild_id(&self) -> &str {
        match self {
            Self::Removed { guild_id, .. }
            | Self::Banned { guild_id, .. }
            | Self::Updated { guild_id, .. } => guild_id,
        }
    }

    /// The person concerned.
    pub fn user_id(&self) -> &str {
        match self {
            Self::Removed { user_id, .. }
            | Self::Banned { user_id, .. }
            | Self::Updated { user_id, .. } => user_id,
        }
    }

    /// A short stable name, for logs and counters.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Removed { .. } => EventKind::MemberRemove,
            Self::Banned { .. } => EventKind::BanAdd,
            Self::Updated { .. } => EventKind::MemberUpdate,
        }
    }
}

/// The dispatch types counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `GUILD_MEMBER_REMOVE`.
    MemberRemove,
    /// `GUILD_BAN_ADD`.
    BanAdd,
    /// `GUILD_MEMBER_UPDATE`.
    MemberUpdate,
    /// `GUILD_ROLE_CREATE`.
    RoleCreate,
    /// `GUILD_ROLE_UPDATE`.
    RoleUpdate,
    /// `GUILD_ROLE_DELETE`.
    RoleDelete,
}

impl EventKind {
    /// Every kind, in counter order.
    pub const ALL: [EventKind; 6] = [
        Self::MemberRemove,
        Self::BanAdd,
        Self::MemberUpdate,
        Self::RoleCreate,
        Self::RoleUpdate,
        Self::RoleDelete,
    ];

    /// Discord's dispatch name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MemberRemove => "GUILD_MEMBER_REMOVE",
            Self::BanAdd => "GUILD_BAN_ADD",
            Self::MemberUpdate => "GUILD_MEMBER_UPDATE",
            Self::RoleCreate => "GUILD_ROLE_CREATE",
            Self::RoleUpdate => "GUILD_ROLE_UPDATE",
            Self::RoleDelete => "GUILD_ROLE_DELETE",
        }
    }
}

#[derive(Deserialize)]
struct Dispatch<'a> {
    op: u8,
    #[serde(default, borrow)]
    t: Option<&'a str>,
    #[serde(default)]
    d: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    guild_id: String,
    user: UserRef,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    nick: Option<String>,
    #[serde(default)]
    avatar: Option<String>,
}

#[derive(Deserialize)]
struct UserRef {
    id: String,
}

/// The member event in a Gateway text message, if it is one of the three (opcode 0 dispatch).
pub fn parse(text: &str) -> Option<MemberEvent> {
    let head: Dispatch<'_> = serde_json::from_str(text).ok()?;
    if head.op != 0 {
        return None;
    }
    let kind = head.t?;
    if !matches!(
        kind,
        "GUILD_MEMBER_REMOVE" | "GUILD_BAN_ADD" | "GUILD_MEMBER_UPDATE"
    ) {
        return None;
    }
    let d = head.d?;
    let (guild_id, user_id) = (d.guild_id, d.user.id);
    Some(match kind {
        "GUILD_MEMBER_REMOVE" => MemberEvent::Removed { guild_id, user_id },
        "GUILD_BAN_ADD" => MemberEvent::Banned { guild_id, user_id },
        _ => MemberEvent::Updated {
            guild_id,
            user_id,
            roles: d.roles?,
            nick: d.nick,
            avatar: d.avatar,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_dispatches_are_read_and_others_ignored() {
        let remove = r#"{"op":0,"s":3,"t":"GUILD_MEMBER_REMOVE","d":{"guild_id":"81","user":{"id":"31","username":"a","discriminator":"0","avatar":null}}}"#;
        assert_eq!(
            parse(remove),
            Some(MemberEvent::Removed {
                guild_id: "81".into(),
                user_id: "31".into()
            })
        );
        let ban = r#"{"op":0,"s":4,"t":"GUILD_BAN_ADD","d":{"guild_id":"81","user":{"id":"31"}}}"#;
        assert_eq!(parse(ban).map(|e| e.kind()), Some(EventKind::BanAdd));
        let update = r#"{"op":0,"s":5,"t":"GUILD_MEMBER_UPDATE","d":{"guild_id":"81","roles":["7"],"user":{"id":"31"},"joined_at":null,"deaf":false}}"#;
        assert_eq!(
            parse(update),
            Some(MemberEvent::Updated {
                guild_id: "81".into(),
                user_id: "31".into(),
                roles: vec!["7".into()],
                nick: None,
                avatar: None,
            })
        );
        let renamed = r#"{"op":0,"s":6,"t":"GUILD_MEMBER_UPDATE","d":{"guild_id":"81","roles":[],"user":{"id":"31"},"nick":"Bobby","avatar":"a_1f","banner":null}}"#;
        assert!(matches!(
            parse(renamed),
            Some(MemberEvent::Updated { nick: Some(n), avatar: Some(a), .. }) if n == "Bobby" && a == "a_1f"
        ));
        for other in [
            r#"{"op":11}"#,
            r#"{"op":0,"s":1,"t":"READY","d":{"v":10}}"#,
            r#"{"op":0,"s":6,"t":"GUILD_MEMBER_ADD","d":{"guild_id":"81","user":{"id":"31"}}}"#,
            "not json",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
