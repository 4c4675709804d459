//! The device authorization grant (RFC 8628), the device's side: `POST /device_authorization`
//! hands out a device code and a user code, and the device polls `/token` with the device code
//! until the person has answered on `/device` (see [`super::device_page`]).

use super::Context;
use super::grant::{self, Minting, Refresh, TokenResponse};
use crate::config::ValidClient;
use crate::domain::{GrantId, Jkt, OpaqueToken, Scopes, UserCode};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::store::{DeviceAuthorization, DeviceStatus, GrantRecord, SessionDevice, StoreError};
use serde::Serialize;
use time::OffsetDateTime;

/// RFC 8628 §3.4: the `grant_type` a device polls with.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The device authorization response (RFC 8628 §3.2).
#[derive(Serialize)]
pub struct DeviceAuthorizationResponse {
    /// What the device polls `/token` with.
    pub device_code: String,
    /// What the person types on `/device` (`XXXX-XXXX`).
    pub user_code: String,
    /// Where the person types it.
    pub verification_uri: String,
    /// The same page with the code filled in (for a QR code or a link).
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: u64,
    /// Seconds the device waits between polls.
    pub interval: u64,
}

impl std::fmt::Debug for DeviceAuthorizationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorizationResponse")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Starts a device sign-in for `client` (RFC 8628 §3.1). Without `scope`, `openid`; scopes the
/// client may not have are dropped as at `/authorize`.
pub async fn start(
    ctx: &Context<'_>,
    client: &ValidClient,
    requested_scope: Option<&str>,
    device: SessionDevice,
    now: OffsetDateTime,
) -> Result<DeviceAuthorizationResponse, OAuthError> {
    if !client.device_flow {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "this client may not use the device authorization grant",
        ));
    }
    let mut scopes = Scopes::parse_request(requested_scope.unwrap_or("openid"));
    if !client.offline_access {
        scopes = scopes.without("offline_access");
    }
    if !client.connections {
        scopes = scopes.without("connections");
    }
    if scopes.is_empty() {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidScope,
            "none of the requested scopes is supported",
        ));
    }
    let lifetimes = ctx.config.lifetimes;
    let interval = u32::try_from(lifetimes.device_poll.as_secs().max(1)).unwrap_or(5);
    // A user code is short, so a new one may already be in use: draw again (a few times at
    // most; with 2.6e10 codes a second collision means something else is wrong).
    for _ in 0..3 {
        let device_code = OpaqueToken::generate();
        let user_code = UserCode::generate();
        let authorization = DeviceAuthorization {
            device_code_hash: device_code.hash(),
            user_code_hash: user_code.hash(),
            client_id: client.id.clone(),
            scopes,
            device: device.clone(),
            status: DeviceStatus::Pending,
            entries: 0,
            interval_secs: interval,
            slow_down: false,
            created_at: now,
            expires_at: now + lifetimes.device_code,
        };
        match ctx.store.insert_device_authorization(&authorization).await {
            Ok(()) => {
                ctx.metrics.device_authorization("requested");
                let page = ctx.config.issuer.endpoint("/device");
                let shown = user_code.display();
                return Ok(DeviceAuthorizationResponse {
                    device_code: device_code.expose().to_owned(),
                    verification_uri_complete: format!("{page}?user_code={shown}"),
                    verification_uri: page,
                    user_code: shown,
                    expires_in: lifetimes.device_code.as_secs(),
                    interval: u64::from(interval),
                });
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::internal(anyhow::anyhow!(
        "three user codes in a row were already in use"
    )))
}

/// The device polls with its device code (RFC 8628 §3.4, §3.5): the tokens once the person
/// approved, else `authorization_pending`, `slow_down`, `access_denied` or `expired_token`.
pub async fn poll(
    ctx: &Context<'_>,
    client: &ValidClient,
    device_code: &str,
    proof: Option<&Jkt>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    use OAuthErrorCode as C;
    if !client.device_flow {
        return Err(OAuthError::new(
            C::UnauthorizedClient,
            "this client may not use the device authorization grant",
        ));
    }
    let hash = OpaqueToken::from_presented(device_code).hash();
    let polled = ctx
        .store
        .poll_device_authorization(&hash, &client.id, now)
        .await?
        .ok_or_else(|| OAuthError::new(C::InvalidGrant, "the device code is not valid"))?;
    if polled.expires_at <= now {
        return Err(OAuthError::new(
            C::ExpiredToken,
            "the device code has expired",
        ));
    }
    match polled.status {
        DeviceStatus::Denied => Err(OAuthError::new(
            C::AccessDenied,
            "the sign-in on this device was refused",
        )),
        DeviceStatus::Pending if polled.slow_down => Err(OAuthError::new(
            C::SlowDown,
            "polling too fast: wait 5 seconds longer between polls from now on",
        )),
        DeviceStatus::Pending => Err(OAuthError::new(
            C::AuthorizationPending,
            "the person has not answered yet",
        )),
        DeviceStatus::Approved { .. } => redeem(ctx, client, &hash, proof, now).await,
    }
}

/// Spends an approved device code for tokens: once, whichever poll comes first.
async fn redeem(
    ctx: &Context<'_>,
    client: &ValidClient,
    hash: &crate::domain::TokenHash,
    proof: Option<&Jkt>,
    now: OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    let invalid = |why: &'static str| OAuthError::new(OAuthErrorCode::InvalidGrant, why);
    let spent = ctx
        .store
        .spend_device_authorization(hash, &client.id, now)
        .await?
        .ok_or_else(|| invalid("the device code was already used"))?;
    let DeviceStatus::Approved { user_id, auth_time } = spent.status else {
        return Err(invalid("the device code is not approved"));
    };
    let user = ctx
        .store
        .get_user(&user_id)
        .await?
        .ok_or_else(|| invalid("the person no longer exists"))?;
    let offline = client.offline_access && spent.scopes.contains("offline_access");
    // The device is not the browser the person approved it in: its grant does not end with
    // that browser's session (logout there), only with revocation, deprovisioning or expiry.
    let grant = GrantRecord {
        id: GrantId::generate(),
        client_id: client.id.clone(),
        user_id,
        session_id: None,
        scopes: spent.scopes,
        auth_time,
        created_at: now,
        expires_at: now + ctx.config.lifetimes.refresh_token,
        revoked_at: None,
        dpop_jkt: proof.filter(|_| client.is_public()).cloned(),
    };
    let refresh = (client.refresh_tokens || offline).then(OpaqueToken::generate);
    let minting = Minting {
        grant_type: "device_code",
        nonce: None,
        refresh: Refresh::NewGrant(refresh),
        proof,
        membership: None,
    };
    grant::mint(ctx, client, &user, &grant, minting, now).await
}
