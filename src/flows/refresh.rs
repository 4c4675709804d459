//! The `refresh_token` grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).

use super::Context;
use super::grant::{self, Minting, Refresh, TokenResponse};
use super::recheck::{self, RecheckError};
use super::{logout, membership};
use crate::audit::Event;
use crate::config::ValidClient;
use crate::domain::{GrantId, Jkt, OpaqueToken, Scopes};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::store::{NewRefreshToken, RefreshHolder, Rotation};
use time::OffsetDateTime;

/// Trades a refresh token for new tokens. Every use rotates; presenting a rotated token
/// revokes the whole grant (committed by the store) before this answers `invalid_grant`.
/// `proof` is the key of the request's DPoP proof: a refresh token bound to a key (a public
/// client's, RFC 9449 §5) needs it, and the new access token is bound to it.
pub async fn refresh(
    ctx: &Context<'_>,
    client: &ValidClient,
    presented: &str,
    requested_scope: Option<&str>,
    proof: Option<&Jkt>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    let invalid = |why: &'static str| OAuthError::new(OAuthErrorCode::InvalidGrant, why);
    let old_hash = OpaqueToken::from_presented(presented).hash();
    // The common case in one trip to the store; anything unusual takes the full path below.
    if requested_scope.is_none() {
        if let Some(done) = in_one_trip(ctx, client, &old_hash, proof, now).await? {
            return Ok(done);
        }
    }
    // Scope is checked before rotating, so a refused request does not spend the token. The
    // grant and its person are one read.
    let Some(RefreshHolder {
        grant: current,
        user,
    }) = ctx.store.find_refresh_holder(&old_hash, now).await?
    else {
        return rotate_or_explain(ctx, client, &old_hash, now).await;
    };
    if current.client_id != client.id {
        return Err(invalid("the refresh token was issued to another client"));
    }
    // Checked before rotating: a stolen bound token without its key spends nothing.
    if let Some(bound) = &current.dpop_jkt {
        match proof {
            None => return Err(super::dpop::required_for_bound_refresh()),
            Some(key) if key != bound => {
                return Err(invalid("the refresh token is bound to another DPoP key"));
            }
            Some(_) => {}
        }
    }
    let granted = current.scopes;
    let scopes = match requested_scope {
        None => granted,
        Some(raw) => {
            let requested = Scopes::parse_request(raw);
            if requested.is_empty() || !requested.is_subset_of(&granted) {
                return Err(OAuthError::new(
                    OAuthErrorCode::InvalidScope,
                    "the requested scope exceeds what was granted",
                ));
            }
            requested
        }
    };

    let user = user.ok_or_else(|| invalid("the person no longer exists"))?;
    // Membership older than discord.membership_ttl is re-checked with Discord (fail closed).
    let mut snapshot = None;
    if membership::matters_for(ctx, client) {
        let membership = recheck::current(ctx, &user, now)
            .await
            .map_err(refresh_error)?;
        if let Err(denial) = membership::check(ctx, Some(client), &user, &membership) {
            return Err(access_lost(ctx, client, &user, &current, denial, now).await);
        }
        snapshot = Some(membership);
    }

    let new_token = OpaqueToken::generate();
    let new = NewRefreshToken {
        token_hash: new_token.hash(),
        expires_at: grant::refresh_expiry(ctx, current.expires_at, now),
    };
    let grant = match ctx
        .store
        .rotate_refresh_token(&old_hash, &client.id, &new, now)
        .await?
    {
        Rotation::Rotated(grant) => grant,
        Rotation::Reused { grant_id } => return Err(reused(ctx, client, &grant_id).await),
        Rotation::Invalid => return Err(invalid("the refresh token is not valid")),
    };
    // The narrowed scope applies to these tokens only; the grant keeps what was consented.
    let mut issued = grant.clone();
    issued.scopes = scopes;
    let minting = Minting {
        grant_type: "refresh_token",
        nonce: None,
        refresh: Refresh::Rotated(new_token),
        proof,
        membership: snapshot.as_ref(),
    };
    grant::mint(ctx, client, &user, &issued, minting, now).await
}

