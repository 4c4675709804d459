//! Live membership: the optional bot's Gateway connection, held by one process of the
//! deployment ([`leader`]), turned into deprovisioning (`flows::deprovision`). Losing the
//! connection never blocks sign-ins: the person's path and the re-checks at refresh keep
//! working, and the state shows in `/readyz` details.

mod leader;

use crate::discord::gateway::{self, ConnectionState, Ended, GatewaySettings, Signal};
use crate::flows::{community, deprovision};
use crate::state::AppState;
use actix_web::web;
use tokio::sync::mpsc;

/// Starts the live-membership task when a bot is configured.
pub fn spawn(state: web::Data<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    let url = state.config().bot.clone()?.gateway_url;
    Some(tokio::spawn(run(state, url)))
}

/// Lead, connect, act on events; on lost leadership stand by again. Each connection identifies
/// with the bot token in use: when a reload replaces it (`reload::apply_discord_secrets`, once
/// Discord accepted the new one), the connection is made again with it.
async fn run(state: web::Data<AppState>, url: Option<String>) {
    let mut token_changes = state.discord.bot_token_changes();
    loop {
        state.gateway.set_state(ConnectionState::Standby);
        let mut leadership = leader::acquire(&state.settings.database.url).await;
        token_changes.mark_unchanged();
        let Some(token) = state.discord.bot_token() else {
            return;
        };
        let settings = GatewaySettings {
            token,
            url: url.clone(),
        };
        let (signals, mut received) = mpsc::channel(256);
        let ended = tokio::select! {
            ended = gateway::run(&settings, &state.gateway, &signals) => Some(ended),
            () = leadership.lost() => None,
            () = handle(&state, &mut received) => None,
            _ = token_changes.changed() => {
                tracing::info!("live membership: the bot token was replaced; connecting again with it");
                None
            }
        };
        if ended == Some(Ended::Refused) {
            // Retrying with the same token cannot help: keep the leadership (so no other
            // process is refused in turn) until it is lost or the token is replaced.
            tokio::select! {
                () = leadership.lost() => {}
                _ = token_changes.changed() => {
                    tracing::info!("live membership: the bot token was replaced; connecting again with it");
                }
            }
        }
    }
}

/// Acts on every signal, one at a time (events of one person stay in order).
async fn handle(state: &AppState, received: &mut mpsc::Receiver<Signal>) {
    while let Some(signal) = received.recv().await {
        let ctx = state.context();
        let now = state.clock.now();
        match signal {
            Signal::Member(event) => match deprovision::apply(&ctx, &event, now).await {
                Ok(outcome) if outcome.ended_anything() => {
                    state.gateway.record_deprovisioning();
                    tracing::info!(event = event.kind().as_str(), user = %event.user_id(), signed_out = outcome.signed_out, apps = ?outcome.apps, "live membership: access ended");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, event = event.kind().as_str(), user = %event.user_id(), "live membership: cannot apply a member event");
                    state
                        .gateway
                        .record_problem("cannot apply a member event (see the log)");
                }
            },
            Signal::Role(event) => match community::apply_role_event(&ctx, &event, now).await {
                Ok(0) => {}
                Ok(changed) => {
                    tracing::info!(event = event.kind().as_str(), guild = %event.guild_id(), role = %event.role_id(), people = changed, "live membership: role change applied to the snapshots of people holding it");
                }
                Err(e) => {
                    tracing::error!(error = %e, event = event.kind().as_str(), guild = %event.guild_id(), "live membership: cannot apply a role event");
                    state
                        .gateway
                        .record_problem("cannot apply a role event (see the log)");
                }
            },
            Signal::NewSession => {
                state.gateway.set_state(ConnectionState::Connected);
                match deprovision::catch_up(&ctx, now).await {
                    Ok(affected) => {
                        state.gateway.record_catch_up();
                        for _ in 0..affected {
                            state.gateway.record_deprovisioning();
                        }
                        tracing::info!(affected, "live membership: caught up after (re)connecting");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "live membership: catch-up failed; the re-checks at refresh still apply");
                        state
                            .gateway
                            .record_problem(format!("catch-up failed: {e}"));
                    }
                }
            }
        }
    }
}
