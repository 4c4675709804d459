//! Soak: a mixed load against one guildgate process for minutes, watching for what only time
//! shows: 5xx answers, memory that keeps growing, tables the clean-up job does not keep bounded.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example soak -- [--minutes 10] [--workers 8] [--pause-ms 20]
//!     [--postgres postgres://postgres@127.0.0.1:5432/soak] [--binary target/release/guildgate]
//! ```
//!
//! guildgate runs as `BINARY serve` (SQLite in a temp folder, or the given Postgres database,
//! which is emptied first) with short lifetimes, so rows expire during the run: sessions 2
//! minutes, grants 3, clean-up every 20 s. Each worker loops: a whole sign-in, three refreshes,
//! three userinfo calls, then either revokes its refresh token or logs out (RP-initiated, with
//! a back-channel logout to a receiver in this process). Every 30 s a line gives the answers so
//! far, guildgate's resident memory and the row count of each table. The summary at the end
//! checks: zero 5xx, memory after the warm-up (the first fifth of the run, at least 3 min 20 s:
//! the longest lifetime plus a clean-up) grew by less than 10 %, and each table's count, taken
//! per sign-in of the 3.5 minutes before it (rows follow the request rate, which a shared
//! machine makes vary), peaks in the last third of the run at most 1.25 times its peak in the
//! middle third (flat, not climbing). It exits 1 when a check fails. Only 127.0.0.1 is
//! contacted; every loop stops by itself.

mod harness;

use harness::{CLIENT, REDIRECT, SECRET, Setup, sign_in};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The tables whose growth the clean-up job must bound.
const TABLES: &[&str] = &[
    "sessions",
    "session_clients",
    "grants",
    "refresh_tokens",
    "auth_codes",
    "upstream_logins",
    "logout_deliveries",
    "revoked_access_tokens",
];
const SAMPLE_EVERY: Duration = Duration::from_secs(30);

struct Options {
    binary: String,
    minutes: f64,
    workers: usize,
    pause: Duration,
    postgres: Option<String>,
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let mut o = Options {
            binary: "target/release/guildgate".into(),
            minutes: 10.0,
            workers: 8,
            pause: Duration::from_millis(20),
            postgres: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--binary" => o.binary = value()?,
                "--minutes" => o.minutes = value()?.parse()?,
                "--workers" => o.workers = value()?.parse()?,
                "--pause-ms" => o.pause = Duration::from_millis(value()?.parse()?),
                "--postgres" => o.postgres = Some(value()?),
                other => anyhow::bail!("unknown argument {other} (see the file's header)"),
            }
        }
        Ok(o)
    }
}

/// Answers per operation: 2xx, 4xx, 5xx, failures to get any answer.
#[derive(Default)]
struct Tally {
    by_op: Mutex<BTreeMap<&'static str, [u64; 4]>>,
}

impl Tally {
    fn record(&self, op: &'static str, status: Option<u16>) {
        let slot = match status {
            Some(200..=399) => 0,
            Some(400..=499) => 1,
            Some(_) => 2,
            None => 3,
        };
        self.by_op
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(op)
            .or_default()[slot] += 1;
    }

    fn ok(&self, op: &'static str) -> u64 {
        let by_op = self.by_op.lock().unwrap_or_else(|e| e.into_inner());
        by_op.get(op).map_or(0, |c| c[0])
    }

    fn totals(&self) -> [u64; 4] {
        let by_op = self.by_op.lock().unwrap_or_else(|e| e.into_inner());
        by_op.values().fold([0; 4], |mut t, c| {
            for i in 0..4 {
                t[i] += c[i];
            }
            t
        })
    }
}

