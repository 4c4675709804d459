//! One behaviour suite for the `Store` trait, run against every backend in `backends()`.
//!
//! Each test loops over the backends on a fresh database; the backend under test is printed
//! first, so a failure's captured output says which one broke.

use crate::test_db::{Backend, TestDb, backends, fresh_database};
use guildgate::domain::{OpaqueToken, TokenHash};
use guildgate::store::{
    AccessCheck, AuthCodeRecord, CodeRedemption, GrantRecord, NewRefreshToken, Rotation,
    SessionRecord, Store, StoreError, UpstreamLogin, UserRecord, connect,
};
use std::sync::Arc;
use time::{Duration, OffsetDateTime, macros::datetime};

const NOW: OffsetDateTime = datetime!(2030-01-01 12:00 UTC);
const CLIENT: &str = "wiki";

struct Fixture {
    // Declared before `_db` so the pool closes before the database is dropped.
    store: Arc<dyn Store>,
    _db: TestDb,
}

async fn fixture(backend: Backend) -> Fixture {
    println!("store conformance on {backend:?}");
    let db = fresh_database(backend).await;
    let store = connect(&db.url, 5)
        .await
        .expect("connect to the test database");
    store.migrate().await.expect("migrate the test database");
    Fixture { store, _db: db }
}

fn user(id: &str) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
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
        id: uuid::Uuid::new_v4().to_string(),
        secret_hash: secret.hash(),
        user_id: user_id.to_owned(),
        auth_time: NOW,
        created_at: NOW,
        expires_at,
        last_seen_at: NOW,
    };
    (secret, record)
}

fn grant(client_id: &str, s: &SessionRecord) -> GrantRecord {
    GrantRecord {
        id: uuid::Uuid::new_v4().to_string(),
        client_id: client_id.to_owned(),
        user_id: s.user_id.clone(),
        session_id: Some(s.id.clone()),
        scopes: "openid profile".to_owned(),
        auth_time: s.auth_time,
        created_at: NOW,
        expires_at: NOW + Duration::days(30),
        revoked_at: None,
    }
}

fn code(s: &SessionRecord, expires_at: OffsetDateTime) -> (TokenHash, AuthCodeRecord) {
    let hash = OpaqueToken::generate().hash();
    let record = AuthCodeRecord {
        code_hash: hash.clone(),
        client_id: CLIENT.to_owned(),
        redirect_uri: "https://wiki.example.com/cb".to_owned(),
        user_id: s.user_id.clone(),
        session_id: s.id.clone(),
        grant_id: uuid::Uuid::new_v4().to_string(),
        scopes: "openid".to_owned(),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
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

#[tokio::test]
async fn migrate_is_idempotent() {
    for backend in backends() {
        let t = fixture(backend).await;
        t.store.migrate().await.expect("second migrate is a no-op");
        t.store.ping().await.unwrap();
    }
}

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
        assert_eq!(t.store.get_user("1").await.unwrap(), None);
    }
}

#[tokio::test]
async fn take_upstream_login_needs_matching_state_and_binding_and_is_single_use() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (state, binding) = (TokenHash::of("state"), TokenHash::of("binding"));
        let login = UpstreamLogin {
            state_hash: state.clone(),
            binding_hash: binding.clone(),
            pkce_verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned(),
            request: r#"{"client_id":"wiki"}"#.to_owned(),
            created_at: NOW,
            expires_at: NOW + Duration::minutes(10),
        };
        t.store.insert_upstream_login(&login).await.unwrap();

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
        let login = UpstreamLogin {
            state_hash: state.clone(),
            binding_hash: binding.clone(),
            pkce_verifier: "v".repeat(43),
            request: "{}".to_owned(),
            created_at: NOW,
            expires_at: NOW + Duration::minutes(10),
        };
        t.store.insert_upstream_login(&login).await.unwrap();

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
async fn find_session_returns_only_live_sessions_by_secret() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (secret, s) = signed_in(&*t.store, "1001").await;

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
        let (secret, s) = signed_in(&*t.store, "1001").await;
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
        let (_, s) = signed_in(&*t.store, "1001").await;
        let twin = SessionRecord {
            id: "another-id".to_owned(),
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
        let (secret, s) = signed_in(&*t.store, "1001").await;
        for client in ["wiki", "forum", "wiki"] {
            t.store
                .add_session_client(&s.id, client, NOW)
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
        assert_eq!(ended.clients, vec!["forum".to_owned(), "wiki".to_owned()]);
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
            t.store.end_session("no-such-id", later).await.unwrap(),
            None
        );
    }
}

