//! Reading the CLI's inputs: size-bounded files (for every command and the OCI-layout reader),
//! `--at` instants, `KEY=VALUE` pairs.

use std::fmt;
use std::fs;
use std::io::Read as _;
use std::path::Path;

use anyhow::anyhow;
use signet_notation::Instant;
use time::format_description::well_known::Rfc3339;

/// Largest trust policy document read (1 MiB).
pub const MAX_POLICY_BYTES: u64 = 1024 * 1024;
/// Largest blob `blob verify` reads into memory (1 GiB).
pub const MAX_BLOB_BYTES: u64 = 1024 * 1024 * 1024;

/// Reads a file of at most `max` bytes; the error names the file and what it was for.
pub fn read_file(path: &Path, max: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    read_bounded(path, max).map_err(|e| match e {
        ReadError::Io(e) => anyhow!("cannot read {what} file {}: {e}", path.display()),
        ReadError::TooLarge { max } => anyhow!(
            "{what} file {} is larger than the limit of {max} bytes",
            path.display()
        ),
    })
}

/// Parses an RFC 3339 instant (`--at`).
pub fn parse_at(s: &str) -> Result<Instant, String> {
    Instant::parse(s, &Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 instant such as 2025-06-01T00:00:00Z: {e}"))
}

/// Parses `KEY=VALUE` (`--user-metadata`).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

/// "Now", or the instant given with `--at`.
pub fn now_or(at: Option<Instant>) -> Instant {
    at.unwrap_or_else(time::OffsetDateTime::now_utc)
}

/// Why a bounded read failed.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    TooLarge { max: u64 },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::TooLarge { max } => write!(f, "larger than the limit of {max} bytes"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a whole file, failing if it is larger than `max` bytes (without reading more).
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let file = fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge { max });
    }
    Ok(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bounded_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"12345").unwrap();
        assert_eq!(read_bounded(&p, 5).unwrap(), b"12345");
        assert!(matches!(
            read_bounded(&p, 4),
            Err(ReadError::TooLarge { max: 4 })
        ));
    }

    #[test]
    fn parses_at() {
        let t = parse_at("2025-06-01T00:00:00Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_748_736_000);
        assert!(parse_at("2025-06-01").is_err());
    }

    #[test]
    fn parses_key_values() {
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".to_owned(), "b=c".to_owned())
        );
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("x").is_err());
    }
}
