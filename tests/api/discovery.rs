//! Discovery and JWKS, as a real relying-party library sees them; the optional grants and
//! methods advertised only while a client uses them, also after a reload.

use crate::helpers::{spawn_app, spawn_app_with};
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

/// The discovery document `app` serves now.
async fn document(app: &crate::helpers::TestApp) -> serde_json::Value {
    let response = app.get("/.well-known/openid-configuration").await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("a JSON document")
}

/// The strings of a JSON array (empty when the field is absent).
fn strings(doc: &serde_json::Value, field: &str) -> Vec<String> {
    doc[field]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A device client, a service client, a `private_key_jwt` client and one with ES256 ID tokens.
fn clients_using_everything() -> String {
    let key = crate::proof_keys::AppKey::new("k1");
    format!(
        "\n[[clients]]\nid = \"tv\"\npublic = true\ndevice_flow = true\n\
         [[clients]]\nid = \"svc\"\nsecret = \"svc-secret-svc-secret\"\nclient_credentials = true\n\
         [[clients]]\nid = \"ci\"\nclient_credentials = true\n{}\n\
         [[clients]]\nid = \"ec\"\nsecret = \"ec-secret-ec-secret\"\n\
         redirect_uris = [\"https://ec.example.com/cb\"]\nid_token_signed_response_alg = \"ES256\"\n",
        key.jwks_toml()
    )
}

#[tokio::test]
async fn without_clients_that_use_them_the_optional_grants_and_methods_are_not_advertised() {
    // Arrange: the test clients use the code flow with secrets or PKCE only.
    let app = spawn_app().await;

    // Act
    let doc = document(&app).await;

    // Assert
    assert_eq!(
        strings(&doc, "grant_types_supported"),
        ["authorization_code", "refresh_token"]
    );
    assert!(doc.get("device_authorization_endpoint").is_none(), "{doc}");
    let methods = strings(&doc, "token_endpoint_auth_methods_supported");
    assert!(
        !methods.contains(&"private_key_jwt".to_owned()),
        "{methods:?}"
    );
    for field in [
        "token_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
    ] {
        assert!(doc.get(field).is_none(), "{field}: {doc}");
    }
    assert_eq!(
        strings(&doc, "id_token_signing_alg_values_supported"),
        ["RS256"]
    );
    // Always there: PAR, DPoP and both response modes.
    assert_eq!(
        doc["pushed_authorization_request_endpoint"],
        format!("{}/par", app.address)
    );
    assert_eq!(doc["require_pushed_authorization_requests"], false);
    let dpop = strings(&doc, "dpop_signing_alg_values_supported");
    assert!(dpop.contains(&"ES256".to_owned()), "{dpop:?}");
    assert!(
        !dpop.iter().any(|a| a.starts_with("HS")),
        "asymmetric only: {dpop:?}"
    );
    assert_eq!(
        strings(&doc, "response_modes_supported"),
        ["query", "form_post"]
    );
}

#[tokio::test]
async fn clients_that_use_them_make_each_optional_grant_and_method_advertised() {
    // Arrange
    let app = spawn_app_with(&clients_using_everything()).await;

    // Act
    let doc = document(&app).await;

    // Assert
    let grants = strings(&doc, "grant_types_supported");
    for grant in [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        DEVICE_GRANT,
    ] {
        assert!(grants.contains(&grant.to_owned()), "{grant}: {grants:?}");
    }
    assert_eq!(
        doc["device_authorization_endpoint"],
        format!("{}/device_authorization", app.address)
    );
    for field in [
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ] {
        let methods = strings(&doc, field);
        assert!(
            methods.contains(&"private_key_jwt".to_owned()),
            "{field}: {methods:?}"
        );
    }
    for field in [
        "token_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
    ] {
        let algs = strings(&doc, field);
        assert!(algs.contains(&"ES256".to_owned()), "{field}: {algs:?}");
        assert!(algs.contains(&"RS256".to_owned()), "{field}: {algs:?}");
        assert!(
            !algs.iter().any(|a| a.starts_with("HS") || a == "none"),
            "{field}: asymmetric only: {algs:?}"
        );
    }
    assert_eq!(
        strings(&doc, "id_token_signing_alg_values_supported"),
        ["RS256", "ES256"]
    );
    // The RP library still reads it.
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.address.clone()).expect("issuer"),
        &rp_http_client(),
    )
    .await
    .expect("openidconnect accepts the document");
    assert!(metadata.token_endpoint().is_some());
}

#[tokio::test]
async fn a_reload_that_adds_a_device_client_makes_discovery_list_the_device_grant() {
    // Arrange
    let app = spawn_app().await;
    let before = document(&app).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("reloaded.toml");
    std::fs::write(
        &file,
        format!(
            "{}\n[[clients]]\nid = \"tv\"\npublic = true\ndevice_flow = true\n",
            app.config_toml()
        ),
    )
    .expect("write config");

    // Act
    guildgate::reload::reload_with(&app.state, Some(&file), std::iter::empty())
        .expect("the new configuration is valid");
    let after = document(&app).await;

    // Assert
    assert!(!strings(&before, "grant_types_supported").contains(&DEVICE_GRANT.to_owned()));
    assert!(
        strings(&after, "grant_types_supported").contains(&DEVICE_GRANT.to_owned()),
        "{after}"
    );
    assert_eq!(
        after["device_authorization_endpoint"],
        format!("{}/device_authorization", app.address)
    );
}
