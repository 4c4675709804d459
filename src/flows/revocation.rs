//! Token revocation (RFC 7009) and introspection (RFC 7662) for the client that holds a token.

use super::Context;
use crate::audit::Event;
use crate::config::ValidClient;
use crate::domain::{GrantId, OpaqueToken};
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
        if grant.client_id == client.id {
            ctx.store.revoke_grant(&grant.id, now).await?;
            tracing::info!(client_id = %client.id, grant_id = %grant.id, "refresh token revoked");
            ctx.metrics.revocation("refresh_token");
            ctx.audit(&Event::Revocation {
                client_id: client.id.as_str(),
                user_id: Some(grant.user_id.as_str()),
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
            let grant = match claims.gid.as_deref().map(GrantId::parse) {
                Some(Ok(id)) => ctx.store.get_grant(&id).await.ok().flatten(),
                _ => None,
            };
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
        let live = if claims.is_service_token() {
            // A service token lives while its client may still take them and it is not revoked.
            ctx.clients
                .get(&claims.client_id)
                .is_some_and(|c| c.client_credentials)
                && !ctx.store.is_access_token_revoked(&claims.jti).await?
        } else {
            // A `gid` that cannot be a grant id names no grant: the token is not live.
            match claims.gid.as_deref().map(GrantId::parse) {
                Some(Ok(grant_id)) => matches!(
                    ctx.store.check_access(&grant_id, &claims.jti, now).await?,
                    AccessCheck::Active { .. }
                ),
                _ => false,
            }
        };
        if live && claims.client_id == client.id.as_str() {
            return Ok(Introspection::active(IntrospectedToken {
                token_type: if claims.cnf.is_some() {
                    "DPoP"
                } else {
                    "Bearer"
                },
                cnf: claims.cnf,
                gty: claims.gty,
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
        if grant.client_id == client.id {
            return Ok(Introspection::active(IntrospectedToken {
                token_type: "refresh_token",
                sub: ctx.subject(client, &grant.user_id),
                scope: grant.scopes.to_string(),
                aud: grant.client_id.to_string(),
                client_id: grant.client_id.to_string(),
                iss: issuer.to_owned(),
                exp: grant.expires_at.unix_timestamp(),
                iat: grant.created_at.unix_timestamp(),
                jti: None,
                sid: None,
                cnf: None,
                gty: None,
            }));
        }
    }
    Ok(Introspection::inactive())
}
