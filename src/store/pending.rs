//! The `Store` methods of the grants beyond the code flow: device authorizations (RFC 8628),
//! pushed authorization requests (RFC 9126), one-time JWT ids (client assertions, DPoP proofs)
//! and the revocation check of service tokens. Their SQL sits here too, written for both engines.
//!
//! Macro text like `shared.rs`, appended to the gathered methods by [`with_pending_methods!`]
//! and emitted as one impl.

use super::columns::{Columns, FromColumns};
use super::{DeviceAuthorization, DeviceStatus, PushedRequest, SessionDevice};

/// The columns of a device authorization, as [`DeviceAuthorization`] decodes them.
macro_rules! device_columns {
    () => {
        "device_code_hash, user_code_hash, client_id, scopes, device_user_agent, device_ip, \
        status, user_id, auth_time, entries, interval_secs, slow_down, created_at, expires_at"
    };
}

pub(super) const INSERT_DEVICE: &str = "INSERT INTO device_authorizations (device_code_hash, \
    user_code_hash, client_id, scopes, device_user_agent, device_ip, status, interval_secs, \
    next_poll_at, created_at, expires_at) \
    VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10)";
/// One poll at `$3`: a pending authorization polled before `next_poll_at` is slowed down (its
/// interval grows by five seconds, RFC 8628 §3.5); every poll moves `next_poll_at` on. Each
/// `SET` reads the row as it was, in both engines.
pub(super) const POLL_DEVICE: &str = concat!(
    "UPDATE device_authorizations SET \
    slow_down = (status = 'pending' AND next_poll_at > $3), \
    interval_secs = interval_secs \
        + CASE WHEN status = 'pending' AND next_poll_at > $3 THEN 5 ELSE 0 END, \
    next_poll_at = $3 + interval_secs \
        + CASE WHEN status = 'pending' AND next_poll_at > $3 THEN 5 ELSE 0 END \
    WHERE device_code_hash = $1 AND client_id = $2 AND used_at IS NULL RETURNING ",
    device_columns!()
);
/// The single-use gate of a device code: only an approved, unspent, unexpired one.
pub(super) const SPEND_DEVICE: &str = concat!(
    "UPDATE device_authorizations SET used_at = $3 \
    WHERE device_code_hash = $1 AND client_id = $2 AND status = 'approved' \
    AND used_at IS NULL AND expires_at > $3 RETURNING ",
    device_columns!()
);
pub(super) const ENTER_USER_CODE: &str = concat!(
    "UPDATE device_authorizations SET entries = entries + 1 \
    WHERE user_code_hash = $1 AND status = 'pending' AND used_at IS NULL AND expires_at > $2 \
    RETURNING ",
    device_columns!()
);
pub(super) const FIND_DEVICE: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM device_authorizations WHERE device_code_hash = $1 AND used_at IS NULL \
    AND expires_at > $2"
);
pub(super) const DECIDE_DEVICE: &str = "UPDATE device_authorizations \
    SET status = $2, user_id = $3, auth_time = $4, scopes = $5 \
    WHERE device_code_hash = $1 AND status = 'pending' AND used_at IS NULL AND expires_at > $6";

pub(super) const INSERT_PUSHED: &str = "INSERT INTO pushed_requests (request_uri_hash, \
    client_id, request, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
pub(super) const TAKE_PUSHED: &str = "DELETE FROM pushed_requests \
    WHERE request_uri_hash = $1 AND client_id = $2 AND expires_at > $3 \
    RETURNING request_uri_hash, client_id, request, created_at, expires_at";

pub(super) const SPEND_JTI: &str = "INSERT INTO used_jtis (jti_key, expires_at) VALUES ($1, $2) \
    ON CONFLICT (jti_key) DO NOTHING";
pub(super) const ACCESS_TOKEN_REVOKED: &str =
    "SELECT jti FROM revoked_access_tokens WHERE jti = $1";

/// The arguments of a statement that acts on one row for one client at `now` (`$1`, `$2`,
/// `$3`): a device code's poll or spend, a pushed request's taking.
pub(super) fn row_for_client<'a>(
    hash: &'a crate::domain::TokenHash,
    client_id: &'a crate::domain::ClientId,
    now: time::OffsetDateTime,
) -> [super::args::Arg<'a>; 3] {
    [
        super::args::Arg::Text(hash.as_str()),
        super::args::Arg::Text(client_id.as_str()),
        super::args::Arg::time(now),
    ]
}

