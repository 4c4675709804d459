//! Authorization codes: issue one for a session, and redeem it at the token endpoint (the
//! single-use gate, RFC 6749 §4.1.2 and §4.1.3, PKCE per RFC 7636 §4.6).

use super::Context;
use super::authorize::AuthorizationRequest;
use super::grant::{self, Minting, Refresh, TokenResponse};
use crate::config::ValidClient;
use crate::domain::{GrantId, Jkt, OpaqueToken, PkceChallenge, PkceVerifier, TokenHash};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::store::{
    AuthCodeRecord, CodeExchange, CodeRedemption, GrantRecord, NewRefreshToken, NewSignIn,
    SessionRecord, SpentCode, StoreError,
};
use time::OffsetDateTime;

/// Issues a code for `request` under `session` and records the client in the session. A code
/// issued is a sign-in into the app that succeeded (`guildgate_signins_total{outcome="ok"}`).
pub async fn issue(
    ctx: &Context<'_>,
    request: &AuthorizationRequest,
    session: &SessionRecord,
    now: OffsetDateTime,
) -> Result<OpaqueToken, StoreError> {
    // Storing the code also records the client in the session (for back-channel logout).
    let (code, record) = new_code(ctx, request, session, now);
    ctx.store.insert_auth_code(&record).await?;
    ctx.metrics.sign_in(crate::metrics::SignIn::Ok);
    Ok(code)
}

/// [`issue`] for the app a Discord sign-in was for: the code is written with the sign-in
/// itself (the person, their session), in one trip.
pub async fn issue_at_sign_in(
    ctx: &Context<'_>,
    request: &AuthorizationRequest,
    sign_in: &NewSignIn<'_>,
    now: OffsetDateTime,
) -> Result<OpaqueToken, StoreError> {
    let (code, record) = new_code(ctx, request, sign_in.session, now);
    ctx.store.save_sign_in(sign_in, Some(&record)).await?;
    ctx.metrics.sign_in(crate::metrics::SignIn::Ok);
    Ok(code)
}

/// A fresh code for `request` under `session`, and the record to store.
fn new_code(
    ctx: &Context<'_>,
    request: &AuthorizationRequest,
    session: &SessionRecord,
    now: OffsetDateTime,
) -> (OpaqueToken, AuthCodeRecord) {
    let code = OpaqueToken::generate();
    let record = AuthCodeRecord {
        code_hash: code.hash(),
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        user_id: session.user_id.clone(),
        session_id: session.id.clone(),
        grant_id: GrantId::generate(),
        scopes: request.scope,
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        dpop_jkt: request.dpop_jkt.clone(),
        auth_time: session.auth_time,
        created_at: now,
        expires_at: now + ctx.config.lifetimes.code,
    };
    (code, record)
}

