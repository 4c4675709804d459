//! The transport under `DiscordClient`: every request goes through [`Transport::send`], which
//! applies the retry policy and Discord's rate limits (docs: topics/rate-limits).
//!
//! - A route's bucket (`X-RateLimit-Remaining` / `Reset-After`, grouped by `X-RateLimit-Bucket`)
//!   that is exhausted is waited out before sending, so we do not collect a 429 we can predict.
//! - A 429 is waited out (`retry_after`) while the call's total wait stays within the budget
//!   (`max_retry_wait`); beyond it the call fails at once with `RateLimited`.
//! - One 5xx or connection failure is retried after a short pause; other 4xx never are
//!   (Discord bans IPs that keep sending invalid requests).
//! - Every request has the client's timeout; calls, 429s and latencies are counted per route.
//! - Every answer's body is read in chunks and refused past [`MAX_BODY_BYTES`], so a broken or
//!   hostile upstream cannot make us buffer megabytes.

use super::{DiscordError, DiscordRoute, DiscordStats, api};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Pause before the single retry of a 5xx or connection failure.
const QUICK_RETRY: Duration = Duration::from_millis(200);
/// Upper bound on 429 retries per call, even when Discord says `retry_after: 0`.
const MAX_RATE_LIMIT_RETRIES: u32 = 5;
/// Bucket entries kept before expired ones are pruned.
const MAX_TRACKED_BUCKETS: usize = 4096;
/// The largest answer body read from Discord. Its real answers are a few KiB (a member of 200
/// guilds is about 60 KiB), so 1 MiB is generous and still bounds memory per call.
pub(super) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One HTTP client plus the rate-limit state and counters shared by every call.
pub(super) struct Transport {
    http: reqwest::Client,
    max_retry_wait: Duration,
    buckets: Mutex<Buckets>,
    stats: DiscordStats,
}

impl Transport {
    /// Wraps `http` (which carries the timeout); `max_retry_wait` is the per-call wait budget.
    pub(super) fn new(http: reqwest::Client, max_retry_wait: Duration) -> Self {
        Self {
            http,
            max_retry_wait,
            buckets: Mutex::new(Buckets::default()),
            stats: DiscordStats::default(),
        }
    }

    /// The HTTP client, to build requests with.
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Calls, 429s and latencies per route.
    pub(super) fn stats(&self) -> &DiscordStats {
        &self.stats
    }

    /// Sends with the retry policy: wait on exhausted buckets and 429s within the budget, retry
    /// one 5xx/connection failure, never retry other 4xx, map timeouts to `Timeout`.
    pub(super) async fn send<F>(
        &self,
        route: DiscordRoute,
        who: &str,
        build: F,
    ) -> Result<Answer, DiscordError>
    where
        F: Fn() -> reqwest::RequestBuilder,
    {
        let route_key = format!("{}|{who}", route.as_str());
        let budget = self.max_retry_wait;
        let mut waited = Duration::ZERO;
        let mut quick_retry_used = false;
        let mut rate_limited = 0u32;
        loop {
            let pending = self.lock_buckets().wait(&route_key, Instant::now());
            if let Some(wait) = pending {
                tracing::debug!(
                    route = route.as_str(),
                    wait_ms = wait.as_millis() as u64,
                    "bucket exhausted"
                );
                wait_within_budget(wait, &mut waited, budget).await?;
            }
            let started = Instant::now();
            let result = match build().send().await {
                Ok(resp) => read_answer(resp).await,
                Err(e) => Err(ReadError::Http(e)),
            };
            let status = result.as_ref().ok().map(|answer| answer.status.as_u16());
            self.stats.record_call(route, status, started.elapsed());
            let answer = match result {
                Ok(answer) => answer,
                Err(ReadError::TooLarge) => {
                    tracing::warn!(
                        route = route.as_str(),
                        limit = MAX_BODY_BYTES,
                        "Discord's answer is larger than the limit; not reading it"
                    );
                    return Err(DiscordError::Malformed(format!(
                        "the answer is larger than {MAX_BODY_BYTES} bytes"
                    )));
                }
                Err(ReadError::Http(e)) if e.is_timeout() => return Err(DiscordError::Timeout),
                Err(ReadError::Http(e)) => {
                    // reqwest's own text names the URL; `describe` leaves it out.
                    let why = describe(e);
                    tracing::warn!(route = route.as_str(), error = %why, "Discord request failed");
                    if !quick_retry_used {
                        quick_retry_used = true;
                        tokio::time::sleep(QUICK_RETRY).await;
                        continue;
                    }
                    return Err(DiscordError::Unavailable(why));
                }
            };
            self.lock_buckets()
                .update(&route_key, who, &answer.limits, Instant::now());
            if answer.status == StatusCode::TOO_MANY_REQUESTS {
                self.stats.record_rate_limited(route);
                let wait = retry_after(&answer);
                tracing::warn!(
                    route = route.as_str(),
                    retry_after_ms = wait.as_millis() as u64,
                    "Discord answered 429"
                );
                rate_limited += 1;
                if rate_limited > MAX_RATE_LIMIT_RETRIES {
                    return Err(DiscordError::RateLimited { retry_after: wait });
                }
                wait_within_budget(wait, &mut waited, budget).await?;
                continue;
            }
            if answer.status.is_server_error() {
                tracing::warn!(
                    route = route.as_str(),
                    status = answer.status.as_u16(),
                    "Discord answered 5xx"
                );
                if !quick_retry_used {
                    quick_retry_used = true;
                    tokio::time::sleep(QUICK_RETRY).await;
                    continue;
                }
                return Err(DiscordError::Unavailable(format!(
                    "HTTP {}",
                    answer.status.as_u16()
                )));
            }
            return Ok(answer);
        }
    }

