//! SSO sessions: find the browser's live session, open a new one after a Discord login.

use super::Context;
use crate::domain::{DiscordId, OpaqueToken, SessionId};
use crate::store::{SessionDevice, SessionRecord, StoreError};
use time::OffsetDateTime;

/// The live session behind a cookie value, if any; a used session is marked as seen.
pub async fn current(
    ctx: &Context<'_>,
    cookie_value: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<SessionRecord>, StoreError> {
    let Some(value) = cookie_value else {
        return Ok(None);
    };
    let hash = OpaqueToken::from_presented(value).hash();
    let idle = ctx.config.lifetimes.session_idle;
    Ok(ctx
        .store
        .find_session(&hash, now)
        .await?
        .filter(|s| now - s.last_seen_at <= idle))
}

/// A new session for a person who just authenticated at Discord, not stored yet (the sign-in
/// stores it with the person, `Store::save_sign_in`). The secret goes into the cookie; only its
/// hash is stored, and the public `sid` is an unrelated random value.
pub fn new(
    ctx: &Context<'_>,
    user_id: &DiscordId,
    device: SessionDevice,
    now: OffsetDateTime,
) -> (SessionRecord, OpaqueToken) {
    let secret = OpaqueToken::generate();
    let session = SessionRecord {
        id: SessionId::generate(),
        secret_hash: secret.hash(),
        user_id: user_id.clone(),
        auth_time: now,
        created_at: now,
        expires_at: now + ctx.config.lifetimes.session,
        last_seen_at: now,
        device,
    };
    (session, secret)
}
