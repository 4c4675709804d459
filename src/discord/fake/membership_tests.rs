//! `DiscordClient::fetch_membership` against the fake over real HTTP: which endpoints it calls,
//! the per-person cache, 429s on the member endpoint, and membership changing mid-session.

use super::tests::*;
use super::*;
use crate::discord::{DiscordClient, DiscordError, DiscordRoute, Membership};
use secrecy::SecretString;
use std::time::Instant;
use time::OffsetDateTime;

const DAVE: &str = "1146178934729273344";
const MEMBER_ROLE: &str = "845611212939132928";
const PARTNER_ROLE: &str = "903377812345678901";

fn guilds(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|g| (*g).to_owned()).collect()
}

async fn fetch(
    discord: &DiscordClient,
    user: &str,
    token: &SecretString,
    role_guilds: &[&str],
    want_guilds: bool,
) -> Result<Membership, DiscordError> {
    discord
        .fetch_membership(
            user,
            token,
            &guilds(role_guilds),
            want_guilds,
            OffsetDateTime::now_utc(),
        )
        .await
}

#[tokio::test]
async fn a_burst_of_lookups_calls_each_endpoint_once_per_person_and_guild() {
    // Arrange
    let fake = start();
    let discord = default_client(&fake);
    let bob = tokens_for(&fake, &discord, BOB).await.access_token;
    let alice = tokens_for(&fake, &discord, ALICE).await.access_token;

    // Act: 10 concurrent lookups for Bob, then 10 one after another.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (discord, bob) = (discord.clone(), bob.clone());
        burst.spawn(async move { fetch(&discord, BOB, &bob, &[COMMUNITY, PARTNERS], true).await });
    }
    let mut answers = burst.join_all().await;
    for _ in 0..10 {
        answers.push(fetch(&discord, BOB, &bob, &[COMMUNITY, PARTNERS], true).await);
    }
    let alice_membership = fetch(&discord, ALICE, &alice, &[COMMUNITY, PARTNERS], true)
        .await
        .expect("alice");

    // Assert
    let expected = Membership {
        guilds: guilds(&[COMMUNITY, PARTNERS]),
        roles: [
            (COMMUNITY.to_owned(), guilds(&[MEMBER_ROLE, STAFF_ROLE])),
            (PARTNERS.to_owned(), guilds(&[PARTNER_ROLE])),
        ]
        .into(),
        connections: Vec::new(),
        // Bob's server nickname and server avatar come with the member object.
        profiles: [(
            COMMUNITY.to_owned(),
            crate::discord::MemberProfile {
                nick: Some("Bob".to_owned()),
                avatar: Some("5e1f0c9a8b7d6e4f3a2b1c0d9e8f7a6b".to_owned()),
            },
        )]
        .into(),
        ..Membership::default()
    };
    assert_eq!(answers.len(), 20);
    for answer in answers {
        assert_eq!(answer.expect("membership"), expected);
    }
    assert_eq!(
        alice_membership.guilds,
        guilds(&[COMMUNITY]),
        "Alice is only in the community guild"
    );
    assert_eq!(
        fake.calls(FakeRoute::Member),
        3,
        "Bob: community + partners; Alice: community only (the list says she is not a partner)"
    );
    assert_eq!(
        fake.calls(FakeRoute::Guilds),
        2,
        "one guild list per person"
    );
    assert_eq!(discord.stats().route(DiscordRoute::Member).calls, 3);
}

#[tokio::test]
async fn forget_membership_and_the_ttl_make_the_next_lookup_ask_discord_again() {
    // Arrange
    let fake = start();
    let discord = default_client(&fake);
    let bob = tokens_for(&fake, &discord, BOB).await.access_token;
    let now = OffsetDateTime::now_utc();
    let community = guilds(&[COMMUNITY]);
    let lookup = |at: OffsetDateTime| discord.fetch_membership(BOB, &bob, &community, true, at);
    lookup(now).await.expect("first");
    lookup(now).await.expect("cached");
    assert_eq!(fake.calls(FakeRoute::Member), 1);

    // Act + Assert: forgetting the person drops both the guild list and the member answer.
    discord.forget_membership(BOB);
    lookup(now).await.expect("after forget");
    assert_eq!(fake.calls(FakeRoute::Member), 2);
    assert_eq!(fake.calls(FakeRoute::Guilds), 2);

    // Another person's entries are untouched by forgetting Bob.
    discord.forget_membership(ALICE);
    lookup(now).await.expect("still cached");
    assert_eq!(fake.calls(FakeRoute::Member), 2);

    // Past the TTL (5 minutes in the test config) the entries no longer count.
    lookup(now + Duration::from_secs(301))
        .await
        .expect("expired");
    assert_eq!(fake.calls(FakeRoute::Member), 3);
    assert_eq!(fake.calls(FakeRoute::Guilds), 3);
}

#[tokio::test]
async fn without_the_guild_list_the_member_endpoint_decides_membership() {
    // Arrange
    let fake = start();
    let discord = client(
        &fake,
        &["identify", "guilds.members.read"],
        Duration::from_secs(5),
        Duration::from_secs(2),
    );
    let carol = tokens_for(&fake, &discord, CAROL).await.access_token;
    let alice = tokens_for(&fake, &discord, ALICE).await.access_token;

    // Act
    let carol = fetch(&discord, CAROL, &carol, &[COMMUNITY, PARTNERS], false)
        .await
        .expect("carol");
    let alice = fetch(&discord, ALICE, &alice, &[COMMUNITY, PARTNERS], false)
        .await
        .expect("alice");

    // Assert
    assert_eq!(carol, Membership::default(), "Carol is in no guild");
    assert_eq!(alice.guilds, guilds(&[COMMUNITY]));
    assert_eq!(alice.roles[COMMUNITY], guilds(&[MEMBER_ROLE]));
    assert_eq!(
        fake.calls(FakeRoute::Guilds),
        0,
        "no `guilds` scope, no list"
    );
    assert_eq!(
        fake.calls(FakeRoute::Member),
        4,
        "each role guild asked once per person"
    );
}

