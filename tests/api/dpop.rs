//! DPoP (RFC 9449): tokens bound to the app's key at `/token`, honoured at `/userinfo` only
//! with a fresh proof by that key; a public client's refresh tokens bound too; proofs for
//! another request, stale or replayed refused; server nonces; clients held to DPoP.

use crate::browser::Browser;
use crate::flow::decode_payload;
use crate::helpers::{ALICE, Reply, SPA, SPA_REDIRECT, TestApp, pkce, spawn_app_with};
use crate::proof_keys::AppKey;

const BOUND_CLIENT: &str = r#"
[[clients]]
id = "bound"
secret = "bound-secret-bound-secret"
client_credentials = true
allowed_scopes = ["jobs"]
dpop_bound_access_tokens = true
redirect_uris = []
"#;

fn now(app: &TestApp) -> i64 {
    app.state.clock.now().unix_timestamp()
}

/// `POST /token` with a `DPoP` header (when given).
async fn token_with(
    app: &TestApp,
    proof: Option<&str>,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Reply {
    let mut request = app.http.post(format!("{}/token", app.address)).form(form);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    Reply::read(request.send().await.expect("answers")).await
}

/// `GET /userinfo` with `Authorization: {scheme} {token}` and a proof when given.
async fn userinfo_with(app: &TestApp, scheme: &str, token: &str, proof: Option<&str>) -> Reply {
    let mut request = app
        .http
        .get(format!("{}/userinfo", app.address))
        .header("authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    Reply::read(request.send().await.expect("answers")).await
}

/// Alice signs in to the public SPA client with PKCE; the code and its verifier.
async fn spa_code(app: &TestApp, extra: &[(&str, &str)]) -> (String, String) {
    let (challenge, verifier) = pkce();
    let mut params = vec![
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let code = app
        .code_for(&mut Browser::new(), SPA, SPA_REDIRECT, &params, ALICE)
        .await;
    (code, verifier)
}

async fn redeem_with_proof(app: &TestApp, key: &AppKey, code: &str, verifier: &str) -> Reply {
    let proof = key.proof(
        "POST",
        &format!("{}/token", app.address),
        now(app),
        None,
        None,
    );
    token_with(
        app,
        Some(&proof),
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", SPA),
            ("code", code),
            ("redirect_uri", SPA_REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

#[tokio::test]
async fn a_bound_token_works_only_with_a_fresh_proof_by_its_key() {
    // Arrange
    let app = spawn_app_with("").await;
    let key = AppKey::new("app");
    let (code, verifier) = spa_code(&app, &[]).await;

    // Act
    let tokens = redeem_with_proof(&app, &key, &code, &verifier).await;

    // Assert: bound to the key.
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.text("token_type"), "DPoP");
    let access = tokens.text("access_token");
    assert_eq!(decode_payload(&access)["cnf"]["jkt"], key.thumbprint());
    let userinfo_url = format!("{}/userinfo", app.address);
    let fresh = |t: &str| key.proof("GET", &userinfo_url, now(&app), Some(t), None);

    let ok = userinfo_with(&app, "DPoP", &access, Some(&fresh(&access))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["sub"], ALICE);

    // As a bearer token it is refused, with the DPoP challenge.
    let as_bearer = userinfo_with(&app, "Bearer", &access, None).await;
    assert_eq!(as_bearer.status, 401);
    assert!(
        as_bearer.header("www-authenticate").starts_with("DPoP "),
        "{:?}",
        as_bearer.headers
    );

    // Proofs for another URL or method, stale, by another key, or replayed are refused.
    let other_key = AppKey::new("thief");
    let cases = [
        (
            "another URL",
            key.proof(
                "GET",
                &format!("{}/token", app.address),
                now(&app),
                Some(&access),
                None,
            ),
        ),
        (
            "another method",
            key.proof("POST", &userinfo_url, now(&app), Some(&access), None),
        ),
        (
            "a stale iat",
            key.proof("GET", &userinfo_url, now(&app) - 300, Some(&access), None),
        ),
        (
            "another key",
            other_key.proof("GET", &userinfo_url, now(&app), Some(&access), None),
        ),
        (
            "no ath",
            key.proof("GET", &userinfo_url, now(&app), None, None),
        ),
    ];
    for (what, proof) in cases {
        let refused = userinfo_with(&app, "DPoP", &access, Some(&proof)).await;
        assert_eq!(refused.status, 401, "{what}: {}", refused.body);
        assert_eq!(refused.error(), "invalid_dpop_proof", "{what}");
        let challenge = refused.header("www-authenticate");
        assert!(
            challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_dpop_proof\""),
            "{what}: {challenge}"
        );
    }
    let once = fresh(&access);
    assert_eq!(
        userinfo_with(&app, "DPoP", &access, Some(&once))
            .await
            .status,
        200
    );
    let replay = userinfo_with(&app, "DPoP", &access, Some(&once)).await;
    assert_eq!(replay.error(), "invalid_dpop_proof", "a replayed proof");
}

#[tokio::test]
async fn a_public_clients_refresh_token_is_bound_to_the_key() {
    let app = spawn_app_with(
        "\n[[clients]]\nid = \"spa2\"\npublic = true\nrefresh_tokens = true\nredirect_uris = [\"http://127.0.0.1/callback\"]\n",
    )
    .await;
    let key = AppKey::new("app");
    let (challenge, verifier) = pkce();
    let code = app
        .code_for(
            &mut Browser::new(),
            "spa2",
            SPA_REDIRECT,
            &[
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            ALICE,
        )
        .await;
    let token_url = format!("{}/token", app.address);
    let tokens = token_with(
        &app,
        Some(&key.proof("POST", &token_url, now(&app), None, None)),
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa2"),
            ("code", &code),
            ("redirect_uri", SPA_REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    let refresh = tokens.text("refresh_token");
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "spa2"),
        ("refresh_token", refresh.as_str()),
    ];

    let without = token_with(&app, None, None, &form).await;
    assert_eq!(without.error(), "invalid_dpop_proof", "{}", without.body);
    let thief = AppKey::new("thief");
    let stolen = token_with(
        &app,
        Some(&thief.proof("POST", &token_url, now(&app), None, None)),
        None,
        &form,
    )
    .await;
    assert_eq!(stolen.error(), "invalid_grant", "{}", stolen.body);
    let owner = token_with(
        &app,
        Some(&key.proof("POST", &token_url, now(&app), None, None)),
        None,
        &form,
    )
    .await;
    assert_eq!(
        owner.status, 200,
        "neither refusal spent the token: {}",
        owner.body
    );
    assert_eq!(owner.text("token_type"), "DPoP");
}

#[tokio::test]
async fn token_request_proofs_must_fit_and_are_used_once() {
    let app = spawn_app_with(BOUND_CLIENT).await;
    let key = AppKey::new("svc");
    let token_url = format!("{}/token", app.address);
    let creds = Some(("bound", "bound-secret-bound-secret"));
    let form = [("grant_type", "client_credentials")];

    // Held to DPoP: no proof, no token.
    let none = token_with(&app, None, creds, &form).await;
    assert_eq!(none.status, 400);
    assert_eq!(none.error(), "invalid_dpop_proof");

    let proof = key.proof("POST", &token_url, now(&app), None, None);
    let ok = token_with(&app, Some(&proof), creds, &form).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.text("token_type"), "DPoP");
    assert_eq!(
        decode_payload(&ok.text("access_token"))["cnf"]["jkt"],
        key.thumbprint()
    );

    let replayed = token_with(&app, Some(&proof), creds, &form).await;
    assert_eq!(replayed.error(), "invalid_dpop_proof", "replayed");
    let elsewhere = key.proof(
        "POST",
        &format!("{}/userinfo", app.address),
        now(&app),
        None,
        None,
    );
    assert_eq!(
        token_with(&app, Some(&elsewhere), creds, &form)
            .await
            .error(),
        "invalid_dpop_proof",
        "another URL"
    );
    let two = Reply::read(
        app.http
            .post(&token_url)
            .basic_auth("bound", Some("bound-secret-bound-secret"))
            .header("DPoP", key.proof("POST", &token_url, now(&app), None, None))
            .header("DPoP", key.proof("POST", &token_url, now(&app), None, None))
            .form(&form)
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(two.error(), "invalid_dpop_proof", "two proofs");
}

#[tokio::test]
async fn with_nonces_required_a_proof_carries_the_servers_nonce() {
    let app = spawn_app_with(&format!("[dpop]\nrequire_nonce = true\n{BOUND_CLIENT}")).await;
    let key = AppKey::new("svc");
    let token_url = format!("{}/token", app.address);
    let creds = Some(("bound", "bound-secret-bound-secret"));
    let form = [("grant_type", "client_credentials")];

    let first = token_with(
        &app,
        Some(&key.proof("POST", &token_url, now(&app), None, None)),
        creds,
        &form,
    )
    .await;
    assert_eq!(first.status, 400);
    assert_eq!(first.error(), "use_dpop_nonce");
    let nonce = first.header("dpop-nonce").to_owned();
    assert!(!nonce.is_empty());

    let retried = token_with(
        &app,
        Some(&key.proof("POST", &token_url, now(&app), None, Some(&nonce))),
        creds,
        &form,
    )
    .await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert!(
        !retried.header("dpop-nonce").is_empty(),
        "a fresh nonce with the answer"
    );
}

#[tokio::test]
async fn a_code_bound_by_dpop_jkt_is_redeemed_with_that_key_only() {
    let app = spawn_app_with("").await;
    let key = AppKey::new("app");
    let thumbprint = key.thumbprint();
    let (code, verifier) = spa_code(&app, &[("dpop_jkt", thumbprint.as_str())]).await;
    let other = AppKey::new("other");
    let wrong = redeem_with_proof(&app, &other, &code, &verifier).await;
    assert_eq!(wrong.error(), "invalid_grant", "{}", wrong.body);
    let (code, verifier) = spa_code(&app, &[("dpop_jkt", thumbprint.as_str())]).await;
    let right = redeem_with_proof(&app, &key, &code, &verifier).await;
    assert_eq!(right.status, 200, "{}", right.body);
}

#[tokio::test]
async fn a_proof_sent_with_a_pushed_request_binds_its_code_to_that_key() {
    // Arrange: the public SPA pushes its request with a DPoP proof (RFC 9449 §10.1).
    let app = spawn_app_with("").await;
    let key = AppKey::new("app");
    let (challenge, verifier) = pkce();
    let par_url = format!("{}/par", app.address);
    let pushed = Reply::read(
        app.http
            .post(&par_url)
            .header("DPoP", key.proof("POST", &par_url, now(&app), None, None))
            .form(&[
                ("client_id", SPA),
                ("response_type", "code"),
                ("scope", "openid"),
                ("redirect_uri", SPA_REDIRECT),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(pushed.status, 201, "{}", pushed.body);
    let request_uri = pushed.text("request_uri");
    let authorize = format!(
        "{}/authorize?client_id={SPA}&request_uri={}",
        app.address,
        url::form_urlencoded::byte_serialize(request_uri.as_bytes()).collect::<String>()
    );

    // Act
    let page = crate::helpers::authorize_page(&app, &mut Browser::new(), &authorize, ALICE).await;
    let code = crate::helpers::redirect_params(&page)["code"].clone();
    let thief = redeem_with_proof(&app, &AppKey::new("thief"), &code, &verifier).await;

    // Assert: only the key that pushed may redeem the code; the thief's try spent it.
    assert_eq!(thief.error(), "invalid_grant", "{}", thief.body);
}
