//! Configuration: layering, unknown keys, and one table row per validation rule.

use guildgate::config::Settings;

/// Loads defaults + `toml` (as a config file) + `env`.
pub(crate) fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("guildgate.toml");
    std::fs::write(&file, toml).unwrap();
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Settings::load_with(Some(&file), env).map_err(|e| e.to_string())
}

/// The keys of every problem `validate` reports.
pub(crate) fn problem_keys(toml: &str) -> Vec<String> {
    match load(toml, &[]).expect("loads").validate() {
        Ok(_) => vec![],
        Err(problems) => problems.into_iter().map(|p| p.key).collect(),
    }
}

const CLIENT: &str = r#"
[[clients]]
id = "wiki"
public = true
"#;

/// A public client with one redirect URI, to append `key = value` lines to.
pub(crate) fn client_with_redirect(uri: &str) -> String {
    format!("{CLIENT}redirect_uris = [{uri:?}]\n")
}

#[test]
fn the_defaults_are_valid() {
    let config = load("", &[])
        .unwrap()
        .validate()
        .expect("defaults validate");
    assert_eq!(config.issuer.as_str(), "http://localhost:8080");
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("discord.client_id")),
        "an unconfigured Discord app is worth a warning"
    );
}

#[test]
fn each_rule_reports_its_key() {
    let cases: Vec<(&str, String, &str)> = vec![
        ("relative issuer", r#"issuer = "/id""#.into(), "issuer"),
        ("http issuer off loopback", r#"issuer = "http://id.example.com""#.into(), "issuer"),
        ("issuer with query", r#"issuer = "https://id.example.com/?a=b""#.into(), "issuer"),
        ("issuer with fragment", r#"issuer = "https://id.example.com/#x""#.into(), "issuer"),
        ("listen address", "[server]\nlisten = \"localhost\"".into(), "server.listen"),
        ("accent that is not a colour", "[ui]\naccent = \"red; } body { display: none\"".into(), "ui.accent"),
        ("logo over plain http", "[ui]\nlogo_url = \"http://cdn.example.com/logo.png\"".into(), "ui.logo_url"),
        ("empty page title", "[ui]\ntitle = \" \"".into(), "ui.title"),
        ("missing templates folder", "[ui]\ntemplates_dir = \"/nonexistent/guildgate-templates\"".into(), "ui.templates_dir"),
        (
            "metrics listen address",
            "[server]\nmetrics_listen = \"localhost\"".into(),
            "server.metrics_listen",
        ),
        ("bad duration", "[tokens]\ncode_ttl = \"sixty\"".into(), "tokens.code_ttl"),
        ("zero duration", "[session]\nttl = \"0s\"".into(), "session.ttl"),
        ("code lives too long", "[tokens]\ncode_ttl = \"1h\"".into(), "tokens.code_ttl"),
        (
            "unknown access token algorithm",
            "[tokens]\naccess_token_alg = \"HS256\"".into(),
            "tokens.access_token_alg",
        ),
        (
            "duplicate client id",
            format!("{}{}", client_with_redirect("https://a.example/cb"), client_with_redirect("https://b.example/cb")),
            "clients[1].id",
        ),
        (
            "client without secret or public",
            "[[clients]]\nid = \"x\"\nredirect_uris = [\"https://a.example/cb\"]".into(),
            "clients[0].secret_hash",
        ),
        (
            "secret_hash that is not a PHC string",
            "[[clients]]\nid = \"x\"\nsecret_hash = \"hunter2\"\nredirect_uris = [\"https://a.example/cb\"]".into(),
            "clients[0].secret_hash",
        ),
        (
            "public client with a secret",
            "[[clients]]\nid = \"x\"\npublic = true\nsecret = \"s3cr3t-s3cr3t-s3cr3t\"\nredirect_uris = [\"https://a.example/cb\"]".into(),
            "clients[0].public",
        ),
        ("no redirect uri", format!("{CLIENT}redirect_uris = []"), "clients[0].redirect_uris"),
        ("relative redirect", client_with_redirect("/cb"), "clients[0].redirect_uris[0]"),
        ("redirect with fragment", client_with_redirect("https://a.example/cb#x"), "clients[0].redirect_uris[0]"),
        ("wildcard redirect", client_with_redirect("https://*.example.com/cb"), "clients[0].redirect_uris[0]"),
        ("http redirect off loopback", client_with_redirect("http://a.example/cb"), "clients[0].redirect_uris[0]"),
        ("javascript: redirect", client_with_redirect("javascript:alert(1)"), "clients[0].redirect_uris[0]"),
        ("JavaScript: in mixed case", client_with_redirect("JaVaScRiPt:alert(1)"), "clients[0].redirect_uris[0]"),
        ("data: redirect", client_with_redirect("DATA:text/html,x"), "clients[0].redirect_uris[0]"),
        ("file: redirect", client_with_redirect("File:///etc/passwd"), "clients[0].redirect_uris[0]"),
        ("bad guild id", "[access]\nallowed_guilds = [\"general\"]".into(), "access.allowed_guilds[0]"),
        ("bad role pair", "[access]\nrequired_roles = [\"123456789012345678\"]".into(), "access.required_roles[0]"),
        ("bad encryption key", "[secrets]\nencryption_key = \"abc\"".into(), "secrets.encryption_key"),
        ("bad listed encryption key", format!("[secrets]\nencryption_keys = [\"{}\", \"xyz\"]", "ab".repeat(32)), "secrets.encryption_keys[1]"),
        ("pairwise without encryption_key", format!("[secrets]\nencryption_keys = [\"{}\"]\n[[clients]]\nid = \"p\"\npublic = true\nredirect_uris = [\"https://p.example.com/cb\"]\nsubject_type = \"pairwise\"", "ab".repeat(32)), "secrets.encryption_key"),
        ("unknown log format", "[log]\nformat = \"xml\"".into(), "log.format"),
        ("unsupported database", "[database]\nurl = \"mysql://x\"".into(), "database.url"),
        ("rate without a period", "[limits]\nfailed_auth_per_ip = \"10\"".into(), "limits.failed_auth_per_ip"),
        ("rate with an unknown unit", "[limits]\nfailed_auth_per_client = \"10/fortnight\"".into(), "limits.failed_auth_per_client"),
        ("zero rate", "[limits]\nfailed_auth_per_ip = \"0/min\"".into(), "limits.failed_auth_per_ip"),
        ("no pending logins at all", "[limits]\npending_logins_per_ip = 0".into(), "limits.pending_logins_per_ip"),
        ("request rate that is not a rate", "[limits]\ntoken_per_client = \"fast\"".into(), "limits.token_per_client"),
        ("request rate of zero", "[limits]\nauthorize_per_ip = \"0/s\"".into(), "limits.authorize_per_ip"),
        ("trusted proxy that is not an address", "[server]\ntrusted_proxies = [\"proxy.local\"]".into(), "server.trusted_proxies[0]"),
        ("shutdown timeout that is not a duration", "[server]\nshutdown_timeout = \"soon\"".into(), "server.shutdown_timeout"),
        ("keys never re-read", "[keys]\nreload_every = \"0s\"".into(), "keys.reload_every"),
        ("no delivery lease", "[jobs]\nlogout_lease = \"soon\"".into(), "jobs.logout_lease"),
        ("no clean-up interval", "[jobs]\ngc_every = \"0s\"".into(), "jobs.gc_every"),
        (
            "connections claim without the Discord scope",
            format!("{}connections = true", client_with_redirect("https://a.example/cb")),
            "clients[0].connections",
        ),
        (
            "required connection without the Discord scope",
            format!("{}required_connections = [\"github\"]", client_with_redirect("https://a.example/cb")),
            "clients[0].required_connections",
        ),
        (
            "connection type that is no Discord service",
            format!("[discord]\nscopes = [\"identify\", \"connections\"]\n{}required_connections = [\"GitHub!\"]", client_with_redirect("https://a.example/cb")),
            "clients[0].required_connections[0]",
        ),
        (
            "bot token that is no bot token",
            "[discord.bot]\ntoken = \"Bot abc\"\nguilds = [\"812345678901234567\"]".into(),
            "discord.bot.token",
        ),
        (
            "rule guild the bot does not watch",
            "[access]\nallowed_guilds = [\"812345678901234567\"]\n[discord.bot]\ntoken = \"MTIz.YWJj.ZGVm\"\nguilds = [\"903377456278183956\"]".into(),
            "discord.bot.guilds",
        ),
        (
            "bot watching nothing",
            "[discord.bot]\ntoken = \"MTIz.YWJj.ZGVm\"".into(),
            "discord.bot.guilds",
        ),
        (
            "gateway URL that is not a WebSocket URL",
            "[discord.bot]\ntoken = \"MTIz.YWJj.ZGVm\"\nguilds = [\"812345678901234567\"]\ngateway_url = \"https://gateway.example\"".into(),
            "discord.bot.gateway_url",
        ),
        (
            "secret_hash that is not argon2",
            "[[clients]]\nid = \"x\"\nsecret_hash = \"$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2g\"\nredirect_uris = [\"https://a.example/cb\"]".into(),
            "clients[0].secret_hash",
        ),
    ];
    for (name, toml, key) in cases.into_iter().chain(grant_cases()) {
        let keys = problem_keys(&toml);
        assert!(
            keys.iter().any(|k| k == key),
            "case {name:?}: expected a problem at {key}, got {keys:?}"
        );
    }
}

/// A confidential client for service tokens, with `extra` lines.
fn service_client(extra: &str) -> String {
    format!(
        "[[clients]]\nid = \"x\"\nsecret = \"s3cr3t-s3cr3t-s3cr3t\"\nclient_credentials = true\n{extra}"
    )
}

/// A JWK Set of one key, as `jwks = '…'`: a fresh public P-256 key with `extra` members.
fn jwks_with(extra: serde_json::Value) -> String {
    let mut key = crate::proof_keys::AppKey::new("k1").jwk;
    for (name, value) in extra.as_object().expect("members") {
        key[name] = value.clone();
    }
    format!("jwks = '{}'", serde_json::json!({ "keys": [key] }))
}

/// The rules of the grants beyond the code flow and of client authentication.
fn grant_cases() -> Vec<(&'static str, String, &'static str)> {
    let secret_client = "[[clients]]\nid = \"x\"\nsecret = \"s3cr3t-s3cr3t-s3cr3t\"\nredirect_uris = [\"https://a.example/cb\"]\n";
    let oct =
        r#"jwks = '{"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "kid": "s"}]}'"#;
    vec![
        (
            "service tokens for a public client",
            "[[clients]]\nid = \"x\"\npublic = true\nclient_credentials = true".into(),
            "clients[0].client_credentials",
        ),
        (
            "a person scope among a service's allowed scopes",
            service_client("allowed_scopes = [\"deploy\", \"openid\"]"),
            "clients[0].allowed_scopes[1]",
        ),
        (
            "allowed scopes without service tokens",
            format!("{secret_client}allowed_scopes = [\"deploy\"]"),
            "clients[0].allowed_scopes",
        ),
        (
            "jwks and jwks_uri both",
            service_client(&format!(
                "{}\njwks_uri = \"https://ci.example.com/jwks.json\"",
                jwks_with(serde_json::json!({}))
            )),
            "clients[0].jwks_uri",
        ),
        (
            "a private key in jwks",
            service_client(&jwks_with(
                serde_json::json!({ "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI" }),
            )),
            "clients[0].jwks",
        ),
        (
            "a symmetric key in jwks",
            service_client(oct),
            "clients[0].jwks",
        ),
        (
            "jwks_uri over plain http off loopback",
            service_client("jwks_uri = \"http://ci.example.com/jwks.json\""),
            "clients[0].jwks_uri",
        ),
        (
            "auth method none with a secret",
            format!("{secret_client}token_endpoint_auth_method = \"none\""),
            "clients[0].token_endpoint_auth_method",
        ),
        (
            "private_key_jwt without keys",
            format!("{secret_client}token_endpoint_auth_method = \"private_key_jwt\""),
            "clients[0].token_endpoint_auth_method",
        ),
        (
            "unknown auth method",
            format!("{secret_client}token_endpoint_auth_method = \"client_secret_jwt\""),
            "clients[0].token_endpoint_auth_method",
        ),
        (
            "unknown ID token algorithm",
            format!("{secret_client}id_token_signed_response_alg = \"HS256\""),
            "clients[0].id_token_signed_response_alg",
        ),
        (
            "pushed requests that live too long",
            "[tokens]\nrequest_uri_ttl = \"11m\"".into(),
            "tokens.request_uri_ttl",
        ),
        (
            "user codes that can never be entered",
            "[limits]\nuser_code_entries = 0".into(),
            "limits.user_code_entries",
        ),
    ]
}

#[test]
fn clients_beyond_the_code_flow_need_no_redirect_uris() {
    let device_only = "[[clients]]\nid = \"tv\"\npublic = true\ndevice_flow = true\n";
    let service_with_keys = format!(
        "[[clients]]\nid = \"ci\"\nclient_credentials = true\nallowed_scopes = [\"deploy\"]\n{}\n",
        jwks_with(serde_json::json!({}))
    );
    for (name, toml) in [
        ("device only", device_only.to_owned()),
        ("service with keys", service_with_keys),
    ] {
        assert_eq!(problem_keys(&toml), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn good_values_pass_each_rule() {
    let ok = format!(
        "issuer = \"https://id.example.com\"\n[tokens]\nrefresh_token_ttl = \"30d\"\n{}",
        client_with_redirect("http://127.0.0.1:9000/cb")
    );
    assert_eq!(problem_keys(&ok), Vec::<String>::new());
}

#[test]
fn several_mistakes_are_all_reported_at_once() {
    let toml = format!(
        "issuer = \"http://id.example.com\"\n[server]\nlisten = \"nope\"\n[tokens]\naccess_token_ttl = \"soon\"\n{}",
        client_with_redirect("javascript:alert(1)")
    );
    let keys = problem_keys(&toml);
    for key in [
        "issuer",
        "server.listen",
        "tokens.access_token_ttl",
        "clients[0].redirect_uris[0]",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
    }
}

#[test]
fn a_plain_secret_is_accepted_with_a_loud_warning() {
    let toml = "[[clients]]\nid = \"dev\"\nsecret = \"dev-secret-dev-secret\"\nredirect_uris = [\"https://a.example/cb\"]";
    let config = load(toml, &[]).unwrap().validate().expect("valid");
    assert!(
        config.warnings.iter().any(|w| w.contains("plain `secret`")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn unknown_keys_are_rejected_together_with_every_other_problem() {
    let keys = problem_keys(
        "isuer = \"https://x\"\n[server]\nlisten = \"127.0.0.1:8080\"\nlistne = \"x\"\n\
         [tokens]\ncode_ttl = \"1h\"\n[[clients]]\nid = \"a\"\npublik = true\n",
    );
    for key in [
        "isuer",
        "server.listne",
        "tokens.code_ttl",
        "clients[0].publik",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
    }
    let env_typo = load("", &[("GUILDGATE__SERVER__LISTNE", "x")])
        .expect("loads")
        .validate()
        .expect_err("an unknown key from the environment is a problem too");
    assert!(
        env_typo.iter().any(|p| p.key == "server.listne"),
        "{env_typo:?}"
    );
}

#[test]
fn environment_variables_override_the_file() {
    let settings = load(
        "[server]\nlisten = \"127.0.0.1:1\"",
        &[
            ("GUILDGATE__SERVER__LISTEN", "0.0.0.0:9999"),
            ("GUILDGATE__DISCORD__CLIENT_ID", "123456789012345678"),
            ("GUILDGATE__DISCORD__CLIENT_SECRET", "from-env"),
            ("GUILDGATE__DISCORD__SCOPES", "identify,guilds"),
            ("GUILDGATE__DATABASE__MAX_CONNECTIONS", "3"),
        ],
    )
    .unwrap();
    assert_eq!(settings.server.listen, "0.0.0.0:9999");
    assert_eq!(settings.discord.client_id, "123456789012345678");
    assert_eq!(settings.discord.scopes, vec!["identify", "guilds"]);
    assert_eq!(settings.database.max_connections, 3);
    settings
        .validate()
        .expect("env-configured settings validate");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let settings = load(
        "[discord]\nclient_secret = \"super-secret-value\"\n[[clients]]\nid = \"a\"\nsecret = \"another-secret-value\"\nredirect_uris = [\"https://a.example/cb\"]",
        &[("GUILDGATE__DATABASE__URL", "postgres://u:db-password@localhost/db")],
    )
    .unwrap();
    let debug = format!("{settings:?}");
    for secret in ["super-secret-value", "another-secret-value", "db-password"] {
        assert!(!debug.contains(secret), "{secret} leaked into Debug");
    }
}

#[test]
fn a_template_that_does_not_compile_is_a_problem_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("denied.html"), "{% if %}broken").unwrap();
    let toml = format!(
        "[ui]\ntemplates_dir = {:?}\n",
        dir.path().display().to_string()
    );

    let problems = load(&toml, &[]).expect("loads").validate().unwrap_err();

    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "ui.templates_dir");
    assert!(problems[0].message.contains("denied.html"), "{problems:?}");
}
