//! The role dispatches (docs: topics/gateway-events#guild-role-create, #guild-role-update,
//! #guild-role-delete; they come with the `GUILDS` intent): a role named or renamed, or gone.
//! Only the ids and the name are parsed.

use super::events::EventKind;
use serde::Deserialize;

/// A change of one role in one guild, as the Gateway reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleEvent {
    /// `GUILD_ROLE_CREATE` or `GUILD_ROLE_UPDATE`: the role's current name.
    Named {
        /// Guild snowflake.
        guild_id: String,
        /// Role snowflake.
        role_id: String,
        /// Its name now.
        name: String,
        /// Created (`GUILD_ROLE_CREATE`) rather than updated.
        created: bool,
    },
    /// `GUILD_ROLE_DELETE`.
    Deleted {
        /// Guild snowflake.
        guild_id: String,
        /// Role snowflake.
        role_id: String,
    },
}

impl RoleEvent {
    /// The guild concerned.
    pub fn guild_id(&self) -> &str {
        match self {
            Self::Named { guild_id, .. } | Self::Deleted { guild_id, .. } => guild_id,
        }
    }

    /// The role concerned.
    pub fn role_id(&self) -> &str {
        match self {
            Self::Named { role_id, .. } | Self::Deleted { role_id, .. } => role_id,
        }
    }

    /// The dispatch it came as, for logs and counters.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Named { created: true, .. } => EventKind::RoleCreate,
            Self::Named { .. } => EventKind::RoleUpdate,
            Self::Deleted { .. } => EventKind::RoleDelete,
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
    #[serde(default)]
    role: Option<RoleRef>,
    #[serde(default)]
    role_id: Option<String>,
}

#[derive(Deserialize)]
struct RoleRef {
    id: String,
    name: String,
}

/// The role event in a Gateway text message, if it is one (opcode 0 dispatch).
pub fn parse(text: &str) -> Option<RoleEvent> {
    if !text.contains("GUILD_ROLE_") {
        return None;
    }
    let head: Dispatch<'_> = serde_json::from_str(text).ok()?;
    if head.op != 0 {
        return None;
    }
    let kind = head.t?;
    let d = head.d?;
    match kind {
        "GUILD_ROLE_CREATE" | "GUILD_ROLE_UPDATE" => {
            let role = d.role?;
            Some(RoleEvent::Named {
                guild_id: d.guild_id,
                role_id: role.id,
                name: role.name,
                created: kind == "GUILD_ROLE_CREATE",
            })
        }
        "GUILD_ROLE_DELETE" => Some(RoleEvent::Deleted {
            guild_id: d.guild_id,
            role_id: d.role_id?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_role_dispatches_are_read_and_others_ignored() {
        let update = r#"{"op":0,"s":7,"t":"GUILD_ROLE_UPDATE","d":{"guild_id":"81","role":{"id":"9","name":"Moderators","color":0,"hoist":false,"position":3,"permissions":"0","managed":false,"mentionable":false,"flags":0}}}"#;
        assert_eq!(
            parse(update),
            Some(RoleEvent::Named {
                guild_id: "81".into(),
                role_id: "9".into(),
                name: "Moderators".into(),
                created: false,
            })
        );
        let create = update.replace("GUILD_ROLE_UPDATE", "GUILD_ROLE_CREATE");
        assert_eq!(
            parse(&create).map(|e| e.kind()),
            Some(EventKind::RoleCreate)
        );
        let delete =
            r#"{"op":0,"s":8,"t":"GUILD_ROLE_DELETE","d":{"guild_id":"81","role_id":"9"}}"#;
        assert_eq!(
            parse(delete),
            Some(RoleEvent::Deleted {
                guild_id: "81".into(),
                role_id: "9".into()
            })
        );
        for other in [
            r#"{"op":0,"s":1,"t":"GUILD_MEMBER_UPDATE","d":{"guild_id":"81","roles":[],"user":{"id":"1"}}}"#,
            r#"{"op":0,"s":1,"t":"GUILD_ROLE_UPDATE","d":{"guild_id":"81"}}"#,
            "GUILD_ROLE_ but not json",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }
}
