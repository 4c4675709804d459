//! Minting a token response: access token (RFC 9068), ID token (OIDC Core §3.1.3.3), and an
//! optional refresh token, for a grant that is new or being refreshed.

use super::Context;
use crate::config::ValidClient;
use crate::domain::{OpaqueToken, Scopes};
use crate::error::OAuthError;
use crate::store::{GrantRecord, NewRefreshToken, StoreError, UserRecord};
use crate::tokens::{self, AccessTokenClaims, IdTokenClaims};
use serde::Serialize;
use time::OffsetDateTime;

/// The JSON body of a successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Serialize)]
pub struct TokenResponse {
    /// RFC 9068 JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
    /// Granted scopes.
    pub scope: Scopes,
    /// The ID token.
    pub id_token: String,
    /// Present when the client may refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// How the refresh token of a response came about.
pub enum Refresh {
    /// A new grant: store it with this first refresh token (if any).
    NewGrant(Option<OpaqueToken>),
    /// An existing grant whose token the store has just rotated to this one.
    Rotated(OpaqueToken),
}

/// The idle expiry of a refresh token issued now (never past its grant's absolute end).
pub fn refresh_expiry(
    ctx: &Context<'_>,
    grant: &GrantRecord,
    now: OffsetDateTime,
) -> OffsetDateTime {
    (now + ctx.config.lifetimes.refresh_token_idle).min(grant.expires_at)
}

/// Signs the tokens for `grant` and, for a new grant, stores it first.
pub async fn mint(
    ctx: &Context<'_>,
    client: &ValidClient,
    user: &UserRecord,
    grant: &GrantRecord,
    nonce: Option<&str>,
    refresh: Refresh,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    let grant_type = match refresh {
        Refresh::NewGrant(_) => "authorization_code",
        Refresh::Rotated(_) => "refresh_token",
    };
    let refresh = match refresh {
        Refresh::NewGrant(token) => {
            let stored = token.as_ref().map(|t| NewRefreshToken {
                token_hash: t.hash(),
                expires_at: refresh_expiry(ctx, grant, now),
            });
            // A replay that raced this redemption has already written the grant as revoked
            // (RFC 6749 §4.1.2: a reused code revokes what it issued). This request was the
            // first use, so it is answered, but its tokens are already dead and no refresh
            // token was stored.
            match ctx.store.insert_grant(grant, stored.as_ref()).await {
                Ok(()) => token,
                Err(StoreError::Conflict(_)) => {
                    tracing::warn!(grant_id = %grant.id, "code replayed during its redemption; the grant is revoked");
                    None
                }
                Err(e) => return Err(e.into()),
            }
        }
        Refresh::Rotated(token) => Some(token),
    };
    let issuer = ctx.config.issuer.as_str();
    let lifetimes = ctx.config.lifetimes;
    let access_ttl = lifetimes.access_token.as_secs();
    let iat = now.unix_timestamp();
    let sub = ctx.subject(client, &user.id);
    let access_claims = AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: sub.clone(),
        aud: client.id.as_str().to_owned(),
        exp: iat + i64::try_from(access_ttl).unwrap_or(i64::MAX / 2),
        iat,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        client_id: client.id.as_str().to_owned(),
        scope: grant.scopes.to_string(),
        auth_time: grant.auth_time.unix_timestamp(),
        sid: grant.session_id.as_ref().map(ToString::to_string),
        gid: grant.id.to_string(),
    };
    let access_token =
        tokens::sign_access_token(ctx.keys, ctx.config.access_token_alg, &access_claims)
            .map_err(OAuthError::internal)?;

    let id_claims = IdTokenClaims {
        iss: issuer.to_owned(),
        sub,
        aud: client.id.as_str().to_owned(),
        azp: client.id.as_str().to_owned(),
        iat,
        exp: iat + i64::try_from(lifetimes.id_token.as_secs()).unwrap_or(i64::MAX / 2),
        auth_time: grant.auth_time.unix_timestamp(),
        at_hash: tokens::at_hash(&access_token),
        sid: grant.session_id.as_ref().map(ToString::to_string),
        nonce: nonce.map(str::to_owned),
        person: super::membership::claims_for(ctx, user, &grant.scopes, Some(client)).await?,
    };
    let id_token = tokens::sign_id_token(ctx.keys, &id_claims).map_err(OAuthError::internal)?;

    ctx.audit(&crate::audit::Event::TokenIssued {
        client_id: client.id.as_str(),
        user_id: user.id.as_str(),
        grant_type,
    });
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: access_ttl,
        scope: grant.scopes,
        id_token,
        refresh_token: refresh.map(|t| t.expose().to_owned()),
    })
}
