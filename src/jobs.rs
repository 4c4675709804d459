//! Background work off the request path: back-channel logout delivery, store clean-up, key
//! maintenance, the change feed and SQLite's WAL checkpoints. Delivery and clean-up take their
//! work from the store, so several processes share it and a restart loses none.

use crate::audit;
use crate::metrics::Delivery;
use crate::state::AppState;
use crate::store::{LogoutDelivery, StoreError};
use crate::tokens::{self, LogoutTokenClaims};
use actix_web::web;
use std::time::Duration;
use time::OffsetDateTime;

/// How often due deliveries are looked for when nothing wakes the deliverer.
const DELIVERY_POLL: Duration = Duration::from_secs(1);
/// The longest one delivery attempt may take (a receiver that does not answer is given up on).
const MAX_ATTEMPT_TIME: Duration = Duration::from_secs(5);
/// The most deliveries claimed in one round.
const MAX_BATCH: u32 = 20;
/// After this many failed attempts a delivery is abandoned (about a day of backoff).
const MAX_ATTEMPTS: u32 = 17;
/// Longest wait between two attempts.
const MAX_BACKOFF_SECS: i64 = 3600;
/// How many expired rows of each kind one clean-up statement deletes (short write locks).
const GC_BATCH: u32 = 500;
/// The most batches one clean-up pass runs, so a huge backlog is spread over several passes.
const GC_MAX_ROUNDS: u32 = 200;

/// How long relying parties may cache the JWKS (the `max-age` we send) plus margin.
const JWKS_CACHE_MARGIN: Duration = Duration::from_secs(600);

/// Starts the background tasks; they end when the returned handles are aborted. The first is
/// the back-channel deliverer, which also ends by itself once the process is stopping.
pub fn spawn(state: web::Data<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(deliver_logouts(state.clone())),
        tokio::spawn(collect_garbage(state.clone())),
        tokio::spawn(maintain_keys(state.clone())),
        tokio::spawn(checkpoint_wal(state.clone())),
        tokio::spawn(follow_changes(state)),
    ]
}

/// How soon a failed checkpoint round is tried again.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(1);

/// Copies SQLite's WAL into the database file off the request path (`store/checkpoint.rs`);
/// ends at once on Postgres. While it fails, SQLite's own checkpoint on the request writer
/// keeps the WAL bounded.
async fn checkpoint_wal(state: web::Data<AppState>) {
    let mut failing = false;
    loop {
        let next = match state.store.checkpoint().await {
            Ok(None) => return,
            Ok(Some(next)) => {
                if failing {
                    failing = false;
                    tracing::info!("the WAL is checkpointed in the background again");
                }
                next
            }
            Err(e) => {
                if !failing {
                    failing = true;
                    tracing::warn!(error = %e, "cannot checkpoint the WAL in the background; requests checkpoint it meanwhile");
                }
                CHECKPOINT_RETRY
            }
        };
        tokio::time::sleep(next).await;
    }
}

/// Reads the store's change feed a few times a second, so what this process keeps
/// about grants, sessions and people follows every process's changes within a second. While
/// the feed cannot be read, the store asks the database instead of answering from memory.
async fn follow_changes(state: web::Data<AppState>) {
    let mut failing = false;
    loop {
        let followed = state.store.follow_changes().await;
        if let Ok(followed) = &followed
            && followed.keys_changed
        {
            reload_keys(&state).await;
        }
        match followed {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("the change feed is read again; cached answers are back");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot read the change feed; answering from the database meanwhile");
            }
            Err(_) => {}
        }
        tokio::time::sleep(crate::store::CHANGE_FEED_POLL).await;
    }
}

/// Re-reads the shared keys folder now: a key command announced a change (`keys revoke`).
async fn reload_keys(state: &AppState) {
    let keys = state.keys.clone();
    let now = state.clock.now();
    match tokio::task::spawn_blocking(move || keys.reload(now)).await {
        Ok(Ok(())) => tracing::info!("the keys folder changed; keys re-read"),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot re-read the keys folder; the keys in use stay in use");
        }
        Err(e) => tracing::error!(error = %e, "the keys folder re-read stopped"),
    }
}

