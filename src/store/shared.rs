//! The `Store` implementation, written once: both engines run the same SQL (`sql.rs`) and decode
//! the same rows (`rows.rs`), so the methods are macro text that each backend expands with its
//! own types. A backend provides how one statement runs with its [`Arg`](super::args::Arg)s
//! (`read_one`, `write_one`, `write`, and `in_one_trip` for several writes in one transaction),
//! `transient()` (where a sign-in in progress writes; see Postgres), `reader()` and `writer()`
//! (its sqlx pools, for the rest), `begin_write()` (how a writing transaction starts),
//! `run_migrations()` (which migrations) and the statements that differ per engine (`ROTATE`, `INSERT_GRANT`, `SAVE_SIGN_IN`, `SAVE_SIGN_IN_WITH_CODE`, `INSERT_AUTH_CODE`, `REDEEM_AUTH_CODE`, `CLAIM_LOGOUTS`).
//!
//! Why macros and not a generic `impl<DB: Database> Store`: sqlx's generic bounds (an executor
//! HRTB, `Encode + Type` for every bound type) are not implied by a helper trait, so they would
//! be spelled out on every generic item; the expanded code is plain concrete sqlx instead. Row
//! decoding has no such cost and is generic (`rows.rs`).

/// Writes `impl Store for $ty` on database `$db`: the core methods below plus the lifecycle ones
/// from `lifecycle.rs`. `#[async_trait]` must see every method in one impl, so the tokens are
/// gathered through `with_lifecycle_methods!` and emitted by `emit.rs`.
macro_rules! impl_store {
    ($ty:ty, $db:ty) => {
        $crate::store::lifecycle::with_lifecycle_methods! { $ty, $db;

    async fn ping(&self) -> Result<(), StoreError> {
        // Through the connections requests read on.
        self.read_one::<()>("SELECT 1", &[]).await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.run_migrations().await
    }

    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let applied = self.applied_migrations().await?;
        let known = Self::known_migrations();
        Ok(MigrationStatus {
            pending: known
                .iter()
                .filter(|(v, _)| !applied.contains(v))
                .cloned()
                .collect(),
            unknown: applied
                .iter()
                .filter(|v| !known.iter().any(|(k, _)| k == *v))
                .copied()
                .collect(),
            applied,
        })
    }

    async fn upsert_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.write(UPSERT_USER, &Self::profile(user)).await?;
        self.follower.forget(&[$crate::store::holder_cache::Changed::User(user.id.to_string())]);
        Ok(())
    }

    async fn save_sign_in(
        &self,
        sign_in: &NewSignIn<'_>,
        code: Option<&AuthCodeRecord>,
    ) -> Result<(), StoreError> {
        let NewSignIn { user, membership, tokens, session } = *sign_in;
        if session.user_id != user.id {
            return Err(StoreError::Conflict(
                "a sign-in's session must belong to its person".into(),
            ));
        }
        if code.is_some_and(|c| c.session_id != session.id || c.user_id != user.id) {
            return Err(StoreError::Conflict(
                "a sign-in's code must come from its session".into(),
            ));
        }
        // The code with its scopes written out, which its arguments borrow.
        let code = code.map(|c| (c, c.scopes.to_string()));
        let mut args = Vec::with_capacity(34);
        args.extend(Self::profile(user));
        args.extend([
            Arg::Text(&membership.snapshot),
            Arg::time(membership.fetched_at),
            Arg::OptBlob(tokens.map(|t| t.ciphertext.as_slice())),
            Arg::opt_time(tokens.map(|t| t.access_expires_at)),
        ]);
        args.extend(Self::session(session));
        // The person, the session and the code together, in one trip (see each backend).
        let script = match &code {
            Some((code, scopes)) => {
                args.extend(Self::auth_code(code, scopes));
                Self::SAVE_SIGN_IN_WITH_CODE
            }
            None => Self::SAVE_SIGN_IN,
        };
        self.transient().in_one_trip::<()>(script, &args).await?;
        self.follower.forget(&[$crate::store::holder_cache::Changed::User(user.id.to_string())]);
        Ok(())
    }

    async fn get_user(&self, id: &DiscordId) -> Result<Option<UserRecord>, StoreError> {
        self.read_one(GET_USER, &[Arg::Text(id.as_str())]).await
    }

    async fn insert_upstream_login(
        &self,
        login: &UpstreamLogin,
        cap: &PendingLoginCap<'_>,
    ) -> Result<bool, StoreError> {
        if let Some(previous) = cap.replaces {
            self.transient().write(FORGET_UPSTREAM_LOGINS, &[Arg::Text(previous.as_str())])
                .await?;
        }
        let inserted = self
            .transient()
            .write(
                INSERT_UPSTREAM_LOGIN,
                &[
                    Arg::Text(login.state_hash.as_str()),
                    Arg::Text(login.binding_hash.as_str()),
                    Arg::Text(login.pkce_verifier.expose()),
                    Arg::Text(&login.request),
                    Arg::time(login.created_at),
                    Arg::time(login.expires_at),
                    Arg::Text(cap.source),
                    Arg::Int(i64::from(cap.max_per_source)),
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn take_upstream_login(
        &self,
        state_hash: &TokenHash,
        binding_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<UpstreamLogin>, StoreError> {
        self.transient().write_one(
            TAKE_UPSTREAM_LOGIN,
            &[
                Arg::Text(state_hash.as_str()),
                Arg::Text(binding_hash.as_str()),
                Arg::time(now),
            ],
        )
        .await
    }

    async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.transient().write(INSERT_SESSION, &Self::session(session)).await?;
        Ok(())
    }

    async fn find_session(
        &self,
        secret_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.read_one(FIND_SESSION, &[Arg::Text(secret_hash.as_str()), Arg::time(now)])
            .await
    }

    async fn touch_session(&self, id: &SessionId, now: OffsetDateTime) -> Result<(), StoreError> {
        self.transient().write(TOUCH_SESSION, &[Arg::Text(id.as_str()), Arg::time(now)])
            .await?;
        Ok(())
    }

    async fn add_session_client(
        &self,
        session_id: &SessionId,
        client_id: &ClientId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.write(
            ADD_SESSION_CLIENT,
            &[
                Arg::Text(session_id.as_str()),
                Arg::Text(client_id.as_str()),
                Arg::time(now),
            ],
        )
        .await?;
        Ok(())
    }

    async fn insert_auth_code(&self, code: &AuthCodeRecord) -> Result<(), StoreError> {
        let scopes = code.scopes.to_string();
        // The code and its client's place in the session, in one trip (see each backend).
        self.transient()
            .in_one_trip::<()>(Self::INSERT_AUTH_CODE, &Self::auth_code(code, &scopes))
            .await?;
        Ok(())
    }

    async fn consume_auth_code(
        &self,
        code_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        // The gate: a single conditional UPDATE, so of concurrent callers exactly one sees the
        // row; the person comes back with it, so redeeming needs no second trip (see each backend).
        let spent = self
            .transient()
            .in_one_trip::<SpentCode>(
                Self::SPEND_AUTH_CODE,
                &[Arg::Text(code_hash.as_str()), Arg::time(now)],
            )
            .await?;
        if let Some(spent) = spent.into_iter().next() {
            return Ok(CodeRedemption::Redeemed(Box::new(spent)));
        }
        // RFC 6749 §4.1.2: a replayed code SHOULD revoke what it issued. One autocommitted
        // statement, so the revocation persists although the caller then fails the request.
        let revoked = self
            .write_one::<ReturnedGrantId>(
                REVOKE_REPLAYED_CODE_GRANT,
                &[
                    Arg::Text(code_hash.as_str()),
                    Arg::time(now),
                    Arg::Int(REPLAY_TOMBSTONE_SECS),
                ],
            )
            .await?;
        Ok(match revoked {
            Some(ReturnedGrantId(grant_id)) => {
                self.follower.forget(&[$crate::store::holder_cache::Changed::Grant(grant_id.to_string())]);
                CodeRedemption::Replayed { grant_id }
            }
            None => CodeRedemption::Unknown,
        })
    }

    async fn redeem_auth_code(
        &self,
        code_hash: &TokenHash,
        exchange: &CodeExchange<'_>,
        now: OffsetDateTime,
    ) -> Result<Option<SpentCode>, StoreError> {
        // On the durable connections: the grant is what the app will hold.
        let spent = self
            .in_one_trip::<SpentCode>(
                Self::REDEEM_AUTH_CODE,
                &[
                    Arg::Text(code_hash.as_str()),
                    Arg::time(now),
                    Arg::Text(exchange.client_id.as_str()),
                    Arg::Text(exchange.redirect_uri),
                    Arg::OptText(exchange.code_challenge.map(|c| c.as_str())),
                    Arg::OptText(exchange.proof.map(Jkt::as_str)),
                    Arg::Flag(exchange.offline_possible),
                    Arg::time(exchange.grant_expires_at),
                    Arg::OptText(exchange.grant_dpop_jkt.map(Jkt::as_str)),
                    Arg::OptText(exchange.refresh.map(|t| t.token_hash.as_str())),
                    Arg::opt_time(exchange.refresh.map(|t| t.expires_at)),
                ],
            )
            .await?;
        Ok(spent.into_iter().next())
    }

    async fn insert_grant(
        &self,
        grant: &GrantRecord,
        refresh: Option<&NewRefreshToken>,
    ) -> Result<(), StoreError> {
        let scopes = grant.scopes.to_string();
        // The grant and its first refresh token together, in one trip (see each backend).
        self.in_one_trip::<()>(
            Self::INSERT_GRANT,
            &[
                Arg::Text(grant.id.as_str()),
                Arg::Text(grant.client_id.as_str()),
                Arg::Text(grant.user_id.as_str()),
                Arg::OptText(grant.session_id.as_ref().map(SessionId::as_str)),
                Arg::Text(&scopes),
                Arg::time(grant.auth_time),
                Arg::time(grant.created_at),
                Arg::time(grant.expires_at),
                Arg::opt_time(grant.revoked_at),
                Arg::OptText(refresh.map(|t| t.token_hash.as_str())),
                Arg::opt_time(refresh.map(|t| t.expires_at)),
                Arg::OptText(grant.dpop_jkt.as_ref().map(Jkt::as_str)),
            ],
        )
        .await?;
        Ok(())
    }

    async fn get_grant(&self, id: &GrantId) -> Result<Option<GrantRecord>, StoreError> {
        self.read_one(GET_GRANT, &[Arg::Text(id.as_str())]).await
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
            .in_one_trip::<GrantRecord>(
                Self::ROTATE,
                &[
                    Arg::Text(old_hash.as_str()),
                    Arg::Text(client_id.as_str()),
                    Arg::time(now),
                    Arg::Text(new.token_hash.as_str()),
                    Arg::time(new.expires_at),
                ],
            )
            .await?;
        if let Some(grant) = rotated.into_iter().next() {
            return Ok(Rotation::Rotated(grant));
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
                self.follower.forget(&[$crate::store::holder_cache::Changed::Grant(grant_id.to_string())]);
                Ok(Rotation::Reused { grant_id })
            }
            // Unknown, another client's (which must not let it kill the family), or expired.
            _ => Ok(Rotation::Invalid),
        }
    }

    async fn rotate_refresh_token_fresh(
        &self,
        old_hash: &TokenHash,
        client_id: &ClientId,
        new: &NewRefreshToken,
        proof: Option<&Jkt>,
        fresh_since: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<Option<FreshRotation>, StoreError> {
        let rotated = self
            .in_one_trip::<FreshRotation>(
                Self::ROTATE_FRESH,
                &[
                    Arg::Text(old_hash.as_str()),
                    Arg::Text(client_id.as_str()),
                    Arg::time(now),
                    Arg::Text(new.token_hash.as_str()),
                    Arg::time(new.expires_at),
                    Arg::OptText(proof.map(Jkt::as_str)),
                    Arg::Int(fresh_since.map_or(-1, to_unix)),
                ],
            )
            .await?;
        Ok(rotated.into_iter().next())
    }

    async fn find_refresh_grant(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<GrantRecord>, StoreError> {
        self.read_one(
            FIND_REFRESH_GRANT,
            &[Arg::Text(token_hash.as_str()), Arg::time(now)],
        )
        .await
    }

    async fn find_refresh_holder(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<RefreshHolder>, StoreError> {
        self.read_one(
            FIND_REFRESH_HOLDER,
            &[Arg::Text(token_hash.as_str()), Arg::time(now)],
        )
        .await
    }

    async fn revoke_grant(
        &self,
        grant_id: &GrantId,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let changed = self
            .write(REVOKE_LIVE_GRANT, &[Arg::Text(grant_id.as_str()), Arg::time(now)])
            .await?;
        self.follower.forget(&[$crate::store::holder_cache::Changed::Grant(grant_id.to_string())]);
        Ok(changed > 0)
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.write(REVOKE_ACCESS_TOKEN, &[Arg::Text(jti), Arg::time(expires_at)])
            .await?;
        self.follower.forget(&[$crate::store::holder_cache::Changed::Jti(jti.to_owned())]);
        Ok(())
    }

    async fn check_access(
        &self,
        grant_id: &GrantId,
        jti: &str,
        now: OffsetDateTime,
    ) -> Result<AccessCheck, StoreError> {
        Ok(match self.find_token_holder(grant_id, jti, now).await? {
            Some(holder) => AccessCheck::Active {
                user_id: holder.user.id,
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
        // The statement runs only when memory cannot answer (see `Follower::token_holder`).
        let args = [Arg::Text(grant_id.as_str()), Arg::Text(jti), Arg::time(now)];
        let read = self.read_one(TOKEN_HOLDER_CACHEABLE, &args);
        self.follower.token_holder(grant_id, jti, now, read).await
    }

    async fn follow_changes(&self) -> Result<$crate::store::Followed, StoreError> {
        self.follower.follow(self).await
    }

    async fn announce_keys_changed(&self) -> Result<(), StoreError> {
        self.announce_keys().await
    }

    async fn checkpoint(&self) -> Result<Option<std::time::Duration>, StoreError> {
        self.checkpoint_wal().await
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
        Ok(deleted + self.forget_old_changes(batch).await?)
    }
        }
    };
}
pub(super) use impl_store;
