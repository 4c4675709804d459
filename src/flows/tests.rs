//! The protocol decisions without HTTP: a real SQLite store in a temp folder, generated keys,
//! and a fixed `now` handed to every flow, as kanidm tests its OAuth logic.

use super::authorize::{AuthorizationRequest, AuthorizeOutcome, Decision, Prompt, decide, run};
use super::code::{self, CodeGrant};
use super::finish::Finish;
use super::{logout, refresh, session};
use crate::config::{Settings, ValidClient};
use crate::domain::{ClientId, DiscordId, Scopes};
use crate::error::OAuthErrorCode;
use crate::startup::build_state;
use crate::state::{AppState, Clock};
use crate::store::{SessionRecord, UserRecord};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

const ALICE: &str = "318172463195504640";
const WIKI_REDIRECT: &str = "https://wiki.example.com/cb";

fn alice() -> DiscordId {
    DiscordId::parse(ALICE).expect("a snowflake")
}

/// An app state on a fresh SQLite file, with one confidential client that may refresh.
struct Fixture {
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("test.toml");
    std::fs::write(
        &file,
        format!(
            "[discord]\nclient_id = \"1090417266934861824\"\nclient_secret = \"fake-discord-secret\"\n\
             [[clients]]\nid = \"wiki\"\nsecret = \"wiki-secret-wiki-secret\"\n\
             redirect_uris = [\"{WIKI_REDIRECT}\"]\nrefresh_tokens = true\n"
        ),
    )
    .expect("config");
    let env = [
        ("GUILDGATE__ISSUER", "https://id.example.com".to_owned()),
        (
            "GUILDGATE__DATABASE__URL",
            format!("sqlite://{}/flows.db", dir.path().display()),
        ),
        (
            "GUILDGATE__KEYS__DIR",
            dir.path().join("keys").display().to_string(),
        ),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let settings = Settings::load_with(Some(&file), env).expect("settings");
    let state = build_state(settings, Clock::default())
        .await
        .expect("state builds");
    state
        .store
        .upsert_user(&UserRecord {
            id: alice(),
            username: "alice".into(),
            global_name: None,
            avatar: None,
            email: None,
            email_verified: true,
            locale: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        })
        .await
        .expect("person");
    Fixture { state, _dir: dir }
}

fn wiki(state: &AppState) -> Arc<ValidClient> {
    state.clients().get("wiki").expect("registered")
}

fn request(scope: &str) -> AuthorizationRequest {
    AuthorizationRequest {
        client_id: ClientId::parse("wiki").expect("a client id"),
        redirect_uri: WIKI_REDIRECT.into(),
        scope: Scopes::parse_request(scope),
        state: Some("st".into()),
        nonce: None,
        code_challenge: None,
        prompt: Prompt::default(),
        max_age: None,
        hint_sub: None,
        response_mode: Default::default(),
        dpop_jkt: None,
    }
}

/// A session opened at `at` and a code issued in it.
async fn code_at(state: &AppState, at: OffsetDateTime) -> (SessionRecord, String) {
    let ctx = state.context();
    let (session, _) = open_session(&ctx, &alice(), at).await.expect("session");
    let code = code::issue(&ctx, &request("openid profile"), &session, at)
        .await
        .expect("code");
    (session, code.expose().to_owned())
}

/// A stored session for `user`, as a sign-in leaves it.
async fn open_session(
    ctx: &super::Context<'_>,
    user: &DiscordId,
    at: OffsetDateTime,
) -> Result<(SessionRecord, crate::domain::OpaqueToken), crate::store::StoreError> {
    let (session, secret) = session::new(ctx, user, Default::default(), at);
    ctx.store.insert_session(&session).await?;
    Ok((session, secret))
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::seconds(seconds)
}

#[tokio::test]
async fn a_code_is_redeemed_once_and_a_replay_revokes_what_it_issued() {
    let t = fixture().await;
    let ctx = t.state.context();
    let client = wiki(&t.state);
    let (_, misdirected) = code_at(&t.state, at(0)).await;
    let (_, code) = code_at(&t.state, at(0)).await;
    let grant = |code, redirect_uri| CodeGrant {
        code,
        redirect_uri,
        code_verifier: None,
    };

    // A wrong redirect_uri is refused and burns that code (the single-use gate comes first).
    let wrong_uri = code::redeem(
        &ctx,
        &client,
        grant(&misdirected, Some("https://evil.example/cb")),
        None,
        at(1),
    )
    .await;
    let first = code::redeem(
        &ctx,
        &client,
        grant(&code, Some(WIKI_REDIRECT)),
        None,
        at(1),
    )
    .await
    .expect("the first redemption succeeds");
    let replay = code::redeem(
        &ctx,
        &client,
        grant(&code, Some(WIKI_REDIRECT)),
        None,
        at(2),
    )
    .await;
    let refresh_after_replay = refresh::refresh(
        &ctx,
        &client,
        first.refresh_token.as_deref().expect("a refresh token"),
        None,
        None,
        at(3),
    )
    .await;

    assert_eq!(
        wrong_uri.err().map(|e| e.code),
        Some(OAuthErrorCode::InvalidGrant),
        "redirect_uri must match exactly"
    );
    assert_eq!(
        replay.err().map(|e| e.code),
        Some(OAuthErrorCode::InvalidGrant)
    );
    assert_eq!(
        refresh_after_replay.err().map(|e| e.code),
        Some(OAuthErrorCode::InvalidGrant),
        "RFC 6749 §4.1.2: the replay revoked the first redemption's grant"
    );
}

#[tokio::test]
async fn a_code_expires_after_code_ttl_by_the_given_clock() {
    let t = fixture().await;
    let ctx = t.state.context();
    let (_, code) = code_at(&t.state, at(0)).await;
    let ttl = i64::try_from(t.state.config().lifetimes.code.as_secs()).expect("seconds");

    let late = code::redeem(
        &ctx,
        &wiki(&t.state),
        CodeGrant {
            code: &code,
            redirect_uri: Some(WIKI_REDIRECT),
            code_verifier: None,
        },
        None,
        at(ttl + 1),
    )
    .await;

    assert_eq!(
        late.err().map(|e| e.code),
        Some(OAuthErrorCode::InvalidGrant)
    );
}

#[tokio::test]
async fn a_refresh_may_narrow_but_not_widen_and_a_refused_widening_spends_nothing() {
    let t = fixture().await;
    let ctx = t.state.context();
    let client = wiki(&t.state);
    let (_, code) = code_at(&t.state, at(0)).await;
    let first = code::redeem(
        &ctx,
        &client,
        CodeGrant {
            code: &code,
            redirect_uri: Some(WIKI_REDIRECT),
            code_verifier: None,
        },
        None,
        at(1),
    )
    .await
    .expect("tokens");
    let token = first.refresh_token.expect("a refresh token");

    let wider = refresh::refresh(
        &ctx,
        &client,
        &token,
        Some("openid profile email"),
        None,
        at(2),
    )
    .await;
    let narrower = refresh::refresh(&ctx, &client, &token, Some("openid"), None, at(3))
        .await
        .expect("the token was not spent by the refused request");
    let reused = refresh::refresh(&ctx, &client, &token, None, None, at(4)).await;
    let rotated_after_reuse = refresh::refresh(
        &ctx,
        &client,
        narrower.refresh_token.as_deref().expect("rotated"),
        None,
        None,
        at(5),
    )
    .await;

    assert_eq!(
        wider.err().map(|e| e.code),
        Some(OAuthErrorCode::InvalidScope)
    );
    assert_eq!(narrower.scope.to_string(), "openid");
    assert_eq!(
        reused.err().map(|e| e.code),
        Some(OAuthErrorCode::InvalidGrant)
    );
    assert_eq!(
        rotated_after_reuse.err().map(|e| e.code),
        Some(OAuthErrorCode::InvalidGrant),
        "RFC 9700 §4.14.2: reuse revokes the whole family"
    );
}

#[tokio::test]
async fn the_session_answers_unless_login_max_age_or_another_person_says_otherwise() {
    let t = fixture().await;
    let ctx = t.state.context();
    let (session, _) = open_session(&ctx, &alice(), at(0)).await.expect("session");
    let same = |id: &DiscordId| id.to_string();
    let with = |f: fn(&mut AuthorizationRequest)| {
        let mut r = request("openid");
        f(&mut r);
        r
    };

    let plain = decide(&request("openid"), Some(session.clone()), at(10), same);
    let login = decide(
        &with(|r| r.prompt.login = true),
        Some(session.clone()),
        at(10),
        same,
    );
    let too_old = decide(
        &with(|r| r.max_age = Some(5)),
        Some(session.clone()),
        at(10),
        same,
    );
    let silent_too_old = decide(
        &with(|r| {
            r.max_age = Some(5);
            r.prompt.none = true;
        }),
        Some(session.clone()),
        at(10),
        same,
    );
    let other_person = decide(
        &with(|r| r.hint_sub = Some("402931734925557761".into())),
        Some(session.clone()),
        at(10),
        same,
    );

    assert!(matches!(plain, Ok(Decision::UseSession(_))));
    assert!(matches!(login, Ok(Decision::SignInUpstream)));
    assert!(matches!(too_old, Ok(Decision::SignInUpstream)));
    assert_eq!(silent_too_old.err(), Some(OAuthErrorCode::LoginRequired));
    assert!(matches!(other_person, Ok(Decision::SignInUpstream)));
}

#[tokio::test]
async fn authorize_runs_to_a_page_a_redirect_discord_or_a_code_from_the_session() {
    let t = fixture().await;
    let ctx = t.state.context();
    let (_, secret) = open_session(&ctx, &alice(), at(0)).await.expect("session");
    let params = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let valid = params(&[
        ("client_id", "wiki"),
        ("redirect_uri", WIKI_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st"),
    ]);

    let unknown_client = run(
        &ctx,
        &params(&[("client_id", "nope"), ("redirect_uri", WIKI_REDIRECT)]),
        None,
        at(10),
    )
    .await;
    let bad_scope = run(
        &ctx,
        &params(&[
            ("client_id", "wiki"),
            ("redirect_uri", WIKI_REDIRECT),
            ("response_type", "token"),
        ]),
        None,
        at(10),
    )
    .await;
    let no_session = run(&ctx, &valid, None, at(10)).await;
    let with_session = run(&ctx, &valid, Some(secret.expose()), at(10)).await;

    assert!(
        matches!(unknown_client, Ok(AuthorizeOutcome::Page { .. })),
        "an unverified client gets a page, never a redirect: {unknown_client:?}"
    );
    assert!(
        matches!(&bad_scope, Ok(AuthorizeOutcome::Redirect(to)) if to.redirect_uri == WIKI_REDIRECT && to.param("error").is_some()),
        "{bad_scope:?}"
    );
    assert!(matches!(
        no_session,
        Ok(AuthorizeOutcome::SignInUpstream(_))
    ));
    assert!(
        matches!(&with_session, Ok(AuthorizeOutcome::Finished(Finish::Redirect(to))) if to.param("code").is_some()),
        "{with_session:?}"
    );
}

#[tokio::test]
async fn logout_ends_the_session_at_once_only_for_a_hint_from_that_session() {
    let t = fixture().await;
    let ctx = t.state.context();
    let (current, _) = open_session(&ctx, &alice(), at(0)).await.expect("session");
    let hint_from = |sid: Option<&str>| logout::LogoutRequest {
        client: Some(wiki(&t.state)),
        hint_sub: Some(ALICE.into()),
        hint_sid: sid.map(str::to_owned),
        redirect: None,
        state: None,
    };

    let this_session =
        logout::is_confirmed_by_hint(&ctx, &hint_from(Some(current.id.as_str())), &current);
    let earlier = logout::is_confirmed_by_hint(&ctx, &hint_from(Some("an-earlier-sid")), &current);
    let offline = logout::is_confirmed_by_hint(&ctx, &hint_from(None), &current);

    assert!(
        this_session,
        "a hint naming this session needs no confirmation"
    );
    assert!(!earlier, "a hint from an earlier session asks first");
    assert!(!offline, "a hint without sid cannot name the session");
}

#[tokio::test]
async fn logout_asks_first_and_ends_the_session_on_the_confirmed_form_only() {
    let t = fixture().await;
    let ctx = t.state.context();
    let (current, secret) = open_session(&ctx, &alice(), at(0)).await.expect("session");
    let cookie = secret.expose();
    let csrf = logout::csrf_token(cookie);
    let with = |confirmed_csrf| logout::LogoutInput {
        client_id: Some("wiki"),
        confirmed_csrf,
        session_cookie: Some(cookie),
        ..Default::default()
    };

    let unconfirmed = logout::run(&ctx, with(None), at(10)).await;
    let forged = logout::run(&ctx, with(Some("forged")), at(10)).await;
    let still_there = session::current(&ctx, Some(cookie), at(10)).await;
    let confirmed = logout::run(&ctx, with(Some(&csrf)), at(10)).await;
    let after = session::current(&ctx, Some(cookie), at(10)).await;

    assert!(matches!(unconfirmed, Ok(logout::LogoutOutcome::Confirm(_))));
    assert!(matches!(forged, Ok(logout::LogoutOutcome::Confirm(_))));
    assert_eq!(
        still_there.expect("read").map(|s| s.id),
        Some(current.id),
        "asking changes nothing"
    );
    assert!(matches!(confirmed, Ok(logout::LogoutOutcome::SignedOut(_))));
    assert_eq!(after.expect("read"), None, "the session ended");
}
