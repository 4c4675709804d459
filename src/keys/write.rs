//! Private key files written atomically with mode 0600: a crash never leaves half a key.

use super::KeyError;
use std::io::Write;
use std::path::Path;

/// How a finished temporary file takes its place.
#[derive(Clone, Copy)]
enum Placing {
    /// Replace whatever is there (rename).
    Replace,
    /// Keep a file already there (hard link, which refuses to overwrite): the first writer wins.
    KeepExisting,
}

/// Writes via a temporary file and rename so a crash never leaves a half-written key.
pub(super) fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    write(path, contents, Placing::Replace)
}

/// Writes `contents` at `path` unless a file is already there (another process sharing the
/// folder may write the same file at the same moment).
pub(super) fn write_new_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    write(path, contents, Placing::KeepExisting)
}

fn write(path: &Path, contents: &[u8], placing: Placing) -> Result<(), KeyError> {
    // A unique temporary name, so concurrent writers never share one.
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        match placing {
            Placing::Replace => std::fs::rename(&tmp, path),
            Placing::KeepExisting => match std::fs::hard_link(&tmp, path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            },
        }
    })();
    // After a rename there is nothing left to remove; otherwise the temporary file goes.
    let _ = std::fs::remove_file(&tmp);
    written.map_err(|cause| KeyError::Write {
        path: path.to_path_buf(),
        cause,
    })
}
