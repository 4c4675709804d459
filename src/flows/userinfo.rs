//! The UserInfo endpoint's logic (OIDC Core §5.3): a live access token → claims by scope.

use super::Context;
use crate::domain::{GrantId, Scopes};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::tokens;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// Claims for the bearer of `access_token`; `invalid_token` for anything not live.
pub async fn claims_for(
    ctx: &Context<'_>,
    access_token: &str,
    now: OffsetDateTime,
) -> Result<Map<String, Value>, OAuthError> {
    let invalid = |why: &'static str| OAuthError::new(OAuthErrorCode::InvalidToken, why);
    let token = ctx
        .verified
        .verify(ctx.keys, ctx.config.issuer.as_str(), access_token, now)
        .map_err(|e| match e {
            tokens::TokenError::Expired => invalid("the access token has expired"),
            _ => invalid("the access token is not valid"),
        })?;
    // One statement: is the grant live and the token not revoked, who is it, which servers.
    // A `gid` that cannot be a grant id names no grant, like a revoked one.
    let holder = match GrantId::parse(&token.gid) {
        Ok(grant_id) => {
            ctx.store
                .find_token_holder(&grant_id, &token.jti, now)
                .await?
        }
        Err(_) => None,
    }
    .ok_or_else(|| invalid("the access token has been revoked"))?;
    let (snapshot, _) = super::membership::read(holder.membership.as_ref(), &holder.user.id);
    let client = ctx.clients.get(&token.client_id);
    let mut out = super::membership::claims_with(
        ctx,
        &holder.user,
        &snapshot,
        &Scopes::parse_request(&token.scope),
        client.as_deref(),
    );
    // The token's own `sub` (already this client's view, pairwise or not).
    out.insert("sub".into(), json!(token.sub));
    Ok(out)
}
