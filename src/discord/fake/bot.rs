//! The bot's REST routes: `GET /guilds/{guild}/members/{user}`, `GET /guilds/{guild}/roles` and
//! `GET /users/@me`, all with `Authorization: Bot <token>` (docs: reference#authentication,
//! resources/guild#get-guild-member, #get-guild-roles). A wrong token answers 401; a person not
//! in the guild 404 Unknown Member (10007); a guild the bot is not in 404 Unknown Guild (10004).

use super::faults::{Prelude, count_window, json_error, ok_json, prelude};
use super::rest::user_json;
use super::state::State;
use super::{FakeRoute, lock};
use crate::discord::api::codes;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use std::sync::Mutex;

/// The token of `Authorization: Bot <token>`, if the header has that scheme.
pub(super) fn bot_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| *scheme == "Bot")
        .map(|(_, token)| token.trim().to_owned())
}

/// `GET /guilds/{guild_id}/members/{user_id}` with the bot token.
pub(super) async fn guild_member(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let malformed = match prelude(&state, FakeRoute::BotMember).await {
        Prelude::Respond(answer) => return answer,
        Prelude::Continue { malformed } => malformed,
    };
    let (guild_id, user_id) = path.into_inner();
    let mut s = lock(&state);
    let info = match count_window(&mut s, FakeRoute::BotMember, "bot") {
        Ok(info) => info,
        Err(answer) => return answer,
    };
    if bot_token(&req).as_deref() != Some(s.data.bot_token.as_str()) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            &info,
            "401: Unauthorized",
            codes::GENERAL,
        );
    }
    if s.data.guild(&guild_id).is_none() {
        return json_error(
            StatusCode::NOT_FOUND,
            &info,
            "Unknown Guild",
            codes::UNKNOWN_GUILD,
        );
    }
    let Some((user, membership)) = s.data.user(&user_id).and_then(|u| {
        u.memberships
            .iter()
            .find(|m| m.guild == guild_id)
            .map(|m| (u, m))
    }) else {
        return json_error(
            StatusCode::NOT_FOUND,
            &info,
            "Unknown Member",
            codes::UNKNOWN_MEMBER,
        );
    };
    let body = json!({
        "user": user_json(user, false),
        "nick": membership.nick,
        "avatar": membership.avatar,
        "banner": null,
        "roles": membership.roles,
        "joined_at": membership.joined_at,
        "premium_since": null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null,
    });
    ok_json(&info, &body, malformed)
}

/// A role object as Discord serializes it (docs: topics/permissions#role-object).
pub(super) fn role_json(id: &str, name: &str, position: usize) -> serde_json::Value {
    json!({
        "id": id, "name": name, "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false, "icon": null, "unicode_emoji": null, "position": position,
        "permissions": "0", "managed": false, "mentionable": false, "flags": 0,
    })
}

/// `GET /guilds/{guild_id}/roles` with the bot token: @everyone (the guild's own id, position
/// 0), then the guild's roles.
pub(super) async fn guild_roles(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let malformed = match prelude(&state, FakeRoute::BotRoles).await {
        Prelude::Respond(answer) => return answer,
        Prelude::Continue { malformed } => malformed,
    };
    let guild_id = path.into_inner();
    let mut s = lock(&state);
    let info = match count_window(&mut s, FakeRoute::BotRoles, "bot") {
        Ok(info) => info,
        Err(answer) => return answer,
    };
    if bot_token(&req).as_deref() != Some(s.data.bot_token.as_str()) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            &info,
            "401: Unauthorized",
            codes::GENERAL,
        );
    }
    let Some(guild) = s.data.guild(&guild_id) else {
        return json_error(
            StatusCode::NOT_FOUND,
            &info,
            "Unknown Guild",
            codes::UNKNOWN_GUILD,
        );
    };
    let roles: Vec<serde_json::Value> = std::iter::once(role_json(&guild.id, "@everyone", 0))
        .chain(
            guild
                .roles
                .iter()
                .enumerate()
                .map(|(i, r)| role_json(&r.id, &r.name, i + 1)),
        )
        .collect();
    ok_json(&info, &serde_json::Value::Array(roles), malformed)
}

/// `GET /users/@me` with the bot token: the bot user, or 401 for a wrong token.
pub(super) fn bot_me(state: &Mutex<State>, token: &str) -> HttpResponse {
    let mut s = lock(state);
    let info = match count_window(&mut s, FakeRoute::Me, "bot") {
        Ok(info) => info,
        Err(answer) => return answer,
    };
    if token != s.data.bot_token {
        return json_error(
            StatusCode::UNAUTHORIZED,
            &info,
            "401: Unauthorized",
            codes::GENERAL,
        );
    }
    let body = json!({
        "id": super::data::BOT_USER_ID, "username": "guildgate", "discriminator": "0",
        "global_name": null, "avatar": null, "bot": true, "verified": true, "flags": 0,
        "mfa_enabled": false,
    });
    ok_json(&info, &body, false)
}
