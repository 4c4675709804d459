//! A real relying party: Apache httpd with Debian's mod_auth_openidc signs people in through
//! guildgate. The guildgate and Apache configuration are the two marked blocks of
//! `docs/integrations/apache-mod-auth-openidc.md`, read at build time, so the guide is what is
//! tested. Skipped (with a printed reason) where `apache2` or the module is not installed;
//! `.ci/run` installs both.

use crate::browser::{Browser, Page};
use crate::helpers::{ALICE, BOB, TestApp, spawn_app_with};
use crate::processes::free_port;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Apache binary.
const APACHE: &str = "/usr/sbin/apache2";
/// Debian's module folder (apache2 and libapache2-mod-auth-openidc).
const MODULES: &str = "/usr/lib/apache2/modules";
/// The guide under test.
const GUIDE: &str = include_str!("../../docs/integrations/apache-mod-auth-openidc.md");
/// The guide's issuer, site and passphrase file, replaced by the test's own.
const GUIDE_ISSUER: &str = "https://id.example.com";
const GUIDE_SITE: &str = "https://intranet.example.com";
const GUIDE_PASSPHRASE_FILE: &str = "/etc/apache2/oidc-passphrase";
/// The client id the guide registers.
const CLIENT: &str = "intranet";
/// Its secret: guildgate stores only its argon2id hash, Apache reads it from the environment
/// variable the guide names.
const SECRET: &str = "intranet-secret-intranet-secret-x";
/// A member of no Discord server: refused by the client's guild rule.
const CAROL: &str = "1090417266934861824";
/// What only signed-in people may read.
const MEMBERS_TEXT: &str = "members-only notes";
const STAFF_TEXT: &str = "staff-only runbook";

/// Why the test cannot run here, if it cannot.
fn missing_apache() -> Option<String> {
    let module = Path::new(MODULES).join("mod_auth_openidc.so");
    if !Path::new(APACHE).exists() {
        return Some(format!(
            "{APACHE} is not installed (apt-get install apache2)"
        ));
    }
    if !module.exists() {
        return Some(format!(
            "{} is not installed (apt-get install libapache2-mod-auth-openidc)",
            module.display()
        ));
    }
    None
}

/// Apache runs its workers as this user when started as root (it refuses to serve as root).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// The fenced block after the guide's `<!-- tested by tests/api/apache_oidc.rs: NAME -->`.
fn guide_block(name: &str) -> &'static str {
    let marker = format!("<!-- tested by tests/api/apache_oidc.rs: {name} -->");
    let (_, after) = GUIDE
        .split_once(&marker)
        .unwrap_or_else(|| panic!("the guide marks its {name} block"));
    let (_, fenced) = after.split_once("```").expect("a fenced block");
    let (_, body) = fenced.split_once('\n').expect("a fence line");
    body.split_once("```").expect("a closing fence").0
}

/// guildgate's side, from the guide: its `secret_hash` placeholder filled in, the site at
/// `base`, and the encryption key the guide asks for in the environment.
fn guildgate_config(base: &str) -> String {
    let hash = guildgate::clients::hash_secret(SECRET).expect("hash the secret");
    let block = guide_block("guildgate").replace(GUIDE_SITE, base);
    assert!(
        block.contains(&format!("id = \"{CLIENT}\"")),
        "the guide registers {CLIENT}"
    );
    let lines: Vec<String> = block
        .lines()
        .map(|line| {
            if line.starts_with("secret_hash = ") {
                format!("secret_hash = \"{hash}\"")
            } else {
                line.to_owned()
            }
        })
        .collect();
    format!(
        "{}\n[secrets]\nencryption_key = \"{}\"\n",
        lines.join("\n"),
        "ab".repeat(32)
    )
}

