//! Minting a token response: access token (RFC 9068), ID token (OIDC Core §3.1.3.3), and an
//! optional refresh token, for a grant that is new or being refreshed.

use super::Context;
use crate::config::ValidClient;
use crate::domain::{Jkt, OpaqueToken};
use crate::error::OAuthError;
use crate::store::{GrantRecord, NewRefreshToken, StoreError, UserRecord};
use crate::tokens::{self, AccessTokenClaims, Confirmation, IdTokenClaims};
use serde::Serialize;
use time::OffsetDateTime;

/// The JSON body of a successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Serialize)]
pub struct TokenResponse {
    /// RFC 9068 JWT.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to a DPoP key (RFC 9449 §5).
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The ID token, when `openid` was granted (never for service tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Present when the client may refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// The `token_type` of an access token bound (or not) to a DPoP key.
pub fn token_type(proof: Option<&Jkt>) -> &'static str {
    if proof.is_some() { "DPoP" } else { "Bearer" }
}

/// What a grant's tokens are minted with, beside the grant itself.
pub struct Minting<'a> {
    /// The grant type, for the audit log (`authorization_code`, `refresh_token`, …).
    pub grant_type: &'static str,
    /// The authorization request's `nonce`, for the ID token.
    pub nonce: Option<&'a str>,
    /// The refresh token, new or rotated.
    pub refresh: Refresh,
    /// The key of the request's DPoP proof: the access token is bound to it (`cnf.jkt`).
    pub proof: Option<&'a Jkt>,
    /// The person's membership snapshot, when the flow has it at hand (else the ID token's
    /// claims read it from the store, if they need it).
    pub membership: Option<&'a super::membership::Membership>,
}

/// How the refresh token of a response came about.
pub enum Refresh {
    /// A new grant: store it with this first refresh token (if any).
    NewGrant(Option<OpaqueToken>),
    /// An existing grant whose token the store has just rotated to this one.
    Rotated(OpaqueToken),
    /// A new grant the store wrote with its code's spend, with this first refresh token (if any).
    Written(Option<OpaqueToken>),
}

/// The idle expiry of a refresh token issued now (never past its grant's absolute end).
pub fn refresh_expiry(
    ctx: &Context<'_>,
    grant_end: OffsetDateTime,
    now: OffsetDateTime,
) -> OffsetDateTime {
    (now + ctx.config.lifetimes.refresh_token_idle).min(grant_end)
}

/// Signs the tokens for `grant` and, for a new grant not stored yet (`Refresh::NewGrant`),
/// stores it first.
pub async fn mint(
    ctx: &Context<'_>,
    client: &ValidClient,
    user: &UserRecord,
    grant: &GrantRecord,
    minting: Minting<'_>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    let Minting {
        grant_type,
        nonce,
        refresh,
        proof,
        membership,
    } = minting;
    let refresh = match refresh {
        Refresh::NewGrant(token) => {
            let stored = token.as_ref().map(|t| NewRefreshToken {
                token_hash: t.hash(),
                expires_at: refresh_expiry(ctx, grant.expires_at, now),
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
        Refresh::Written(token) => token,
    };
    let issuer = ctx.config.issuer.as_str();
    let lifetimes = ctx.config.lifetimes;
    let access_ttl = lifetimes.access_token.as_secs();
    let iat = now.unix_timestamp();
    let access_claims = AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: ctx.subject(client, &user.id),
        aud: client.id.as_str().to_owned(),
        exp: iat + i64::try_from(access_ttl).unwrap_or(i64::MAX / 2),
        iat,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        client_id: client.id.as_str().to_owned(),
        scope: grant.scopes.to_string(),
        auth_time: Some(grant.auth_time.unix_timestamp()),
        sid: grant.session_id.as_ref().map(ToString::to_string),
        gid: Some(grant.id.to_string()),
        cnf: proof.map(Confirmation::of),
        gty: None,
    };
    let access_token =
        tokens::sign_access_token(ctx.keys, ctx.config.access_token_alg, &access_claims)
            .map_err(OAuthError::internal)?;

    let id_token = if grant.scopes.contains("openid") {
        let person = match membership {
            Some(snapshot) => {
                super::membership::claims_with(ctx, user, snapshot, &grant.scopes, Some(client))
            }
            None => super::membership::claims_for(ctx, user, &grant.scopes, Some(client)).await?,
        };
        Some(id_token(
            ctx,
            client,
            grant,
            nonce,
            &access_token,
            person,
            now,
        )?)
    } else {
        None
    };
    ctx.audit(&crate::audit::Event::TokenIssued {
        client_id: client.id.as_str(),
        user_id: user.id.as_str(),
        grant_type,
    });
    Ok(TokenResponse {
        access_token,
        token_type: token_type(proof),
        expires_in: access_ttl,
        scope: grant.scopes.to_string(),
        id_token,
        refresh_token: refresh.map(|t| t.expose().to_owned()),
    })
}

/// The ID token issued beside `access_token` (OIDC Core §3.1.3.6) with the person's claims,
/// signed as the client asks (`id_token_signed_response_alg`).
fn id_token(
    ctx: &Context<'_>,
    client: &ValidClient,
    grant: &GrantRecord,
    nonce: Option<&str>,
    access_token: &str,
    person: serde_json::Map<String, serde_json::Value>,
    now: OffsetDateTime,
) -> Result<String, OAuthError> {
    let iat = now.unix_timestamp();
    let lifetimes = ctx.config.lifetimes;
    let id_claims = IdTokenClaims {
        iss: ctx.config.issuer.as_str().to_owned(),
        sub: ctx.subject(client, &grant.user_id),
        aud: client.id.as_str().to_owned(),
        azp: client.id.as_str().to_owned(),
        iat,
        exp: iat + i64::try_from(lifetimes.id_token.as_secs()).unwrap_or(i64::MAX / 2),
        auth_time: grant.auth_time.unix_timestamp(),
        at_hash: tokens::at_hash(access_token),
        sid: grant.session_id.as_ref().map(ToString::to_string),
        nonce: nonce.map(str::to_owned),
        person,
    };
    tokens::sign_id_token(ctx.keys, client.id_token_alg, &id_claims).map_err(OAuthError::internal)
}
