//! The REST routes we use: `/users/@me`, `/users/@me/guilds`, `/users/@me/guilds/{id}/member`,
//! `/users/@me/connections`.
//!
//! Each needs a live bearer token (else 401 `{"message": "401: Unauthorized", "code": 0}`) with the
//! route's scope (else 403 Missing Access, code 50001) and carries rate-limit headers.

use super::faults::{Prelude, count_window, json_error, ok_json, prelude};
use super::state::{RateInfo, State};
use super::{FakeRoute, FakeUser, lock};
use crate::discord::api::{self, codes};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::sync::{Mutex, MutexGuard};

/// A request that passed faults, rate limits, authentication and the scope check.
struct Authorized<'a> {
    state: MutexGuard<'a, State>,
    user_id: String,
    scopes: Vec<String>,
    info: RateInfo,
    malformed: bool,
}

async fn authorize<'a>(
    req: &HttpRequest,
    state: &'a Mutex<State>,
    route: FakeRoute,
    scope: &str,
) -> Result<Authorized<'a>, HttpResponse> {
    let malformed = match prelude(state, route).await {
        Prelude::Respond(answer) => return Err(answer),
        Prelude::Continue { malformed } => malformed,
    };
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .unwrap_or_default();
    let mut s = lock(state);
    // Discord limits per user; unauthenticated requests share one window here.
    let info = count_window(&mut s, route, &token)?;
    let Some(grant) = s.bearer(&token) else {
        return Err(json_error(
            StatusCode::UNAUTHORIZED,
            &info,
            "401: Unauthorized",
            codes::GENERAL,
        ));
    };
    if !grant.scopes.iter().any(|s| s == scope) {
        return Err(json_error(
            StatusCode::FORBIDDEN,
            &info,
            "Missing Access",
            codes::MISSING_ACCESS,
        ));
    }
    let (user_id, scopes) = (grant.user_id.clone(), grant.scopes.clone());
    Ok(Authorized {
        state: s,
        user_id,
        scopes,
        info,
        malformed,
    })
}

/// The user object as Discord serializes it; `email`/`verified` only with the `email` scope.
pub(super) fn user_json(user: &FakeUser, with_email: bool) -> Value {
    let mut value = json!({
        "id": user.id,
        "username": user.username,
        "discriminator": user.discriminator,
        "global_name": user.global_name,
        "avatar": user.avatar,
        "public_flags": 0,
        "flags": 0,
        "banner": null,
        "accent_color": null,
        "locale": user.locale,
        "mfa_enabled": user.mfa_enabled,
        "premium_type": 0,
    });
    if with_email {
        value["email"] = json!(user.email);
        value["verified"] = json!(user.verified);
    }
    value
}

fn unknown_user(info: &RateInfo) -> HttpResponse {
    json_error(StatusCode::NOT_FOUND, info, "Unknown User", 10013)
}

/// `GET /users/@me` (needs `identify`).
pub(super) async fn me(req: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    if let Some(token) = super::bot::bot_token(&req) {
        return super::bot::bot_me(&state, &token);
    }
    let a = match authorize(&req, &state, FakeRoute::Me, "identify").await {
        Ok(a) => a,
        Err(answer) => return answer,
    };
    let Some(user) = a.state.data.user(&a.user_id) else {
        return unknown_user(&a.info);
    };
    let with_email = a.scopes.iter().any(|s| s == "email");
    ok_json(&a.info, &user_json(user, with_email), a.malformed)
}

/// `GET /users/@me/guilds` (needs `guilds`): partial guilds, in guild-id order like Discord.
pub(super) async fn guilds(req: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    let a = match authorize(&req, &state, FakeRoute::Guilds, "guilds").await {
        Ok(a) => a,
        Err(answer) => return answer,
    };
    let Some(user) = a.state.data.user(&a.user_id) else {
        return unknown_user(&a.info);
    };
    let mut guilds: Vec<api::PartialGuild> = user
        .memberships
        .iter()
        .filter_map(|m| a.state.data.guild(&m.guild))
        .map(|g| {
            let owner = g.owner_id.as_deref() == Some(user.id.as_str());
            api::PartialGuild {
                id: g.id.clone(),
                name: g.name.clone(),
                icon: g.icon.clone(),
                banner: None,
                owner,
                // All permissions for the owner, Discord's default member set otherwise.
                permissions: if owner {
                    "2251799813685247"
                } else {
                    "104324673"
                }
                .to_owned(),
                features: g.features.clone(),
                approximate_member_count: None,
                approximate_presence_count: None,
            }
        })
        .collect();
    guilds.sort_by_key(|g| g.id.parse::<u64>().unwrap_or(u64::MAX));
    match serde_json::to_value(&guilds) {
        Ok(body) => ok_json(&a.info, &body, a.malformed),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// `GET /users/@me/connections` (needs `connections`): every linked account, hidden and
/// unverified ones included, as Discord lists them to the person's own token.
pub(super) async fn connections(req: HttpRequest, state: web::Data<Mutex<State>>) -> HttpResponse {
    let a = match authorize(&req, &state, FakeRoute::Connections, "connections").await {
        Ok(a) => a,
        Err(answer) => return answer,
    };
    let Some(user) = a.state.data.user(&a.user_id) else {
        return unknown_user(&a.info);
    };
    let body: Vec<Value> = user
        .connections
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "type": c.kind,
                "revoked": c.revoked,
                "verified": c.verified,
                "friend_sync": false,
                "show_activity": true,
                "two_way_link": false,
                "visibility": c.visibility,
                "integrations": [],
            })
        })
        .collect();
    ok_json(&a.info, &Value::Array(body), a.malformed)
}

/// `GET /users/@me/guilds/{guild_id}/member` (needs `guilds.members.read`). Not a member (or no
/// such guild): 404 `{"message": "Unknown Guild", "code": 10004}`.
pub(super) async fn member(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let a = match authorize(&req, &state, FakeRoute::Member, "guilds.members.read").await {
        Ok(a) => a,
        Err(answer) => return answer,
    };
    let guild_id = path.into_inner();
    let Some(user) = a.state.data.user(&a.user_id) else {
        return unknown_user(&a.info);
    };
    let Some(membership) = user.memberships.iter().find(|m| m.guild == guild_id) else {
        return json_error(
            StatusCode::NOT_FOUND,
            &a.info,
            "Unknown Guild",
            codes::UNKNOWN_GUILD,
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
    ok_json(&a.info, &body, a.malformed)
}
