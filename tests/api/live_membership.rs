//! Live membership with the optional bot: memberships read with the bot token (no guild scopes
//! asked of people), and a kick, a ban or a lost role on the (fake) Discord Gateway ends the
//! right grants and reaches the apps by back-channel logout within 5 seconds.

use crate::browser::Browser;
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, BOB, Rp, TestApp, client_toml, eventually, refresh_as, settings_for, spawn_app_with,
    tokens_via,
};
use crate::logout::receiver;
use crate::processes::{Deployment, Process, free_port};
use crate::test_db::Backend;
use crate::test_db::{POSTGRES_URL_VAR, fresh_database};
use guildgate::discord::fake::{FakeData, FakeDiscord, FakeRoute};
use guildgate::discord::gateway::ConnectionState;
use guildgate::startup::Application;
use guildgate::state::Clock;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COMMUNITY: &str = "812345678901234567";
const PARTNERS: &str = "903377456278183956";
const MEMBER_ROLE: &str = "845611212939132928";
const STAFF_ROLE: &str = "845611301132730378";

/// Gated on the community server.
const WIKI: Rp = Rp {
    id: "wiki",
    secret: "wiki-secret-wiki-secret",
    redirect: "https://wiki.example.com/cb",
};
/// Gated on the community server's Staff role.
const ADMIN: Rp = Rp {
    id: "admin",
    secret: "admin-secret-admin-secret",
    redirect: "https://admin.example.com/cb",
};
/// Gated on the partner server.
const LOUNGE: Rp = Rp {
    id: "lounge",
    secret: "lounge-secret-lounge-secret",
    redirect: "https://lounge.example.com/cb",
};

/// The deadline the issue sets from the Discord event to the back-channel logout POST.
const DEADLINE: Duration = Duration::from_secs(5);

fn bot_token() -> String {
    FakeData::demo().expect("demo data").bot_token
}

/// A deployment with a bot and no guild scopes asked of people: everyone must be in the
/// community or the partner server; three apps narrow that, each with a back-channel URI.
fn config(backchannel: &str) -> String {
    let bc = format!("backchannel_logout_uri = \"{backchannel}\"\nrefresh_tokens = true");
    format!(
        r#"
[discord]
scopes = ["identify", "email"]

[discord.bot]
token = "{token}"

[access]
allowed_guilds = ["{COMMUNITY}", "{PARTNERS}"]
{wiki}
{admin}
{lounge}
"#,
        token = bot_token(),
        wiki = client_toml(WIKI, &format!("allowed_guilds = [\"{COMMUNITY}\"]\n{bc}")),
        admin = client_toml(
            ADMIN,
            &format!("required_roles = [\"{COMMUNITY}:{STAFF_ROLE}\"]\n{bc}")
        ),
        lounge = client_toml(LOUNGE, &format!("allowed_guilds = [\"{PARTNERS}\"]\n{bc}")),
    )
}

type Seen = Arc<Mutex<Vec<String>>>;

/// Starts guildgate with the bot and a back-channel receiver, and waits for the Gateway.
async fn spawn() -> (TestApp, Seen) {
    let (bc, seen) = receiver(0).await;
    let app = spawn_app_with(&config(&bc)).await;
    assert!(
        eventually(5, || app.state.gateway.state()
            == ConnectionState::Connected)
        .await,
        "the bot connects to the Gateway: {:?}",
        app.state.gateway.snapshot()
    );
    (app, seen)
}

/// `user` signs in to each app in one browser (one SSO session); the refresh tokens by app.
async fn sign_in(app: &TestApp, user: &str, rps: &[Rp]) -> Vec<String> {
    let mut browser = Browser::new();
    let mut tokens = Vec::new();
    for rp in rps {
        let reply = tokens_via(app, &mut browser, *rp, &[("state", "s")], user).await;
        tokens.push(reply.text("refresh_token"));
    }
    tokens
}

