//! The fake's mutable state: codes, tokens, revocations, faults, counters and rate windows.

use super::{DISCORD_ISSUER, FakeData, FakeRoute, Fault};
use crate::discord::api;
use rand::{Rng, distributions::Alphanumeric};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `iss` sent under the `WrongIssuer` fault.
const WRONG_ISSUER: &str = "https://discord.example.com";

pub(crate) struct State {
    pub data: FakeData,
    pub signed_in: Option<String>,
    pub faults: HashMap<FakeRoute, Fault>,
    pub calls: HashMap<FakeRoute, u32>,
    pub codes: HashMap<String, PendingCode>,
    /// Redeemed codes and the authorization they created: a replay revokes it (RFC 6749 §4.1.2).
    pub used_codes: HashMap<String, u64>,
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
    pub revoked: HashSet<String>,
    pub code_ttl: Duration,
    pub access_ttl: Duration,
    pub limits: HashMap<FakeRoute, (u32, Duration)>,
    /// Token requests with `grant_type=refresh_token`, accepted or not.
    pub refresh_uses: u32,
    windows: HashMap<(FakeRoute, String), Window>,
    next_grant: u64,
}

pub(crate) struct PendingCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub expires_at: Instant,
}

pub(crate) struct AccessToken {
    pub grant: u64,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Instant,
}

pub(crate) struct RefreshToken {
    pub grant: u64,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub client_id: String,
}

struct Window {
    started: Instant,
    count: u32,
}

/// What the `X-RateLimit-*` headers of one answer say.
pub(crate) struct RateInfo {
    pub limit: u32,
    pub remaining: u32,
    pub reset_after: Duration,
    pub bucket: &'static str,
    pub exceeded: bool,
}

impl RateInfo {
    /// `X-RateLimit-Reset`: epoch seconds (with decimals) when the bucket resets.
    pub fn reset_epoch(&self) -> f64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (now + self.reset_after).as_secs_f64()
    }
}

/// Opaque bucket ids per route, shaped like Discord's hex hashes.
pub(crate) fn bucket_id(route: FakeRoute) -> &'static str {
    match route {
        FakeRoute::Authorize => "b0a1c3e5d7f90000",
        FakeRoute::Token => "7c1e9a2f40d35b68",
        FakeRoute::Revoke => "3f8b6d0e2a4c1957",
        FakeRoute::Me => "d41d8cd98f00b204",
        FakeRoute::Guilds => "a9b2c7e4f1063d58",
        FakeRoute::Member => "e7f3a1b9c5d20846",
        FakeRoute::Connections => "5b0c7e2d9a4f1836",
        FakeRoute::BotMember => "c3d9e1f7a5b20468",
        FakeRoute::BotRoles => "8e2f4a6c0b1d3957",
    }
}

/// A Discord-like opaque value: 30 alphanumerics (the length of Discord's codes and tokens).
pub(crate) fn random_token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(30)
        .map(char::from)
        .collect()
}

impl State {
    pub fn new(data: FakeData) -> Self {
        Self {
            data,
            signed_in: None,
            faults: HashMap::new(),
            calls: HashMap::new(),
            codes: HashMap::new(),
            used_codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            revoked: HashSet::new(),
            code_ttl: Duration::from_secs(100),
            access_ttl: Duration::from_secs(604_800),
            limits: HashMap::new(),
            refresh_uses: 0,
            windows: HashMap::new(),
            next_grant: 1,
        }
    }

    pub fn count_call(&mut self, route: FakeRoute) {
        *self.calls.entry(route).or_insert(0) += 1;
    }

    /// The fault for this call, if any; counted faults count down and clear at zero.
    pub fn take_fault(&mut self, route: FakeRoute) -> Option<Fault> {
        let fault = self.faults.get_mut(&route)?;
        let times = match fault {
            Fault::RateLimited { times, .. }
            | Fault::ServerError { times }
            | Fault::Slow { times, .. }
            | Fault::MalformedJson { times }
            | Fault::OversizedBody { times, .. } => times,
            Fault::WrongIssuer => return None,
        };
        let left = times.saturating_sub(1);
        let applies = *times > 0;
        *times = left;
        let taken = applies.then(|| fault.clone());
        if left == 0 {
            self.faults.remove(&route);
        }
        taken
    }