#[tokio::test]
async fn list_sessions_returns_live_sessions_newest_first_filtered_by_user() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, ada_old) = signed_in(&*t.store, "1001").await;
        let (_, mut ada_new) = session("1001", NOW + Duration::hours(12));
        ada_new.created_at = NOW + Duration::minutes(1);
        t.store.insert_session(&ada_new).await.unwrap();
        let (_, bob) = signed_in(&*t.store, "2002").await;
        let (_, ended) = signed_in(&*t.store, "1001").await;
        t.store.end_session(&ended.id, NOW).await.unwrap();
        let (_, expired) = session("1001", NOW);
        t.store.insert_session(&expired).await.unwrap();

        let adas = t.store.list_sessions(Some("1001"), NOW).await.unwrap();
        let everyone = t.store.list_sessions(None, NOW).await.unwrap();

        assert_eq!(adas, vec![ada_new.clone(), ada_old.clone()]);
        let ids: Vec<_> = everyone.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids.len(),
            3,
            "ended and expired sessions are not listed: {ids:?}"
        );
        assert_eq!(ids[0], ada_new.id);
        assert!(ids.contains(&bob.id.as_str()) && ids.contains(&ada_old.id.as_str()));
    }
}

#[tokio::test]
async fn consume_auth_code_is_single_use_and_a_replay_revokes_its_grant() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, s) = signed_in(&*t.store, "1001").await;
        let (hash, issued) = code(&s, NOW + Duration::seconds(60));
        t.store.insert_auth_code(&issued).await.unwrap();

        let first = t.store.consume_auth_code(&hash, NOW).await.unwrap();
        let g = GrantRecord {
            id: issued.grant_id.clone(),
            ..grant(CLIENT, &s)
        };
        t.store.insert_grant(&g, None).await.unwrap();
        let second = t.store.consume_auth_code(&hash, NOW).await.unwrap();

        assert_eq!(first, CodeRedemption::Redeemed(Box::new(issued.clone())));
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
        let (_, s) = signed_in(&*t.store, "1001").await;
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
        let (_, s) = signed_in(&*t.store, "1001").await;
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
async fn rotate_refresh_token_spends_the_old_token_and_returns_the_grant() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (g, old) = granted(&*t.store).await;
        let (new_hash, new) = refresh(NOW + Duration::days(1));

        let rotation = t
            .store
            .rotate_refresh_token(&old, CLIENT, &new, NOW)
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
            .rotate_refresh_token(&old, CLIENT, &new, NOW)
            .await
            .unwrap();
        let (_, third) = refresh(NOW + Duration::days(1));

        let reuse = t
            .store
            .rotate_refresh_token(&old, CLIENT, &third, NOW)
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
            .rotate_refresh_token(&new_hash, CLIENT, &fourth, NOW)
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
            .rotate_refresh_token(&old, "forum", &new, NOW)
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
            .rotate_refresh_token(&old, CLIENT, &other, NOW)
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
            .end_session(ended_grant.session_id.as_deref().unwrap(), NOW)
            .await
            .unwrap();
        let (_, new) = refresh(NOW + Duration::days(2));

        let rotate = |old: TokenHash, at| {
            let (store, new) = (Arc::clone(&t.store), new.clone());
            async move {
                store
                    .rotate_refresh_token(&old, CLIENT, &new, at)
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
                tokio::spawn(
                    async move { store.rotate_refresh_token(&old, CLIENT, &new, NOW).await },
                )
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
            .check_access("no-such-grant", "j", NOW)
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
async fn gc_removes_expired_rows_and_keeps_live_ones() {
    for backend in backends() {
        let t = fixture(backend).await;
        let later = NOW + Duration::days(2);
        let (_, live_session) = session("1001", later + Duration::hours(1));
        let (_, dead_session) = session("1001", NOW + Duration::hours(1));
        t.store.upsert_user(&user("1001")).await.unwrap();
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
        let login = UpstreamLogin {
            state_hash: TokenHash::of("s"),
            binding_hash: TokenHash::of("b"),
            pkce_verifier: "v".repeat(43),
            request: "{}".to_owned(),
            created_at: NOW,
            expires_at: NOW + Duration::minutes(10),
        };
        t.store.insert_upstream_login(&login).await.unwrap();

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
            t.store.list_sessions(Some("1001"), NOW).await.unwrap(),
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
async fn connect_creates_a_missing_sqlite_folder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/deeper/guildgate.db");

    let store = connect(&format!("sqlite://{}", file.display()), 2)
        .await
        .unwrap();

    store.migrate().await.unwrap();
    assert!(file.exists());
}

#[tokio::test]
async fn connect_fails_fast_with_the_reason_when_postgres_is_unreachable() {
    let started = std::time::Instant::now();

    let result = connect("postgres://postgres:hunter2@127.0.0.1:1/none", 2).await;

    let Err(error) = result else {
        panic!("nothing listens on port 1")
    };
    assert!(matches!(error, StoreError::Backend(_)), "got {error:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(7),
        "took {:?}",
        started.elapsed()
    );
    assert!(!error.to_string().contains("hunter2"));
}

#[tokio::test]
async fn connect_rejects_an_unsupported_scheme_without_leaking_the_password() {
    let result = connect("mysql://root:hunter2@localhost/db", 2).await;

    let Err(error) = result else {
        panic!("mysql is not supported")
    };
    assert!(
        matches!(error, StoreError::UnsupportedUrl(_)),
        "got {error:?}"
    );
    assert!(!error.to_string().contains("hunter2"));
}
