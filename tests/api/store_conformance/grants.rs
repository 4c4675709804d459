//! Grants and their tokens: refresh rotation with reuse detection (RFC 9700 §4.14.2), access
//! token checks, and a person's live grants.

use super::{
    ADA, BEN, CAL, CLIENT, NOW, client, fixture, grant, granted, person, refresh, session,
    signed_in, user,
};
use crate::test_db::backends;
use guildgate::domain::{GrantId, TokenHash};
use guildgate::store::{AccessCheck, GrantRecord, Rotation};
use std::sync::Arc;
use time::Duration;

#[tokio::test]
async fn rotate_refresh_token_spends_the_old_token_and_returns_the_grant() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (g, old) = granted(&*t.store).await;
        let (new_hash, new) = refresh(NOW + Duration::days(1));

        let rotation = t
            .store
            .rotate_refresh_token(&old, &client(CLIENT), &new, NOW)
            .await
            .unwrap();

        assert_eq!(rotation, Rotation::Rotated(g.clone()));
        assert_eq!(t.store.find_refresh_grant(&old, NOW).await.unwrap(), None);
        assert_eq!(
            t.store.find_refresh_grant(&new_hash, NOW).await.unwrap(),
            Some(g)
        );
    }
}

#[tokio::test]
async fn rotate_refresh_token_treats_a_rotated_token_as_reuse_and_revokes_the_grant() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (g, old) = granted(&*t.store).await;
        let (new_hash, new) = refresh(NOW + Duration::days(1));
        t.store
            .rotate_refresh_token(&old, &client(CLIENT), &new, NOW)
            .await
            .unwrap();
        let (_, third) = refresh(NOW + Duration::days(1));

        let reuse = t
            .store
            .rotate_refresh_token(&old, &client(CLIENT), &third, NOW)
            .await
            .unwrap();

        assert_eq!(
            reuse,
            Rotation::Reused {
                grant_id: g.id.clone()
            }
        );
        assert_eq!(
            t.store.get_grant(&g.id).await.unwrap().unwrap().revoked_at,
            Some(NOW)
        );
        assert_eq!(
            t.store.check_access(&g.id, "jti-1", NOW).await.unwrap(),
            AccessCheck::Inactive
        );
        let (_, fourth) = refresh(NOW + Duration::days(1));
        let successor = t
            .store
            .rotate_refresh_token(&new_hash, &client(CLIENT), &fourth, NOW)
            .await;
        assert_eq!(
            successor.unwrap(),
            Rotation::Invalid,
            "the whole family is dead"
        );
    }
}

#[tokio::test]
async fn rotate_refresh_token_refuses_another_clients_token_and_changes_nothing() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (g, old) = granted(&*t.store).await;
        let (_, new) = refresh(NOW + Duration::days(1));

        let stolen = t
            .store
            .rotate_refresh_token(&old, &client("forum"), &new, NOW)
            .await
            .unwrap();

        assert_eq!(stolen, Rotation::Invalid);
        assert_eq!(
            t.store.find_refresh_grant(&old, NOW).await.unwrap(),
            Some(g.clone())
        );
        let (_, other) = refresh(NOW + Duration::days(1));
        let owner = t
            .store
            .rotate_refresh_token(&old, &client(CLIENT), &other, NOW)
            .await
            .unwrap();
        assert_eq!(owner, Rotation::Rotated(g));
    }
}

#[tokio::test]
async fn rotate_refresh_token_refuses_expired_tokens_and_dead_grants() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, idle) = granted(&*t.store).await;
        let (revoked_grant, of_revoked) = granted(&*t.store).await;
        t.store.revoke_grant(&revoked_grant.id, NOW).await.unwrap();
        let (ended_grant, of_ended) = granted(&*t.store).await;
        t.store
            .end_session(ended_grant.session_id.as_ref().unwrap(), NOW)
            .await
            .unwrap();
        let (_, new) = refresh(NOW + Duration::days(2));

        let rotate = |old: TokenHash, at| {
            let (store, new) = (Arc::clone(&t.store), new.clone());
            async move {
                store
                    .rotate_refresh_token(&old, &client(CLIENT), &new, at)
                    .await
                    .unwrap()
            }
        };
        let expired = rotate(idle, NOW + Duration::days(1)).await;
        let revoked = rotate(of_revoked, NOW).await;
        let ended = rotate(of_ended, NOW).await;
        let unknown = rotate(TokenHash::of("?"), NOW).await;

        assert_eq!(expired, Rotation::Invalid, "past the token's expires_at");
        assert_eq!(revoked, Rotation::Invalid, "grant revoked");
        assert_eq!(ended, Rotation::Invalid, "session ended");
        assert_eq!(unknown, Rotation::Invalid);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_of_one_token_rotate_exactly_once() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (g, old) = granted(&*t.store).await;

        let racers: Vec<_> = (0..5)
            .map(|_| {
                let (store, old) = (Arc::clone(&t.store), old.clone());
                let (_, new) = refresh(NOW + Duration::days(1));
                tokio::spawn(async move {
                    store
                        .rotate_refresh_token(&old, &client(CLIENT), &new, NOW)
                        .await
                })
            })
            .collect();
        let mut rotated = 0;
        for racer in racers {
            match racer.await.unwrap().unwrap() {
                Rotation::Rotated(_) => rotated += 1,
                Rotation::Reused { grant_id } => assert_eq!(grant_id, g.id),
                Rotation::Invalid => panic!("every racer presents a once-valid token"),
            }
        }

        assert_eq!(rotated, 1);
    }
}

