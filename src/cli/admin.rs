//! Admin conveniences: `clients add` (a new registration with a generated secret), `clients
//! list` (what is registered, with its rules) and `users show` (one person's sessions, grants,
//! consents and last membership snapshot).

use crate::config::{ClientSettings, Settings};
use crate::domain::{ClientId, DiscordId, OpaqueToken, RedirectUri};
use crate::state::Clock;
use std::fmt::Write as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What `guildgate clients add` was asked for.
#[derive(Debug, Clone)]
pub struct NewClient<'a> {
    /// The display name; the id is derived from it unless given.
    pub name: &'a str,
    /// An explicit client id.
    pub id: Option<&'a str>,
    /// Exact redirect URIs (at least one).
    pub redirect_uris: &'a [String],
    /// A public client (no secret, PKCE required).
    pub public: bool,
}

/// A generated registration: the secret to hand to the app (once) and the TOML to paste.
#[derive(Debug)]
pub struct Registration {
    /// The client id.
    pub id: String,
    /// The plain secret, for a confidential client; never stored by guildgate.
    pub secret: Option<String>,
    /// The `[[clients]]` block with the secret's argon2id hash.
    pub toml: String,
}

/// `guildgate clients add`: validates the request against the configuration (the id must be
/// new) and generates a 256-bit secret, which only the argon2id hash in the TOML keeps.
pub fn add_client(settings: &Settings, request: &NewClient<'_>) -> anyhow::Result<Registration> {
    let id = match request.id {
        Some(id) => id.to_owned(),
        None => id_from_name(request.name),
    };
    let id = ClientId::parse(&id)
        .map_err(|e| anyhow::anyhow!("{e}; choose one with --id"))?
        .as_str()
        .to_owned();
    if settings.clients.iter().any(|c| c.id == id) {
        anyhow::bail!("a client with id {id:?} is already registered; choose another with --id");
    }
    if request.redirect_uris.is_empty() {
        anyhow::bail!("give at least one --redirect-uri (matched exactly at /authorize)");
    }
    for uri in request.redirect_uris {
        RedirectUri::parse(uri).map_err(|e| anyhow::anyhow!("--redirect-uri {uri}: {e}"))?;
    }
    let secret = (!request.public).then(|| OpaqueToken::generate().expose().to_owned());
    let mut toml = String::from("[[clients]]\n");
    let _ = writeln!(toml, "id = {}", toml_string(&id));
    let _ = writeln!(toml, "name = {}", toml_string(request.name));
    match &secret {
        Some(secret) => {
            let hash = crate::clients::hash_secret(secret)?;
            let _ = writeln!(toml, "secret_hash = {}", toml_string(&hash));
        }
        None => toml.push_str("public = true\n"),
    }
    let uris: Vec<String> = request
        .redirect_uris
        .iter()
        .map(|u| toml_string(u))
        .collect();
    let _ = writeln!(toml, "redirect_uris = [{}]", uris.join(", "));
    Ok(Registration { id, secret, toml })
}

/// A client id from a display name: lower-case letters and digits, other runs become `-`.
fn id_from_name(name: &str) -> String {
    let mut id = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.ends_with('-') && !id.is_empty() {
            id.push('-');
        }
    }
    id.trim_end_matches('-').to_owned()
}

/// A TOML basic string (escapes quotes, backslashes and control characters).
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `guildgate clients list`: every registered client with its kind, rules and URIs. The
/// configuration is validated first, so what is listed is what guildgate would serve.
pub fn list_clients(settings: &Settings) -> anyhow::Result<String> {
    settings
        .validate()
        .map_err(crate::startup::StartupError::Config)?;
    let mut out = String::new();
    if settings.clients.is_empty() {
        out.push_str("no clients registered\n");
    }
    for client in &settings.clients {
        describe_client(&mut out, client);
    }
    Ok(out)
}

