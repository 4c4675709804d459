//! `private_key_jwt` client authentication (OIDC Core §9, RFC 7523): assertions signed with the
//! client's keys, inline (`jwks`) or fetched (`jwks_uri`), each used once, at every endpoint
//! that authenticates clients; and a client limited to its method.

use crate::helpers::{Reply, TestApp, spawn_app_with};
use crate::proof_keys::{AppKey, assertion_form};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the test's JWKS server answers.
#[derive(Clone)]
enum Serve {
    Keys(String),
    Huge,
    Hang,
}

/// A client's `jwks_uri` on 127.0.0.1: answers as told, counts requests.
struct JwksServer {
    url: String,
    serve: Arc<Mutex<Serve>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(serve: Serve) -> Self {
        let serve = Arc::new(Mutex::new(serve));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, h) = (serve.clone(), hits.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://127.0.0.1:{}/jwks.json",
            listener.local_addr().expect("addr").port()
        );
        let server = actix_web::HttpServer::new(move || {
            let (s, h) = (s.clone(), h.clone());
            actix_web::App::new().route(
                "/jwks.json",
                actix_web::web::get().to(move || {
                    let (s, h) = (s.clone(), h.clone());
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        let serve = s.lock().expect("lock").clone();
                        match serve {
                            Serve::Keys(body) => actix_web::HttpResponse::Ok()
                                .content_type("application/json")
                                .body(body),
                            Serve::Huge => actix_web::HttpResponse::Ok()
                                .content_type("application/json")
                                .body(format!(
                                    "{{\"keys\":[],\"pad\":\"{}\"}}",
                                    "x".repeat(5 << 20)
                                )),
                            Serve::Hang => {
                                tokio::time::sleep(Duration::from_secs(30)).await;
                                actix_web::HttpResponse::Ok().finish()
                            }
                        }
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .expect("listens")
        .run();
        tokio::spawn(server);
        Self { url, serve, hits }
    }

    fn set(&self, serve: Serve) {
        *self.serve.lock().expect("lock") = serve;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn keys_json(keys: &[&AppKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn now(app: &TestApp) -> i64 {
    app.state.clock.now().unix_timestamp()
}

/// A client-credentials request authenticated by `assertion` (no other credentials).
async fn with_assertion(
    app: &TestApp,
    path: &str,
    assertion: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let form_fields = assertion_form(assertion);
    let mut form: Vec<(&str, &str)> = form_fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.extend_from_slice(extra);
    Reply::read(
        app.http
            .post(format!("{}{path}", app.address))
            .form(&form)
            .send()
            .await
            .expect("answers"),
    )
    .await
}

async fn service_token(app: &TestApp, assertion: &str) -> Reply {
    with_assertion(
        app,
        "/token",
        assertion,
        &[("grant_type", "client_credentials")],
    )
    .await
}

fn inline_client(id: &str, key: &AppKey) -> String {
    format!(
        "\n[[clients]]\nid = \"{id}\"\nclient_credentials = true\nallowed_scopes = [\"deploy\"]\nredirect_uris = [\"https://{id}.example.com/cb\"]\n{}\n",
        key.jwks_inline_toml()
    )
}

#[tokio::test]
async fn an_assertion_signed_by_the_clients_key_authenticates_it_once() {
    // Arrange
    let key = AppKey::new("ci-1");
    let app = spawn_app_with(&inline_client("ci", &key)).await;
    let token_url = format!("{}/token", app.address);

    // Act
    let assertion = key.assertion("ci", &token_url, now(&app));
    let first = service_token(&app, &assertion).await;
    let replayed = service_token(&app, &assertion).await;

    // Assert
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        replayed.status, 401,
        "a replayed assertion: {}",
        replayed.body
    );
    assert_eq!(replayed.error(), "invalid_client");
    // The issuer is an accepted audience too.
    let to_issuer = key.assertion("ci", &app.address, now(&app));
    assert_eq!(service_token(&app, &to_issuer).await.status, 200);
}

#[tokio::test]
async fn assertions_outside_the_rules_are_refused() {
    let key = AppKey::new("ci-1");
    let stranger = AppKey::new("ci-1");
    let app = spawn_app_with(&inline_client("ci", &key)).await;
    let token_url = format!("{}/token", app.address);
    let t = now(&app);
    let cases = [
        ("a key outside the client's set", stranger.assertion("ci", &token_url, t)),
        ("another audience", key.assertion("ci", "https://elsewhere.example.com/token", t)),
        ("expired", key.assertion_with(&json!({"iss": "ci", "sub": "ci", "aud": token_url, "exp": t - 1, "jti": "e1"}))),
        ("another subject", key.assertion_with(&json!({"iss": "ci", "sub": "other", "aud": token_url, "exp": t + 60, "jti": "s1"}))),
        ("no jti", key.assertion_with(&json!({"iss": "ci", "sub": "ci", "aud": token_url, "exp": t + 60}))),
        ("valid for a day", key.assertion_with(&json!({"iss": "ci", "sub": "ci", "aud": token_url, "exp": t + 86_400, "jti": "d1"}))),
    ];
    for (what, assertion) in cases {
        let reply = service_token(&app, &assertion).await;
        assert_eq!(reply.status, 401, "{what}: {}", reply.body);
        assert_eq!(reply.error(), "invalid_client", "{what}");
    }
    // A secret is no way in for a client with keys only.
    let basic = Reply::read(
        app.token(
            Some(("ci", "anything")),
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    assert_eq!(basic.status, 401);
}

#[tokio::test]
async fn assertions_authenticate_at_revoke_introspect_and_par_for_their_own_audience() {
    let key = AppKey::new("ci-1");
    let app = spawn_app_with(&inline_client("ci", &key)).await;
    let token = service_token(
        &app,
        &key.assertion("ci", &format!("{}/token", app.address), now(&app)),
    )
    .await
    .text("access_token");
    let introspected = with_assertion(
        &app,
        "/introspect",
        &key.assertion("ci", &format!("{}/introspect", app.address), now(&app)),
        &[("token", &token)],
    )
    .await;
    assert_eq!(introspected.body["active"], true, "{}", introspected.body);
    let revoked = with_assertion(
        &app,
        "/revoke",
        &key.assertion("ci", &format!("{}/revoke", app.address), now(&app)),
        &[("token", &token)],
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let pushed = with_assertion(
        &app,
        "/par",
        &key.assertion("ci", &format!("{}/par", app.address), now(&app)),
        &[
            ("response_type", "code"),
            ("scope", "openid"),
            ("redirect_uri", "https://ci.example.com/cb"),
        ],
    )
    .await;
    assert_eq!(pushed.status, 201, "{}", pushed.body);
}

#[tokio::test]
async fn keys_at_a_jwks_uri_are_cached_and_fetched_again_for_a_new_kid_at_most_once_a_minute() {
    // Arrange
    let old = AppKey::new("2026-01");
    let new = AppKey::new("2026-02");
    let jwks = JwksServer::start(Serve::Keys(keys_json(&[&old]))).await;
    let app = spawn_app_with(&format!(
        "\n[[clients]]\nid = \"ci\"\nclient_credentials = true\njwks_uri = \"{}\"\nredirect_uris = []\n",
        jwks.url
    ))
    .await;
    let aud = format!("{}/token", app.address);

    // Act + Assert: fetched once, then cached.
    assert_eq!(
        service_token(&app, &old.assertion("ci", &aud, now(&app)))
            .await
            .status,
        200
    );
    assert_eq!(
        service_token(&app, &old.assertion("ci", &aud, now(&app)))
            .await
            .status,
        200
    );
    assert_eq!(jwks.hits(), 1, "cached");

    // The client publishes a new key: an assertion naming it makes guildgate fetch again...
    jwks.set(Serve::Keys(keys_json(&[&old, &new])));
    app.state.clock.advance(Duration::from_secs(61));
    let rotated = service_token(&app, &new.assertion("ci", &aud, now(&app))).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(jwks.hits(), 2);
    // ... but unknown kids do not make it fetch more than once a minute.
    let unknown = AppKey::new("nobody");
    for _ in 0..5 {
        let reply = service_token(&app, &unknown.assertion("ci", &aud, now(&app))).await;
        assert_eq!(reply.status, 401);
    }
    assert_eq!(jwks.hits(), 2, "no fetch storm from unknown kids");
}

#[tokio::test]
async fn a_jwks_uri_that_answers_too_much_or_hangs_fails_closed_and_fast() {
    let key = AppKey::new("k");
    let huge = JwksServer::start(Serve::Huge).await;
    let hanging = JwksServer::start(Serve::Hang).await;
    let app = spawn_app_with(&format!(
        "\n[[clients]]\nid = \"big\"\nclient_credentials = true\njwks_uri = \"{}\"\nredirect_uris = []\n\n[[clients]]\nid = \"slow\"\nclient_credentials = true\njwks_uri = \"{}\"\nredirect_uris = []\n",
        huge.url, hanging.url
    ))
    .await;
    let aud = format!("{}/token", app.address);
    for client in ["big", "slow"] {
        let started = Instant::now();
        let reply = service_token(&app, &key.assertion(client, &aud, now(&app))).await;
        assert_eq!(reply.status, 401, "{client}: {}", reply.body);
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{client} answered in {:?}",
            started.elapsed()
        );
    }
    // The app keeps answering others meanwhile.
    assert_eq!(app.get("/healthz").await.status(), 200);
    let _ = (huge.hits(), hanging.hits());
    huge.set(Serve::Hang);
}

#[tokio::test]
async fn a_client_limited_to_one_method_is_refused_any_other() {
    let key = AppKey::new("k");
    let app = spawn_app_with(&format!(
        "\n[[clients]]\nid = \"strict\"\nsecret = \"strict-secret-strict-secret\"\nclient_credentials = true\ntoken_endpoint_auth_method = \"private_key_jwt\"\nredirect_uris = []\n{}\n\n[[clients]]\nid = \"postonly\"\nsecret = \"postonly-secret-postonly\"\nclient_credentials = true\ntoken_endpoint_auth_method = \"client_secret_post\"\nredirect_uris = []\n",
        key.jwks_toml()
    ))
    .await;
    let with_secret = Reply::read(
        app.token(
            Some(("strict", "strict-secret-strict-secret")),
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    assert_eq!(with_secret.status, 401, "the secret is not its method");
    let with_key = service_token(
        &app,
        &key.assertion("strict", &format!("{}/token", app.address), now(&app)),
    )
    .await;
    assert_eq!(with_key.status, 200, "{}", with_key.body);

    let basic = Reply::read(
        app.token(
            Some(("postonly", "postonly-secret-postonly")),
            &[("grant_type", "client_credentials")],
        )
        .await,
    )
    .await;
    assert_eq!(basic.status, 401, "Basic is not client_secret_post");
    let post = Reply::read(
        app.token(
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "postonly"),
                ("client_secret", "postonly-secret-postonly"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(post.status, 200, "{}", post.body);
}

#[tokio::test]
async fn a_private_key_published_at_a_jwks_uri_proves_nothing() {
    // Arrange: the client's key, published with its private part for anyone to read.
    let key = AppKey::new("leaked");
    let mut leaked = key.jwk.clone();
    leaked["d"] = json!("cHJpdmF0ZQ");
    let jwks = JwksServer::start(Serve::Keys(json!({ "keys": [leaked] }).to_string())).await;
    let app = spawn_app_with(&format!(
        "\n[[clients]]\nid = \"ci\"\nclient_credentials = true\njwks_uri = \"{}\"\nredirect_uris = []\n",
        jwks.url
    ))
    .await;
    let aud = format!("{}/token", app.address);

    // Act
    let refused = service_token(&app, &key.assertion("ci", &aud, now(&app))).await;
    jwks.set(Serve::Keys(keys_json(&[&key])));
    app.state.clock.advance(Duration::from_secs(61));
    let published_right = service_token(&app, &key.assertion("ci", &aud, now(&app))).await;

    // Assert
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(published_right.status, 200, "{}", published_right.body);
}
