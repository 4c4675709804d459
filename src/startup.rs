//! Application::build: validates settings, connects the store, loads keys, binds, mounts routes.

use crate::config::Settings;
use crate::discord::{DiscordClient, DiscordClientConfig};
use crate::keys::KeySet;
use crate::routes;
use crate::state::{AppState, Clock, Parts};
use crate::store;
use crate::telemetry::RequestSpan;
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use secrecy::ExposeSecret;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use tracing_actix_web::TracingLogger;

/// The longest a request waits on Discord's rate limits before answering
/// `temporarily_unavailable`: a person at a browser will not wait longer.
const MAX_DISCORD_RETRY_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

mod error;
mod notify;
mod screen;
mod signals;

use error::LISTEN_SETTING;
pub use error::{StartupError, format_problems};

/// A built, bound, not yet running guildgate.
pub struct Application {
    port: u16,
    server: Server,
    /// The app's listening socket (a second handle on it): a stop closes it, so connections
    /// arriving after SIGTERM are refused rather than left waiting in its backlog.
    listening: TcpListener,
    /// The scrape's own server, when `server.metrics_listen` is set: its port and server.
    metrics: Option<(u16, Server)>,
    state: web::Data<AppState>,
}

/// Seconds the HTTP server itself gives connections once the requests in flight are done.
const FLUSH_AFTER_DRAIN_SECS: u64 = 2;

/// How long a stop waits for the back-channel deliverer to finish its current attempt (the
/// outbound HTTP timeout is 5 s).
const DELIVERER_STOP: std::time::Duration = std::time::Duration::from_secs(10);

