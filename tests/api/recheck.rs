//! Membership re-checks with Discord: single flight per person at refresh (one Discord token
//! refresh however many apps, tabs or processes refresh at once), the end of a person's Discord
//! authorization, and the re-check when the SSO session opens another app.

use crate::browser::{Browser, Page, query_of};
use crate::helpers::{BOB, TestApp, eventually, spawn_app_with};
use crate::logout::receiver;
use guildgate::discord::fake::{FakeRoute, Fault};
use std::time::Duration;

const COMMUNITY: &str = "812345678901234567";
const STAFF_ROLE: &str = "845611301132730378";
const DAVE: &str = "1146178934729273344";

/// Past `discord.membership_ttl` (5 min) and the Discord access token's lifetime (set to 60 s).
const LATER: Duration = Duration::from_secs(6 * 60);

/// An app of the deployment: id, secret, redirect URI.
#[derive(Clone, Copy)]
struct App {
    id: &'static str,
    secret: &'static str,
}

impl App {
    fn redirect(self) -> String {
        format!("https://{}.example.com/cb", self.id)
    }
}

const WIKI: App = App {
    id: "wiki",
    secret: "wiki-secret-wiki-secret",
};
const FORUM: App = App {
    id: "forum",
    secret: "forum-secret-forum-secret",
};
const CHAT: App = App {
    id: "chat",
    secret: "chat-secret-chat-secret",
};
const ADMIN: App = App {
    id: "admin",
    secret: "admin-secret-admin-secret",
};
const PLAIN: App = App {
    id: "plain",
    secret: "plain-secret-plain-secret",
};

/// Three apps gated on the community server, one on the staff role, one with no rules;
/// `extra` is appended (back-channel URIs, global rules, grace).
fn config(backchannel: Option<&str>, extra: &str) -> String {
    let bc = backchannel
        .map(|uri| format!("backchannel_logout_uri = \"{uri}\""))
        .unwrap_or_default();
    let gated = [WIKI, FORUM, CHAT]
        .iter()
        .map(|app| {
            format!(
                r#"
[[clients]]
id = "{id}"
secret = "{secret}"
redirect_uris = ["https://{id}.example.com/cb"]
allowed_guilds = ["{COMMUNITY}"]
refresh_tokens = true
{bc}
"#,
                id = app.id,
                secret = app.secret,
            )
        })
        .collect::<String>();
    format!(
        r#"{gated}
[[clients]]
id = "admin"
secret = "admin-secret-admin-secret"
redirect_uris = ["https://admin.example.com/cb"]
required_roles = ["{COMMUNITY}:{STAFF_ROLE}"]
refresh_tokens = true

[[clients]]
id = "plain"
secret = "plain-secret-plain-secret"
redirect_uris = ["https://plain.example.com/cb"]
refresh_tokens = true

[secrets]
encryption_key = "{key}"
{extra}
"#,
        key = "cd".repeat(32)
    )
}

/// Starts guildgate; the fake Discord's access tokens live 60 s, so they have expired once the
/// test clock moves past the membership TTL.
async fn spawn(backchannel: Option<&str>, extra: &str) -> TestApp {
    let app = spawn_app_with(&config(backchannel, extra)).await;
    app.discord.set_access_token_ttl(Duration::from_secs(60));
    app
}

/// Sends `browser` to `app`'s authorization endpoint; if guildgate sends it to Discord, signs
/// in there as `user`. Returns the page that ends the attempt (the redirect to the app, or a
/// page).
async fn enter(test: &TestApp, browser: &mut Browser, app: App, user: &str) -> Page {
    enter_with(test, browser, app, user, &[]).await
}

async fn enter_with(
    test: &TestApp,
    browser: &mut Browser,
    app: App,
    user: &str,
    extra: &[(&str, &str)],
) -> Page {
    let mut params = vec![("state", "st")];
    params.extend_from_slice(extra);
    let first = browser
        .get(&test.authorize_url(app.id, &app.redirect(), &params))
        .await;
    if !goes_to_discord(test, &first) {
        return first;
    }
    test.discord.sign_in_as(Some(user));
    let back = browser.get(&first.location.unwrap()).await;
    browser
        .get(&back.location.expect("Discord redirects back"))
        .await
}

