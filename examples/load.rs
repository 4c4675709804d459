//! Load benchmark: guildgate as a separate process, driven over real sockets.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example load -- [--binary target/release/guildgate] [--seconds 10]
//!     [--concurrency 64] [--sign-in-concurrency 16] [--only discovery,jwks,userinfo,refresh,sign-in]
//!     [--wrk] [--people 1000000] [--guild-rule]
//! ```
//!
//! With `--wrk`, discovery, userinfo and refresh are also driven by `wrk` (2 threads, the same
//! number of connections), an external generator lighter than this process's HTTP client, the
//! way issue 10 first measured them. Refresh there runs `harness/refresh.lua`: each connection
//! presents the newest token of its own chain, so a lost rotation shows as a non-2xx answer.
//! The reference is also taken from `openssl speed rsa2048` when openssl is installed, and
//! `/userinfo`'s from nginx serving the same JSON body as a static file (`harness/nginx.rs`,
//! with `--wrk`, when nginx is installed); the report ends with both ratios.
//!
//! The fake Discord runs in this process; guildgate runs as `BINARY serve` with a config file in
//! a temp folder (SQLite there, or Postgres with `GUILDGATE_BENCH_POSTGRES_URL`, whose database
//! is emptied first). Each path is driven for a bounded time by a fixed number of concurrent
//! clients; the report gives requests/s, p50/p99 latency, non-2xx answers, and guildgate's
//! resident memory idle (after start) and at its peak (`VmHWM`). It first measures this
//! machine's single-core RSA-2048 signatures per second, so runs on different machines (or on a
//! busy one) compare by ratio. Point `--binary` at another build (an older commit) to compare
//! two builds back to back. Every loop stops by itself; only 127.0.0.1 is contacted.
//!
//! With `--people N`, N people with a live session, grant and refresh token each are written
//! straight into the database before the paths run (`harness/seed.rs`), and the report gives
//! the seeding time and the bytes each person takes on disk: run it with 0 and with a million
//! to see what a full database costs each path.
//!
//! With `--guild-rule`, the app admits only members of the demo's community server (the
//! benchmark's person is one), as most deployments configure it: each sign-in then also asks
//! the fake Discord for the person's membership, and the app's rules are checked on it.

mod harness;

use harness::wrk::{WrkRequest, wrk, wrk_refresh};
use harness::{CLIENT, Outcome, SECRET, sign_in, success};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What `--help` prints.
const USAGE: &str = "load [--binary target/release/guildgate] [--seconds 10] [--concurrency 64]
     [--sign-in-concurrency 16] [--only discovery,jwks,userinfo,refresh,sign-in] [--wrk]
     [--people N] [--guild-rule]
Postgres instead of SQLite: GUILDGATE_BENCH_POSTGRES_URL=postgres://... (emptied first).
See the header of examples/load.rs and BENCHMARKS.md.";

/// `--guild-rule`: the app admits members of the demo's community server only
/// (config/dev-discord.toml), which the benchmark's person is.
const GUILD_RULE: &str = "allowed_guilds = [\"812345678901234567\"]";
/// What such a rule needs besides: a key for the Discord tokens kept to re-check it (a
/// benchmark's own, never a deployment's).
const GUILD_RULE_SECRETS: &str = "[secrets]\nencryption_key = \"62656e63682d6f6e6c792d6b65792d6e657665722d696e2d70726f6421212121\"";

