//! The client against the fake's faults: 429s, exhausted buckets, 5xx, timeouts, bad JSON, `iss`.

use super::tests::*;
use super::*;
use crate::discord::{DiscordClient, DiscordClientConfig, DiscordError, DiscordRoute};
use secrecy::ExposeSecret;
use std::time::Instant;

#[tokio::test]
async fn a_429_within_budget_is_waited_out_and_retried() {
    let fake = start();
    let discord = default_client(&fake);
    let tokens = tokens_for(&fake, &discord, ALICE).await;
    fake.inject(
        FakeRoute::Me,
        Fault::RateLimited {
            retry_after: 0.2,
            times: 1,
        },
    );
    let started = Instant::now();
    discord
        .fetch_user(&tokens.access_token)
        .await
        .expect("retried");
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert_eq!(fake.calls(FakeRoute::Me), 2);
    assert_eq!(discord.stats().route(DiscordRoute::Me).rate_limited, 1);
}

#[tokio::test]
async fn a_429_beyond_budget_is_rate_limited_without_retrying() {
    let fake = start();
    let discord = default_client(&fake);
    let tokens = tokens_for(&fake, &discord, ALICE).await;
    fake.inject(
        FakeRoute::Guilds,
        Fault::RateLimited {
            retry_after: 64.57,
            times: 1,
        },
    );
    let err = discord
        .fetch_guilds(&tokens.access_token)
        .await
        .expect_err("over budget");
    match err {
        DiscordError::RateLimited { retry_after } => {
            assert_eq!(retry_after, Duration::from_secs_f64(64.57))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(
        DiscordError::RateLimited {
            retry_after: Duration::ZERO
        }
        .is_temporary()
    );
    assert_eq!(fake.calls(FakeRoute::Guilds), 1);
}

#[tokio::test]
async fn an_exhausted_bucket_is_waited_for_before_the_next_call() {
    let fake = start();
    let discord = default_client(&fake);
    let tokens = tokens_for(&fake, &discord, ALICE).await;
    fake.set_rate_limit(FakeRoute::Me, 1, Duration::from_millis(400));
    discord
        .fetch_user(&tokens.access_token)
        .await
        .expect("first");
    let started = Instant::now();
    discord
        .fetch_user(&tokens.access_token)
        .await
        .expect("second waits, then succeeds");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        discord.stats().route(DiscordRoute::Me).rate_limited,
        0,
        "never hit a 429"
    );
    // With no budget, the client refuses to call rather than collect a 429. The fake keeps a
    // window per token: a new token starts with a fresh one, without waiting for the old to end.
    let impatient = client(&fake, ALL_SCOPES, Duration::from_secs(5), Duration::ZERO);
    let fresh = tokens_for(&fake, &impatient, ALICE).await;
    impatient
        .fetch_user(&fresh.access_token)
        .await
        .expect("fresh bucket");
    let err = impatient
        .fetch_user(&fresh.access_token)
        .await
        .expect_err("bucket empty");
    assert!(matches!(err, DiscordError::RateLimited { .. }), "{err:?}");
    assert_eq!(fake.calls(FakeRoute::Me), 3);
}

#[tokio::test]
async fn one_5xx_is_retried_and_two_are_unavailable() {
    let fake = start();
    let discord = default_client(&fake);
    let tokens = tokens_for(&fake, &discord, ALICE).await;
    fake.inject(FakeRoute::Me, Fault::ServerError { times: 1 });
    discord
        .fetch_user(&tokens.access_token)
        .await
        .expect("second try works");
    fake.inject(FakeRoute::Me, Fault::ServerError { times: 2 });
    let err = discord
        .fetch_user(&tokens.access_token)
        .await
        .expect_err("still down");
    assert!(
        matches!(err, DiscordError::Unavailable(_)) && err.is_temporary(),
        "{err:?}"
    );
    assert_eq!(fake.calls(FakeRoute::Me), 4);
}

#[tokio::test]
async fn slow_answers_time_out_and_broken_json_is_malformed() {
    let fake = start();
    let discord = client(
        &fake,
        ALL_SCOPES,
        Duration::from_millis(300),
        Duration::ZERO,
    );
    let tokens = tokens_for(&fake, &discord, ALICE).await;
    fake.inject(
        FakeRoute::Member,
        Fault::Slow {
            delay: Duration::from_secs(2),
            times: 1,
        },
    );
    let err = discord
        .fetch_member(&tokens.access_token, COMMUNITY)
        .await
        .expect_err("slow");
    assert!(matches!(err, DiscordError::Timeout), "{err:?}");
    fake.inject(FakeRoute::Me, Fault::MalformedJson { times: 1 });
    let err = discord
        .fetch_user(&tokens.access_token)
        .await
        .expect_err("broken");
    assert!(
        matches!(err, DiscordError::Malformed(_)) && !err.is_temporary(),
        "{err:?}"
    );
    fake.inject(FakeRoute::Token, Fault::MalformedJson { times: 1 });
    let (code, verifier) = code_for(&fake, &discord, ALICE).await;
    assert!(matches!(
        discord.exchange_code(&code, &verifier).await,
        Err(DiscordError::Malformed(_))
    ));
}

#[tokio::test]
async fn wrong_issuer_fault_changes_iss_until_cleared() {
    let fake = start();
    let discord = default_client(&fake);
    fake.inject(FakeRoute::Authorize, Fault::WrongIssuer);
    fake.sign_in_as(Some(ALICE));
    let url = discord.authorize_url("s", &pkce().1, None);
    assert_ne!(follow(url.as_str()).await["iss"], DISCORD_ISSUER);
    fake.clear_faults();
    assert_eq!(follow(url.as_str()).await["iss"], DISCORD_ISSUER);
}

#[tokio::test]
async fn api_answers_carry_rate_limit_headers_and_discord_error_bodies() {
    let fake = start();
    let resp = browser()
        .get(format!("{}/users/@me", fake.api_base_url()))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 401);
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-reset-after",
        "x-ratelimit-bucket",
    ] {
        assert!(resp.headers().contains_key(h), "missing {h}");
    }
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::json!({"message": "401: Unauthorized", "code": 0})
    );
    fake.inject(
        FakeRoute::Me,
        Fault::RateLimited {
            retry_after: 1.5,
            times: 1,
        },
    );
    let resp = browser()
        .get(format!("{}/users/@me", fake.api_base_url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert_eq!(resp.headers()["x-ratelimit-scope"], "user");
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false})
    );
}

