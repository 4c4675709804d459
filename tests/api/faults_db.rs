//! The database goes away under a running process, and comes back.
//!
//! Postgres: the process reaches Postgres through a TCP proxy in this test, which the test cuts
//! (every open connection closed, new ones closed at once, as a stopped server does) and
//! restores. Stopping the machine's Postgres cluster instead would break every other test
//! running at the same time. SQLite: the database lives on a small tmpfs the test mounts and
//! fills (a full disk); tests run as root, which ignores file modes, so a read-only file cannot
//! be staged with `chmod`. Without the right to mount, that test says so and passes.

use crate::browser::Browser;
use crate::helpers::{ALICE, BOB};
use crate::processes::{
    Answer, Deployment, Process, Receiver, code_of, postgres_or_skip, redeem, refresh, to_callback,
    userinfo,
};
use crate::small_disk::SmallDisk;
use crate::test_db::{Backend, fresh_database};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const WIKI: (&str, &str) = ("wiki", "wiki-secret-wiki-secret");
const WIKI_REDIRECT: &str = "https://wiki.example.com/cb";
/// The longest a request may take while the database is away: the pool's 5 s wait for a
/// connection, plus margin for a busy machine.
const NO_HANG: Duration = Duration::from_secs(8);

/// A TCP proxy to one address that the test can cut and restore.
struct Proxy {
    port: u16,
    target: SocketAddr,
    /// The proxy's socket, bound for the whole test: between a cut and a restore it does not
    /// listen (connections are refused) but keeps its port, which another process on the
    /// machine could otherwise take meanwhile.
    socket: std::net::TcpListener,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        // Bound to a port named explicitly: Linux keeps only such a port bound while the
        // socket does not listen (a port it picked itself is released at the cut).
        let socket = (0..50)
            .find_map(|_| {
                let free = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .expect("a free port")
                    .port();
                std::net::TcpListener::bind(("127.0.0.1", free)).ok()
            })
            .expect("bind");
        socket.set_nonblocking(true).expect("non-blocking");
        let port = socket.local_addr().expect("local addr").port();
        let proxy = Self {
            port,
            target,
            socket,
            links: Arc::new(Mutex::new(Vec::new())),
            accept: Mutex::new(None),
        };
        proxy.serve();
        proxy
    }

    fn serve(&self) {
        let listener = self
            .socket
            .try_clone()
            .and_then(TcpListener::from_std)
            .expect("the proxy's socket");
        let (target, open) = (self.target, self.links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                open.lock().unwrap().push(link.abort_handle());
            }
        });
        *self.accept.lock().unwrap() = Some(accept);
    }

    /// The database is gone, as a stopped server is: open connections close, new ones are
    /// refused (the socket stops listening and keeps its port).
    fn cut(&self) {
        use std::os::fd::AsRawFd;
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
        // SAFETY: the socket's own descriptor, open for as long as `self`.
        unsafe { libc::shutdown(self.socket.as_raw_fd(), libc::SHUT_RD) };
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// The database is back, on the same port.
    async fn restore(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `cut`.
        let listening = unsafe { libc::listen(self.socket.as_raw_fd(), 128) };
        assert_eq!(
            listening,
            0,
            "the proxy listens again: {}",
            std::io::Error::last_os_error()
        );
        self.serve();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

fn wiki_clients(receiver: &Receiver) -> String {
    format!(
        "[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{WIKI_REDIRECT}\"]\n\
         refresh_tokens = true\nbackchannel_logout_uri = \"{}\"\n",
        WIKI.0, WIKI.1, receiver.url
    )
}

/// Signs `user` in to the wiki on `process` with `browser`; returns the token response.
async fn signed_in(
    deployment: &Deployment,
    process: &Process,
    browser: &mut Browser,
    user: &str,
) -> serde_json::Value {
    let authorize = deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]);
    let callback = to_callback(deployment, browser, process, &authorize, user).await;
    let done = browser.get_through(&callback, &process.address).await;
    let to_app = done
        .location
        .unwrap_or_else(|| panic!("signed in: {} {}", done.status, done.body));
    let (status, tokens) = redeem(process, WIKI, &code_of(&to_app), WIKI_REDIRECT).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// One request of the mixed load, and what it got.
#[derive(Debug)]
struct Probe {
    what: &'static str,
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: String,
    took: Duration,
}

async fn probe(what: &'static str, request: reqwest::RequestBuilder) -> Probe {
    let started = Instant::now();
    let response = request
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("guildgate answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    Probe {
        what,
        status,
        content_type,
        retry_after,
        body,
        took: started.elapsed(),
    }
}

/// One round of every kind of request an outage meets, sent at once.
async fn mixed_round(process: &Process, refresh_token: &str, access: &str) -> Vec<Probe> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let at = |path: &str| format!("{}{path}", process.address);
    let authorize = format!(
        "{}/authorize?client_id={}&redirect_uri={WIKI_REDIRECT}&response_type=code&scope=openid&state=s",
        process.address, WIKI.0
    );
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let results = tokio::join!(
        probe("readyz", http.get(at("/readyz"))),
        probe(
            "discovery",
            http.get(at("/.well-known/openid-configuration"))
        ),
        probe("authorize", http.get(authorize)),
        probe(
            "refresh",
            http.post(at("/token"))
                .basic_auth(WIKI.0, Some(WIKI.1))
                .form(&form)
        ),
        probe("userinfo", http.get(at("/userinfo")).bearer_auth(access)),
        probe(
            "introspect",
            http.post(at("/introspect"))
                .basic_auth(WIKI.0, Some(WIKI.1))
                .form(&[("token", refresh_token)])
        ),
    );
    vec![
        results.0, results.1, results.2, results.3, results.4, results.5,
    ]
}

