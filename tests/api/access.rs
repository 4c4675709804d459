//! Discord-aware access: guild and role rules per app, the `groups` claim, pairwise `sub`,
//! membership re-checked at refresh, and Discord's rate limits.

use crate::browser::{Browser, query_of};
use crate::flow::decode_payload;
use crate::helpers::{ALICE, BOB, TestApp, spawn_app_with};
use guildgate::discord::fake::{FakeRoute, Fault};
use std::time::Duration;

const COMMUNITY: &str = "812345678901234567";
const STAFF_ROLE: &str = "845611301132730378";
const CAROL: &str = "1090417266934861824";
const DAVE: &str = "1146178934729273344";

/// Apps with different rules, the group mapping, and the key re-checks need.
fn config() -> String {
    format!(
        r#"
[[groups]]
name = "community"
guild = "{COMMUNITY}"

[[groups]]
name = "staff"
guild = "{COMMUNITY}"
role = "{STAFF_ROLE}"

[[clients]]
id = "wiki"
secret = "wiki-secret-wiki-secret"
redirect_uris = ["https://wiki.example.com/cb"]
allowed_guilds = ["{COMMUNITY}"]
groups = ["community", "staff"]
refresh_tokens = true

[[clients]]
id = "admin"
secret = "admin-secret-admin-secret"
redirect_uris = ["https://admin.example.com/cb"]
required_roles = ["{COMMUNITY}:{STAFF_ROLE}"]
groups = ["community"]

[[clients]]
id = "verified"
secret = "verified-secret-verified"
redirect_uris = ["https://verified.example.com/cb"]
require_verified_email = true

[[clients]]
id = "blocked"
secret = "blocked-secret-blocked-x"
redirect_uris = ["https://blocked.example.com/cb"]
deny_users = ["{ALICE}"]

[[clients]]
id = "pairwise"
secret = "pairwise-secret-pairwise"
redirect_uris = ["https://pairwise.example.com/cb"]
subject_type = "pairwise"

[[clients]]
id = "pairwise2"
secret = "pairwise2-secret-pairwise"
redirect_uris = ["https://pairwise2.example.com/cb"]
subject_type = "pairwise"

[access]
allow_users = ["{ALICE}"]

[secrets]
encryption_key = "{key}"
"#,
        key = "ab".repeat(32)
    )
}

fn secret_of(client: &str) -> String {
    match client {
        "wiki" => "wiki-secret-wiki-secret",
        "admin" => "admin-secret-admin-secret",
        "verified" => "verified-secret-verified",
        "blocked" => "blocked-secret-blocked-x",
        "pairwise" => "pairwise-secret-pairwise",
        _ => "pairwise2-secret-pairwise",
    }
    .to_owned()
}

fn redirect_of(client: &str) -> String {
    format!("https://{client}.example.com/cb")
}

/// Sends `browser` to `client`'s authorize; signs in at Discord as `user` if asked to.
async fn attempt(
    app: &TestApp,
    browser: &mut Browser,
    client: &str,
    user: &str,
    scope: &str,
) -> crate::browser::Page {
    let url = app.authorize_url(
        client,
        &redirect_of(client),
        &[("scope", scope), ("state", "st")],
    );
    let first = browser.get(&url).await;
    if first.status != 302
        || !first
            .location
            .as_deref()
            .unwrap_or_default()
            .starts_with(app.discord.base_url().as_str())
    {
        return first;
    }
    app.discord.sign_in_as(Some(user));
    let back = browser.get(&first.location.unwrap()).await;
    browser
        .get(&back.location.expect("Discord redirects back"))
        .await
}

