//! Access tokens are ES256 by default (one RSA signature per token response), RS256 on request;
//! both verify against the published JWKS, and ID tokens stay RS256.

use crate::browser::Browser;
use crate::helpers::{ALICE, OTHER_RP, spawn_app_with, tokens_via, userinfo_status};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};

/// Verifies `token` as a resource server would: the key named by `kid` in `/jwks.json`.
async fn verify_with_jwks(app: &crate::helpers::TestApp, token: &str) -> serde_json::Value {
    let jwks: JwkSet = app.get("/jwks.json").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the key is published");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[app.address.as_str()]);
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("verifies with the published key")
    .claims
}

#[tokio::test]
async fn access_tokens_are_es256_by_default_and_id_tokens_rs256() {
    // Arrange
    let app = spawn_app_with("").await;

    // Act
    let tokens = tokens_via(&app, &mut Browser::new(), OTHER_RP, &[], ALICE).await;

    // Assert
    let (access, id) = (tokens.text("access_token"), tokens.text("id_token"));
    assert_eq!(
        jsonwebtoken::decode_header(&access).unwrap().alg,
        Algorithm::ES256
    );
    assert_eq!(
        jsonwebtoken::decode_header(&id).unwrap().alg,
        Algorithm::RS256
    );
    assert_eq!(verify_with_jwks(&app, &access).await["sub"], ALICE);
    assert_eq!(verify_with_jwks(&app, &id).await["sub"], ALICE);
    assert_eq!(userinfo_status(&app, &access).await, 200);
}

#[tokio::test]
async fn rs256_access_tokens_can_be_chosen_and_still_work() {
    // Arrange
    let app = spawn_app_with("[tokens]\naccess_token_alg = \"RS256\"\n").await;

    // Act
    let tokens = tokens_via(&app, &mut Browser::new(), OTHER_RP, &[], ALICE).await;

    // Assert
    let access = tokens.text("access_token");
    assert_eq!(
        jsonwebtoken::decode_header(&access).unwrap().alg,
        Algorithm::RS256
    );
    assert_eq!(
        verify_with_jwks(&app, &access).await["client_id"],
        OTHER_RP.id
    );
    assert_eq!(userinfo_status(&app, &access).await, 200);
}

#[tokio::test]
async fn an_id_token_re_signed_as_es256_is_no_id_token_hint() {
    // Arrange: an ID token's claims signed with the access-token key (ES256).
    let app = spawn_app_with("").await;
    let tokens = tokens_via(&app, &mut Browser::new(), OTHER_RP, &[], ALICE).await;
    let claims = crate::flow::decode_payload(&tokens.text("id_token"));
    let forged =
        guildgate::jws::sign(&app.state.keys, guildgate::jws::Alg::ES256, "JWT", &claims).unwrap();

    // Act
    let clients = app.state.clients();
    let hinted =
        guildgate::tokens::verify_id_token_hint(&app.state.keys, &app.address, &forged, &|aud| {
            clients.signs_id_tokens_es256(aud)
        });

    // Assert
    assert!(
        hinted.is_err(),
        "this client's ID tokens are RS256 only (RFC 8725 §3.1)"
    );
}
