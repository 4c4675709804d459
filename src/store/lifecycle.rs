//! Store operations added for the token lifecycle and Discord freshness (sessions of a person,
//! consents, the back-channel logout queue, membership snapshots, sealed Discord tokens).
//!
//! The SQL runs unchanged on both engines, so the methods are written once here and expanded
//! into each backend's `impl Store` by [`lifecycle_methods!`]; a backend provides only
//! `self.pool` and `self.begin_write()`.

/// Ends a person's live sessions (returning them) in one statement.
pub(super) const END_USER_SESSIONS: &str = "UPDATE sessions SET ended_at = $2 \
    WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 \
    RETURNING id, secret_hash, user_id, auth_time, created_at, expires_at, last_seen_at";
pub(super) const SESSION_CLIENTS_SORTED: &str =
    "SELECT client_id FROM session_clients WHERE session_id = $1 ORDER BY client_id";
pub(super) const REVOKE_USER_GRANTS: &str =
    "UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
pub(super) const LIST_USER_GRANTS: &str = "SELECT id, client_id, user_id, session_id, scopes, \
    auth_time, created_at, expires_at, revoked_at FROM grants \
    WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at";
pub(super) const GET_CONSENT: &str =
    "SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2";
pub(super) const SAVE_CONSENT: &str = "INSERT INTO consents (user_id, client_id, scopes, \
    granted_at) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, client_id) \
    DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at";
pub(super) const REVOKE_CONSENT: &str =
    "DELETE FROM consents WHERE user_id = $1 AND client_id = $2";
pub(super) const ENQUEUE_LOGOUT: &str = "INSERT INTO logout_deliveries (id, client_id, \
    session_id, user_id, uri, logout_token, attempts, next_attempt_at, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
/// The outer `next_attempt_at <= $1` is re-checked on Postgres when a concurrent claim held the
/// row, so two processes never both claim one delivery; SQLite serialises writers anyway.
pub(super) const CLAIM_LOGOUTS: &str = "UPDATE logout_deliveries SET next_attempt_at = $2 \
    WHERE next_attempt_at <= $1 AND id IN (SELECT id FROM logout_deliveries \
        WHERE next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3) \
    RETURNING id, client_id, session_id, user_id, uri, logout_token, attempts, \
        next_attempt_at, created_at";
pub(super) const FINISH_LOGOUT: &str = "DELETE FROM logout_deliveries WHERE id = $1";
pub(super) const RETRY_LOGOUT: &str =
    "UPDATE logout_deliveries SET attempts = $2, next_attempt_at = $3 WHERE id = $1";
pub(super) const GET_MEMBERSHIP: &str =
    "SELECT membership, membership_fetched_at FROM users WHERE id = $1";
pub(super) const SAVE_MEMBERSHIP: &str =
    "UPDATE users SET membership = $2, membership_fetched_at = $3 WHERE id = $1";
pub(super) const GET_UPSTREAM_TOKENS: &str =
    "SELECT discord_tokens, discord_token_expires_at FROM users WHERE id = $1";
pub(super) const SAVE_UPSTREAM_TOKENS: &str =
    "UPDATE users SET discord_tokens = $2, discord_token_expires_at = $3 WHERE id = $1";

/// A queued delivery as a row tuple (portable `FromRow`).
pub(super) type DeliveryRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
    i64,
    i64,
);

/// Rebuilds a delivery from its row.
pub(super) fn delivery_from_row(row: DeliveryRow) -> super::LogoutDelivery {
    let (id, client_id, session_id, user_id, uri, logout_token, attempts, next, created) = row;
    super::LogoutDelivery {
        id,
        client_id,
        session_id,
        user_id,
        uri,
        logout_token,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: super::from_unix(next),
        created_at: super::from_unix(created),
    }
}