/// Redeems the code in a successful answer and returns the token response.
async fn tokens(app: &TestApp, client: &str, page: &crate::browser::Page) -> serde_json::Value {
    let location = page
        .location
        .clone()
        .unwrap_or_else(|| panic!("expected a redirect, got {} {}", page.status, page.body));
    let code = query_of(&location)
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {location}"));
    let redirect = redirect_of(client);
    let secret = secret_of(client);
    let response = app
        .token(
            Some((client, &secret)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The app's error redirect carried by a refusal page's "Return to the app" link.
fn refusal_link(page: &crate::browser::Page) -> std::collections::HashMap<String, String> {
    let start = page.body.find("href=\"").expect("a link back to the app") + 6;
    let end = start + page.body[start..].find('"').unwrap();
    // Undo the page's HTML escaping of the URL, as a browser would.
    let href = page.body[start..end]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    query_of(&href)
}

#[tokio::test]
async fn a_guild_member_enters_and_a_non_member_sees_why_not() {
    // Arrange
    let app = spawn_app_with(&config()).await;

    // Act
    let member = attempt(&app, &mut Browser::new(), "wiki", BOB, "openid").await;
    let outsider = attempt(&app, &mut Browser::new(), "wiki", CAROL, "openid").await;

    // Assert
    assert!(query_of(&member.location.clone().unwrap()).contains_key("code"));
    assert_eq!(outsider.status, 403, "{}", outsider.body);
    assert!(
        outsider.body.contains("only open to members"),
        "{}",
        outsider.body
    );
    assert!(!outsider.body.contains(COMMUNITY), "never lists guilds");
    let link = refusal_link(&outsider);
    assert_eq!(link["error"], "access_denied");
    assert_eq!(link["state"], "st");
}

#[tokio::test]
async fn a_role_rule_admits_the_role_holder_only() {
    let app = spawn_app_with(&config()).await;
    let staff = attempt(&app, &mut Browser::new(), "admin", BOB, "openid").await;
    let member = attempt(&app, &mut Browser::new(), "admin", DAVE, "openid").await;
    assert!(
        query_of(&staff.location.clone().unwrap()).contains_key("code"),
        "{}",
        staff.body
    );
    assert_eq!(member.status, 403);
    assert!(
        member.body.contains("needs a Discord role"),
        "{}",
        member.body
    );
}

#[tokio::test]
async fn one_sso_session_enters_app_a_but_not_app_b() {
    // Arrange: Dave (a plain member) signs in to the wiki.
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let wiki = attempt(&app, &mut browser, "wiki", DAVE, "openid").await;
    assert!(query_of(&wiki.location.clone().unwrap()).contains_key("code"));
    let token_calls = app.discord.calls(FakeRoute::Token);

    // Act: the same browser goes to the admin dashboard.
    let admin = browser
        .get(&app.authorize_url("admin", &redirect_of("admin"), &[("state", "x")]))
        .await;

    // Assert: refused with the page, without asking Discord again.
    assert_eq!(admin.status, 403, "{}", admin.body);
    assert_eq!(refusal_link(&admin)["error"], "access_denied");
    assert_eq!(app.discord.calls(FakeRoute::Token), token_calls);
}

#[tokio::test]
async fn an_unverified_email_is_refused_where_required() {
    let app = spawn_app_with(&config()).await;
    let page = attempt(&app, &mut Browser::new(), "verified", DAVE, "openid").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("verified email"), "{}", page.body);
    let ok = attempt(&app, &mut Browser::new(), "verified", BOB, "openid").await;
    assert!(ok.location.is_some(), "{}", ok.body);
}

#[tokio::test]
async fn the_deny_list_beats_the_allow_list() {
    // Alice is allow-listed globally and denied by this client.
    let app = spawn_app_with(&config()).await;
    let page = attempt(&app, &mut Browser::new(), "blocked", ALICE, "openid").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("not allowed"), "{}", page.body);
}

#[tokio::test]
async fn the_groups_claim_lists_mapped_groups_the_client_may_see() {
    // Arrange
    let app = spawn_app_with(&config()).await;

    // Act: Bob (staff) signs in to the wiki (sees both groups) and the dashboard (community only).
    let mut browser = Browser::new();
    let wiki = attempt(&app, &mut browser, "wiki", BOB, "openid groups").await;
    let wiki_tokens = tokens(&app, "wiki", &wiki).await;
    let admin = browser
        .get(&app.authorize_url(
            "admin",
            &redirect_of("admin"),
            &[("scope", "openid groups")],
        ))
        .await;
    let admin_tokens = tokens(&app, "admin", &admin).await;
    let dave = attempt(&app, &mut Browser::new(), "wiki", DAVE, "openid groups").await;
    let dave_tokens = tokens(&app, "wiki", &dave).await;

    // Assert
    let groups =
        |t: &serde_json::Value| decode_payload(t["id_token"].as_str().unwrap())["groups"].clone();
    assert_eq!(
        groups(&wiki_tokens),
        serde_json::json!(["community", "staff"])
    );
    assert_eq!(
        groups(&admin_tokens),
        serde_json::json!(["community"]),
        "filtered per client"
    );
    assert_eq!(
        groups(&dave_tokens),
        serde_json::json!(["community"]),
        "membership without the role"
    );
    let userinfo: serde_json::Value = app
        .userinfo(wiki_tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        userinfo["groups"],
        serde_json::json!(["community", "staff"]),
        "same claims at userinfo"
    );
}

#[tokio::test]
async fn pairwise_subjects_differ_between_clients_and_are_stable_for_one() {
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let a1 = attempt(&app, &mut browser, "pairwise", BOB, "openid").await;
    let a1 = tokens(&app, "pairwise", &a1).await;
    let b = browser
        .get(&app.authorize_url("pairwise2", &redirect_of("pairwise2"), &[]))
        .await;
    let b = tokens(&app, "pairwise2", &b).await;
    let a2 = browser
        .get(&app.authorize_url("pairwise", &redirect_of("pairwise"), &[]))
        .await;
    let a2 = tokens(&app, "pairwise", &a2).await;
    let sub = |t: &serde_json::Value| {
        decode_payload(t["id_token"].as_str().unwrap())["sub"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(sub(&a1), BOB, "the Discord id is hidden");
    assert_ne!(sub(&a1), sub(&b), "apps cannot correlate the person");
    assert_eq!(sub(&a1), sub(&a2), "stable for one app");
    let info: serde_json::Value = app
        .userinfo(a1["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], sub(&a1));
}

#[tokio::test]
async fn a_person_removed_from_the_guild_loses_access_at_the_next_refresh_after_the_ttl() {
    // Arrange
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let page = attempt(&app, &mut browser, "wiki", DAVE, "openid").await;
    let first = tokens(&app, "wiki", &page).await;
    app.discord.remove_from_guild(DAVE, COMMUNITY);
    let refresh = |token: String| {
        let app = &app;
        async move {
            app.token(
                Some(("wiki", "wiki-secret-wiki-secret")),
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };

    // Act: within the TTL the snapshot stands; after it, Discord is asked again.
    let within = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(within.status(), 200, "the snapshot is still fresh");
    let within: serde_json::Value = within.json().await.unwrap();
    app.state.clock.advance(Duration::from_secs(6 * 60));
    let after = refresh(within["refresh_token"].as_str().unwrap().to_owned()).await;

    // Assert
    assert_eq!(after.status(), 400);
    let body: serde_json::Value = after.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let again = browser
        .get(&app.authorize_url("wiki", &redirect_of("wiki"), &[("prompt", "none")]))
        .await;
    assert_eq!(
        query_of(&again.location.unwrap())["error"],
        "login_required",
        "the session ended"
    );
}

#[tokio::test]
async fn discord_down_at_refresh_fails_closed() {
    let app = spawn_app_with(&config()).await;
    let page = attempt(&app, &mut Browser::new(), "wiki", BOB, "openid").await;
    let first = tokens(&app, "wiki", &page).await;
    app.state.clock.advance(Duration::from_secs(6 * 60));
    for route in [FakeRoute::Guilds, FakeRoute::Member, FakeRoute::Me] {
        app.discord.inject(route, Fault::ServerError { times: 50 });
    }
    let response = app
        .token(
            Some(("wiki", "wiki-secret-wiki-secret")),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn a_short_429_on_the_member_endpoint_still_completes_the_login() {
    let app = spawn_app_with(&config()).await;
    app.discord.inject(
        FakeRoute::Member,
        Fault::RateLimited {
            retry_after: 0.05,
            times: 1,
        },
    );
    let page = attempt(&app, &mut Browser::new(), "admin", BOB, "openid").await;
    assert!(
        query_of(&page.location.clone().unwrap_or_default()).contains_key("code"),
        "{} {}",
        page.status,
        page.body
    );
}

#[tokio::test]
async fn a_burst_of_logins_calls_the_member_endpoint_once_per_user_and_guild() {
    let app = spawn_app_with(&config()).await;
    for _ in 0..5 {
        let page = attempt(&app, &mut Browser::new(), "admin", BOB, "openid").await;
        assert!(page.location.is_some(), "{}", page.body);
    }
    assert_eq!(
        app.discord.calls(FakeRoute::Member),
        1,
        "cached for membership_ttl"
    );
    assert_eq!(
        app.discord.calls(FakeRoute::Token),
        5,
        "each login still exchanges its code"
    );
}

#[tokio::test]
async fn a_grace_period_keeps_the_last_snapshot_while_discord_is_down() {
    // Arrange: the same apps, with a one-hour grace period.
    let app = spawn_app_with(&format!(
        "{}\n[discord]\nmembership_grace = \"1h\"\n",
        config()
    ))
    .await;
    let page = attempt(&app, &mut Browser::new(), "wiki", BOB, "openid").await;
    let first = tokens(&app, "wiki", &page).await;
    app.state.clock.advance(Duration::from_secs(6 * 60));
    for route in [FakeRoute::Guilds, FakeRoute::Member, FakeRoute::Me] {
        app.discord.inject(route, Fault::ServerError { times: 50 });
    }

    // Act
    let response = app
        .token(
            Some(("wiki", "wiki-secret-wiki-secret")),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200, "the last good snapshot stands in");
}