/// What each request must get while the database is away.
fn check_during_outage(p: &Probe) {
    assert!(p.took < NO_HANG, "{} waited {:?}", p.what, p.took);
    match p.what {
        "readyz" => assert_eq!(p.status, 503, "{p:?}"),
        "discovery" => assert_eq!(p.status, 200, "discovery needs no database: {p:?}"),
        // An outage, not a fault: 503 with Retry-After for people and apps alike.
        "authorize" => {
            assert_eq!(p.status, 503, "{p:?}");
            assert!(p.retry_after.is_some(), "{p:?}");
            assert!(
                p.content_type.starts_with("text/html"),
                "an error page: {p:?}"
            );
            assert!(p.body.contains("try again"), "{p:?}");
        }
        _ => {
            assert_eq!(p.status, 503, "{p:?}");
            assert!(p.retry_after.is_some(), "{p:?}");
            let body: serde_json::Value = serde_json::from_str(&p.body).expect("JSON");
            assert_eq!(body["error"], "temporarily_unavailable", "{p:?}");
        }
    }
}

#[tokio::test]
async fn a_postgres_outage_answers_503_without_hanging_and_loses_nothing_committed_before() {
    if !postgres_or_skip("the Postgres outage drill") {
        return;
    }
    // Arrange: guildgate reaches Postgres through the proxy. Bob is signed in (session, grant);
    // Alice logged out and her back-channel logout waits in the queue (the receiver failed once).
    let db = fresh_database(Backend::Postgres).await;
    let direct = db.url.clone();
    let mut url = url::Url::parse(&db.url).expect("database URL");
    let target: SocketAddr = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().unwrap_or(5432)
    )
    .parse()
    .expect("Postgres on an IP address");
    let proxy = Proxy::start(target).await;
    url.set_port(Some(proxy.port)).expect("port");
    let receiver = Receiver::start(Answer::Fail);
    let deployment = Deployment::on(db, &wiki_clients(&receiver))
        .with_env("DATABASE__URL", url.as_str())
        .with_env("JOBS__LOGOUT_LEASE", "4s");
    let process = deployment.start_at_issuer().await;
    let mut bob = Browser::new();
    let bob_tokens = signed_in(&deployment, &process, &mut bob, BOB).await;
    let mut alice = Browser::new();
    let alice_tokens = signed_in(&deployment, &process, &mut alice, ALICE).await;
    let logout = format!(
        "{}/logout?id_token_hint={}",
        deployment.issuer,
        alice_tokens["id_token"].as_str().unwrap()
    );
    assert_eq!(alice.get(&logout).await.status, 200);
    let queued = Instant::now() + Duration::from_secs(10);
    while receiver.seen().is_empty() && Instant::now() < queued {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(receiver.seen().len(), 1, "the first attempt failed");
    // The failed attempt is recorded before the outage (its retry is due a second later).
    assert!(
        logout_attempts_recorded(&direct, 1).await,
        "the failed attempt is recorded within 10 s"
    );
    let refresh_token = bob_tokens["refresh_token"].as_str().unwrap().to_owned();
    let access = bob_tokens["access_token"].as_str().unwrap().to_owned();
    // Alice signs in again and is on her way back from Discord when the database goes.
    let mut returning = Browser::new();
    let authorize = deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]);
    let callback = to_callback(&deployment, &mut returning, &process, &authorize, ALICE).await;

    // Act: the database goes away while requests keep coming, for two rounds.
    proxy.cut();
    let mut during = Vec::new();
    for _ in 0..2 {
        during.extend(mixed_round(&process, &refresh_token, &access).await);
    }
    let back_from_discord = returning.get_through(&callback, &process.address).await;
    let account = bob
        .get_through(&format!("{}/account", deployment.issuer), &process.address)
        .await;
    receiver.answer(Answer::Ok);
    proxy.restore().await;
    let back = Instant::now();
    let mut ready = false;
    while !ready && back.elapsed() < Duration::from_secs(10) {
        ready = reqwest::get(format!("{}/readyz", process.address))
            .await
            .is_ok_and(|r| r.status() == 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert: during the outage, clear answers in time.
    for p in &during {
        check_during_outage(p);
    }
    assert_eq!(
        back_from_discord.status, 503,
        "the callback meets an outage page, not a fault: {}",
        back_from_discord.body
    );
    assert_eq!(
        account.status, 503,
        "the account page meets an outage page, not a fault: {}",
        account.body
    );
    // After it, without a restart: ready again, and everything committed before is there.
    assert!(ready, "ready again within 10 s of the database's return");
    let (status, body) = userinfo(&process, &access).await;
    assert_eq!(status, 200, "Bob's grant is intact: {body}");
    let (status, body) = refresh(&process, WIKI, &refresh_token).await;
    assert_eq!(
        status, 200,
        "Bob's refresh token was not spent by the outage: {body}"
    );
    let sso = bob
        .get(&deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]))
        .await;
    let location = sso.location.unwrap_or_default();
    assert!(
        location.starts_with(WIKI_REDIRECT),
        "Bob's session is intact (single sign-on, no Discord): {location}"
    );
    let delivered = Instant::now() + Duration::from_secs(15);
    while receiver.delivered() == 0 && Instant::now() < delivered {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        receiver.delivered(),
        1,
        "Alice's queued logout is delivered after the outage"
    );
}

