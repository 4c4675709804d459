//! Why guildgate could not start: one line naming the setting involved and the likely fix.

use crate::config::Problem;
use crate::keys::KeyError;
use crate::store::StoreError;

/// Why guildgate could not start. Each message names the setting involved (secrets masked) and
/// the likely fix, on one line; causes are written into the message and never also exposed as
/// `source()`, so `crate::report::render` shows each once.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Settings failed validation.
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), format_problems(.0))]
    Config(Vec<Problem>),
    /// The database could not be reached or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Keys could not be loaded.
    #[error("{}", key_message(.0))]
    Keys(KeyError),
    /// A key file exists but cannot be read (usually its owner or mode).
    #[error("{}", key_file_message(.path, *.mode, *.owner, .cause))]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Its permission bits, when they could be read.
        mode: Option<u32>,
        /// Its owner's uid, when it could be read.
        owner: Option<u32>,
        /// Why reading failed.
        cause: std::io::Error,
    },
    /// The listen address is taken or not allowed.
    #[error("{}", bind_message(addr, setting, cause))]
    Bind {
        /// The address.
        addr: String,
        /// The flag or key that chooses it (`--port` for `dev`, `server.listen` otherwise).
        setting: &'static str,
        /// Why.
        cause: std::io::Error,
    },
    /// Anything else while assembling the app.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What chooses the listen address of `serve`.
pub(super) const LISTEN_SETTING: &str = "server.listen (GUILDGATE__SERVER__LISTEN)";

impl StartupError {
    /// For `dev`, which picks the address from `--port`: a taken port names that flag.
    pub fn listen_set_by(self, flag: &'static str) -> Self {
        match self {
            StartupError::Bind { addr, cause, .. } => StartupError::Bind {
                addr,
                setting: flag,
                cause,
            },
            other => other,
        }
    }

    /// True when a dependency is only unavailable (the database is unreachable, the port is
    /// taken by another program): trying again later may work. The CLI exits 2 for these, 1 for the rest.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StartupError::Store(e) => e.is_unavailable(),
            // A taken port frees up; a privileged port or a foreign address does not.
            StartupError::Bind { cause, .. } => cause.kind() == std::io::ErrorKind::AddrInUse,
            _ => false,
        }
    }
}

impl From<KeyError> for StartupError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Read { path, cause } => {
                let metadata = std::fs::metadata(&path).ok();
                #[cfg(unix)]
                let (mode, owner) = {
                    use std::os::unix::fs::MetadataExt;
                    (
                        metadata.as_ref().map(|m| m.mode() & 0o7777),
                        metadata.as_ref().map(|m| m.uid()),
                    )
                };
                #[cfg(not(unix))]
                let (mode, owner) = (metadata.map(|_| 0), None);
                StartupError::KeyFile {
                    path,
                    mode,
                    owner,
                    cause,
                }
            }
            other => StartupError::Keys(other),
        }
    }
}

/// `cannot read key file PATH (mode 0640, owner uid 0): CAUSE. FIX`.
fn key_file_message(
    path: &std::path::Path,
    mode: Option<u32>,
    owner: Option<u32>,
    cause: &std::io::Error,
) -> String {
    let access = match (mode, owner) {
        (Some(mode), Some(uid)) => format!("mode {mode:04o}, owner uid {uid}"),
        (Some(mode), None) => format!("mode {mode:04o}"),
        _ => "mode unknown".to_owned(),
    };
    let fix = if cause.kind() == std::io::ErrorKind::PermissionDenied {
        "guildgate's user must be able to read every key file in keys.dir: give the file to \
         that user (chown) and keep it mode 0600"
    } else {
        "Every *.pem in keys.dir must be a key file guildgate can read: restore it from \
         backup, or move it out of keys.dir deliberately"
    };
    format!(
        "cannot read key file {} ({access}): {cause}. {fix}",
        path.display()
    )
}

/// The key error plus where to look: the folder comes from `keys.dir`.
fn key_message(error: &KeyError) -> String {
    match error {
        KeyError::Folder { .. } => format!(
            "{error}. keys.dir (GUILDGATE__KEYS__DIR) must name a folder guildgate's user can \
             read and write (check the owner, the mode and the volume mount)"
        ),
        KeyError::Write { .. } => format!(
            "{error}. guildgate writes its first key there: make keys.dir writable by \
             guildgate's user, or put existing key files in it"
        ),
        _ => error.to_string(),
    }
}

/// `cannot listen on ADDR: CAUSE. FIX`, the fix depending on why the bind failed.
fn bind_message(addr: &str, setting: &str, cause: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let fix = match cause.kind() {
        ErrorKind::AddrInUse => format!(
            "Another program (or another guildgate) is using this port: stop it, or choose \
             another port with {setting}"
        ),
        ErrorKind::PermissionDenied => format!(
            "Ports below 1024 need extra privileges: choose a port of 1024 or above with \
             {setting}"
        ),
        ErrorKind::AddrNotAvailable => format!(
            "This machine has no such address: use 0.0.0.0 (every interface) or one of its \
             own addresses in {setting}"
        ),
        _ => format!("Check the address in {setting}"),
    };
    format!("cannot listen on {addr}: {cause}. {fix}")
}

/// One problem per line, indented, for humans and scripts alike.
pub fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_guildgate_may_not_read_names_its_mode_owner_and_the_fix() {
        // Arrange
        let error = StartupError::KeyFile {
            path: "/keys/1700000000.pem".into(),
            mode: Some(0o640),
            owner: Some(0),
            cause: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };

        // Act
        let message = error.to_string();

        // Assert
        assert!(
            message.starts_with(
                "cannot read key file /keys/1700000000.pem (mode 0640, owner uid 0): "
            ),
            "{message}"
        );
        assert!(message.contains("chown"), "{message}");
        assert!(
            !error.is_unavailable(),
            "exit 1: waiting does not fix a mode"
        );
    }

    #[test]
    fn a_taken_port_in_dev_names_the_port_flag_instead_of_the_config_key() {
        // Arrange
        let error = StartupError::Bind {
            addr: "127.0.0.1:8080".into(),
            setting: LISTEN_SETTING,
            cause: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };

        // Act
        let message = error.listen_set_by("--port").to_string();

        // Assert
        assert!(message.contains("with --port"), "{message}");
        assert!(!message.contains("server.listen"), "{message}");
    }
}
