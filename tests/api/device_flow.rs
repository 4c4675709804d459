//! The device authorization grant (RFC 8628): a command-line tool asks for a code, the person
//! enters it on `/device`, signs in and allows it, and the tool's polling gets tokens; with the
//! RFC's answers while waiting, the app's access rules, and limits on guessing codes.

use crate::browser::Browser;
use crate::flow::decode_payload;
use crate::helpers::{
    ALICE, BOB, Reply, TestApp, goes_to_discord, hidden_field, post_as_browser, spawn_app_with,
};
use std::time::Duration;

/// A public command-line client, a confidential one, and one limited to the demo server's staff.
const CLIENTS: &str = r#"
[secrets]
encryption_key = "0000000000000000000000000000000000000000000000000000000000000001"

[[clients]]
id = "cli"
name = "Ops CLI"
public = true
device_flow = true
refresh_tokens = true

[[clients]]
id = "tv"
name = "Lobby TV"
secret = "tv-secret-tv-secret-tv"
device_flow = true

[[clients]]
id = "staff-cli"
name = "Staff CLI"
public = true
device_flow = true
required_roles = ["812345678901234567:845611301132730378"]
"#;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn app() -> TestApp {
    spawn_app_with(CLIENTS).await
}

/// `POST /device_authorization` for the public client `client`.
pub async fn start(app: &TestApp, client: &str, scope: &str) -> Reply {
    Reply::read(
        app.http
            .post(format!("{}/device_authorization", app.address))
            .header("user-agent", "ops-cli/1.4 (linux)")
            .form(&[("client_id", client), ("scope", scope)])
            .send()
            .await
            .expect("answers"),
    )
    .await
}

/// One poll of `/token` by the public client `client`.
pub async fn poll(app: &TestApp, client: &str, device_code: &str) -> Reply {
    Reply::read(
        app.token(
            None,
            &[
                ("grant_type", GRANT),
                ("client_id", client),
                ("device_code", device_code),
            ],
        )
        .await,
    )
    .await
}

/// Lets the device's interval pass on the app's clock.
fn wait_interval(app: &TestApp, seconds: u64) {
    app.state.clock.advance(Duration::from_secs(seconds));
}

/// Types `user_code` on `/device` in `browser`; when that goes to Discord, signs in there as
/// `user`. Returns the page it ends on (the confirmation, a refusal, or the form again).
pub async fn enter_code(
    app: &TestApp,
    browser: &mut Browser,
    user_code: &str,
    user: &str,
) -> (u16, String) {
    let entered = browser
        .post_form(
            &format!("{}/device", app.address),
            &[("user_code", user_code)],
        )
        .await;
    match entered.location.clone().filter(|l| goes_to_discord(app, l)) {
        Some(to_discord) => {
            let callback = app.discord_approves(browser, &to_discord, user).await;
            let page = browser.get(&callback).await;
            (page.status, page.body)
        }
        None => (entered.status, entered.body),
    }
}

