//! Rotating the encryption key of kept Discord tokens: a new key goes first in
//! `secrets.encryption_keys` while the old one still opens, `guildgate reencrypt` re-seals every
//! kept token with it and says how many, then the old key goes. Refresh with membership
//! re-checks keeps working through each step, and pairwise subjects never change.

use crate::browser::Browser;
use crate::cli::{run_guildgate, stderr_of, stdout_of};
use crate::helpers::{ALICE, BOB, Reply, Rp, Sibling, TestApp, spawn_app_with, tokens_via};
use guildgate::sealed::Keyring;
use secrecy::ExposeSecret;
use std::time::Duration;

const COMMUNITY: &str = "812345678901234567";
/// The key the deployment started with.
const OLD: &str = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
/// The key it rotates to.
const NEW: &str = "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1";
/// Past `discord.membership_ttl` (5 min) and the fake Discord's access tokens (60 s here).
const LATER: Duration = Duration::from_secs(6 * 60);

/// Gated on the community server, so each refresh after the TTL re-checks with the kept tokens.
const WIKI: Rp = Rp {
    id: "wiki",
    secret: "wiki-secret-wiki-secret",
    redirect: "https://wiki.example.com/cb",
};
/// The same, with pairwise subjects.
const PAIRED: Rp = Rp {
    id: "paired",
    secret: "paired-secret-paired-secret",
    redirect: "https://paired.example.com/cb",
};

/// The clients (`paired` only when `pairwise`) and the `[secrets]` lines.
fn config(secrets: &str, pairwise: bool) -> String {
    let client = |rp: Rp, extra: &str| {
        format!(
            "[[clients]]\nid = \"{}\"\nsecret = \"{}\"\nredirect_uris = [\"{}\"]\n\
             allowed_guilds = [\"{COMMUNITY}\"]\nrefresh_tokens = true\n{extra}\n",
            rp.id, rp.secret, rp.redirect
        )
    };
    let paired = if pairwise {
        client(PAIRED, "subject_type = \"pairwise\"")
    } else {
        String::new()
    };
    format!("{}{paired}[secrets]\n{secrets}\n", client(WIKI, ""))
}

fn key(hex: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

/// Which of the two keys opens the person's kept Discord tokens now.
async fn sealed_with(app: &TestApp, user: &str) -> &'static str {
    let stored = app
        .state
        .store
        .get_upstream_tokens(&crate::helpers::discord_id(user))
        .await
        .unwrap()
        .expect("kept tokens");
    let opens = |hex: &str| {
        Keyring::new(&[key(hex)])
            .unwrap()
            .unwrap()
            .open(&stored.ciphertext, user.as_bytes())
            .is_ok()
    };
    match (opens(OLD), opens(NEW)) {
        (true, false) => "old",
        (false, true) => "new",
        other => panic!("opened by {other:?}"),
    }
}

/// A refresh at a sibling process; the reply.
async fn refresh_at(sibling: &Sibling, rp: Rp, token: &str) -> Reply {
    Reply::read(
        sibling
            .token(
                (rp.id, rp.secret),
                &[("grant_type", "refresh_token"), ("refresh_token", token)],
            )
            .await,
    )
    .await
}

fn subject(reply: &Reply) -> String {
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            reply.text("id_token").split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_encryption_key_rotates_without_signing_anyone_out_and_pairwise_subjects_stay() {
    // Arrange: Bob and Alice signed in while only the old key existed.
    let app = spawn_app_with(&config(&format!("encryption_key = \"{OLD}\""), true)).await;
    app.discord.set_access_token_ttl(Duration::from_secs(60));
    let mut bobs = Browser::new();
    let bob_wiki = tokens_via(&app, &mut bobs, WIKI, &[], BOB).await;
    let bob_paired = tokens_via(&app, &mut bobs, PAIRED, &[], BOB).await;
    let alice_wiki = tokens_via(&app, &mut Browser::new(), WIKI, &[], ALICE).await;
    let pairwise_sub = subject(&bob_paired);
    assert_eq!(sealed_with(&app, BOB).await, "old");

    // Act 1: the new key goes first; the old one still opens. Bob's re-check renews his
    // Discord tokens and seals them with the new key.
    let rotating = app
        .sibling_with(&config(
            &format!("encryption_key = \"{OLD}\"\nencryption_keys = [\"{NEW}\"]"),
            true,
        ))
        .await;
    rotating.state.clock.advance(LATER);
    let renewals = app.discord.refresh_token_uses();
    let bob_1 = refresh_at(&rotating, WIKI, &bob_wiki.text("refresh_token")).await;
    let bob_paired_1 = refresh_at(&rotating, PAIRED, &bob_paired.text("refresh_token")).await;

    // Assert 1
    assert_eq!(bob_1.status, 200, "{}", bob_1.body);
    assert!(
        app.discord.refresh_token_uses() > renewals,
        "re-checked with the kept tokens"
    );
    assert_eq!(sealed_with(&app, BOB).await, "new");
    assert_eq!(sealed_with(&app, ALICE).await, "old", "not re-checked yet");
    assert_eq!(bob_paired_1.status, 200, "{}", bob_paired_1.body);
    assert_eq!(
        subject(&bob_paired_1),
        pairwise_sub,
        "the pairwise subject stays"
    );

    // Act 2: `guildgate reencrypt` with the same keys, beside the running processes.
    let cwd = tempfile::tempdir().unwrap();
    let db_url = app.state.settings.database.url.expose_secret().to_owned();
    let reencrypt = || {
        run_guildgate(
            cwd.path(),
            &["reencrypt"],
            &[
                ("GUILDGATE__DATABASE__URL", &db_url),
                ("GUILDGATE__SECRETS__ENCRYPTION_KEY", OLD),
                ("GUILDGATE__SECRETS__ENCRYPTION_KEYS", NEW),
            ],
        )
    };
    let first = reencrypt();
    let second = reencrypt();

    // Assert 2
    assert!(first.status.success(), "{}", stderr_of(&first));
    assert!(
        stdout_of(&first)
            .contains("re-sealed 1 kept Discord token(s) with the newest key; 1 already used it"),
        "{}",
        stdout_of(&first)
    );
    assert!(
        stdout_of(&second)
            .contains("re-sealed 0 kept Discord token(s) with the newest key; 2 already used it"),
        "{}",
        stdout_of(&second)
    );
    assert_eq!(sealed_with(&app, ALICE).await, "new");
    let bob_paired_2 = refresh_at(&rotating, PAIRED, &bob_paired_1.text("refresh_token")).await;
    assert_eq!(subject(&bob_paired_2), pairwise_sub);

    // Act 3: the old key goes (a deployment without pairwise clients may drop it entirely).
    let rotated = app
        .sibling_with(&config(&format!("encryption_keys = [\"{NEW}\"]"), false))
        .await;
    rotated.state.clock.advance(LATER * 3);
    let renewals = app.discord.refresh_token_uses();
    let bob_3 = refresh_at(&rotated, WIKI, &bob_1.text("refresh_token")).await;
    let alice_3 = refresh_at(&rotated, WIKI, &alice_wiki.text("refresh_token")).await;

    // Assert 3: both re-checked with tokens only the new key opens.
    assert_eq!(bob_3.status, 200, "{}", bob_3.body);
    assert_eq!(alice_3.status, 200, "{}", alice_3.body);
    assert_eq!(app.discord.refresh_token_uses(), renewals + 2);
}
