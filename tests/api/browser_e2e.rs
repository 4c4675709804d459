//! A real browser (headless Chromium through chromedriver) drives every page a person sees: the
//! demo app, the fake Discord's account picker, consent, the claims, the refusal of a person in
//! no guild with its "use another Discord account", the account page (revoke an app, sign out
//! everywhere) and logout. Each page is saved as a PNG in `target/browser-screenshots/` (under
//! `CARGO_TARGET_DIR` when set), and any console error or Content-Security-Policy violation
//! fails the test. Without chromium and chromedriver it prints why and passes.

use crate::helpers::{ALICE, BOB, TestApp, spawn_app_with};
use crate::webdriver::{self, Driver, Session};
use std::path::PathBuf;
use std::time::Duration;

const CAROL: &str = "1090417266934861824";
const DAVE: &str = "1146178934729273344";
const COMMUNITY: &str = "812345678901234567";
const STAFF_ROLE: &str = "845611301132730378";
const DEMO_ID: &str = "demo-app";
const DEMO_SECRET: &str = "demo-app-secret-demo-app-secret";

/// The demo app as `guildgate dev` registers it, but asking for consent once.
fn demo_config(demo_base: &str) -> String {
    format!(
        r#"
[[groups]]
name = "community"
guild = "{COMMUNITY}"

[[groups]]
name = "staff"
guild = "{COMMUNITY}"
role = "{STAFF_ROLE}"

[[clients]]
id = "{DEMO_ID}"
name = "Demo app"
secret = "{DEMO_SECRET}"
redirect_uris = ["{demo_base}/callback"]
post_logout_redirect_uris = ["{demo_base}/"]
allowed_guilds = ["{COMMUNITY}"]
groups = ["community", "staff"]
consent = "once"

[secrets]
encryption_key = "{key}"
"#,
        key = "ab".repeat(32)
    )
}

/// The folder screenshots go to (named in the README).
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot folder");
    dir
}

/// The running pieces and the browser.
struct Run {
    app: TestApp,
    demo: String,
    browser: Session,
    shots: PathBuf,
    count: u32,
}

impl Run {
    /// Waits (100 ms steps, at most 10 s) until the page's text contains `needle`.
    async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..100 {
            let text = self.browser.text().await;
            if text.contains(needle) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{needle:?} never appeared at {}: {}",
            self.browser.url().await,
            self.browser.text().await
        );
    }

    /// Screenshots the page as `NN-name.png` and fails on console errors and CSP violations.
    /// `expected_status` names an error status the page itself was answered with (a refusal
    /// is a 403 page), which Chromium also reports on the console.
    async fn page(&mut self, name: &str, expected_status: Option<u16>) {
        self.count += 1;
        self.browser
            .screenshot(&self.shots, &format!("{:02}-{name}", self.count))
            .await;
        let problems: Vec<(String, String)> = self
            .browser
            .console()
            .await
            .into_iter()
            .filter(|(level, message)| {
                let csp = message.contains("Content Security Policy");
                // Discord's avatar CDN is not reachable from the test machine.
                let offline_avatar =
                    message.contains("cdn.discordapp.com") && message.contains("Failed to load");
                let own_status = expected_status
                    .is_some_and(|status| message.contains(&format!("status of {status}")));
                // The browser asks every origin for /favicon.ico by itself; no page links one.
                let favicon = message.contains("/favicon.ico - Failed to load resource");
                csp || (level == "SEVERE" && !offline_avatar && !own_status && !favicon)
            })
            .collect();
        assert!(
            problems.is_empty(),
            "{name}: console errors or CSP violations at {}: {problems:#?}",
            self.browser.url().await
        );
    }

    /// From the demo app's home page to the fake Discord's picker, choosing `user`.
    async fn sign_in_at_demo_as(&mut self, user: &str, shot: &str) {
        self.browser.goto(&format!("{}/", self.demo)).await;
        self.wait_for("Sign in with guildgate").await;
        self.browser.click("a[href=\"/login\"]").await;
        self.wait_for("Choose who you are").await;
        self.page(shot, None).await;
        self.browser
            .click(&format!("a.user[href$=\"user_id={user}\"]"))
            .await;
    }

    /// Allows on the consent page, then expects the demo app's claims page.
    async fn consent_and_see_claims(&mut self, shot: &str) -> String {
        self.wait_for("Allow Demo app?").await;
        self.page(&format!("consent-{shot}"), None).await;
        self.browser.click("button[value=\"allow\"]").await;
        let text = self.wait_for("ID token claims").await;
        self.page(&format!("claims-{shot}"), None).await;
        text
    }

    /// guildgate's logout confirmation, then the signed-out page.
    async fn log_out(&mut self, shot: &str) {
        self.browser
            .goto(&format!("{}/logout", self.app.address))
            .await;
        self.wait_for("Sign out?").await;
        self.page(&format!("logout-confirm-{shot}"), None).await;
        self.browser.click("button[value=\"yes\"]").await;
        self.wait_for("You are signed out").await;
        self.page(&format!("signed-out-{shot}"), None).await;
    }
}

