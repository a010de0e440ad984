//! Local secrets, created once in the data directory and then reused by `metaengine serve` and
//! the other commands alike: the HS256 secret (tokens minted on the command line verify on the
//! server) and the audit key (the rows one process seals, another chains: SPEC §16).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Name of the secret's file in the data directory.
pub const SECRET_FILE: &str = "jwt-secret";

/// Name of the audit key's file in the data directory.
pub const AUDIT_KEY_FILE: &str = "audit-key";

/// Random bytes in a new secret (written as 64 hex digits).
const SECRET_BYTES: usize = 32;

/// Reads `<data_dir>/jwt-secret`, or creates it (32 random bytes as hex, mode 0600, the directory
/// too when missing). The flag says whether it was created by this call. Concurrent first runs
/// agree on one secret: the file appears complete or not at all, and only the first one wins.
pub fn load_or_create_secret(data_dir: &Path) -> io::Result<(String, bool)> {
    load_or_create(data_dir, SECRET_FILE, "JWT secret")
}

/// Reads `<data_dir>/audit-key`, or creates it, as [`load_or_create_secret`] does.
pub fn load_or_create_audit_key(data_dir: &Path) -> io::Result<(String, bool)> {
    load_or_create(data_dir, AUDIT_KEY_FILE, "audit key")
}

/// Reads `<data_dir>/<file>`, or creates it; `what` names the secret in messages.
fn load_or_create(data_dir: &Path, file: &str, what: &str) -> io::Result<(String, bool)> {
    let path = data_dir.join(file);
    match read_secret(&path, what) {
        Ok(secret) => return Ok((secret, false)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::create_dir_all(data_dir)?;
    let secret = hex(&random_bytes::<SECRET_BYTES>()?);
    match publish(data_dir, file, &path, &secret) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a new {what}");
            Ok((secret, true))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Ok((read_secret(&path, what)?, false))
        }
        Err(e) => Err(e),
    }
}

/// The secret in `path`, surrounding whitespace removed; an empty file is an error.
fn read_secret(path: &Path, what: &str) -> io::Result<String> {
    let text = fs::read_to_string(path)?;
    warn_if_readable_by_others(path, what);
    let secret = text.trim();
    if secret.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the {what} file {} is empty; delete it to have a new one created",
                path.display()
            ),
        ));
    }
    Ok(secret.to_owned())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the {what} file is readable by other users; `chmod 600` it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _what: &str) {}

/// Writes the secret to a private temporary file, then links it into place, which fails if the
/// file exists (another process won the race). Filesystems without hard links fall back to an
/// exclusive create of the file itself.
fn publish(dir: &Path, file: &str, path: &Path, secret: &str) -> io::Result<()> {
    let tmp = dir.join(format!(
        ".{file}.{}.{}.tmp",
        std::process::id(),
        hex(&random_bytes::<8>()?)
    ));
    write_private(&tmp, secret)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => write_private(path, secret),
        other => other,
    }
}

/// Creates `path` (refusing to replace anything), readable by the owner only, with `secret`.
fn write_private(path: &Path, secret: &str) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file: File = options.open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
