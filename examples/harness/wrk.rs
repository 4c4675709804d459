//! `wrk`, the external load generator, driven as `examples/load` uses it: a GET or a Lua
//! script for a bounded time, its summary read back as an [`Outcome`].

use super::{CLIENT, Outcome, SECRET};

/// The Lua script that drives refresh-token chains from wrk.
const REFRESH_SCRIPT: &str = include_str!("refresh.lua");

/// How wrk shapes its requests beside the URL.
pub enum WrkRequest<'a> {
    /// The same GET each time, with this header if any.
    Get(Option<&'a str>),
    /// A Lua script and its arguments.
    Script(&'a std::path::Path, Vec<String>),
}

/// Runs `wrk --latency` (2 threads) against `issuer` + `path` and reads its summary.
pub fn wrk(
    issuer: &str,
    path: &str,
    request: WrkRequest<'_>,
    seconds: u64,
    connections: usize,
) -> anyhow::Result<Outcome> {
    let mut command = std::process::Command::new("wrk");
    command.args([
        &format!("-t{WRK_THREADS}"),
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    let mut script_args = Vec::new();
    match request {
        WrkRequest::Get(Some(header)) => {
            command.args(["-H", header]);
        }
        WrkRequest::Get(None) => {}
        WrkRequest::Script(script, args) => {
            command.arg("-s").arg(script);
            script_args = args;
        }
    }
    command.arg(format!("{issuer}{path}"));
    if !script_args.is_empty() {
        command.arg("--").args(script_args);
    }
    let out = command
        .output()
        .map_err(|e| anyhow::anyhow!("wrk: {e} (apt-get install wrk)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines().find_map(|l| {
            l.trim()
                .strip_prefix(prefix)
                .map(str::trim)
                .map(str::to_owned)
        })
    };
    let millis = |v: Option<String>| -> f64 {
        let v = v.unwrap_or_default();
        let number = |suffix: &str| v.strip_suffix(suffix).and_then(|n| n.parse::<f64>().ok());
        number("us")
            .map(|n| n / 1000.0)
            .or_else(|| number("ms"))
            .or_else(|| number("s").map(|n| n * 1000.0))
            .unwrap_or(f64::NAN)
    };
    let per_second = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("unexpected wrk output: {text}"))?;
    Ok(Outcome {
        per_second,
        p50_ms: millis(field("50%")),
        p99_ms: millis(field("99%")),
        errors: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    })
}

/// wrk's threads: one per core of the machines these numbers come from.
pub const WRK_THREADS: usize = 2;

/// Refresh chains driven by wrk, one per token in `latest` (and per connection).
pub fn wrk_refresh(issuer: &str, latest: &[String], seconds: u64) -> anyhow::Result<Outcome> {
    use base64::Engine;
    let folder = tempfile::tempdir()?;
    let script = folder.path().join("refresh.lua");
    std::fs::write(&script, REFRESH_SCRIPT)?;
    let tokens = folder.path().join("tokens");
    std::fs::write(&tokens, latest.join("\n") + "\n")?;
    // wrk spreads connections evenly over its threads; each thread takes every other token.
    let connections = latest.len() - latest.len() % WRK_THREADS;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT}:{SECRET}"));
    wrk(
        issuer,
        "/token",
        WrkRequest::Script(
            &script,
            vec![
                tokens.display().to_string(),
                WRK_THREADS.to_string(),
                format!("Basic {basic}"),
            ],
        ),
        seconds,
        connections,
    )
}