/// Appends the lifecycle methods to `$prefix` and hands everything to the macro `$cb`.
macro_rules! with_lifecycle_methods {
    ($cb:ident; $($prefix:tt)*) => {
        $cb! { $($prefix)*
        async fn end_user_sessions(
            &self,
            user_id: &str,
            now: time::OffsetDateTime,
        ) -> Result<Vec<super::EndedSession>, StoreError> {
            use super::lifecycle as q;
            let mut tx = self.begin_write().await?;
            let sessions = sqlx::query_as::<_, SessionRecord>(q::END_USER_SESSIONS)
                .bind(user_id)
                .bind(to_unix(now))
                .fetch_all(&mut *tx)
                .await?;
            let mut ended = Vec::with_capacity(sessions.len());
            for session in sessions {
                let clients = sqlx::query_scalar::<_, String>(q::SESSION_CLIENTS_SORTED)
                    .bind(&session.id)
                    .fetch_all(&mut *tx)
                    .await?;
                ended.push(super::EndedSession { session, clients });
            }
            sqlx::query(q::REVOKE_USER_GRANTS)
                .bind(user_id)
                .bind(to_unix(now))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(ended)
        }

        async fn list_user_grants(
            &self,
            user_id: &str,
            now: time::OffsetDateTime,
        ) -> Result<Vec<GrantRecord>, StoreError> {
            Ok(sqlx::query_as::<_, GrantRecord>(super::lifecycle::LIST_USER_GRANTS)
                .bind(user_id)
                .bind(to_unix(now))
                .fetch_all(&self.pool)
                .await?)
        }

        async fn get_consent(
            &self,
            user_id: &str,
            client_id: &str,
        ) -> Result<Option<String>, StoreError> {
            Ok(sqlx::query_scalar::<_, String>(super::lifecycle::GET_CONSENT)
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn save_consent(
            &self,
            user_id: &str,
            client_id: &str,
            scopes: &str,
            now: time::OffsetDateTime,
        ) -> Result<(), StoreError> {
            sqlx::query(super::lifecycle::SAVE_CONSENT)
                .bind(user_id)
                .bind(client_id)
                .bind(scopes)
                .bind(to_unix(now))
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn revoke_consent(&self, user_id: &str, client_id: &str) -> Result<bool, StoreError> {
            let done = sqlx::query(super::lifecycle::REVOKE_CONSENT)
                .bind(user_id)
                .bind(client_id)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() > 0)
        }

        async fn enqueue_logout_deliveries(
            &self,
            deliveries: &[super::LogoutDelivery],
        ) -> Result<(), StoreError> {
            let mut tx = self.begin_write().await?;
            for d in deliveries {
                sqlx::query(super::lifecycle::ENQUEUE_LOGOUT)
                    .bind(&d.id)
                    .bind(&d.client_id)
                    .bind(&d.session_id)
                    .bind(&d.user_id)
                    .bind(&d.uri)
                    .bind(&d.logout_token)
                    .bind(i64::from(d.attempts))
                    .bind(to_unix(d.next_attempt_at))
                    .bind(to_unix(d.created_at))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn claim_logout_deliveries(
            &self,
            now: time::OffsetDateTime,
            lease: std::time::Duration,
            limit: u32,
        ) -> Result<Vec<super::LogoutDelivery>, StoreError> {
            let until = now + lease;
            let rows = sqlx::query_as::<_, super::lifecycle::DeliveryRow>(
                super::lifecycle::CLAIM_LOGOUTS,
            )
            .bind(to_unix(now))
            .bind(to_unix(until))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(super::lifecycle::delivery_from_row).collect())
        }

        async fn finish_logout_delivery(&self, id: &str) -> Result<(), StoreError> {
            sqlx::query(super::lifecycle::FINISH_LOGOUT)
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn retry_logout_delivery(
            &self,
            id: &str,
            attempts: u32,
            next_attempt_at: time::OffsetDateTime,
        ) -> Result<(), StoreError> {
            sqlx::query(super::lifecycle::RETRY_LOGOUT)
                .bind(id)
                .bind(i64::from(attempts))
                .bind(to_unix(next_attempt_at))
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn get_membership(
            &self,
            user_id: &str,
        ) -> Result<Option<super::MembershipSnapshot>, StoreError> {
            let row = sqlx::query_as::<_, (Option<String>, Option<i64>)>(
                super::lifecycle::GET_MEMBERSHIP,
            )
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
            Ok(match row {
                Some((Some(snapshot), Some(at))) => Some(super::MembershipSnapshot {
                    snapshot,
                    fetched_at: from_unix(at),
                }),
                _ => None,
            })
        }

        async fn save_membership(
            &self,
            user_id: &str,
            snapshot: &super::MembershipSnapshot,
        ) -> Result<(), StoreError> {
            sqlx::query(super::lifecycle::SAVE_MEMBERSHIP)
                .bind(user_id)
                .bind(&snapshot.snapshot)
                .bind(to_unix(snapshot.fetched_at))
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        async fn get_upstream_tokens(
            &self,
            user_id: &str,
        ) -> Result<Option<super::StoredUpstreamTokens>, StoreError> {
            let row = sqlx::query_as::<_, (Option<Vec<u8>>, Option<i64>)>(
                super::lifecycle::GET_UPSTREAM_TOKENS,
            )
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
            Ok(match row {
                Some((Some(ciphertext), Some(at))) => Some(super::StoredUpstreamTokens {
                    ciphertext,
                    access_expires_at: from_unix(at),
                }),
                _ => None,
            })
        }

        async fn save_upstream_tokens(
            &self,
            user_id: &str,
            tokens: Option<&super::StoredUpstreamTokens>,
        ) -> Result<(), StoreError> {
            sqlx::query(super::lifecycle::SAVE_UPSTREAM_TOKENS)
                .bind(user_id)
                .bind(tokens.map(|t| t.ciphertext.clone()))
                .bind(tokens.map(|t| to_unix(t.access_expires_at)))
                .execute(&self.pool)
                .await?;
            Ok(())
        }
        }
    };
}
pub(super) use with_lifecycle_methods;
