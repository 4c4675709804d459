//! Which of the Postgres store's writes wait for the WAL flush: a sign-in in progress does not,
//! what an app holds does. Runs on the cluster named by `GUILDGATE_TEST_POSTGRES_URL` (as
//! `.ci/run` sets it), on a throwaway database.

use super::PgStore;
use super::test_db::ThrowawayDb;
use crate::domain::{DiscordId, OpaqueToken, SessionId};
use crate::store::{SessionDevice, SessionRecord, Store, UserRecord};
use time::OffsetDateTime;

/// What `synchronous_commit` a statement on `pool` commits with.
async fn commit_mode(pool: &sqlx::PgPool) -> String {
    sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn transient_writes_skip_the_flush_and_are_seen_at_once_while_durable_ones_wait() {
    let Some(db) = ThrowawayDb::create().await else {
        return;
    };
    let store = PgStore::connect(&db.url, 4).await.unwrap();
    store.run_migrations().await.unwrap();

    assert_eq!(commit_mode(&store.transient).await, "off");
    assert_eq!(commit_mode(&store.pool).await, "on");

    // A session written on the transient pool is read at once on the durable one: the
    // commit skipped only the wait for the disk, not visibility.
    let now =
        OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    let person = DiscordId::parse("80351110224678912").unwrap();
    let secret = OpaqueToken::generate();
    let session = SessionRecord {
        id: SessionId::generate(),
        secret_hash: secret.hash(),
        user_id: person.clone(),
        auth_time: now,
        created_at: now,
        expires_at: now + time::Duration::hours(1),
        last_seen_at: now,
        device: SessionDevice::default(),
    };
    let user = UserRecord {
        id: person,
        username: "nelly".into(),
        global_name: None,
        avatar: None,
        email: None,
        email_verified: false,
        locale: None,
        updated_at: now,
    };
    store.upsert_user(&user).await.unwrap();
    store.insert_session(&session).await.unwrap();
    let found = store.find_session(&secret.hash(), now).await.unwrap();
    assert_eq!(found.map(|s| s.id), Some(session.id));

    store.pool.close().await;
    store.transient.close().await;
    db.drop_database().await;
}