/// Waits (up to 10 s) until the queued back-channel logout counts `attempts` failed attempts,
/// reading the database directly rather than through the proxy.
async fn logout_attempts_recorded(url: &str, attempts: i64) -> bool {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connect to the test database");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut recorded = false;
    while !recorded && Instant::now() < deadline {
        let most: Option<i64> = sqlx::query_scalar("SELECT MAX(attempts) FROM logout_deliveries")
            .fetch_one(&mut conn)
            .await
            .expect("read the logout queue");
        recorded = most.is_some_and(|n| n >= attempts);
        if !recorded {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let _ = sqlx::Connection::close(conn).await;
    recorded
}

#[tokio::test]
async fn a_full_disk_under_sqlite_gives_clear_errors_no_corruption_and_recovers_when_freed() {
    // Arrange: the database on a 16 MiB tmpfs; Bob signed in.
    let Some(disk) = SmallDisk::mount("16m") else {
        println!("skipped: cannot mount a tmpfs here (needs root), so no full disk to test");
        return;
    };
    let db_path = disk.dir.path().join("guildgate.db");
    let receiver = Receiver::start(Answer::Ok);
    let deployment = Deployment::on(
        fresh_database(Backend::Sqlite).await,
        &wiki_clients(&receiver),
    )
    .with_env("DATABASE__URL", &format!("sqlite://{}", db_path.display()));
    let mut process = deployment.start_at_issuer().await;
    let mut bob = Browser::new();
    let tokens = signed_in(&deployment, &process, &mut bob, BOB).await;
    let mut refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Act: the disk fills up. Writes go on while they fit in space SQLite already holds (a WAL
    // the checkpoint job let start over, free pages in the file), so each kind of write is
    // tried until one needs new space.
    let filler = disk.fill();
    let (mut full_status, mut full_body) = refresh(&process, WIKI, &refresh_token).await;
    for _ in 0..200 {
        if full_status != 200 {
            break;
        }
        refresh_token = full_body["refresh_token"].as_str().unwrap().to_owned();
        (full_status, full_body) = refresh(&process, WIKI, &refresh_token).await;
    }
    let mut alice = Browser::new();
    let authorize = deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]);
    let mut page = alice.get(&authorize).await;
    for _ in 0..200 {
        // 302: the pending login was written and the browser goes on to Discord.
        if page.status != 302 {
            break;
        }
        alice = Browser::new();
        page = alice.get(&authorize).await;
    }
    let (read_status, _) = userinfo(&process, tokens["access_token"].as_str().unwrap()).await;
    // ... and is freed again.
    std::fs::remove_file(&filler).expect("free the disk");
    let (freed_status, freed_body) = refresh(&process, WIKI, &refresh_token).await;
    let alice_tokens = signed_in(&deployment, &process, &mut alice, ALICE).await;

    // Assert: clear errors while full, reads unaffected, recovery without a restart.
    assert_eq!(full_status, 503, "{full_body}");
    assert_eq!(full_body["error"], "temporarily_unavailable");
    assert_eq!(
        page.status, 503,
        "a sign-in meets an error page for an outage, not a fault"
    );
    assert!(page.body.contains("try again"), "{}", page.body);
    assert_eq!(read_status, 200, "reading needs no disk space");
    assert_eq!(
        freed_status, 200,
        "the refused refresh did not spend the token: {freed_body}"
    );
    assert!(alice_tokens["access_token"].is_string());
    process.kill();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db_path);
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
        .await
        .expect("the file opens");
    let check: (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .expect("integrity check runs");
    assert_eq!(check.0, "ok", "no corruption");
}
