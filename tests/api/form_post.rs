//! `response_mode=form_post` (OAuth 2.0 Form Post Response Mode) and ES256 ID tokens for the
//! clients that ask for them (`id_token_signed_response_alg`).

use crate::browser::Browser;
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, APP_RP, Rp, authorize_page, client_toml, hidden_field, redeem_as, spawn_app_with,
};
use crate::proof_keys::header_of;

const EC_RP: Rp = Rp {
    id: "ecapp",
    secret: "ecapp-secret-ecapp-secret",
    redirect: "https://ec.example.com/cb",
};

/// The form's `action` on a form_post page.
fn form_action(body: &str) -> Option<String> {
    let start = body.find("action=\"")? + "action=\"".len();
    let end = start + body[start..].find('"')?;
    Some(crate::helpers::unescape_html(&body[start..end]))
}

#[tokio::test]
async fn the_code_is_posted_to_the_app_by_a_self_submitting_form() {
    // Arrange
    let app = spawn_app_with("").await;
    let mut browser = Browser::new();
    let url = app.authorize_url(
        APP_RP.id,
        APP_RP.redirect,
        &[("response_mode", "form_post"), ("state", "st<&>")],
    );

    // Act
    let page = authorize_page(&app, &mut browser, &url, ALICE).await;

    // Assert
    assert_eq!(
        page.status, 200,
        "a page, not a redirect: {:?}",
        page.location
    );
    assert_eq!(form_action(&page.body).as_deref(), Some(APP_RP.redirect));
    assert_eq!(hidden_field(&page.body, "state").as_deref(), Some("st<&>"));
    assert_eq!(
        hidden_field(&page.body, "iss").as_deref(),
        Some(app.address.as_str())
    );
    let code = hidden_field(&page.body, "code").expect("a code");
    assert_eq!(redeem_as(&app, APP_RP, &code).await.status, 200);
    assert!(page.body.contains("<noscript>"), "works without scripts");

    // Errors go the same way.
    let refused = browser
        .get(&app.authorize_url(
            APP_RP.id,
            APP_RP.redirect,
            &[("response_mode", "form_post"), ("scope", "profile")],
        ))
        .await;
    assert_eq!(refused.status, 200);
    assert_eq!(
        hidden_field(&refused.body, "error").as_deref(),
        Some("invalid_scope")
    );
}

#[tokio::test]
async fn the_form_post_page_runs_only_its_own_script() {
    let app = spawn_app_with("").await;
    let mut browser = Browser::new();
    let url = app.authorize_url(
        APP_RP.id,
        APP_RP.redirect,
        &[("response_mode", "form_post")],
    );
    authorize_page(&app, &mut browser, &url, ALICE).await;
    // From the SSO session, with the headers in view.
    let response = app
        .http
        .get(&url)
        .header(
            "cookie",
            format!(
                "guildgate_session={}",
                crate::helpers::session_cookie(&app, &browser).expect("signed in")
            ),
        )
        .send()
        .await
        .expect("answers");
    let policy = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(policy.contains("script-src 'sha256-"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    // An unknown response mode is an error sent back to the app.
    let odd = browser
        .get(&app.authorize_url(APP_RP.id, APP_RP.redirect, &[("response_mode", "fragment")]))
        .await;
    assert!(
        odd.location
            .unwrap_or_default()
            .contains("error=invalid_request")
    );
}

#[tokio::test]
async fn a_client_that_asks_gets_es256_id_tokens_verified_by_the_rp_library() {
    use openidconnect::core::{CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
    use openidconnect::{ClientId, IssuerUrl, Nonce};

    // Arrange
    let app = spawn_app_with(&client_toml(
        EC_RP,
        "id_token_signed_response_alg = \"ES256\"",
    ))
    .await;
    let mut browser = Browser::new();

    // Act
    let tokens =
        crate::helpers::tokens_via(&app, &mut browser, EC_RP, &[("nonce", "n-1")], ALICE).await;
    let rs = crate::helpers::tokens_via(&app, &mut browser, APP_RP, &[], ALICE).await;

    // Assert
    let id_token = tokens.text("id_token");
    assert_eq!(header_of(&id_token)["alg"], "ES256");
    assert_eq!(
        header_of(&rs.text("id_token"))["alg"],
        "RS256",
        "others keep RS256"
    );
    let jwks: CoreJsonWebKeySet = app.get("/jwks.json").await.json().await.expect("jwks");
    let verifier = CoreIdTokenVerifier::new_confidential_client(
        ClientId::new(EC_RP.id.into()),
        openidconnect::ClientSecret::new(EC_RP.secret.into()),
        IssuerUrl::new(app.address.clone()).expect("issuer"),
        jwks,
    )
    .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let parsed: openidconnect::core::CoreIdToken = id_token.parse().expect("an ID token");
    let claims = parsed
        .claims(&verifier, &Nonce::new("n-1".into()))
        .expect("the library verifies it");
    assert_eq!(claims.subject().as_str(), ALICE);
    assert_eq!(decode_payload(&id_token)["aud"], EC_RP.id);
    // It is accepted back as an id_token_hint.
    let hint = browser
        .get(&app.authorize_url(
            EC_RP.id,
            EC_RP.redirect,
            &[("id_token_hint", &id_token), ("prompt", "none")],
        ))
        .await;
    assert!(
        hint.location.unwrap_or_default().contains("code="),
        "an ES256 ID token is a valid hint"
    );
}