    /// The `iss` of authorization responses (RFC 9207).
    pub fn issuer(&self) -> &'static str {
        if self.faults.values().any(|f| *f == Fault::WrongIssuer) {
            WRONG_ISSUER
        } else {
            DISCORD_ISSUER
        }
    }

    /// Counts a request against the per-`who` window of `route` (default 50 per second).
    pub fn rate_window(&mut self, route: FakeRoute, who: &str) -> RateInfo {
        let (limit, window) = self
            .limits
            .get(&route)
            .copied()
            .unwrap_or((50, Duration::from_secs(1)));
        let now = Instant::now();
        if self.windows.len() > 4096 {
            self.windows
                .retain(|_, w| now.duration_since(w.started) < window);
        }
        let w = self
            .windows
            .entry((route, who.to_owned()))
            .or_insert(Window {
                started: now,
                count: 0,
            });
        if now.duration_since(w.started) >= window {
            *w = Window {
                started: now,
                count: 0,
            };
        }
        let exceeded = w.count >= limit;
        if !exceeded {
            w.count += 1;
        }
        RateInfo {
            limit,
            remaining: limit.saturating_sub(w.count),
            reset_after: window.saturating_sub(now.duration_since(w.started)),
            bucket: bucket_id(route),
            exceeded,
        }
    }

    pub fn issue_code(&mut self, pending: PendingCode) -> String {
        let code = random_token();
        self.codes.insert(code.clone(), pending);
        code
    }

    pub fn new_grant(&mut self) -> u64 {
        let grant = self.next_grant;
        self.next_grant += 1;
        grant
    }

    /// Mints an access + refresh token pair for an authorization.
    pub fn issue_tokens(
        &mut self,
        grant: u64,
        user_id: &str,
        scopes: &[String],
        client_id: &str,
    ) -> api::TokenResponse {
        let access_token = random_token();
        let refresh_token = random_token();
        self.access.insert(
            access_token.clone(),
            AccessToken {
                grant,
                user_id: user_id.to_owned(),
                scopes: scopes.to_vec(),
                expires_at: Instant::now() + self.access_ttl,
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            RefreshToken {
                grant,
                user_id: user_id.to_owned(),
                scopes: scopes.to_vec(),
                client_id: client_id.to_owned(),
            },
        );
        api::TokenResponse {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: self.access_ttl.as_secs(),
            refresh_token: Some(refresh_token),
            scope: scopes.join(" "),
        }
    }

    /// Revokes every token of an authorization, as Discord does on revocation.
    pub fn revoke_grant(&mut self, grant: u64) {
        let access: Vec<String> = self
            .access
            .iter()
            .filter(|(_, t)| t.grant == grant)
            .map(|(k, _)| k.clone())
            .collect();
        let refresh: Vec<String> = self
            .refresh
            .iter()
            .filter(|(_, t)| t.grant == grant)
            .map(|(k, _)| k.clone())
            .collect();
        for token in access {
            self.access.remove(&token);
            self.revoked.insert(token);
        }
        for token in refresh {
            self.refresh.remove(&token);
            self.revoked.insert(token);
        }
    }

    /// Revokes every authorization of a user, as when they remove the app under Discord's
    /// "Authorized Apps" settings.
    pub fn deauthorize(&mut self, user_id: &str) {
        let mut grants: Vec<u64> = self
            .access
            .values()
            .filter(|t| t.user_id == user_id)
            .map(|t| t.grant)
            .chain(
                self.refresh
                    .values()
                    .filter(|t| t.user_id == user_id)
                    .map(|t| t.grant),
            )
            .collect();
        grants.sort_unstable();
        grants.dedup();
        for grant in grants {
            self.revoke_grant(grant);
        }
    }

    /// The live access token, if `token` is one.
    pub fn bearer(&self, token: &str) -> Option<&AccessToken> {
        self.access
            .get(token)
            .filter(|t| t.expires_at > Instant::now())
    }
}