    fn lock_buckets(&self) -> MutexGuard<'_, Buckets> {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn wait_within_budget(
    wait: Duration,
    waited: &mut Duration,
    budget: Duration,
) -> Result<(), DiscordError> {
    if waited.saturating_add(wait) > budget {
        return Err(DiscordError::RateLimited { retry_after: wait });
    }
    tokio::time::sleep(wait).await;
    *waited = waited.saturating_add(wait);
    Ok(())
}

/// The error with its causes ("error sending request: ... : Connection refused"), URL omitted.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A fully read response.
pub(super) struct Answer {
    /// HTTP status.
    pub(super) status: StatusCode,
    limits: RateLimitHeaders,
    /// The whole body.
    pub(super) body: Vec<u8>,
}

/// Why an answer could not be read.
enum ReadError {
    /// Sending or reading failed (connection, timeout).
    Http(reqwest::Error),
    /// The body is larger than [`MAX_BODY_BYTES`] (declared or while streaming).
    TooLarge,
}

/// Reads status, headers and the body chunk by chunk, stopping as soon as the body passes
/// [`MAX_BODY_BYTES`]: a declared `Content-Length` over the limit is refused before reading, and a
/// chunked body is cut off once it grows past it (the connection is then dropped).
async fn read_answer(mut resp: reqwest::Response) -> Result<Answer, ReadError> {
    let status = resp.status();
    let limits = RateLimitHeaders::from_headers(resp.headers());
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        limits,
        body,
    })
}

/// The `X-RateLimit-*` and `Retry-After` headers (docs: topics/rate-limits#header-format).
#[derive(Debug, Default)]
struct RateLimitHeaders {
    remaining: Option<u32>,
    reset_after: Option<Duration>,
    bucket: Option<String>,
    retry_after: Option<Duration>,
}

impl RateLimitHeaders {
    fn from_headers(h: &HeaderMap) -> Self {
        let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let seconds = |name: &str| {
            text(name)
                .and_then(|v| v.parse::<f64>().ok())
                .and_then(secs)
        };
        Self {
            remaining: text("x-ratelimit-remaining").and_then(|v| v.parse().ok()),
            reset_after: seconds("x-ratelimit-reset-after"),
            bucket: text("x-ratelimit-bucket")
                .filter(|b| !b.is_empty())
                .map(str::to_owned),
            retry_after: seconds(RETRY_AFTER.as_str()),
        }
    }
}

/// How long a 429 asks us to wait: the body's float `retry_after`, else the `Retry-After` header,
/// else one second (docs: "rely on the Retry-After header or retry_after field").
fn retry_after(answer: &Answer) -> Duration {
    serde_json::from_slice::<api::RateLimitBody>(&answer.body)
        .ok()
        .and_then(|b| secs(b.retry_after))
        .or(answer.limits.retry_after)
        .unwrap_or(Duration::from_secs(1))
}

fn secs(value: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(value).ok()
}

/// Per-bucket state from `X-RateLimit-Remaining` / `Reset-After`. Routes map to Discord's
/// `X-RateLimit-Bucket` ids once seen; limits are per user, so keys carry the token tag.
#[derive(Default)]
struct Buckets {
    aliases: HashMap<String, String>,
    states: HashMap<String, BucketState>,
}

struct BucketState {
    remaining: u32,
    reset_at: Instant,
}

impl Buckets {
    fn wait(&self, route_key: &str, now: Instant) -> Option<Duration> {
        let key = self
            .aliases
            .get(route_key)
            .map_or(route_key, String::as_str);
        let state = self.states.get(key)?;
        (state.remaining == 0 && state.reset_at > now).then(|| state.reset_at - now)
    }

    fn update(&mut self, route_key: &str, who: &str, h: &RateLimitHeaders, now: Instant) {
        let (Some(remaining), Some(reset_after)) = (h.remaining, h.reset_after) else {
            return;
        };
        if self.states.len() >= MAX_TRACKED_BUCKETS {
            self.states.retain(|_, s| s.reset_at > now);
        }
        if self.aliases.len() >= MAX_TRACKED_BUCKETS {
            self.aliases.clear();
        }
        let key = match &h.bucket {
            Some(bucket) => {
                let key = format!("{bucket}|{who}");
                self.aliases.insert(route_key.to_owned(), key.clone());
                key
            }
            None => route_key.to_owned(),
        };
        self.states.insert(
            key,
            BucketState {
                remaining,
                reset_at: now + reset_after,
            },
        );
    }
}
