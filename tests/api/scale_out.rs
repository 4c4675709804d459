//! Two `guildgate serve` processes of one deployment (one Postgres database, one keys folder):
//! every step of a person's sign-in, token use and logout may land on either process, key
//! rotation reaches both, and a refresh token raced to both is spent once.

use crate::browser::Browser;
use crate::helpers::BOB;
use crate::processes::{
    Answer, BOUND, Deployment, Process, Receiver, code_of, free_port, metric, postgres_or_skip,
    redeem, refresh, refused_after, to_callback, userinfo,
};
use crate::test_db::Backend;
use std::time::{Duration, Instant};

const WIKI: (&str, &str) = ("wiki", "wiki-secret-wiki-secret");
const WIKI_REDIRECT: &str = "https://wiki.example.com/cb";
/// Back-channel logouts waiting in the (shared) queue.
const QUEUED: &str = "guildgate_backchannel_logout_queue";
/// Back-channel logouts one process delivered.
const DELIVERED: &str = r#"guildgate_backchannel_logout_deliveries_total{outcome="delivered"}"#;

/// The deployment: the wiki with a back-channel logout receiver, keys re-read every second.
async fn deployment(receiver: &Receiver) -> Deployment {
    let clients = format!(
        "[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{WIKI_REDIRECT}\"]\n\
         refresh_tokens = true\nbackchannel_logout_uri = \"{}\"\n",
        WIKI.0, WIKI.1, receiver.url
    );
    Deployment::new(Backend::Postgres, &clients)
        .await
        .with_env("KEYS__RELOAD_EVERY", "1s")
}

/// Starts A (at the issuer's address) and B at the same moment, on the empty keys folder.
async fn both(deployment: &Deployment) -> (Process, Process) {
    tokio::join!(deployment.start_at_issuer(), deployment.start(free_port()))
}

/// The `kid`s a process publishes in its JWKS.
async fn published_kids(process: &Process) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(format!("{}/jwks.json", process.address))
        .await
        .expect("jwks answers")
        .json()
        .await
        .expect("a JWKS document");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

/// Verifies an ID token the way an app does, against `process`'s JWKS; returns its claims.
async fn verify_with(process: &Process, issuer: &str, id_token: &str) -> serde_json::Value {
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{}/jwks.json", process.address))
        .await
        .expect("jwks answers")
        .json()
        .await
        .expect("a JWKS document");
    let header = jsonwebtoken::decode_header(id_token).expect("a JWT");
    let kid = header.kid.expect("a kid");
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("{} does not publish {kid}", process.address));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("an RSA key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[WIKI.0]);
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<serde_json::Value>(id_token, &key, &validation)
        .expect("the ID token verifies")
        .claims
}

#[tokio::test]
async fn a_sign_in_whose_every_step_lands_on_another_process_works_and_logs_out_once() {
    if !postgres_or_skip("the scale-out test") {
        return;
    }
    // Arrange: A listens at the issuer's address, B elsewhere; the wiki's receiver answers.
    let receiver = Receiver::start(Answer::Ok);
    let deployment = deployment(&receiver).await;
    let (a, b) = both(&deployment).await;
    let mut browser = Browser::new();
    let authorize = deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]);

    // Act: /authorize on A, Discord's callback on B, the code redeemed on A, refresh on B,
    // userinfo on A, RP-initiated logout on B.
    let callback = to_callback(&deployment, &mut browser, &a, &authorize, BOB).await;
    let done = browser.get_through(&callback, &b.address).await;
    let to_app = done
        .location
        .unwrap_or_else(|| panic!("B completes the sign-in: {} {}", done.status, done.body));
    let (status, tokens) = redeem(&a, WIKI, &code_of(&to_app), WIKI_REDIRECT).await;
    assert_eq!(status, 200, "A redeems B's code: {tokens}");
    let (status, refreshed) = refresh(&b, WIKI, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "B refreshes A's grant: {refreshed}");
    let (status, claims) = userinfo(&a, refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "A accepts B's access token: {claims}");
    assert_eq!(claims["sub"], BOB);
    let logout = format!(
        "{}/logout?id_token_hint={}",
        deployment.issuer,
        tokens["id_token"].as_str().unwrap()
    );
    let ended_at = Instant::now();
    let page = browser.get_through(&logout, &b.address).await;
    assert_eq!(page.status, 200, "the signed-out page: {}", page.body);
    assert!(
        page.body.contains("signed out"),
        "B ends the session: {}",
        page.body
    );

    // Assert: one delivery, though both processes run the deliverer (each polls every second).
    // Settled once the logout has left the queue (no process can claim it again) and every
    // POST the receiver saw is one a process counted as delivered (none is still on its way).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut settled = false;
    while !settled && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (queued, by_a, by_b) = tokio::join!(
            metric(&a, QUEUED),
            metric(&a, DELIVERED),
            metric(&b, DELIVERED)
        );
        let counted = by_a.unwrap_or(0.0) + by_b.unwrap_or(0.0);
        let seen = receiver.seen().len();
        settled = seen > 0 && queued == Some(0.0) && counted == seen as f64;
    }
    assert!(settled, "the logout left the queue within 10 s");
    assert_eq!(
        receiver.seen().len(),
        1,
        "the back-channel logout is delivered exactly once"
    );
    // A learns of the logout from the change feed, within the bound the README states.
    let after = refused_after(&a, refreshed["access_token"].as_str().unwrap(), ended_at).await;
    assert!(
        after <= BOUND,
        "the session's tokens end with it: A refused them {after:?} after the logout"
    );
}

