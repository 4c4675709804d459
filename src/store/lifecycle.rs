//! The `Store` methods for how sessions and grants end and what is kept about a person beyond
//! the profile: ending sessions (one or all of a person's), listing live grants, consents, the
//! back-channel logout queue, membership snapshots and sealed Discord tokens.
//!
//! Macro text like `shared.rs`, appended to the core methods there by
//! [`with_lifecycle_methods!`] and emitted as one impl.

/// Appends the lifecycle methods to the gathered `$core` methods and emits the impl.
macro_rules! with_lifecycle_methods {
    ($ty:ty, $db:ty; $($core:tt)*) => {
        $crate::store::pending::with_pending_methods! { $ty, $db; $($core)*

    async fn end_session(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<EndedSession>, StoreError> {
        let mut tx = self.begin_write().await?;
        let ended = sqlx::query_as::<_, SessionRecord>(END_SESSION)
            .bind(id.as_str())
            .bind(to_unix(now))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(session) = ended else {
            return Ok(None); // dropping `tx` rolls back
        };
        sqlx::query(REVOKE_SESSION_GRANTS)
            .bind(id.as_str())
            .bind(to_unix(now))
            .execute(&mut *tx)
            .await?;
        let clients = Self::session_clients(&mut *tx, id).await?;
        tx.commit().await?;
        self.follower.forget(&[$crate::store::holder_cache::Changed::Session(id.to_string())]);
        Ok(Some(EndedSession { session, clients }))
    }

    async fn list_sessions(
        &self,
        user_id: Option<&DiscordId>,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = match user_id {
            Some(user) => {
                sqlx::query_as::<_, SessionRecord>(LIST_USER_SESSIONS)
                    .bind(user.as_str())
                    .bind(to_unix(now))
                    .fetch_all(self.reader())
                    .await?
            }
            None => {
                sqlx::query_as::<_, SessionRecord>(LIST_SESSIONS)
                    .bind(to_unix(now))
                    .fetch_all(self.reader())
                    .await?
            }
        };
        Ok(rows)
    }


    async fn end_user_sessions(
        &self,
        user_id: &DiscordId,
        now: OffsetDateTime,
    ) -> Result<Vec<EndedSession>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut sessions = sqlx::query_as::<_, SessionRecord>(END_USER_SESSIONS)
            .bind(user_id.as_str())
            .bind(to_unix(now))
            .fetch_all(&mut *tx)
            .await?;
        // Newest first, as `list_sessions` answers; `RETURNING` promises no order.
        sessions.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        sqlx::query(REVOKE_USER_GRANTS)
            .bind(user_id.as_str())
            .bind(to_unix(now))
            .execute(&mut *tx)
            .await?;
        let mut ended = Vec::with_capacity(sessions.len());
        for session in sessions {
            let clients = Self::session_clients(&mut *tx, &session.id).await?;
            ended.push(EndedSession { session, clients });
        }
        tx.commit().await?;
        // Every grant of the person, with a session or without.
        self.follower.forget(&[$crate::store::holder_cache::Changed::User(user_id.to_string())]);
        Ok(ended)
    }

    async fn list_user_grants(
        &self,
        user_id: &DiscordId,
        now: OffsetDateTime,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        let grants = sqlx::query_as::<_, GrantRecord>(LIST_USER_GRANTS)
            .bind(user_id.as_str())
            .bind(to_unix(now))
            .fetch_all(self.reader())
            .await?;
        Ok(grants)
    }

    async fn people_with_live_grants(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<DiscordId>, StoreError> {
        let people = sqlx::query_scalar::<_, String>(LIVE_GRANT_HOLDERS)
            .bind(to_unix(now))
            .fetch_all(self.reader())
            .await?;
        all_stored(people, "grants", "user_id")
    }

    async fn get_consent(
        &self,
        user_id: &DiscordId,
        client_id: &ClientId,
    ) -> Result<Option<Scopes>, StoreError> {
        let scopes = self
            .read_one::<ConsentScopes>(
                GET_CONSENT,
                &[Arg::Text(user_id.as_str()), Arg::Text(client_id.as_str())],
            )
            .await?;
        Ok(scopes.map(|ConsentScopes(scopes)| scopes))
    }

    async fn save_consent(
        &self,
        user_id: &DiscordId,
        client_id: &ClientId,
        scopes: Scopes,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(SAVE_CONSENT)
            .bind(user_id.as_str())
            .bind(client_id.as_str())
            .bind(scopes.to_string())
            .bind(to_unix(now))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn revoke_consent(
        &self,
        user_id: &DiscordId,
        client_id: &ClientId,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(REVOKE_CONSENT)
            .bind(user_id.as_str())
            .bind(client_id.as_str())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_consents(&self, user_id: &DiscordId) -> Result<Vec<ConsentRecord>, StoreError> {
        let mut consents = sqlx::query_as::<_, ConsentRecord>(LIST_USER_CONSENTS)
            .bind(user_id.as_str())
            .fetch_all(self.reader())
            .await?;
        consents.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(consents)
    }

    async fn last_sign_ins(&self, user_id: &DiscordId) -> Result<Vec<ClientSignIn>, StoreError> {
        let mut sign_ins = sqlx::query_as::<_, ClientSignIn>(LAST_SIGN_INS)
            .bind(user_id.as_str())
            .fetch_all(self.reader())
            .await?;
        sign_ins.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(sign_ins)
    }

    async fn revoke_client_grants(
        &self,
        user_id: &DiscordId,
        client_id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<Vec<GrantId>, StoreError> {
        let ids = sqlx::query_scalar::<_, String>(REVOKE_CLIENT_GRANTS)
            .bind(user_id.as_str())
            .bind(client_id.as_str())
            .bind(to_unix(now))
            .fetch_all(self.writer())
            .await?;
        let mut ids: Vec<GrantId> = all_stored(ids, "grants", "id")?;
        ids.sort();
        let changed: Vec<_> = ids.iter().map(|id| $crate::store::holder_cache::Changed::Grant(id.to_string())).collect();
        self.follower.forget(&changed);
        Ok(ids)
    }

    async fn enqueue_logout_deliveries(
        &self,
        deliveries: &[LogoutDelivery],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for d in deliveries {
            sqlx::query(ENQUEUE_LOGOUT)
                .bind(&d.id)
                .bind(d.client_id.as_str())
                .bind(d.session_id.as_ref().map(SessionId::as_str))
                .bind(d.user_id.as_str())
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
        now: OffsetDateTime,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<LogoutDelivery>, StoreError> {
        // The lease is the claim: until it runs out no other process finds these due.
        let lease_secs = i64::try_from(lease.as_secs()).unwrap_or(i64::MAX);
        let mut tx = self.begin_write().await?;
        let mut claimed = sqlx::query_as::<_, LogoutDelivery>(Self::CLAIM_LOGOUTS)
            .bind(to_unix(now))
            .bind(to_unix(now).saturating_add(lease_secs))
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(claimed)
    }

    async fn finish_logout_delivery(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(FINISH_LOGOUT)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn logout_queue_depth(&self) -> Result<u64, StoreError> {
        let count = sqlx::query_scalar::<_, i64>(COUNT_LOGOUTS)
            .fetch_one(self.reader())
            .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn count_live_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let count = sqlx::query_scalar::<_, i64>(COUNT_LIVE_SESSIONS)
            .bind(to_unix(now))
            .fetch_one(self.reader())
            .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    fn pool_usage(&self) -> PoolUsage {
        self.pools_in_use()
    }

    async fn retry_logout_delivery(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(RETRY_LOGOUT)
            .bind(id)
            .bind(i64::from(attempts))
            .bind(to_unix(next_attempt_at))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn get_membership(
        &self,
        user_id: &DiscordId,
    ) -> Result<Option<MembershipSnapshot>, StoreError> {
        let stored = self
            .read_one::<StoredMembership>(GET_MEMBERSHIP, &[Arg::Text(user_id.as_str())])
            .await?;
        Ok(stored.and_then(|StoredMembership(snapshot)| snapshot))
    }

    async fn save_membership(
        &self,
        user_id: &DiscordId,
        snapshot: &MembershipSnapshot,
    ) -> Result<(), StoreError> {
        sqlx::query(SAVE_MEMBERSHIP)
            .bind(user_id.as_str())
            .bind(&snapshot.snapshot)
            .bind(to_unix(snapshot.fetched_at))
            .execute(self.writer())
            .await?;
        self.follower.forget(&[$crate::store::holder_cache::Changed::User(user_id.to_string())]);
        Ok(())
    }

    async fn get_upstream_tokens(
        &self,
        user_id: &DiscordId,
    ) -> Result<Option<StoredUpstreamTokens>, StoreError> {
        let row = sqlx::query_as::<_, (Option<Vec<u8>>, Option<i64>)>(GET_UPSTREAM_TOKENS)
            .bind(user_id.as_str())
            .fetch_optional(self.reader())
            .await?;
        Ok(match row {
            Some((Some(ciphertext), Some(at))) => Some(StoredUpstreamTokens {
                ciphertext,
                access_expires_at: from_unix(at),
            }),
            _ => None,
        })
    }

    async fn save_upstream_tokens(
        &self,
        user_id: &DiscordId,
        tokens: Option<&StoredUpstreamTokens>,
    ) -> Result<(), StoreError> {
        sqlx::query(SAVE_UPSTREAM_TOKENS)
            .bind(user_id.as_str())
            .bind(tokens.map(|t| t.ciphertext.as_slice()))
            .bind(tokens.map(|t| to_unix(t.access_expires_at)))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn list_kept_tokens(
        &self,
        after: Option<&DiscordId>,
        limit: u32,
    ) -> Result<Vec<(DiscordId, Vec<u8>)>, StoreError> {
        let rows = sqlx::query_as::<_, (String, Vec<u8>)>(LIST_KEPT_TOKENS)
            .bind(after.map_or("", DiscordId::as_str))
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await?;
        let (ids, sealed): (Vec<String>, Vec<Vec<u8>>) = rows.into_iter().unzip();
        let ids: Vec<DiscordId> = all_stored(ids, "users", "id")?;
        Ok(ids.into_iter().zip(sealed).collect())
    }

    async fn replace_kept_tokens(
        &self,
        user_id: &DiscordId,
        old: &[u8],
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(REPLACE_KEPT_TOKENS)
            .bind(user_id.as_str())
            .bind(old)
            .bind(new)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_recheck(
        &self,
        user_id: &DiscordId,
        holder: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(CLAIM_RECHECK)
            .bind(user_id.as_str())
            .bind(holder)
            .bind(to_unix(until))
            .bind(to_unix(now))
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_recheck(&self, user_id: &DiscordId, holder: &str) -> Result<(), StoreError> {
        sqlx::query(RELEASE_RECHECK)
            .bind(user_id.as_str())
            .bind(holder)
            .execute(self.writer())
            .await?;
        Ok(())
    }
        }
    };
}
pub(super) use with_lifecycle_methods;
