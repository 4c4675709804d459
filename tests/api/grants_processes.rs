//! The grants beyond the code flow on two `guildgate serve` processes of one deployment (one
//! Postgres database): a device code started on one and approved on the other is spent once,
//! even when both are polled at once; a DPoP proof and a client assertion are used once in the
//! whole deployment, also when sent to both at once, and a DPoP nonce of one is good at the
//! other; a pushed request made on one is used once through the other.

use crate::browser::Browser;
use crate::helpers::{BOB, hidden_field};
use crate::processes::{
    Deployment, Process, code_of, free_port, post_form, postgres_or_skip, redeem, to_callback,
};
use crate::proof_keys::{AppKey, assertion_form};
use crate::test_db::Backend;
use std::time::Duration;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// A client-credentials client held to DPoP.
const BOUND: (&str, &str) = ("bound", "bound-secret-bound-secret");
/// A confidential browser client that pushes its requests.
const PUSHER: (&str, &str) = ("pusher", "pusher-secret-pusher-secret");
const PUSHER_REDIRECT: &str = "https://pusher.example.com/cb";

/// The deployment: a public device client (`cli`), [`BOUND`], a `private_key_jwt` service
/// client (`ci`) holding `ci_key`, and [`PUSHER`].
async fn deployment(ci_key: &AppKey) -> Deployment {
    let clients = format!(
        "[[clients]]\nid = \"cli\"\nname = \"Ops CLI\"\npublic = true\ndevice_flow = true\n\
         [[clients]]\nid = \"{}\"\nsecret = \"{}\"\nclient_credentials = true\n\
         allowed_scopes = [\"jobs\"]\ndpop_bound_access_tokens = true\n\
         [[clients]]\nid = \"ci\"\nclient_credentials = true\nallowed_scopes = [\"deploy\"]\n{}\n\
         [[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{PUSHER_REDIRECT}\"]\n",
        BOUND.0,
        BOUND.1,
        ci_key.jwks_toml(),
        PUSHER.0,
        PUSHER.1,
    );
    Deployment::new(Backend::Postgres, &clients).await
}

/// Starts A (at the issuer's address) and B at the same moment.
async fn both(deployment: &Deployment) -> (Process, Process) {
    tokio::join!(deployment.start_at_issuer(), deployment.start(free_port()))
}