/// Background tasks are started with the server and stopped with it.
struct Jobs(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Jobs {
    fn drop(&mut self) {
        for job in &self.0 {
            job.abort();
        }
    }
}

impl Application {
    /// Builds everything; the listener is bound before this returns (port 0 picks a free one).
    pub async fn build(settings: Settings, clock: Clock) -> Result<Self, StartupError> {
        Self::build_with_listener(settings, clock, None).await
    }

    /// As [`Application::build`], serving on an already bound listener when one is given
    /// (tests bind port 0 first so the issuer can name the port).
    pub async fn build_with_listener(
        settings: Settings,
        clock: Clock,
        listener: Option<TcpListener>,
    ) -> Result<Self, StartupError> {
        let config = validated(&settings)?;
        let wait = connect_timeout(&settings)?;
        // Bind before waiting for the database: a taken port is reported at once, and probes
        // get answers (alive, not ready) while the database comes up.
        let bind_error = |cause| StartupError::Bind {
            addr: config.listen.to_string(),
            setting: LISTEN_SETTING,
            cause,
        };
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind(config.listen).map_err(bind_error)?,
        };
        let port = listener.local_addr().map_err(bind_error)?.port();
        let waiting = WaitingServer::start(&listener).map_err(bind_error)?;
        let state = assemble_state(settings, config, clock, wait).await;
        waiting.stop().await;
        let state = web::Data::new(state?);
        check_bot_token(&state).await?;

        let metrics = match state.config().metrics_listen {
            Some(addr) => Some(metrics_server(addr, state.clone())?),
            None => None,
        };
        // Without a metrics listener the scrape is served here, beside the app.
        let scrape_here = metrics.is_none();
        let server_state = state.clone();
        // Restart-only (a `[server]` setting), so the request span can read it without the
        // app state.
        let trusted_proxies = state.config().trusted_proxies.clone();
        let app = move || {
            // actix runs the last `wrap` first, so a request first meets `every_request`
            // (counted in flight, so a stop waits for it; timed and counted by route and status,
            // refusals at the edge included; security headers added to every answer from
            // below), then the request span (redacted target), then CORS (answers preflights),
            // then the edge checks (methods, HEAD, UTF-8, sizes), then routing.
            App::new()
                .wrap(actix_web::middleware::from_fn(routes::edge_checks))
                .wrap(cors(server_state.clone()))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(actix_web::middleware::from_fn(routes::every_request))
                .app_data(server_state.clone())
                .app_data(trusted_proxies.clone())
                .configure(routes::configure)
                .configure(|cfg| {
                    if scrape_here {
                        routes::configure_metrics(cfg);
                    }
                })
        };
        let answering = screen::Answering {
            https: state.https,
            metrics: Some(state.metrics.clone()),
        };
        let serve_error = |cause| StartupError::Bind {
            addr: format!("port {port}"),
            setting: LISTEN_SETTING,
            cause,
        };
        let listening = listener.try_clone().map_err(serve_error)?;
        let server = serve(app, listener, answering).map_err(serve_error)?;
        tracing::info!(port, issuer = %state.config().issuer, "guildgate is listening");
        Ok(Self {
            port,
            server,
            listening,
            metrics,
            state,
        })
    }

    /// The port of the metrics listener, when `server.metrics_listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests reach the store and clock through it).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until the server is stopped through its handle, with the background jobs
    /// running alongside; installs no signal handlers (tests embed the app in their process).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mut jobs = crate::jobs::spawn(self.state.clone());
        jobs.extend(crate::live::spawn(self.state.clone()));
        let _jobs = Jobs(jobs);
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let served = self.server.await;
        if let Some(handle) = metrics {
            handle.stop(true).await;
        }
        served
    }

    /// Serves until SIGTERM or SIGINT, then stops gracefully: no new connections, requests in
    /// flight get `server.shutdown_timeout`, the back-channel deliverer hands back deliveries
    /// it claimed. SIGHUP reloads the configuration from `config_file` and the environment.
    pub async fn serve_until_signalled(self, config_file: Option<PathBuf>) -> std::io::Result<()> {
        // The deliverer comes first in this list (see below); live membership after the jobs.
        let mut jobs = Jobs(crate::jobs::spawn(self.state.clone()));
        jobs.0.extend(crate::live::spawn(self.state.clone()));
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let watch = signals::watch(
            self.server.handle(),
            self.listening,
            self.state.clone(),
            config_file,
        );
        let signals = tokio::spawn(async move {
            if let Err(e) = watch.await {
                tracing::error!(error = %e, "cannot listen for signals; stop the process with SIGKILL");
            }
        });
        // Bound, migrated, routes mounted, signals handled: systemd may count it started.
        notify::ready();
        let served = self.server.await;
        signals.abort();
        if let Some(handle) = metrics {
            handle.stop(true).await;
        }
        self.state.stopping.stop();
        self.state.logout_wakeup.notify_one();
        // The deliverer finishes the attempt it is making (the outbound timeout bounds it) and
        // releases the rest; the other jobs hold nothing and are simply stopped.
        let mut deliverer = jobs.0.remove(0);
        if tokio::time::timeout(DELIVERER_STOP, &mut deliverer)
            .await
            .is_err()
        {
            deliverer.abort();
            tracing::warn!(
                "the back-channel deliverer did not stop in time; its leases expire on their own"
            );
        }
        drop(jobs);
        tracing::info!("stopped");
        served
    }
}

/// The app's server on `listener`: what `HttpServer` would build (HTTP/1.1, its timeouts), with
/// each connection's stream screened first (`screen.rs`) so that a request too long for actix
/// to read still gets a readable answer.
fn serve<F, T, B>(
    app: F,
    listener: TcpListener,
    answering: screen::Answering,
) -> std::io::Result<Server>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    use actix_service::{ServiceFactoryExt, fn_service, map_config};
    let addr = listener.local_addr()?;
    Ok(actix_server::Server::build()
        // Signals are ours (`serve_until_signalled`): actix's own would stop SIGINT without
        // waiting for requests in flight, and would stop test processes that embed the app.
        .disable_signals()
        // After the stop has waited for the requests it counted: long enough to flush their
        // answers, while idle keep-alive connections are closed at once.
        .shutdown_timeout(FLUSH_AFTER_DRAIN_SECS)
        .listen("guildgate", listener, move || {
            let factory = actix_service::IntoServiceFactory::into_factory(app())
                .map_err(|e: actix_web::Error| e.error_response());
            let http = actix_http::HttpService::build()
                .keep_alive(actix_http::KeepAlive::default())
                .client_request_timeout(std::time::Duration::from_secs(5))
                .client_disconnect_timeout(std::time::Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(addr)
                .h1(map_config(factory, |_| {
                    actix_web::dev::AppConfig::default()
                }));
            let answering = answering.clone();
            fn_service(move |io: actix_rt::net::TcpStream| {
                let peer = io.peer_addr().ok();
                let screened = screen::Screened::new(io, answering.clone());
                std::future::ready(Ok((screened, peer)))
            })
            .and_then(http)
        })?
        .run())
}

