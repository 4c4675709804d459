//! Background work off the request path: back-channel logout delivery and store clean-up.
//! Both take their work from the store, so several processes share it and a restart loses none.

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
/// How long a claimed delivery is reserved for this process.
const DELIVERY_LEASE: Duration = Duration::from_secs(30);
/// After this many failed attempts a delivery is abandoned (about a day of backoff).
const MAX_ATTEMPTS: u32 = 17;
/// Longest wait between two attempts.
const MAX_BACKOFF_SECS: i64 = 3600;
/// How often expired rows are deleted, and how many of each kind per round.
const GC_EVERY: Duration = Duration::from_secs(300);
const GC_BATCH: u32 = 500;

/// How often the key folder is re-read and the rotation policy applied.
const KEYS_EVERY: Duration = Duration::from_secs(60);
/// How long relying parties may cache the JWKS (the `max-age` we send) plus margin.
const JWKS_CACHE_MARGIN: Duration = Duration::from_secs(600);

/// Starts the background tasks; they end when the returned handles are aborted. The first is
/// the back-channel deliverer, which also ends by itself once the process is stopping.
pub fn spawn(state: web::Data<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(deliver_logouts(state.clone())),
        tokio::spawn(collect_garbage(state.clone())),
        tokio::spawn(maintain_keys(state)),
    ]
}

/// Rotation and reload: keeps every process on the same keys as the shared folder.
async fn maintain_keys(state: web::Data<AppState>) {
    loop {
        tokio::time::sleep(KEYS_EVERY).await;
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
    while !state.stopping.is_set() {
        tokio::select! {
            () = state.logout_wakeup.notified() => {}
            () = tokio::time::sleep(DELIVERY_POLL) => {}
        }
        if let Err(e) = deliver_due_logouts(&state).await {
            tracing::warn!(error = %e, "cannot read queued back-channel logouts");
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
    let due = state
        .store
        .claim_logout_deliveries(now, DELIVERY_LEASE, 20)
        .await?;
    let mut attempted = 0;
    for delivery in due {
        if state.stopping.is_set() {
            release(state, &delivery, now).await;
            continue;
        }
        attempted += 1;
        deliver(state, delivery, now).await;
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
async fn deliver(state: &AppState, delivery: LogoutDelivery, now: OffsetDateTime) {
    let outcome = attempt(state, &delivery, now).await;
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
                    client_id: &delivery.client_id,
                    user_id: &delivery.user_id,
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
        tokio::time::sleep(GC_EVERY).await;
        match collect_garbage_now(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "expired rows deleted"),
            Err(e) => tracing::warn!(error = %e, "clean-up failed"),
        }
    }
}

/// One round of clean-up at the app clock's time; returns how many rows went.
pub async fn collect_garbage_now(state: &AppState) -> Result<u64, StoreError> {
    state.store.gc(state.clock.now(), GC_BATCH).await
}
