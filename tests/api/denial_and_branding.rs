//! The pages around a refusal and their look: the denial page (which app, which Discord
//! account, never which guilds, "use another Discord account") and `[ui]` branding with
//! template overrides under the Content-Security-Policy.

use crate::browser::{Browser, query_of};
use crate::helpers::{BOB, Rp, authorize_page, client_toml, spawn_app_with, unescape_html};

const CAROL: &str = "1090417266934861824";
const COMMUNITY: &str = "812345678901234567";

/// A guild-gated app (Carol, in no guild, is refused).
const CLUB: Rp = Rp {
    id: "club",
    secret: "club-secret-club-secret-club",
    redirect: "https://club.example.com/cb",
};

fn config() -> String {
    format!(
        "{}\n[secrets]\nencryption_key = \"{}\"\n",
        client_toml(CLUB, &format!("allowed_guilds = [\"{COMMUNITY}\"]")),
        "ab".repeat(32)
    )
}

#[tokio::test]
async fn the_denial_page_names_the_app_and_account_and_offers_another_account() {
    // Arrange
    let app = spawn_app_with(&config()).await;
    let mut browser = Browser::new();
    let url = app.authorize_url(
        CLUB.id,
        CLUB.redirect,
        &[("state", "st-9"), ("nonce", "n-9")],
    );

    // Act
    let page = authorize_page(&app, &mut browser, &url, CAROL).await;

    // Assert
    assert_eq!(page.status, 403, "{}", page.body);
    let body = unescape_html(&page.body);
    assert!(body.contains("You cannot use The club app"), "{body}");
    assert!(
        body.contains("signed in with Discord as <strong>carol</strong>"),
        "{body}"
    );
    assert!(body.contains("Use another Discord account"), "{body}");
    assert!(body.contains("/account"), "links the account page: {body}");
    assert!(!body.contains(COMMUNITY), "never lists guilds");
    let links: Vec<&str> = body
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    let switch = links
        .iter()
        .find(|l| l.contains("prompt=login"))
        .unwrap_or_else(|| panic!("a sign-in with another account: {links:?}"));
    let params = query_of(switch);
    assert_eq!(params["client_id"], CLUB.id);
    assert_eq!(params["redirect_uri"], CLUB.redirect);
    assert_eq!(params["state"], "st-9");
    assert_eq!(params["nonce"], "n-9");

    // Act 2: the link starts a Discord sign-in that shows Discord's account screen.
    let again = browser.get(switch).await;
    let to_discord = again.location.expect("to Discord");
    assert!(
        to_discord.starts_with(app.discord.authorize_url().as_str()),
        "{to_discord}"
    );
    assert_eq!(query_of(&to_discord)["prompt"], "consent");

    // …where Discord shows its account screen even to a signed-in browser, and Bob, a member,
    // gets in.
    app.discord.sign_in_as(Some(CAROL));
    let screen = browser.get(&to_discord).await;
    assert_eq!(screen.status, 200, "Discord's account screen");
    let approve = screen
        .body
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .find(|href| href.ends_with(&format!("user_id={BOB}")))
        .expect("Bob on Discord's account screen");
    let approve = url::Url::parse(&to_discord)
        .and_then(|base| base.join(&approve))
        .expect("an absolute approve URL");
    let back = browser.get(approve.as_str()).await;
    let done = browser.get(&back.location.expect("callback")).await;
    let location = done.location.expect("to the club");
    assert!(location.starts_with(CLUB.redirect), "{location}");
    assert!(query_of(&location).contains_key("code"));
}

#[tokio::test]
async fn ui_branding_reaches_every_page_and_its_content_security_policy() {
    // Arrange
    let templates = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        templates.path().join("message.html"),
        "{% extends \"base.html\" %}{% block content %}<h1>{{ title }}</h1><p class=\"custom\">{{ message }}</p>{% endblock %}",
    )
    .expect("write template");
    let app = spawn_app_with(&format!(
        "[ui]\ntitle = \"Acme sign-in\"\nlogo_url = \"https://static.acme.test/logo.svg\"\naccent = \"#ff0066\"\ntemplates_dir = \"{}\"\n",
        templates.path().display()
    ))
    .await;

    // Act
    let response = app.get("/account").await;

    // Assert
    let csp = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let raw = response.text().await.expect("body");
    let body = unescape_html(&raw);
    assert!(
        body.contains("<p class=\"custom\">"),
        "the override: {body}"
    );
    assert!(body.contains("· Acme sign-in</title>"), "{body}");
    assert!(body.contains("--accent: #ff0066"), "{body}");
    assert!(
        body.contains("src=\"https://static.acme.test/logo.svg\""),
        "{body}"
    );
    assert!(
        csp.contains("img-src 'self' https://cdn.discordapp.com https://static.acme.test;"),
        "{csp}"
    );
    let start = raw.find("<style>").expect("a stylesheet") + "<style>".len();
    let end = start + raw[start..].find("</style>").expect("its end");
    let hash = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        <sha2::Sha256 as sha2::Digest>::digest(&raw.as_bytes()[start..end]),
    );
    assert!(
        csp.contains(&format!("'sha256-{hash}'")),
        "the branded stylesheet is allowed: {csp}"
    );
}
