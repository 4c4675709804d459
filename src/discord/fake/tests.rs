//! The client against the fake over real HTTP on 127.0.0.1: OAuth2 flows and identity reads.
//! Shared helpers live here; fault and rate-limit tests are in `fault_tests.rs`.

use super::*;
use crate::discord::{
    DiscordClient, DiscordClientConfig, DiscordError, DiscordRoute, DiscordTokens,
};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub(super) const REDIRECT: &str = "http://127.0.0.1:9/callback/discord";
pub(super) const ALICE: &str = "318172463195504640";
pub(super) const BOB: &str = "402931734925557761";
pub(super) const CAROL: &str = "1090417266934861824";
pub(super) const COMMUNITY: &str = "812345678901234567";
pub(super) const PARTNERS: &str = "903377456278183956";
pub(super) const STAFF_ROLE: &str = "845611301132730378";
pub(super) const ALL_SCOPES: &[&str] = &["identify", "email", "guilds", "guilds.members.read"];

pub(super) fn start() -> FakeDiscordHandle {
    let mut data = FakeData::demo().expect("demo data");
    data.redirect_uris.push(REDIRECT.to_owned());
    FakeDiscord::start(data).expect("fake starts")
}

pub(super) fn config(fake: &FakeDiscordHandle) -> DiscordClientConfig {
    DiscordClientConfig {
        client_id: fake.client_id(),
        client_secret: SecretString::from(fake.client_secret()),
        authorize_url: fake.authorize_url(),
        api_base_url: fake.api_base_url(),
        scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        redirect_uri: REDIRECT.to_owned(),
        timeout: Duration::from_secs(5),
        max_retry_wait: Duration::from_secs(2),
        membership_ttl: Duration::from_secs(300),
        bot_token: None,
    }
}

pub(super) fn client(
    fake: &FakeDiscordHandle,
    scopes: &[&str],
    timeout: Duration,
    budget: Duration,
) -> DiscordClient {
    DiscordClient::new(DiscordClientConfig {
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        timeout,
        max_retry_wait: budget,
        ..config(fake)
    })
    .expect("client builds")
}

pub(super) fn default_client(fake: &FakeDiscordHandle) -> DiscordClient {
    DiscordClient::new(config(fake)).expect("client builds")
}

pub(super) fn pkce() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub(super) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser")
}

