//! The whole sign-in as an app sees it, with the `openidconnect` crate as the relying party.

use crate::browser::{Browser, query_of};
use crate::helpers::{
    ALICE, APP, APP_REDIRECT, APP_SECRET, OTHER, OTHER_REDIRECT, OTHER_SECRET, spawn_app,
};
use guildgate::discord::fake::FakeRoute;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

fn rp_http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_rp_library_signs_a_person_in_with_pkce_nonce_and_userinfo() {
    // Arrange: the app discovers guildgate like any OIDC library would.
    let app = spawn_app().await;
    let http = rp_http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.address.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(APP.into()),
        Some(ClientSecret::new(APP_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(APP_REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    // Act: the person signs in at Discord; the app redeems the code and asks for userinfo.
    let mut browser = Browser::new();
    let back = app.sign_in(&mut browser, auth_url.as_str(), ALICE).await;
    let params = query_of(&back);
    assert!(back.starts_with(APP_REDIRECT), "{back}");
    assert_eq!(params["state"], *csrf.secret(), "state is echoed");
    assert_eq!(params["iss"], app.address, "RFC 9207 iss is sent");
    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token response accepted by the RP library");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("ID token verifies against the JWKS, with our nonce");
    let userinfo: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo answers for the access token");

    // Assert
    assert_eq!(claims.subject().as_str(), ALICE, "sub is the Discord id");
    assert_eq!(claims.preferred_username().unwrap().as_str(), "alice");
    assert_eq!(claims.email().unwrap().as_str(), "alice@example.com");
    assert_eq!(claims.email_verified(), Some(true));
    assert!(claims.auth_time().is_some());
    assert_eq!(
        claims.access_token_hash().unwrap(),
        &openidconnect::AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&client.id_token_verifier()).unwrap()
        )
        .unwrap(),
        "at_hash binds the access token"
    );
    assert_eq!(userinfo.subject().as_str(), ALICE);
    assert_eq!(userinfo.email().unwrap().as_str(), "alice@example.com");
    let picture = userinfo
        .picture()
        .unwrap()
        .get(None)
        .unwrap()
        .as_str()
        .to_owned();
    assert!(
        picture.starts_with("https://cdn.discordapp.com/avatars/318172463195504640/"),
        "{picture}"
    );
}

#[tokio::test]
async fn the_token_response_has_the_documented_shape() {
    // Arrange
    let app = spawn_app().await;
    let mut browser = Browser::new();
    let code = app
        .code_for(
            &mut browser,
            OTHER,
            OTHER_REDIRECT,
            &[("scope", "openid profile")],
            ALICE,
        )
        .await;

    // Act
    let response = app
        .token(
            Some((OTHER, OTHER_SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", OTHER_REDIRECT),
            ],
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid profile");
    assert_eq!(body["expires_in"], 600);
    assert!(
        body["refresh_token"].is_string(),
        "`other` is configured for refresh tokens"
    );
    let access = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(
        header.typ.as_deref(),
        Some("at+jwt"),
        "RFC 9068 access token"
    );
    assert!(header.kid.is_some());
    let payload = decode_payload(access);
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
    ] {
        assert!(payload.get(claim).is_some(), "access token lacks {claim}");
    }
    let id = decode_payload(body["id_token"].as_str().unwrap());
    for claim in [
        "iss",
        "sub",
        "aud",
        "azp",
        "exp",
        "iat",
        "auth_time",
        "at_hash",
        "sid",
        "name",
        "picture",
    ] {
        assert!(id.get(claim).is_some(), "ID token lacks {claim}");
    }
    assert!(id.get("email").is_none(), "email scope was not granted");
    assert!(id.get("nonce").is_none(), "no nonce was sent");
}

#[tokio::test]
async fn a_second_app_in_the_same_browser_signs_in_without_asking_discord_again() {
    // Arrange: the person signs in to the first app.
    let app = spawn_app().await;
    let mut browser = Browser::new();
    app.code_for(&mut browser, APP, APP_REDIRECT, &[], ALICE)
        .await;
    let token_calls = app.discord.calls(FakeRoute::Token);
    let authorize_calls = app.discord.calls(FakeRoute::Authorize);

    // Act: the second app sends the same browser to /authorize.
    let page = browser
        .get(&app.authorize_url(OTHER, OTHER_REDIRECT, &[("state", "s2")]))
        .await;

    // Assert: a code straight away, Discord untouched.
    assert_eq!(page.status, 302);
    let location = page.location.unwrap();
    assert!(location.starts_with(OTHER_REDIRECT), "{location}");
    let params = query_of(&location);
    assert!(params.contains_key("code"));
    assert_eq!(params["state"], "s2");
    assert_eq!(
        app.discord.calls(FakeRoute::Token),
        token_calls,
        "no second code exchange"
    );
    assert_eq!(
        app.discord.calls(FakeRoute::Authorize),
        authorize_calls,
        "no second Discord visit"
    );
    assert_eq!(token_calls, 1);
}

/// The JSON payload of a JWT, without verification (the RP test verifies signatures).
pub fn decode_payload(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}
