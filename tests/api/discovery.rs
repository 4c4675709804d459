//! Discovery and JWKS, as a real relying-party library sees them.

use crate::helpers::spawn_app;
use openidconnect::core::{CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::{IssuerUrl, JsonWebKey};

fn rp_http_client() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("rp http client")
}

#[tokio::test]
async fn an_rp_library_discovers_the_issuer_and_fetches_its_keys() {
    // Arrange
    let app = spawn_app().await;
    let http = rp_http_client();

    // Act: discover_async checks that `issuer` equals the URL it was given, then fetches jwks_uri.
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.address.clone()).unwrap(), &http)
            .await
            .expect("openidconnect accepts our discovery document");

    // Assert
    assert_eq!(metadata.issuer().as_str(), app.address);
    assert_eq!(
        metadata.jwks_uri().as_str(),
        format!("{}/jwks.json", app.address)
    );
    let keys = metadata.jwks().keys();
    assert_eq!(
        keys.len(),
        2,
        "one generated key (ID tokens) and its P-256 companion (access tokens)"
    );
    let kids: Vec<&str> = keys
        .iter()
        .map(|k| k.key_id().expect("keys carry a kid").as_str())
        .collect();
    assert!(
        kids.contains(&app.state.keys.active().kid.as_str()),
        "{kids:?}"
    );
}

#[tokio::test]
async fn discovery_has_every_required_field_and_advertises_only_what_exists() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.get("/.well-known/openid-configuration").await;

    // Assert
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cache.contains("max-age"),
        "RPs may cache discovery: {cache}"
    );
    let doc: serde_json::Value = response.json().await.unwrap();
    for field in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(
            doc.get(field).is_some(),
            "OIDC Discovery §3 requires {field}"
        );
    }
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["request_uri_parameter_supported"], false);
    assert!(
        doc.get("registration_endpoint").is_none(),
        "no dynamic registration exists"
    );
}

#[tokio::test]
async fn the_issuer_is_byte_identical_to_the_configured_string() {
    // Arrange: a trailing slash must survive as written (OIDC Discovery §4.3 compares exactly).
    let app = spawn_app().await;
    let configured = format!("{}/", app.address);
    let db = crate::test_db::fresh_database(crate::helpers::backend()).await;
    let keys = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let configured = configured.replace(&app.address, &format!("http://127.0.0.1:{port}"));
    let settings = crate::helpers::settings_for(&db.url, keys.path(), &configured, "");
    let other = guildgate::startup::Application::build_with_listener(
        settings,
        Default::default(),
        Some(listener),
    )
    .await
    .unwrap();
    tokio::spawn(other.run_until_stopped());

    // Act
    let body = reqwest::get(format!(
        "http://127.0.0.1:{port}/.well-known/openid-configuration"
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();

    // Assert
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["issuer"], configured.as_str());
    assert_eq!(
        doc["token_endpoint"],
        format!("http://127.0.0.1:{port}/token")
    );
}

#[tokio::test]
async fn jwks_publishes_public_keys_only() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.get("/jwks.json").await;

    // Assert
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let set: CoreJsonWebKeySet = serde_json::from_str(&body).expect("a JWK set");
    assert_eq!(set.keys().len(), 2);
    let raw: serde_json::Value = serde_json::from_str(&body).unwrap();
    let kinds: Vec<(&str, &str)> = raw["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kty"].as_str().unwrap(), k["crv"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, [("RSA", ""), ("EC", "P-256")]);
    for key in raw["keys"].as_array().unwrap() {
        assert_eq!(key["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                key.get(private).is_none(),
                "private member {private} must not be published"
            );
        }
    }
}