/// Answers the confirmation page (`allow` or `deny`).
pub async fn answer(app: &TestApp, browser: &Browser, page: &str, choice: &str) -> (u16, String) {
    let ticket = hidden_field(page, "ticket").unwrap_or_else(|| panic!("a confirmation: {page}"));
    let response = post_as_browser(
        app,
        browser,
        "/device/answer",
        &[("ticket", &ticket), ("answer", choice)],
    )
    .await;
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn a_command_line_tool_signs_in_through_the_device_page() {
    // Arrange
    let app = app().await;
    let started = start(&app, "cli", "openid profile").await;
    assert_eq!(started.status, 200, "{}", started.body);
    let device_code = started.text("device_code");
    let user_code = started.text("user_code");
    assert_eq!(
        started.text("verification_uri"),
        format!("{}/device", app.address)
    );
    assert_eq!(
        started.text("verification_uri_complete"),
        format!("{}/device?user_code={user_code}", app.address)
    );
    assert_eq!(started.body["interval"], 5);
    assert_eq!(started.body["expires_in"], 600);
    assert!(
        user_code.len() == 9
            && user_code
                .chars()
                .all(|c| c == '-' || "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );

    // Act + Assert: the tool waits, and is told to slow down when it polls too soon.
    assert_eq!(
        poll(&app, "cli", &device_code).await.error(),
        "authorization_pending"
    );
    assert_eq!(poll(&app, "cli", &device_code).await.error(), "slow_down");
    wait_interval(&app, 10);
    assert_eq!(
        poll(&app, "cli", &device_code).await.error(),
        "authorization_pending"
    );

    // The link pre-fills the form; the person still presses Continue.
    let mut browser = Browser::new();
    let form = browser
        .get(&started.text("verification_uri_complete"))
        .await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains(&user_code), "pre-filled: {}", form.body);
    assert!(
        hidden_field(&form.body, "ticket").is_none(),
        "no approval from a link alone"
    );

    // Typed in lower case without the dash, then signed in at Discord: the confirmation names
    // the app and the device.
    let typed = user_code.replace('-', "").to_lowercase();
    let (status, page) = enter_code(&app, &mut browser, &typed, ALICE).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Ops CLI"), "{page}");
    assert!(
        crate::helpers::unescape_html(&page).contains("ops-cli/1.4 (linux)"),
        "the device is shown: {page}"
    );
    let (status, done) = answer(&app, &browser, &page, "allow").await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("signed in"), "{done}");

    // The tool's next poll gets tokens for Alice, once.
    wait_interval(&app, 5);
    let tokens = poll(&app, "cli", &device_code).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    assert_eq!(tokens.text("token_type"), "Bearer");
    let id = decode_payload(&tokens.text("id_token"));
    assert_eq!(id["sub"], ALICE);
    assert_eq!(id["aud"], "cli");
    assert!(id.get("nonce").is_none());
    assert!(
        tokens.body["refresh_token"].is_string(),
        "refresh_tokens = true"
    );
    assert_eq!(
        app.userinfo(&tokens.text("access_token")).await.status(),
        200
    );
    wait_interval(&app, 5);
    assert_eq!(
        poll(&app, "cli", &device_code).await.error(),
        "invalid_grant",
        "used once"
    );
    // And the code cannot be entered again.
    let (status, _) = enter_code(&app, &mut browser, &user_code, ALICE).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_rp_library_runs_the_device_flow_unmodified() {
    use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata};
    use openidconnect::{ClientId, DeviceAuthorizationUrl, IssuerUrl, OAuth2TokenResponse, Scope};

    // Arrange: the openidconnect crate as the tool, from discovery.
    let app = app().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.address.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let discovered: serde_json::Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("json");
    let device_url = discovered["device_authorization_endpoint"]
        .as_str()
        .expect("advertised");
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new("cli".into()), None)
        .set_device_authorization_url(DeviceAuthorizationUrl::new(device_url.into()).expect("url"));
    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("profile".into()))
        .request_async(&http)
        .await
        .expect("device authorization");

    // Act: Bob approves in a browser while the library polls. The library's sleeps wait for
    // the approval to be answered and then move the app's clock, so however slow the sign-in
    // is on a busy machine, the code cannot expire on the moved clock before Bob answers.
    let user_code = details.user_code().secret().clone();
    let (answered, answered_seen) = tokio::sync::watch::channel(false);
    let approving = async {
        let mut browser = Browser::new();
        let (_, page) = enter_code(&app, &mut browser, &user_code, BOB).await;
        let answer = answer(&app, &browser, &page, "allow").await;
        answered.send_replace(true);
        answer
    };
    let clock = &app.state.clock;
    let answered_seen = &answered_seen;
    let polling = client
        .exchange_device_access_token(&details)
        .expect("token endpoint known")
        .request_async(
            &http,
            |wait| async move {
                let mut seen = answered_seen.clone();
                let _ = seen.wait_for(|answered| *answered).await;
                clock.advance(wait);
            },
            None,
        );
    let (approved, tokens) = tokio::join!(approving, polling);

    // Assert
    assert_eq!(approved.0, 200, "{}", approved.1);
    let tokens = tokens.expect("the library gets tokens");
    let id_token = tokens.extra_fields().id_token().expect("an ID token");
    let claims = decode_payload(&id_token.to_string());
    assert_eq!(claims["sub"], BOB);
    assert!(!tokens.access_token().secret().is_empty());
}

