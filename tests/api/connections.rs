//! The `connections` scope and claim (a person's verified linked accounts) and the
//! `required_connections` access rule: what apps receive, what they never receive, and the
//! re-check at refresh once the membership snapshot is older than `discord.membership_ttl`.

use crate::browser::Browser;
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, APP_RP, BOB, Rp, TestApp, authorize_page, client_toml, link_back_params, refresh_as,
    spawn_app_with, tokens_via,
};
use guildgate::discord::fake::{FakeConnection, FakeRoute};
use serde_json::{Value, json};
use std::time::Duration;

const DAVE: &str = "1146178934729273344";

/// May receive the `connections` claim.
const LINKS: Rp = Rp {
    id: "links",
    secret: "links-secret-links-secret",
    redirect: "https://links.example.com/cb",
};

/// Admits only people with a verified GitHub account linked.
const DEVS: Rp = Rp {
    id: "devs",
    secret: "devs-secret-devs-secret",
    redirect: "https://devs.example.com/cb",
};

/// Past `discord.membership_ttl` (5 min).
const LATER: Duration = Duration::from_secs(6 * 60);

/// A deployment that asks Discord for `connections`, with the two clients above.
async fn spawn() -> TestApp {
    let toml = format!(
        r#"
[discord]
scopes = ["identify", "email", "guilds", "connections"]

[secrets]
encryption_key = "{key}"
{links}
{devs}
"#,
        key = "ab".repeat(32),
        links = client_toml(LINKS, "connections = true\nrefresh_tokens = true"),
        devs = client_toml(
            DEVS,
            "required_connections = [\"github\"]\nrefresh_tokens = true"
        ),
    );
    spawn_app_with(&toml).await
}

/// `user` signs in to `rp` with `scope`; returns the token response body.
async fn tokens(app: &TestApp, rp: Rp, scope: &str, user: &str) -> Value {
    tokens_via(app, &mut Browser::new(), rp, &[("scope", scope)], user)
        .await
        .body
}

/// The `connections` claim of an ID token, and of `/userinfo` for the access token.
async fn claims_of(app: &TestApp, body: &Value) -> (Value, Value) {
    let id_token = decode_payload(body["id_token"].as_str().expect("an ID token"));
    let userinfo: Value = app
        .userinfo(body["access_token"].as_str().expect("an access token"))
        .await
        .json()
        .await
        .expect("userinfo JSON");
    (
        id_token["connections"].clone(),
        userinfo["connections"].clone(),
    )
}

#[tokio::test]
async fn the_connections_claim_lists_only_verified_visible_accounts_in_the_id_token_and_userinfo() {
    // Arrange: Bob has a verified GitHub account and a hidden Twitch one; Alice a verified
    // GitHub account and an unverified Steam one.
    let app = spawn().await;

    // Act
    let bob = tokens(&app, LINKS, "openid connections", BOB).await;
    let alice = tokens(&app, LINKS, "openid connections", ALICE).await;

    // Assert
    let (id_token, userinfo) = claims_of(&app, &bob).await;
    let expected = json!([{"type": "github", "id": "7241903", "name": "bob-staff"}]);
    assert_eq!(id_token, expected, "hidden accounts are left out");
    assert_eq!(userinfo, expected, "userinfo says the same");
    let (id_token, userinfo) = claims_of(&app, &alice).await;
    let expected = json!([{"type": "github", "id": "5830211", "name": "alice-codes"}]);
    assert_eq!(id_token, expected, "unverified accounts are left out");
    assert_eq!(userinfo, expected);
    assert!(
        bob["scope"]
            .as_str()
            .unwrap_or_default()
            .contains("connections"),
        "the scope is granted: {bob}"
    );
}

