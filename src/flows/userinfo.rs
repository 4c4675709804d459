//! The UserInfo endpoint's logic (OIDC Core §5.3): a live access token → claims by scope. A
//! token bound to a DPoP key (RFC 9449 §7) is honoured only with the DPoP scheme and a proof
//! signed by that key.

use super::Context;
use super::dpop::{self, ProofRequest};
use crate::domain::{GrantId, Scopes};
use crate::error::{DpopAnswer, OAuthError, OAuthErrorCode};
use crate::tokens::{self, AccessTokenClaims};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// How the access token was presented.
#[derive(Debug, Clone, Copy)]
pub enum Presented<'a> {
    /// `Authorization: Bearer` or the form body (RFC 6750).
    Bearer,
    /// `Authorization: DPoP` with the request's `DPoP` proof headers (RFC 9449 §7.1).
    Dpop {
        /// The `DPoP` header values.
        proofs: &'a [&'a str],
        /// The request's HTTP method.
        method: &'a str,
    },
}

/// Claims for the bearer of `access_token`; `invalid_token` for anything not live.
pub async fn claims_for(
    ctx: &Context<'_>,
    access_token: &str,
    presented: Presented<'_>,
    now: OffsetDateTime,
) -> Result<Map<String, Value>, OAuthError> {
    let dpop_scheme = matches!(presented, Presented::Dpop { .. });
    let invalid = |why: &'static str| {
        let error = OAuthError::new(OAuthErrorCode::InvalidToken, why);
        if dpop_scheme {
            error.with_dpop(DpopAnswer {
                at_resource: true,
                nonce: None,
            })
        } else {
            error
        }
    };
    let token = ctx
        .verified
        .verify(ctx.keys, ctx.config.issuer.as_str(), access_token, now)
        .map_err(|e| match e {
            tokens::TokenError::Expired => invalid("the access token has expired"),
            _ => invalid("the access token is not valid"),
        })?;
    check_binding(ctx, &token, access_token, presented, now).await?;
    // A service token (client credentials) has no person to describe.
    if token.is_service_token() {
        return Err(invalid(
            "a service token has no person: /userinfo needs a person's token",
        ));
    }
    // One statement: is the grant live and the token not revoked, who is it, which servers.
    // A `gid` that cannot be a grant id names no grant, like a revoked one.
    let holder = match token.gid.as_deref().map(GrantId::parse) {
        Some(Ok(grant_id)) => {
            ctx.store
                .find_token_holder(&grant_id, &token.jti, now)
                .await?
        }
        _ => None,
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

/// RFC 9449 §7.1 and §7.2: a bound token needs the DPoP scheme and a proof by its key; an
/// unbound one is not presented with the DPoP scheme.
async fn check_binding(
    ctx: &Context<'_>,
    token: &AccessTokenClaims,
    access_token: &str,
    presented: Presented<'_>,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    let challenge = DpopAnswer {
        at_resource: true,
        nonce: None,
    };
    let refuse = |why: &'static str| {
        OAuthError::new(OAuthErrorCode::InvalidToken, why).with_dpop(challenge.clone())
    };
    match (presented, &token.cnf) {
        (Presented::Bearer, None) => Ok(()),
        (Presented::Bearer, Some(_)) => Err(refuse(
            "the access token is bound to a DPoP key: present it with the DPoP scheme and a proof",
        )),
        (Presented::Dpop { .. }, None) => {
            Err(refuse("the access token is not bound to a DPoP key"))
        }
        (Presented::Dpop { proofs, method }, Some(cnf)) => {
            let request = ProofRequest {
                headers: proofs,
                method,
                path: "/userinfo",
                access_token: Some(access_token),
                at_resource: true,
                client_id: Some(token.client_id.as_str()),
            };
            match dpop::check(ctx, request, now).await? {
                None => Err(OAuthError::new(
                    OAuthErrorCode::InvalidDpopProof,
                    "a DPoP proof is required with the DPoP scheme",
                )
                .with_dpop(challenge)),
                Some(key) if key == cnf.jkt => Ok(()),
                Some(_) => Err(OAuthError::new(
                    OAuthErrorCode::InvalidDpopProof,
                    "the DPoP proof is signed by another key than the token is bound to",
                )
                .with_dpop(challenge)),
            }
        }
    }
}
