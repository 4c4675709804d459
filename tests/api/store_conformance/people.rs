//! What is kept about a person: the profile, pending Discord logins, consents, the membership
//! snapshot and the sealed Discord tokens.

use super::{
    ADA, BEN, CAL, CLIENT, DEE, NO_CAP, NOBODY, NOW, client, fixture, pending_login, person,
    scopes, user,
};
use crate::test_db::backends;
use guildgate::domain::{SessionId, TokenHash};
use guildgate::store::{
    MembershipSnapshot, NewSignIn, PendingLoginCap, SessionRecord, StoredUpstreamTokens,
    UpstreamLogin, UserRecord,
};
use time::Duration;

#[tokio::test]
async fn upsert_user_inserts_then_updates_the_same_person() {
    for backend in backends() {
        let t = fixture(backend).await;
        let first = user("41771983423143937");
        t.store.upsert_user(&first).await.unwrap();
        let changed = UserRecord {
            username: "renamed".to_owned(),
            global_name: None,
            avatar: Some("a_1269e74af4df7417b13759eae50c83dc".to_owned()),
            email_verified: false,
            updated_at: NOW + Duration::hours(1),
            ..first.clone()
        };

        t.store.upsert_user(&changed).await.unwrap();

        assert_eq!(t.store.get_user(&first.id).await.unwrap(), Some(changed));
        assert_eq!(t.store.get_user(&person(NOBODY)).await.unwrap(), None);
    }
}

#[tokio::test]
async fn take_upstream_login_needs_matching_state_and_binding_and_is_single_use() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (state, binding) = (TokenHash::of("state"), TokenHash::of("binding"));
        let login = pending_login("state", "binding");
        assert!(
            t.store
                .insert_upstream_login(&login, &NO_CAP)
                .await
                .unwrap()
        );

        let other_browser = t
            .store
            .take_upstream_login(&state, &TokenHash::of("x"), NOW)
            .await;
        let other_state = t
            .store
            .take_upstream_login(&TokenHash::of("x"), &binding, NOW)
            .await;
        let first = t
            .store
            .take_upstream_login(&state, &binding, NOW)
            .await
            .unwrap();
        let second = t
            .store
            .take_upstream_login(&state, &binding, NOW)
            .await
            .unwrap();

        assert_eq!(
            other_browser.unwrap(),
            None,
            "another browser's binding must not match"
        );
        assert_eq!(other_state.unwrap(), None);
        assert_eq!(first, Some(login));
        assert_eq!(second, None, "a pending login is taken once");
    }
}

#[tokio::test]
async fn take_upstream_login_refuses_an_expired_login() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (state, binding) = (TokenHash::of("state"), TokenHash::of("binding"));
        let login = pending_login("state", "binding");
        assert!(
            t.store
                .insert_upstream_login(&login, &NO_CAP)
                .await
                .unwrap()
        );

        let late = NOW + Duration::minutes(10);
        let taken = t
            .store
            .take_upstream_login(&state, &binding, late)
            .await
            .unwrap();

        assert_eq!(taken, None);
    }
}

#[tokio::test]
async fn pending_logins_are_capped_per_source_and_expired_ones_do_not_count() {
    for backend in backends() {
        // Arrange: two live logins and one expired from one source, under a cap of three.
        let t = fixture(backend).await;
        let cap = |source| PendingLoginCap {
            source,
            max_per_source: 3,
            replaces: None,
        };
        let expired = UpstreamLogin {
            created_at: NOW - Duration::minutes(20),
            expires_at: NOW - Duration::minutes(10),
            ..pending_login("old", "b0")
        };
        assert!(
            t.store
                .insert_upstream_login(&expired, &cap("a"))
                .await
                .unwrap()
        );
        for (state, binding) in [("s1", "b1"), ("s2", "b2")] {
            let login = pending_login(state, binding);
            assert!(
                t.store
                    .insert_upstream_login(&login, &cap("a"))
                    .await
                    .unwrap()
            );
        }

        // Act: a third and a fourth from the same source, and one from another source.
        let third = t
            .store
            .insert_upstream_login(&pending_login("s3", "b3"), &cap("a"))
            .await
            .unwrap();
        let fourth = t
            .store
            .insert_upstream_login(&pending_login("s4", "b4"), &cap("a"))
            .await
            .unwrap();
        let elsewhere = t
            .store
            .insert_upstream_login(&pending_login("s5", "b5"), &cap("b"))
            .await
            .unwrap();

        // Assert
        assert!(third, "the expired login does not count against the cap");
        assert!(!fourth, "a fourth live login from one source is refused");
        assert!(elsewhere, "other sources are not affected");
        let (s4, b4) = (TokenHash::of("s4"), TokenHash::of("b4"));
        assert_eq!(
            t.store.take_upstream_login(&s4, &b4, NOW).await.unwrap(),
            None,
            "a refused login is not stored"
        );
    }
}

