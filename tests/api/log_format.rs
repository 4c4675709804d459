//! Logs fit where they go: a real `guildgate serve` whose standard error is a file writes the
//! readable format without ANSI colour codes, so `grep event=sign_in` finds its lines.

use crate::browser::Browser;
use crate::helpers::BOB;
use crate::processes::{Deployment, code_of, redeem, to_callback};
use crate::test_db::Backend;

const WIKI: (&str, &str) = ("wiki", "wiki-secret-wiki-secret");
const WIKI_REDIRECT: &str = "https://wiki.example.com/cb";

#[tokio::test]
async fn the_readable_format_written_to_a_file_has_no_colour_codes_and_greps_by_field() {
    // Arrange: the readable format (the default) at info, standard error into a file.
    let clients = format!(
        "[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{WIKI_REDIRECT}\"]\n",
        WIKI.0, WIKI.1
    );
    let deployment = Deployment::new(Backend::Sqlite, &clients)
        .await
        .with_env("LOG__LEVEL", "info")
        .with_env("LOG__FORMAT", "pretty");
    let mut process = deployment.start_at_issuer().await;

    // Act: a sign-in, so the file holds start-up lines, request lines and audit lines.
    let mut browser = Browser::new();
    let authorize = deployment.authorize_url(WIKI.0, WIKI_REDIRECT, &[]);
    let callback = to_callback(&deployment, &mut browser, &process, &authorize, BOB).await;
    let done = browser.get_through(&callback, &process.address).await;
    let to_app = done.location.expect("the sign-in completes");
    let (status, tokens) = redeem(&process, WIKI, &code_of(&to_app), WIKI_REDIRECT).await;
    assert_eq!(status, 200, "{tokens}");
    process.kill();
    let log = process.log();

    // Assert
    assert!(
        log.contains("guildgate is listening"),
        "the file holds the log:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "no escape sequence in a log file:\n{log}"
    );
    let sign_in: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("event=sign_in"))
        .collect();
    assert_eq!(
        sign_in.len(),
        1,
        "grep event=sign_in finds the line:\n{log}"
    );
    assert!(
        sign_in[0].contains(&format!("user_id={BOB}")),
        "{}",
        sign_in[0]
    );
}