/// The audiences of the logout tokens received so far.
fn logged_out(seen: &Seen) -> Vec<String> {
    seen.lock()
        .expect("receiver lock")
        .iter()
        .map(|t| {
            decode_payload(t)["aud"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Waits (at most the deadline) until `app_id` has been told; returns how long it took.
async fn told_within_deadline(seen: &Seen, app_id: &str, since: Instant) -> Duration {
    told_within(seen, app_id, since, DEADLINE).await
}

/// Waits (at most `deadline`) until `app_id` has been told; returns how long it took.
async fn told_within(seen: &Seen, app_id: &str, since: Instant, deadline: Duration) -> Duration {
    let told = eventually(deadline.as_secs(), || {
        logged_out(seen).iter().any(|aud| aud == app_id)
    })
    .await;
    let took = since.elapsed();
    assert!(
        told && took < deadline,
        "{app_id} told by back-channel logout within {deadline:?} (took {took:?}; told: {:?})",
        logged_out(seen)
    );
    println!("{app_id}: Gateway event -> back-channel logout POST in {took:?}");
    took
}

#[tokio::test]
async fn role_rules_are_read_with_the_bot_token_without_asking_people_for_guild_scopes() {
    // Arrange
    let (app, _seen) = spawn().await;

    // Act
    let bob = sign_in(&app, BOB, &[ADMIN]).await;

    // Assert: Bob's Staff role was read by the bot; no person's token touched guild routes.
    assert_eq!(bob.len(), 1, "Bob, staff, enters the admin app");
    assert!(app.discord.calls(FakeRoute::BotMember) >= 1);
    assert_eq!(app.discord.calls(FakeRoute::Member), 0);
    assert_eq!(app.discord.calls(FakeRoute::Guilds), 0);
}

#[tokio::test]
async fn a_kick_from_the_only_server_signs_the_person_out_everywhere_within_five_seconds() {
    // Arrange: Alice (community only) uses the wiki.
    let (app, seen) = spawn().await;
    let tokens = sign_in(&app, ALICE, &[WIKI]).await;

    // Act
    let kicked = Instant::now();
    assert!(app.discord.kick(ALICE, COMMUNITY));

    // Assert
    told_within_deadline(&seen, WIKI.id, kicked).await;
    let refused = refresh_as(&app, WIKI, &tokens[0], None).await;
    assert_eq!(refused.error(), "invalid_grant", "{}", refused.body);
    let sessions = app
        .state
        .store
        .list_sessions(
            Some(&crate::helpers::discord_id(ALICE)),
            app.state.clock.now(),
        )
        .await
        .expect("sessions");
    assert!(sessions.is_empty(), "her SSO session ended too");
    let scrape = scrape_until(&app, "guildgate_live_membership_deprovisionings_total 1").await;
    assert!(
        scrape.contains("guildgate_live_membership_connection{state=\"connected\"} 1"),
        "{scrape}"
    );
    assert!(
        scrape.contains("guildgate_live_membership_events_total{type=\"member_remove\"} 1"),
        "{scrape}"
    );
}

/// `/metrics` once it contains `line` (the counters catch up with the Gateway status at each
/// scrape), or after two seconds as it is then.
async fn scrape_until(app: &TestApp, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let scrape = app.get("/metrics").await.text().await.expect("the scrape");
        if scrape.contains(line) || Instant::now() > deadline {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_ban_ends_the_apps_of_that_server_only_within_five_seconds() {
    // Arrange: Bob is in both servers and uses the wiki (community) and the lounge (partners).
    let (app, seen) = spawn().await;
    let tokens = sign_in(&app, BOB, &[WIKI, LOUNGE]).await;

    // Act
    let banned = Instant::now();
    assert!(app.discord.ban(BOB, COMMUNITY));

    // Assert
    told_within_deadline(&seen, WIKI.id, banned).await;
    let wiki = refresh_as(&app, WIKI, &tokens[0], None).await;
    assert_eq!(wiki.error(), "invalid_grant", "{}", wiki.body);
    let lounge = refresh_as(&app, LOUNGE, &tokens[1], None).await;
    assert_eq!(
        lounge.status, 200,
        "the partner app is unaffected: {}",
        lounge.body
    );
    assert!(
        !logged_out(&seen).iter().any(|aud| aud == LOUNGE.id),
        "the lounge is not told"
    );
    assert_eq!(app.state.gateway.snapshot().ban_add_events, 1);
}

#[tokio::test]
async fn losing_a_role_ends_only_the_apps_that_need_it_within_five_seconds() {
    // Arrange: Bob uses the admin app (Staff role) and the wiki (membership).
    let (app, seen) = spawn().await;
    let tokens = sign_in(&app, BOB, &[ADMIN, WIKI]).await;

    // Act: a moderator takes the Staff role away.
    let demoted = Instant::now();
    assert!(app.discord.update_roles(BOB, COMMUNITY, &[MEMBER_ROLE]));

    // Assert
    told_within_deadline(&seen, ADMIN.id, demoted).await;
    let admin = refresh_as(&app, ADMIN, &tokens[0], None).await;
    assert_eq!(admin.error(), "invalid_grant", "{}", admin.body);
    let wiki = refresh_as(&app, WIKI, &tokens[1], None).await;
    assert_eq!(wiki.status, 200, "the wiki needs no role: {}", wiki.body);
    assert_eq!(logged_out(&seen), vec![ADMIN.id.to_owned()]);
}

#[tokio::test]
async fn a_dropped_gateway_connection_resumes_and_still_delivers_the_event_sent_meanwhile() {
    // Arrange
    let (app, seen) = spawn().await;
    sign_in(&app, ALICE, &[WIKI]).await;

    // Act: the connection drops; the kick happens before the bot is back.
    app.discord.gateway_drop_connections();
    let kicked = Instant::now();
    app.discord.kick(ALICE, COMMUNITY);

    // Assert
    told_within_deadline(&seen, WIKI.id, kicked).await;
    let counts = app.discord.gateway_counts();
    assert_eq!(counts.identifies, 1, "one session: {counts:?}");
    assert!(counts.resumes >= 1, "the bot resumed: {counts:?}");
}

#[tokio::test]
async fn after_an_invalid_session_the_bot_identifies_again_and_catches_up_on_missed_removals() {
    // Arrange: Alice uses the wiki; then Discord forgets the bot's session while she is kicked
    // without an event reaching anyone (as during a long outage).
    let (app, seen) = spawn().await;
    sign_in(&app, ALICE, &[WIKI]).await;
    app.discord.remove_from_guild(ALICE, COMMUNITY);

    // Act
    let invalidated = Instant::now();
    app.discord.gateway_invalidate_session(false);

    // Assert: the new session's catch-up finds she left. Discord asks a client to wait 1-5 s
    // before identifying after an invalid session, so this is no 5-second event path.
    told_within(&seen, WIKI.id, invalidated, Duration::from_secs(10)).await;
    assert!(app.discord.gateway_counts().identifies >= 2);
    assert!(app.state.gateway.snapshot().catch_ups >= 2);
}

#[tokio::test]
async fn without_the_gateway_sign_ins_work_and_readyz_shows_the_state_while_ready() {
    // Arrange: the Gateway URL points at a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("ws://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let (bc, _seen) = receiver(0).await;
    let toml = config(&bc).replace(
        "[discord.bot]\n",
        &format!("[discord.bot]\ngateway_url = \"{dead}\"\n"),
    );
    let app = spawn_app_with(&toml).await;

    // Act
    let tokens = sign_in(&app, BOB, &[ADMIN]).await;
    // The process reports `standby` until it holds the Gateway's lock, which a busy machine
    // may take a moment to give it: read `/readyz` until it reports something else (10 s).
    let mut answers = Vec::new();
    for _ in 0..100 {
        let ready = app.get("/readyz").await;
        let status = ready.status();
        let body: serde_json::Value = ready.json().await.expect("JSON");
        let standby = body["live_membership"]["state"] == "standby";
        answers.push((status, body));
        if !standby {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert
    assert_eq!(tokens.len(), 1, "Bob signs in");
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "ready without the Gateway, whatever its state: {answers:?}"
    );
    let body = &answers.last().expect("one answer").1;
    let state = body["live_membership"]["state"]
        .as_str()
        .unwrap_or_default();
    assert!(
        matches!(state, "connecting" | "disconnected"),
        "the connection state is a detail: {body}"
    );
    assert_eq!(app.discord.gateway_counts().connections, 0);
}

#[tokio::test]
async fn a_bot_token_discord_refuses_stops_start_up_with_a_clear_message() {
    // Arrange: a well-formed token that is not the bot's.
    let db = fresh_database(crate::helpers::backend()).await;
    let keys = tempfile::tempdir().expect("keys");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let discord = FakeDiscord::start(FakeData::demo().expect("demo")).expect("fake");
    let toml =
        format!("[discord.bot]\ntoken = \"MTIz.bm90.dGhlLWJvdA\"\nguilds = [\"{COMMUNITY}\"]\n");
    let mut settings = settings_for(&db.url, keys.path(), &issuer, &toml);
    settings.discord.client_id = discord.client_id();
    settings.discord.client_secret = discord.client_secret().into();
    settings.discord.authorize_url = discord.authorize_url().to_string();
    settings.discord.api_base_url = discord.api_base_url().to_string();

    // Act
    let result = Application::build_with_listener(settings, Clock::default(), Some(listener)).await;

    // Assert
    let message = match result {
        Ok(_) => panic!("start-up must stop"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains("discord.bot.token") && message.contains("refused"),
        "{message}"
    );
    assert!(
        !message.contains("dGhlLWJvdA"),
        "the token is never shown: {message}"
    );
}

/// The `live_membership.state` a process reports at `/readyz`.
async fn live_state(process: &Process) -> String {
    let body: serde_json::Value = reqwest::get(format!("{}/readyz", process.address))
        .await
        .expect("readyz")
        .json()
        .await
        .unwrap_or_default();
    body["live_membership"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Polls (every 100 ms, at most `seconds`) until the process reports `state`.
async fn reaches(process: &Process, state: &str, seconds: u64) -> bool {
    for _ in 0..seconds * 10 {
        if live_state(process).await == state {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn on_postgres_one_process_holds_the_gateway_and_another_takes_over_when_it_dies() {
    if std::env::var_os(POSTGRES_URL_VAR).is_none() {
        println!("skipped: several processes need Postgres ({POSTGRES_URL_VAR} is not set)");
        return;
    }
    // Arrange: two real processes of one deployment with a bot; an app with a back-channel URI.
    let (bc, seen) = receiver(0).await;
    let deployment = Deployment::new_with(Backend::Postgres, |discord| {
        format!(
            "[[clients]]\nid = \"board\"\nsecret = \"board-secret-board-secret\"\n\
             redirect_uris = [\"https://board.example.com/cb\"]\n\
             allowed_guilds = [\"{COMMUNITY}\"]\nbackchannel_logout_uri = \"{bc}\"\n\
             [discord.bot]\ntoken = \"{token}\"\ngateway_url = \"{url}\"\n",
            token = discord.bot_token(),
            url = discord.gateway_url(),
        )
    })
    .await;
    let mut a = deployment.start_at_issuer().await;
    assert!(reaches(&a, "connected", 10).await, "A connects first");
    let b = deployment.start(free_port()).await;
    assert!(reaches(&b, "standby", 10).await, "B stands by");
    assert_eq!(
        deployment.discord.gateway_counts().identifies,
        1,
        "one connection"
    );
    let url = format!(
        "{}/authorize?client_id=board&redirect_uri=https://board.example.com/cb\
         &response_type=code&scope=openid&state=s",
        deployment.issuer
    );
    let page = authorize_page_at(&deployment, &url, ALICE).await;
    let location = page.location.clone().unwrap_or_default();
    let code = crate::browser::query_of(&location)
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("Alice enters the board: {} {}", page.status, page.body));
    let redeemed = reqwest::Client::new()
        .post(format!("{}/token", b.address))
        .basic_auth("board", Some("board-secret-board-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "https://board.example.com/cb"),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(redeemed.status(), 200, "the board redeems the code");

    // Act: A dies without a word; B takes over; then a moderator kicks Alice.
    a.kill();
    assert!(reaches(&b, "connected", 10).await, "B takes over");
    let kicked = Instant::now();
    deployment.discord.kick(ALICE, COMMUNITY);

    // Assert
    told_within_deadline(&seen, "board", kicked).await;
    assert_eq!(
        deployment.discord.gateway_counts().identifies,
        2,
        "exactly one more connection: B's"
    );
}

/// Sends a fresh browser to `url` at the deployment; signs in at the fake Discord as `user`.
async fn authorize_page_at(deployment: &Deployment, url: &str, user: &str) -> crate::browser::Page {
    let mut browser = Browser::new();
    let first = browser.get(url).await;
    let Some(to_discord) = first
        .location
        .clone()
        .filter(|l| l.starts_with(deployment.discord.base_url().as_str()))
    else {
        return first;
    };
    deployment.discord.sign_in_as(Some(user));
    let back = browser.get(&to_discord).await;
    browser
        .get(&back.location.expect("Discord redirects back"))
        .await
}
