//! The `Store` implementation, written once: both engines run the same SQL (`sql.rs`) and decode
//! the same rows (`rows.rs`), so the methods are macro text that each backend expands with its
//! own types. A backend provides only `reader()` and `writer()` (its pools for reads and for
//! writes), `begin_write()` (how a writing transaction starts),
//! `run_migrations()` (which migrations) and `CLAIM_LOGOUTS` (the one statement that differs).
//!
//! Why macros and not a generic `impl<DB: Database> Store`: sqlx's generic bounds (an executor
//! HRTB, `Encode + Type` for every bound type) are not implied by a helper trait, so they would
//! be spelled out on every generic item; the expanded code is plain concrete sqlx instead. Row
//! decoding has no such cost and is generic (`rows.rs`).

/// Writes `impl Store for $ty` on database `$db`: the core methods below plus the lifecycle ones
/// from `lifecycle.rs`. `#[async_trait]` must see every method in one impl, so the tokens are
/// gathered through `with_lifecycle_methods!` and emitted by [`emit_store_impl!`].
macro_rules! impl_store {
    ($ty:ty, $db:ty) => {
        $crate::store::lifecycle::with_lifecycle_methods! { $ty, $db;

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.reader()).await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.run_migrations().await
    }

    async fn upsert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        Self::bind_profile(sqlx::query(UPSERT_USER), user)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn save_sign_in(
        &self,
        user: &UserRecord,
        membership: &MembershipSnapshot,
        tokens: Option<&StoredUpstreamTokens>,
        session: &SessionRecord,
    ) -> Result<(), StoreError> {
        if session.user_id != user.id {
            return Err(StoreError::Conflict(
                "a sign-in's session must belong to its person".into(),
            ));
        }
        // The person and the session together, in one trip (see each backend).
        self.in_one_trip(
            Self::bind_profile(sqlx::query(Self::SAVE_SIGN_IN), user)
                .bind(&membership.snapshot)
                .bind(to_unix(membership.fetched_at))
                .bind(tokens.map(|t| t.ciphertext.as_slice()))
                .bind(tokens.map(|t| to_unix(t.access_expires_at)))
                .bind(session.id.as_str())
                .bind(session.secret_hash.as_str())
                .bind(to_unix(session.auth_time))
                .bind(to_unix(session.created_at))
                .bind(to_unix(session.expires_at))
                .bind(to_unix(session.last_seen_at))
                .bind(session.device.user_agent.as_deref())
                .bind(session.device.ip.as_deref()),
        )
        .await?;
        Ok(())
    }

    async fn get_user(&self, id: &DiscordId) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query_as::<_, UserRecord>(GET_USER)
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await?;
        Ok(row)
    }

    async fn insert_upstream_login(
        &self,
        login: &UpstreamLogin,
        cap: &PendingLoginCap<'_>,
    ) -> Result<bool, StoreError> {
        if let Some(previous) = cap.replaces {
            sqlx::query(FORGET_UPSTREAM_LOGINS)
                .bind(previous.as_str())
                .execute(self.writer())
                .await?;
        }
        let inserted = sqlx::query(INSERT_UPSTREAM_LOGIN)
            .bind(login.state_hash.as_str())
            .bind(login.binding_hash.as_str())
            .bind(login.pkce_verifier.expose())
            .bind(&login.request)
            .bind(to_unix(login.created_at))
            .bind(to_unix(login.expires_at))
            .bind(cap.source)
            .bind(i64::from(cap.max_per_source))
            .execute(self.writer())
            .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn take_upstream_login(
        &self,
        state_hash: &TokenHash,
        binding_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<UpstreamLogin>, StoreError> {
        let row = sqlx::query_as::<_, UpstreamLogin>(TAKE_UPSTREAM_LOGIN)
            .bind(state_hash.as_str())
            .bind(binding_hash.as_str())
            .bind(to_unix(now))
            .fetch_optional(self.writer())
            .await?;
        Ok(row)
    }

    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT_SESSION)
            .bind(session.id.as_str())
            .bind(session.secret_hash.as_str())
            .bind(session.user_id.as_str())
            .bind(to_unix(session.auth_time))
            .bind(to_unix(session.created_at))
            .bind(to_unix(session.expires_at))
            .bind(to_unix(session.last_seen_at))
            .bind(session.device.user_agent.as_deref())
            .bind(session.device.ip.as_deref())
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn find_session(
        &self,
        secret_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query_as::<_, SessionRecord>(FIND_SESSION)
            .bind(secret_hash.as_str())
            .bind(to_unix(now))
            .fetch_optional(self.reader())
            .await?;
        Ok(row)
    }

    async fn touch_session(&self, id: &SessionId, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(TOUCH_SESSION)
            .bind(id.as_str())
            .bind(to_unix(now))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn add_session_client(
        &self,
        session_id: &SessionId,
        client_id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(ADD_SESSION_CLIENT)
            .bind(session_id.as_str())
            .bind(client_id.as_str())
            .bind(to_unix(now))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError> {
        // The code and its client's place in the session, in one trip (see each backend).
        self.in_one_trip(
            sqlx::query(Self::INSERT_AUTH_CODE)
                .bind(code.code_hash.as_str())
                .bind(code.client_id.as_str())
                .bind(&code.redirect_uri)
                .bind(code.user_id.as_str())
                .bind(code.session_id.as_str())
                .bind(code.grant_id.as_str())
                .bind(code.scopes.to_string())
                .bind(&code.nonce)
                .bind(code.code_challenge.as_ref().map(PkceChallenge::as_str))
                .bind(to_unix(code.auth_time))
                .bind(to_unix(code.created_at))
                .bind(to_unix(code.expires_at)),
        )
        .await?;
        Ok(())
    }

    async fn consume_auth_code(
        &self,
        code_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        // The gate: a single conditional UPDATE, so of concurrent callers exactly one sees the row.
        let spent = sqlx::query_as::<_, AuthCodeRecord>(SPEND_AUTH_CODE)
            .bind(code_hash.as_str())
            .bind(to_unix(now))
            .fetch_optional(self.writer())
            .await?;
        if let Some(code) = spent {
            return Ok(CodeRedemption::Redeemed(Box::new(code)));
        }
        // RFC 6749 §4.1.2: a replayed code SHOULD revoke what it issued. One autocommitted
        // statement, so the revocation persists although the caller then fails the request.
        let revoked = sqlx::query_scalar::<_, String>(REVOKE_REPLAYED_CODE_GRANT)
            .bind(code_hash.as_str())
            .bind(to_unix(now))
            .bind(REPLAY_TOMBSTONE_SECS)
            .fetch_optional(self.writer())
            .await?;
        Ok(match revoked {
            Some(id) => CodeRedemption::Replayed {
                grant_id: stored(&id, "grants", "id")?,
            },
            None => CodeRedemption::Unknown,
        })
    }

    async fn insert_grant(
        &self,
        grant: &GrantRecord,
        refresh: Option<&NewRefreshToken>,
    ) -> Result<(), StoreError> {
        // The grant and its first refresh token together, in one trip (see each backend).
        self.in_one_trip(
            sqlx::query(Self::INSERT_GRANT)
                .bind(grant.id.as_str())
                .bind(grant.client_id.as_str())
                .bind(grant.user_id.as_str())
                .bind(grant.session_id.as_ref().map(SessionId::as_str))
                .bind(grant.scopes.to_string())
                .bind(to_unix(grant.auth_time))
                .bind(to_unix(grant.created_at))
                .bind(to_unix(grant.expires_at))
                .bind(grant.revoked_at.map(to_unix))
                .bind(refresh.map(|t| t.token_hash.as_str()))
                .bind(refresh.map(|t| to_unix(t.expires_at))),
        )
        .await?;
        Ok(())
    }

    async fn get_grant(&self, id: &GrantId) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query_as::<_, GrantRecord>(GET_GRANT)
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await?;
        Ok(row)
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &TokenHash,
        client_id: &ClientId,
        new: &NewRefreshToken,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        // The gate: spends the token only if it is live, this client's, and its grant is live.
        // Spend it and store the successor in one trip (see each backend's `ROTATE`).
        let rotated = self
            .in_one_trip(
                sqlx::query(Self::ROTATE)
                    .bind(old_hash.as_str())
                    .bind(client_id.as_str())
                    .bind(to_unix(now))
                    .bind(new.token_hash.as_str())
                    .bind(to_unix(new.expires_at)),
            )
            .await?;
        if let Some(row) = rotated.first() {
            return Ok(Rotation::Rotated(sqlx::FromRow::from_row(row)?));
        }
        // Not live: a token already rotated is reuse (the family dies), anything else invalid.
        let mut tx = self.begin_write().await?;
        let presented = sqlx::query_as::<_, (String, String, Option<i64>)>(PRESENTED_REFRESH_TOKEN)
            .bind(old_hash.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        match presented {
            // RFC 9700 §4.14.2: a rotated token presented again means one copy was stolen, so
            // the family dies. Committed here; the caller still answers `invalid_grant`.
            Some((grant_id, owner, Some(_used_at))) if owner == client_id.as_str() => {
                let grant_id: GrantId = stored(&grant_id, "refresh_tokens", "grant_id")?;
                sqlx::query(REVOKE_GRANT)
                    .bind(grant_id.as_str())
                    .bind(to_unix(now))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Rotation::Reused { grant_id })
            }
            // Unknown, another client's (which must not let it kill the family), or expired.
            _ => Ok(Rotation::Invalid),
        }
    }

    async fn find_refresh_grant(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query_as::<_, GrantRecord>(FIND_REFRESH_GRANT)
            .bind(token_hash.as_str())
            .bind(to_unix(now))
            .fetch_optional(self.reader())
            .await?;
        Ok(row)
    }

    async fn revoke_grant(
        &self,
        grant_id: &GrantId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(REVOKE_LIVE_GRANT)
            .bind(grant_id.as_str())
            .bind(to_unix(now))
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(REVOKE_ACCESS_TOKEN)
            .bind(jti)
            .bind(to_unix(expires_at))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn check_access(
        &self,
        grant_id: &GrantId,
        jti: &str,
        now: OffsetDateTime,
    ) -> Result<AccessCheck, StoreError> {
        let user = sqlx::query_scalar::<_, String>(CHECK_ACCESS)
            .bind(grant_id.as_str())
            .bind(jti)
            .bind(to_unix(now))
            .fetch_optional(self.reader())
            .await?;
        Ok(match user {
            Some(user_id) => AccessCheck::Active {
                user_id: stored(&user_id, "grants", "user_id")?,
            },
            None => AccessCheck::Inactive,
        })
    }

    async fn find_token_holder(
        &self,
        grant_id: &GrantId,
        jti: &str,
        now: OffsetDateTime,
    ) -> Result<Option<TokenHolder>, StoreError> {
        Ok(sqlx::query_as::<_, TokenHolder>(TOKEN_HOLDER)
            .bind(grant_id.as_str())
            .bind(jti)
            .bind(to_unix(now))
            .fetch_optional(self.reader())
            .await?)
    }

    async fn gc(&self, now: OffsetDateTime, batch: u32) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for (statement, grace_secs) in GC {
            let done = sqlx::query(*statement)
                .bind(to_unix(now) - grace_secs)
                .bind(i64::from(batch))
                .execute(self.writer())
                .await?;
            deleted += done.rows_affected();
        }
        Ok(deleted)
    }
        }
    };
}
pub(super) use impl_store;

