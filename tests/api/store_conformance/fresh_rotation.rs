//! A refresh in one trip (`rotate_refresh_token_fresh`): it spends the token only when nothing
//! could refuse the refresh, exactly once under concurrency, and returns what the refresh needs.

use super::*;
use crate::test_db::backends;
use guildgate::domain::Jkt;
use guildgate::store::{MembershipSnapshot, Rotation};

/// A grant whose person has a membership snapshot taken at `NOW`.
async fn granted_with_snapshot(t: &Fixture) -> (GrantRecord, TokenHash) {
    let (g, token) = granted(&*t.store).await;
    let snapshot = MembershipSnapshot {
        snapshot: r#"{"guilds":["812345678901234567"],"roles":{}}"#.to_owned(),
        fetched_at: NOW,
    };
    t.store
        .save_membership(&g.user_id, &snapshot)
        .await
        .unwrap();
    (g, token)
}

#[tokio::test]
async fn a_fresh_rotation_spends_once_and_returns_the_grant_its_person_and_snapshot() {
    for backend in backends() {
        // Arrange
        let t = fixture(backend).await;
        let (g, token) = granted_with_snapshot(&t).await;
        let later = NOW + Duration::minutes(1);

        // Act: idle expiry asked past the grant's end, with a snapshot fresh since NOW.
        let (new_hash, new) = refresh(g.expires_at + Duration::days(7));
        let done = t
            .store
            .rotate_refresh_token_fresh(
                &token,
                &client(CLIENT),
                &new,
                None,
                Some(NOW - Duration::seconds(1)),
                later,
            )
            .await
            .unwrap()
            .expect("rotated");

        // Assert
        assert_eq!(done.grant.id, g.id, "{backend:?}");
        assert_eq!(done.user.id, g.user_id);
        assert!(
            done.membership
                .unwrap()
                .snapshot
                .contains("812345678901234567")
        );
        let successor = t.store.find_refresh_grant(&new_hash, later).await.unwrap();
        assert_eq!(
            successor.map(|s| s.id),
            Some(g.id.clone()),
            "the new token works"
        );
        // Spent: the old token again is reuse (and revokes the grant), not a second rotation.
        let (_, again) = refresh(NOW + Duration::days(1));
        assert!(
            t.store
                .rotate_refresh_token_fresh(&token, &client(CLIENT), &again, None, None, later)
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            t.store
                .rotate_refresh_token(&token, &client(CLIENT), &again, later)
                .await
                .unwrap(),
            Rotation::Reused { .. }
        ));
        // The successor's idle expiry was capped at the grant's end.
        assert!(
            t.store
                .find_refresh_grant(&new_hash, g.expires_at)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn nothing_is_spent_when_something_could_still_refuse_the_refresh() {
    for backend in backends() {
        let t = fixture(backend).await;
        let later = NOW + Duration::minutes(1);
        let key = Jkt::parse("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I").unwrap();
        let other = Jkt::parse("1ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I").unwrap();
        // A stale snapshot, another client, and a grant bound to another DPoP key.
        let (g, token) = granted_with_snapshot(&t).await;
        let (_, new) = refresh(NOW + Duration::days(1));
        let stale = t
            .store
            .rotate_refresh_token_fresh(&token, &client(CLIENT), &new, None, Some(NOW), later)
            .await
            .unwrap();
        assert!(
            stale.is_none(),
            "{backend:?}: a snapshot not newer than asked"
        );
        let foreign = t
            .store
            .rotate_refresh_token_fresh(&token, &client("other"), &new, None, None, later)
            .await
            .unwrap();
        assert!(foreign.is_none(), "{backend:?}: another client's");
        let bound = GrantRecord {
            dpop_jkt: Some(key.clone()),
            ..grant(CLIENT, &signed_in(&*t.store, BEN).await.1)
        };
        let (bound_token, first) = refresh(NOW + Duration::days(1));
        t.store.insert_grant(&bound, Some(&first)).await.unwrap();
        for proof in [None, Some(&other)] {
            let refused = t
                .store
                .rotate_refresh_token_fresh(&bound_token, &client(CLIENT), &new, proof, None, later)
                .await
                .unwrap();
            assert!(refused.is_none(), "{backend:?}: proof {proof:?}");
        }
        // None of it spent anything: the tokens still rotate normally.
        let (_, next) = refresh(NOW + Duration::days(1));
        assert!(matches!(
            t.store
                .rotate_refresh_token(&token, &client(CLIENT), &next, later)
                .await
                .unwrap(),
            Rotation::Rotated(_)
        ));
        let bound_rotated = t
            .store
            .rotate_refresh_token_fresh(
                &bound_token,
                &client(CLIENT),
                &new,
                Some(&key),
                None,
                later,
            )
            .await
            .unwrap();
        assert_eq!(bound_rotated.map(|d| d.grant.id), Some(bound.id.clone()));
        let _ = g;
    }
}

#[tokio::test]
async fn ten_concurrent_fresh_rotations_of_one_token_give_exactly_one() {
    for backend in backends() {
        let t = fixture(backend).await;
        let (_, token) = granted_with_snapshot(&t).await;
        let later = NOW + Duration::minutes(1);
        let news: Vec<NewRefreshToken> = (0..10)
            .map(|_| refresh(NOW + Duration::days(1)).1)
            .collect();
        let wiki = client(CLIENT);
        let results = futures_util::future::join_all(news.iter().map(|new| {
            t.store
                .rotate_refresh_token_fresh(&token, &wiki, new, None, None, later)
        }))
        .await;
        let won = results
            .into_iter()
            .map(|r| r.expect("no error"))
            .filter(Option::is_some)
            .count();
        assert_eq!(won, 1, "{backend:?}");
    }
}
