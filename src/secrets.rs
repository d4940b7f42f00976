//! Secrets the process makes for itself when none are configured, so the quick start needs no
//! configuration and still ships no known key.
//!
//! - **The JWT key.** With `auth.jwt_secret` empty, the first start generates a random key and
//!   keeps it in `auth.jwt_secret_file` (`var/jwt-secret`, mode 0600); later starts read it, so
//!   tokens survive a restart. A configured key is used as it is (and [`crate::config`] refuses
//!   one that is short or was ever shipped as a sample).
//! - **The admin password.** With `admin.password` empty, the start that creates the admin
//!   account gives it a random password, logs it once and writes it to `admin.password_file`
//!   (`var/admin-password`, mode 0600); later starts leave the account alone
//!   (see [`crate::seed::ensure_admin`]).

use std::{
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;

use crate::config::{AuthConfig, Secret};

/// `bytes` random bytes, URL-safe base64 (no padding).
pub fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The key access tokens are signed with: the configured one, or the one kept in
/// `auth.jwt_secret_file`, generated there on first start.
pub fn jwt_secret(auth: &AuthConfig) -> anyhow::Result<Secret> {
    if !auth.jwt_secret.expose().is_empty() {
        return Ok(auth.jwt_secret.clone());
    }
    let path = &auth.jwt_secret_file;
    let kept = match std::fs::read_to_string(path) {
        Ok(kept) => kept.trim().to_string(),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let key = random_token(48);
            match write_private(path, &key, false) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "generated a JWT signing key (auth.jwt_secret is empty)");
                    return Ok(key.into());
                }
                // Another process started at the same moment and wrote it first: use theirs.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?.trim().into()
                }
                Err(e) => return Err(e).with_context(|| format!("writing the JWT key to {}", path.display())),
            }
        }
        Err(e) => return Err(e).with_context(|| format!("reading the JWT key from {}", path.display())),
    };
    if kept.len() < 32 {
        anyhow::bail!("{} holds a key shorter than 32 bytes: delete it to generate a new one", path.display());
    }
    Ok(kept.into())
}

/// Creates `dir` and its missing parents readable by their owner only (0700): `var/` holds the
/// database (password and token hashes, e-mails), the keys and the mail. An existing directory
/// keeps its mode (it is the operator's).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes an existing file readable by its owner only (0600); a missing one is left missing.
pub fn restrict(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes `text` to `path` readable by its owner only (0600), creating the parent directory.
/// `replace = false` fails with `AlreadyExists` rather than overwrite. The file appears whole or
/// not at all (see [`Staged`]): a process starting at the same moment never reads half a key.
pub fn write_private(path: &Path, text: &str, replace: bool) -> std::io::Result<()> {
    Staged::write(path, text)?.put(replace)
}

/// A private file written beside its final path, not yet in place: [`Staged::put`] moves it
/// there in one step (a rename, or a hard link that fails if the path exists); dropped unput, it
/// is removed.
pub struct Staged {
    staged: PathBuf,
    path: PathBuf,
}

impl Staged {
    pub fn write(path: &Path, text: &str) -> std::io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir)?;
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let staged = path.with_file_name(format!(".{name}.{}", random_token(6)));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let this = Self { staged, path: path.to_path_buf() };
        let mut file = options.open(&this.staged)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        Ok(this)
    }

    /// Puts the file in place; `replace = false` fails with `AlreadyExists` if the path exists.
    pub fn put(self, replace: bool) -> std::io::Result<()> {
        if replace { std::fs::rename(&self.staged, &self.path) } else { std::fs::hard_link(&self.staged, &self.path) }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // After a rename there is nothing left here; after a link, the staged name goes.
        let _ = std::fs::remove_file(&self.staged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(dir: &Path, secret: &str) -> AuthConfig {
        AuthConfig {
            jwt_secret: secret.into(),
            jwt_secret_file: dir.join("var/jwt-secret"),
            ..crate::Config::default().auth
        }
    }

    #[test]
    fn an_empty_jwt_secret_is_generated_once_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = auth(dir.path(), "");
        let first = jwt_secret(&cfg).unwrap();
        assert!(first.expose().len() >= 64, "48 random bytes, base64");
        assert_eq!(jwt_secret(&cfg).unwrap(), first, "the next start reads the same key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&cfg.jwt_secret_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(jwt_secret(&auth(other.path(), "")).unwrap(), first, "random per installation");
    }

    #[test]
    fn a_configured_secret_wins_and_a_short_kept_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let configured = "x".repeat(40);
        assert_eq!(jwt_secret(&auth(dir.path(), &configured)).unwrap().expose(), configured);
        assert!(!dir.path().join("var/jwt-secret").exists(), "nothing written when one is configured");
        write_private(&dir.path().join("var/jwt-secret"), "short", false).unwrap();
        let err = jwt_secret(&auth(dir.path(), "")).unwrap_err().to_string();
        assert!(err.contains("shorter than 32 bytes"), "{err}");
    }
}
