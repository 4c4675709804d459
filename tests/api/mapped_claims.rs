//! Claims mapped per app (issue 26): `[[clients.claims]]` takes the value of the first rule the
//! person matches (a role, a guild, a linked account type, always), else its default; it is
//! released with its scope, in the ID token and at `/userinfo`, and follows Discord at the
//! first refresh after `discord.membership_ttl`. Reserved names: `config_validation.rs`.

use crate::browser::Browser;
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, BOB, Reply, Rp, TestApp, authorize_page, client_toml, refresh_as, spawn_app_with,
    tokens_via,
};
use serde_json::{Value, json};
use std::time::Duration;

const COMMUNITY: &str = "812345678901234567";
const MEMBER_ROLE: &str = "845611212939132928";
const STAFF_ROLE: &str = "845611301132730378";
const CAROL: &str = "1090417266934861824";
const DAVE: &str = "1146178934729273344";

const GRAFANA: Rp = Rp {
    id: "grafana",
    secret: "grafana-secret-grafana-secret",
    redirect: "https://grafana.example.com/login/generic_oauth",
};

/// Grafana's org role from Discord: Staff → Admin, a verified GitHub account → a list, a
/// member of the server → Viewer, anyone else → the default. A second claim rides on `email`.
fn config() -> String {
    let claims = format!(
        r#"refresh_tokens = true

[[clients.claims]]
name = "grafana_role"
rules = [
  {{ role = "{COMMUNITY}:{STAFF_ROLE}", value = "Admin" }},
  {{ connection = "github", value = ["Editor", "Coder"] }},
  {{ guild = "{COMMUNITY}", value = "Viewer" }},
]
default = "None"

[[clients.claims]]
name = "team"
scope = "email"
rules = [{{ always = true, value = "everyone" }}]
"#
    );
    format!(
        r#"
[discord]
scopes = ["identify", "email", "guilds", "guilds.members.read", "connections"]

[secrets]
encryption_key = "{key}"
{grafana}"#,
        key = "a1".repeat(32),
        grafana = client_toml(GRAFANA, &claims),
    )
}

async fn sign_in(app: &TestApp, user: &str, scope: &str) -> Reply {
    let extra = [("scope", scope), ("state", "s")];
    tokens_via(app, &mut Browser::new(), GRAFANA, &extra, user).await
}

/// The ID token's claims and the `/userinfo` answer of a token response.
async fn both_views(app: &TestApp, reply: &Reply) -> [Value; 2] {
    let userinfo = Reply::read(app.userinfo(&reply.text("access_token")).await).await;
    [decode_payload(&reply.text("id_token")), userinfo.body]
}

#[tokio::test]
async fn the_first_matching_rule_gives_the_value_and_the_default_covers_everyone_else() {
    // Arrange
    let app = spawn_app_with(&config()).await;
    let cases = [
        (
            BOB,
            json!("Admin"),
            "staff (also in the server, with GitHub): the first rule wins",
        ),
        (
            ALICE,
            json!(["Editor", "Coder"]),
            "a member with a verified GitHub account",
        ),
        (DAVE, json!("Viewer"), "a member with only a Steam account"),
        (CAROL, json!("None"), "in no server, no GitHub: the default"),
    ];

    for (user, expected, why) in cases {
        // Act
        let reply = sign_in(&app, user, "openid profile").await;

        // Assert
        for claims in both_views(&app, &reply).await {
            assert_eq!(claims["grafana_role"], expected, "{why}: {claims}");
            assert!(
                claims.get("team").is_none(),
                "team needs the email scope: {claims}"
            );
        }
    }
}

#[tokio::test]
async fn a_mapped_claim_is_released_only_with_its_scope() {
    // Arrange
    let app = spawn_app_with(&config()).await;

    // Act
    let openid_only = sign_in(&app, ALICE, "openid").await;
    let with_email = sign_in(&app, ALICE, "openid email").await;

    // Assert
    for claims in both_views(&app, &openid_only).await {
        assert!(claims.get("grafana_role").is_none(), "{claims}");
        assert!(claims.get("team").is_none(), "{claims}");
    }
    for claims in both_views(&app, &with_email).await {
        assert_eq!(claims["team"], "everyone", "{claims}");
        assert!(
            claims.get("grafana_role").is_none(),
            "profile not asked: {claims}"
        );
    }
}

#[tokio::test]
async fn a_lost_role_changes_the_mapped_claim_at_the_first_refresh_after_the_ttl() {
    // Arrange: Bob is an Admin; then he loses the Staff role in Discord.
    let app = spawn_app_with(&config()).await;
    let bob = sign_in(&app, BOB, "openid profile").await;
    assert_eq!(
        decode_payload(&bob.text("id_token"))["grafana_role"],
        "Admin"
    );
    assert!(app.discord.set_member_roles(BOB, COMMUNITY, &[MEMBER_ROLE]));

    // Act
    app.state.clock.advance(Duration::from_secs(60));
    let early = refresh_as(&app, GRAFANA, &bob.text("refresh_token"), None).await;
    app.state.clock.advance(Duration::from_secs(5 * 60));
    let late = refresh_as(&app, GRAFANA, &early.text("refresh_token"), None).await;

    // Assert: the next rule in order (his GitHub account) now gives the value.
    assert_eq!(
        decode_payload(&early.text("id_token"))["grafana_role"],
        "Admin"
    );
    assert_eq!(late.status, 200, "{}", late.body);
    assert_eq!(
        decode_payload(&late.text("id_token"))["grafana_role"],
        json!(["Editor", "Coder"])
    );
}

#[tokio::test]
async fn discovery_lists_the_mapped_claims() {
    // Arrange
    let app = spawn_app_with(&config()).await;

    // Act
    let discovery = Reply::read(app.get("/.well-known/openid-configuration").await).await;

    // Assert
    let claims = discovery.body["claims_supported"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for name in ["grafana_role", "team"] {
        assert!(claims.contains(&json!(name)), "{name} in {claims:?}");
    }
}

#[tokio::test]
async fn the_consent_page_names_the_mapped_claims_the_scopes_release() {
    // Arrange: the same app, asking for consent.
    let app =
        spawn_app_with(&config().replace("refresh_tokens = true", "consent = \"always\"")).await;
    let url = app.authorize_url(
        GRAFANA.id,
        GRAFANA.redirect,
        &[("scope", "openid profile"), ("state", "s")],
    );

    // Act
    let page = authorize_page(&app, &mut Browser::new(), &url, ALICE).await;

    // Assert
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("grafana_role"), "{}", page.body);
    assert!(
        !page.body.contains("team"),
        "team needs the email scope: {}",
        page.body
    );
}
