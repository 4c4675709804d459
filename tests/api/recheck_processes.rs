//! The re-check's single flight across real processes: two `guildgate serve` of one deployment
//! (one Postgres database, one keys folder, the test's fake Discord) re-check one person at the
//! same moment, and Discord's rotating refresh token is spent once.

use crate::browser::{Browser, query_of};
use crate::helpers::BOB;
use crate::processes::{Deployment, free_port, postgres_or_skip, redeem, refresh};
use crate::test_db::Backend;
use guildgate::discord::fake::{FakeRoute, Fault};
use std::time::Duration;

const COMMUNITY: &str = "812345678901234567";
const APPS: [(&str, &str); 3] = [
    ("wiki", "wiki-secret-wiki-secret"),
    ("forum", "forum-secret-forum-secret"),
    ("chat", "chat-secret-chat-secret"),
];

/// The deployment of this test: three apps of one community, membership snapshots that age in
/// a second, Discord access tokens that have expired by the time anyone refreshes.
async fn deployment() -> Deployment {
    let clients: String = APPS
        .iter()
        .map(|(id, secret)| {
            format!(
                "[[clients]]\nid = \"{id}\"\nsecret = \"{secret}\"\n\
                 redirect_uris = [\"https://{id}.example.com/cb\"]\n\
                 allowed_guilds = [\"{COMMUNITY}\"]\nrefresh_tokens = true\n"
            )
        })
        .collect();
    let deployment = Deployment::new(Backend::Postgres, &clients)
        .await
        .with_env("DISCORD__MEMBERSHIP_TTL", "1s");
    deployment
        .discord
        .set_access_token_ttl(Duration::from_secs(1));
    deployment
}

/// Makes `user`'s membership snapshot and kept Discord access token `secs` older, as the
/// processes see them: what waiting that long would do, without the wait.
async fn age(deployment: &Deployment, user: &str, secs: i64) {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(deployment.database_url())
        .await
        .expect("connect to the test database");
    let aged = sqlx::query(
        "UPDATE users SET membership_fetched_at = membership_fetched_at - $2, \
         discord_token_expires_at = discord_token_expires_at - $2 WHERE id = $1",
    )
    .bind(user)
    .bind(secs)
    .execute(&mut conn)
    .await
    .expect("age the snapshot");
    assert_eq!(aged.rows_affected(), 1, "{user} has signed in");
    let _ = sqlx::Connection::close(conn).await;
}

#[tokio::test]
async fn two_processes_refreshing_one_person_at_once_spend_the_discord_token_once() {
    if !postgres_or_skip("several processes") {
        return;
    }
    // Arrange: process A serves the issuer's address, B another; Bob signs in to three apps.
    let deployment = deployment().await;
    let a = deployment.start_at_issuer().await;
    let b = deployment.start(free_port()).await;
    let mut browser = Browser::new();
    let mut tokens = Vec::new();
    for app in APPS {
        let redirect = format!("https://{}.example.com/cb", app.0);
        let url = format!(
            "{}/authorize?client_id={}&redirect_uri={redirect}&response_type=code&scope=openid&state=s",
            deployment.issuer, app.0
        );
        let mut page = browser.get(&url).await;
        if page
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with(deployment.discord.base_url().as_str()))
        {
            deployment.discord.sign_in_as(Some(BOB));
            let back = browser.get(&page.location.unwrap()).await;
            page = browser
                .get(&back.location.expect("back from Discord"))
                .await;
        }
        let location = page
            .location
            .unwrap_or_else(|| panic!("a redirect to {}: {} {}", app.0, page.status, page.body));
        let code = query_of(&location)["code"].clone();
        let (status, body) = redeem(&a, app, &code, &redirect).await;
        assert_eq!(status, 200, "{body}");
        tokens.push(
            body["refresh_token"]
                .as_str()
                .expect("a refresh token")
                .to_owned(),
        );
    }
    // The snapshot is older than membership_ttl (1 s) and the kept Discord access token has
    // expired, so each refresh re-checks with Discord's refresh token.
    age(&deployment, BOB, 2).await;
    let before = deployment.discord.refresh_token_uses();
    deployment.discord.inject(
        FakeRoute::Token,
        Fault::Slow {
            delay: Duration::from_millis(300),
            times: 1,
        },
    );

    // Act: one app refreshes on A, two on B, at the same moment.
    let (wiki, forum, chat) = tokio::join!(
        refresh(&a, APPS[0], &tokens[0]),
        refresh(&b, APPS[1], &tokens[1]),
        refresh(&b, APPS[2], &tokens[2]),
    );

    // Assert
    for (status, body) in [wiki, forum, chat] {
        assert_eq!(status, 200, "every app gets new tokens: {body}");
    }
    assert_eq!(
        deployment.discord.refresh_token_uses() - before,
        1,
        "one Discord token refresh across both processes"
    );
}
