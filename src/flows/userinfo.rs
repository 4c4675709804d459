//! The UserInfo endpoint's logic (OIDC Core §5.3): a live access token → claims by scope.

use crate::domain::Scopes;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::state::AppState;
use crate::tokens;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// Claims for the bearer of `access_token`; `invalid_token` for anything not live.
pub async fn claims_for(
    state: &AppState,
    access_token: &str,
    now: OffsetDateTime,
) -> Result<Map<String, Value>, OAuthError> {
    let invalid = |why: &'static str| OAuthError::new(OAuthErrorCode::InvalidToken, why);
    let token =
        tokens::verify_access_token(&state.keys, state.config.issuer.as_str(), access_token, now)
            .map_err(|e| match e {
            tokens::TokenError::Expired => invalid("the access token has expired"),
            _ => invalid("the access token is not valid"),
        })?;
    // One statement: is the grant live and the token not revoked, who is it, which servers.
    let holder = state
        .store
        .find_token_holder(&token.gid, &token.jti, now)
        .await?
        .ok_or_else(|| invalid("the access token has been revoked"))?;
    let (snapshot, _) = super::membership::read(holder.membership.as_ref(), &holder.user.id);
    let client = state.clients.get(&token.client_id);
    let mut out = super::membership::claims_with(
        state,
        &holder.user,
        &snapshot,
        &Scopes::parse_request(&token.scope),
        client.as_deref(),
    );
    // The token's own `sub` (already this client's view, pairwise or not).
    out.insert("sub".into(), json!(token.sub));
    Ok(out)
}