#[tokio::test]
async fn a_new_pending_login_replaces_the_one_of_the_same_browser() {
    for backend in backends() {
        // Arrange: one browser's pending login, and another browser's.
        let t = fixture(backend).await;
        assert!(
            t.store
                .insert_upstream_login(&pending_login("s1", "b1"), &NO_CAP)
                .await
                .unwrap()
        );
        assert!(
            t.store
                .insert_upstream_login(&pending_login("s2", "b2"), &NO_CAP)
                .await
                .unwrap()
        );

        // Act: the first browser starts again, naming its previous binding.
        let replaces = TokenHash::of("b1");
        let again = PendingLoginCap {
            replaces: Some(&replaces),
            ..NO_CAP
        };
        let stored = t
            .store
            .insert_upstream_login(&pending_login("s3", "b3"), &again)
            .await
            .unwrap();

        // Assert
        assert!(stored);
        let take = |s: &str, b: &str| (TokenHash::of(s), TokenHash::of(b));
        let (s1, b1) = take("s1", "b1");
        assert_eq!(
            t.store.take_upstream_login(&s1, &b1, NOW).await.unwrap(),
            None
        );
        let (s2, b2) = take("s2", "b2");
        assert!(
            t.store
                .take_upstream_login(&s2, &b2, NOW)
                .await
                .unwrap()
                .is_some()
        );
        let (s3, b3) = take("s3", "b3");
        assert!(
            t.store
                .take_upstream_login(&s3, &b3, NOW)
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test]
async fn consents_are_saved_replaced_and_revoked_per_person_and_client() {
    for backend in backends() {
        let t = fixture(backend).await;
        t.store.upsert_user(&user(ADA)).await.unwrap();
        t.store.upsert_user(&user(BEN)).await.unwrap();
        let before = t
            .store
            .get_consent(&person(ADA), &client(CLIENT))
            .await
            .unwrap();

        t.store
            .save_consent(&person(ADA), &client(CLIENT), scopes("openid"), NOW)
            .await
            .unwrap();
        t.store
            .save_consent(
                &person(ADA),
                &client(CLIENT),
                scopes("openid email"),
                NOW + Duration::minutes(1),
            )
            .await
            .unwrap();
        t.store
            .save_consent(&person(ADA), &client("forum"), scopes("openid"), NOW)
            .await
            .unwrap();
        t.store
            .save_consent(&person(BEN), &client(CLIENT), scopes("openid profile"), NOW)
            .await
            .unwrap();

        assert_eq!(before, None);
        let replaced = t
            .store
            .get_consent(&person(ADA), &client(CLIENT))
            .await
            .unwrap();
        assert_eq!(replaced, Some(scopes("openid email")), "saving replaces");
        assert!(
            t.store
                .revoke_consent(&person(ADA), &client(CLIENT))
                .await
                .unwrap()
        );
        assert!(
            !t.store
                .revoke_consent(&person(ADA), &client(CLIENT))
                .await
                .unwrap(),
            "already gone"
        );
        assert_eq!(
            t.store
                .get_consent(&person(ADA), &client(CLIENT))
                .await
                .unwrap(),
            None
        );
        let other_client = t
            .store
            .get_consent(&person(ADA), &client("forum"))
            .await
            .unwrap();
        let other_person = t
            .store
            .get_consent(&person(BEN), &client(CLIENT))
            .await
            .unwrap();
        assert_eq!(other_client, Some(scopes("openid")));
        assert_eq!(other_person, Some(scopes("openid profile")));
    }
}

#[tokio::test]
async fn membership_snapshots_round_trip_and_replace_and_survive_a_profile_update() {
    for backend in backends() {
        let t = fixture(backend).await;
        let unknown = t.store.get_membership(&person(ADA)).await.unwrap();
        t.store.upsert_user(&user(ADA)).await.unwrap();
        let never_fetched = t.store.get_membership(&person(ADA)).await.unwrap();
        let first = MembershipSnapshot {
            snapshot: r#"{"guilds":{"81384788765712384":["admin"]}}"#.to_owned(),
            fetched_at: NOW,
        };
        let second = MembershipSnapshot {
            snapshot: r#"{"guilds":{}}"#.to_owned(),
            fetched_at: NOW + Duration::hours(1),
        };

        t.store.save_membership(&person(ADA), &first).await.unwrap();
        let saved = t.store.get_membership(&person(ADA)).await.unwrap();
        t.store
            .save_membership(&person(ADA), &second)
            .await
            .unwrap();
        t.store.upsert_user(&user(ADA)).await.unwrap();
        let replaced = t.store.get_membership(&person(ADA)).await.unwrap();

        assert_eq!(unknown, None);
        assert_eq!(never_fetched, None);
        assert_eq!(saved, Some(first));
        assert_eq!(replaced, Some(second));
    }
}

#[tokio::test]
async fn upstream_tokens_round_trip_replace_and_clear() {
    for backend in backends() {
        let t = fixture(backend).await;
        t.store.upsert_user(&user(ADA)).await.unwrap();
        let never_stored = t.store.get_upstream_tokens(&person(ADA)).await.unwrap();
        let first = StoredUpstreamTokens {
            // Every byte value, so no engine may treat the ciphertext as text.
            ciphertext: (0..=255).collect(),
            access_expires_at: NOW + Duration::days(7),
        };
        let second = StoredUpstreamTokens {
            ciphertext: vec![0, 1, 2, 3],
            access_expires_at: NOW + Duration::days(14),
        };

        t.store
            .save_upstream_tokens(&person(ADA), Some(&first))
            .await
            .unwrap();
        let saved = t.store.get_upstream_tokens(&person(ADA)).await.unwrap();
        t.store
            .save_upstream_tokens(&person(ADA), Some(&second))
            .await
            .unwrap();
        let replaced = t.store.get_upstream_tokens(&person(ADA)).await.unwrap();
        t.store
            .save_upstream_tokens(&person(ADA), None)
            .await
            .unwrap();
        let cleared = t.store.get_upstream_tokens(&person(ADA)).await.unwrap();

        assert_eq!(never_stored, None);
        assert_eq!(saved, Some(first));
        assert_eq!(replaced, Some(second));
        assert_eq!(cleared, None);
        assert!(
            t.store.get_user(&person(ADA)).await.unwrap().is_some(),
            "clearing tokens keeps the person"
        );
    }
}

#[tokio::test]
async fn kept_tokens_are_listed_page_by_page_and_replaced_only_if_unchanged() {
    for backend in backends() {
        // Arrange: three people, two with kept tokens.
        let t = fixture(backend).await;
        for (who, sealed) in [
            (ADA, Some(vec![1u8, 0, 255])),
            (BEN, None),
            (CAL, Some(vec![3u8])),
        ] {
            t.store.upsert_user(&user(who)).await.unwrap();
            let kept = sealed.map(|ciphertext| StoredUpstreamTokens {
                ciphertext,
                access_expires_at: NOW,
            });
            t.store
                .save_upstream_tokens(&person(who), kept.as_ref())
                .await
                .unwrap();
        }

        // Act
        let first_page = t.store.list_kept_tokens(None, 1).await.unwrap();
        let second_page = t
            .store
            .list_kept_tokens(Some(&person(ADA)), 1)
            .await
            .unwrap();
        let after_last = t
            .store
            .list_kept_tokens(Some(&person(CAL)), 10)
            .await
            .unwrap();
        let stale = t
            .store
            .replace_kept_tokens(&person(ADA), &[9], &[7])
            .await
            .unwrap();
        let current = t
            .store
            .replace_kept_tokens(&person(ADA), &[1, 0, 255], &[7, 7])
            .await
            .unwrap();

        // Assert
        assert_eq!(first_page, vec![(person(ADA), vec![1, 0, 255])]);
        assert_eq!(second_page, vec![(person(CAL), vec![3])], "BEN keeps none");
        assert!(after_last.is_empty());
        assert!(!stale, "tokens that changed meanwhile are not replaced");
        assert!(current);
        let now_kept = t.store.get_upstream_tokens(&person(ADA)).await.unwrap();
        assert_eq!(now_kept.map(|k| k.ciphertext), Some(vec![7, 7]));
    }
}

#[tokio::test]
async fn one_holder_at_a_time_takes_the_recheck_lease_until_it_is_released_or_runs_out() {
    for backend in backends() {
        let t = fixture(backend).await;
        t.store.upsert_user(&user(DEE)).await.unwrap();
        let until = NOW + Duration::seconds(30);

        let first = t
            .store
            .claim_recheck(&person(DEE), "a", until, NOW)
            .await
            .unwrap();
        let second = t
            .store
            .claim_recheck(&person(DEE), "b", until, NOW)
            .await
            .unwrap();
        let again_by_holder = t
            .store
            .claim_recheck(&person(DEE), "a", until, NOW)
            .await
            .unwrap();
        // Releasing someone else's lease does nothing.
        t.store.release_recheck(&person(DEE), "b").await.unwrap();
        let still_held = t
            .store
            .claim_recheck(&person(DEE), "b", until, NOW)
            .await
            .unwrap();
        t.store.release_recheck(&person(DEE), "a").await.unwrap();
        let after_release = t
            .store
            .claim_recheck(&person(DEE), "b", until, NOW)
            .await
            .unwrap();
        let after_expiry = t
            .store
            .claim_recheck(&person(DEE), "c", until + Duration::seconds(30), until)
            .await
            .unwrap();
        let unknown_person = t
            .store
            .claim_recheck(&person(NOBODY), "a", until, NOW)
            .await
            .unwrap();

        assert!(first, "a free lease is taken");
        assert!(!second, "a held lease is not taken by another");
        assert!(again_by_holder, "the holder may extend its own lease");
        assert!(!still_held, "only the holder releases");
        assert!(after_release, "a released lease is free");
        assert!(
            after_expiry,
            "a lease that ran out is free (a crashed holder)"
        );
        assert!(!unknown_person, "nobody to lease");
    }
}

/// A session of `user` whose secret is `secret-<id>`.
fn session(user: &str, id: &str) -> SessionRecord {
    SessionRecord {
        id: SessionId::parse(id).unwrap(),
        secret_hash: TokenHash::of(&format!("secret-{id}")),
        user_id: person(user),
        auth_time: NOW,
        created_at: NOW,
        expires_at: NOW + Duration::hours(8),
        last_seen_at: NOW,
        device: Default::default(),
    }
}

#[tokio::test]
async fn a_sign_in_saves_profile_snapshot_tokens_and_session_at_once_and_keeps_tokens_it_was_not_given()
 {
    for backend in backends() {
        let t = fixture(backend).await;
        let snapshot = |json: &str, at| MembershipSnapshot {
            snapshot: json.to_owned(),
            fetched_at: at,
        };
        let tokens = StoredUpstreamTokens {
            ciphertext: (0..=255).collect(),
            access_expires_at: NOW + Duration::days(7),
        };
        let first_snapshot = snapshot(r#"{"guilds":{"81384788765712384":[]}}"#, NOW);

        // A first sign-in creates the person with everything.
        let (ada, first_session) = (user(ADA), session(ADA, "s1"));
        let first = NewSignIn {
            user: &ada,
            membership: &first_snapshot,
            tokens: Some(&tokens),
            session: &first_session,
        };
        t.store.save_sign_in(&first, None).await.unwrap();
        let created = (
            t.store.get_user(&person(ADA)).await.unwrap(),
            t.store.get_membership(&person(ADA)).await.unwrap(),
            t.store.get_upstream_tokens(&person(ADA)).await.unwrap(),
        );
        // A later one without kept tokens (no key configured) renames and re-snapshots, and
        // leaves the stored tokens alone.
        let mut renamed = user(ADA);
        renamed.username = "ada2".into();
        let later_snapshot = snapshot(r#"{"guilds":{}}"#, NOW + Duration::hours(1));
        let later_session = session(ADA, "s2");
        let later = NewSignIn {
            user: &renamed,
            membership: &later_snapshot,
            tokens: None,
            session: &later_session,
        };
        t.store.save_sign_in(&later, None).await.unwrap();

        assert_eq!(created.0, Some(user(ADA)));
        for (id, secret) in [("s1", "secret-s1"), ("s2", "secret-s2")] {
            let found = t
                .store
                .find_session(&TokenHash::of(secret), NOW)
                .await
                .unwrap();
            assert_eq!(found.map(|s| s.id.to_string()), Some(id.to_owned()), "{id}");
        }
        assert_eq!(created.1, Some(first_snapshot));
        assert_eq!(created.2.as_ref(), Some(&tokens));
        assert_eq!(t.store.get_user(&person(ADA)).await.unwrap(), Some(renamed));
        assert_eq!(
            t.store.get_membership(&person(ADA)).await.unwrap(),
            Some(later_snapshot)
        );
        assert_eq!(
            t.store.get_upstream_tokens(&person(ADA)).await.unwrap(),
            Some(tokens)
        );
    }
}
