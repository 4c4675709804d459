//! The demo app of `guildgate dev`, configured as `dev` configures it (a profile guild, role
//! names next to configured groups, and the mapped `demo_role`), greets a person by their
//! server nickname and shows the role guildgate mapped for them.

use crate::browser::{Browser, Page};
use crate::helpers::{ALICE, BOB, TestApp, spawn_app_with};
use guildgate::discord::fake::FakeData;

const COMMUNITY: &str = "812345678901234567";
const STAFF_ROLE: &str = "845611301132730378";
const DEMO_ID: &str = "demo-app";
const DEMO_SECRET: &str = "demo-app-secret-demo-app-secret";

/// `src/dev.rs`'s demo client, with the bot's Gateway left unreachable.
fn demo_config(demo_base: &str) -> String {
    format!(
        r#"
[discord]
scopes = ["identify", "email", "guilds", "guilds.members.read", "connections"]

[discord.bot]
token = "{token}"
gateway_url = "ws://127.0.0.1:9"

[[groups]]
name = "community"
guild = "{COMMUNITY}"

[[groups]]
name = "staff"
guild = "{COMMUNITY}"
role = "{STAFF_ROLE}"

[[clients]]
id = "{DEMO_ID}"
name = "Demo app"
secret = "{DEMO_SECRET}"
redirect_uris = ["{demo_base}/callback"]
allowed_guilds = ["{COMMUNITY}"]
groups = ["community", "staff"]
connections = true
refresh_tokens = true
profile_guild = "{COMMUNITY}"
group_format = "both"

[[clients.claims]]
name = "{role_claim}"
rules = [
  {{ role = "{COMMUNITY}:{STAFF_ROLE}", value = "admin" }},
  {{ guild = "{COMMUNITY}", value = "member" }},
]
default = "guest"

[secrets]
encryption_key = "{key}"
"#,
        token = FakeData::demo().expect("demo data").bot_token,
        role_claim = guildgate::demo::ROLE_CLAIM,
        key = "cd".repeat(32),
    )
}

/// Starts guildgate and the demo app; returns both and the demo app's address.
async fn spawn() -> (TestApp, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the demo app");
    let demo = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("address").port()
    );
    let app = spawn_app_with(&demo_config(&demo)).await;
    let server = guildgate::demo::start(
        guildgate::demo::DemoConfig {
            issuer: app.address.clone(),
            client_id: DEMO_ID.to_owned(),
            client_secret: DEMO_SECRET.to_owned(),
            redirect_uri: format!("{demo}/callback"),
            kick: None,
        },
        listener,
    )
    .expect("the demo app starts");
    tokio::spawn(server);
    (app, demo)
}

/// Follows the demo app's "Sign in" through guildgate and the fake Discord (as `user`) back to
/// the demo app's page for the signed-in person.
async fn sign_in_at_demo(app: &TestApp, demo: &str, user: &str) -> Page {
    let mut browser = Browser::new();
    let to_guildgate = browser.get(&format!("{demo}/login")).await;
    let authorize = to_guildgate
        .location
        .expect("the demo app redirects to guildgate");
    let to_discord = browser.get(&authorize).await;
    let discord = to_discord.location.expect("guildgate redirects to Discord");
    let callback = app.discord_approves(&mut browser, &discord, user).await;
    let to_demo = browser.get(&callback).await;
    let demo_callback = to_demo
        .location
        .expect("guildgate redirects to the demo app");
    let signed_in = browser.get(&demo_callback).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    browser.get(&format!("{demo}/me")).await
}

#[tokio::test]
async fn the_demo_app_shows_the_server_nickname_and_the_mapped_role() {
    // Arrange
    let (app, demo) = spawn().await;

    // Act
    let bob = sign_in_at_demo(&app, &demo, BOB).await;
    let alice = sign_in_at_demo(&app, &demo, ALICE).await;

    // Assert: Bob by his server nickname, an admin through the Staff role, which `groups`
    // carries by its configured and its Discord name.
    assert!(
        bob.body
            .contains("<strong>Bob</strong> (bob.staff on Discord)"),
        "{}",
        bob.body
    );
    assert!(bob.body.contains("<strong>admin</strong>"), "{}", bob.body);
    for group in ["&quot;staff&quot;", "&quot;Staff&quot;"] {
        assert!(bob.body.contains(group), "{group} in {}", bob.body);
    }
    // Alice has no nickname there: her display name; a member.
    assert!(
        alice
            .body
            .contains("<strong>Alice</strong> (alice on Discord)"),
        "{}",
        alice.body
    );
    assert!(
        alice.body.contains("<strong>member</strong>"),
        "{}",
        alice.body
    );
}