#[tokio::test]
async fn no_connections_claim_without_the_scope_or_for_a_client_not_allowed_it() {
    // Arrange
    let app = spawn().await;

    // Act: the allowed client does not ask; a client without the flag asks.
    let unasked = tokens(&app, LINKS, "openid", BOB).await;
    let not_allowed = tokens(&app, APP_RP, "openid connections", BOB).await;

    // Assert
    for (case, body) in [("no scope", &unasked), ("no flag", &not_allowed)] {
        let (id_token, userinfo) = claims_of(&app, body).await;
        assert_eq!(id_token, Value::Null, "{case}: no claim in the ID token");
        assert_eq!(userinfo, Value::Null, "{case}: no claim at userinfo");
    }
    assert!(
        !not_allowed["scope"]
            .as_str()
            .unwrap_or_default()
            .contains("connections"),
        "the scope is not granted to a client not allowed it: {not_allowed}"
    );
}

#[tokio::test]
async fn required_connections_admit_a_person_with_a_verified_github_account_and_refuse_others() {
    // Arrange: Dave has only a verified Steam account.
    let app = spawn().await;

    // Act
    let alice = tokens(&app, DEVS, "openid", ALICE).await;
    let url = app.authorize_url(DEVS.id, DEVS.redirect, &[("state", "s")]);
    let dave = authorize_page(&app, &mut Browser::new(), &url, DAVE).await;

    // Assert
    assert!(alice["id_token"].is_string(), "Alice is admitted: {alice}");
    assert_eq!(dave.status, 403, "Dave is refused: {}", dave.body);
    assert!(
        dave.body.contains("linked to your Discord account"),
        "the page names the requirement: {}",
        dave.body
    );
    assert_eq!(
        link_back_params(&dave.body)
            .get("error")
            .map(String::as_str),
        Some("access_denied")
    );
}

#[tokio::test]
async fn a_refresh_after_the_membership_ttl_picks_up_changed_connections() {
    // Arrange: Alice holds grants in both apps.
    let app = spawn().await;
    let links = tokens(&app, LINKS, "openid connections", ALICE).await;
    let devs = tokens(&app, DEVS, "openid", ALICE).await;
    // Then her GitHub link becomes unverified (she re-linked it and has not confirmed it yet).
    app.discord.set_connections(
        ALICE,
        vec![FakeConnection {
            kind: "github".into(),
            id: "5830211".into(),
            name: "alice-renamed".into(),
            verified: false,
            visibility: 1,
            revoked: false,
        }],
    );
    let reads = app.discord.calls(FakeRoute::Connections);

    // Act 1: within the TTL the snapshot stands.
    let early = refresh_as(
        &app,
        DEVS,
        devs["refresh_token"].as_str().unwrap_or_default(),
        None,
    )
    .await;
    // Act 2: past it, Discord is asked again.
    app.state.clock.advance(LATER);
    let renewed = refresh_as(
        &app,
        LINKS,
        links["refresh_token"].as_str().expect("a refresh token"),
        None,
    )
    .await;
    let refused = refresh_as(&app, DEVS, &early.text("refresh_token"), None).await;

    // Assert
    assert_eq!(early.status, 200, "within the TTL: {}", early.body);
    assert_eq!(
        app.discord.calls(FakeRoute::Connections),
        reads + 1,
        "one new look-up after the TTL, none before it"
    );
    assert_eq!(renewed.status, 200, "{}", renewed.body);
    let claims = decode_payload(&renewed.text("id_token"));
    assert_eq!(
        claims["connections"],
        json!([]),
        "the unverified account is no longer released"
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(
        refused.error(),
        "invalid_grant",
        "the GitHub rule no longer holds"
    );
}

#[tokio::test]
async fn discovery_lists_the_connections_scope_and_claim_only_when_a_client_uses_them() {
    // Arrange
    let with = spawn().await;
    let without = spawn_app_with("").await;

    // Act
    let read = |app: &TestApp| {
        let url = format!("{}/.well-known/openid-configuration", app.address);
        let http = app.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .expect("discovery")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let (with, without) = (read(&with).await, read(&without).await);

    // Assert
    let has = |doc: &Value, list: &str| {
        doc[list]
            .as_array()
            .is_some_and(|l| l.iter().any(|v| v == "connections"))
    };
    assert!(has(&with, "scopes_supported") && has(&with, "claims_supported"));
    assert!(!has(&without, "scopes_supported") && !has(&without, "claims_supported"));
}
