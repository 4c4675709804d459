//! Load benchmark: `cargo run --release --example load [-- SECONDS CONCURRENCY]`.
//!
//! Starts guildgate (SQLite in a temp folder, or Postgres with `GUILDGATE_BENCH_POSTGRES_URL`)
//! and the fake Discord in this process, all on 127.0.0.1, then drives each hot path for a
//! bounded time with a fixed number of concurrent clients and prints throughput, latency
//! percentiles and the process's resident memory. Every loop stops by itself.

use guildgate::config::Settings;
use guildgate::discord::fake::{FakeData, FakeDiscord};
use guildgate::startup::Application;
use guildgate::state::Clock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CLIENT: &str = "bench";
const SECRET: &str = "bench-secret-bench-secret";
const REDIRECT: &str = "https://bench.example.com/cb";
const USER: &str = "318172463195504640";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let dir = tempfile::tempdir()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let mut data = FakeData::demo()?;
    data.redirect_uris = vec![format!("{issuer}/callback/discord")];
    let discord = FakeDiscord::start(data.clone())?;
    // The bench hammers one Discord user; lift the fake's per-token rate limit out of the way.
    for route in [
        guildgate::discord::fake::FakeRoute::Me,
        guildgate::discord::fake::FakeRoute::Token,
    ] {
        discord.set_rate_limit(route, 1_000_000, Duration::from_secs(1));
    }
    let db = std::env::var("GUILDGATE_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/bench.db", dir.path().display()));
    let hash = guildgate::clients::hash_secret(SECRET)?;
    let file = dir.path().join("bench.toml");
    std::fs::write(
        &file,
        format!(
            "[[clients]]\nid = \"{CLIENT}\"\nsecret_hash = \"{hash}\"\nredirect_uris = [\"{REDIRECT}\"]\nrefresh_tokens = true\n"
        ),
    )?;
    let env = [
        ("GUILDGATE__ISSUER", issuer.clone()),
        ("GUILDGATE__DATABASE__URL", db.clone()),
        (
            "GUILDGATE__KEYS__DIR",
            dir.path().join("keys").display().to_string(),
        ),
        ("GUILDGATE__LOG__LEVEL", "error".to_owned()),
        ("GUILDGATE__DISCORD__CLIENT_ID", data.client_id.clone()),
        (
            "GUILDGATE__DISCORD__CLIENT_SECRET",
            data.client_secret.clone(),
        ),
        (
            "GUILDGATE__DISCORD__AUTHORIZE_URL",
            discord.authorize_url().to_string(),
        ),
        (
            "GUILDGATE__DISCORD__API_BASE_URL",
            discord.api_base_url().to_string(),
        ),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let settings = Settings::load_with(Some(&file), env)?;
    let app = Application::build_with_listener(settings, Clock::default(), Some(listener)).await?;
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .build()?;
    println!(
        "guildgate load benchmark: {seconds}s per endpoint, {concurrency} concurrent clients, database {}",
        if db.starts_with("sqlite") {
            "SQLite"
        } else {
            "Postgres"
        }
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10}",
        "endpoint", "req/s", "p50 ms", "p99 ms", "errors"
    );

    let base = Arc::new(issuer.clone());
    run("GET discovery", seconds, concurrency, {
        let (http, base) = (http.clone(), base.clone());
        move || {
            let (http, base) = (http.clone(), base.clone());
            async move {
                ok(http
                    .get(format!("{base}/.well-known/openid-configuration"))
                    .send()
                    .await)
            }
        }
    })
    .await;
    run("GET jwks.json", seconds, concurrency, {
        let (http, base) = (http.clone(), base.clone());
        move || {
            let (http, base) = (http.clone(), base.clone());
            async move { ok(http.get(format!("{base}/jwks.json")).send().await) }
        }
    })
    .await;

    // One real sign-in gives an access token and a refresh-token family per client task.
    discord.sign_in_as(Some(USER));
    let mut grants = Vec::new();
    for _ in 0..concurrency {
        grants.push(sign_in(&http, &issuer).await?);
    }
    let access = Arc::new(grants[0].0.clone());
    run("GET userinfo", seconds, concurrency, {
        let (http, base, access) = (http.clone(), base.clone(), access.clone());
        move || {
            let (http, base, access) = (http.clone(), base.clone(), access.clone());
            async move {
                ok(http
                    .get(format!("{base}/userinfo"))
                    .bearer_auth(access.as_str())
                    .send()
                    .await)
            }
        }
    })
    .await;
    // Each task rotates its own family: the refresh grant (2 RSA signatures + a rotation).
    let families: Vec<Arc<tokio::sync::Mutex<String>>> = grants
        .iter()
        .map(|(_, r)| Arc::new(tokio::sync::Mutex::new(r.clone())))
        .collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    run("POST token (refresh)", seconds, concurrency, {
        let (http, base) = (http.clone(), base.clone());
        move || {
            let (http, base) = (http.clone(), base.clone());
            let family = families[next.fetch_add(1, Ordering::Relaxed) % families.len()].clone();
            async move {
                let mut token = family.lock().await;
                let response = http
                    .post(format!("{base}/token"))
                    .basic_auth(CLIENT, Some(SECRET))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", token.as_str()),
                    ])
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        if let Some(t) = body["refresh_token"].as_str() {
                            *token = t.to_owned();
                            return true;
                        }
                        false
                    }
                    _ => false,
                }
            }
        }
    })
    .await;
    run("full sign-in (code flow)", seconds, concurrency, {
        let (http, base) = (http.clone(), base.clone());
        move || {
            let (http, base) = (http.clone(), base.clone());
            async move { sign_in(&http, &base).await.is_ok() }
        }
    })
    .await;
    println!("resident memory after the run: {}", rss());
    Ok(())
}

fn ok(r: Result<reqwest::Response, reqwest::Error>) -> bool {
    r.is_ok_and(|r| r.status().is_success())
}

/// Authorize → fake Discord (signed in) → callback → token: returns (access, refresh).
async fn sign_in(http: &reqwest::Client, issuer: &str) -> anyhow::Result<(String, String)> {
    let url = format!(
        "{issuer}/authorize?client_id={CLIENT}&redirect_uri={}&response_type=code&scope=openid%20profile&state=s",
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let to_discord = http.get(url).send().await?;
    let cookie = to_discord
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    let discord_url = location(&to_discord)?;
    let back = http.get(discord_url).send().await?;
    let callback = location(&back)?;
    let done = http.get(callback).header("cookie", cookie).send().await?;
    let app = location(&done)?;
    let code = url::Url::parse(&app)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| anyhow::anyhow!("no code in {app}"))?;
    let body: serde_json::Value = http
        .post(format!("{issuer}/token"))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok((
        body["access_token"].as_str().unwrap_or_default().to_owned(),
        body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    ))
}

fn location(r: &reqwest::Response) -> anyhow::Result<String> {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("expected a redirect, got {}", r.status()))
}

/// Runs `make()` futures from `concurrency` tasks for `seconds`; prints the numbers.
async fn run<F, Fut>(name: &str, seconds: u64, concurrency: usize, make: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (make, stop) = (make.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if make().await {
                    latencies.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{:<28} {:>10.0} {:>10.2} {:>10.2} {:>10}",
        name,
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        errors
    );
}

fn rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .map(|l| l.trim_start_matches("VmRSS:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
