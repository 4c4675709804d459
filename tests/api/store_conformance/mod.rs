//! One behaviour suite for the `Store` trait, run against every backend in `backends()`.
//!
//! Each test loops over the backends on a fresh database; the backend under test is printed
//! first, so a failure's captured output says which one broke. This file holds the fixtures;
//! the tests are grouped by what they exercise.

mod account;
mod changes;
mod code_exchange;
mod codes;
mod connect;
mod fresh_rotation;
mod gc;
mod grants;
mod logout_queue;
mod people;
mod sessions;
mod unreadable;

use crate::test_db::{Backend, TestDb, fresh_database};
use guildgate::domain::{
    ClientId, DiscordId, GrantId, OpaqueToken, PkceChallenge, PkceVerifier, Scopes, SessionId,
    TokenHash,
};
use guildgate::store::{
    AuthCodeRecord, GrantRecord, NewRefreshToken, PendingLoginCap, SessionDevice, SessionRecord,
    Store, UpstreamLogin, UserRecord, connect,
};
use std::sync::Arc;
use time::{Duration, OffsetDateTime, macros::datetime};

const NOW: OffsetDateTime = datetime!(2030-01-01 12:00 UTC);
const CLIENT: &str = "wiki";

/// The suite's people (Discord snowflakes).
const ADA: &str = "100000000000001001";
/// Another person.
const BEN: &str = "100000000000002002";
/// A third person.
const CAL: &str = "100000000000003003";
/// A person whose re-check lease is taken.
const DEE: &str = "100000000000001002";
/// Nobody the store has seen.
const NOBODY: &str = "100000000000000009";

/// A Discord id as the store takes it.
fn person(raw: &str) -> DiscordId {
    DiscordId::parse(raw).expect("a snowflake")
}

/// A client id as the store takes it.
fn client(raw: &str) -> ClientId {
    ClientId::parse(raw).expect("a client id")
}

/// A scope set as the store takes it.
fn scopes(raw: &str) -> Scopes {
    Scopes::from_stored(raw).expect("supported scopes")
}

struct Fixture {
    // Declared before `db` so the pool closes before the database is dropped.
    store: Arc<dyn Store>,
    db: TestDb,
}

impl Fixture {
    /// Runs `sql` on a connection of its own, behind the store's back: for rows guildgate
    /// itself would never write.
    async fn tamper(&self, sql: &'static str) {
        use sqlx::Connection;
        if self.db.url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.db.url)
                .await
                .expect("connect to the SQLite file");
            sqlx::raw_sql(sql).execute(&mut conn).await.expect("tamper");
            conn.close().await.expect("close");
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.db.url)
                .await
                .expect("connect to the Postgres database");
            sqlx::raw_sql(sql).execute(&mut conn).await.expect("tamper");
            conn.close().await.expect("close");
        }
    }
}

async fn fixture(backend: Backend) -> Fixture {
    println!("store conformance on {backend:?}");
    let db = fresh_database(backend).await;
    let store = connect(&db.url, 5)
        .await
        .expect("connect to the test database");
    store.migrate().await.expect("migrate the test database");
    Fixture { store, db }
}

fn user(id: &str) -> UserRecord {
    UserRecord {
        id: person(id),
        username: format!("user{id}"),
        global_name: Some("Ada".to_owned()),
        avatar: None,
        email: Some(format!("{id}@example.com")),
        email_verified: true,
        locale: Some("en-GB".to_owned()),
        updated_at: NOW,
    }
}

fn session(user_id: &str, expires_at: OffsetDateTime) -> (OpaqueToken, SessionRecord) {
    let secret = OpaqueToken::generate();
    let record = SessionRecord {
        id: SessionId::generate(),
        secret_hash: secret.hash(),
        user_id: person(user_id),
        auth_time: NOW,
        created_at: NOW,
        expires_at,
        last_seen_at: NOW,
        device: SessionDevice::default(),
    };
    (secret, record)
}

fn grant(client_id: &str, s: &SessionRecord) -> GrantRecord {
    GrantRecord {
        id: GrantId::generate(),
        client_id: client(client_id),
        user_id: s.user_id.clone(),
        session_id: Some(s.id.clone()),
        scopes: scopes("openid profile"),
        auth_time: s.auth_time,
        created_at: NOW,
        expires_at: NOW + Duration::days(30),
        revoked_at: None,
        dpop_jkt: None,
    }
}

fn code(s: &SessionRecord, expires_at: OffsetDateTime) -> (TokenHash, AuthCodeRecord) {
    let hash = OpaqueToken::generate().hash();
    let record = AuthCodeRecord {
        code_hash: hash.clone(),
        client_id: client(CLIENT),
        redirect_uri: "https://wiki.example.com/cb".to_owned(),
        user_id: s.user_id.clone(),
        session_id: s.id.clone(),
        grant_id: GrantId::generate(),
        scopes: scopes("openid"),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        code_challenge: Some(
            PkceChallenge::parse_s256("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
                .expect("an S256 challenge"),
        ),
        dpop_jkt: None,
        auth_time: NOW,
        created_at: NOW,
        expires_at,
    };
    (hash, record)
}

fn refresh(expires_at: OffsetDateTime) -> (TokenHash, NewRefreshToken) {
    let hash = OpaqueToken::generate().hash();
    (
        hash.clone(),
        NewRefreshToken {
            token_hash: hash,
            expires_at,
        },
    )
}

/// A Discord login pending for 10 minutes, keyed by the hashes of `state` and `binding`.
/// A pending-login cap no test reaches.
const NO_CAP: PendingLoginCap<'static> = PendingLoginCap {
    source: "192.0.2.1",
    max_per_source: 1000,
    replaces: None,
};

fn pending_login(state: &str, binding: &str) -> UpstreamLogin {
    UpstreamLogin {
        state_hash: TokenHash::of(state),
        binding_hash: TokenHash::of(binding),
        pkce_verifier: PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
            .expect("a verifier"),
        request: r#"{"client_id":"wiki"}"#.to_owned(),
        created_at: NOW,
        expires_at: NOW + Duration::minutes(10),
    }
}

/// How many of ten concurrent `attempt`s on `store` succeed.
async fn successes_of_ten<F, Fut>(store: &Arc<dyn Store>, attempt: F) -> usize
where
    F: Fn(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let racers: Vec<_> = (0..10)
        .map(|_| tokio::spawn(attempt(Arc::clone(store))))
        .collect();
    let mut succeeded = 0;
    for racer in racers {
        if racer.await.expect("a racer finishes") {
            succeeded += 1;
        }
    }
    succeeded
}

/// A user with a live session (12 h), ready for codes and grants.
async fn signed_in(store: &dyn Store, user_id: &str) -> (OpaqueToken, SessionRecord) {
    store.upsert_user(&user(user_id)).await.unwrap();
    let (secret, s) = session(user_id, NOW + Duration::hours(12));
    store.insert_session(&s).await.unwrap();
    (secret, s)
}

/// A live grant under a fresh session, with its first refresh token (1 day idle expiry).
async fn granted(store: &dyn Store) -> (GrantRecord, TokenHash) {
    let (_, s) = signed_in(store, "80351110224678912").await;
    let g = grant(CLIENT, &s);
    let (token, first) = refresh(NOW + Duration::days(1));
    store.insert_grant(&g, Some(&first)).await.unwrap();
    (g, token)
}