/// Rotation and reload: keeps every process on the same keys as the shared folder.
async fn maintain_keys(state: web::Data<AppState>) {
    loop {
        // `keys.reload_every`: how soon a key written by `keys rotate` or another process is used.
        tokio::time::sleep(state.config().lifetimes.key_reload).await;
        if let Err(e) = maintain_keys_now(&state).await {
            tracing::error!(error = %e, "key maintenance failed; the keys in use stay in use");
        }
    }
}

/// One round of key maintenance at the app clock's time: applies the rotation policy
/// (pre-publish a successor, retire superseded keys) and reloads the shared folder.
pub async fn maintain_keys_now(state: &AppState) -> anyhow::Result<()> {
    let lifetimes = state.config().lifetimes;
    let policy = crate::keys::RotationPolicy {
        rotate_every: lifetimes.key_rotation,
        publish_ahead: lifetimes.key_publish_ahead,
        retire_after: lifetimes.id_token.max(lifetimes.access_token) + JWKS_CACHE_MARGIN,
    };
    // File I/O and RSA generation block: keep them off the async workers.
    let keys = state.keys.clone();
    let now = state.clock.now();
    tokio::task::spawn_blocking(move || keys.maintain(now, policy)).await??;
    Ok(())
}

async fn deliver_logouts(state: web::Data<AppState>) {
    let mut backlog = false;
    while !state.stopping.is_set() {
        // A full round means more may be due: go on at once rather than after the poll.
        if !backlog {
            tokio::select! {
                () = state.logout_wakeup.notified() => {}
                () = tokio::time::sleep(DELIVERY_POLL) => {}
            }
        }
        backlog = match deliver_due_logouts(&state).await {
            Ok(attempted) => attempted > 0 && attempted == Pace::of(&state).batch as usize,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read queued back-channel logouts");
                false
            }
        };
    }
}

/// How a round of deliveries fits in the lease (`jobs.logout_lease`): each attempt is cut off
/// at a quarter of it (at most 5 s) and a round claims only as many as fit in half of it, so a
/// round of unanswering receivers ends before its claims lapse and no other process delivers
/// the same logout meanwhile.
struct Pace {
    lease: Duration,
    attempt: Duration,
    batch: u32,
}

impl Pace {
    fn of(state: &AppState) -> Self {
        let lease = state.config().lifetimes.logout_lease;
        let attempt = (lease / 4).min(MAX_ATTEMPT_TIME);
        let fit = (lease / 2).as_millis() / attempt.as_millis().max(1);
        let batch = u32::try_from(fit).unwrap_or(MAX_BATCH).clamp(1, MAX_BATCH);
        Self {
            lease,
            attempt,
            batch,
        }
    }
}

/// One round of back-channel logout delivery: claims the deliveries due at the app clock's
/// time (a lease keeps other processes off them) and attempts each once; returns how many
/// were attempted.
///
/// Once the process is stopping ([`AppState::stopping`]) nothing new is claimed, and what was
/// claimed but not yet attempted is handed back (due at once, attempts unchanged) so another
/// process, or this one after its restart, sends it without waiting out the lease.
pub async fn deliver_due_logouts(state: &AppState) -> Result<usize, StoreError> {
    if state.stopping.is_set() {
        return Ok(0);
    }
    let now = state.clock.now();
    let pace = Pace::of(state);
    let due = state
        .store
        .claim_logout_deliveries(now, pace.lease, pace.batch)
        .await?;
    let mut attempted = 0;
    for delivery in due {
        if state.stopping.is_set() {
            release(state, &delivery, now).await;
            continue;
        }
        attempted += 1;
        deliver(state, delivery, now, pace.attempt).await;
    }
    Ok(attempted)
}

