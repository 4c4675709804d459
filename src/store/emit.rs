//! Emits `impl Store` from the methods `shared.rs`, `lifecycle.rs` and `pending.rs` gather:
//! inside an anonymous `const` with the imports they use, beside the argument and transaction
//! helpers they share.

/// Emits the impl from the gathered methods, inside an anonymous `const` so that its imports
/// stay out of the backend module, plus the transaction helpers the methods share.
macro_rules! emit_store_impl {
    ($ty:ty, $db:ty; $($methods:tt)*) => {
        const _: () = {
            use $crate::domain::{ClientId, DiscordId, GrantId, Jkt, PkceChallenge, Scopes, SessionId, TokenHash};
            use $crate::store::args::Arg;
            use $crate::store::rows::{
                ConsentScopes, ReturnedGrantId, StoredMembership, all_stored, stored,
            };
            use $crate::store::sql::*;
            use $crate::store::{
                AccessCheck, AuthCodeRecord, ClientSignIn, CodeExchange, CodeRedemption, ConsentRecord,
                EndedSession, FreshRotation, GrantRecord, MigrationStatus,
                LogoutDelivery, MembershipSnapshot, NewRefreshToken, NewSignIn, PendingLoginCap, PoolUsage, RefreshHolder, Rotation,
                SessionRecord, SpentCode, Store, StoreError, StoredUpstreamTokens, TokenHolder, UpstreamLogin,
                UserRecord, from_unix,
                to_unix,
            };
            use time::OffsetDateTime;

            #[async_trait::async_trait]
            impl Store for $ty {
                $($methods)*
            }

            impl $ty {
                /// A person's profile as `$1`..`$8`, the columns both statements that write
                /// people start with (`UPSERT_USER`, `save_sign_in!`).
                fn profile(user: &UserRecord) -> [Arg<'_>; 8] {
                    [
                        Arg::Text(user.id.as_str()),
                        Arg::Text(&user.username),
                        Arg::OptText(user.global_name.as_deref()),
                        Arg::OptText(user.avatar.as_deref()),
                        Arg::OptText(user.email.as_deref()),
                        Arg::Flag(user.email_verified),
                        Arg::OptText(user.locale.as_deref()),
                        Arg::time(user.updated_at),
                    ]
                }

                /// A session's columns as `INSERT_SESSION` lists them (`insert_signed_in_session!`
                /// the same, from `$13`).
                fn session(session: &SessionRecord) -> [Arg<'_>; 9] {
                    [
                        Arg::Text(session.id.as_str()),
                        Arg::Text(session.secret_hash.as_str()),
                        Arg::Text(session.user_id.as_str()),
                        Arg::time(session.auth_time),
                        Arg::time(session.created_at),
                        Arg::time(session.expires_at),
                        Arg::time(session.last_seen_at),
                        Arg::OptText(session.device.user_agent.as_deref()),
                        Arg::OptText(session.device.ip.as_deref()),
                    ]
                }

                /// A code's columns as `insert_auth_code!` lists them
                /// (`insert_signed_in_code!` the same, from `$22`); `scopes` is the code's,
                /// written out.
                fn auth_code<'a>(code: &'a AuthCodeRecord, scopes: &'a str) -> [Arg<'a>; 13] {
                    [
                        Arg::Text(code.code_hash.as_str()),
                        Arg::Text(code.client_id.as_str()),
                        Arg::Text(&code.redirect_uri),
                        Arg::Text(code.user_id.as_str()),
                        Arg::Text(code.session_id.as_str()),
                        Arg::Text(code.grant_id.as_str()),
                        Arg::Text(scopes),
                        Arg::OptText(code.nonce.as_deref()),
                        Arg::OptText(code.code_challenge.as_ref().map(PkceChallenge::as_str)),
                        Arg::time(code.auth_time),
                        Arg::time(code.created_at),
                        Arg::time(code.expires_at),
                        Arg::OptText(code.dpop_jkt.as_ref().map(Jkt::as_str)),
                    ]
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