/// Sends `form` (and a `DPoP` header when given) to `process`'s `path`: status and JSON body.
async fn send(
    process: &Process,
    path: &str,
    dpop: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", process.address))
        .form(form)
        .timeout(Duration::from_secs(30));
    if let Some(proof) = dpop {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.expect("request reaches guildgate");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// `POST /device_authorization` for `cli` at `process`: the device code and the user code.
async fn start_device(process: &Process) -> (String, String) {
    let (status, body) = send(
        process,
        "/device_authorization",
        None,
        &[("client_id", "cli"), ("scope", "openid")],
    )
    .await;
    assert_eq!(status, 200, "a device sign-in starts: {body}");
    let text = |name: &str| body[name].as_str().expect(name).to_owned();
    (text("device_code"), text("user_code"))
}

/// One poll of `/token` by `cli` at `process`.
async fn poll(process: &Process, device_code: &str) -> (u16, serde_json::Value) {
    send(
        process,
        "/token",
        None,
        &[
            ("grant_type", DEVICE_GRANT),
            ("client_id", "cli"),
            ("device_code", device_code),
        ],
    )
    .await
}

/// The person types `user_code` on the device page, signs in at Discord as `user` and allows
/// the device, every request of the browser going to `process`.
async fn approve_on(
    deployment: &Deployment,
    browser: &mut Browser,
    process: &Process,
    user_code: &str,
    user: &str,
) {
    let device_page = format!("{}/device", deployment.issuer);
    let entered = browser
        .post_form_through(&device_page, &process.address, &[("user_code", user_code)])
        .await;
    let to_discord = entered.location.unwrap_or_else(|| {
        panic!(
            "the code sends the browser to Discord: {} {}",
            entered.status, entered.body
        )
    });
    deployment.discord.sign_in_as(Some(user));
    let back = browser.get(&to_discord).await;
    let callback = back.location.expect("Discord redirects back");
    let confirmation = browser.get_through(&callback, &process.address).await;
    let ticket = hidden_field(&confirmation.body, "ticket").unwrap_or_else(|| {
        panic!(
            "the confirmation page: {} {}",
            confirmation.status, confirmation.body
        )
    });
    let answered = browser
        .post_form_through(
            &format!("{device_page}/answer"),
            &process.address,
            &[("ticket", &ticket), ("answer", "allow")],
        )
        .await;
    assert_eq!(answered.status, 200, "approved: {}", answered.body);
}

/// A service token for [`BOUND`] at `process` with `proof`: status, JSON body and the
/// `DPoP-Nonce` header (empty when none).
async fn bound_token(process: &Process, proof: &str) -> (u16, serde_json::Value, String) {
    let response = reqwest::Client::new()
        .post(format!("{}/token", process.address))
        .basic_auth(BOUND.0, Some(BOUND.1))
        .header("DPoP", proof)
        .form(&[("grant_type", "client_credentials")])
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("request reaches guildgate");
    let status = response.status().as_u16();
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, response.json().await.unwrap_or_default(), nonce)
}

/// Seconds since the epoch, as the processes' clocks read them.
fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn a_device_code_started_on_one_process_and_approved_on_the_other_gives_tokens_once() {
    if !postgres_or_skip("the device flow across processes") {
        return;
    }
    // Arrange
    let key = AppKey::new("ci-1");
    let deployment = deployment(&key).await;
    let (a, b) = both(&deployment).await;
    let (device_code, user_code) = start_device(&a).await;
    let (status, waiting) = poll(&a, &device_code).await;
    assert_eq!(
        (status, waiting["error"].as_str()),
        (400, Some("authorization_pending")),
        "{waiting}"
    );

    // Act: the person approves on B; the device polls A, then B.
    approve_on(&deployment, &mut Browser::new(), &b, &user_code, BOB).await;
    let (status, tokens) = poll(&a, &device_code).await;
    let (again_status, again) = poll(&b, &device_code).await;

    // Assert
    assert_eq!(
        status, 200,
        "A hands out the tokens B's page approved: {tokens}"
    );
    let access_token = tokens["access_token"].as_str().expect("an access token");
    let (status, claims) = crate::processes::userinfo(&b, access_token).await;
    assert_eq!(status, 200, "{claims}");
    assert_eq!(claims["sub"], BOB);
    assert_eq!(
        (again_status, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "a spent device code is spent on every process: {again}"
    );
}

#[tokio::test]
async fn an_approved_device_code_polled_on_both_processes_at_once_gives_one_token_response() {
    if !postgres_or_skip("the device flow across processes") {
        return;
    }
    // Arrange
    let key = AppKey::new("ci-1");
    let deployment = deployment(&key).await;
    let (a, b) = both(&deployment).await;
    let (device_code, user_code) = start_device(&b).await;
    approve_on(&deployment, &mut Browser::new(), &a, &user_code, BOB).await;

    // Act
    let (on_a, on_b) = tokio::join!(poll(&a, &device_code), poll(&b, &device_code));

    // Assert
    let answers = [&on_a, &on_b];
    let winners = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(winners, 1, "exactly one token response: {on_a:?} {on_b:?}");
    let loser = answers
        .iter()
        .find(|(s, _)| *s != 200)
        .expect("one refusal");
    assert_eq!(
        (loser.0, loser.1["error"].as_str()),
        (400, Some("invalid_grant")),
        "{loser:?}"
    );
}

#[tokio::test]
async fn a_dpop_proof_or_a_client_assertion_used_on_one_process_is_refused_on_the_other() {
    if !postgres_or_skip("one-time JWTs across processes") {
        return;
    }
    // Arrange: both are made for the issuer's token endpoint, which either process serves.
    let ci_key = AppKey::new("ci-1");
    let deployment = deployment(&ci_key).await;
    let (a, b) = both(&deployment).await;
    let token_url = format!("{}/token", deployment.issuer);
    let dpop_key = AppKey::new("svc");
    let proof = dpop_key.proof("POST", &token_url, unix_now(), None, None);
    let assertion = ci_key.assertion("ci", &token_url, unix_now());
    let assertion_fields = assertion_form(&assertion);
    let mut with_assertion: Vec<(&str, &str)> = assertion_fields
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    with_assertion.push(("grant_type", "client_credentials"));

    // Act: each is used on A, then replayed to B.
    let proof_on_a = bound_token(&a, &proof).await;
    let proof_on_b = bound_token(&b, &proof).await;
    let fresh_on_b = bound_token(
        &b,
        &dpop_key.proof("POST", &token_url, unix_now(), None, None),
    )
    .await;
    let assertion_on_a = send(&a, "/token", None, &with_assertion).await;
    let assertion_on_b = send(&b, "/token", None, &with_assertion).await;
    let raced = dpop_key.proof("POST", &token_url, unix_now(), None, None);
    let (raced_a, raced_b) = tokio::join!(bound_token(&a, &raced), bound_token(&b, &raced));

    // Assert
    assert_eq!(proof_on_a.0, 200, "A takes the proof: {:?}", proof_on_a.1);
    assert_eq!(proof_on_a.1["token_type"], "DPoP");
    assert_eq!(
        (proof_on_b.0, proof_on_b.1["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "B refuses the proof A took: {:?}",
        proof_on_b.1
    );
    assert_eq!(fresh_on_b.0, 200, "a fresh proof: {:?}", fresh_on_b.1);
    let statuses = [raced_a.0, raced_b.0];
    assert!(
        statuses.contains(&200) && statuses.contains(&400),
        "one proof sent to both at once is taken once: {raced_a:?} {raced_b:?}"
    );
    assert_eq!(
        assertion_on_a.0, 200,
        "A takes the assertion: {}",
        assertion_on_a.1
    );
    assert_eq!(
        (assertion_on_b.0, assertion_on_b.1["error"].as_str()),
        (401, Some("invalid_client")),
        "B refuses the assertion A took: {}",
        assertion_on_b.1
    );
}

#[tokio::test]
async fn a_pushed_request_made_on_one_process_is_used_once_through_the_other() {
    if !postgres_or_skip("pushed requests across processes") {
        return;
    }
    // Arrange: the app pushes its request to A.
    let key = AppKey::new("ci-1");
    let deployment = deployment(&key).await;
    let (a, b) = both(&deployment).await;
    let (status, pushed) = post_form(
        &a,
        "/par",
        PUSHER,
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("redirect_uri", PUSHER_REDIRECT),
            ("state", "pushed-state"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{pushed}");
    let request_uri = pushed["request_uri"].as_str().expect("a request_uri");
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", PUSHER.0)
        .append_pair("request_uri", request_uri);
    let by_reference = format!("{}/authorize?{}", deployment.issuer, query.finish());

    // Act: the browser carries the reference to B, Discord's callback lands on A; then the
    // reference comes back to each process.
    let mut browser = Browser::new();
    let callback = to_callback(&deployment, &mut browser, &b, &by_reference, BOB).await;
    let done = browser.get_through(&callback, &a.address).await;
    let again_on_a = Browser::new().get_through(&by_reference, &a.address).await;
    let again_on_b = Browser::new().get_through(&by_reference, &b.address).await;

    // Assert: the pushed parameters were used, once.
    let to_app = done
        .location
        .unwrap_or_else(|| panic!("to the app: {} {}", done.status, done.body));
    assert!(to_app.starts_with(PUSHER_REDIRECT), "{to_app}");
    assert_eq!(
        crate::browser::query_of(&to_app)
            .get("state")
            .map(String::as_str),
        Some("pushed-state")
    );
    let (status, tokens) = redeem(&b, PUSHER, &code_of(&to_app), PUSHER_REDIRECT).await;
    assert_eq!(status, 200, "{tokens}");
    for (name, page) in [("A", &again_on_a), ("B", &again_on_b)] {
        assert_eq!(page.status, 400, "{name}: {}", page.body);
        assert!(page.location.is_none(), "{name}: a page, no redirect");
    }
}

#[tokio::test]
async fn a_dpop_nonce_handed_out_by_one_process_is_accepted_by_the_other() {
    if !postgres_or_skip("DPoP nonces across processes") {
        return;
    }
    // Arrange: nonces are required; both processes derive them from the shared encryption key.
    let key = AppKey::new("ci-1");
    let deployment = deployment(&key)
        .await
        .with_env("DPOP__REQUIRE_NONCE", "true");
    let (a, b) = both(&deployment).await;
    let token_url = format!("{}/token", deployment.issuer);
    let dpop_key = AppKey::new("svc");

    // Act: A asks for a nonce; the proof carrying it goes to B.
    let (status, asked, nonce) = bound_token(
        &a,
        &dpop_key.proof("POST", &token_url, unix_now(), None, None),
    )
    .await;
    let with_nonce = dpop_key.proof("POST", &token_url, unix_now(), None, Some(&nonce));
    let (on_b, tokens, next_nonce) = bound_token(&b, &with_nonce).await;

    // Assert
    assert_eq!(
        (status, asked["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    assert!(!nonce.is_empty(), "A hands out a nonce");
    assert_eq!(on_b, 200, "B accepts A's nonce: {tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    assert!(
        !next_nonce.is_empty(),
        "B hands out the next nonce with the answer"
    );
}