/// Hands a claimed delivery back to the queue, due at `now`, without counting an attempt.
async fn release(state: &AppState, delivery: &LogoutDelivery, now: OffsetDateTime) {
    match state
        .store
        .retry_logout_delivery(&delivery.id, delivery.attempts, now)
        .await
    {
        Ok(()) => {
            tracing::info!(client_id = %delivery.client_id, "back-channel logout handed back: stopping")
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot hand back a back-channel logout; its lease expires on its own")
        }
    }
}

/// One attempt: sign afresh, POST `logout_token` (Back-Channel Logout §2.5), record the result.
async fn deliver(state: &AppState, delivery: LogoutDelivery, now: OffsetDateTime, limit: Duration) {
    let outcome = attempt(state, &delivery, now, limit).await;
    let result = match outcome {
        Ok(()) => {
            tracing::info!(client_id = %delivery.client_id, "back-channel logout delivered");
            state.metrics.backchannel(Delivery::Delivered);
            state.store.finish_logout_delivery(&delivery.id).await
        }
        Err(reason) if delivery.attempts + 1 >= MAX_ATTEMPTS => {
            tracing::error!(client_id = %delivery.client_id, %reason, "back-channel logout abandoned");
            state.metrics.backchannel(Delivery::Abandoned);
            audit::emit(
                &audit::RequestInfo::NONE,
                &audit::Event::BackchannelAbandoned {
                    client_id: delivery.client_id.as_str(),
                    user_id: delivery.user_id.as_str(),
                },
            );
            state.store.finish_logout_delivery(&delivery.id).await
        }
        Err(reason) => {
            let attempts = delivery.attempts + 1;
            let backoff = 1_i64
                .checked_shl(attempts.saturating_sub(1))
                .unwrap_or(MAX_BACKOFF_SECS)
                .min(MAX_BACKOFF_SECS);
            tracing::warn!(client_id = %delivery.client_id, %reason, attempts, backoff, "back-channel logout failed; will retry");
            state.metrics.backchannel(Delivery::Retry);
            state
                .store
                .retry_logout_delivery(
                    &delivery.id,
                    attempts,
                    now + time::Duration::seconds(backoff),
                )
                .await
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot record a back-channel logout attempt");
    }
}

async fn attempt(
    state: &AppState,
    delivery: &LogoutDelivery,
    now: OffsetDateTime,
    limit: Duration,
) -> Result<(), String> {
    let mut claims: LogoutTokenClaims = serde_json::from_str(&delivery.logout_token)
        .map_err(|e| format!("corrupt queued claims: {e}"))?;
    claims.iat = now.unix_timestamp();
    claims.exp = claims.iat + crate::flows::logout::LOGOUT_TOKEN_TTL;
    let token = tokens::sign_logout_token(&state.keys, &claims).map_err(|e| e.to_string())?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", &token)
        .finish();
    let response = state
        .http
        .post(&delivery.uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .timeout(limit)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    // §2.8: the RP answers 200 (or 204) on success.
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("receiver answered {}", response.status()))
    }
}

async fn collect_garbage(state: web::Data<AppState>) {
    loop {
        // `jobs.gc_every`.
        tokio::time::sleep(state.config().lifetimes.gc_every).await;
        // One batch per pass would cap clean-up at 500 rows of a kind per interval, below what
        // a busy deployment creates: go on while rounds come back full, up to a bound.
        let mut total = 0;
        for _ in 0..GC_MAX_ROUNDS {
            match collect_garbage_now(&state).await {
                Ok(n) => {
                    total += n;
                    if n < u64::from(GC_BATCH) {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "clean-up failed");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(rows = total, "expired rows deleted");
        }
    }
}

/// One round of clean-up at the app clock's time; returns how many rows went.
pub async fn collect_garbage_now(state: &AppState) -> Result<u64, StoreError> {
    state.store.gc(state.clock.now(), GC_BATCH).await
}
