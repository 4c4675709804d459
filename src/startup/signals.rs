//! Signals of a serving process: SIGTERM and SIGINT stop it gracefully (no new connections,
//! requests in flight get `server.shutdown_timeout`), SIGHUP reloads the configuration and the
//! keys folder. Requests
//! in flight are counted by `routes::every_request`.

use crate::state::AppState;
use actix_web::dev::ServerHandle;
use actix_web::web;
use std::path::PathBuf;
use tokio::signal::unix::{SignalKind, signal};

/// Waits for signals until a stop signal arrives, then tells the server to stop gracefully
/// and the background jobs to hand back what they claimed.
pub(super) async fn watch(
    server: ServerHandle,
    listening: std::net::TcpListener,
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
                tracing::info!("SIGHUP: reloading the configuration and the keys folder");
                // Problems are logged by `reload`; the running configuration stays. New Discord
                // secrets are used once Discord accepts them (each outcome is logged).
                // Checked off this loop, so a stop signal meanwhile is not held up by Discord.
                if let Ok(done) = crate::reload::reload(&state, config_file.as_deref()) {
                    let state = state.clone();
                    tokio::spawn(async move {
                        crate::reload::apply_discord_secrets(&state, done.discord).await;
                    });
                }
                // A key revoked or added by `guildgate keys` takes effect now rather than at
                // the next scheduled reload.
                match crate::jobs::maintain_keys_now(&state).await {
                    Ok(()) => tracing::info!(kid = %state.keys.active().kid, "keys folder reloaded"),
                    Err(e) => tracing::error!(error = %e, "cannot reload the keys folder; the keys in use stay in use"),
                }
                continue;
            }
        };
        let timeout = state.config().shutdown_timeout;
        super::notify::stopping();
        state.stopping.stop();
        state.logout_wakeup.notify_one();
        // Accept nothing new, wait for the requests being served, then close everything. We
        // count requests ourselves rather than rely on the server's own graceful stop, which
        // was seen to close a connection whose request had just begun.
        server.pause().await;
        stop_listening(&listening);
        // Logged once accepting has stopped, so the line is true when an operator reads it.
        tracing::info!(
            signal = name,
            timeout_secs = timeout.as_secs(),
            "stopping: no new connections; requests in flight may finish"
        );
        if tokio::time::timeout(timeout, state.in_flight.drained())
            .await
            .is_err()
        {
            tracing::warn!(
                requests = state.in_flight.count(),
                "server.shutdown_timeout passed; the requests still in flight are cut off"
            );
        }
        server.stop(true).await;
        return Ok(());
    }
}

/// Closes the listening socket for new connections. Pausing the server only stops its accept
/// loop: the socket stayed open, so a connection arriving after SIGTERM completed its handshake
/// and waited in the backlog (or, in the moment the pause took to reach the accept thread, was
/// still taken). Shut down for reading, a listening socket stops listening (Linux resets what
/// waits in its backlog, and refuses new connections), while the connections already accepted
/// are untouched.
fn stop_listening(listening: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: `shutdown` on a descriptor this handle owns, open for the handle's lifetime; it
    // changes the socket's state only and touches no memory of ours.
    let closed = unsafe { libc::shutdown(listening.as_raw_fd(), libc::SHUT_RD) };
    if closed != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot close the listening socket; new connections wait unanswered until the process exits"
        );
    }
}