#[tokio::test]
async fn revoke_access_token_makes_only_that_jti_inactive() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (g, _) = granted(&*t.store).await;

        t.store
            .revoke_access_token("jti-1", NOW + Duration::minutes(10))
            .await
            .unwrap();
        t.store
            .revoke_access_token("jti-1", NOW + Duration::minutes(10))
            .await
            .unwrap();

        assert_eq!(
            t.store.check_access(&g.id, "jti-1", NOW).await.unwrap(),
            AccessCheck::Inactive
        );
        assert_eq!(
            t.store.check_access(&g.id, "jti-2", NOW).await.unwrap(),
            AccessCheck::Active {
                user_id: g.user_id.clone()
            }
        );
    }
}

#[tokio::test]
async fn check_access_is_inactive_for_unknown_expired_or_revoked_grants() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (g, _) = granted(&*t.store).await;

        let live = t.store.check_access(&g.id, "j", NOW).await.unwrap();
        let unknown = t
            .store
            .check_access(&GrantId::parse("no-such-grant").unwrap(), "j", NOW)
            .await
            .unwrap();
        let expired = t
            .store
            .check_access(&g.id, "j", g.expires_at)
            .await
            .unwrap();
        let was_live = t.store.revoke_grant(&g.id, NOW).await.unwrap();
        let again = t.store.revoke_grant(&g.id, NOW).await.unwrap();
        let revoked = t.store.check_access(&g.id, "j", NOW).await.unwrap();

        assert_eq!(
            live,
            AccessCheck::Active {
                user_id: g.user_id.clone()
            },
            "the check names the grant's person"
        );
        assert_eq!(unknown, AccessCheck::Inactive);
        assert_eq!(expired, AccessCheck::Inactive);
        assert!(
            was_live && !again,
            "revoke_grant reports whether the grant was live"
        );
        assert_eq!(revoked, AccessCheck::Inactive);
    }
}

#[tokio::test]
async fn list_user_grants_lists_only_the_persons_live_grants() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let (_, other) = signed_in(&*t.store, BEN).await;
        let (_, ended) = session(ADA, NOW + Duration::hours(12));
        t.store.insert_session(&ended).await.unwrap();
        let live = grant(CLIENT, &s);
        let offline = GrantRecord {
            session_id: None,
            created_at: NOW + Duration::seconds(1),
            ..grant("forum", &s)
        };
        let revoked = grant(CLIENT, &s);
        let expired = GrantRecord {
            expires_at: NOW,
            ..grant(CLIENT, &s)
        };
        let of_ended_session = grant(CLIENT, &ended);
        let someone_elses = grant(CLIENT, &other);
        for g in [
            &live,
            &offline,
            &revoked,
            &expired,
            &of_ended_session,
            &someone_elses,
        ] {
            t.store.insert_grant(g, None).await.unwrap();
        }
        t.store.revoke_grant(&revoked.id, NOW).await.unwrap();
        t.store.end_session(&ended.id, NOW).await.unwrap();

        let listed = t.store.list_user_grants(&person(ADA), NOW).await.unwrap();

        assert_eq!(listed, vec![live, offline], "oldest first");
        assert_eq!(
            t.store.list_user_grants(&person(CAL), NOW).await.unwrap(),
            vec![]
        );
    }
}

#[tokio::test]
async fn people_with_live_grants_names_each_holder_once_offline_grants_included() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let (_, offline_only) = signed_in(&*t.store, BEN).await;
        let (_, gone) = signed_in(&*t.store, CAL).await;
        let twice = [grant(CLIENT, &s), grant("forum", &s)];
        let offline = GrantRecord {
            session_id: None,
            ..grant(CLIENT, &offline_only)
        };
        let revoked = grant(CLIENT, &gone);
        for g in twice.iter().chain([&offline, &revoked]) {
            t.store.insert_grant(g, None).await.unwrap();
        }
        t.store.end_session(&offline_only.id, NOW).await.unwrap();
        t.store.revoke_grant(&revoked.id, NOW).await.unwrap();

        let people = t.store.people_with_live_grants(NOW).await.unwrap();

        assert_eq!(people, vec![person(ADA), person(BEN)]);
    }
}