/// A refresh in one trip (`Store::rotate_refresh_token_fresh`): the token is spent and its
/// successor stored only when nothing could refuse the refresh before the rules are applied
/// (a live token of this client's live grant, bound to no key or to this proof's, with a fresh
/// snapshot where the app's answer depends on it). `None`: nothing was spent.
async fn in_one_trip(
    ctx: &Context<'_>,
    client: &ValidClient,
    old_hash: &crate::domain::TokenHash,
    proof: Option<&Jkt>,
    now: OffsetDateTime,
) -> Result<Option<TokenResponse>, OAuthError> {
    let matters = membership::matters_for(ctx, client);
    let fresh_since = matters.then(|| now - ctx.config.lifetimes.membership);
    let new_token = OpaqueToken::generate();
    let new = NewRefreshToken {
        token_hash: new_token.hash(),
        // Capped at the grant's end by the store.
        expires_at: now + ctx.config.lifetimes.refresh_token_idle,
    };
    let Some(done) = ctx
        .store
        .rotate_refresh_token_fresh(old_hash, &client.id, &new, proof, fresh_since, now)
        .await?
    else {
        return Ok(None);
    };
    let (mut snapshot, fetched_at) = membership::read(done.membership.as_ref(), &done.user.id);
    if matters {
        // A snapshot the store holds but cannot read back counts as never taken: ask Discord.
        if fetched_at.is_none() {
            snapshot = recheck::current(ctx, &done.user, now)
                .await
                .map_err(refresh_error)?;
        }
        if let Err(denial) = membership::check(ctx, Some(client), &done.user, &snapshot) {
            return Err(access_lost(ctx, client, &done.user, &done.grant, denial, now).await);
        }
    }
    let minting = Minting {
        grant_type: "refresh_token",
        nonce: None,
        refresh: Refresh::Rotated(new_token),
        proof,
        membership: Some(&snapshot),
    };
    grant::mint(ctx, client, &done.user, &done.grant, minting, now)
        .await
        .map(Some)
}

/// The person no longer meets the app's rules at a refresh: the grant ends (and the session it
/// was issued under), and the app is told `invalid_grant`.
async fn access_lost(
    ctx: &Context<'_>,
    client: &ValidClient,
    user: &crate::store::UserRecord,
    grant: &crate::store::GrantRecord,
    denial: crate::policy::Denial,
    now: OffsetDateTime,
) -> OAuthError {
    tracing::info!(user = %user.id, client_id = %client.id, reason = denial.as_str(), "access lost at refresh; ending the grant");
    let ended = async {
        ctx.store.revoke_grant(&grant.id, now).await?;
        if let Some(sid) = &grant.session_id {
            logout::end_session(ctx, sid, now).await?;
        }
        Ok::<(), OAuthError>(())
    };
    if let Err(e) = ended.await {
        return e;
    }
    OAuthError::new(
        OAuthErrorCode::InvalidGrant,
        "the person no longer meets this app's access rules",
    )
}

/// The token is not live: let the store classify it (a rotated token is reuse and revokes).
async fn rotate_or_explain(
    ctx: &Context<'_>,
    client: &ValidClient,
    old_hash: &crate::domain::TokenHash,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    // A throwaway replacement: rotation of a dead token never stores it.
    let probe = NewRefreshToken {
        token_hash: OpaqueToken::generate().hash(),
        expires_at: now,
    };
    match ctx
        .store
        .rotate_refresh_token(old_hash, &client.id, &probe, now)
        .await?
    {
        Rotation::Reused { grant_id } => Err(reused(ctx, client, &grant_id).await),
        _ => Err(OAuthError::new(
            OAuthErrorCode::InvalidGrant,
            "the refresh token is not valid",
        )),
    }
}

/// A rotated token came back (RFC 9700 §4.14.2): the store has already revoked its grant.
/// Counted, written to the audit log with the grant's person, and answered `invalid_grant`.
async fn reused(ctx: &Context<'_>, client: &ValidClient, grant_id: &GrantId) -> OAuthError {
    ctx.metrics.refresh_reuse();
    // Only for the audit line: a store failure here must not change the answer.
    let grant = ctx.store.get_grant(grant_id).await.ok().flatten();
    tracing::warn!(client_id = %client.id, %grant_id, "refresh token reused; grant revoked");
    ctx.audit(&Event::RefreshReuse {
        client_id: client.id.as_str(),
        user_id: grant.as_ref().map(|g| g.user_id.as_str()),
    });
    OAuthError::new(
        OAuthErrorCode::InvalidGrant,
        "the refresh token was already used",
    )
}

/// What the app is told when membership could not be re-checked.
fn refresh_error(e: RecheckError) -> OAuthError {
    match e {
        RecheckError::NoKeptTokens | RecheckError::AuthorizationGone => OAuthError::new(
            OAuthErrorCode::InvalidGrant,
            "Discord access for this person has ended; sign in again",
        ),
        RecheckError::Unavailable(why) => {
            tracing::warn!(reason = %why, "cannot re-check Discord membership; refusing the refresh");
            OAuthError::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "Discord could not be asked to confirm access; try again shortly",
            )
        }
        RecheckError::Internal(e) => e,
    }
}