fn describe_client(out: &mut String, c: &ClientSettings) {
    let kind = if c.public { "public" } else { "confidential" };
    let _ = writeln!(
        out,
        "{}  ({}, {kind})",
        c.id,
        c.name.as_deref().unwrap_or(&c.id)
    );
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    };
    let _ = writeln!(out, "  redirect URIs:     {}", list(&c.redirect_uris));
    if !c.post_logout_redirect_uris.is_empty() {
        let _ = writeln!(
            out,
            "  after logout:      {}",
            list(&c.post_logout_redirect_uris)
        );
    }
    if let Some(uri) = &c.backchannel_logout_uri {
        let _ = writeln!(out, "  back-channel:      {uri}");
    }
    let mut rules = Vec::new();
    if !c.allowed_guilds.is_empty() {
        rules.push(format!("member of one of {}", c.allowed_guilds.join(", ")));
    }
    if !c.required_roles.is_empty() {
        rules.push(format!("holds one of {}", c.required_roles.join(", ")));
    }
    if c.require_verified_email {
        rules.push("verified email".to_owned());
    }
    if !c.allow_users.is_empty() {
        rules.push(format!("always admits {}", c.allow_users.join(", ")));
    }
    if !c.deny_users.is_empty() {
        rules.push(format!("never admits {}", c.deny_users.join(", ")));
    }
    if rules.is_empty() {
        rules.push("the global [access] rules only".to_owned());
    }
    let _ = writeln!(out, "  rules:             {}", rules.join("; "));
    let _ = writeln!(out, "  groups it sees:    {}", list(&c.groups));
    if c.group_format != "id" {
        let _ = writeln!(out, "  role entries as:   {}", c.group_format);
    }
    if let Some(guild) = c.profile_guild.as_deref().filter(|g| !g.is_empty()) {
        let _ = writeln!(out, "  profile from:      server {guild}");
    }
    if !c.claims.is_empty() {
        let names: Vec<String> = c.claims.iter().map(|m| m.name.clone()).collect();
        let _ = writeln!(out, "  mapped claims:     {}", names.join(", "));
    }
    let _ = writeln!(
        out,
        "  consent:           {}; refresh tokens: {}; offline access: {}",
        c.consent,
        if c.refresh_tokens { "yes" } else { "no" },
        if c.offline_access { "yes" } else { "no" }
    );
}

/// `guildgate users show ID`: the person's profile, live sessions, live grants, remembered
/// consents and last membership snapshot (as stored, with its age).
pub async fn show_user(settings: Settings, id: &str) -> anyhow::Result<String> {
    let id = &DiscordId::parse(id).map_err(anyhow::Error::msg)?;
    let state = crate::startup::build_state(settings, Clock::default()).await?;
    let store = &state.store;
    let now = state.clock.now();
    let Some(user) = store.get_user(id).await? else {
        anyhow::bail!("no person with Discord id {id} has signed in here");
    };
    let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} (@{}), Discord id {}",
        user.global_name.as_deref().unwrap_or(&user.username),
        user.username,
        user.id
    );
    let _ = writeln!(
        out,
        "email: {} ({}); profile updated {}",
        user.email.as_deref().unwrap_or("-"),
        if user.email_verified {
            "verified"
        } else {
            "not verified"
        },
        fmt(user.updated_at)
    );

    let sessions = store.list_sessions(Some(id), now).await?;
    let _ = writeln!(out, "\nsessions ({} live):", sessions.len());
    for s in &sessions {
        let _ = writeln!(
            out,
            "  {}  started {}  last used {}  ends {}  {}  {}",
            s.id,
            fmt(s.created_at),
            fmt(s.last_seen_at),
            fmt(s.expires_at),
            s.device.ip.as_deref().unwrap_or("-"),
            crate::flows::account::browser_name(s.device.user_agent.as_deref())
        );
    }

    let grants = store.list_user_grants(id, now).await?;
    let _ = writeln!(out, "\ngrants ({} live):", grants.len());
    for g in &grants {
        let _ = writeln!(
            out,
            "  {}  client {}  scopes \"{}\"  issued {}  ends {}  {}",
            g.id,
            g.client_id,
            g.scopes,
            fmt(g.created_at),
            fmt(g.expires_at),
            g.session_id
                .as_ref()
                .map_or_else(|| "offline".to_owned(), |s| format!("session {s}"))
        );
    }

    let consents = store.list_consents(id).await?;
    let _ = writeln!(out, "\nconsents ({}):", consents.len());
    for c in &consents {
        let _ = writeln!(
            out,
            "  client {}  scopes \"{}\"  given {}",
            c.client_id,
            c.scopes,
            fmt(c.granted_at)
        );
    }

    match store.get_membership(id).await? {
        Some(m) => {
            let _ = writeln!(
                out,
                "\nmembership snapshot (taken {}, {}s ago):\n  {}",
                fmt(m.fetched_at),
                (now - m.fetched_at).whole_seconds(),
                m.snapshot
            );
        }
        None => out.push_str("\nmembership snapshot: none taken\n"),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_come_from_display_names() {
        assert_eq!(id_from_name("Team wiki"), "team-wiki");
        assert_eq!(id_from_name("  Grafana (prod)!  "), "grafana-prod");
        assert_eq!(id_from_name("Été"), "t");
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(toml_string("x\ny"), r#""x\u000Ay""#);
    }
}
