//! What a store remembers about live access tokens follows every change, whichever process made
//! it: two stores (two processes' worth) of one database, on Postgres and on one SQLite file
//! (the serving process and, beside it, an admin command).

use super::*;
use crate::test_db::backends;

/// A store of another process on the same database.
async fn another_process(t: &Fixture) -> Arc<dyn Store> {
    let other = connect(&t.db.url, 2)
        .await
        .expect("a second connection pool");
    other.follow_changes().await.expect("finds the feed's end");
    other
}

/// A live token of a live grant (jti `j1`), read once by `reader` so that it may keep it.
async fn token_read_by(t: &Fixture, reader: &dyn Store) -> (GrantRecord, SessionRecord) {
    let (_, s) = signed_in(&*t.store, ADA).await;
    let g = grant(CLIENT, &s);
    t.store.insert_grant(&g, None).await.unwrap();
    reader.follow_changes().await.unwrap();
    assert!(
        reader
            .find_token_holder(&g.id, "j1", NOW)
            .await
            .unwrap()
            .is_some()
    );
    (g, s)
}

#[tokio::test]
async fn a_revocation_in_one_process_ends_the_token_in_every_other_after_one_feed_read() {
    for backend in backends() {
        let changes: [(&str, ChangeOf); 5] = [
            ("the grant revoked", |g, _| Change::Grant(g.id.clone())),
            ("the session ended", |_, s| Change::Session(s.id.clone())),
            ("the jti revoked", |_, _| Change::Jti),
            ("every session of the person ended", |_, _| Change::Person),
            ("the app revoked on the account page", |_, _| {
                Change::AppRevoked
            }),
        ];
        for (what, change) in changes {
            // Arrange: process B has read (and may keep) the token's answer.
            let t = fixture(backend).await;
            let b = another_process(&t).await;
            let (g, s) = token_read_by(&t, &*b).await;

            // Act: process A makes the change; B reads the feed once.
            match change(&g, &s) {
                Change::Grant(id) => assert!(t.store.revoke_grant(&id, NOW).await.unwrap()),
                Change::Session(id) => {
                    assert!(t.store.end_session(&id, NOW).await.unwrap().is_some());
                }
                Change::Jti => t
                    .store
                    .revoke_access_token("j1", NOW + Duration::minutes(10))
                    .await
                    .unwrap(),
                Change::Person => {
                    t.store.end_user_sessions(&person(ADA), NOW).await.unwrap();
                }
                Change::AppRevoked => {
                    let revoked = t
                        .store
                        .revoke_client_grants(&person(ADA), &client(CLIENT), NOW)
                        .await
                        .unwrap();
                    assert_eq!(revoked, vec![g.id.clone()]);
                }
            }
            b.follow_changes().await.unwrap();

            // Assert
            assert!(
                b.find_token_holder(&g.id, "j1", NOW)
                    .await
                    .unwrap()
                    .is_none(),
                "{backend:?}: {what}"
            );
            assert!(
                matches!(
                    b.check_access(&g.id, "j1", NOW).await.unwrap(),
                    guildgate::store::AccessCheck::Inactive
                ),
                "{backend:?}: {what} (introspection)"
            );
        }
    }
}

/// The change a case makes, from the token's grant and session.
type ChangeOf = fn(&GrantRecord, &SessionRecord) -> Change;

enum Change {
    Grant(GrantId),
    Session(SessionId),
    Jti,
    Person,
    AppRevoked,
}

#[tokio::test]
async fn a_changed_profile_or_membership_reaches_every_process_after_one_feed_read() {
    for backend in backends() {
        // Arrange
        let t = fixture(backend).await;
        let b = another_process(&t).await;
        let (g, _) = token_read_by(&t, &*b).await;

        // Act: a new display name (a sign-in's upsert), then a re-checked membership.
        let renamed = UserRecord {
            global_name: Some("Ada L.".to_owned()),
            ..user(ADA)
        };
        t.store.upsert_user(&renamed).await.unwrap();
        b.follow_changes().await.unwrap();
        let after_rename = b.find_token_holder(&g.id, "j1", NOW).await.unwrap();
        let snapshot = guildgate::store::MembershipSnapshot {
            snapshot: r#"{"guilds":["1"],"roles":{}}"#.to_owned(),
            fetched_at: NOW,
        };
        t.store
            .save_membership(&person(ADA), &snapshot)
            .await
            .unwrap();
        b.follow_changes().await.unwrap();
        let after_recheck = b.find_token_holder(&g.id, "j1", NOW).await.unwrap();

        // Assert
        assert_eq!(
            after_rename.expect("live").user.global_name.as_deref(),
            Some("Ada L."),
            "{backend:?}"
        );
        assert_eq!(
            after_recheck.expect("live").membership.map(|m| m.snapshot),
            Some(snapshot.snapshot.clone()),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn a_process_that_cannot_read_the_feed_asks_the_database() {
    for backend in backends() {
        // Arrange: B keeps the token's answer, then stops reading the feed (it is not called
        // again) while A revokes the grant.
        let t = fixture(backend).await;
        let b = another_process(&t).await;
        let (g, _) = token_read_by(&t, &*b).await;
        t.store.revoke_grant(&g.id, NOW).await.unwrap();

        // Act: a second after its last read of the feed, B answers from the database.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let answer = b.find_token_holder(&g.id, "j1", NOW).await.unwrap();

        // Assert
        assert!(
            answer.is_none(),
            "{backend:?}: no stale answer past the bound"
        );
    }
}

#[tokio::test]
async fn a_key_change_announced_by_one_process_is_read_by_the_others_once() {
    for backend in backends() {
        // Arrange
        let t = fixture(backend).await;
        let b = another_process(&t).await;

        // Act
        t.store.announce_keys_changed().await.unwrap();
        let first = b.follow_changes().await.unwrap();
        let second = b.follow_changes().await.unwrap();

        // Assert: the other process is told once (on SQLite: `keys revoke` run beside the
        // serving process).
        assert!(first.keys_changed, "{backend:?}");
        assert!(!second.keys_changed, "{backend:?}: read once");
    }
}
