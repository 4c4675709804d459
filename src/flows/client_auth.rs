//! Client authentication's one-time part: a `private_key_jwt` assertion (RFC 7523 §3) is used
//! once in the whole deployment, its `jti` spent through the store.

use super::Context;
use crate::audit::Event;
use crate::clients::AssertionUse;
use crate::config::ValidClient;
use crate::domain::TokenHash;
use crate::error::{OAuthError, OAuthErrorCode};

/// Spends the assertion's `jti` for `client`; a second use anywhere is `invalid_client`.
pub async fn spend_assertion(
    ctx: &Context<'_>,
    client: &ValidClient,
    used: &AssertionUse,
) -> Result<(), OAuthError> {
    let key = TokenHash::of(&format!("assertion\u{0}{}\u{0}{}", client.id, used.jti));
    if ctx.store.spend_jti(&key, used.expires_at).await? {
        return Ok(());
    }
    tracing::warn!(client_id = %client.id, "client assertion replayed");
    ctx.audit(&Event::ReplayRefused {
        client_id: Some(client.id.as_str()),
        kind: "client_assertion",
    });
    Err(OAuthError::new(
        OAuthErrorCode::InvalidClient,
        "the client assertion was already used",
    ))
}
