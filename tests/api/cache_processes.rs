//! Two `guildgate serve` processes on Postgres, each answering `/userinfo` from memory: a
//! revocation, a logout or a deprovisioning made through one process ends the token at the
//! other within the second the README promises; so does a signing key the admin revokes. On
//! SQLite one process answers from memory too, and an admin command run beside it on the same
//! file reaches it within the same second.

use crate::browser::Browser;
use crate::helpers::BOB;
use crate::processes::{
    BOUND, Deployment, Process, code_of, free_port, post_form, postgres_or_skip, redeem,
    refused_after, to_callback, userinfo,
};
use crate::test_db::Backend;
use std::time::Instant;

const WIKI: (&str, &str) = ("wiki", "wiki-secret-wiki-secret");
const WIKI_REDIRECT: &str = "https://wiki.example.com/cb";

async fn deployment() -> Deployment {
    deployment_on(Backend::Postgres).await
}

async fn deployment_on(backend: Backend) -> Deployment {
    let clients = format!(
        "[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{WIKI_REDIRECT}\"]\n\
         refresh_tokens = true\n",
        WIKI.0, WIKI.1
    );
    Deployment::new(backend, &clients).await
}

/// Bob signs in through A in `browser`; his tokens.
async fn tokens(deployment: &Deployment, a: &Process, browser: &mut Browser) -> serde_json::Value {
    let authorize = deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]);
    let callback = to_callback(deployment, browser, a, &authorize, BOB).await;
    let done = browser.get_through(&callback, &a.address).await;
    let location = done.location.expect("back to the wiki");
    let (status, tokens) = redeem(a, WIKI, &code_of(&location), WIKI_REDIRECT).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[tokio::test]
async fn a_token_revoked_through_one_process_is_refused_by_the_other_within_a_second() {
    if !postgres_or_skip("the cache's cross-process test") {
        return;
    }
    // Arrange: B has answered /userinfo for the token (and keeps the answer in memory).
    let deployment = deployment().await;
    let (a, b) = tokio::join!(deployment.start_at_issuer(), deployment.start(free_port()));
    let tokens = tokens(&deployment, &a, &mut Browser::new()).await;
    let access = tokens["access_token"].as_str().expect("an access token");
    for _ in 0..3 {
        assert_eq!(userinfo(&b, access).await.0, 200);
    }

    // Act: the app revokes its refresh token (the whole grant) at A.
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let revoked_at = Instant::now();
    let (status, _) = post_form(&a, "/revoke", WIKI, &[("token", refresh)]).await;
    assert_eq!(status, 200);

    // Assert
    let after = refused_after(&b, access, revoked_at).await;
    assert!(
        after <= BOUND,
        "B refused the token {after:?} after the revocation"
    );
    assert_eq!(userinfo(&a, access).await.0, 401, "A at once");
}

#[tokio::test]
async fn a_logout_through_one_process_ends_the_sessions_tokens_at_the_other_within_a_second() {
    if !postgres_or_skip("the cache's cross-process test") {
        return;
    }
    // Arrange
    let deployment = deployment().await;
    let (a, b) = tokio::join!(deployment.start_at_issuer(), deployment.start(free_port()));
    let mut browser = Browser::new();
    let tokens = tokens(&deployment, &a, &mut browser).await;
    let access = tokens["access_token"].as_str().expect("an access token");
    assert_eq!(userinfo(&b, access).await.0, 200);

    // Act: RP-initiated logout at A with the ID token as hint, in Bob's browser.
    let logout = format!(
        "{}/logout?id_token_hint={}",
        deployment.issuer,
        tokens["id_token"].as_str().expect("an ID token")
    );
    let ended_at = Instant::now();
    let page = browser.get_through(&logout, &a.address).await;
    assert_eq!(page.status, 200, "{}", page.body);

    // Assert
    let after = refused_after(&b, access, ended_at).await;
    assert!(
        after <= BOUND,
        "B refused the token {after:?} after the logout"
    );
}

/// The admin revokes the key that signed `access` from a process of its own, told that running
/// processes re-read the folder within a second; when the command returned.
fn revoke_the_key_that_signed(deployment: &Deployment, access: &str) -> Instant {
    let kid = jsonwebtoken::decode_header(access)
        .expect("a JWT")
        .kid
        .expect("a kid");
    let out = deployment.keys(&["revoke", &kid]);
    let revoked_at = Instant::now();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("within a second"), "{stdout}");
    revoked_at
}

#[tokio::test]
async fn a_key_revoked_by_the_admin_is_refused_by_every_process_within_a_second() {
    if !postgres_or_skip("the cache's cross-process test") {
        return;
    }
    // Arrange: each process re-reads the keys folder only every 60 s by itself.
    let deployment = deployment().await;
    let (a, b) = tokio::join!(deployment.start_at_issuer(), deployment.start(free_port()));
    let tokens = tokens(&deployment, &a, &mut Browser::new()).await;
    let access = tokens["access_token"].as_str().expect("an access token");
    assert_eq!(userinfo(&b, access).await.0, 200);

    // Act: the admin revokes the key that signed it, from a third process.
    let revoked_at = revoke_the_key_that_signed(&deployment, access);

    // Assert
    let (at_a, at_b) = tokio::join!(
        refused_after(&a, access, revoked_at),
        refused_after(&b, access, revoked_at)
    );
    assert!(
        at_a <= BOUND && at_b <= BOUND,
        "refused {at_a:?} (A) and {at_b:?} (B) after the revocation"
    );
}

#[tokio::test]
async fn a_person_revoked_by_the_admin_beside_a_sqlite_process_is_refused_by_it_within_a_second() {
    // Arrange: the process has answered /userinfo for Bob's token (and keeps the answer).
    let deployment = deployment_on(Backend::Sqlite).await;
    let a = deployment.start_at_issuer().await;
    let tokens = tokens(&deployment, &a, &mut Browser::new()).await;
    let access = tokens["access_token"].as_str().expect("an access token");
    let (status, claims) = userinfo(&a, access).await;
    assert_eq!(status, 200);
    assert_eq!(userinfo(&a, access).await.0, 200);
    let bob = claims["sub"].as_str().expect("a subject").to_owned();

    // Act: the admin revokes Bob from another process on the same file.
    let out = deployment.admin(&["users", "revoke", &bob]);
    let revoked_at = Instant::now();

    // Assert
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = refused_after(&a, access, revoked_at).await;
    assert!(
        after <= BOUND,
        "refused {after:?} after the revocation\n{}",
        a.log()
    );
}

#[tokio::test]
async fn a_key_revoked_by_the_admin_beside_a_sqlite_process_is_refused_by_it_within_a_second() {
    // Arrange: the process re-reads the keys folder only every 60 s by itself.
    let deployment = deployment_on(Backend::Sqlite).await;
    let a = deployment.start_at_issuer().await;
    let tokens = tokens(&deployment, &a, &mut Browser::new()).await;
    let access = tokens["access_token"].as_str().expect("an access token");
    assert_eq!(userinfo(&a, access).await.0, 200);

    // Act
    let revoked_at = revoke_the_key_that_signed(&deployment, access);

    // Assert
    let after = refused_after(&a, access, revoked_at).await;
    assert!(
        after <= BOUND,
        "refused {after:?} after the revocation\n{}",
        a.log()
    );
}
