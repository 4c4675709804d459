//! Claims about a person, by granted scope: the same in ID tokens and at `/userinfo`.

mod community;
mod mapped;

pub use community::{ServerProfile, apply_server_profile, groups};
pub use mapped::mapped;

use crate::domain::Scopes;
use crate::policy::Facts;
use crate::store::UserRecord;
use serde_json::{Map, Value, json};

/// The avatar URL for a stored person (the discriminator is not stored: nearly every account
/// is on the new username system, whose default avatar follows from the id).
pub fn picture_url(user_id: &str, avatar: Option<&str>) -> String {
    crate::domain::avatar_url(user_id, avatar, None)
}

/// The `sub` a client sees: the Discord id, or for a pairwise client (OIDC Core §8.1, sector =
/// client id) HMAC-SHA256(key, client id ‖ Discord id), so two apps cannot correlate a person.
pub fn subject(
    pairwise_key: Option<&[u8; 32]>,
    client_id: &str,
    pairwise: bool,
    user_id: &str,
) -> String {
    match (pairwise, pairwise_key) {
        (true, Some(key)) => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
            let tag = aws_lc_rs::hmac::sign(&key, format!("{client_id}\u{0}{user_id}").as_bytes());
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                tag.as_ref(),
            )
        }
        _ => user_id.to_owned(),
    }
}

/// The claims a scope set releases about `user` (everything but the protocol claims).
pub fn user_claims(user: &UserRecord, scopes: &Scopes) -> Map<String, Value> {
    let mut claims = Map::new();
    if scopes.contains("profile") {
        claims.insert("preferred_username".into(), json!(user.username));
        claims.insert(
            "name".into(),
            json!(user.global_name.as_deref().unwrap_or(&user.username)),
        );
        claims.insert(
            "picture".into(),
            json!(picture_url(user.id.as_str(), user.avatar.as_deref())),
        );
        if let Some(locale) = &user.locale {
            claims.insert("locale".into(), json!(locale));
        }
        claims.insert("updated_at".into(), json!(user.updated_at.unix_timestamp()));
    }
    if scopes.contains("email") {
        if let Some(email) = &user.email {
            claims.insert("email".into(), json!(email));
            claims.insert("email_verified".into(), json!(user.email_verified));
        }
    }
    claims
}

/// The `connections` claim: the verified, visible linked accounts as `{type, id, name}`
/// (unverified and hidden ones never reach the snapshot).
pub fn connections(facts: &Facts<'_>) -> Value {
    json!(facts.connections)
}

/// The claim names the community settings add where some client uses them (for discovery's
/// `claims_supported`): `nickname` with a profile guild, and every mapped claim's name.
pub fn community_claim_names(config: &crate::config::ValidConfig) -> Vec<&str> {
    let mut names: Vec<&str> = config
        .clients
        .iter()
        .any(|c| c.profile_guild.is_some())
        .then_some("nickname")
        .into_iter()
        .chain(
            config
                .clients
                .iter()
                .flat_map(|c| c.claims.iter())
                .map(|c| c.name.as_str()),
        )
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn user() -> UserRecord {
        UserRecord {
            id: crate::domain::DiscordId::parse("80351110224678912").unwrap(),
            username: "nelly".into(),
            global_name: None,
            avatar: Some("a_8342729096ea3675442027381ff50dfe".into()),
            email: Some("nelly@discord.com".into()),
            email_verified: true,
            locale: Some("en-US".into()),
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn profile_claims_follow_discords_fields() {
        let claims = user_claims(&user(), &Scopes::parse_request("openid profile"));
        assert_eq!(claims["preferred_username"], "nelly");
        assert_eq!(claims["name"], "nelly", "name falls back to the username");
        assert_eq!(
            claims["picture"],
            "https://cdn.discordapp.com/avatars/80351110224678912/a_8342729096ea3675442027381ff50dfe.gif"
        );
        assert!(claims.get("email").is_none(), "email needs the email scope");
    }

    #[test]
    fn email_claims_need_the_email_scope() {
        let claims = user_claims(&user(), &Scopes::parse_request("openid email"));
        assert_eq!(claims["email"], "nelly@discord.com");
        assert_eq!(claims["email_verified"], true);
        assert!(claims.get("name").is_none());
    }

    #[test]
    fn default_avatar_uses_the_snowflake() {
        // (80351110224678912 >> 22) % 6 == 5
        assert_eq!(
            picture_url("80351110224678912", None),
            "https://cdn.discordapp.com/embed/avatars/5.png"
        );
    }
}
