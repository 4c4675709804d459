//! Validation of one `[[clients]]` entry: identity, authentication, URIs, rules, options.

use super::ClientSettings;
use super::types::{AccessRules, ClientSecret, Consent, ValidClient};
use super::validate::Checker;
use crate::domain::{ClientId, RedirectUri};
use std::collections::HashSet;
use url::Url;

/// An argon2 PHC string guildgate can verify: argon2 algorithm, valid parameters, salt, output.
fn check_argon2_hash(phc: &str) -> Result<(), String> {
    let not_phc = |e: argon2::password_hash::Error| {
        format!("is not an argon2 PHC string from `guildgate hash-secret` ({e})")
    };
    let parsed = argon2::PasswordHash::new(phc).map_err(not_phc)?;
    argon2::Algorithm::try_from(parsed.algorithm).map_err(not_phc)?;
    argon2::Params::try_from(&parsed).map_err(not_phc)?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("is missing its salt or hash (use `guildgate hash-secret`)".to_owned());
    }
    Ok(())
}

/// Checks client `i`, recording problems; `seen` catches duplicate ids.
pub(super) fn check_client(
    c: &mut Checker,
    i: usize,
    s: &ClientSettings,
    group_names: &HashSet<&str>,
    seen: &mut HashSet<String>,
) -> Option<ValidClient> {
    let key = |field: &str| format!("clients[{i}].{field}");
    let id = c.check(key("id"), ClientId::parse(&s.id));
    if !seen.insert(s.id.clone()) {
        c.problem(
            key("id"),
            format!("{:?} is used by more than one client", s.id),
        );
    }
    let secret = match (s.public, &s.secret_hash, &s.secret) {
        (true, None, None) => Some(ClientSecret::Public),
        (true, _, _) => {
            c.problem(
                key("public"),
                "a public client must not have secret_hash or secret",
            );
            None
        }
        (false, Some(hash), None) => c
            .check(key("secret_hash"), check_argon2_hash(hash))
            .map(|()| ClientSecret::Hash(hash.clone())),
        (false, None, Some(plain)) => {
            c.warnings.push(format!(
                "clients[{i}] ({}) has a plain `secret` in config: for development only; use secret_hash from `guildgate hash-secret`",
                s.id
            ));
            Some(ClientSecret::Plain(plain.clone()))
        }
        (false, Some(_), Some(_)) => {
            c.problem(key("secret"), "set either secret_hash or secret, not both");
            None
        }
        // A client that authenticates with its keys only (private_key_jwt).
        (false, None, None) if s.jwks.is_some() || s.jwks_uri.is_some() => {
            Some(ClientSecret::KeysOnly)
        }
        (false, None, None) => {
            c.problem(
                key("secret_hash"),
                "set secret_hash (from `guildgate hash-secret`), jwks or jwks_uri (private_key_jwt), or public = true",
            );
            None
        }
    };
    // Apps that only use the device or client-credentials grants never redirect a browser.
    if s.redirect_uris.is_empty() && !s.device_flow && !s.client_credentials {
        c.problem(
            key("redirect_uris"),
            "at least one redirect URI is required (unless the client only uses device_flow or client_credentials)",
        );
    }
    let grants = secret
        .as_ref()
        .and_then(|secret| super::client_grants::check(c, i, s, secret));
    let redirect_uris = c.uris(&key("redirect_uris"), &s.redirect_uris);
    let post_logout = c.uris(
        &key("post_logout_redirect_uris"),
        &s.post_logout_redirect_uris,
    );
    let backchannel = s.backchannel_logout_uri.as_ref().and_then(|raw| {
        c.check(
            key("backchannel_logout_uri"),
            RedirectUri::parse(raw).and_then(|u| {
                let url = Url::parse(u.as_str()).map_err(|e| e.to_string())?;
                if matches!(url.scheme(), "http" | "https") {
                    Ok(url)
                } else {
                    Err("must be an http(s) URL".into())
                }
            }),
        )
    });
    let access = AccessRules {
        allowed_guilds: c.ids(&key("allowed_guilds"), &s.allowed_guilds),
        required_roles: c.roles(&key("required_roles"), &s.required_roles),
        require_verified_email: s.require_verified_email,
        allow_users: c.ids(&key("allow_users"), &s.allow_users),
        deny_users: c.ids(&key("deny_users"), &s.deny_users),
        required_connections: connection_types(c, &key("required_connections"), s),
    };
    for (g, name) in s.groups.iter().enumerate() {
        if !group_names.contains(name.as_str()) {
            c.problem(
                format!("clients[{i}].groups[{g}]"),
                format!("{name:?} is not defined in [[groups]]"),
            );
        }
    }
    let consent = match s.consent.as_str() {
        "never" => Some(Consent::Never),
        "once" => Some(Consent::Once),
        "always" => Some(Consent::Always),
        other => {
            c.problem(
                key("consent"),
                format!("{other:?} is not never, once or always"),
            );
            None
        }
    };
    let pairwise = match s.subject_type.as_str() {
        "public" => Some(false),
        "pairwise" => Some(true),
        other => {
            c.problem(
                key("subject_type"),
                format!("{other:?} is not public or pairwise"),
            );
            None
        }
    };
    let community = super::claim_rules::check(c, i, s);
    let grants = grants?;
    Some(ValidClient {
        id: id?,
        name: s.name.clone().unwrap_or_else(|| s.id.clone()),
        secret: secret?,
        redirect_uris,
        post_logout_redirect_uris: post_logout,
        backchannel_logout_uri: backchannel,
        access,
        groups: s.groups.clone(),
        consent: consent?,
        refresh_tokens: s.refresh_tokens,
        offline_access: s.offline_access,
        pairwise_subject: pairwise?,
        connections: s.connections,
        device_flow: s.device_flow,
        client_credentials: s.client_credentials,
        allowed_scopes: grants.allowed_scopes,
        auth_method: grants.auth_method,
        keys: grants.keys,
        require_par: s.require_pushed_authorization_requests,
        dpop_bound: s.dpop_bound_access_tokens,
        id_token_alg: grants.id_token_alg,
        // Issue 26: community profile
        profile_guild: community.profile_guild,
        group_format: community.group_format,
        claims: community.claims,
    })
}

/// `required_connections`: Discord service names (`github`, `steam`, `amazon-music`, …), checked
/// for shape rather than against a list, since Discord adds services without notice.
fn connection_types(c: &mut Checker, key: &str, s: &ClientSettings) -> Vec<String> {
    let service = |t: &str| {
        !t.is_empty()
            && t.len() <= 40
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
    };
    s.required_connections
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            c.check(
                format!("{key}[{i}]"),
                if service(t) {
                    Ok(t.clone())
                } else {
                    Err(format!(
                        "{t:?} is not a Discord connection type such as \"github\" or \"steam\""
                    ))
                },
            )
        })
        .collect()
}
