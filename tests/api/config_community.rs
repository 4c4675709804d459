//! Configuration of the community settings (issue 26), in `config_validation.rs`'s style: one
//! table row per rule on `profile_guild`, `group_format` and `[[clients.claims]]`, every name
//! OIDC or guildgate reserves refused, every mistake reported at once, and a whole valid set.

use crate::config_validation::{client_with_redirect, load, problem_keys};

/// A valid mapped claim, appended to a client.
const MAPPED: &str = "[[clients.claims]]\nname = \"team\"\ndefault = \"everyone\"\n";

#[test]
fn each_community_rule_reports_its_key() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "profile guild that is no snowflake",
            format!(
                "{}profile_guild = \"community\"",
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].profile_guild",
        ),
        (
            "default profile guild that is no snowflake",
            "[discord]\nprofile_guild = \"community\"".into(),
            "discord.profile_guild",
        ),
        (
            "profile guild without guilds.members.read or a bot",
            format!(
                "[discord]\nscopes = [\"identify\", \"guilds\"]\nprofile_guild = \"812345678901234567\"\n[secrets]\nencryption_key = \"{}\"\n{}",
                "ab".repeat(32),
                client_with_redirect("https://a.example/cb")
            ),
            "discord.scopes",
        ),
        (
            "unknown group format",
            format!(
                "{}group_format = \"label\"",
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].group_format",
        ),
        (
            "role names without a bot",
            format!(
                "[[groups]]\nname = \"staff\"\nguild = \"812345678901234567\"\nrole = \"845611301132730378\"\n[secrets]\nencryption_key = \"{}\"\n{}groups = [\"staff\"]\ngroup_format = \"name\"",
                "ab".repeat(32),
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].group_format",
        ),
        (
            "mapped claim with an unknown scope",
            format!(
                "{}{MAPPED}scope = \"offline_access\"",
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].claims[0].scope",
        ),
        (
            "mapped claim with neither rules nor a default",
            format!(
                "{}[[clients.claims]]\nname = \"team\"",
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].claims[0].rules",
        ),
        (
            "rule with two conditions",
            format!(
                "{}[[clients.claims]]\nname = \"team\"\nrules = [{{ always = true, guild = \"812345678901234567\", value = \"x\" }}]",
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].claims[0].rules[0]",
        ),
        (
            "rule without a value",
            format!(
                "{}[[clients.claims]]\nname = \"team\"\nrules = [{{ always = true }}]",
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].claims[0].rules[0].value",
        ),
        (
            "value that is neither a string nor a list of strings",
            format!(
                "{}[[clients.claims]]\nname = \"team\"\nrules = [{{ always = true, value = 3 }}]",
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].claims[0].rules[0].value",
        ),
        (
            "default that is a list of numbers",
            format!(
                "{}[[clients.claims]]\nname = \"team\"\ndefault = [1, 2]",
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].claims[0].default",
        ),
        (
            "role rule that is no guild:role pair",
            format!(
                "{}[[clients.claims]]\nname = \"team\"\nrules = [{{ role = \"812345678901234567\", value = \"x\" }}]",
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].claims[0].rules[0].role",
        ),
        (
            "connection rule without the Discord scope",
            format!(
                "{}[[clients.claims]]\nname = \"team\"\nrules = [{{ connection = \"github\", value = \"x\" }}]",
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].claims[0].rules[0].connection",
        ),
        (
            "mapped claim declared twice",
            format!(
                "{}{MAPPED}{MAPPED}",
                client_with_redirect("https://a.example/cb")
            ),
            "clients[0].claims[1].name",
        ),
    ];
    for (name, toml, key) in cases {
        let keys = problem_keys(&toml);
        assert!(
            keys.iter().any(|k| k == key),
            "case {name:?}: expected a problem at {key}, got {keys:?}"
        );
    }
}

#[test]
fn every_name_oidc_or_guildgate_reserves_is_refused_for_a_mapped_claim() {
    for name in guildgate::config::RESERVED_CLAIMS
        .iter()
        .chain(&["sub", "nonce", "cnf"])
    {
        let toml = format!(
            "{}[[clients.claims]]\nname = {name:?}\ndefault = \"x\"",
            client_with_redirect("https://a.example/cb")
        );
        let keys = problem_keys(&toml);
        assert_eq!(keys, vec!["clients[0].claims[0].name"], "{name}: {keys:?}");
    }
}

#[test]
fn every_mistake_in_mapped_claims_is_reported_at_once() {
    let toml = format!(
        "{}profile_guild = \"x\"\n\
         [[clients.claims]]\nname = \"sub\"\ndefault = \"x\"\n\
         [[clients.claims]]\nname = \"email_verified\"\nrules = [{{ guild = \"general\", value = \"x\" }}]\n\
         [[clients.claims]]\nname = \"ok\"\nscope = \"everything\"\ndefault = \"x\"",
        client_with_redirect("https://a.example/cb")
    );
    let keys = problem_keys(&toml);
    for key in [
        "clients[0].profile_guild",
        "clients[0].claims[0].name",
        "clients[0].claims[1].name",
        "clients[0].claims[1].rules[0].guild",
        "clients[0].claims[2].scope",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
    }
}

#[test]
fn community_settings_that_fit_together_validate() {
    let toml = format!(
        r#"
[discord]
scopes = ["identify", "email", "guilds", "guilds.members.read", "connections"]
profile_guild = "812345678901234567"

[discord.bot]
token = "MTIz.YWJj.ZGVm"

[secrets]
encryption_key = "{key}"

[[groups]]
name = "staff"
guild = "812345678901234567"
role = "845611301132730378"

[[clients]]
id = "grafana"
public = true
redirect_uris = ["https://grafana.example.com/login/generic_oauth"]
groups = ["staff"]
group_format = "both"

[[clients.claims]]
name = "grafana_role"
rules = [
  {{ role = "812345678901234567:845611301132730378", value = "Admin" }},
  {{ guild = "812345678901234567", value = ["Viewer"] }},
  {{ connection = "github", value = "Editor" }},
  {{ always = true, value = "Viewer" }},
]
default = "Viewer"

[[clients]]
id = "plain"
public = true
redirect_uris = ["https://plain.example.com/cb"]
profile_guild = ""
"#,
        key = "ab".repeat(32)
    );
    let config = load(&toml, &[])
        .unwrap()
        .validate()
        .unwrap_or_else(|p| panic!("{p:?}"));
    let grafana = &config.clients[0];
    assert_eq!(
        grafana.profile_guild.as_ref().map(|g| g.as_str()),
        Some("812345678901234567"),
        "the [discord] default"
    );
    assert_eq!(grafana.claims[0].rules.len(), 4);
    assert!(
        config.clients[1].profile_guild.is_none(),
        "\"\" turns it off"
    );
    assert_eq!(config.role_name_guilds, vec!["812345678901234567"]);
}
