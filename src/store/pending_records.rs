//! Records of requests that wait for a later step: device authorizations (RFC 8628) waiting for
//! a person on `/device`, and pushed authorization requests (RFC 9126) waiting for `/authorize`.

use super::SessionDevice;
use crate::domain::{ClientId, DiscordId, Scopes, TokenHash};
use time::OffsetDateTime;

/// Where a device authorization stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for a person to enter the user code and answer.
    Pending,
    /// A person approved it: the device may take tokens for them, once.
    Approved {
        /// Who approved.
        user_id: DiscordId,
        /// When they last authenticated at Discord (`auth_time`).
        auth_time: OffsetDateTime,
    },
    /// A person declined, the access rules refused them, or the code was entered too often.
    Denied,
}

impl DeviceStatus {
    /// The stored `status` word.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved { .. } => "approved",
            Self::Denied => "denied",
        }
    }
}

/// A device authorization request (RFC 8628 §3.1) and what became of it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// SHA-256 of the device code the device polls with.
    pub device_code_hash: TokenHash,
    /// SHA-256 of the user code's canonical form.
    pub user_code_hash: TokenHash,
    /// The client (the app on the device).
    pub client_id: ClientId,
    /// Scopes asked for; on approval, the scopes granted.
    pub scopes: Scopes,
    /// The device as it asked (its User-Agent and address), shown to the person.
    pub device: SessionDevice,
    /// Pending, approved or denied.
    pub status: DeviceStatus,
    /// How many times the user code has been entered.
    pub entries: u32,
    /// The least seconds between two polls (grows by 5 at each `slow_down`).
    pub interval_secs: u32,
    /// Whether the poll that returned this came too soon (RFC 8628 §3.5 `slow_down`).
    pub slow_down: bool,
    /// When it was requested.
    pub created_at: OffsetDateTime,
    /// After this the device is told `expired_token`.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("client_id", &self.client_id)
            .field("status", &self.status)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A pushed authorization request (RFC 9126 §2), waiting for its one `/authorize`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedRequest {
    /// SHA-256 of the `request_uri` handed to the client.
    pub request_uri_hash: TokenHash,
    /// The client that pushed it (only it may use the `request_uri`).
    pub client_id: ClientId,
    /// The authorization request's parameters, as JSON pairs.
    pub request: String,
    /// When it was pushed.
    pub created_at: OffsetDateTime,
    /// After this the `request_uri` is refused.
    pub expires_at: OffsetDateTime,
}
