//! The back-channel logout queue: enqueue, claim under a lease, retry, finish.

use super::{ADA, NOW, client, fixture, person};
use crate::test_db::backends;
use guildgate::domain::SessionId;
use guildgate::store::{LogoutDelivery, Store};
use std::collections::HashSet;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const LEASE: std::time::Duration = std::time::Duration::from_secs(30);

fn delivery(id: &str, next_attempt_at: OffsetDateTime) -> LogoutDelivery {
    LogoutDelivery {
        id: id.to_owned(),
        client_id: client("wiki"),
        session_id: Some(SessionId::parse("a-session").unwrap()),
        user_id: person(ADA),
        uri: "https://wiki.example.com/backchannel-logout".to_owned(),
        logout_token: r#"{"iss":"https://id.example.com","aud":"wiki","sid":"a-session"}"#
            .to_owned(),
        attempts: 0,
        next_attempt_at,
        created_at: NOW - Duration::minutes(1),
    }
}

async fn claim(store: &dyn Store, at: OffsetDateTime, limit: u32) -> Vec<LogoutDelivery> {
    store
        .claim_logout_deliveries(at, LEASE, limit)
        .await
        .unwrap()
}

/// By id: the order of a claim's answer is not part of the contract.
fn by_id(mut deliveries: Vec<LogoutDelivery>) -> Vec<LogoutDelivery> {
    deliveries.sort_by(|a, b| a.id.cmp(&b.id));
    deliveries
}

fn ids(deliveries: &[LogoutDelivery]) -> Vec<&str> {
    let mut ids: Vec<_> = deliveries.iter().map(|d| d.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn claim_returns_due_deliveries_only_and_leases_them() {
    for backend in backends() {
        let t = fixture(backend).await;
        let overdue = delivery("a", NOW - Duration::minutes(1));
        let due = LogoutDelivery {
            session_id: None,
            ..delivery("b", NOW)
        };
        let later = delivery("c", NOW + Duration::minutes(10));
        let queue = [overdue.clone(), due.clone(), later];
        t.store.enqueue_logout_deliveries(&queue).await.unwrap();

        let first = claim(&*t.store, NOW, 10).await;
        let within_lease = claim(&*t.store, NOW + Duration::seconds(29), 10).await;
        let after_lease = claim(&*t.store, NOW + Duration::seconds(30), 10).await;

        let leased = |d: LogoutDelivery| LogoutDelivery {
            next_attempt_at: NOW + Duration::seconds(30),
            ..d
        };
        assert_eq!(by_id(first), vec![leased(overdue), leased(due)]);
        assert_eq!(within_lease, vec![], "a claimed delivery is leased");
        assert_eq!(
            ids(&after_lease),
            vec!["a", "b"],
            "an expired lease frees it"
        );
    }
}

#[tokio::test]
async fn claim_takes_at_most_limit_deliveries_the_longest_due_first() {
    for backend in backends() {
        let t = fixture(backend).await;
        let queue = [
            delivery("late", NOW - Duration::minutes(1)),
            delivery("later", NOW),
            delivery("early", NOW - Duration::minutes(5)),
        ];
        t.store.enqueue_logout_deliveries(&queue).await.unwrap();

        let two = claim(&*t.store, NOW, 2).await;
        let rest = claim(&*t.store, NOW, 2).await;

        assert_eq!(ids(&two), vec!["early", "late"]);
        assert_eq!(ids(&rest), vec!["later"]);
    }
}

#[tokio::test]
async fn retry_reschedules_a_delivery_and_finish_removes_it() {
    for backend in backends() {
        let t = fixture(backend).await;
        let empty = t.store.logout_queue_depth().await.unwrap();
        t.store
            .enqueue_logout_deliveries(&[delivery("a", NOW)])
            .await
            .unwrap();
        claim(&*t.store, NOW, 10).await;
        let queued = t.store.logout_queue_depth().await.unwrap();
        assert_eq!(
            (empty, queued),
            (0, 1),
            "the depth counts leased deliveries too"
        );
        let retry_at = NOW + Duration::minutes(5);

        t.store
            .retry_logout_delivery("a", 1, retry_at)
            .await
            .unwrap();

        let before = claim(&*t.store, retry_at - Duration::seconds(1), 10).await;
        let at_retry = claim(&*t.store, retry_at, 10).await;
        assert_eq!(before, vec![], "not due before its retry time");
        assert_eq!(at_retry.len(), 1);
        assert_eq!(at_retry[0].attempts, 1);
        t.store.finish_logout_delivery("a").await.unwrap();
        let much_later = claim(&*t.store, NOW + Duration::days(1), 10).await;
        assert_eq!(much_later, vec![], "a finished delivery is gone");
        assert_eq!(t.store.logout_queue_depth().await.unwrap(), 0);
        t.store
            .finish_logout_delivery("a")
            .await
            .expect("finishing twice is harmless");
    }
}

#[tokio::test]
async fn enqueue_is_all_or_nothing() {
    for backend in backends() {
        let t = fixture(backend).await;
        let twice = [delivery("a", NOW), delivery("b", NOW), delivery("a", NOW)];

        let result = t.store.enqueue_logout_deliveries(&twice).await;

        assert!(result.is_err(), "a duplicate id must fail the batch");
        assert_eq!(claim(&*t.store, NOW, 10).await, vec![]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_return_the_same_delivery() {
    for backend in backends() {
        let t = fixture(backend).await;
        let queue: Vec<_> = (0..40)
            .map(|i| delivery(&format!("d{i:02}"), NOW - Duration::seconds(i)))
            .collect();
        t.store.enqueue_logout_deliveries(&queue).await.unwrap();

        let claimers: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&t.store);
                tokio::spawn(async move { claim(&*store, NOW, 7).await })
            })
            .collect();
        let mut seen = HashSet::new();
        for claimer in claimers {
            for d in claimer.await.unwrap() {
                assert!(seen.insert(d.id.clone()), "{} was claimed twice", d.id);
            }
        }
        for d in claim(&*t.store, NOW, 40).await {
            assert!(seen.insert(d.id.clone()), "{} was claimed twice", d.id);
        }

        assert_eq!(seen.len(), 40, "every due delivery is claimed exactly once");
    }
}
