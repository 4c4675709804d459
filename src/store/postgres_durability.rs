//! Which of the Postgres store's writes wait for the WAL flush: a sign-in in progress does not,
//! what an app holds does. Runs on the cluster named by `GUILDGATE_TEST_POSTGRES_URL` (as
//! `.ci/run` sets it), on a throwaway database.

use super::PgStore;
use super::test_db::ThrowawayDb;
use crate::domain::{ClientId, DiscordId, GrantId, OpaqueToken, Scopes, SessionId};
use crate::store::{
    GrantRecord, NewRefreshToken, Rotation, SessionDevice, SessionRecord, Store, UserRecord,
};
use time::OffsetDateTime;

/// What `synchronous_commit` a statement on `pool` commits with.
async fn commit_mode(pool: &sqlx::PgPool) -> String {
    sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A store on a new throwaway database, migrated; `None` without a test cluster.
async fn migrated_store() -> Option<(ThrowawayDb, PgStore)> {
    let db = ThrowawayDb::create().await?;
    let store = PgStore::connect(&db.url, 4).await.unwrap();
    store.run_migrations().await.unwrap();
    Some((db, store))
}

/// A whole second (the stores keep Unix seconds), so a record read back compares equal.
fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap()
}

/// The person both tests write, already stored on the durable pool.
async fn stored_person(store: &PgStore, now: OffsetDateTime) -> DiscordId {
    let person = DiscordId::parse("80351110224678912").unwrap();
    let user = UserRecord {
        id: person.clone(),
        username: "nelly".into(),
        global_name: None,
        avatar: None,
        email: None,
        email_verified: false,
        locale: None,
        updated_at: now,
    };
    store.upsert_user(&user).await.unwrap();
    person
}

/// A new hour-long session of `person`, whose cookie secret is `secret`.
fn session_of(person: &DiscordId, secret: &OpaqueToken, now: OffsetDateTime) -> SessionRecord {
    SessionRecord {
        id: SessionId::generate(),
        secret_hash: secret.hash(),
        user_id: person.clone(),
        auth_time: now,
        created_at: now,
        expires_at: now + time::Duration::hours(1),
        last_seen_at: now,
        device: SessionDevice::default(),
    }
}

#[tokio::test]
async fn transient_writes_skip_the_flush_and_are_seen_at_once_while_durable_ones_wait() {
    let Some((db, store)) = migrated_store().await else {
        return;
    };

    assert_eq!(commit_mode(store.transient.pool()).await, "off");
    assert_eq!(commit_mode(store.pool.pool()).await, "on");

    // A session written on the transient pool is read at once on the durable one: the
    // commit skipped only the wait for the disk, not visibility.
    let now = now();
    let person = stored_person(&store, now).await;
    let secret = OpaqueToken::generate();
    let session = session_of(&person, &secret, now);
    store.insert_session(&session).await.unwrap();
    let found = store.find_session(&secret.hash(), now).await.unwrap();
    assert_eq!(found.map(|s| s.id), Some(session.id));

    store.pool.pool().close().await;
    store.transient.pool().close().await;
    db.drop_database().await;
}

/// What an app holds is written on the durable pool: with the transient pool closed, a sign-in
/// in progress can no longer write, while a grant and its refresh token, their rotation, a
/// consent and a revocation still commit.
#[tokio::test]
async fn grants_rotations_consents_and_revocations_are_written_on_the_durable_pool() {
    let Some((db, store)) = migrated_store().await else {
        return;
    };
    let now = now();
    let person = stored_person(&store, now).await;
    store.transient.pool().close().await;

    // The transient pool is really out of use: a new session cannot be written.
    let session = session_of(&person, &OpaqueToken::generate(), now);
    assert!(store.insert_session(&session).await.is_err());

    let client = ClientId::parse("app").unwrap();
    let scopes = Scopes::parse_request("openid offline_access");
    let grant = GrantRecord {
        id: GrantId::generate(),
        client_id: client.clone(),
        user_id: person.clone(),
        session_id: None,
        scopes,
        auth_time: now,
        created_at: now,
        expires_at: now + time::Duration::days(30),
        revoked_at: None,
        dpop_jkt: None,
    };
    let token = || NewRefreshToken {
        token_hash: OpaqueToken::generate().hash(),
        expires_at: now + time::Duration::days(1),
    };
    let first = token();
    store.insert_grant(&grant, Some(&first)).await.unwrap();
    let rotated = store
        .rotate_refresh_token(&first.token_hash, &client, &token(), now)
        .await
        .unwrap();
    assert!(matches!(rotated, Rotation::Rotated(_)));
    store
        .save_consent(&person, &client, scopes, now)
        .await
        .unwrap();
    assert_eq!(
        store.get_consent(&person, &client).await.unwrap(),
        Some(scopes)
    );
    assert!(store.revoke_grant(&grant.id, now).await.unwrap());

    store.pool.pool().close().await;
    db.drop_database().await;
}