/// GETs `url` and returns the redirect's query parameters.
pub(super) async fn follow(url: &str) -> HashMap<String, String> {
    let resp = browser().get(url).send().await.expect("request");
    assert_eq!(resp.status(), 302, "expected a redirect from {url}");
    let location = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    Url::parse(&location)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

/// Runs the authorization step as a signed-in `user` and returns the code + verifier.
pub(super) async fn code_for(
    fake: &FakeDiscordHandle,
    discord: &DiscordClient,
    user: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    fake.sign_in_as(Some(user));
    let params = follow(
        discord
            .authorize_url("st4te", &challenge, Some("none"))
            .as_str(),
    )
    .await;
    (params["code"].clone(), verifier)
}

pub(super) async fn tokens_for(
    fake: &FakeDiscordHandle,
    discord: &DiscordClient,
    user: &str,
) -> DiscordTokens {
    let (code, verifier) = code_for(fake, discord, user).await;
    discord
        .exchange_code(&code, &verifier)
        .await
        .expect("exchange")
}

#[test]
fn start_outside_a_runtime_is_an_error_not_a_panic() {
    let data = FakeData::demo().expect("demo data");
    assert!(FakeDiscord::start(data).is_err());
}

#[test]
fn starts_inside_an_actix_runtime_like_guildgate_dev() {
    actix_web::rt::System::new().block_on(async {
        let fake = start();
        let resp = browser()
            .get(fake.authorize_url())
            .send()
            .await
            .expect("answer");
        assert_eq!(resp.status(), 400, "no client_id: error page");
    });
}

#[tokio::test]
async fn authorize_url_carries_the_documented_parameters() {
    let fake = start();
    let discord = default_client(&fake);
    let url = discord.authorize_url("st4te", "chal", Some("consent"));
    assert_eq!(url.path(), "/oauth2/authorize");
    assert!(
        url.query()
            .is_some_and(|q| q.contains("scope=identify%20email%20guilds%20guilds.members.read"))
    );
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    for (k, v) in [
        ("response_type", "code"),
        ("client_id", "100000000000000001"),
        ("state", "st4te"),
        ("redirect_uri", REDIRECT),
        ("code_challenge", "chal"),
        ("code_challenge_method", "S256"),
        ("prompt", "consent"),
    ] {
        assert_eq!(q.get(k).map(String::as_str), Some(v), "parameter {k}");
    }
}

#[tokio::test]
async fn a_full_login_reads_identity_guilds_and_member_roles() {
    // Arrange
    let fake = start();
    let discord = default_client(&fake);
    // Act
    let tokens = tokens_for(&fake, &discord, BOB).await;
    let user = discord
        .fetch_user(&tokens.access_token)
        .await
        .expect("user");
    let guilds = discord
        .fetch_guilds(&tokens.access_token)
        .await
        .expect("guilds");
    let member = discord
        .fetch_member(&tokens.access_token, COMMUNITY)
        .await
        .expect("member");
    // Assert
    assert_eq!(tokens.scopes, ALL_SCOPES);
    assert!(tokens.refresh_token.is_some());
    assert_eq!(tokens.expires_in, Duration::from_secs(604_800));
    assert_eq!(
        (user.id.as_str(), user.email.as_deref(), user.verified),
        (BOB, Some("bob@example.com"), Some(true))
    );
    assert_eq!(
        guilds.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
        [COMMUNITY, PARTNERS]
    );
    assert!(guilds[0].owner, "bob owns the community guild");
    let member = member.expect("bob is a member");
    assert!(member.roles.iter().any(|r| r == STAFF_ROLE));
    assert_eq!(member.user.map(|u| u.id), Some(BOB.to_owned()));
    assert_eq!(discord.stats().route(DiscordRoute::Token).calls, 1);
    assert_eq!(fake.calls(FakeRoute::Me), 1);
}

#[tokio::test]
async fn a_user_in_no_guild_has_no_guilds_and_no_membership() {
    let fake = start();
    let discord = default_client(&fake);
    let tokens = tokens_for(&fake, &discord, CAROL).await;
    assert!(
        discord
            .fetch_guilds(&tokens.access_token)
            .await
            .expect("guilds")
            .is_empty()
    );
    let member = discord
        .fetch_member(&tokens.access_token, COMMUNITY)
        .await
        .expect("answer");
    assert!(member.is_none(), "404 Unknown Guild means not a member");
}

#[tokio::test]
async fn membership_changes_are_seen_while_the_token_lives() {
    let fake = start();
    let discord = default_client(&fake);
    let tokens = tokens_for(&fake, &discord, ALICE).await;
    assert!(fake.set_member_roles(ALICE, COMMUNITY, &[STAFF_ROLE]));
    let member = discord
        .fetch_member(&tokens.access_token, COMMUNITY)
        .await
        .expect("answer");
    assert_eq!(member.expect("member").roles, [STAFF_ROLE]);
    assert!(fake.remove_from_guild(ALICE, COMMUNITY));
    assert!(
        discord
            .fetch_member(&tokens.access_token, COMMUNITY)
            .await
            .expect("answer")
            .is_none()
    );
}

#[tokio::test]
async fn email_and_verified_come_only_with_the_email_scope() {
    let fake = start();
    let discord = client(
        &fake,
        &["identify", "guilds"],
        Duration::from_secs(5),
        Duration::ZERO,
    );
    let tokens = tokens_for(&fake, &discord, ALICE).await;
    let user = discord
        .fetch_user(&tokens.access_token)
        .await
        .expect("user");
    assert_eq!((user.email, user.verified), (None, None));
    let err = discord
        .fetch_member(&tokens.access_token, COMMUNITY)
        .await
        .expect_err("scope missing");
    assert!(
        matches!(
            err,
            DiscordError::Rejected {
                status: 403,
                code: Some(50001),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_picker_approves_as_the_chosen_user_with_code_state_and_iss() {
    let fake = start();
    let discord = default_client(&fake);
    let (verifier, challenge) = pkce();
    let url = discord.authorize_url("st<4>te", &challenge, None);
    let page = browser().get(url.as_str()).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let html = page.text().await.expect("html");
    assert!(csp.contains("default-src 'none'") && !html.contains("<script"));
    assert!(html.contains("Bob (staff)") && html.contains("Cancel"));
    let href = html
        .split("href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a user link");
    let href = href.replace("&amp;", "&");
    let params = follow(&format!(
        "{}{}",
        fake.base_url().as_str().trim_end_matches('/'),
        href
    ))
    .await;
    assert_eq!(params["state"], "st<4>te");
    assert_eq!(params["iss"], DISCORD_ISSUER);
    let tokens = discord
        .exchange_code(&params["code"], &verifier)
        .await
        .expect("exchange");
    assert_eq!(
        discord
            .fetch_user(&tokens.access_token)
            .await
            .expect("user")
            .id,
        ALICE
    );
}

#[tokio::test]
async fn cancel_sends_access_denied_back_with_state() {
    let fake = start();
    let discord = default_client(&fake);
    let url = discord.authorize_url("s1", &pkce().1, None);
    let params = follow(&format!(
        "{}/oauth2/authorize/cancel?{}",
        fake.base_url().as_str().trim_end_matches('/'),
        url.query().unwrap_or("")
    ))
    .await;
    assert_eq!(
        (params["error"].as_str(), params["state"].as_str()),
        ("access_denied", "s1")
    );
}

#[tokio::test]
async fn bad_client_or_redirect_uri_get_a_page_never_a_redirect() {
    let fake = start();
    let base = fake.authorize_url();
    for (query, why) in [
        (
            "response_type=code&client_id=1&scope=identify&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback%2Fdiscord",
            "unknown client",
        ),
        (
            "response_type=code&client_id=100000000000000001&scope=identify&redirect_uri=https%3A%2F%2Fevil.example%2F",
            "unregistered redirect",
        ),
        (
            "response_type=code&client_id=100000000000000001&scope=identify",
            "missing redirect",
        ),
    ] {
        let resp = browser()
            .get(format!("{base}?{query}"))
            .send()
            .await
            .expect("answer");
        assert_eq!(resp.status(), 400, "{why}");
        assert!(resp.headers().get("location").is_none(), "{why}");
    }
    let bad_scope = format!(
        "{base}?response_type=code&client_id=100000000000000001&scope=identify%20wat&state=x&redirect_uri={}",
        form_enc(REDIRECT)
    );
    assert_eq!(follow(&bad_scope).await["error"], "invalid_scope");
    let plain_pkce = format!("{bad_scope}&code_challenge=abc").replace("%20wat", "");
    assert_eq!(follow(&plain_pkce).await["error"], "invalid_request");
}

fn form_enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn codes_are_single_use_and_a_replay_revokes_the_tokens() {
    let fake = start();
    let discord = default_client(&fake);
    let (code, verifier) = code_for(&fake, &discord, ALICE).await;
    let tokens = discord
        .exchange_code(&code, &verifier)
        .await
        .expect("first exchange");
    let replay = discord.exchange_code(&code, &verifier).await;
    assert!(
        matches!(replay, Err(DiscordError::InvalidGrant)),
        "{replay:?}"
    );
    assert!(fake.is_revoked(tokens.access_token.expose_secret()));
    let read = discord.fetch_user(&tokens.access_token).await;
    assert!(matches!(read, Err(DiscordError::Unauthorized)), "{read:?}");
}

#[tokio::test]
async fn a_wrong_verifier_or_expired_code_is_invalid_grant() {
    let fake = start();
    let discord = default_client(&fake);
    let (code, _) = code_for(&fake, &discord, ALICE).await;
    let wrong = "x".repeat(43);
    assert!(matches!(
        discord.exchange_code(&code, &wrong).await,
        Err(DiscordError::InvalidGrant)
    ));
    fake.set_code_ttl(Duration::ZERO);
    let (code, verifier) = code_for(&fake, &discord, ALICE).await;
    assert!(matches!(
        discord.exchange_code(&code, &verifier).await,
        Err(DiscordError::InvalidGrant)
    ));
}

#[tokio::test]
async fn the_token_endpoint_takes_forms_only_and_authenticates_the_client() {
    let fake = start();
    let token_url = format!("{}/oauth2/token", fake.api_base_url());
    let json = browser()
        .post(&token_url)
        .basic_auth(fake.client_id(), Some(fake.client_secret()))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"refresh_token","refresh_token":"x"}"#)
        .send()
        .await
        .expect("answer");
    assert_eq!(json.status(), 400);
    let wrong_secret = DiscordClientConfig {
        client_secret: SecretString::from("nope"),
        ..config(&fake)
    };
    let bad = DiscordClient::new(wrong_secret).expect("client builds");
    let err = bad
        .refresh(&SecretString::from("whatever"))
        .await
        .expect_err("bad client");
    assert!(
        matches!(err, DiscordError::Rejected { status: 401, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn refresh_rotates_and_revoke_ends_the_whole_authorization() {
    let fake = start();
    let discord = default_client(&fake);
    let first = tokens_for(&fake, &discord, ALICE).await;
    let old_refresh = first.refresh_token.clone().expect("refresh token");
    let second = discord.refresh(&old_refresh).await.expect("refresh");
    assert!(
        matches!(
            discord.refresh(&old_refresh).await,
            Err(DiscordError::InvalidGrant)
        ),
        "rotated"
    );
    discord.revoke(&second.access_token).await.expect("revoke");
    let new_refresh = second.refresh_token.expect("refresh token");
    assert!(
        fake.is_revoked(new_refresh.expose_secret()),
        "revoking one token revokes its authorization"
    );
    assert!(matches!(
        discord.refresh(&new_refresh).await,
        Err(DiscordError::InvalidGrant)
    ));
    assert!(matches!(
        discord.fetch_user(&second.access_token).await,
        Err(DiscordError::Unauthorized)
    ));
}