/// A running Apache in its own folder; stopped (SIGTERM, then SIGKILL) when dropped.
struct Apache {
    /// `http://127.0.0.1:PORT`.
    base: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Apache {
    /// Writes the guide's configuration for `issuer` into a fresh folder and starts Apache on
    /// `port`, returning once it accepts connections.
    fn start(issuer: &str, port: u16) -> Apache {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        write_site(&root);
        let conf = root.join("httpd.conf");
        std::fs::write(&conf, httpd_conf(&root, issuer, port)).expect("write httpd.conf");
        std::fs::write(
            root.join("oidc-passphrase"),
            "test-passphrase-not-for-production\n",
        )
        .expect("write the passphrase");
        // The workers run as www-data when we are root: let them read the site.
        allow_reading(&root);
        let child = Command::new(APACHE)
            .env("GUILDGATE_CLIENT_SECRET", SECRET)
            .arg("-f")
            .arg(&conf)
            .arg("-DFOREGROUND")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("apache2 starts");
        let mut apache = Apache {
            base: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        apache.wait_until_listening(port);
        apache
    }

    /// Polls the port (Apache needs a few hundred milliseconds to load its modules).
    fn wait_until_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!("apache2 exited ({status}): {stderr}\n{}", self.error_log());
            }
            assert!(
                Instant::now() < deadline,
                "apache2 did not listen: {}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Apache's error log, for failure messages.
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// `base` + `path`.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM lets the parent stop its workers and remove its shared memory.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The protected pages: server-side includes print what mod_auth_openidc passed on.
fn write_site(root: &Path) {
    let page = |text: &str| {
        format!(
            "<p>{text}</p>\n\
             <p>user=<!--#echo var=\"REMOTE_USER\" --></p>\n\
             <p>email=<!--#echo var=\"OIDC_CLAIM_email\" --></p>\n\
             <p>groups=<!--#echo var=\"OIDC_CLAIM_groups\" --></p>\n"
        )
    };
    for (folder, text) in [("members", MEMBERS_TEXT), ("staff", STAFF_TEXT)] {
        let dir = root.join("htdocs").join(folder);
        std::fs::create_dir_all(&dir).expect("site folder");
        std::fs::write(dir.join("index.shtml"), page(text)).expect("page");
    }
    std::fs::write(
        root.join("htdocs").join("signed-out.html"),
        "you are signed out\n",
    )
    .expect("signed-out page");
}

/// A self-contained Apache (its own folder, port and modules; server-side includes to print
/// what the module passes on) around the guide's block, pointed at `issuer` and `port`.
fn httpd_conf(root: &Path, issuer: &str, port: u16) -> String {
    let guide = guide_block("apache")
        .replace(GUIDE_ISSUER, issuer)
        .replace(GUIDE_SITE, &format!("http://127.0.0.1:{port}"))
        .replace(
            GUIDE_PASSPHRASE_FILE,
            &root.join("oidc-passphrase").display().to_string(),
        );
    let root = root.display();
    let user = if running_as_root() {
        "User www-data\nGroup www-data\n"
    } else {
        ""
    };
    let module = |name: &str, file: &str| format!("LoadModule {name} {MODULES}/{file}\n");
    let modules: String = [
        ("mpm_event_module", "mod_mpm_event.so"),
        ("authn_core_module", "mod_authn_core.so"),
        ("authz_core_module", "mod_authz_core.so"),
        ("authz_user_module", "mod_authz_user.so"),
        ("include_module", "mod_include.so"),
        ("auth_openidc_module", "mod_auth_openidc.so"),
    ]
    .iter()
    .map(|(name, file)| module(name, file))
    .collect();
    format!(
        r#"ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
DefaultRuntimeDir "{root}"
ErrorLog "{root}/error.log"
LogLevel warn auth_openidc:info
{user}{modules}
DocumentRoot "{root}/htdocs"
<Directory "{root}/htdocs">
    Options +Includes
    SetOutputFilter INCLUDES
</Directory>

{guide}"#
    )
}

/// Makes the folder tree readable by Apache's workers (temp folders are private to us).
fn allow_reading(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let is_dir = path.is_dir();
        let mode = if is_dir { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        if is_dir {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                stack.push(entry.expect("dir entry").path());
            }
        }
    }
}

/// guildgate with the guide's client, and Apache with the guide's configuration.
async fn guildgate_and_apache() -> (TestApp, Apache) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let app = spawn_app_with(&guildgate_config(&base)).await;
    let apache = Apache::start(&app.address, port);
    (app, apache)
}

/// Resolves a `Location` against the URL it came from.
fn resolve(from: &str, location: &str) -> String {
    url::Url::parse(from)
        .and_then(|u| u.join(location))
        .expect("a valid Location")
        .to_string()
}

/// Opens `path` on Apache as a person who is not signed in there, signs in at Discord as
/// `user` when guildgate sends the browser there, and follows every redirect to the end.
async fn visit_signing_in_as(
    app: &TestApp,
    apache: &Apache,
    browser: &mut Browser,
    path: &str,
    user: &str,
) -> Page {
    app.discord.sign_in_as(Some(user));
    follow(apache, browser, &apache.url(path)).await
}

/// Opens `url` and follows redirects (Apache, guildgate, the fake Discord) to the last page.
async fn follow(apache: &Apache, browser: &mut Browser, url: &str) -> Page {
    let mut url = url.to_owned();
    for _ in 0..10 {
        let page = browser.get(&url).await;
        match page.location.as_deref() {
            Some(next) if matches!(page.status, 301 | 302 | 303 | 307) => {
                url = resolve(&url, next);
            }
            _ => return page,
        }
    }
    panic!("more than 10 redirects, last {url}\n{}", apache.error_log())
}

#[tokio::test]
async fn the_apache_guides_guildgate_block_registers_a_client_that_signs_in() {
    // Arrange: the guide's block as an operator pastes it (runs without Apache).
    let app = spawn_app_with(&guildgate_config(GUIDE_SITE)).await;
    let redirect = format!("{GUIDE_SITE}/oidc/callback");

    // Act
    let page = Browser::new()
        .get(&app.authorize_url(CLIENT, &redirect, &[("scope", "openid groups")]))
        .await;

    // Assert: guildgate accepts the client and its redirect URI and sends the browser to Discord.
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(
        page.location
            .as_deref()
            .is_some_and(|l| l.starts_with(app.discord.base_url().as_str())),
        "{:?}",
        page.location
    );
}

#[tokio::test]
async fn apache_with_mod_auth_openidc_signs_a_member_in_and_shows_her_claims() {
    if let Some(reason) = missing_apache() {
        println!("skipped: {reason}");
        return;
    }
    // Arrange
    let (app, apache) = guildgate_and_apache().await;
    let mut browser = Browser::new();

    // Act: Alice opens the members' page, goes through guildgate and Discord, and comes back.
    let page =
        visit_signing_in_as(&app, &apache, &mut browser, "/members/index.shtml", ALICE).await;

    // Assert
    assert_eq!(page.status, 200, "{}\n{}", page.body, apache.error_log());
    assert!(page.body.contains(MEMBERS_TEXT), "{}", page.body);
    assert!(page.body.contains("user=alice"), "{}", page.body);
    assert!(
        page.body.contains("email=alice@example.com"),
        "{}",
        page.body
    );
    assert!(page.body.contains("groups=community<"), "{}", page.body);
}

#[tokio::test]
async fn apache_admits_only_the_staff_group_where_it_requires_the_groups_claim() {
    if let Some(reason) = missing_apache() {
        println!("skipped: {reason}");
        return;
    }
    // Arrange
    let (app, apache) = guildgate_and_apache().await;
    let (mut alice, mut bob) = (Browser::new(), Browser::new());

    // Act: a member and a staff member open the staff page.
    let member = visit_signing_in_as(&app, &apache, &mut alice, "/staff/index.shtml", ALICE).await;
    let staff = visit_signing_in_as(&app, &apache, &mut bob, "/staff/index.shtml", BOB).await;

    // Assert
    assert!(
        matches!(member.status, 401 | 403),
        "a member without the staff group is refused: {} {}",
        member.status,
        member.body
    );
    assert!(!member.body.contains(STAFF_TEXT), "{}", member.body);
    assert_eq!(staff.status, 200, "{}\n{}", staff.body, apache.error_log());
    assert!(staff.body.contains(STAFF_TEXT), "{}", staff.body);
    assert!(
        staff.body.contains("groups=community,staff"),
        "{}",
        staff.body
    );
}

#[tokio::test]
async fn a_person_outside_the_clients_guilds_never_reaches_apaches_pages() {
    if let Some(reason) = missing_apache() {
        println!("skipped: {reason}");
        return;
    }
    // Arrange
    let (app, apache) = guildgate_and_apache().await;
    let mut browser = Browser::new();

    // Act: Carol (in no Discord server) opens the members' page.
    let page =
        visit_signing_in_as(&app, &apache, &mut browser, "/members/index.shtml", CAROL).await;

    // Assert: guildgate's refusal page, not Apache's content.
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("only open to members"), "{}", page.body);
    assert!(!page.body.contains(MEMBERS_TEXT));
}

