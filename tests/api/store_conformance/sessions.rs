//! SSO sessions: lookup by secret, use, listing, and ending one or all of a person's.

use super::{ADA, BEN, CLIENT, NOW, client, fixture, grant, person, session, signed_in};
use crate::test_db::backends;
use futures_util::FutureExt;
use guildgate::domain::{SessionId, TokenHash};
use guildgate::store::{AccessCheck, GrantRecord, SessionRecord, StoreError};
use time::Duration;

#[tokio::test]
async fn find_session_returns_only_live_sessions_by_secret() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (secret, s) = signed_in(&*t.store, ADA).await;

        let found = t.store.find_session(&secret.hash(), NOW).await.unwrap();
        let wrong = t
            .store
            .find_session(&TokenHash::of("guess"), NOW)
            .await
            .unwrap();
        let expired = t
            .store
            .find_session(&secret.hash(), s.expires_at)
            .await
            .unwrap();

        assert_eq!(found, Some(s));
        assert_eq!(wrong, None);
        assert_eq!(expired, None, "a session is dead at its expires_at");
    }
}

#[tokio::test]
async fn touch_session_records_the_last_use() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (secret, s) = signed_in(&*t.store, ADA).await;
        let later = NOW + Duration::minutes(5);

        t.store.touch_session(&s.id, later).await.unwrap();

        let found = t
            .store
            .find_session(&secret.hash(), later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.last_seen_at, later);
    }
}

#[tokio::test]
async fn insert_session_with_a_taken_secret_is_a_conflict() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let twin = SessionRecord {
            id: SessionId::parse("another-id").unwrap(),
            ..s
        };

        let result = t.store.insert_session(&twin).await;

        assert!(
            matches!(result, Err(StoreError::Conflict(_))),
            "got {result:?}"
        );
    }
}

#[tokio::test]
async fn end_session_returns_its_clients_and_revokes_its_grants() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (secret, s) = signed_in(&*t.store, ADA).await;
        for name in ["wiki", "forum", "wiki"] {
            t.store
                .add_session_client(&s.id, &client(name), NOW)
                .await
                .unwrap();
        }
        let g = grant(CLIENT, &s);
        t.store.insert_grant(&g, None).await.unwrap();
        let later = NOW + Duration::minutes(1);

        let ended = t
            .store
            .end_session(&s.id, later)
            .await
            .unwrap()
            .expect("a live session");

        assert_eq!(ended.session, s);
        assert_eq!(ended.clients, vec![client("forum"), client("wiki")]);
        assert_eq!(
            t.store.find_session(&secret.hash(), later).await.unwrap(),
            None
        );
        assert_eq!(
            t.store.check_access(&g.id, "jti-1", later).await.unwrap(),
            AccessCheck::Inactive
        );
        let revoked = t.store.get_grant(&g.id).await.unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(later));
        assert_eq!(
            t.store.end_session(&s.id, later).await.unwrap(),
            None,
            "already ended"
        );
        assert_eq!(
            t.store
                .end_session(&SessionId::parse("no-such-id").unwrap(), later)
                .await
                .unwrap(),
            None
        );
    }
}

#[tokio::test]
async fn list_sessions_returns_live_sessions_newest_first_filtered_by_user() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, ada_old) = signed_in(&*t.store, ADA).await;
        let (_, mut ada_new) = session(ADA, NOW + Duration::hours(12));
        ada_new.created_at = NOW + Duration::minutes(1);
        t.store.insert_session(&ada_new).await.unwrap();
        let (_, bob) = signed_in(&*t.store, BEN).await;
        let (_, ended) = signed_in(&*t.store, ADA).await;
        t.store.end_session(&ended.id, NOW).await.unwrap();
        let (_, expired) = session(ADA, NOW);
        t.store.insert_session(&expired).await.unwrap();

        let adas = t
            .store
            .list_sessions(Some(&person(ADA)), NOW)
            .await
            .unwrap();
        let everyone = t.store.list_sessions(None, NOW).await.unwrap();

        assert_eq!(adas, vec![ada_new.clone(), ada_old.clone()]);
        let ids: Vec<_> = everyone.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids.len(),
            3,
            "ended and expired sessions are not listed: {ids:?}"
        );
        assert_eq!(ids[0], ada_new.id.as_str());
        assert!(ids.contains(&bob.id.as_str()) && ids.contains(&ada_old.id.as_str()));
    }
}