fn goes_to_discord(test: &TestApp, page: &Page) -> bool {
    page.status == 302
        && page
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with(test.discord.base_url().as_str()))
}

/// The authorization code in a redirect to the app, if there is one.
fn code_in(page: &Page) -> Option<String> {
    page.location
        .as_deref()
        .filter(|l| l.starts_with("https://"))
        .and_then(|l| query_of(l).get("code").cloned())
}

/// Signs `user` in to `app` (SSO when the browser has a session) and returns the refresh token.
async fn refresh_token_for(test: &TestApp, browser: &mut Browser, app: App, user: &str) -> String {
    let page = enter(test, browser, app, user).await;
    let code = code_in(&page)
        .unwrap_or_else(|| panic!("a code for {}: {} {}", app.id, page.status, page.body));
    let redirect = app.redirect();
    let response = test
        .token(
            Some((app.id, app.secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect),
            ],
        )
        .await;
    assert_eq!(response.status(), 200, "{}", app.id);
    let body: serde_json::Value = response.json().await.unwrap();
    body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

/// Bob signed in to the wiki, and the membership TTL (and his Discord access token) has since
/// run out.
async fn bob_in_the_wiki_after_the_ttl(extra: &str) -> (TestApp, Browser) {
    let test = spawn(None, extra).await;
    let mut browser = Browser::new();
    refresh_token_for(&test, &mut browser, WIKI, BOB).await;
    test.state.clock.advance(LATER);
    (test, browser)
}

/// Every Discord route guildgate re-checks with answers 500.
fn discord_down(test: &TestApp) {
    for route in [FakeRoute::Token, FakeRoute::Guilds, FakeRoute::Member] {
        test.discord.inject(route, Fault::ServerError { times: 50 });
    }
}

fn refresh_form(token: &str) -> [(&'static str, &str); 2] {
    [("grant_type", "refresh_token"), ("refresh_token", token)]
}

async fn refresh(test: &TestApp, app: App, token: &str) -> (u16, serde_json::Value) {
    let response = test
        .token(Some((app.id, app.secret)), &refresh_form(token))
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn apps_refreshing_at_once_after_discord_tokens_expired_all_succeed_with_one_discord_refresh()
{
    // Arrange: one person in three apps; the snapshot and the Discord access token have expired.
    let test = spawn(None, "").await;
    let mut browser = Browser::new();
    let wiki = refresh_token_for(&test, &mut browser, WIKI, BOB).await;
    let forum = refresh_token_for(&test, &mut browser, FORUM, BOB).await;
    let chat = refresh_token_for(&test, &mut browser, CHAT, BOB).await;
    test.state.clock.advance(LATER);
    let before = test.discord.refresh_token_uses();
    // The first Discord token refresh takes a while, so the others surely arrive meanwhile.
    test.discord.inject(
        FakeRoute::Token,
        Fault::Slow {
            delay: Duration::from_millis(300),
            times: 1,
        },
    );

    // Act: the three apps refresh at the same moment.
    let (a, b, c) = tokio::join!(
        refresh(&test, WIKI, &wiki),
        refresh(&test, FORUM, &forum),
        refresh(&test, CHAT, &chat)
    );
    let answers = [a, b, c];

    // Assert
    for (status, body) in &answers {
        assert_eq!(*status, 200, "every app gets new tokens: {body}");
    }
    assert_eq!(
        test.discord.refresh_token_uses() - before,
        1,
        "Discord's rotating refresh token is spent exactly once"
    );
}

#[tokio::test]
async fn two_guildgate_instances_on_one_database_refreshing_one_person_spend_the_discord_token_once()
 {
    // Arrange: two processes of one deployment (one database, no shared memory).
    let test = spawn(None, "").await;
    let mut browser = Browser::new();
    let wiki = refresh_token_for(&test, &mut browser, WIKI, BOB).await;
    let forum = refresh_token_for(&test, &mut browser, FORUM, BOB).await;
    let chat = refresh_token_for(&test, &mut browser, CHAT, BOB).await;
    let other = test.sibling().await;
    test.state.clock.advance(LATER);
    other.state.clock.advance(LATER);
    let before = test.discord.refresh_token_uses();
    // The first Discord token refresh takes a while, so the others surely arrive meanwhile.
    test.discord.inject(
        FakeRoute::Token,
        Fault::Slow {
            delay: Duration::from_millis(300),
            times: 1,
        },
    );

    // Act: two apps refresh on the first process, one on the second, all at once.
    let on_other = async {
        let response = other
            .token((CHAT.id, CHAT.secret), &refresh_form(&chat))
            .await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    };
    let (a, b, c) = tokio::join!(
        refresh(&test, WIKI, &wiki),
        refresh(&test, FORUM, &forum),
        on_other
    );

    // Assert
    for (status, body) in [a, b, c] {
        assert_eq!(status, 200, "every app gets new tokens: {body}");
    }
    assert_eq!(
        test.discord.refresh_token_uses() - before,
        1,
        "one Discord token refresh across both processes"
    );
}

#[tokio::test]
async fn a_person_who_removed_the_app_at_discord_loses_every_app_at_the_next_recheck() {
    // Arrange: Bob uses two apps with back-channel logout, then removes guildgate from his
    // Discord account's authorized apps.
    let (bc, seen) = receiver(0).await;
    let test = spawn(Some(&bc), "").await;
    let mut browser = Browser::new();
    let wiki = refresh_token_for(&test, &mut browser, WIKI, BOB).await;
    let forum = refresh_token_for(&test, &mut browser, FORUM, BOB).await;
    test.discord.deauthorize(BOB);
    test.state.clock.advance(LATER);

    // Act: one app refreshes.
    let (status, body) = refresh(&test, WIKI, &wiki).await;

    // Assert: that app, the other app and the SSO session all end at once.
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = refresh(&test, FORUM, &forum).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the other app's grant ended too: {body}"
    );
    assert_eq!(
        test.discord.refresh_token_uses(),
        1,
        "Discord was asked once, not once per app"
    );
    let again = enter_with(&test, &mut browser, PLAIN, BOB, &[("prompt", "none")]).await;
    assert_eq!(
        query_of(&again.location.unwrap_or_default())
            .get("error")
            .map(String::as_str),
        Some("login_required"),
        "the SSO session ended"
    );
    assert!(
        eventually(5, || seen.lock().unwrap().len() >= 2).await,
        "both apps are told by back-channel logout: {} delivered",
        seen.lock().unwrap().len()
    );
}

#[tokio::test]
async fn a_removed_member_cannot_enter_another_gated_app_by_sso_after_the_ttl() {
    // Arrange: Dave signs in to the wiki, then is removed from the server.
    let test = spawn(None, "").await;
    let mut browser = Browser::new();
    refresh_token_for(&test, &mut browser, WIKI, DAVE).await;
    assert!(test.discord.remove_from_guild(DAVE, COMMUNITY));

    // Act + Assert: within the TTL the sign-in snapshot stands.
    let within = enter(&test, &mut browser, FORUM, DAVE).await;
    assert!(
        code_in(&within).is_some(),
        "within the TTL: {}",
        within.body
    );

    // After it, Discord is asked and the forum refuses him.
    test.state.clock.advance(LATER);
    let after = enter(&test, &mut browser, CHAT, DAVE).await;
    assert_eq!(after.status, 403, "{}", after.body);
    assert!(after.body.contains("access_denied"), "{}", after.body);
    assert!(!after.body.contains(COMMUNITY), "never lists guilds");
}

#[tokio::test]
async fn removed_from_a_globally_required_server_the_sso_session_ends_with_back_channel_logout() {
    // Arrange: the global rules require the community server.
    let (bc, seen) = receiver(0).await;
    let test = spawn(
        Some(&bc),
        &format!("[access]\nallowed_guilds = [\"{COMMUNITY}\"]\n"),
    )
    .await;
    let mut browser = Browser::new();
    refresh_token_for(&test, &mut browser, WIKI, DAVE).await;
    assert!(test.discord.remove_from_guild(DAVE, COMMUNITY));
    test.state.clock.advance(LATER);

    // Act
    let refused = enter(&test, &mut browser, PLAIN, DAVE).await;

    // Assert: refused, the session is over, and the wiki is told.
    assert_eq!(refused.status, 403, "{}", refused.body);
    let again = enter_with(&test, &mut browser, PLAIN, DAVE, &[("prompt", "none")]).await;
    assert_eq!(
        query_of(&again.location.unwrap_or_default())
            .get("error")
            .map(String::as_str),
        Some("login_required"),
        "the SSO session ended"
    );
    assert!(
        eventually(5, || !seen.lock().unwrap().is_empty()).await,
        "the wiki gets a back-channel logout"
    );
}

#[tokio::test]
async fn a_lost_role_closes_the_app_that_requires_it_to_sso() {
    // Arrange: Bob holds the staff role when he signs in, then loses it.
    let test = spawn(None, "").await;
    let mut browser = Browser::new();
    refresh_token_for(&test, &mut browser, WIKI, BOB).await;
    assert!(test.discord.set_member_roles(BOB, COMMUNITY, &[]));
    test.state.clock.advance(LATER);

    // Act
    let page = enter(&test, &mut browser, ADMIN, BOB).await;

    // Assert
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("access_denied"), "{}", page.body);
}

#[tokio::test]
async fn discord_down_at_sso_after_the_ttl_shows_a_page_and_the_grace_setting_lets_it_through() {
    for (grace, admitted) in [
        ("", false),
        ("[discord]\nmembership_grace = \"1h\"\n", true),
    ] {
        // Arrange
        let (test, mut browser) = bob_in_the_wiki_after_the_ttl(grace).await;
        discord_down(&test);

        // Act
        let page = enter(&test, &mut browser, FORUM, BOB).await;

        // Assert
        if admitted {
            assert!(
                code_in(&page).is_some(),
                "the grace period lets the last snapshot stand in: {} {}",
                page.status,
                page.body
            );
        } else {
            assert_eq!(page.status, 503, "fails closed: {}", page.body);
            assert!(
                page.body.contains("temporarily_unavailable"),
                "{}",
                page.body
            );
        }
    }
}

#[tokio::test]
async fn an_app_without_membership_rules_is_entered_by_sso_without_asking_discord() {
    // Arrange
    let (test, mut browser) = bob_in_the_wiki_after_the_ttl("").await;
    let calls = |route| test.discord.calls(route);
    let before = [FakeRoute::Token, FakeRoute::Guilds, FakeRoute::Member].map(calls);

    // Act
    let page = enter(&test, &mut browser, PLAIN, BOB).await;

    // Assert
    assert!(code_in(&page).is_some(), "{} {}", page.status, page.body);
    assert_eq!(
        [FakeRoute::Token, FakeRoute::Guilds, FakeRoute::Member].map(calls),
        before,
        "no Discord call"
    );
}

#[tokio::test]
async fn without_kept_discord_tokens_a_stale_sso_goes_back_through_discord() {
    // Arrange: the kept Discord tokens are gone (as after an encryption key change).
    let test = spawn(None, "").await;
    let mut browser = Browser::new();
    refresh_token_for(&test, &mut browser, WIKI, BOB).await;
    test.state
        .store
        .save_upstream_tokens(&crate::helpers::discord_id(BOB), None)
        .await
        .unwrap();
    test.state.clock.advance(LATER);

    // Act + Assert: prompt=none cannot send the person anywhere.
    let silent = enter_with(&test, &mut browser, FORUM, BOB, &[("prompt", "none")]).await;
    assert_eq!(
        query_of(&silent.location.unwrap_or_default())
            .get("error")
            .map(String::as_str),
        Some("login_required")
    );
    // Otherwise Discord is asked again (it answers at once for an authorized person).
    let first = browser
        .get(&test.authorize_url(FORUM.id, &FORUM.redirect(), &[("state", "st")]))
        .await;
    assert!(
        goes_to_discord(&test, &first),
        "{} {:?}",
        first.status,
        first.location
    );
    let page = enter(&test, &mut browser, FORUM, BOB).await;
    assert!(code_in(&page).is_some(), "{} {}", page.status, page.body);
}

/// What another guildgate (one without the lease, say an older release during a rolling
/// upgrade) does: spend the kept Discord refresh token itself and store what Discord returns.
async fn renew_behind_guildgates_back(test: &TestApp, user: &str) {
    let key = [0xcd_u8; 32];
    let sealer = guildgate::sealed::Keyring::new(&[key]).unwrap().unwrap();
    let stored = test
        .state
        .store
        .get_upstream_tokens(&crate::helpers::discord_id(user))
        .await
        .unwrap()
        .expect("kept tokens");
    let kept = guildgate::discord::kept_tokens::open_tokens(&sealer, user, &stored.ciphertext)
        .expect("opens with the configured key");
    use secrecy::ExposeSecret;
    let refresh_token = kept.refresh_token.expect("a refresh token");
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/oauth2/token", test.discord.api_base_url()))
        .basic_auth(test.discord.client_id(), Some(test.discord.client_secret()))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tokens = guildgate::discord::DiscordTokens {
        access_token: answer["access_token"].as_str().unwrap().to_owned().into(),
        refresh_token: answer["refresh_token"]
            .as_str()
            .map(|t| t.to_owned().into()),
        expires_in: Duration::from_secs(answer["expires_in"].as_u64().unwrap()),
        scopes: vec![],
    };
    let now = test.state.clock.now();
    let (ciphertext, access_expires_at) =
        guildgate::discord::kept_tokens::seal_tokens(&sealer, user, &tokens, now).unwrap();
    test.state
        .store
        .save_upstream_tokens(
            &crate::helpers::discord_id(user),
            Some(&guildgate::store::StoredUpstreamTokens {
                ciphertext,
                access_expires_at,
            }),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refresh_token_refused_because_another_renewal_won_the_race_uses_the_new_tokens() {
    // Arrange: Bob's Discord access token has expired; guildgate's refresh at Discord is slow,
    // and another renewal spends the same refresh token and stores new tokens meanwhile.
    let test = spawn(None, "").await;
    let mut browser = Browser::new();
    let wiki = refresh_token_for(&test, &mut browser, WIKI, BOB).await;
    test.state.clock.advance(LATER);
    test.discord.inject(
        FakeRoute::Token,
        Fault::Slow {
            delay: Duration::from_millis(500),
            times: 1,
        },
    );
    let calls = test.discord.calls(FakeRoute::Token);

    // Act
    let refreshing = tokio::spawn({
        let (address, token) = (test.address.clone(), wiki.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{address}/token"))
                .basic_auth(WIKI.id, Some(WIKI.secret))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
                .send()
                .await
                .unwrap()
        }
    });
    // Once guildgate's call is held at Discord, the other renewal goes through first.
    for _ in 0..50 {
        if test.discord.calls(FakeRoute::Token) > calls {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    renew_behind_guildgates_back(&test, BOB).await;
    let answer = refreshing.await.unwrap();

    // Assert: Discord refused guildgate's (now stale) refresh token, and that ended nothing.
    let status = answer.status().as_u16();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(status, 200, "the renewed tokens are used: {body}");
    assert_eq!(
        test.discord.refresh_token_uses(),
        2,
        "guildgate's refused use and the other renewal"
    );
    let again = enter(&test, &mut browser, FORUM, BOB).await;
    assert!(
        code_in(&again).is_some(),
        "the session lives on: {}",
        again.body
    );
}

#[tokio::test]
async fn discord_down_at_a_silent_sso_after_the_ttl_returns_temporarily_unavailable_to_the_app() {
    // Arrange
    let (test, mut browser) = bob_in_the_wiki_after_the_ttl("").await;
    discord_down(&test);

    // Act: prompt=none allows no page (OIDC Core §3.1.2.1).
    let page = enter_with(&test, &mut browser, FORUM, BOB, &[("prompt", "none")]).await;

    // Assert
    assert_eq!(page.status, 302, "{}", page.body);
    let back = query_of(&page.location.unwrap_or_default());
    assert_eq!(
        back.get("error").map(String::as_str),
        Some("temporarily_unavailable")
    );
    assert_eq!(back.get("state").map(String::as_str), Some("st"));
}