#[tokio::test]
async fn no_role_guilds_means_no_member_calls() {
    let fake = start();
    let discord = default_client(&fake);
    let bob = tokens_for(&fake, &discord, BOB).await.access_token;
    let m = fetch(&discord, BOB, &bob, &[], true).await.expect("list");
    assert_eq!(m.guilds, guilds(&[COMMUNITY, PARTNERS]));
    assert!(m.roles.is_empty());
    assert_eq!(fake.calls(FakeRoute::Member), 0);
}

#[tokio::test]
async fn a_burst_of_short_429s_on_the_member_endpoint_is_waited_out() {
    // Arrange
    let fake = start();
    let discord = default_client(&fake);
    let bob = tokens_for(&fake, &discord, BOB).await.access_token;
    fake.inject(
        FakeRoute::Member,
        Fault::RateLimited {
            retry_after: 0.05,
            times: 3,
        },
    );

    // Act
    let m = fetch(&discord, BOB, &bob, &[COMMUNITY], true)
        .await
        .expect("completes after the 429s");

    // Assert
    assert_eq!(m.roles[COMMUNITY], guilds(&[MEMBER_ROLE, STAFF_ROLE]));
    assert_eq!(
        fake.calls(FakeRoute::Member),
        4,
        "three 429s, then the answer"
    );
    let stats = discord.stats().route(DiscordRoute::Member);
    assert_eq!((stats.calls, stats.rate_limited), (4, 3));
}

#[tokio::test]
async fn a_long_429_on_the_member_endpoint_fails_fast_and_is_not_cached() {
    // Arrange
    let fake = start();
    let discord = default_client(&fake);
    let bob = tokens_for(&fake, &discord, BOB).await.access_token;
    fake.inject(
        FakeRoute::Member,
        Fault::RateLimited {
            retry_after: 60.0,
            times: 1,
        },
    );

    // Act
    let started = Instant::now();
    let err = fetch(&discord, BOB, &bob, &[COMMUNITY], true)
        .await
        .expect_err("over the retry budget");

    // Assert
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    match err {
        DiscordError::RateLimited { retry_after } => {
            assert_eq!(retry_after, Duration::from_secs(60));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(
        DiscordError::RateLimited {
            retry_after: Duration::from_secs(60)
        }
        .is_temporary(),
        "the app answers temporarily_unavailable"
    );
    assert_eq!(fake.calls(FakeRoute::Member), 1, "no retry");
    // The failure was not cached as "not a member". This client now holds the route's bucket
    // as empty for the 60 s Discord announced, so a fresh client (no buckets yet) asks again.
    let fresh = default_client(&fake);
    let m = fetch(&fresh, BOB, &bob, &[COMMUNITY], true)
        .await
        .expect("answered");
    assert!(m.roles.contains_key(COMMUNITY));
}

#[tokio::test]
async fn membership_changes_in_the_fake_show_up_after_forget_membership() {
    // Arrange
    let fake = start();
    let discord = default_client(&fake);
    let dave = tokens_for(&fake, &discord, DAVE).await.access_token;
    let bob = tokens_for(&fake, &discord, BOB).await.access_token;
    let before = fetch(&discord, DAVE, &dave, &[COMMUNITY], true)
        .await
        .expect("before");
    assert_eq!(before.guilds, guilds(&[COMMUNITY]));
    fetch(&discord, BOB, &bob, &[COMMUNITY], true)
        .await
        .expect("bob");

    // Act: Dave leaves the guild; Bob loses the Staff role.
    assert!(fake.remove_from_guild(DAVE, COMMUNITY));
    assert!(fake.set_member_roles(BOB, COMMUNITY, &[MEMBER_ROLE]));
    let cached = fetch(&discord, DAVE, &dave, &[COMMUNITY], true)
        .await
        .expect("cached");
    discord.forget_membership(DAVE);
    discord.forget_membership(BOB);
    let dave_after = fetch(&discord, DAVE, &dave, &[COMMUNITY], true)
        .await
        .expect("after");
    let bob_after = fetch(&discord, BOB, &bob, &[COMMUNITY], true)
        .await
        .expect("after");

    // Assert
    assert_eq!(cached, before, "within the TTL the cached answer stands");
    assert_eq!(dave_after, Membership::default(), "Dave is in no guild now");
    assert_eq!(bob_after.roles[COMMUNITY], guilds(&[MEMBER_ROLE]));
}

#[tokio::test]
async fn a_newer_not_a_member_answer_overrides_a_cached_guild_list() {
    // Arrange: the guild list (with Dave in the guild) is cached, no member answer yet.
    let fake = start();
    let discord = default_client(&fake);
    let dave = tokens_for(&fake, &discord, DAVE).await.access_token;
    fetch(&discord, DAVE, &dave, &[], true).await.expect("list");
    fake.remove_from_guild(DAVE, COMMUNITY);

    // Act: now a rule needs roles in that guild.
    let m = fetch(&discord, DAVE, &dave, &[COMMUNITY], true)
        .await
        .expect("member lookup");

    // Assert
    assert_eq!(fake.calls(FakeRoute::Guilds), 1, "list still cached");
    assert_eq!(fake.calls(FakeRoute::Member), 1);
    assert_eq!(m, Membership::default(), "left the guild: fail closed");
}
