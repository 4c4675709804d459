//! A fake Discord Gateway (docs: topics/gateway, topics/opcodes-and-status-codes) on its own
//! 127.0.0.1 port: Hello, Identify (bot token and the server-members intent checked, as Discord
//! closes with 4004 / 4014), Heartbeat → ACK, Resume with replay of missed dispatches, and
//! dispatches of `GUILD_MEMBER_REMOVE`, `GUILD_BAN_ADD` and `GUILD_MEMBER_UPDATE`. Tests and the
//! dev page drive it through [`super::FakeDiscordHandle`]: emit events, ask clients to
//! reconnect, invalidate sessions, or drop every connection.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_websockets::{CloseCode, Message, ServerBuilder};

/// Intent bit of `GUILD_MEMBER_*` events (privileged: "Server Members Intent").
pub const GUILD_MEMBERS_INTENT: u64 = 1 << 1;
/// How long a fresh connection may take to identify or resume.
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Dispatches kept per session for resumes.
const MAX_LOG: usize = 1000;

/// What the test or dev page asks of every connected client.
#[derive(Clone, Debug)]
pub(super) enum Control {
    /// New dispatches were logged: send what the connection has not sent yet.
    Flush,
    /// Opcode 7: the client should reconnect and resume.
    Reconnect,
    /// Opcode 9 with `d` = resumable.
    InvalidSession(bool),
    /// Drop the TCP connection without a close frame (a network failure).
    Drop,
}

/// One Gateway session: its dispatch log (sequence = index + 1) for resumes.
#[derive(Default)]
struct SessionLog {
    events: Vec<(u64, Value)>,
    next_seq: u64,
}

/// Counters a test reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatewayCounts {
    /// WebSocket connections accepted.
    pub connections: u32,
    /// Identify payloads accepted (new sessions).
    pub identifies: u32,
    /// Resumes accepted.
    pub resumes: u32,
    /// Identifies refused (bad token or missing intent).
    pub refused: u32,
}

/// The Gateway's shared state.
pub(super) struct Hub {
    bot_token: String,
    heartbeat_interval_ms: u64,
    url: String,
    sessions: HashMap<String, SessionLog>,
    counts: GatewayCounts,
    controls: broadcast::Sender<Control>,
    next_session: u64,
}

/// Handle on the running fake Gateway.
#[derive(Clone)]
pub(super) struct FakeGateway {
    hub: Arc<Mutex<Hub>>,
}

fn lock(hub: &Mutex<Hub>) -> MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeGateway {
    /// Binds 127.0.0.1 on a free port and serves on the current runtime.
    pub(super) fn start(bot_token: String) -> std::io::Result<Self> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let url = format!("ws://{}", std_listener.local_addr()?);
        let listener = TcpListener::from_std(std_listener)?;
        let (controls, _) = broadcast::channel(64);
        let hub = Arc::new(Mutex::new(Hub {
            bot_token,
            heartbeat_interval_ms: 41_250,
            url,
            sessions: HashMap::new(),
            counts: GatewayCounts::default(),
            controls,
            next_session: 1,
        }));
        let accepting = Arc::clone(&hub);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let hub = Arc::clone(&accepting);
                tokio::spawn(async move {
                    if let Ok((_request, ws)) = ServerBuilder::new().accept(tcp).await {
                        serve(hub, ws).await;
                    }
                });
            }
        });
        Ok(Self { hub })
    }

    /// `ws://127.0.0.1:{port}`.
    pub(super) fn url(&self) -> String {
        lock(&self.hub).url.clone()
    }

    /// Counters so far.
    pub(super) fn counts(&self) -> GatewayCounts {
        lock(&self.hub).counts
    }

    /// Logs a dispatch in every session (live or resumable) and tells connections to send it.
    pub(super) fn dispatch(&self, event: &str, data: Value) {
        let hub = &mut *lock(&self.hub);
        for log in hub.sessions.values_mut() {
            log.next_seq += 1;
            let payload = json!({"op": 0, "t": event, "s": log.next_seq, "d": data});
            log.events.push((log.next_seq, payload));
            if log.events.len() > MAX_LOG {
                log.events.remove(0);
            }
        }
        drop(hub.controls.send(Control::Flush));
    }

    /// Sends a control to every connection.
    pub(super) fn control(&self, control: Control) {
        let hub = &mut *lock(&self.hub);
        if let Control::InvalidSession(false) = control {
            hub.sessions.clear();
        }
        drop(hub.controls.send(control));
    }

    /// The bot token was reset: only `token` identifies from now on; every session is forgotten
    /// and every connection dropped.
    pub(super) fn set_bot_token(&self, token: String) {
        let hub = &mut *lock(&self.hub);
        hub.bot_token = token;
        hub.sessions.clear();
        drop(hub.controls.send(Control::Drop));
    }

    /// Heartbeat interval announced in Hello (Discord's is about 41 s).
    pub(super) fn set_heartbeat_interval(&self, interval: Duration) {
        lock(&self.hub).heartbeat_interval_ms =
            u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    }
}

type Ws = tokio_websockets::WebSocketStream<tokio::net::TcpStream>;

async fn send(ws: &mut Ws, payload: &Value) -> bool {
    ws.send(Message::text(payload.to_string())).await.is_ok()
}

async fn close(ws: &mut Ws, code: u16, reason: &str) {
    if let Ok(code) = CloseCode::try_from(code) {
        drop(ws.send(Message::close(Some(code), reason)).await);
    }
}