#[tokio::test]
async fn signing_out_through_mod_auth_openidc_ends_the_guildgate_session_too() {
    if let Some(reason) = missing_apache() {
        println!("skipped: {reason}");
        return;
    }
    // Arrange: Alice is signed in to Apache.
    let (app, apache) = guildgate_and_apache().await;
    let mut browser = Browser::new();
    let page =
        visit_signing_in_as(&app, &apache, &mut browser, "/members/index.shtml", ALICE).await;
    assert_eq!(page.status, 200, "{}", page.body);

    // Act: the logout link of the guide (mod_auth_openidc → guildgate's end_session_endpoint
    // with an id_token_hint → back to the registered post-logout URI).
    let logout = format!(
        "/oidc/callback?logout={}",
        url::form_urlencoded::byte_serialize(apache.url("/signed-out.html").as_bytes())
            .collect::<String>()
    );
    let after = follow(&apache, &mut browser, &apache.url(&logout)).await;
    let again = browser.get(&apache.url("/members/index.shtml")).await;
    let to_guildgate = again.location.clone().unwrap_or_default();
    let at_guildgate = browser.get(&to_guildgate).await;

    // Assert: back on the signed-out page; the next visit needs Discord again.
    assert_eq!(after.status, 200, "{}", after.body);
    assert!(after.body.contains("you are signed out"), "{}", after.body);
    assert!(
        to_guildgate.starts_with(&format!("{}/authorize?", app.address)),
        "Apache forgot the session: {} {to_guildgate}",
        again.status
    );
    assert!(
        at_guildgate
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with(app.discord.base_url().as_str())),
        "guildgate's session ended, so it asks Discord: {} {:?}",
        at_guildgate.status,
        at_guildgate.location
    );
}

#[tokio::test]
async fn revoking_a_person_in_guildgate_signs_them_out_of_apache_by_back_channel() {
    if let Some(reason) = missing_apache() {
        println!("skipped: {reason}");
        return;
    }
    // Arrange: Alice is signed in to Apache.
    let (app, apache) = guildgate_and_apache().await;
    let mut browser = Browser::new();
    let members = apache.url("/members/index.shtml");
    let page =
        visit_signing_in_as(&app, &apache, &mut browser, "/members/index.shtml", ALICE).await;
    assert_eq!(page.status, 200, "{}", page.body);

    // Act: `guildgate users revoke` (its flow) ends her sessions and queues logout tokens.
    let now = app.state.clock.now();
    guildgate::flows::logout::revoke_user(
        &app.state.context(),
        &crate::helpers::discord_id(ALICE),
        now,
    )
    .await
    .expect("revoke");

    // Assert: mod_auth_openidc accepts the logout token and drops her Apache session.
    let mut status = 200;
    for _ in 0..50 {
        status = browser.get(&members).await.status;
        if status != 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        302,
        "Apache sends her to sign in again\n{}",
        apache.error_log()
    );
}