/// Appends these methods to the gathered `$core` ones and emits the impl.
macro_rules! with_pending_methods {
    ($ty:ty, $db:ty; $($core:tt)*) => {
        $crate::store::emit::emit_store_impl! { $ty, $db; $($core)*

    async fn insert_device_authorization(
        &self,
        d: &$crate::store::DeviceAuthorization,
    ) -> Result<(), StoreError> {
        let scopes = d.scopes.to_string();
        self.transient().write(
            $crate::store::pending::INSERT_DEVICE,
            &[
                Arg::Text(d.device_code_hash.as_str()),
                Arg::Text(d.user_code_hash.as_str()),
                Arg::Text(d.client_id.as_str()),
                Arg::Text(&scopes),
                Arg::OptText(d.device.user_agent.as_deref()),
                Arg::OptText(d.device.ip.as_deref()),
                Arg::Int(i64::from(d.interval_secs)),
                Arg::time(d.created_at),
                Arg::time(d.created_at),
                Arg::time(d.expires_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn poll_device_authorization(
        &self,
        device_code_hash: &TokenHash,
        client_id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<Option<$crate::store::DeviceAuthorization>, StoreError> {
        self.transient().write_one(
            $crate::store::pending::POLL_DEVICE,
            &$crate::store::pending::row_for_client(device_code_hash, client_id, now),
        )
        .await
    }

    async fn spend_device_authorization(
        &self,
        device_code_hash: &TokenHash,
        client_id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<Option<$crate::store::DeviceAuthorization>, StoreError> {
        self.transient().write_one(
            $crate::store::pending::SPEND_DEVICE,
            &$crate::store::pending::row_for_client(device_code_hash, client_id, now),
        )
        .await
    }

    async fn enter_user_code(
        &self,
        user_code_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<$crate::store::DeviceAuthorization>, StoreError> {
        self.write_one(
            $crate::store::pending::ENTER_USER_CODE,
            &[Arg::Text(user_code_hash.as_str()), Arg::time(now)],
        )
        .await
    }

    async fn find_device_authorization(
        &self,
        device_code_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<$crate::store::DeviceAuthorization>, StoreError> {
        self.read_one(
            $crate::store::pending::FIND_DEVICE,
            &[Arg::Text(device_code_hash.as_str()), Arg::time(now)],
        )
        .await
    }

    async fn decide_device_authorization(
        &self,
        device_code_hash: &TokenHash,
        status: &$crate::store::DeviceStatus,
        scopes: Scopes,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (user_id, auth_time) = match status {
            $crate::store::DeviceStatus::Approved { user_id, auth_time } => {
                (Some(user_id.as_str()), Some(*auth_time))
            }
            _ => (None, None),
        };
        let scopes = scopes.to_string();
        let changed = self
            .write(
                $crate::store::pending::DECIDE_DEVICE,
                &[
                    Arg::Text(device_code_hash.as_str()),
                    Arg::Text(status.as_str()),
                    Arg::OptText(user_id),
                    Arg::opt_time(auth_time),
                    Arg::Text(&scopes),
                    Arg::time(now),
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn insert_pushed_request(
        &self,
        request: &$crate::store::PushedRequest,
    ) -> Result<(), StoreError> {
        self.transient().write(
            $crate::store::pending::INSERT_PUSHED,
            &[
                Arg::Text(request.request_uri_hash.as_str()),
                Arg::Text(request.client_id.as_str()),
                Arg::Text(&request.request),
                Arg::time(request.created_at),
                Arg::time(request.expires_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn take_pushed_request(
        &self,
        request_uri_hash: &TokenHash,
        client_id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<Option<$crate::store::PushedRequest>, StoreError> {
        self.transient().write_one(
            $crate::store::pending::TAKE_PUSHED,
            &$crate::store::pending::row_for_client(request_uri_hash, client_id, now),
        )
        .await
    }

    async fn spend_jti(
        &self,
        key: &TokenHash,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .write(
                $crate::store::pending::SPEND_JTI,
                &[Arg::Text(key.as_str()), Arg::time(expires_at)],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let found = self
            .read_one::<()>($crate::store::pending::ACCESS_TOKEN_REVOKED, &[Arg::Text(jti)])
            .await?;
        Ok(found.is_some())
    }
        }
    };
}
pub(super) use with_pending_methods;

impl FromColumns for DeviceAuthorization {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        const TABLE: &str = "device_authorizations";
        let status = match r.text("status")?.as_str() {
            "pending" => DeviceStatus::Pending,
            "denied" => DeviceStatus::Denied,
            "approved" => DeviceStatus::Approved {
                user_id: r
                    .opt_typed(TABLE, "user_id")?
                    .ok_or_else(|| unreadable_status("an approval without its person"))?,
                auth_time: r
                    .opt_time("auth_time")?
                    .ok_or_else(|| unreadable_status("an approval without its auth_time"))?,
            },
            _ => return Err(unreadable_status("pending, approved or denied")),
        };
        Ok(Self {
            device_code_hash: r.hash("device_code_hash")?,
            user_code_hash: r.hash("user_code_hash")?,
            client_id: r.typed(TABLE, "client_id")?,
            scopes: r.typed(TABLE, "scopes")?,
            device: SessionDevice {
                user_agent: r.opt_text("device_user_agent")?,
                ip: r.opt_text("device_ip")?,
            },
            status,
            // Written from small counters; a damaged value saturates rather than wraps.
            entries: u32::try_from(r.int("entries")?).unwrap_or(u32::MAX),
            interval_secs: u32::try_from(r.int("interval_secs")?).unwrap_or(u32::MAX),
            slow_down: r.flag("slow_down")?,
            created_at: r.time("created_at")?,
            expires_at: r.time("expires_at")?,
        })
    }
}

fn unreadable_status(expected: &'static str) -> sqlx::Error {
    super::columns::unreadable("device_authorizations", "status", expected)
}

impl FromColumns for PushedRequest {
    fn from_columns<R: Columns + ?Sized>(r: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            request_uri_hash: r.hash("request_uri_hash")?,
            client_id: r.typed("pushed_requests", "client_id")?,
            request: r.text("request")?,
            created_at: r.time("created_at")?,
            expires_at: r.time("expires_at")?,
        })
    }
}