/// The scrape alone on `server.metrics_listen`, so it can stay on an address the public
/// cannot reach while the app listens on one it can.
fn metrics_server(
    addr: std::net::SocketAddr,
    state: web::Data<AppState>,
) -> Result<(u16, Server), StartupError> {
    let bind_error = |cause| StartupError::Bind {
        addr: addr.to_string(),
        setting: "server.metrics_listen",
        cause,
    };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(routes::security_headers))
            .app_data(state.clone())
            .configure(routes::configure_metrics)
    })
    .workers(1)
    // The main server's stop (ours, on SIGTERM) stops this one too.
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?
    .run();
    tracing::info!(port, "metrics are served on their own listener");
    Ok((port, server))
}

/// CORS for registered app origins, and only on the endpoints a browser app calls with fetch
/// (`CrossOrigin::RegisteredOrigins` in the endpoint table: token, userinfo, revocation,
/// introspection). `/authorize`, `/logout`, `/consent` and `/callback/discord` are navigations:
/// a cross-origin read of them would only help an attacker. Discovery and JWKS are public and
/// answer any origin with `*` themselves. Credentials (cookies) are never allowed cross-origin.
/// The origins are those of the configuration in force (a reload may add an app).
fn cors(state: web::Data<AppState>) -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allowed_origin_fn(move |origin, head| {
            routes::endpoint_at(head.uri.path())
                .is_some_and(|e| e.cross_origin == routes::CrossOrigin::RegisteredOrigins)
                && origin
                    .to_str()
                    .is_ok_and(|o| state.live().origins.contains(o))
        })
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
            // RFC 9449 §4.1: browser apps send their proofs in this header ...
            actix_web::http::header::HeaderName::from_static("dpop"),
        ])
        // ... and must be able to read the nonce guildgate answers with (§8.1).
        .expose_headers([
            actix_web::http::header::HeaderName::from_static("dpop-nonce"),
            actix_web::http::header::WWW_AUTHENTICATE,
        ])
        .max_age(3600)
        // Other origins simply get no CORS headers: form posts from our own pages and
        // navigations carry an Origin too and must not be refused.
        .block_on_origin_mismatch(false)
}

/// Answers `/healthz` (alive) and `/readyz` (503, starting) on the real listener while start-up
/// waits for the database, so orchestrators neither restart nor route to a process that is
/// only waiting. Stopped, without keep-alive connections to drain, before the app takes over.
struct WaitingServer {
    handle: actix_web::dev::ServerHandle,
}

impl WaitingServer {
    fn start(listener: &TcpListener) -> std::io::Result<Self> {
        let server = HttpServer::new(|| App::new().configure(routes::configure_starting))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(0)
            .keep_alive(actix_web::http::KeepAlive::Disabled)
            .listen(listener.try_clone()?)?
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { handle })
    }

    /// Returns once it no longer accepts; the listener stays open (the app's copy), so
    /// connections arriving meanwhile wait in its backlog for the app.
    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// A start-up abandoned half way (an error, a cancelled task) must not leave it serving.
impl Drop for WaitingServer {
    fn drop(&mut self) {
        // The stop command is sent at once; the returned future only reports completion.
        drop(self.handle.stop(false));
    }
}