/// What to run, from the command line.
struct Options {
    binary: String,
    seconds: u64,
    concurrency: usize,
    sign_in_concurrency: usize,
    only: Vec<String>,
    wrk: bool,
    people: u64,
    guild_rule: bool,
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let mut o = Options {
            binary: "target/release/guildgate".into(),
            seconds: 10,
            concurrency: 64,
            sign_in_concurrency: 16,
            only: Vec::new(),
            wrk: false,
            people: 0,
            guild_rule: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--binary" => o.binary = value()?,
                "--seconds" => o.seconds = value()?.parse()?,
                "--concurrency" => o.concurrency = value()?.parse()?,
                "--sign-in-concurrency" => o.sign_in_concurrency = value()?.parse()?,
                "--only" => o.only = value()?.split(',').map(str::to_owned).collect(),
                "--wrk" => o.wrk = true,
                "--people" => o.people = value()?.parse()?,
                "--guild-rule" => o.guild_rule = true,
                "--help" | "-h" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => anyhow::bail!("unknown argument {other} (see the file's header)"),
            }
        }
        Ok(o)
    }

    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = Options::parse()?;
    let signatures = rsa_signatures_per_second()?;
    let openssl = openssl_signatures_per_second();
    let setup = harness::start(
        &o.binary,
        std::env::var("GUILDGATE_BENCH_POSTGRES_URL").ok(),
        if o.guild_rule { GUILD_RULE_SECRETS } else { "" },
        if o.guild_rule { GUILD_RULE } else { "" },
    )
    .await?;
    let (server, issuer) = (&setup.server, setup.issuer.clone());
    let database = setup.database.clone();
    let http = guildgate::tls::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(o.concurrency.max(o.sign_in_concurrency))
        .build()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = server.memory("VmRSS");
    if o.people > 0 {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let seeded = harness::seed::people(&database, o.people, now, CLIENT).await?;
        println!(
            "  seeded {} people in {:.0} s: database {:.0} MiB, {:.0} bytes per person",
            o.people,
            seeded.seconds,
            seeded.bytes as f64 / 1048576.0,
            seeded.bytes.saturating_sub(seeded.bytes_before) as f64 / o.people as f64
        );
    }

    println!("guildgate load benchmark");
    println!(
        "  binary {}, database {}, {} s per path, {} clients ({} for sign-in)",
        o.binary,
        if database.starts_with("sqlite") {
            "SQLite"
        } else {
            "Postgres"
        },
        o.seconds,
        o.concurrency,
        o.sign_in_concurrency
    );
    println!(
        "  reference: one core signs {signatures:.0} RSA-2048 (PKCS#1 v1.5, SHA-256) per second"
    );
    if let Some(openssl) = openssl {
        println!("  openssl speed rsa2048: {openssl:.0} signatures per second on one core");
    }
    println!(
        "{:<24} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "path", "req/s", "p50 ms", "p99 ms", "non-2xx", "÷ RSA/s"
    );
    let report = |name: &str, r: Outcome| {
        println!(
            "{name:<24} {:>10.0} {:>9.2} {:>9.2} {:>9} {:>8.3}",
            r.per_second,
            r.p50_ms,
            r.p99_ms,
            r.errors,
            r.per_second / signatures
        );
    };
    let base = Arc::new(issuer.clone());
    if o.wants("discovery") {
        let r = run(o.seconds, o.concurrency, {
            let (http, base) = (http.clone(), base.clone());
            move |_| {
                let (http, base) = (http.clone(), base.clone());
                async move {
                    success(
                        http.get(format!("{base}/.well-known/openid-configuration"))
                            .send()
                            .await,
                    )
                }
            }
        })
        .await;
        report("GET discovery", r);
    }
    if o.wants("jwks") {
        let r = run(o.seconds, o.concurrency, {
            let (http, base) = (http.clone(), base.clone());
            move |_| {
                let (http, base) = (http.clone(), base.clone());
                async move { success(http.get(format!("{base}/jwks.json")).send().await) }
            }
        })
        .await;
        report("GET jwks.json", r);
    }
    let (mut wrk_userinfo, mut nginx_userinfo, mut wrk_refresh_rate) = (None, None, None);
    let needs_grants = o.wants("userinfo") || o.wants("refresh");
    let mut grants = Vec::new();
    if needs_grants {
        for _ in 0..o.concurrency {
            grants.push(sign_in(&http, &issuer).await?);
        }
    }
    if o.wants("userinfo") {
        let access: Arc<Vec<String>> = Arc::new(grants.iter().map(|g| g.access.clone()).collect());
        let r = run(o.seconds, o.concurrency, {
            let (http, base) = (http.clone(), base.clone());
            move |worker| {
                let (http, base, access) = (http.clone(), base.clone(), access.clone());
                async move {
                    success(
                        http.get(format!("{base}/userinfo"))
                            .bearer_auth(&access[worker % access.len()])
                            .send()
                            .await,
                    )
                }
            }
        })
        .await;
        report("GET userinfo", r);
        if o.wrk {
            let first = grants
                .first()
                .map(|g| g.access.as_str())
                .unwrap_or_default();
            let bearer = format!("Authorization: Bearer {first}");
            for (name, path, header) in [
                (
                    "wrk GET discovery",
                    "/.well-known/openid-configuration",
                    None,
                ),
                ("wrk GET userinfo", "/userinfo", Some(bearer.as_str())),
            ] {
                match wrk(
                    &issuer,
                    path,
                    WrkRequest::Get(header),
                    o.seconds,
                    o.concurrency,
                ) {
                    Ok(r) => {
                        if path == "/userinfo" {
                            wrk_userinfo = Some(r.per_second);
                        }
                        report(name, r);
                    }
                    Err(e) => println!("{name:<24} not run: {e}"),
                }
            }
            // The reference: the same answer as a static file from nginx, in this run.
            let body = http
                .get(format!("{base}/userinfo"))
                .bearer_auth(first)
                .send()
                .await?
                .bytes()
                .await?;
            let name = "nginx userinfo.json";
            match harness::nginx::StaticFile::serve("userinfo.json", &body).and_then(|nginx| {
                wrk(
                    &nginx.base,
                    "/userinfo.json",
                    WrkRequest::Get(None),
                    o.seconds,
                    o.concurrency,
                )
            }) {
                Ok(r) => {
                    nginx_userinfo = Some(r.per_second);
                    report(name, r);
                }
                Err(e) => println!("{name:<24} not run: {e}"),
            }
        }
    }
    if o.wants("refresh") {
        // Each client rotates its own refresh-token family, as separate apps do.
        let families: Arc<Vec<tokio::sync::Mutex<String>>> = Arc::new(
            grants
                .iter()
                .map(|g| tokio::sync::Mutex::new(g.refresh.clone()))
                .collect(),
        );
        let r = run(o.seconds, o.concurrency, {
            let (http, base, families) = (http.clone(), base.clone(), families.clone());
            move |worker| {
                let (http, base, families) = (http.clone(), base.clone(), families.clone());
                async move {
                    let mut token = families[worker % families.len()].lock().await;
                    let answer = http
                        .post(format!("{base}/token"))
                        .basic_auth(CLIENT, Some(SECRET))
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", token.as_str()),
                        ])
                        .send()
                        .await;
                    let Ok(answer) = answer
                        .map_err(|_| ())
                        .and_then(|a| a.status().is_success().then_some(a).ok_or(()))
                    else {
                        return false;
                    };
                    let body: serde_json::Value = answer.json().await.unwrap_or_default();
                    match body["refresh_token"].as_str() {
                        Some(next) => {
                            *token = next.to_owned();
                            true
                        }
                        None => false,
                    }
                }
            }
        })
        .await;
        report("POST token (refresh)", r);
        if o.wrk {
            // The chains go on from where the client above left them.
            let mut latest = Vec::new();
            for family in families.iter() {
                latest.push(family.lock().await.clone());
            }
            match wrk_refresh(&issuer, &latest, o.seconds) {
                Ok(r) => {
                    wrk_refresh_rate = Some(r.per_second);
                    report("wrk POST token (refresh)", r);
                }
                Err(e) => println!("{:<24} not run: {e}", "wrk POST token (refresh)"),
            }
        }
    }
    if o.wants("sign-in") {
        let r = run(o.seconds, o.sign_in_concurrency, {
            let (http, base) = (http.clone(), base.clone());
            move |_| {
                let (http, base) = (http.clone(), base.clone());
                async move { sign_in(&http, &base).await.is_ok() }
            }
        })
        .await;
        report("full sign-in", r);
    }
    if let (Some(ours), Some(nginx)) = (wrk_userinfo, nginx_userinfo) {
        println!(
            "  wrk userinfo = {:.2} x nginx serving the same body as a static file",
            ours / nginx
        );
    }
    if let (Some(openssl), Some(refresh)) = (openssl, wrk_refresh_rate) {
        println!(
            "  wrk refresh = {:.2} x openssl's signatures per second on one core",
            refresh / openssl
        );
    }
    println!(
        "guildgate resident memory: idle {idle:.1} MiB, peak {:.1} MiB",
        server.memory("VmHWM")
    );
    Ok(())
}