/// Emits the impl from the gathered methods, inside an anonymous `const` so that its imports
/// stay out of the backend module, plus the transaction helpers the methods share.
macro_rules! emit_store_impl {
    ($ty:ty, $db:ty; $($methods:tt)*) => {
        const _: () = {
            use $crate::domain::{ClientId, DiscordId, GrantId, PkceChallenge, Scopes, SessionId, TokenHash};
            use $crate::store::rows::{all_stored, stored};
            use $crate::store::sql::*;
            use $crate::store::{
                AccessCheck, AuthCodeRecord, ClientSignIn, CodeRedemption, ConsentRecord,
                EndedSession, GrantRecord,
                LogoutDelivery, MembershipSnapshot, NewRefreshToken, PendingLoginCap, PoolUsage, Rotation,
                SessionRecord, Store, StoreError, StoredUpstreamTokens, TokenHolder, UpstreamLogin,
                UserRecord, from_unix,
                to_unix,
            };
            use time::OffsetDateTime;

            #[async_trait::async_trait]
            impl Store for $ty {
                $($methods)*
            }

            impl $ty {
                /// Binds a person's profile as `$1`..`$8`, the columns both statements that
                /// write people start with (`UPSERT_USER`, `save_sign_in!`).
                fn bind_profile<'q>(
                    query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
                    user: &'q UserRecord,
                ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
                    query
                        .bind(user.id.as_str())
                        .bind(&user.username)
                        .bind(&user.global_name)
                        .bind(&user.avatar)
                        .bind(&user.email)
                        .bind(user.email_verified)
                        .bind(&user.locale)
                        .bind(to_unix(user.updated_at))
                }

                /// The clients that took part in a session, sorted here rather than by
                /// `ORDER BY` so both engines agree whatever the collation.
                async fn session_clients(
                    tx: &mut <$db as sqlx::Database>::Connection,
                    session_id: &SessionId,
                ) -> Result<Vec<ClientId>, StoreError> {
                    let clients = sqlx::query_scalar::<_, String>(SESSION_CLIENTS)
                        .bind(session_id.as_str())
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut clients: Vec<ClientId> =
                        all_stored(clients, "session_clients", "client_id")?;
                    clients.sort();
                    Ok(clients)
                }
            }
        };
    };
}
pub(super) use emit_store_impl;
