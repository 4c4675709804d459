//! The client credentials grant (RFC 6749 §4.4): a service token for a confidential client's own
//! use. No person is behind it, so it is never sent to Discord, carries no ID token and no
//! refresh token, and names the client as its subject with `gty: client_credentials`.

use super::Context;
use super::grant::{TokenResponse, token_type};
use crate::audit::Event;
use crate::config::ValidClient;
use crate::domain::Jkt;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::tokens::{self, AccessTokenClaims, Confirmation, SERVICE_TOKEN_GTY};
use time::OffsetDateTime;

/// Issues a service token for `client`, with the requested scopes (all of its
/// `allowed_scopes` when it names none), bound to `proof`'s key when the request had one.
pub async fn issue(
    ctx: &Context<'_>,
    client: &ValidClient,
    requested_scope: Option<&str>,
    proof: Option<&Jkt>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    if !client.client_credentials || client.is_public() {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "this client may not use the client_credentials grant",
        ));
    }
    let scope = granted_scope(&client.allowed_scopes, requested_scope)?;
    let access_ttl = ctx.config.lifetimes.access_token.as_secs();
    let iat = now.unix_timestamp();
    let claims = AccessTokenClaims {
        iss: ctx.config.issuer.as_str().to_owned(),
        sub: client.id.as_str().to_owned(),
        aud: client.id.as_str().to_owned(),
        exp: iat + i64::try_from(access_ttl).unwrap_or(i64::MAX / 2),
        iat,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        client_id: client.id.as_str().to_owned(),
        scope: scope.clone(),
        auth_time: None,
        sid: None,
        gid: None,
        cnf: proof.map(Confirmation::of),
        gty: Some(SERVICE_TOKEN_GTY.to_owned()),
    };
    let access_token = tokens::sign_access_token(ctx.keys, ctx.config.access_token_alg, &claims)
        .map_err(OAuthError::internal)?;
    ctx.audit(&Event::ServiceTokenIssued {
        client_id: client.id.as_str(),
    });
    Ok(TokenResponse {
        access_token,
        token_type: token_type(proof),
        expires_in: access_ttl,
        scope,
        id_token: None,
        refresh_token: None,
    })
}

/// RFC 6749 §3.3: the requested scopes, each one allowed, in the order allowed; or, when none
/// is requested, every allowed scope.
fn granted_scope(allowed: &[String], requested: Option<&str>) -> Result<String, OAuthError> {
    let requested: Vec<&str> = requested
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(unknown) = requested.iter().find(|s| !allowed.iter().any(|a| a == *s)) {
        tracing::info!(scope = %unknown, "service token scope not allowed for this client");
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidScope,
            "a requested scope is not among this client's allowed_scopes",
        ));
    }
    Ok(allowed
        .iter()
        .filter(|a| requested.is_empty() || requested.contains(&a.as_str()))
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" "))
}

#[cfg(test)]
mod tests {
    use super::granted_scope;

    #[test]
    fn scopes_are_those_allowed_and_asked_for() {
        let allowed = ["deploy".to_owned(), "metrics:read".to_owned()];
        assert_eq!(
            granted_scope(&allowed, None).unwrap(),
            "deploy metrics:read"
        );
        assert_eq!(
            granted_scope(&allowed, Some("")).unwrap(),
            "deploy metrics:read"
        );
        assert_eq!(
            granted_scope(&allowed, Some("metrics:read")).unwrap(),
            "metrics:read"
        );
        assert_eq!(
            granted_scope(&allowed, Some("metrics:read  deploy")).unwrap(),
            "deploy metrics:read"
        );
        for refused in ["openid", "deploy admin", "Deploy"] {
            assert!(granted_scope(&allowed, Some(refused)).is_err(), "{refused}");
        }
        assert_eq!(granted_scope(&[], None).unwrap(), "");
    }
}
