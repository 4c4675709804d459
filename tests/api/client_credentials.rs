//! Service tokens (client credentials, RFC 6749 §4.4): a confidential client's token for its
//! own use, with no person behind it.

use crate::flow::decode_payload;
use crate::helpers::{Reply, TestApp, spawn_app_with};

const CLIENTS: &str = r#"
[[clients]]
id = "deployer"
name = "Deploy pipeline"
secret = "deployer-secret-deployer"
client_credentials = true
allowed_scopes = ["deploy", "metrics:read"]

[[clients]]
id = "browser-only"
secret = "browser-only-secret-browser"
redirect_uris = ["https://b.example.com/cb"]
"#;

async fn service_token(app: &TestApp, client: (&str, &str), scope: Option<&str>) -> Reply {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    Reply::read(app.token(Some(client), &form).await).await
}

const DEPLOYER: (&str, &str) = ("deployer", "deployer-secret-deployer");

#[tokio::test]
async fn a_service_gets_a_token_of_its_own_that_resource_servers_can_tell_apart() {
    // Arrange
    let app = spawn_app_with(CLIENTS).await;
    let discord_calls = app
        .discord
        .calls(guildgate::discord::fake::FakeRoute::Token);

    // Act
    let reply = service_token(&app, DEPLOYER, None).await;

    // Assert
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.text("token_type"), "Bearer");
    assert_eq!(
        reply.text("scope"),
        "deploy metrics:read",
        "every allowed scope"
    );
    assert!(reply.body.get("id_token").is_none(), "no ID token");
    assert!(
        reply.body.get("refresh_token").is_none(),
        "no refresh token"
    );
    let token = reply.text("access_token");
    let claims = decode_payload(&token);
    assert_eq!(claims["sub"], "deployer");
    assert_eq!(claims["client_id"], "deployer");
    assert_eq!(claims["gty"], "client_credentials");
    assert!(claims.get("auth_time").is_none() && claims.get("gid").is_none());
    assert_eq!(
        app.discord
            .calls(guildgate::discord::fake::FakeRoute::Token),
        discord_calls,
        "never sent to Discord"
    );

    // No person: /userinfo refuses it; introspection and revocation work.
    let userinfo = app.userinfo(&token).await;
    assert_eq!(userinfo.status(), 401);
    let introspected = crate::helpers::introspect_as(&app, Some(rp()), &token).await;
    assert_eq!(introspected.body["active"], true, "{}", introspected.body);
    assert_eq!(introspected.body["gty"], "client_credentials");
    assert_eq!(introspected.body["sub"], "deployer");
    let revoked = crate::helpers::revoke_as(&app, Some(rp()), &token).await;
    assert_eq!(revoked.status, 200);
    let after = crate::helpers::introspect_as(&app, Some(rp()), &token).await;
    assert_eq!(after.body["active"], false);
}

fn rp() -> crate::helpers::Rp {
    crate::helpers::Rp {
        id: "deployer",
        secret: "deployer-secret-deployer",
        redirect: "https://unused.example.com/",
    }
}

#[tokio::test]
async fn scopes_are_limited_to_the_clients_allowed_scopes() {
    let app = spawn_app_with(CLIENTS).await;
    let narrowed = service_token(&app, DEPLOYER, Some("metrics:read")).await;
    assert_eq!(narrowed.text("scope"), "metrics:read");
    assert_eq!(
        decode_payload(&narrowed.text("access_token"))["scope"],
        "metrics:read"
    );
    for refused in ["admin", "openid", "deploy admin"] {
        let reply = service_token(&app, DEPLOYER, Some(refused)).await;
        assert_eq!(reply.error(), "invalid_scope", "{refused}: {}", reply.body);
    }
}

#[tokio::test]
async fn only_clients_registered_for_it_get_service_tokens() {
    let app = spawn_app_with(CLIENTS).await;
    let reply = service_token(&app, ("browser-only", "browser-only-secret-browser"), None).await;
    assert_eq!(reply.error(), "unauthorized_client");
    // A public client cannot authenticate, so it cannot either.
    let public = Reply::read(
        app.token(
            None,
            &[("grant_type", "client_credentials"), ("client_id", "spa")],
        )
        .await,
    )
    .await;
    assert_eq!(public.error(), "unauthorized_client");
    let wrong_secret = service_token(&app, ("deployer", "nope"), None).await;
    assert_eq!(wrong_secret.status, 401);
}

#[tokio::test]
async fn the_rp_library_takes_a_service_token_unmodified() {
    use openidconnect::core::{CoreClient, CoreProviderMetadata};
    use openidconnect::{ClientId, ClientSecret, IssuerUrl, OAuth2TokenResponse, Scope};

    let app = spawn_app_with(CLIENTS).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.address.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("deployer".into()),
        Some(ClientSecret::new("deployer-secret-deployer".into())),
    );
    let tokens = client
        .exchange_client_credentials()
        .expect("token endpoint known")
        .add_scope(Scope::new("deploy".into()))
        .request_async(&http)
        .await
        .expect("a service token");
    assert_eq!(
        tokens
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["deploy".to_owned()])
    );
    assert!(tokens.refresh_token().is_none());
}
