//! The `Store` implementation, written once: both backends run the same SQL, so each expands
//! these macros with its own types and provides only `pool`, `begin_write()` (how a writing
//! transaction starts) and `run_migrations()` (which folder).

/// Expands `impl Store for $ty` with every method: the core ones here and the lifecycle ones
/// from `lifecycle.rs`. `#[async_trait]` must see all methods in one impl, so the method
/// tokens are gathered through `with_lifecycle_methods!` and emitted by `emit_store_impl!`.
macro_rules! impl_store {
    ($ty:ty) => {
        super::lifecycle::with_lifecycle_methods! { emit_store_impl; $ty;

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.run_migrations().await
    }

    async fn upsert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        sqlx::query(UPSERT_USER)
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.global_name)
            .bind(&user.avatar)
            .bind(&user.email)
            .bind(user.email_verified)
            .bind(&user.locale)
            .bind(to_unix(user.updated_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn get_user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query_as::<_, UserRecord>(GET_USER)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    async fn insert_upstream_login(&self, login: &UpstreamLogin) -> Result<(), StoreError> {
        sqlx::query(INSERT_UPSTREAM_LOGIN)
            .bind(login.state_hash.as_str())
            .bind(login.binding_hash.as_str())
            .bind(&login.pkce_verifier)
            .bind(&login.request)
            .bind(to_unix(login.created_at))
            .bind(to_unix(login.expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
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
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT_SESSION)
            .bind(&session.id)
            .bind(session.secret_hash.as_str())
            .bind(&session.user_id)
            .bind(to_unix(session.auth_time))
            .bind(to_unix(session.created_at))
            .bind(to_unix(session.expires_at))
            .bind(to_unix(session.last_seen_at))
            .execute(&self.pool)
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
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    async fn touch_session(&self, id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(TOUCH_SESSION)
            .bind(id)
            .bind(to_unix(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_session_client(
        &self,
        session_id: &str,
        client_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(ADD_SESSION_CLIENT)
            .bind(session_id)
            .bind(client_id)
            .bind(to_unix(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn end_session(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<EndedSession>, StoreError> {
        let mut tx = self.begin_write().await?;
        let ended = sqlx::query_as::<_, SessionRecord>(END_SESSION)
            .bind(id)
            .bind(to_unix(now))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(session) = ended else {
            return Ok(None); // dropping `tx` rolls back
        };
        sqlx::query(REVOKE_SESSION_GRANTS)
            .bind(id)
            .bind(to_unix(now))
            .execute(&mut *tx)
            .await?;
        let mut clients = sqlx::query_scalar::<_, String>(SESSION_CLIENTS)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        // Sorted here, not by ORDER BY, so both backends agree whatever the collation.
        clients.sort();
        tx.commit().await?;
        Ok(Some(EndedSession { session, clients }))
    }

    async fn list_sessions(
        &self,
        user_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = match user_id {
            Some(user) => {
                sqlx::query_as::<_, SessionRecord>(LIST_USER_SESSIONS)
                    .bind(user)
                    .bind(to_unix(now))
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_as::<_, SessionRecord>(LIST_SESSIONS)
                    .bind(to_unix(now))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT_AUTH_CODE)
            .bind(code.code_hash.as_str())
            .bind(&code.client_id)
            .bind(&code.redirect_uri)
            .bind(&code.user_id)
            .bind(&code.session_id)
            .bind(&code.grant_id)
            .bind(&code.scopes)
            .bind(&code.nonce)
            .bind(&code.code_challenge)
            .bind(to_unix(code.auth_time))
            .bind(to_unix(code.created_at))
            .bind(to_unix(code.expires_at))
            .execute(&self.pool)
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
            .fetch_optional(&self.pool)
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
            .fetch_optional(&self.pool)
            .await?;
        Ok(match revoked {
            Some(grant_id) => CodeRedemption::Replayed { grant_id },
            None => CodeRedemption::Unknown,
        })
    }

    async fn insert_grant(
        &self,
        grant: &GrantRecord,
        refresh: Option<&NewRefreshToken>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(INSERT_GRANT)
            .bind(&grant.id)
            .bind(&grant.client_id)
            .bind(&grant.user_id)
            .bind(&grant.session_id)
            .bind(&grant.scopes)
            .bind(to_unix(grant.auth_time))
            .bind(to_unix(grant.created_at))
            .bind(to_unix(grant.expires_at))
            .bind(grant.revoked_at.map(to_unix))
            .execute(&mut *tx)
            .await?;
        if let Some(token) = refresh {
            insert_refresh_token(&mut tx, &grant.id, token, grant.created_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get_grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query_as::<_, GrantRecord>(GET_GRANT)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &TokenHash,
        client_id: &str,
        new: &NewRefreshToken,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut tx = self.begin_write().await?;
        // The gate: spends the token only if it is live, this client's, and its grant is live.
        let spent = sqlx::query_scalar::<_, String>(SPEND_REFRESH_TOKEN)
            .bind(old_hash.as_str())
            .bind(client_id)
            .bind(to_unix(now))
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(grant_id) = spent {
            insert_refresh_token(&mut tx, &grant_id, new, now).await?;
            let grant = sqlx::query_as::<_, GrantRecord>(GET_GRANT)
                .bind(&grant_id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Rotation::Rotated(grant));
        }
        let presented = sqlx::query_as::<_, (String, String, Option<i64>)>(PRESENTED_REFRESH_TOKEN)
            .bind(old_hash.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        match presented {
            // RFC 9700 §4.14.2: a rotated token presented again means one copy was stolen, so
            // the family dies. Committed here; the caller still answers `invalid_grant`.
            Some((grant_id, owner, Some(_used_at))) if owner == client_id => {
                sqlx::query(REVOKE_GRANT)
                    .bind(&grant_id)
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
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    async fn revoke_grant(&self, grant_id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query(REVOKE_LIVE_GRANT)
            .bind(grant_id)
            .bind(to_unix(now))
            .execute(&self.pool)
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn check_access(
        &self,
        grant_id: &str,
        jti: &str,
        now: OffsetDateTime,
    ) -> Result<AccessCheck, StoreError> {
        let user = sqlx::query_scalar::<_, String>(CHECK_ACCESS)
            .bind(grant_id)
            .bind(jti)
            .bind(to_unix(now))
            .fetch_optional(&self.pool)
            .await?;
        Ok(match user {
            Some(user_id) => AccessCheck::Active { user_id },
            None => AccessCheck::Inactive,
        })
    }

    async fn gc(&self, now: OffsetDateTime, batch: u32) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for statement in GC {
            let done = sqlx::query(*statement)
                .bind(to_unix(now))
                .bind(i64::from(batch))
                .execute(&self.pool)
                .await?;
            deleted += done.rows_affected();
        }
        Ok(deleted)
    }


        }
    };
}
pub(super) use impl_store;

/// Writes the impl from the gathered methods.
macro_rules! emit_store_impl {
    ($ty:ty; $($methods:tt)*) => {
        #[async_trait::async_trait]
        impl Store for $ty {
            $($methods)*
        }
    };
}
pub(super) use emit_store_impl;

/// Expands the transaction helpers for database `$db`.
macro_rules! impl_helpers {
    ($db:ty) => {
        async fn insert_refresh_token(
            tx: &mut sqlx::Transaction<'_, $db>,
            grant_id: &str,
            token: &NewRefreshToken,
            now: OffsetDateTime,
        ) -> Result<(), StoreError> {
            sqlx::query(INSERT_REFRESH_TOKEN)
                .bind(token.token_hash.as_str())
                .bind(grant_id)
                .bind(to_unix(now))
                .bind(to_unix(token.expires_at))
                .execute(&mut **tx)
                .await?;
            Ok(())
        }
    };
}
pub(super) use impl_helpers;

/// Expands the row decoders for row type `$row`.
macro_rules! impl_rows {
    ($row:ty) => {
        // ---- Rows: every time column is Unix seconds, every hash its stored text.

        impl FromRow<'_, $row> for UserRecord {
            fn from_row(r: &$row) -> Result<Self, sqlx::Error> {
                Ok(Self {
                    id: r.try_get("id")?,
                    username: r.try_get("username")?,
                    global_name: r.try_get("global_name")?,
                    avatar: r.try_get("avatar")?,
                    email: r.try_get("email")?,
                    email_verified: r.try_get("email_verified")?,
                    locale: r.try_get("locale")?,
                    updated_at: from_unix(r.try_get("updated_at")?),
                })
            }
        }

        impl FromRow<'_, $row> for UpstreamLogin {
            fn from_row(r: &$row) -> Result<Self, sqlx::Error> {
                Ok(Self {
                    state_hash: TokenHash::from_stored(r.try_get("state_hash")?),
                    binding_hash: TokenHash::from_stored(r.try_get("binding_hash")?),
                    pkce_verifier: r.try_get("pkce_verifier")?,
                    request: r.try_get("request")?,
                    created_at: from_unix(r.try_get("created_at")?),
                    expires_at: from_unix(r.try_get("expires_at")?),
                })
            }
        }

        impl FromRow<'_, $row> for SessionRecord {
            fn from_row(r: &$row) -> Result<Self, sqlx::Error> {
                Ok(Self {
                    id: r.try_get("id")?,
                    secret_hash: TokenHash::from_stored(r.try_get("secret_hash")?),
                    user_id: r.try_get("user_id")?,
                    auth_time: from_unix(r.try_get("auth_time")?),
                    created_at: from_unix(r.try_get("created_at")?),
                    expires_at: from_unix(r.try_get("expires_at")?),
                    last_seen_at: from_unix(r.try_get("last_seen_at")?),
                })
            }
        }

        impl FromRow<'_, $row> for AuthCodeRecord {
            fn from_row(r: &$row) -> Result<Self, sqlx::Error> {
                Ok(Self {
                    code_hash: TokenHash::from_stored(r.try_get("code_hash")?),
                    client_id: r.try_get("client_id")?,
                    redirect_uri: r.try_get("redirect_uri")?,
                    user_id: r.try_get("user_id")?,
                    session_id: r.try_get("session_id")?,
                    grant_id: r.try_get("grant_id")?,
                    scopes: r.try_get("scopes")?,
                    nonce: r.try_get("nonce")?,
                    code_challenge: r.try_get("code_challenge")?,
                    auth_time: from_unix(r.try_get("auth_time")?),
                    created_at: from_unix(r.try_get("created_at")?),
                    expires_at: from_unix(r.try_get("expires_at")?),
                })
            }
        }

        impl FromRow<'_, $row> for GrantRecord {
            fn from_row(r: &$row) -> Result<Self, sqlx::Error> {
                Ok(Self {
                    id: r.try_get("id")?,
                    client_id: r.try_get("client_id")?,
                    user_id: r.try_get("user_id")?,
                    session_id: r.try_get("session_id")?,
                    scopes: r.try_get("scopes")?,
                    auth_time: from_unix(r.try_get("auth_time")?),
                    created_at: from_unix(r.try_get("created_at")?),
                    expires_at: from_unix(r.try_get("expires_at")?),
                    revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_unix),
                })
            }
        }
    };
}
pub(super) use impl_rows;
