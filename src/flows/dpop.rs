//! DPoP at our endpoints (RFC 9449): the proof a request carries, checked against that request
//! and used once in the whole deployment (its `jti` goes through the store), and the nonces
//! guildgate hands out when `dpop.require_nonce` is set.

use super::Context;
use crate::audit::Event;
use crate::domain::{Jkt, TokenHash};
use crate::dpop::{self, Expected, Nonces, ProofError};
use crate::error::{DpopAnswer, OAuthError, OAuthErrorCode};
use time::OffsetDateTime;

/// One request's DPoP context: what it carried and where it went.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The `DPoP` header values (RFC 9449 §4.3: more than one is an error).
    pub headers: &'a [&'a str],
    /// The HTTP method.
    pub method: &'a str,
    /// The endpoint's path, as mounted (`/token`, `/userinfo`).
    pub path: &'a str,
    /// The access token presented with it, at a resource.
    pub access_token: Option<&'a str>,
    /// Whether this is a protected resource (401 and a challenge) or the token endpoint (400).
    pub at_resource: bool,
    /// The app the request is about (the authenticated client, or the token's), for the audit.
    pub client_id: Option<&'a str>,
}

/// The key of the request's proof, if it carried one; refused with the RFC's error (and a
/// fresh nonce where one is needed) otherwise.
pub async fn check(
    ctx: &Context<'_>,
    request: ProofRequest<'_>,
    now: OffsetDateTime,
) -> Result<Option<Jkt>, OAuthError> {
    let answer = |nonce: Option<String>| DpopAnswer {
        at_resource: request.at_resource,
        nonce,
    };
    let proof = match request.headers {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            ctx.metrics.dpop_proof("invalid");
            return Err(invalid("send one DPoP proof, not several").with_dpop(answer(None)));
        }
    };
    let nonces = ctx
        .config
        .dpop_require_nonce
        .then(|| Nonces::new(&ctx.config.dpop_nonce_key));
    let url = ctx.config.issuer.endpoint(request.path);
    let expected = Expected {
        method: request.method,
        url: &url,
        access_token: request.access_token,
        now,
        max_age: ctx.config.lifetimes.dpop_proof_max_age,
        nonces: nonces.as_ref(),
    };
    let checked = match dpop::check(proof, &expected) {
        Ok(checked) => checked,
        Err(ProofError::Invalid(why)) => {
            ctx.metrics.dpop_proof("invalid");
            tracing::info!(reason = why, "DPoP proof refused");
            return Err(invalid(why).with_dpop(answer(None)));
        }
        Err(ProofError::NonceNeeded) => {
            ctx.metrics.dpop_proof("nonce");
            let error = OAuthError::new(
                OAuthErrorCode::UseDpopNonce,
                "the DPoP proof must carry the nonce in the DPoP-Nonce header",
            );
            return Err(error.with_dpop(answer(nonces.map(|n| n.current(now)))));
        }
    };
    // One use per proof (RFC 9449 §11.1), in every process: the key and the jti together, so
    // two apps' proofs never collide.
    let key = TokenHash::of(&format!("dpop\u{0}{}\u{0}{}", checked.jkt, checked.jti));
    if !ctx.store.spend_jti(&key, checked.usable_until).await? {
        ctx.metrics.dpop_proof("replayed");
        tracing::warn!(jkt = %checked.jkt, "DPoP proof replayed");
        ctx.audit(&Event::ReplayRefused {
            client_id: request.client_id,
            kind: "dpop_proof",
        });
        return Err(invalid("the DPoP proof was already used").with_dpop(answer(None)));
    }
    ctx.metrics.dpop_proof("ok");
    Ok(Some(checked.jkt))
}

/// The nonce to send with an answer (`DPoP-Nonce`), when nonces are required.
pub fn fresh_nonce(ctx: &Context<'_>, now: OffsetDateTime) -> Option<String> {
    ctx.config
        .dpop_require_nonce
        .then(|| Nonces::new(&ctx.config.dpop_nonce_key).current(now))
}

/// A token request from a client that must bind its tokens (`dpop_bound_access_tokens`) and
/// sent no proof (RFC 9449 §5.2).
pub fn required() -> OAuthError {
    invalid("this client's tokens must be bound to a key: send a DPoP proof").with_dpop(
        DpopAnswer {
            at_resource: false,
            nonce: None,
        },
    )
}

/// A refresh token bound to a DPoP key, presented without a proof.
pub fn required_for_bound_refresh() -> OAuthError {
    invalid("this refresh token is bound to a DPoP key: send a proof signed with it").with_dpop(
        DpopAnswer {
            at_resource: false,
            nonce: None,
        },
    )
}

fn invalid(why: &'static str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidDpopProof, why)
}
