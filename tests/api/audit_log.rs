//! The audit log: a full session (Discord sign-in with consent, code exchange, refresh, a
//! reused refresh token, single sign-on, a refusal by an app's rules, revocation, logout)
//! writes one `audit` line per security event, each with the request id, client id, Discord
//! user id, source address and outcome; and nothing it logs holds a secret it used.

use crate::browser::{Browser, query_of};
use crate::helpers::{
    ALICE, Rp, TestApp, authorize_page, client_toml, hidden_field, location, post_as_browser,
    redeem_as, redirect_params, refresh_as, revoke_as, spawn_app_with,
};
use crate::log_capture::Capture;
use serde_json::Value;

/// The app of the first test (consent `once`, refresh tokens); each test has its own client
/// ids, so its lines can be told from those of tests running at the same time.
const AUDITED: Rp = Rp {
    id: "audited",
    secret: "audited-secret-audited-secret",
    redirect: "https://audited.example.com/cb",
};
/// An app whose own rules refuse Alice.
const AUDITED_GATED: Rp = Rp {
    id: "audited-gated",
    secret: "audited-gated-secret-audited",
    redirect: "https://audited-gated.example.com/cb",
};
/// The second test's pair.
const CAREFUL: Rp = Rp {
    id: "careful",
    secret: "careful-secret-careful-secret",
    redirect: "https://careful.example.com/cb",
};
const CAREFUL_GATED: Rp = Rp {
    id: "careful-gated",
    secret: "careful-gated-secret-careful",
    redirect: "https://careful-gated.example.com/cb",
};

/// What a full session used and what the log holds afterwards.
struct Session {
    log: String,
    /// Every secret value the session sent or received, named.
    secrets: Vec<(&'static str, String)>,
}

/// Runs the whole session for `rp` (and `gated`) under a log capture.
async fn full_session(rp: Rp, gated: Rp) -> (TestApp, Session) {
    let capture = Capture::start();
    let app = spawn_app_with(
        &[
            client_toml(rp, "consent = \"once\"\nrefresh_tokens = true"),
            client_toml(gated, &format!("deny_users = [\"{ALICE}\"]")),
        ]
        .concat(),
    )
    .await;
    let mut browser = Browser::new();
    let mut secrets = vec![("the client secret", rp.secret.to_owned())];

    // Sign in with Discord, consent, code → tokens.
    let url = app.authorize_url(rp.id, rp.redirect, &[("scope", "openid profile")]);
    let consent = authorize_page(&app, &mut browser, &url, ALICE).await;
    let ticket = hidden_field(&consent.body, "ticket").expect("the consent page");
    let allowed = post_as_browser(
        &app,
        &browser,
        "/consent",
        &[("ticket", &ticket), ("answer", "allow")],
    )
    .await;
    let code = query_of(&location(&allowed).expect("to the app"))["code"].clone();
    let first = redeem_as(&app, rp, &code).await;
    assert_eq!(first.status, 200, "{}", first.body);

    // Refresh, then present the rotated token again (its family is revoked).
    let second = refresh_as(&app, rp, &first.text("refresh_token"), None).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let reused = refresh_as(&app, rp, &first.text("refresh_token"), None).await;
    assert_eq!(reused.error(), "invalid_grant");

    // Single sign-on: a new grant without Discord (consent remembered), then revoke it.
    let page = authorize_page(
        &app,
        &mut browser,
        &app.authorize_url(rp.id, rp.redirect, &[("scope", "openid profile")]),
        ALICE,
    )
    .await;
    let sso_code = redirect_params(&page)["code"].clone();
    let third = redeem_as(&app, rp, &sso_code).await;
    assert_eq!(third.status, 200, "{}", third.body);
    assert_eq!(
        revoke_as(&app, Some(rp), &third.text("refresh_token"))
            .await
            .status,
        200
    );

    // The gated app refuses Alice on her session.
    let refused = browser
        .get(&app.authorize_url(gated.id, gated.redirect, &[]))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    // Log out with the last ID token as the hint.
    let session = browser
        .cookie(&app.address, "guildgate_session")
        .expect("a session cookie");
    let id_token = third.text("id_token");
    browser
        .get(&format!(
            "{}/logout?id_token_hint={id_token}&client_id={}",
            app.address, rp.id
        ))
        .await;
    let log = capture.stop();

    for (what, reply) in [("first", &first), ("second", &second), ("third", &third)] {
        for field in ["access_token", "refresh_token", "id_token"] {
            let name: &'static str =
                Box::leak(format!("the {what} response's {field}").into_boxed_str());
            secrets.push((name, reply.text(field)));
        }
    }
    secrets.extend([
        ("the first code", code),
        ("the single sign-on code", sso_code),
        ("the consent ticket", ticket),
        ("the session cookie", session),
    ]);
    (app, Session { log, secrets })
}

/// The audit lines about `client_id`, parsed.
fn audit_lines(log: &str, client_ids: &[&str]) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "audit")
        .filter(|l| client_ids.iter().any(|c| l["client_id"] == *c))
        .collect()
}

