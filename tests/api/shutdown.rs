//! Graceful shutdown: on SIGTERM a real `guildgate serve` stops accepting connections, lets the
//! token request in flight finish with 200 and exits 0; the back-channel deliverer hands back
//! the deliveries it claimed but did not attempt.

use crate::helpers::{OTHER, spawn_app_with};
use crate::serve_process::ServeProcess;
use guildgate::store::LogoutDelivery;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WIKI: (&str, &str) = ("wiki", "wiki-secret-wiki-secret");
const WIKI_REDIRECT: &str = "https://wiki.example.com/cb";

fn wiki_toml() -> String {
    format!(
        "[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{WIKI_REDIRECT}\"]\n",
        WIKI.0, WIKI.1
    )
}

/// Reads one HTTP/1.1 response on `stream` (sent with `Connection: close`) to its end.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("the answer arrives")
        .expect("the answer is readable");
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test]
async fn sigterm_lets_the_token_request_in_flight_finish_and_exits_0() {
    // Arrange: a signed-in code, and a token request in flight: its head is sent with
    // `Expect: 100-continue` and the server has answered "100 Continue" (so it has parsed the
    // head and is waiting for the body), which the test holds back.
    let mut process = ServeProcess::start(&wiki_toml()).await;
    let code = process
        .code_for(WIKI.0, WIKI_REDIRECT, crate::helpers::ALICE)
        .await;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
        .append_pair("redirect_uri", WIKI_REDIRECT)
        .finish();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", WIKI.0, WIKI.1));
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", process.port))
        .await
        .expect("connects");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        stream
            .read_exact(&mut byte)
            .await
            .expect("an interim answer");
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );

    // Act: SIGTERM; a new request arrives while the old one is still in flight; then the rest
    // of the old one's body.
    process.signal("TERM");
    let stopping = process.log_shows("stopping: no new connections").await;
    let address = process.address.clone();
    let newcomer = tokio::spawn(async move {
        reqwest::Client::new()
            .get(format!("{address}/healthz"))
            .timeout(Duration::from_secs(20))
            .send()
            .await
    });
    stream.write_all(body.as_bytes()).await.unwrap();
    let answer = read_response(&mut stream).await;
    let status = process.exited().await;
    let newcomer = newcomer.await.expect("the task ends");
    let refused_after = TcpStream::connect(("127.0.0.1", process.port))
        .await
        .is_err();

    // Assert
    assert!(stopping, "{}", process.log());
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the request in flight completes: {answer} {}",
        process.log()
    );
    assert!(answer.contains("\"id_token\""), "{answer}");
    assert!(
        newcomer.as_ref().is_err_and(reqwest::Error::is_connect),
        "a connection made after SIGTERM is refused, not left waiting: {newcomer:?}"
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exits 0: {}",
        process.log()
    );
    assert!(refused_after);
}

#[tokio::test]
async fn sigint_stops_gracefully_too_and_removes_the_pid_file() {
    // Arrange
    let mut process = ServeProcess::start("").await;

    // Act
    process.signal("INT");
    let status = process.exited().await;

    // Assert
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", process.log());
    assert!(!process.pid_file.exists(), "the pid file is removed");
}

#[tokio::test]
async fn a_stopping_deliverer_hands_back_the_deliveries_it_claimed_but_did_not_send() {
    // Arrange: two back-channel logouts are due; the receiver of the first one stops the
    // process's jobs (as SIGTERM would) while the deliverer is between them.
    let app = spawn_app_with("").await;
    let state = app.state.clone();
    let (uri, seen) = stopping_receiver(state.clone()).await;
    let now = app.state.clock.now();
    let delivery = |id: &str| LogoutDelivery {
        id: id.to_owned(),
        client_id: crate::helpers::client_id(OTHER),
        session_id: None,
        user_id: crate::helpers::discord_id(crate::helpers::ALICE),
        uri: uri.clone(),
        logout_token: format!(
            r#"{{"iss":"{}","aud":"{OTHER}","sub":"x","iat":0,"exp":0,"jti":"{id}","events":{{"http://schemas.openid.net/event/backchannel-logout":{{}}}}}}"#,
            app.address
        ),
        attempts: 0,
        next_attempt_at: now - time::Duration::seconds(1),
        created_at: now - time::Duration::seconds(1),
    };
    app.state
        .store
        .enqueue_logout_deliveries(&[delivery("first"), delivery("second")])
        .await
        .unwrap();

    // Act
    let attempted = guildgate::jobs::deliver_due_logouts(&app.state)
        .await
        .unwrap();
    // Another process looks right after, well within the 30 s lease (its clock, not the one
    // read before the deliveries were queued: the second may have turned meanwhile).
    let claimable = app
        .state
        .store
        .claim_logout_deliveries(app.state.clock.now(), Duration::from_secs(30), 10)
        .await
        .unwrap();

    // Assert
    assert_eq!(attempted, 1, "one delivery was sent before the stop");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(
        claimable.len(),
        1,
        "the unsent delivery is back in the queue at once, not leased for 30 s"
    );
    assert_eq!(claimable[0].attempts, 0, "handing back is not an attempt");
}

/// A back-channel receiver that records each delivery and stops the app's jobs at the first.
async fn stopping_receiver(
    state: actix_web::web::Data<guildgate::state::AppState>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let url = format!(
        "http://127.0.0.1:{}/bc",
        listener.local_addr().expect("local addr").port()
    );
    let server = actix_web::HttpServer::new(move || {
        let recorded = recorded.clone();
        let state = state.clone();
        actix_web::App::new().route(
            "/bc",
            actix_web::web::post().to(move |body: actix_web::web::Bytes| {
                let recorded = recorded.clone();
                let state = state.clone();
                async move {
                    recorded
                        .lock()
                        .expect("receiver lock")
                        .push(String::from_utf8_lossy(&body).into_owned());
                    state.stopping.stop();
                    actix_web::HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("receiver listens")
    .run();
    tokio::spawn(server);
    (url, seen)
}