/// The `authorization_code` grant's parameters.
pub struct CodeGrant<'a> {
    /// `code`.
    pub code: &'a str,
    /// `redirect_uri`.
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier`.
    pub code_verifier: Option<&'a str>,
}

/// Redeems a code for tokens. A replayed code has already revoked the first redemption's grant
/// inside the store before this answers `invalid_grant`. `proof` is the key of the request's
/// DPoP proof: the access token is bound to it, and so are a public client's refresh tokens.
pub async fn redeem(
    ctx: &Context<'_>,
    client: &ValidClient,
    grant: CodeGrant<'_>,
    proof: Option<&Jkt>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    let hash = OpaqueToken::from_presented(grant.code).hash();
    if let Some(answer) = redeem_in_one_trip(ctx, client, &grant, &hash, proof, now).await? {
        return Ok(answer);
    }
    // The full path: spend the code whatever the request, then say what does not fit.
    let invalid = |why: &'static str| OAuthError::new(OAuthErrorCode::InvalidGrant, why);
    let (record, user) = match ctx.store.consume_auth_code(&hash, now).await? {
        CodeRedemption::Redeemed(spent) => {
            let SpentCode { code, person } = *spent;
            (code, person)
        }
        CodeRedemption::Replayed { grant_id } => {
            tracing::warn!(client_id = %client.id, %grant_id, "authorization code replayed; its tokens were revoked");
            return Err(invalid("the authorization code was already used"));
        }
        CodeRedemption::Unknown => return Err(invalid("the authorization code is not valid")),
    };
    check(client, &record, &grant, proof, now)?;
    let (grant_record, issue_refresh) = grant_of(ctx, client, &record, proof, now);
    let refresh = Refresh::NewGrant(issue_refresh.then(OpaqueToken::generate));
    let minting = minting(&record, refresh, proof);
    grant::mint(ctx, client, &user, &grant_record, minting, now).await
}

/// The common redemption in one trip (`Store::redeem_auth_code`): the code spent and its grant
/// written together when the statement's copy of [`check`] holds. `None` when the request
/// cannot take this path, or the code does not fit it; nothing was spent, and the full path
/// answers. Grants that outlive the session (`offline_access`) always take the full path.
async fn redeem_in_one_trip(
    ctx: &Context<'_>,
    client: &ValidClient,
    grant: &CodeGrant<'_>,
    hash: &TokenHash,
    proof: Option<&Jkt>,
    now: OffsetDateTime,
) -> Result<Option<TokenResponse>, OAuthError> {
    let Some(redirect_uri) = grant.redirect_uri else {
        return Ok(None);
    };
    // The challenge the presented verifier satisfies; a malformed verifier, or none from a
    // public client, is for the full path to refuse.
    let challenge = match grant.code_verifier.map(PkceVerifier::parse) {
        Some(Ok(verifier)) => Some(PkceChallenge::of(&verifier)),
        Some(Err(_)) => return Ok(None),
        None if client.is_public() => return Ok(None),
        None => None,
    };
    let end = grant_end(ctx, now);
    // Not offline (those take the full path), so the client's setting alone decides.
    let refresh = client.refresh_tokens.then(OpaqueToken::generate);
    let first = refresh.as_ref().map(|token| NewRefreshToken {
        token_hash: token.hash(),
        expires_at: grant::refresh_expiry(ctx, end, now),
    });
    let grant_key = grant_key(client, proof);
    let exchange = CodeExchange {
        client_id: &client.id,
        redirect_uri,
        code_challenge: challenge.as_ref(),
        proof,
        offline_possible: client.offline_access,
        grant_expires_at: end,
        grant_dpop_jkt: grant_key.as_ref(),
        refresh: first.as_ref(),
    };
    let Some(SpentCode { code, person }) = ctx.store.redeem_auth_code(hash, &exchange, now).await?
    else {
        return Ok(None);
    };
    // The flow's checks stay the authority: should the statement's copy ever let through what
    // they refuse, the grant it wrote is revoked before anything is answered.
    if let Err(refused) = check(client, &code, grant, proof, now) {
        tracing::error!(client_id = %client.id, "a code redeemed in one trip failed the flow's checks; its grant is revoked");
        ctx.store.revoke_grant(&code.grant_id, now).await?;
        return Err(refused);
    }
    let (grant_record, _) = grant_of(ctx, client, &code, proof, now);
    let minting = minting(&code, Refresh::Written(refresh), proof);
    grant::mint(ctx, client, &person, &grant_record, minting, now)
        .await
        .map(Some)
}

/// Whether the spent code `record` may be redeemed by `client` with `grant` and `proof`.
fn check(
    client: &ValidClient,
    record: &AuthCodeRecord,
    grant: &CodeGrant<'_>,
    proof: Option<&Jkt>,
    now: OffsetDateTime,
) -> Result<(), OAuthError> {
    let invalid = |why: &'static str| OAuthError::new(OAuthErrorCode::InvalidGrant, why);
    if record.client_id != client.id {
        return Err(invalid(
            "the authorization code was issued to another client",
        ));
    }
    if record.expires_at <= now {
        return Err(invalid("the authorization code has expired"));
    }
    // RFC 6749 §4.1.3: required when the authorization request had one (ours always do);
    // missing is a malformed request, different is a grant that does not fit.
    match grant.redirect_uri {
        None => {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidRequest,
                "redirect_uri is required: the authorization request had one",
            ));
        }
        Some(uri) if uri != record.redirect_uri => {
            return Err(invalid(
                "redirect_uri does not match the authorization request",
            ));
        }
        Some(_) => {}
    }
    check_pkce(client, record.code_challenge.as_ref(), grant.code_verifier)?;
    // RFC 9449 §10: a code whose request named a DPoP key is redeemed with that key only.
    if let Some(bound) = &record.dpop_jkt {
        if proof != Some(bound) {
            return Err(invalid(
                "the authorization request named another DPoP key (dpop_jkt)",
            ));
        }
    }
    Ok(())
}

/// The grant a redeemed code becomes, and whether it gets a refresh token.
fn grant_of(
    ctx: &Context<'_>,
    client: &ValidClient,
    record: &AuthCodeRecord,
    proof: Option<&Jkt>,
    now: OffsetDateTime,
) -> (GrantRecord, bool) {
    // offline_access (OIDC Core §11) asks for access that outlives the sign-in session; the
    // authorization step only lets it through with consent, for a client allowed it.
    let offline = client.offline_access && record.scopes.contains("offline_access");
    let grant = GrantRecord {
        id: record.grant_id.clone(),
        client_id: record.client_id.clone(),
        user_id: record.user_id.clone(),
        session_id: (!offline).then(|| record.session_id.clone()),
        scopes: record.scopes,
        auth_time: record.auth_time,
        created_at: now,
        expires_at: grant_end(ctx, now),
        revoked_at: None,
        dpop_jkt: grant_key(client, proof),
    };
    (grant, client.refresh_tokens || offline)
}

/// The absolute end of a grant a code is redeemed for now.
fn grant_end(ctx: &Context<'_>, now: OffsetDateTime) -> OffsetDateTime {
    now + ctx.config.lifetimes.refresh_token
}

/// RFC 9449 §5: a public client's refresh tokens are bound to the proof's key.
fn grant_key(client: &ValidClient, proof: Option<&Jkt>) -> Option<Jkt> {
    proof.filter(|_| client.is_public()).cloned()
}

/// What the tokens of the code `record` are minted with.
fn minting<'a>(
    record: &'a AuthCodeRecord,
    refresh: Refresh,
    proof: Option<&'a Jkt>,
) -> Minting<'a> {
    Minting {
        grant_type: "authorization_code",
        nonce: record.nonce.as_deref(),
        refresh,
        proof,
        membership: None,
    }
}

/// RFC 7636 §4.6, plus: a verifier without a challenge is refused (RFC 9700 §2.1.1 downgrade).
fn check_pkce(
    client: &ValidClient,
    challenge: Option<&PkceChallenge>,
    verifier: Option<&str>,
) -> Result<(), OAuthError> {
    let invalid = |why: &'static str| OAuthError::new(OAuthErrorCode::InvalidGrant, why);
    match (challenge, verifier) {
        (None, None) if client.is_public() => Err(invalid("PKCE is required for public clients")),
        (None, None) => Ok(()),
        (None, Some(_)) => Err(invalid(
            "code_verifier sent but the authorization request had no code_challenge",
        )),
        (Some(_), None) => Err(invalid("code_verifier is required")),
        (Some(challenge), Some(verifier)) => {
            // RFC 7636 §4.6: a verifier of the wrong length or alphabet cannot match the
            // challenge, so the grant fails like any other mismatch.
            let verifier = PkceVerifier::parse(verifier).map_err(|_| {
                invalid("code_verifier is malformed (43-128 characters of [A-Za-z0-9-._~])")
            })?;
            if challenge.is_satisfied_by(&verifier) {
                Ok(())
            } else {
                Err(invalid("code_verifier does not match the code_challenge"))
            }
        }
    }
}
