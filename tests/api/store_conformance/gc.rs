//! Clean-up: what `gc` deletes, what it keeps, and its batch bound.

use super::{
    ADA, CLIENT, NO_CAP, NOW, client, code, fixture, grant, pending_login, person, session, user,
};
use crate::test_db::backends;
use guildgate::domain::TokenHash;
use guildgate::store::{AccessCheck, CodeRedemption, GrantRecord, LogoutDelivery};
use time::Duration;

#[tokio::test]
async fn gc_removes_expired_rows_and_keeps_live_ones() {
    for backend in backends() {
        let t = fixture(backend).await;
        let later = NOW + Duration::days(2);
        let (_, live_session) = session(ADA, later + Duration::hours(1));
        let (_, dead_session) = session(ADA, NOW + Duration::hours(1));
        t.store.upsert_user(&user(ADA)).await.unwrap();
        t.store.insert_session(&live_session).await.unwrap();
        t.store.insert_session(&dead_session).await.unwrap();
        let (live_code, c1) = code(&live_session, later + Duration::seconds(60));
        let (dead_code, c2) = code(&live_session, NOW + Duration::seconds(60));
        t.store.insert_auth_code(&c1).await.unwrap();
        t.store.insert_auth_code(&c2).await.unwrap();
        let dead_grant = GrantRecord {
            expires_at: NOW + Duration::days(1),
            ..grant(CLIENT, &live_session)
        };
        let live_grant = grant(CLIENT, &live_session);
        t.store.insert_grant(&dead_grant, None).await.unwrap();
        t.store.insert_grant(&live_grant, None).await.unwrap();
        t.store
            .revoke_access_token("old-jti", NOW + Duration::minutes(10))
            .await
            .unwrap();
        t.store
            .revoke_access_token("new-jti", later + Duration::minutes(10))
            .await
            .unwrap();
        let login = pending_login("s", "b");
        assert!(
            t.store
                .insert_upstream_login(&login, &NO_CAP)
                .await
                .unwrap()
        );

        let deleted = t.store.gc(later, 100).await.unwrap();

        assert_eq!(
            deleted, 5,
            "one code, one login, one grant, one session, one jti"
        );
        let (s, b) = (TokenHash::of("s"), TokenHash::of("b"));
        assert_eq!(
            t.store.take_upstream_login(&s, &b, NOW).await.unwrap(),
            None
        );
        assert_eq!(
            t.store.consume_auth_code(&dead_code, NOW).await.unwrap(),
            CodeRedemption::Unknown
        );
        assert!(matches!(
            t.store.consume_auth_code(&live_code, later).await.unwrap(),
            CodeRedemption::Redeemed(_)
        ));
        assert_eq!(t.store.get_grant(&dead_grant.id).await.unwrap(), None);
        assert_eq!(
            t.store.get_grant(&live_grant.id).await.unwrap(),
            Some(live_grant.clone())
        );
        assert_eq!(
            t.store
                .list_sessions(Some(&person(ADA)), NOW)
                .await
                .unwrap(),
            vec![live_session]
        );
        let check = |jti| t.store.check_access(&live_grant.id, jti, later);
        assert_eq!(
            check("old-jti").await.unwrap(),
            AccessCheck::Active {
                user_id: live_grant.user_id.clone()
            },
            "entry outlived its token"
        );
        assert_eq!(check("new-jti").await.unwrap(), AccessCheck::Inactive);
    }
}

#[tokio::test]
async fn gc_deletes_at_most_batch_rows_of_each_kind() {
    for backend in backends() {
        let t = fixture(backend).await;
        for jti in ["a", "b", "c"] {
            t.store.revoke_access_token(jti, NOW).await.unwrap();
        }

        let first = t.store.gc(NOW, 2).await.unwrap();
        let second = t.store.gc(NOW, 2).await.unwrap();

        assert_eq!((first, second), (2, 1));
    }
}

#[tokio::test]
async fn gc_deletes_logout_deliveries_queued_more_than_three_days_ago() {
    for backend in backends() {
        let t = fixture(backend).await;
        let queued = |id: &str, created_at| LogoutDelivery {
            id: id.to_owned(),
            client_id: client(CLIENT),
            session_id: None,
            user_id: person(ADA),
            uri: "https://wiki.example.com/backchannel-logout".to_owned(),
            logout_token: "{}".to_owned(),
            attempts: 3,
            next_attempt_at: NOW + Duration::hours(1),
            created_at,
        };
        let abandoned = queued("abandoned", NOW - Duration::days(3));
        let recent = queued("recent", NOW - Duration::days(3) + Duration::seconds(1));
        t.store
            .enqueue_logout_deliveries(&[abandoned, recent])
            .await
            .unwrap();

        let deleted = t.store.gc(NOW, 100).await.unwrap();

        assert_eq!(deleted, 1);
        let left = t
            .store
            .claim_logout_deliveries(NOW + Duration::hours(1), std::time::Duration::ZERO, 10)
            .await
            .unwrap();
        let ids: Vec<_> = left.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, vec!["recent"]);
    }
}