#[tokio::test]
async fn a_key_added_by_keys_rotate_is_published_by_every_process_within_the_reload_interval() {
    if !postgres_or_skip("the scale-out test") {
        return;
    }
    // Arrange
    let receiver = Receiver::start(Answer::Ok);
    let deployment = deployment(&receiver).await;
    let (a, b) = both(&deployment).await;
    let before = published_kids(&a).await;
    assert_eq!(
        before,
        published_kids(&b).await,
        "one key folder, one JWKS, though both started on an empty folder at once"
    );

    // Act: the admin rotates; both processes re-read the folder every second.
    deployment.keys_rotate();
    let rotated = Instant::now();
    let mut both = false;
    while !both && rotated.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (ka, kb) = tokio::join!(published_kids(&a), published_kids(&b));
        both = ka.len() > before.len() && ka == kb;
    }
    let took = rotated.elapsed();
    // A key file is named for the second it activates in: when the processes wrote the first
    // key in the same second as the rotation, the new one activates a second later, and a
    // process signs with it from its first reload after that second (1 s here). So sign in
    // until A's ID token names a new key, within that second, a reload and a poll.
    let mut tokens;
    let mut kid;
    loop {
        let mut browser = Browser::new();
        let authorize = deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]);
        let callback = to_callback(&deployment, &mut browser, &a, &authorize, BOB).await;
        let done = browser.get_through(&callback, &a.address).await;
        let status;
        (status, tokens) = redeem(
            &a,
            WIKI,
            &code_of(&done.location.expect("to the app")),
            WIKI_REDIRECT,
        )
        .await;
        assert_eq!(status, 200, "{tokens}");
        let id_token = tokens["id_token"].as_str().unwrap();
        kid = jsonwebtoken::decode_header(id_token).unwrap().kid.unwrap();
        if !before.contains(&kid) || rotated.elapsed() > Duration::from_secs(4) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert
    assert!(
        both,
        "both JWKS publish the new key within the reload interval (1 s) plus a poll"
    );
    assert!(took < Duration::from_secs(3), "published after {took:?}");
    assert!(
        !before.contains(&kid),
        "A signs with the new key within its activation second, a reload and a poll"
    );
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = verify_with(&b, &deployment.issuer, id_token).await;
    assert_eq!(claims["sub"], BOB, "A's token verifies with B's JWKS");
}

#[tokio::test]
async fn one_refresh_token_sent_to_both_processes_at_once_succeeds_once_and_revokes_the_family() {
    if !postgres_or_skip("the scale-out test") {
        return;
    }
    // Arrange
    let receiver = Receiver::start(Answer::Ok);
    let deployment = deployment(&receiver).await;
    let (a, b) = both(&deployment).await;
    let mut browser = Browser::new();
    let authorize = deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]);
    let callback = to_callback(&deployment, &mut browser, &a, &authorize, BOB).await;
    let done = browser.get_through(&callback, &b.address).await;
    let (_, tokens) = redeem(
        &b,
        WIKI,
        &code_of(&done.location.expect("to the app")),
        WIKI_REDIRECT,
    )
    .await;
    let token = tokens["refresh_token"].as_str().expect("a refresh token");

    // Act
    let (on_a, on_b) = tokio::join!(refresh(&a, WIKI, token), refresh(&b, WIKI, token));

    // Assert
    let answers = [&on_a, &on_b];
    let winners: Vec<_> = answers.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(winners.len(), 1, "exactly one success: {on_a:?} {on_b:?}");
    let loser = answers.iter().find(|(s, _)| *s != 200).unwrap();
    assert_eq!(loser.0, 400, "{loser:?}");
    assert_eq!(loser.1["error"], "invalid_grant", "{loser:?}");
    let next = winners[0].1["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&a, WIKI, next).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "reuse revoked the family, the winner's new token too: {body}"
    );
    let (status, _) = userinfo(&b, winners[0].1["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 401, "and the access token of the family");
}