/// One sample of the process and its database.
struct Sample {
    at: Duration,
    rss_mib: f64,
    rows: BTreeMap<&'static str, i64>,
    /// Sign-ins so far (each creates a session, a grant and a code).
    sign_ins: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = Options::parse()?;
    let delivered = Arc::new(AtomicU64::new(0));
    let receiver = back_channel_receiver(delivered.clone())?;
    let mut setup = harness::start(
        &o.binary,
        o.postgres.clone(),
        "[session]\nttl = \"2m\"\nidle_timeout = \"1m\"\n\
         [tokens]\nrefresh_token_ttl = \"3m\"\nrefresh_token_idle_ttl = \"2m\"\n\
         [jobs]\ngc_every = \"20s\"\n",
        &format!(
            "backchannel_logout_uri = \"{receiver}\"\npost_logout_redirect_uris = [\"{REDIRECT}\"]"
        ),
    )
    .await?;
    let run_for = Duration::from_secs_f64(o.minutes * 60.0);
    println!(
        "guildgate soak: {} for {:.1} min, {} workers, {} ms pause between steps",
        if setup.sqlite() { "SQLite" } else { "Postgres" },
        o.minutes,
        o.workers,
        o.pause.as_millis()
    );
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut workers = Vec::new();
    for _ in 0..o.workers {
        let (http, issuer, tally, stop) = (
            http.clone(),
            setup.issuer.clone(),
            tally.clone(),
            stop.clone(),
        );
        let pause = o.pause;
        workers.push(tokio::spawn(async move {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                one_visit(&http, &issuer, &tally, pause, round).await;
                round += 1;
            }
        }));
    }
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < run_for {
        let left = run_for.saturating_sub(started.elapsed());
        tokio::time::sleep(SAMPLE_EVERY.min(left)).await;
        if !setup.server.alive() {
            anyhow::bail!("guildgate exited during the soak");
        }
        let signed = tally.ok("sign-in");
        let sample = sample(&setup, started.elapsed(), signed).await?;
        let [ok, client_err, server_err, failed] = tally.totals();
        println!(
            "{:>5.1} min  answers 2xx/3xx {ok} 4xx {client_err} 5xx {server_err} none {failed}  \
             RSS {:.1} MiB  rows {}",
            sample.at.as_secs_f64() / 60.0,
            sample.rss_mib,
            sample
                .rows
                .iter()
                .map(|(t, n)| format!("{t}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        samples.push(sample);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    summarize(
        &o,
        &setup,
        &tally,
        &samples,
        delivered.load(Ordering::Relaxed),
    )
}

/// One person's visit: sign in, refresh and read claims a few times, then revoke or log out.
async fn one_visit(
    http: &reqwest::Client,
    issuer: &str,
    tally: &Tally,
    pause: Duration,
    round: u64,
) {
    let signed = match sign_in(http, issuer).await {
        Ok(s) => {
            tally.record("sign-in", Some(200));
            s
        }
        Err(e) => {
            let status = e
                .to_string()
                .split_whitespace()
                .find_map(|w| w.parse::<u16>().ok());
            tally.record("sign-in", status.or(Some(599)));
            tokio::time::sleep(pause).await;
            return;
        }
    };
    let mut refresh_token = signed.refresh.clone();
    let mut access = signed.access.clone();
    for _ in 0..3 {
        tokio::time::sleep(pause).await;
        let answer = http
            .post(format!("{issuer}/token"))
            .basic_auth(CLIENT, Some(SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
            ])
            .send()
            .await;
        let status = answer.as_ref().ok().map(|a| a.status().as_u16());
        tally.record("refresh", status);
        if let Ok(a) = answer
            && status == Some(200)
        {
            let body: serde_json::Value = a.json().await.unwrap_or_default();
            refresh_token = body["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            access = body["access_token"].as_str().unwrap_or_default().to_owned();
        }
        let answer = http
            .get(format!("{issuer}/userinfo"))
            .bearer_auth(&access)
            .send()
            .await;
        tally.record("userinfo", answer.ok().map(|a| a.status().as_u16()));
    }
    tokio::time::sleep(pause).await;
    if round % 2 == 0 {
        let answer = http
            .post(format!("{issuer}/revoke"))
            .basic_auth(CLIENT, Some(SECRET))
            .form(&[("token", refresh_token.as_str())])
            .send()
            .await;
        tally.record("revoke", answer.ok().map(|a| a.status().as_u16()));
    } else {
        let url = format!(
            "{issuer}/logout?id_token_hint={}&post_logout_redirect_uri={}",
            signed.id_token,
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        );
        let answer = http
            .get(url)
            .header("cookie", &signed.session_cookie)
            .send()
            .await;
        tally.record("logout", answer.ok().map(|a| a.status().as_u16()));
    }
}

/// Resident memory and row counts now.
async fn sample(setup: &Setup, at: Duration, sign_ins: u64) -> anyhow::Result<Sample> {
    use sqlx::Connection;
    let mut rows = BTreeMap::new();
    if setup.sqlite() {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(setup.database.trim_start_matches("sqlite://"))
            .read_only(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        for table in TABLES {
            let (n,): (i64,) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&mut conn)
                    .await?;
            rows.insert(*table, n);
        }
        conn.close().await?;
    } else {
        let mut conn = sqlx::PgConnection::connect(&setup.database).await?;
        for table in TABLES {
            let (n,): (i64,) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&mut conn)
                    .await?;
            rows.insert(*table, n);
        }
        conn.close().await?;
    }
    Ok(Sample {
        at,
        rss_mib: setup.server.memory("VmRSS"),
        rows,
        sign_ins,
    })
}

/// Prints the summary and the checks; an error when a check fails.
fn summarize(
    o: &Options,
    setup: &Setup,
    tally: &Tally,
    samples: &[Sample],
    delivered: u64,
) -> anyhow::Result<()> {
    println!("\nsummary ({:.1} min):", o.minutes);
    println!(
        "{:<10} {:>9} {:>7} {:>7} {:>7}",
        "operation", "2xx/3xx", "4xx", "5xx", "none"
    );
    for (op, c) in tally.by_op.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        println!("{op:<10} {:>9} {:>7} {:>7} {:>7}", c[0], c[1], c[2], c[3]);
    }
    println!("back-channel logouts received: {delivered}");
    let [_, _, server_errors, no_answer] = tally.totals();
    let n = samples.len();
    anyhow::ensure!(
        n >= 9,
        "too short to judge: run at least 4.5 minutes (past the warm-up)"
    );
    // Warm-up: until the longest lifetime (grants, 3 min) and one clean-up have passed, or the
    // first fifth of the run when that is longer.
    let warm_up = (o.minutes * 12.0).max(200.0);
    let warm = samples
        .iter()
        .position(|s| s.at.as_secs_f64() >= warm_up)
        .unwrap_or(0);
    let after_warmup = samples[warm].rss_mib;
    let peak_after = samples[warm..]
        .iter()
        .map(|s| s.rss_mib)
        .fold(0.0, f64::max);
    let last = samples[n - 1].rss_mib;
    let growth = (peak_after - after_warmup) / after_warmup * 100.0;
    println!(
        "RSS: {after_warmup:.1} MiB after warm-up, peak after it {peak_after:.1} MiB, last {last:.1} MiB \
         ({growth:+.1} %); peak of the whole run (VmHWM) {:.1} MiB",
        setup.server.memory("VmHWM")
    );
    // Rows are what was created within the lifetimes plus what the clean-up has not reached
    // yet, so they follow the request rate, which a shared machine makes vary. Judge each
    // count per sign-in of the 3.5 minutes before it (the longest lifetime plus a clean-up):
    // flat when the clean-up keeps up, climbing when rows outlive their lifetimes.
    const WINDOW: usize = 7;
    let per_sign_in = |i: usize, table: &str| {
        let recent = samples[i].sign_ins - samples[i.saturating_sub(WINDOW)].sign_ins;
        samples[i].rows[table] as f64 / recent.max(1) as f64
    };
    let (middle, end) = (n / 3..2 * n / 3, 2 * n / 3..n);
    let mut bounded = true;
    for table in TABLES {
        let peak = |part: std::ops::Range<usize>| {
            part.clone()
                .map(|i| samples[i].rows[table])
                .max()
                .unwrap_or(0)
        };
        let ratio =
            |part: std::ops::Range<usize>| part.map(|i| per_sign_in(i, table)).fold(0.0, f64::max);
        let (mid, late) = (ratio(middle.clone()), ratio(end.clone()));
        let ok = late <= (mid * 1.25).max(mid + 0.05);
        bounded &= ok;
        println!(
            "rows {table:<22} peak middle/last third {:>7} {:>7}; per sign-in of the last 3.5 min {mid:>6.3} {late:>6.3}  {}",
            peak(middle.clone()),
            peak(end.clone()),
            if ok { "bounded" } else { "GROWING" }
        );
    }
    let checks = [
        ("zero 5xx", server_errors == 0),
        ("every request answered", no_answer == 0),
        ("RSS flat after warm-up (< 10 % growth)", growth < 10.0),
        ("row counts bounded by the clean-up job", bounded),
    ];
    let mut failed = false;
    for (what, ok) in checks {
        println!("{} {what}", if ok { "PASS" } else { "FAIL" });
        failed |= !ok;
    }
    anyhow::ensure!(!failed, "the soak found a problem (see above)");
    Ok(())
}

/// A back-channel logout receiver on 127.0.0.1 answering 200; returns its URL.
fn back_channel_receiver(delivered: Arc<AtomicU64>) -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://127.0.0.1:{}/bc", listener.local_addr()?.port());
    let server = actix_web::HttpServer::new(move || {
        let delivered = delivered.clone();
        actix_web::App::new().route(
            "/bc",
            actix_web::web::post().to(move || {
                let delivered = delivered.clone();
                async move {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    actix_web::HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    tokio::spawn(server);
    Ok(url)
}