#[tokio::test]
async fn a_declined_or_refused_or_expired_device_is_told_so() {
    let app = app().await;

    // Declined by the person.
    let declined = start(&app, "cli", "openid").await;
    let mut browser = Browser::new();
    let (_, page) = enter_code(&app, &mut browser, &declined.text("user_code"), ALICE).await;
    let (status, _) = answer(&app, &browser, &page, "deny").await;
    assert_eq!(status, 200);
    assert_eq!(
        poll(&app, "cli", &declined.text("device_code"))
            .await
            .error(),
        "access_denied"
    );

    // Refused by the app's rules: Alice is not staff.
    let refused = start(&app, "staff-cli", "openid").await;
    let (status, page) = enter_code(&app, &mut browser, &refused.text("user_code"), ALICE).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Staff CLI"), "{page}");
    assert_eq!(
        poll(&app, "staff-cli", &refused.text("device_code"))
            .await
            .error(),
        "access_denied"
    );

    // Expired before anyone answered.
    let expired = start(&app, "cli", "openid").await;
    wait_interval(&app, 601);
    assert_eq!(
        poll(&app, "cli", &expired.text("device_code"))
            .await
            .error(),
        "expired_token"
    );
    let (status, _) = enter_code(&app, &mut browser, &expired.text("user_code"), ALICE).await;
    assert_eq!(
        status, 400,
        "an expired code is not accepted on the page either"
    );
}

#[tokio::test]
async fn a_signed_in_person_goes_straight_to_the_confirmation_and_a_staff_member_passes_the_rules()
{
    // Arrange: Bob is signed in already (a first device sign-in through Discord).
    let app = app().await;
    let mut browser = Browser::new();
    let first = start(&app, "staff-cli", "openid").await;
    let (_, page) = enter_code(&app, &mut browser, &first.text("user_code"), BOB).await;
    answer(&app, &browser, &page, "allow").await;

    // Act: a second device: no trip to Discord.
    let second = start(&app, "staff-cli", "openid groups").await;
    let entered = post_as_browser(
        &app,
        &browser,
        "/device",
        &[("user_code", &second.text("user_code"))],
    )
    .await;

    // Assert
    assert_eq!(entered.status(), 200);
    let page = entered.text().await.expect("body");
    assert!(hidden_field(&page, "ticket").is_some(), "{page}");
    answer(&app, &browser, &page, "allow").await;
    let tokens = poll(&app, "staff-cli", &second.text("device_code")).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
}

#[tokio::test]
async fn guessing_user_codes_is_limited_per_address_and_per_code() {
    // Arrange
    let app = app().await;
    let started = start(&app, "cli", "openid").await;
    let browser = Browser::new();

    // Act + Assert: ten wrong codes are each told so; the eleventh attempt, even with the
    // right code, waits.
    for n in 0..10 {
        let wrong = post_as_browser(&app, &browser, "/device", &[("user_code", "BBBB-BBBB")]).await;
        assert_eq!(wrong.status(), 400, "wrong code {n}");
    }
    let blocked = post_as_browser(
        &app,
        &browser,
        "/device",
        &[("user_code", &started.text("user_code"))],
    )
    .await;
    assert_eq!(blocked.status(), 429);
    assert!(blocked.headers().contains_key("retry-after"));
    assert_eq!(
        poll(&app, "cli", &started.text("device_code"))
            .await
            .error(),
        "authorization_pending",
        "the device's sign-in is untouched"
    );

    // Per code: a code entered more than five times stops working, and the device is told.
    wait_interval(&app, 3600);
    let hammered = start(&app, "cli", "openid").await;
    let mut last = 0;
    for _ in 0..6 {
        last = post_as_browser(
            &app,
            &browser,
            "/device",
            &[("user_code", &hammered.text("user_code"))],
        )
        .await
        .status()
        .as_u16();
    }
    assert_eq!(last, 400);
    assert_eq!(
        poll(&app, "tv-none", &hammered.text("device_code"))
            .await
            .status,
        401,
        "an unknown client cannot poll"
    );
    assert_eq!(
        poll(&app, "cli", &hammered.text("device_code"))
            .await
            .error(),
        "access_denied"
    );
}

#[tokio::test]
async fn only_device_clients_start_device_sign_ins_and_confidential_ones_authenticate() {
    let app = app().await;
    // The test app's SPA is public but not a device client.
    let refused = start(&app, "spa", "openid").await;
    assert_eq!(refused.error(), "unauthorized_client");
    // A confidential device client must authenticate.
    let anonymous = start(&app, "tv", "openid").await;
    assert_eq!(anonymous.status, 401);
    let started = Reply::read(
        app.http
            .post(format!("{}/device_authorization", app.address))
            .basic_auth("tv", Some("tv-secret-tv-secret-tv"))
            .form(&[("scope", "openid")])
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.body);
    // Its device code is its own: another client cannot poll with it.
    assert_eq!(
        poll(&app, "cli", &started.text("device_code"))
            .await
            .error(),
        "invalid_grant"
    );
}