#[tokio::test]
async fn end_user_sessions_ends_every_session_and_revokes_every_grant_of_the_person() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, first) = signed_in(&*t.store, ADA).await;
        let (_, mut second) = session(ADA, NOW + Duration::hours(12));
        second.created_at = NOW + Duration::minutes(1);
        t.store.insert_session(&second).await.unwrap();
        let (_, bobs) = signed_in(&*t.store, BEN).await;
        for (s, name) in [(&first, "wiki"), (&first, "forum"), (&second, "wiki")] {
            t.store
                .add_session_client(&s.id, &client(name), NOW)
                .await
                .unwrap();
        }
        let with_session = grant(CLIENT, &first);
        let offline = GrantRecord {
            session_id: None,
            ..grant("forum", &first)
        };
        let bobs_grant = grant(CLIENT, &bobs);
        for g in [&with_session, &offline, &bobs_grant] {
            t.store.insert_grant(g, None).await.unwrap();
        }
        let later = NOW + Duration::minutes(5);

        let ended = t
            .store
            .end_user_sessions(&person(ADA), later)
            .await
            .unwrap();

        let summary: Vec<_> = ended
            .iter()
            .map(|e| (e.session.clone(), e.clients.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (second, vec![client("wiki")]),
                (first, vec![client("forum"), client("wiki")]),
            ],
            "newest first, each with its clients sorted"
        );
        assert_eq!(
            t.store
                .list_sessions(Some(&person(ADA)), later)
                .await
                .unwrap(),
            vec![]
        );
        for g in [&with_session, &offline] {
            let revoked = t.store.get_grant(&g.id).await.unwrap().unwrap();
            assert_eq!(revoked.revoked_at, Some(later), "grant {g:?}");
            let check = t.store.check_access(&g.id, "jti", later).await.unwrap();
            assert_eq!(check, AccessCheck::Inactive);
        }
        assert_eq!(
            t.store
                .list_sessions(Some(&person(BEN)), later)
                .await
                .unwrap(),
            vec![bobs],
            "another person's session stays"
        );
        let bobs_check = t.store.check_access(&bobs_grant.id, "jti", later).await;
        assert!(matches!(bobs_check.unwrap(), AccessCheck::Active { .. }));
        let again = t
            .store
            .end_user_sessions(&person(ADA), later)
            .await
            .unwrap();
        assert_eq!(again, vec![], "nothing left to end");
    }
}

/// A request's write arriving while a bulk operation holds its writing transaction waits for it
/// and lands; it neither fails on the file lock nor blocks the thread that transaction needs.
/// (SQLite runs the two on different connections: they share one write lease.) A
/// current-thread runtime, as each HTTP worker is.
#[tokio::test]
async fn writes_during_a_bulk_transaction_wait_for_it_and_all_land() {
    for backend in backends() {
        let t = fixture(backend).await;
        signed_in(&*t.store, ADA).await;
        signed_in(&*t.store, BEN).await;
        let later = NOW + Duration::minutes(5);
        let ben = person(BEN);
        // SQLite: another connection holds the file's write lock first, so the bulk operation
        // is certainly mid-transaction (holding the write lease, its `BEGIN` waiting for the
        // file) when the writes arrive, however fast the machine.
        let blocker = t.db.url.strip_prefix("sqlite://").map(|file| {
            let blocker = rusqlite::Connection::open(file).unwrap();
            blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
            blocker
        });
        let mut bulk = std::pin::pin!(t.store.end_user_sessions(&ben, later));
        // Start the bulk operation: it opens its transaction and waits for the database.
        assert!((&mut bulk).now_or_never().is_none());
        let new_sessions: Vec<SessionRecord> = (0..20)
            .map(|_| session(ADA, NOW + Duration::hours(12)).1)
            .collect();
        let mut writes = std::pin::pin!(futures_util::future::join_all(
            new_sessions.iter().map(|s| t.store.insert_session(s))
        ));
        if let Some(blocker) = blocker {
            // The writes queue behind the bulk operation rather than failing or holding this
            // thread in SQLite's busy handler (which would never return: the bulk operation
            // needs this thread to go on).
            assert!(
                (&mut writes).now_or_never().is_none(),
                "the writes wait for the bulk operation"
            );
            blocker.execute_batch("ROLLBACK").unwrap();
        }
        let (ended, written) = tokio::join!(bulk, writes);
        assert_eq!(ended.unwrap().len(), 1, "BEN's one session ended");
        for w in written {
            w.unwrap();
        }
        let live = t
            .store
            .list_sessions(Some(&person(ADA)), later)
            .await
            .unwrap();
        assert_eq!(
            live.len(),
            21,
            "ADA's first session and the 20 written meanwhile"
        );
    }
}