/// Validates, logging each warning once.
fn validated(settings: &Settings) -> Result<crate::config::ValidConfig, StartupError> {
    let config = settings.validate().map_err(StartupError::Config)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// `database.connect_timeout` (already checked by `validate`).
fn connect_timeout(settings: &Settings) -> Result<std::time::Duration, StartupError> {
    settings
        .database
        .connect_timeout()
        .map_err(|problem| StartupError::Config(vec![problem]))
}

/// Everything but the listener: validated config, connected and migrated store, keys, clients,
/// the Discord client. The CLI's admin commands use it without serving; they try the database
/// once rather than waiting for it.
pub async fn build_state(settings: Settings, clock: Clock) -> Result<AppState, StartupError> {
    let config = validated(&settings)?;
    assemble_state(settings, config, clock, std::time::Duration::ZERO).await
}

/// The state from validated settings, waiting up to `wait` for the database.
async fn assemble_state(
    settings: Settings,
    config: crate::config::ValidConfig,
    clock: Clock,
    wait: std::time::Duration,
) -> Result<AppState, StartupError> {
    let url = settings.database.url.expose_secret();
    let store = store::connect_waiting(url, settings.database.max_connections, wait).await?;
    store.migrate().await?;
    let keys = KeySet::load_or_generate(&settings.keys.dir, clock.now())?;
    tracing::info!(kid = %keys.active().kid, "signing key loaded");
    // Built once: a key the crypto library refuses stops start-up rather than silently
    // keeping no Discord tokens (re-checks would then sign everyone out).
    let sealer = crate::sealed::Keyring::new(&config.encryption_keys)
        .map_err(|e| anyhow::anyhow!("[secrets] keys cannot be used: {e}"))?;
    let discord = DiscordClient::new(DiscordClientConfig {
        client_id: settings.discord.client_id.clone(),
        client_secret: settings.discord.client_secret.clone(),
        authorize_url: config.discord_authorize_url.clone(),
        api_base_url: config.discord_api_base_url.clone(),
        scopes: settings.discord.scopes.clone(),
        redirect_uri: config.issuer.endpoint("/callback/discord"),
        timeout: config.lifetimes.discord_timeout,
        max_retry_wait: MAX_DISCORD_RETRY_WAIT,
        membership_ttl: config.lifetimes.membership,
        bot_token: config.bot.as_ref().map(|b| b.token.clone()),
    })
    .map_err(|e| anyhow::anyhow!("cannot set up the Discord client: {e}"))?;

    let pages = Arc::new(crate::pages::Pages::new(&config.ui));
    let metrics = Arc::new(crate::metrics::Metrics::new(discord.stats().metrics()));
    let parts = Parts {
        pages,
        metrics,
        settings: Arc::new(settings),
        store,
        keys: Arc::new(keys),
        discord,
        http: crate::tls::client_builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?,
        clock,
        sealer,
    };
    Ok(AppState::new(parts, config))
}

/// With a bot configured, asks Discord whether it accepts the token: a refused token stops
/// start-up (nothing the bot should do could work); Discord being unreachable does not (the
/// Gateway connection retries, and sign-ins never depend on it).
async fn check_bot_token(state: &AppState) -> Result<(), StartupError> {
    if state.config().bot.is_none() {
        return Ok(());
    }
    match state.discord.check_bot_token().await {
        Ok(bot) => {
            tracing::info!(bot_user = %bot.id, "Discord accepts the bot token");
            Ok(())
        }
        Err(crate::discord::DiscordError::Unauthorized) => {
            Err(StartupError::Other(anyhow::anyhow!(
                "discord.bot.token (GUILDGATE__DISCORD__BOT__TOKEN): Discord refused the bot token (401 Unauthorized); copy the token again from the Bot page of your application in the Discord Developer Portal, or remove [discord.bot] to run without a bot"
            )))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the bot token with Discord now; live membership will keep trying");
            Ok(())
        }
    }
}
