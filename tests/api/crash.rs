//! A process killed outright (SIGKILL, no shutdown work) loses nothing another process of the
//! deployment cannot finish: a sign-in it started, a back-channel logout it was delivering.

use crate::browser::Browser;
use crate::helpers::BOB;
use crate::processes::{
    Answer, Deployment, Receiver, code_of, free_port, postgres_or_skip, redeem, to_callback,
};
use crate::test_db::Backend;
use std::time::{Duration, Instant};

const WIKI: (&str, &str) = ("wiki", "wiki-secret-wiki-secret");
const WIKI_REDIRECT: &str = "https://wiki.example.com/cb";
/// `jobs.logout_lease` in these tests (each delivery attempt is cut off at a quarter of it).
const LEASE: Duration = Duration::from_secs(8);

async fn deployment(receiver: &Receiver) -> Deployment {
    let clients = format!(
        "[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{WIKI_REDIRECT}\"]\n\
         refresh_tokens = true\nbackchannel_logout_uri = \"{}\"\n",
        WIKI.0, WIKI.1, receiver.url
    );
    Deployment::new(Backend::Postgres, &clients)
        .await
        .with_env("JOBS__LOGOUT_LEASE", &format!("{}s", LEASE.as_secs()))
}

#[tokio::test]
async fn a_sign_in_started_on_a_process_killed_before_the_callback_completes_on_another() {
    if !postgres_or_skip("the crash test") {
        return;
    }
    // Arrange: the browser is sent to Discord by A (the pending login is in the database).
    let receiver = Receiver::start(Answer::Ok);
    let deployment = deployment(&receiver).await;
    let mut a = deployment.start_at_issuer().await;
    let b = deployment.start(free_port()).await;
    let mut browser = Browser::new();
    let authorize = deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]);
    let to_discord = browser.get_through(&authorize, &a.address).await;
    let discord_url = to_discord.location.expect("A redirects to Discord");

    // Act: A dies; Discord sends the browser back, and the balancer picks B.
    a.kill();
    deployment.discord.sign_in_as(Some(BOB));
    let callback = browser
        .get(&discord_url)
        .await
        .location
        .expect("Discord redirects back");
    let done = browser.get_through(&callback, &b.address).await;

    // Assert
    let to_app = done
        .location
        .unwrap_or_else(|| panic!("B completes the sign-in: {} {}", done.status, done.body));
    assert!(to_app.starts_with(WIKI_REDIRECT), "{to_app}");
    let (status, tokens) = redeem(&b, WIKI, &code_of(&to_app), WIKI_REDIRECT).await;
    assert_eq!(status, 200, "{tokens}");
}

#[tokio::test]
async fn a_logout_claimed_by_a_process_that_died_is_delivered_by_another_after_the_lease() {
    if !postgres_or_skip("the crash test") {
        return;
    }
    // Arrange: Bob signs in on A; the wiki's receiver holds every request open for now.
    let receiver = Receiver::start(Answer::Hang);
    let deployment = deployment(&receiver).await;
    let mut a = deployment.start_at_issuer().await;
    let mut browser = Browser::new();
    let authorize = deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]);
    let callback = to_callback(&deployment, &mut browser, &a, &authorize, BOB).await;
    let done = browser.get(&callback).await;
    let (_, tokens) = redeem(
        &a,
        WIKI,
        &code_of(&done.location.expect("to the app")),
        WIKI_REDIRECT,
    )
    .await;
    let logout = format!(
        "{}/logout?id_token_hint={}",
        deployment.issuer,
        tokens["id_token"].as_str().expect("an ID token")
    );
    assert_eq!(browser.get(&logout).await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.seen().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        receiver.seen().len(),
        1,
        "A claimed the delivery and is sending it"
    );
    let claimed = Instant::now();

    // Act: A is killed in the middle of its attempt (which it would give up after a quarter of
    // the lease), the receiver recovers, B starts.
    a.kill();
    assert!(
        claimed.elapsed() < LEASE / 4,
        "A was killed while its attempt was in flight"
    );
    receiver.answer(Answer::Ok);
    let b = deployment.start(free_port()).await;
    let deadline = claimed + LEASE + Duration::from_secs(6);
    while receiver.delivered() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert: B delivered it, and not before A's lease ran out.
    let waited = claimed.elapsed();
    assert_eq!(
        receiver.delivered(),
        1,
        "B delivers the logout after the lease ({LEASE:?}); waited {waited:?}\n{}",
        b.log()
    );
    assert!(
        waited >= LEASE - Duration::from_secs(1),
        "B left the delivery to A while A's lease ran: delivered after {waited:?}"
    );
    let (first, _) = &receiver.seen()[0];
    let (last, _) = receiver.seen().last().cloned().expect("a delivery");
    assert_ne!(first, &last, "each attempt is signed afresh");
}