#[tokio::test]
async fn a_real_browser_signs_in_is_refused_consents_uses_the_account_page_and_logs_out() {
    if let Some(reason) = webdriver::unavailable() {
        println!("skipping the browser test: {reason}");
        return;
    }
    // Arrange: guildgate with the fake Discord, and the demo app as its client.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the demo app");
    let demo = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("address").port()
    );
    let app = spawn_app_with(&demo_config(&demo)).await;
    let server = guildgate::demo::start(
        guildgate::demo::DemoConfig {
            issuer: app.address.clone(),
            client_id: DEMO_ID.to_owned(),
            client_secret: DEMO_SECRET.to_owned(),
            redirect_uri: format!("{demo}/callback"),
            kick: None,
        },
        listener,
    )
    .expect("the demo app starts");
    tokio::spawn(server);
    let driver = Driver::start().await;
    let browser = driver.session().await;
    let shots = screenshot_dir();
    let mut run = Run {
        app,
        demo,
        browser,
        shots,
        count: 0,
    };

    // Act and assert, page by page. Alice: picker, consent, claims.
    run.browser.goto(&format!("{}/", run.demo)).await;
    run.wait_for("Sign in with guildgate").await;
    run.page("demo-home", None).await;
    run.sign_in_at_demo_as(ALICE, "discord-picker").await;
    let claims = run.consent_and_see_claims("alice").await;
    assert!(
        claims.contains("\"preferred_username\": \"alice\""),
        "{claims}"
    );
    assert!(claims.contains("community"), "{claims}");

    // Her account page: the demo app is listed; revoking it removes it.
    run.browser
        .goto(&format!("{}/account", run.app.address))
        .await;
    let account = run.wait_for("Your account").await;
    assert!(account.contains("Demo app"), "{account}");
    assert!(account.contains("(this browser)"), "{account}");
    assert!(account.contains("Headless Chrome on Linux"), "{account}");
    run.page("account", None).await;
    run.browser
        .click("form[action$=\"/account/revoke\"] button")
        .await;
    let revoked = run.wait_for("No app holds a sign-in of yours").await;
    assert!(!revoked.contains("Revoke Demo app"), "{revoked}");
    run.page("account-after-revoke", None).await;
    run.browser
        .click("form[action$=\"/account/sign-out-everywhere\"] button")
        .await;
    run.wait_for("You are signed out").await;
    run.page("signed-out-everywhere", None).await;

    // Bob: asked again (a new person), sees the staff group, logs out.
    run.sign_in_at_demo_as(BOB, "discord-picker-bob").await;
    let claims = run.consent_and_see_claims("bob").await;
    assert!(claims.contains("staff"), "{claims}");
    run.log_out("bob").await;

    // Carol, in no guild: refused, named, offered another account; Dave takes it.
    run.sign_in_at_demo_as(CAROL, "discord-picker-carol").await;
    let refused = run.wait_for("You cannot use Demo app").await;
    assert!(refused.contains("carol"), "{refused}");
    assert!(!refused.contains(COMMUNITY), "never lists guilds");
    run.page("denied-carol", Some(403)).await;
    run.browser.click("a[href*=\"prompt=login\"]").await;
    run.wait_for("Choose who you are").await;
    run.page("discord-picker-another-account", None).await;
    run.browser
        .click(&format!("a.user[href$=\"user_id={DAVE}\"]"))
        .await;
    let claims = run.consent_and_see_claims("dave").await;
    assert!(claims.contains("dave_the_new"), "{claims}");
    run.log_out("dave").await;

    run.browser.quit().await;
    drop(driver);
    println!(
        "browser screenshots: {} pages in {}",
        run.count,
        run.shots.display()
    );
}
