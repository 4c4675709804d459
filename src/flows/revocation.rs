//! Token revocation (RFC 7009) and introspection (RFC 7662) for the client that holds a token.

use super::Context;
use crate::audit::Event;
use crate::config::ValidClient;
use crate::domain::OpaqueToken;
use crate::error::OAuthError;
use crate::store::AccessCheck;
use crate::tokens::{IntrospectedToken, Introspection};
use time::OffsetDateTime;

/// Revokes a refresh token (its whole grant, so its access tokens too) or an access token
/// (by `jti`). Unknown tokens and other clients' tokens are ignored: RFC 7009 §2.2 answers 200.
pub async fn revoke(
    ctx: &Context<'_>,
    client: &ValidClient,
    token: &str,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    if let Some(grant) = ctx
        .store
        .find_refresh_grant(&OpaqueToken::from_presented(token).hash(), now)
        .await?
    {
        if grant.client_id == client.id.as_str() {
            ctx.store.revoke_grant(&grant.id, now).await?;
            tracing::info!(client_id = %client.id, grant_id = %grant.id, "refresh token revoked");
            ctx.metrics.revocation("refresh_token");
            ctx.audit(&Event::Revocation {
                client_id: client.id.as_str(),
                user_id: Some(&grant.user_id),
                kind: "refresh_token",
            });
        }
        return Ok(());
    }
    if let Ok(claims) = ctx
        .verified
        .verify(ctx.keys, ctx.config.issuer.as_str(), token, now)
    {
        if claims.client_id == client.id.as_str() {
            ctx.store
                .revoke_access_token(
                    &claims.jti,
                    OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(now),
                )
                .await?;
            tracing::info!(client_id = %client.id, jti = %claims.jti, "access token revoked");
            ctx.metrics.revocation("access_token");
            // Only for the audit line (`sub` may be pairwise): the grant names the person.
            let grant = ctx.store.get_grant(&claims.gid).await.ok().flatten();
            ctx.audit(&Event::Revocation {
                client_id: client.id.as_str(),
                user_id: grant.as_ref().map(|g| g.user_id.as_str()),
                kind: "access_token",
            });
        }
    }
    Ok(())
}

/// RFC 7662 §2.2: `{"active": false}` unless the token is live and belongs to the caller.
pub async fn introspect(
    ctx: &Context<'_>,
    client: &ValidClient,
    token: &str,
    now: OffsetDateTime,
) -> Result<Introspection, OAuthError> {
    let issuer = ctx.config.issuer.as_str();
    if let Ok(claims) = ctx.verified.verify(ctx.keys, issuer, token, now) {
        let live = matches!(
            ctx.store
                .check_access(&claims.gid, &claims.jti, now)
                .await?,
            AccessCheck::Active { .. }
        );
        if live && claims.client_id == client.id.as_str() {
            return Ok(Introspection::active(IntrospectedToken {
                token_type: "Bearer",
                scope: claims.scope,
                client_id: claims.client_id,
                sub: claims.sub,
                aud: claims.aud,
                iss: claims.iss,
                exp: claims.exp,
                iat: claims.iat,
                jti: Some(claims.jti),
                sid: claims.sid,
            }));
        }
    } else if let Some(grant) = ctx
        .store
        .find_refresh_grant(&OpaqueToken::from_presented(token).hash(), now)
        .await?
    {
        if grant.client_id == client.id.as_str() {
            return Ok(Introspection::active(IntrospectedToken {
                token_type: "refresh_token",
                sub: ctx.subject(client, &grant.user_id),
                scope: grant.scopes,
                aud: grant.client_id.clone(),
                client_id: grant.client_id,
                iss: issuer.to_owned(),
                exp: grant.expires_at.unix_timestamp(),
                iat: grant.created_at.unix_timestamp(),
                jti: None,
                sid: None,
            }));
        }
    }
    Ok(Introspection::inactive())
}
