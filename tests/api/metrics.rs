//! `GET /metrics`: after a sign-in through the fake Discord and a refresh, the scrape shows the
//! sign-in, the grants, the Discord calls and the store gauges; a refusal shows its rule; a
//! reused refresh token is counted; with `server.metrics_listen` the scrape moves to that
//! listener; the Grafana dashboard queries only metrics a scrape has.

use crate::browser::Browser;
use crate::helpers::{
    ALICE, OTHER, OTHER_REDIRECT, OTHER_SECRET, TestApp, spawn_app, spawn_app_with,
};
use std::collections::{HashMap, HashSet};

const CAROL: &str = "1090417266934861824";
const COMMUNITY: &str = "812345678901234567";

/// The scrape's samples: `name{labels}` → value.
pub struct Scrape {
    /// The scrape as served.
    pub text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    /// Scrapes `app`'s `/metrics`.
    pub async fn of(app: &TestApp) -> Self {
        Self::at(&app.address).await
    }

    async fn at(address: &str) -> Self {
        let response = reqwest::get(format!("{address}/metrics"))
            .await
            .expect("scrape answers");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect();
        Self { text, samples }
    }

    /// The value of one series, 0 when absent.
    pub fn value(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }

    /// Whether the scrape has this series (at any value).
    pub fn has(&self, series: &str) -> bool {
        self.samples.contains_key(series)
    }

    /// Every metric name a query may use: each sample's name, and the names each `# TYPE`
    /// line promises (`_total` for counters, `_bucket`/`_sum`/`_count` for histograms).
    fn names(&self) -> HashSet<String> {
        let mut names: HashSet<String> = self
            .samples
            .keys()
            .map(|s| s.split('{').next().unwrap_or(s).to_owned())
            .collect();
        for line in self.text.lines() {
            let mut words = line.split_whitespace();
            if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
                (words.next(), words.next(), words.next(), words.next())
            {
                let suffixes: &[&str] = match kind {
                    "counter" => &["_total"],
                    "histogram" => &["_bucket", "_sum", "_count"],
                    _ => &[""],
                };
                names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
            }
        }
        names
    }
}