/// `openssl speed rsa2048`'s signatures per second on one core, when openssl is installed.
fn openssl_signatures_per_second() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-seconds", "2", "rsa2048"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    // "rsa 2048 bits 0.000215s 0.000013s   4656.2  75485.9": sign/s is the third number.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("rsa 2048 bits"))?
        .split_whitespace()
        .nth(5)?
        .parse()
        .ok()
}

/// One core's RSA-2048 signatures per second (aws-lc, the library guildgate signs with), over
/// about two seconds on this thread.
fn rsa_signatures_per_second() -> anyhow::Result<f64> {
    use aws_lc_rs::{rand::SystemRandom, rsa::KeySize, signature};
    let key = signature::RsaKeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| anyhow::anyhow!("cannot generate an RSA key"))?;
    let rng = SystemRandom::new();
    let mut out = vec![0; key.public_modulus_len()];
    let started = Instant::now();
    let mut count = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        key.sign(
            &signature::RSA_PKCS1_SHA256,
            &rng,
            b"header.payload",
            &mut out,
        )
        .map_err(|_| anyhow::anyhow!("cannot sign"))?;
        count += 1;
    }
    Ok(f64::from(count) / started.elapsed().as_secs_f64())
}

/// Runs `make(worker)` in a loop from `concurrency` tasks for `seconds`.
async fn run<F, Fut>(seconds: u64, concurrency: usize, make: F) -> Outcome
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let ids = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (make, stop, ids) = (make.clone(), stop.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let worker = ids.fetch_add(1, Ordering::Relaxed);
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if make(worker).await {
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
    Outcome {
        per_second: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    }
}