#[tokio::test]
async fn each_security_event_of_a_session_is_one_audit_line_with_its_fields() {
    // Arrange + Act
    let (_app, session) = full_session(AUDITED, AUDITED_GATED).await;
    let lines = audit_lines(&session.log, &[AUDITED.id, AUDITED_GATED.id]);
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();

    // Assert: one line per event, in order.
    assert_eq!(
        events,
        [
            "sign_in",
            "consent_given",
            "token_issued",
            "token_issued",
            "refresh_reuse",
            "token_issued",
            "revocation",
            "access_denied",
            "logout",
        ],
        "{lines:#?}"
    );
    // Every line carries the same fields, filled in.
    for line in &lines {
        let what = &line["event"];
        assert_eq!(line["user_id"], ALICE, "{what}");
        assert_eq!(line["source_ip"], "127.0.0.1", "{what}");
        let request_id = line["request_id"].as_str().unwrap_or_default();
        assert!(
            uuid::Uuid::parse_str(request_id).is_ok(),
            "{what}: {request_id:?}"
        );
        // ... the same request id as the request's own log context.
        let spans = line["spans"].as_array().expect("the span list");
        assert!(
            spans.iter().any(|s| s["request_id"] == request_id),
            "{what}: {line}"
        );
        assert!(
            line["outcome"].as_str().is_some_and(|o| !o.is_empty()),
            "{what}"
        );
        assert!(line.get("reason").is_some(), "{what}");
    }
    let by_event = |name: &str| lines.iter().find(|l| l["event"] == name).unwrap();
    assert_eq!(by_event("access_denied")["client_id"], AUDITED_GATED.id);
    assert_eq!(by_event("access_denied")["outcome"], "denied");
    assert_eq!(by_event("access_denied")["reason"], "app:blocked");
    assert_eq!(by_event("refresh_reuse")["outcome"], "revoked");
    assert_eq!(by_event("refresh_reuse")["level"], "WARN");
    assert_eq!(by_event("revocation")["reason"], "refresh_token");
    assert_eq!(by_event("token_issued")["reason"], "authorization_code");
    assert_eq!(lines[3]["reason"], "refresh_token");
}