#[tokio::test]
async fn tokens_never_show_in_debug_output() {
    let fake = start();
    let discord = default_client(&fake);
    let tokens = tokens_for(&fake, &discord, ALICE).await;
    let printed = format!("{tokens:?} {discord:?}");
    assert!(
        !printed.contains(tokens.access_token.expose_secret()),
        "{printed}"
    );
    assert!(!printed.contains("dev-discord-secret"), "{printed}");
}

#[tokio::test]
async fn an_unreachable_discord_is_unavailable_after_one_retry() {
    let fake = start();
    let discord = default_client(&fake);
    let tokens = tokens_for(&fake, &discord, ALICE).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let mut base = fake.api_base_url();
    base.set_port(Some(port)).expect("port");
    let offline = DiscordClient::new(DiscordClientConfig {
        api_base_url: base,
        ..config(&fake)
    })
    .expect("client");
    let err = offline
        .fetch_user(&tokens.access_token)
        .await
        .expect_err("offline");
    assert!(
        matches!(err, DiscordError::Unavailable(_)) && err.is_temporary(),
        "{err:?}"
    );
    assert_eq!(offline.stats().route(DiscordRoute::Me).calls, 2);
}

#[tokio::test]
async fn a_404_that_is_not_unknown_guild_is_an_error_not_a_non_member() {
    let fake = start();
    let discord = default_client(&fake);
    let tokens = tokens_for(&fake, &discord, ALICE).await;
    let mut base = fake.api_base_url();
    base.set_path("/api/v9000");
    let misconfigured = DiscordClient::new(DiscordClientConfig {
        api_base_url: base,
        ..config(&fake)
    })
    .expect("client");
    let err = misconfigured
        .fetch_member(&tokens.access_token, COMMUNITY)
        .await
        .expect_err("404");
    assert!(
        matches!(err, DiscordError::Rejected { status: 404, .. }),
        "{err:?}"
    );
}