/// Reads the next JSON text payload, answering heartbeats on the way.
async fn next_payload(ws: &mut Ws) -> Option<Value> {
    loop {
        let message = ws.next().await?.ok()?;
        if message.is_close() {
            return None;
        }
        let Some(text) = message.as_text() else {
            continue;
        };
        let Ok(payload) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        if payload["op"] == 1 {
            if !send(ws, &json!({"op": 11})).await {
                return None;
            }
            continue;
        }
        return Some(payload);
    }
}

/// One client connection: Hello, then Identify or Resume, then dispatches until it ends.
async fn serve(hub: Arc<Mutex<Hub>>, mut ws: Ws) {
    let (interval, mut controls) = {
        let mut h = lock(&hub);
        h.counts.connections += 1;
        (h.heartbeat_interval_ms, h.controls.subscribe())
    };
    if !send(
        &mut ws,
        &json!({"op": 10, "d": {"heartbeat_interval": interval}}),
    )
    .await
    {
        return;
    }
    let Ok(Some(first)) = tokio::time::timeout(IDENTIFY_TIMEOUT, next_payload(&mut ws)).await
    else {
        return;
    };
    let (session_id, mut sent) = match first["op"].as_u64() {
        Some(2) => match identify(&hub, &first["d"]) {
            Ok(started) => started,
            Err((code, reason)) => return close(&mut ws, code, reason).await,
        },
        Some(6) => match resume(&hub, &first["d"]) {
            Some(resumed) => resumed,
            None => {
                // Not resumable: the client must identify anew (docs: op 9).
                send(&mut ws, &json!({"op": 9, "d": false})).await;
                return close(&mut ws, 4009, "Session timed out").await;
            }
        },
        _ => return close(&mut ws, 4003, "Not authenticated").await,
    };
    // READY (or the replay of missed events) goes out before RESUMED.
    if !flush(&hub, &mut ws, &session_id, &mut sent).await {
        return;
    }
    if first["op"] == 6 {
        let resumed = json!({"op": 0, "t": "RESUMED", "s": sent, "d": {}});
        if !send(&mut ws, &resumed).await {
            return;
        }
    }
    loop {
        tokio::select! {
            payload = next_payload(&mut ws) => {
                if payload.is_none() {
                    return;
                }
            }
            control = controls.recv() => match control {
                Ok(Control::Flush) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    if !flush(&hub, &mut ws, &session_id, &mut sent).await {
                        return;
                    }
                }
                Ok(Control::Reconnect) => {
                    send(&mut ws, &json!({"op": 7, "d": null})).await;
                }
                Ok(Control::InvalidSession(resumable)) => {
                    send(&mut ws, &json!({"op": 9, "d": resumable})).await;
                }
                Ok(Control::Drop) | Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Sends the session's dispatches after `sent`; false when the connection is gone.
async fn flush(hub: &Mutex<Hub>, ws: &mut Ws, session_id: &str, sent: &mut u64) -> bool {
    let pending: Vec<(u64, Value)> = lock(hub)
        .sessions
        .get(session_id)
        .map(|log| {
            log.events
                .iter()
                .filter(|(seq, _)| *seq > *sent)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for (seq, payload) in pending {
        if !send(ws, &payload).await {
            return false;
        }
        *sent = seq;
    }
    true
}

/// Identify (op 2): the bot token (with or without the `Bot ` prefix) and the server-members
/// intent are required. Starts a session whose log begins with READY.
fn identify(hub: &Mutex<Hub>, d: &Value) -> Result<(String, u64), (u16, &'static str)> {
    let h = &mut *lock(hub);
    let token = d["token"].as_str().unwrap_or_default();
    let token = token.strip_prefix("Bot ").unwrap_or(token);
    if token != h.bot_token {
        h.counts.refused += 1;
        return Err((4004, "Authentication failed."));
    }
    let intents = d["intents"].as_u64().unwrap_or(0);
    if intents & GUILD_MEMBERS_INTENT == 0 {
        h.counts.refused += 1;
        return Err((4014, "Disallowed intent(s)."));
    }
    h.counts.identifies += 1;
    let session_id = format!("fake-session-{}", h.next_session);
    h.next_session += 1;
    let ready = json!({
        "op": 0, "t": "READY", "s": 1,
        "d": {
            "v": 10,
            "user": {"id": super::data::BOT_USER_ID, "username": "guildgate", "discriminator": "0",
                     "global_name": null, "avatar": null, "bot": true, "mfa_enabled": false,
                     "verified": true, "flags": 0},
            "guilds": [],
            "session_id": session_id,
            "resume_gateway_url": h.url,
            "application": {"id": super::data::BOT_USER_ID, "flags": 0},
        }
    });
    h.sessions.insert(
        session_id.clone(),
        SessionLog {
            events: vec![(1, ready)],
            next_seq: 1,
        },
    );
    Ok((session_id, 0))
}

/// Resume (op 6): a known session continues after the client's last sequence number.
fn resume(hub: &Mutex<Hub>, d: &Value) -> Option<(String, u64)> {
    let h = &mut *lock(hub);
    let token = d["token"].as_str().unwrap_or_default();
    let token = token.strip_prefix("Bot ").unwrap_or(token);
    let session_id = d["session_id"].as_str()?;
    if token != h.bot_token || !h.sessions.contains_key(session_id) {
        return None;
    }
    h.counts.resumes += 1;
    Some((session_id.to_owned(), d["seq"].as_u64().unwrap_or(0)))
}
