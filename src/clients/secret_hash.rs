//! argon2 for client secrets: PHC strings parsed once, verification with bounded concurrency
//! in memory given back after each run, and hashing for `guildgate hash-secret`.

use crate::domain::constant_time_eq;
use crate::telemetry::spawn_blocking_with_tracing;
use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// An argon2 PHC string parsed once: algorithm, version, parameters, salt and expected output.
pub(super) struct PreparedHash {
    algorithm: Algorithm,
    version: Version,
    pub(super) params: Params,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl PreparedHash {
    pub(super) fn parse(phc: &str) -> Option<Self> {
        let parsed = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).ok()?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?.to_vec();
        let expected = parsed.hash?.as_bytes().to_vec();
        Some(Self {
            algorithm,
            version,
            params,
            salt,
            expected,
        })
    }

    /// A hash of nothing: random salt and output, so no secret matches, at `params`' cost.
    pub(super) fn decoy(params: Params) -> Self {
        use rand::RngCore;
        let mut salt = vec![0u8; 16];
        let mut expected = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        rand::rngs::OsRng.fill_bytes(&mut expected);
        Self {
            algorithm: Algorithm::Argon2id,
            version: Version::V0x13,
            params,
            salt,
            expected,
        }
    }

    /// Re-hashes `secret` with this hash's parameters into `blocks` and compares in constant time.
    pub(super) fn matches(&self, secret: &[u8], blocks: &mut [Block]) -> bool {
        let argon2 = Argon2::new(self.algorithm, self.version, self.params.clone());
        let mut out = vec![0u8; self.expected.len()];
        argon2
            .hash_password_into_with_memory(secret, &self.salt, &mut out, blocks)
            .is_ok()
            && constant_time_eq(&out, &self.expected)
    }
}

/// Runs argon2 on the blocking pool, at most one verification per two cores at a time (at
/// least one), so memory use is at most `slots × m_cost` whatever the request rate. Each run's
/// area is mapped for it and unmapped after it (`crate::allocator` keeps blocks this large out
/// of malloc's arenas): a fresh area per request kept by the arenas is what once grew the
/// process to gigabytes under a flood of wrong secrets, and an area kept for reuse held
/// `m_cost` (19 MiB with the usual parameters) for the life of the process, for a step each
/// client takes once after start-up. Half the cores, because argon2 is only needed for a
/// client's first request after start-up (verified secrets are cached) and for failures: a
/// flood of those must leave the other half serving everyone else.
pub(super) struct Argon2Runner {
    permits: Arc<Semaphore>,
    block_count: usize,
}

impl Argon2Runner {
    pub(super) fn new(block_count: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            permits: Arc::new(Semaphore::new((cores / 2).max(1))),
            block_count,
        }
    }

    /// Waits for a free slot (`None` only if the runner is shut, which it never is).
    pub(super) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Verifies in the given slot, which is held until the argon2 run itself has finished.
    pub(super) async fn verify(
        &self,
        permit: OwnedSemaphorePermit,
        hash: Arc<PreparedHash>,
        secret: &str,
    ) -> bool {
        let block_count = self.block_count;
        let secret = secret.as_bytes().to_vec();
        // The permit moves into the blocking task: a request abandoned by its client does not
        // free the slot before its argon2 run has finished.
        spawn_blocking_with_tracing(move || {
            let _permit = permit;
            let mut area = vec![Block::default(); block_count];
            hash.matches(&secret, &mut area)
        })
        .await
        .unwrap_or(false)
    }
}

/// The parameters of new hashes: argon2id with 7 MiB and 5 passes, one of the settings OWASP's
/// password storage guidance lists as equal in strength to its 19 MiB and 2 passes (the
/// crate's default): about the same work, with a third of the memory while a client's secret
/// is checked.
const MEMORY_KIB: u32 = 7 * 1024;
/// Passes over the memory (see [`MEMORY_KIB`]).
const PASSES: u32 = 5;

/// argon2id PHC string of `secret` (see [`MEMORY_KIB`]). Hashes made with other parameters
/// (earlier releases wrote m=19456, t=2) verify as before.
pub fn hash_secret(secret: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let params = Params::new(MEMORY_KIB, PASSES, 1, None)
        .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the secret: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_hash_accepts_its_secret_in_a_reused_area_and_the_decoy_accepts_nothing() {
        let phc = hash_secret("the secret").unwrap();
        let prepared = PreparedHash::parse(&phc).unwrap();
        let decoy = PreparedHash::decoy(prepared.params.clone());
        let mut area = vec![Block::default(); prepared.params.block_count()];
        assert!(prepared.matches(b"the secret", &mut area));
        assert!(!prepared.matches(b"the secret!", &mut area));
        assert!(
            prepared.matches(b"the secret", &mut area),
            "the area is reusable"
        );
        assert!(!decoy.matches(b"the secret", &mut area));
        assert!(!decoy.matches(b"", &mut area));
    }

    #[test]
    fn new_hashes_use_owasps_7_mib_setting_and_older_19_mib_hashes_still_verify() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let phc = hash_secret("the secret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{phc}");
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let older = Argon2::default()
            .hash_password(b"the secret", &salt)
            .unwrap()
            .to_string();
        assert!(
            older.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{older}"
        );
        let prepared = PreparedHash::parse(&older).unwrap();
        let mut area = vec![Block::default(); prepared.params.block_count()];
        assert!(prepared.matches(b"the secret", &mut area));
        assert!(!prepared.matches(b"another", &mut area));
    }
}