#[tokio::test]
async fn check_access_names_the_person_of_a_grant_without_a_session() {
    for backend in backends() {
        let t = fixture(backend).await;
        t.store.upsert_user(&user(ADA)).await.unwrap();
        let (_, s) = session(ADA, NOW + Duration::hours(1));
        let offline = GrantRecord {
            session_id: None,
            ..grant(CLIENT, &s)
        };
        t.store.insert_grant(&offline, None).await.unwrap();

        let check = t
            .store
            .check_access(&offline.id, "jti-1", NOW)
            .await
            .unwrap();

        assert_eq!(
            check,
            AccessCheck::Active {
                user_id: person(ADA)
            }
        );
    }
}

#[tokio::test]
async fn find_token_holder_answers_like_check_access_with_the_person_and_snapshot() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (g, _) = granted(&*t.store).await;
        let snapshot = guildgate::store::MembershipSnapshot {
            snapshot: r#"{"guilds":["1"],"roles":[]}"#.to_owned(),
            fetched_at: NOW,
        };

        let before_snapshot = t.store.find_token_holder(&g.id, "j", NOW).await.unwrap();
        t.store
            .save_membership(&g.user_id, &snapshot)
            .await
            .unwrap();
        let live = t.store.find_token_holder(&g.id, "j", NOW).await.unwrap();
        t.store
            .revoke_access_token("j", NOW + Duration::hours(1))
            .await
            .unwrap();
        let revoked_jti = t.store.find_token_holder(&g.id, "j", NOW).await.unwrap();
        let other_jti = t.store.find_token_holder(&g.id, "k", NOW).await.unwrap();
        let expired = t
            .store
            .find_token_holder(&g.id, "k", g.expires_at)
            .await
            .unwrap();
        t.store.revoke_grant(&g.id, NOW).await.unwrap();
        let revoked = t.store.find_token_holder(&g.id, "k", NOW).await.unwrap();

        let person = t.store.get_user(&g.user_id).await.unwrap().unwrap();
        let before_snapshot = before_snapshot.expect("a live grant has a holder");
        assert_eq!(before_snapshot.user, person);
        assert_eq!(before_snapshot.membership, None, "no snapshot taken yet");
        let live = live.expect("still live");
        assert_eq!(live.membership, Some(snapshot), "the snapshot comes along");
        assert_eq!(revoked_jti, None, "a revoked jti has no holder");
        assert!(other_jti.is_some(), "only that jti is revoked");
        assert_eq!(expired, None);
        assert_eq!(revoked, None);
    }
}

#[tokio::test]
async fn a_grant_that_cannot_be_written_stores_none_of_its_token_and_writing_goes_on() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, ADA).await;
        let g = grant(CLIENT, &s);
        let (_, first) = refresh(NOW + Duration::days(1));
        t.store.insert_grant(&g, Some(&first)).await.unwrap();

        // The same grant id again (a code replay racing its redemption): refused as a whole.
        let (second_hash, second) = refresh(NOW + Duration::days(1));
        let again = t.store.insert_grant(&g, Some(&second)).await;
        let (third_hash, third) = refresh(NOW + Duration::days(1));
        let other = grant(CLIENT, &s);
        let after = t.store.insert_grant(&other, Some(&third)).await;

        assert!(
            matches!(again, Err(guildgate::store::StoreError::Conflict(_))),
            "{again:?}"
        );
        assert_eq!(
            t.store.find_refresh_grant(&second_hash, NOW).await.unwrap(),
            None,
            "the refused grant's refresh token was not kept"
        );
        assert!(
            after.is_ok(),
            "the writer is usable after the refusal: {after:?}"
        );
        assert_eq!(
            t.store
                .find_refresh_grant(&third_hash, NOW)
                .await
                .unwrap()
                .map(|found| found.id),
            Some(other.id)
        );
    }
}

#[tokio::test]
async fn find_refresh_holder_reads_the_live_grant_with_its_person_in_one_answer() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (g, old) = granted(&*t.store).await;
        // The person changed their profile since the grant was made.
        let mut renamed = user(g.user_id.as_str());
        renamed.username = "renamed".to_owned();
        renamed.email = None;
        t.store.upsert_user(&renamed).await.unwrap();

        let holder = t.store.find_refresh_holder(&old, NOW).await.unwrap();
        let holder = holder.expect("a live token has a holder");
        assert_eq!(holder.grant, g);
        assert_eq!(holder.user, Some(renamed));

        // Spent, expired or unknown tokens have none, as with `find_refresh_grant`.
        let (_, new) = refresh(NOW + Duration::days(1));
        t.store
            .rotate_refresh_token(&old, &client(CLIENT), &new, NOW)
            .await
            .unwrap();
        assert_eq!(t.store.find_refresh_holder(&old, NOW).await.unwrap(), None);
        let (unknown, _) = refresh(NOW);
        assert_eq!(
            t.store.find_refresh_holder(&unknown, NOW).await.unwrap(),
            None
        );
        let (_, fresh) = granted(&*t.store).await;
        let later = NOW + Duration::days(2);
        assert_eq!(
            t.store.find_refresh_holder(&fresh, later).await.unwrap(),
            None,
            "past its idle expiry"
        );
    }
}
