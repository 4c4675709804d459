//! Authorization codes: the single-use gate and what a replay does (RFC 6749 §4.1.2).

use super::{
    ADA, BEN, CAL, CLIENT, NOW, client, code, fixture, grant, person, session, signed_in,
    successes_of_ten, user,
};
use crate::test_db::backends;
use guildgate::domain::TokenHash;
use guildgate::store::{
    AccessCheck, AuthCodeRecord, CodeRedemption, GrantRecord, MembershipSnapshot, NewSignIn,
    SpentCode, StoreError,
};
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

        let redeemed = successes_of_ten(&t.store, |store| {
            let hash = hash.clone();
            async move {
                match store.consume_auth_code(&hash, NOW).await.unwrap() {
                    CodeRedemption::Redeemed(_) => true,
                    CodeRedemption::Replayed { .. } => false,
                    CodeRedemption::Unknown => panic!("the code exists"),
                }
            }
        })
        .await;

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

#[tokio::test]
async fn a_sign_in_written_with_its_code_is_one_write_that_lands_whole_or_not_at_all() {
    for backend in backends() {
        let t = fixture(backend).await;
        let membership = MembershipSnapshot {
            snapshot: "{}".to_owned(),
            fetched_at: NOW,
        };
        let (ben, cal) = (user(BEN), user(CAL));
        let (ben_secret, ben_session) = session(BEN, NOW + Duration::hours(12));
        let (hash, issued) = code(&ben_session, NOW + Duration::seconds(60));
        let sign_in = |user, session| NewSignIn {
            user,
            membership: &membership,
            tokens: None,
            session,
        };
        t.store
            .save_sign_in(&sign_in(&ben, &ben_session), Some(&issued))
            .await
            .unwrap();

        // A second sign-in whose code cannot be stored (its hash is taken) leaves no person
        // and no session behind.
        let (cal_secret, cal_session) = session(CAL, NOW + Duration::hours(12));
        let clash = AuthCodeRecord {
            user_id: cal_session.user_id.clone(),
            session_id: cal_session.id.clone(),
            ..issued.clone()
        };
        let clashed = t
            .store
            .save_sign_in(&sign_in(&cal, &cal_session), Some(&clash))
            .await;
        // A code from another session is refused before anything is sent.
        let foreign = t
            .store
            .save_sign_in(&sign_in(&cal, &cal_session), Some(&issued))
            .await;

        assert!(clashed.is_err(), "{backend:?}: {clashed:?}");
        assert!(
            matches!(foreign, Err(StoreError::Conflict(_))),
            "{foreign:?}"
        );
        assert_eq!(t.store.get_user(&person(CAL)).await.unwrap(), None);
        assert_eq!(
            t.store.find_session(&cal_secret.hash(), NOW).await.unwrap(),
            None
        );
        // The first sign-in's person, session and code all landed; the code redeems with its
        // person, and the session knows the client (back-channel logout reaches it).
        assert_eq!(
            t.store.find_session(&ben_secret.hash(), NOW).await.unwrap(),
            Some(ben_session.clone())
        );
        assert_eq!(
            t.store.consume_auth_code(&hash, NOW).await.unwrap(),
            CodeRedemption::Redeemed(Box::new(SpentCode {
                code: issued.clone(),
                person: ben,
            }))
        );
        let ended = t.store.end_session(&ben_session.id, NOW).await.unwrap();
        assert_eq!(ended.map(|e| e.clients), Some(vec![client(CLIENT)]));
    }
}
