//! Signals of a serving process: SIGTERM and SIGINT stop it gracefully (no new connections,
//! requests in flight get `server.shutdown_timeout`), SIGHUP reloads the configuration.

use crate::state::AppState;
use actix_web::dev::ServerHandle;
use actix_web::web;
use std::path::PathBuf;
use tokio::signal::unix::{SignalKind, signal};

/// Waits for signals until a stop signal arrives, then tells the server to stop gracefully
/// and the background jobs to hand back what they claimed.
pub(super) async fn watch(
    server: ServerHandle,
    state: web::Data<AppState>,
    config_file: Option<PathBuf>,
) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                // Problems are logged by `reload`; the running configuration stays.
                let _ = crate::reload::reload(&state, config_file.as_deref());
                continue;
            }
        };
        let timeout = state.config().shutdown_timeout;
        tracing::info!(
            signal = name,
            timeout_secs = timeout.as_secs(),
            "stopping: no new connections; requests in flight may finish"
        );
        state.stopping.stop();
        state.logout_wakeup.notify_one();
        // Returns once the server has stopped (in-flight requests done or timed out).
        server.stop(true).await;
        return Ok(());
    }
}
