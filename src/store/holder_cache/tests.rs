use super::*;
use crate::store::UserRecord;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2030-01-01 12:00 UTC);

fn holder(user: &str) -> TokenHolder {
    TokenHolder {
        user: UserRecord {
            id: DiscordId::parse(user).unwrap(),
            username: "ada".into(),
            global_name: None,
            avatar: None,
            email: None,
            email_verified: false,
            locale: None,
            updated_at: NOW,
        },
        membership: None,
    }
}

fn grant(id: &str) -> GrantId {
    GrantId::parse(id).unwrap()
}

/// A fresh cache holding token (g1, j1) of person 1 in session s1, live for an hour.
fn cached() -> HolderCache {
    let cache = HolderCache::default();
    cache.confirm();
    let ticket = cache.get(&grant("g1"), "j1", NOW).unwrap_err();
    cache.put(
        ticket,
        &grant("g1"),
        "j1",
        &holder("100000000000000001"),
        NOW + time::Duration::hours(1),
        Some(SessionId::parse("s1").unwrap()),
    );
    cache
}

#[test]
fn a_stored_answer_is_given_back_while_live_and_fresh() {
    let cache = cached();
    assert!(cache.get(&grant("g1"), "j1", NOW).is_ok());
    assert!(
        cache.get(&grant("g1"), "j2", NOW).is_err(),
        "another token of the grant"
    );
    assert!(
        cache
            .get(&grant("g1"), "j1", NOW + time::Duration::hours(1))
            .is_err(),
        "past the grant's or session's end"
    );
}

#[test]
fn each_kind_of_change_drops_what_depends_on_it() {
    for change in [
        Changed::Grant("g1".into()),
        Changed::Session("s1".into()),
        Changed::User("100000000000000001".into()),
        Changed::Jti("j1".into()),
        Changed::All,
    ] {
        let cache = cached();
        cache.apply(&[Changed::Grant("other".into()), change.clone()]);
        assert!(cache.get(&grant("g1"), "j1", NOW).is_err(), "{change:?}");
    }
    let cache = cached();
    cache.apply(&[Changed::User("100000000000000002".into())]);
    assert!(
        cache.get(&grant("g1"), "j1", NOW).is_ok(),
        "someone else's change"
    );
}

#[test]
fn an_answer_read_while_a_change_was_applied_is_not_stored() {
    let cache = HolderCache::default();
    cache.confirm();
    let ticket = cache.get(&grant("g1"), "j1", NOW).unwrap_err();
    cache.apply(&[Changed::Grant("g1".into())]);
    cache.put(
        ticket,
        &grant("g1"),
        "j1",
        &holder("100000000000000001"),
        NOW + time::Duration::hours(1),
        None,
    );
    assert!(cache.is_empty(), "it may predate the revocation");
}

#[test]
fn a_cache_whose_feed_went_quiet_does_not_answer() {
    let mut cache = cached();
    // Last confirmed five seconds ago.
    cache.epoch = Instant::now() - Duration::from_secs(5);
    cache.confirmed_ms.store(1, Ordering::Release);
    assert!(cache.get(&grant("g1"), "j1", NOW).is_err());
    cache.confirm();
    assert!(cache.get(&grant("g1"), "j1", NOW).is_ok());
}

#[test]
fn the_cache_holds_at_most_two_generations() {
    let cache = HolderCache::default();
    cache.confirm();
    for n in 0..(GENERATION * 3) {
        let g = grant(&format!("g{n}"));
        let ticket = cache.get(&g, "j", NOW).unwrap_err();
        cache.put(
            ticket,
            &g,
            "j",
            &holder("100000000000000001"),
            NOW + time::Duration::hours(1),
            None,
        );
    }
    assert!(cache.len() <= GENERATION * 2, "{}", cache.len());
    let last = grant(&format!("g{}", GENERATION * 3 - 1));
    assert!(cache.get(&last, "j", NOW).is_ok(), "the newest stay");
}