#[tokio::test]
async fn a_full_session_logs_none_of_its_secrets() {
    // Arrange + Act
    let (_app, session) = full_session(CAREFUL, CAREFUL_GATED).await;

    // Assert: the log was written (audit lines included) ...
    assert!(
        audit_lines(&session.log, &[CAREFUL.id]).len() >= 8,
        "the session was audited"
    );
    // ... and holds none of the secrets, nor any part of a JWT.
    for (what, secret) in &session.secrets {
        assert!(secret.len() >= 12, "{what} is long enough to look for");
        assert!(
            !session.log.contains(secret.as_str()),
            "{what} is in the log"
        );
        if secret.starts_with("eyJ") {
            for part in secret.split('.').skip(1) {
                assert!(
                    !session.log.contains(part),
                    "a part of {what} is in the log"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_scheduled_key_rotation_is_audited() {
    // Arrange
    let capture = Capture::start();
    let app = spawn_app_with("").await;
    app.state
        .clock
        .advance(std::time::Duration::from_secs(400 * 24 * 3600));

    // Act
    guildgate::jobs::maintain_keys_now(&app.state)
        .await
        .expect("key maintenance");
    let log = capture.stop();

    // Assert: the new key file of this app's folder is named in a key_rotation line.
    let newest = app
        .state
        .keys
        .all()
        .into_iter()
        .max_by_key(|k| k.activates_at)
        .expect("keys");
    let file = newest
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "audit" && l["event"] == "key_rotation")
        .filter(|l| l["reason"] == format!("schedule:{file}"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert_eq!(lines[0]["outcome"], "ok");
    assert_eq!(lines[0]["request_id"], "");
}

/// A device client, a service client and a `private_key_jwt` service client holding `key`,
/// with ids of this test's own.
fn grant_clients(key: &crate::proof_keys::AppKey) -> String {
    format!(
        "\n[secrets]\nencryption_key = \"{}\"\n\
         [[clients]]\nid = \"audited-tv\"\nname = \"Audited TV\"\npublic = true\ndevice_flow = true\n\
         [[clients]]\nid = \"audited-svc\"\nsecret = \"audited-svc-secret-audited\"\n\
         client_credentials = true\n\
         [[clients]]\nid = \"audited-ci\"\nclient_credentials = true\n{}\n",
        "03".repeat(32),
        key.jwks_toml()
    )
}

/// `POST /token` for a service token, with `basic` credentials or `extra` form fields, and a
/// DPoP proof when given.
async fn service_token(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    extra: &[(&str, &str)],
    proof: Option<&str>,
) -> crate::helpers::Reply {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let mut request = app.http.post(format!("{}/token", app.address)).form(&form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    crate::helpers::Reply::read(request.send().await.expect("answers")).await
}

#[tokio::test]
async fn service_tokens_device_answers_and_replayed_one_time_jwts_are_audited() {
    use crate::device_flow::{answer, enter_code, start};
    // Arrange
    let capture = Capture::start();
    let key = crate::proof_keys::AppKey::new("audited-ci-1");
    let app = spawn_app_with(&grant_clients(&key)).await;
    let token_url = format!("{}/token", app.address);
    let now = app.state.clock.now().unix_timestamp();
    let svc = Some(("audited-svc", "audited-svc-secret-audited"));

    // Act: a service token with a DPoP proof, and the proof again; one with a client
    // assertion, and the assertion again; a device allowed and one declined.
    let proof = crate::proof_keys::AppKey::new("svc").proof("POST", &token_url, now, None, None);
    assert_eq!(
        service_token(&app, svc, &[], Some(&proof)).await.status,
        200
    );
    let replayed_proof = service_token(&app, svc, &[], Some(&proof)).await;
    assert_eq!(replayed_proof.error(), "invalid_dpop_proof");
    let assertion = key.assertion("audited-ci", &token_url, now);
    let fields = crate::proof_keys::assertion_form(&assertion);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(service_token(&app, None, &fields, None).await.status, 200);
    assert_eq!(service_token(&app, None, &fields, None).await.status, 401);
    let mut browser = Browser::new();
    for choice in ["allow", "deny"] {
        let device = start(&app, "audited-tv", "openid").await;
        let (_, page) = enter_code(&app, &mut browser, &device.text("user_code"), ALICE).await;
        assert_eq!(
            answer(&app, &browser, &page, choice).await.0,
            200,
            "{choice}"
        );
    }
    let log = capture.stop();

    // Assert: one line per event, with its client, person, reason and outcome.
    let lines = audit_lines(&log, &["audited-tv", "audited-svc", "audited-ci"]);
    let one = |event: &str, client: &str| -> &Value {
        let found: Vec<&Value> = lines
            .iter()
            .filter(|l| l["event"] == event && l["client_id"] == client)
            .collect();
        assert_eq!(found.len(), 1, "{event} for {client}: {lines:#?}");
        found[0]
    };
    let expected = [
        (
            "service_token_issued",
            "audited-svc",
            "ok",
            "client_credentials",
        ),
        (
            "service_token_issued",
            "audited-ci",
            "ok",
            "client_credentials",
        ),
        ("replay_refused", "audited-svc", "denied", "dpop_proof"),
        ("replay_refused", "audited-ci", "denied", "client_assertion"),
        ("device_approved", "audited-tv", "ok", "device_code"),
        ("device_denied", "audited-tv", "denied", "declined"),
    ];
    for (event, client, outcome, reason) in expected {
        let line = one(event, client);
        assert_eq!(line["outcome"], outcome, "{event}: {line}");
        assert_eq!(line["reason"], reason, "{event}: {line}");
        assert_eq!(line["source_ip"], "127.0.0.1", "{event}");
        let request_id = line["request_id"].as_str().unwrap_or_default();
        assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{event}: {line}");
    }
    for (event, client) in [
        ("device_approved", "audited-tv"),
        ("device_denied", "audited-tv"),
    ] {
        assert_eq!(one(event, client)["user_id"], ALICE, "{event}");
    }
    for client in ["audited-svc", "audited-ci"] {
        assert_eq!(one("replay_refused", client)["level"], "WARN", "{client}");
    }
}