/// Alice signs in to `other` through the fake Discord; returns the token response.
async fn sign_in_and_redeem(app: &TestApp) -> serde_json::Value {
    let code = app
        .code_for(&mut Browser::new(), OTHER, OTHER_REDIRECT, &[], ALICE)
        .await;
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
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.token(
        Some((OTHER, OTHER_SECRET)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

#[tokio::test]
async fn a_scrape_after_a_sign_in_and_a_refresh_shows_the_sign_in_the_grants_and_discord_calls() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let tokens = sign_in_and_redeem(&app).await;
    let refreshed = refresh(&app, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200);
    let scrape = Scrape::of(&app).await;

    // Assert: the sign-in and both grants.
    assert_eq!(
        scrape.value(r#"guildgate_signins_total{outcome="ok",rule=""}"#),
        1.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape
            .value(r#"guildgate_token_grants_total{grant_type="authorization_code",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        scrape.value(r#"guildgate_token_grants_total{grant_type="refresh_token",outcome="ok"}"#),
        1.0
    );
    // The Discord calls of the sign-in: the code exchange and the person.
    assert_eq!(
        scrape.value(r#"guildgate_discord_requests_total{route="token",status="200"}"#),
        1.0
    );
    assert!(
        scrape.value(r#"guildgate_discord_requests_total{route="users_me",status="200"}"#) >= 1.0
    );
    assert!(
        scrape.value(r#"guildgate_discord_request_duration_seconds_count{route="token"}"#) >= 1.0
    );
    // HTTP requests by mounted route and status, with latencies.
    assert_eq!(
        scrape.value(r#"guildgate_http_requests_total{route="/token",status="200"}"#),
        2.0
    );
    assert_eq!(
        scrape.value(r#"guildgate_http_requests_total{route="/callback/discord",status="303"}"#)
            + scrape
                .value(r#"guildgate_http_requests_total{route="/callback/discord",status="302"}"#),
        1.0
    );
    assert_eq!(
        scrape.value(r#"guildgate_http_request_duration_seconds_count{route="/token"}"#),
        2.0
    );
    // Store and key gauges, read at scrape time.
    assert_eq!(scrape.value("guildgate_sessions_live"), 1.0);
    assert_eq!(scrape.value("guildgate_backchannel_logout_queue"), 0.0);
    assert!(
        scrape
            .samples
            .contains_key(r#"guildgate_store_pool_connections{state="idle"}"#)
    );
    assert!(
        scrape
            .samples
            .contains_key("guildgate_signing_key_age_seconds")
    );
}

#[tokio::test]
async fn raw_paths_never_become_labels() {
    // Arrange
    let app = spawn_app().await;

    // Act
    for path in ["/wp-login.php", "/token/x", "/a/b/c?d=e"] {
        assert_eq!(app.get(path).await.status(), 404);
    }
    let scrape = Scrape::of(&app).await;

    // Assert
    assert_eq!(
        scrape.value(r#"guildgate_http_requests_total{route="unmatched",status="404"}"#),
        3.0
    );
    assert!(!scrape.text.contains("wp-login"));
}

#[tokio::test]
async fn answers_refused_at_the_edge_are_counted_and_carry_the_security_headers() {
    // Arrange
    let app = spawn_app().await;
    let long_query = format!("/authorize?state={}", "a".repeat(9 * 1024));

    // Act: a wrong method and an oversized query, both answered before routing.
    let wrong_method = app
        .http
        .get(format!("{}/token", app.address))
        .send()
        .await
        .expect("request reaches the app");
    let too_long = app.get(&long_query).await;
    let scrape = Scrape::of(&app).await;

    // Assert
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(too_long.status(), 414);
    for response in [&wrong_method, &too_long] {
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{}",
            response.url().path()
        );
    }
    assert_eq!(
        scrape.value(r#"guildgate_http_requests_total{route="/token",status="405"}"#),
        1.0
    );
    assert_eq!(
        scrape.value(r#"guildgate_http_requests_total{route="/authorize",status="414"}"#),
        1.0
    );
}

#[tokio::test]
async fn a_refused_sign_in_is_counted_as_denied_with_the_unmet_rule() {
    // Arrange: only members of the community may sign in; Carol is in no server.
    let app = spawn_app_with(&format!(
        "[access]\nallowed_guilds = [\"{COMMUNITY}\"]\n[secrets]\nencryption_key = \"{}\"\n",
        "ab".repeat(32)
    ))
    .await;
    let mut browser = Browser::new();
    let start = browser
        .get(&app.authorize_url(OTHER, OTHER_REDIRECT, &[]))
        .await;
    app.discord.sign_in_as(Some(CAROL));
    let back = browser.get(&start.location.expect("to Discord")).await;

    // Act
    let refused = browser
        .get(&back.location.expect("back from Discord"))
        .await;
    let scrape = Scrape::of(&app).await;

    // Assert
    assert_eq!(refused.status, 403);
    assert_eq!(
        scrape.value(r#"guildgate_signins_total{outcome="denied",rule="not_in_guild"}"#),
        1.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(r#"guildgate_signins_total{outcome="ok",rule=""}"#),
        0.0
    );
}

#[tokio::test]
async fn a_reused_refresh_token_is_counted() {
    // Arrange
    let app = spawn_app().await;
    let tokens = sign_in_and_redeem(&app).await;
    let first = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&app, first).await.status(), 200);

    // Act: the rotated token comes back.
    let reused = refresh(&app, first).await;
    let scrape = Scrape::of(&app).await;

    // Assert
    assert_eq!(reused.status(), 400);
    assert_eq!(scrape.value("guildgate_refresh_token_reuse_total"), 1.0);
    assert_eq!(
        scrape.value(
            r#"guildgate_token_grants_total{grant_type="refresh_token",outcome="invalid_grant"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn with_metrics_listen_the_scrape_is_only_on_that_listener() {
    // Arrange
    let app = spawn_app_with("[server]\nmetrics_listen = \"127.0.0.1:0\"\n").await;
    let metrics = app
        .metrics_address
        .clone()
        .expect("a metrics listener was started");

    // Act
    let on_main = app.get("/metrics").await.status();
    let token = app
        .token(None, &[("grant_type", "client_credentials")])
        .await;
    let scrape = Scrape::at(&metrics).await;

    // Assert: 404 on the app's listener; the metrics listener counts the app's requests.
    assert_eq!(on_main, 404);
    assert_eq!(token.status(), 401);
    assert_eq!(
        scrape.value(r#"guildgate_http_requests_total{route="/metrics",status="404"}"#),
        1.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(
            r#"guildgate_token_grants_total{grant_type="unknown",outcome="invalid_client"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn the_grafana_dashboard_queries_only_metrics_a_scrape_has() {
    // Arrange
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/grafana-dashboard.json"))
            .expect("the dashboard is valid JSON");
    let app = spawn_app().await;
    sign_in_and_redeem(&app).await;
    let scrape = Scrape::of(&app).await;
    let known = scrape.names();

    // Act: every expression of every panel, and the metric names in them.
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    let used: HashSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();

    // Assert
    assert!(
        dashboard["__inputs"]
            .as_array()
            .is_some_and(|inputs| inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS")),
        "the datasource is an input"
    );
    assert!(exprs.len() >= 10, "{} queries", exprs.len());
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "${DS_PROMETHEUS}",
                "{}",
                panel["title"]
            );
        }
    }
    let unknown: Vec<&String> = used.iter().filter(|n| !known.contains(*n)).collect();
    assert!(unknown.is_empty(), "not in a scrape: {unknown:?}");
    for wanted in [
        "guildgate_http_requests_total",
        "guildgate_http_request_duration_seconds_bucket",
        "guildgate_signins_total",
        "guildgate_token_grants_total",
        "guildgate_discord_requests_total",
        "guildgate_discord_rate_limited_total",
        "guildgate_backchannel_logout_queue",
        "guildgate_store_pool_connections",
        "guildgate_signing_key_age_seconds",
        "guildgate_device_authorizations_total",
        "guildgate_dpop_proofs_total",
        "guildgate_pushed_authorization_requests_total",
    ] {
        assert!(used.contains(wanted), "the dashboard shows {wanted}");
    }
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The `guildgate_*` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("guildgate_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}
