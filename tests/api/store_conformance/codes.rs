//! Authorization codes: the single-use gate and what a replay does (RFC 6749 §4.1.2).

use super::{ADA, CLIENT, NOW, code, fixture, grant, signed_in};
use crate::test_db::backends;
use guildgate::domain::TokenHash;
use guildgate::store::{AccessCheck, CodeRedemption, GrantRecord, SpentCode, StoreError};
use std::sync::Arc;
use time::Duration;

#[tokio::test]
async fn consume_auth_code_is_single_use_and_a_replay_revokes_its_grant() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let (hash, issued) = code(&s, NOW + Duration::seconds(60));
        t.store.insert_auth_code(&issued).await.unwrap();

        let first = t.store.consume_auth_code(&hash, NOW).await.unwrap();
        let g = GrantRecord {
            id: issued.grant_id.clone(),
            ..grant(CLIENT, &s)
        };
        t.store.insert_grant(&g, None).await.unwrap();
        let second = t.store.consume_auth_code(&hash, NOW).await.unwrap();

        // The code comes back as issued, with its person read in the same trip.
        let person = t.store.get_user(&issued.user_id).await.unwrap().unwrap();
        assert_eq!(
            first,
            CodeRedemption::Redeemed(Box::new(SpentCode {
                code: issued.clone(),
                person
            }))
        );
        assert_eq!(
            second,
            CodeRedemption::Replayed {
                grant_id: issued.grant_id.clone()
            }
        );
        assert_eq!(
            t.store.check_access(&g.id, "jti-1", NOW).await.unwrap(),
            AccessCheck::Inactive
        );
        let revoked = t.store.get_grant(&g.id).await.unwrap().unwrap();
        assert_eq!(revoked.revoked_at, Some(NOW));
    }
}

#[tokio::test]
async fn consume_auth_code_of_an_unknown_code_is_unknown() {
    for backend in backends() {
        let t = fixture(backend).await;

        let result = t
            .store
            .consume_auth_code(&TokenHash::of("never issued"), NOW)
            .await;

        assert_eq!(result.unwrap(), CodeRedemption::Unknown);
    }
}

#[tokio::test]
async fn a_replay_before_the_grant_is_written_leaves_no_live_grant() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let (hash, issued) = code(&s, NOW + Duration::seconds(60));
        t.store.insert_auth_code(&issued).await.unwrap();
        t.store.consume_auth_code(&hash, NOW).await.unwrap();

        // The replay lands between the first redeemer's consume and its insert_grant.
        let replay = t.store.consume_auth_code(&hash, NOW).await.unwrap();
        let g = GrantRecord {
            id: issued.grant_id.clone(),
            ..grant(CLIENT, &s)
        };
        let late_insert = t.store.insert_grant(&g, None).await;

        assert!(matches!(replay, CodeRedemption::Replayed { .. }));
        assert!(
            matches!(late_insert, Err(StoreError::Conflict(_))),
            "got {late_insert:?}"
        );
        assert_eq!(
            t.store.check_access(&g.id, "jti-1", NOW).await.unwrap(),
            AccessCheck::Inactive
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consume_auth_code_redeems_exactly_once() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let (hash, issued) = code(&s, NOW + Duration::seconds(60));
        t.store.insert_auth_code(&issued).await.unwrap();

        let racers: Vec<_> = (0..10)
            .map(|_| {
                let (store, hash) = (Arc::clone(&t.store), hash.clone());
                tokio::spawn(async move { store.consume_auth_code(&hash, NOW).await })
            })
            .collect();
        let mut redeemed = 0;
        for racer in racers {
            match racer.await.unwrap().unwrap() {
                CodeRedemption::Redeemed(_) => redeemed += 1,
                CodeRedemption::Replayed { .. } => {}
                CodeRedemption::Unknown => panic!("the code exists"),
            }
        }

        assert_eq!(redeemed, 1);
    }
}

#[tokio::test]
async fn storing_a_code_records_its_client_in_the_session_once() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        // Two codes for the same app in one session (a second sign-in into it).
        for _ in 0..2 {
            let (_, issued) = code(&s, NOW + Duration::seconds(60));
            t.store.insert_auth_code(&issued).await.unwrap();
        }

        let ended = t.store.end_session(&s.id, NOW).await.unwrap().unwrap();

        let clients: Vec<String> = ended.clients.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            clients,
            vec![CLIENT.to_owned()],
            "back-channel logout reaches the app once"
        );
    }
}
