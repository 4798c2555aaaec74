//! Named trust stores in Notation's layout: `ROOT/x509/{ca,signingAuthority,tsa}/NAME/`.
//!
//! Follows notation-go's `verifier/truststore`: every file of the named store is read as one
//! DER certificate or one or more PEM certificates; every certificate must be a CA or
//! self-signed, and in a `tsa` store a self-signed (self-issued) root CA. Certificates are not
//! checked for their validity period. The store must hold at least one certificate.
//!
//! Signet differs operationally (conformance rule (b)): symlinks are followed (Kubernetes
//! ConfigMap/Secret mounts are symlinks), and sub-directories — as well as entries whose name
//! starts with `..`, such as Kubernetes' `..data` and `..<timestamp>` — are ignored.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cert::{Certificate, CertificateError};
use crate::chain;

/// Largest certificate file read from a trust store.
pub const MAX_CERT_FILE_BYTES: u64 = 1024 * 1024;

/// Most certificates one named store may hold.
pub const MAX_STORE_CERTIFICATES: usize = 1000;

/// Most directory entries one named store may hold (including ignored ones).
pub const MAX_STORE_ENTRIES: usize = 10_000;

/// The three store types of Notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StoreType {
    /// `ca`: roots of code-signing chains (scheme `notary.x509`).
    Ca,
    /// `signingAuthority`: roots of signing-authority chains (scheme `notary.x509.signingAuthority`).
    SigningAuthority,
    /// `tsa`: roots of timestamping chains.
    Tsa,
}

impl StoreType {
    /// The directory and policy prefix name (`ca`, `signingAuthority`, `tsa`).
    pub fn as_str(self) -> &'static str {
        match self {
            StoreType::Ca => "ca",
            StoreType::SigningAuthority => "signingAuthority",
            StoreType::Tsa => "tsa",
        }
    }

    /// Inverse of [`StoreType::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ca" => Some(StoreType::Ca),
            "signingAuthority" => Some(StoreType::SigningAuthority),
            "tsa" => Some(StoreType::Tsa),
            _ => None,
        }
    }
}

/// One named trust store, loaded.
#[derive(Debug, Clone)]
pub struct TrustStore {
    pub store_type: StoreType,
    pub name: String,
    pub certificates: Vec<Certificate>,
}

/// Why a named store could not be loaded. Each variant names the store directory or the
/// offending file.
#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    #[error("trust store {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("trust store name {name:?} is invalid: it must match [a-zA-Z0-9_.-]+ and not be '.' or '..'")]
    InvalidName { name: String },
    #[error("trust store {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("trust store {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("trust store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("trusted certificate file {path} is not a regular file")]
    NotRegularFile { path: PathBuf },
    #[error("trusted certificate file {path} is {size} bytes; at most {max} are allowed")]
    FileTooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("failed to read the trusted certificate file {path}: {source}")]
    BadCertificate {
        path: PathBuf,
        #[source]
        source: CertificateError,
    },
    #[error(
        "trusted certificate file {path}: certificate with subject {subject:?} is not a CA certificate or self-signed signing certificate"
    )]
    NotCaOrSelfSigned { path: PathBuf, subject: String },
    #[error("trusted certificate file {path} in a tsa store: certificate with subject {subject:?} is not a root CA certificate: {reason}")]
    NotRootCa {
        path: PathBuf,
        subject: String,
        reason: String,
    },
    #[error("trust store {path} holds more than {max} certificates or entries")]
    TooManyCertificates { path: PathBuf, max: usize },
    #[error("trust store {path} has no x509 certificates")]
    Empty { path: PathBuf },
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl TrustStore {
    /// Loads `root/x509/<type>/<name>/`.
    pub fn load(
        root: &Path,
        store_type: StoreType,
        name: &str,
    ) -> Result<TrustStore, TrustStoreError> {
        if !is_valid_name(name) {
            return Err(TrustStoreError::InvalidName {
                name: name.to_owned(),
            });
        }
        let dir = root.join("x509").join(store_type.as_str()).join(name);
        let certificates = load_dir(&dir, store_type)?;
        Ok(TrustStore {
            store_type,
            name: name.to_owned(),
            certificates,
        })
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrustStoreError + '_ {
    move |source| TrustStoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads and validates every certificate of the named store directory `dir`.
fn load_dir(dir: &Path, store_type: StoreType) -> Result<Vec<Certificate>, TrustStoreError> {
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TrustStoreError::NotFound {
                path: dir.to_owned(),
            })
        }
        Err(e) => return Err(io_err(dir)(e)),
    };
    if !meta.is_dir() {
        return Err(TrustStoreError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        names.push(entry.file_name());
        if names.len() > MAX_STORE_ENTRIES {
            return Err(TrustStoreError::TooManyCertificates {
                path: dir.to_owned(),
                max: MAX_STORE_ENTRIES,
            });
        }
    }
    // Deterministic order, as Go's os.ReadDir.
    names.sort();

    let mut certificates = Vec::new();
    for name in names {
        if name.as_encoded_bytes().starts_with(b"..") {
            continue;
        }
        let path = dir.join(&name);
        // Follows symlinks: the target decides.
        let meta = fs::metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            continue;
        }
        if !meta.is_file() {
            return Err(TrustStoreError::NotRegularFile { path });
        }
        let bytes = read_bounded(&path, meta.len())?;
        let certs = Certificate::parse_pem_or_der(&bytes).map_err(|source| {
            TrustStoreError::BadCertificate {
                path: path.clone(),
                source,
            }
        })?;
        for cert in &certs {
            validate_store_certificate(&path, cert, store_type)?;
        }
        certificates.extend(certs);
        if certificates.len() > MAX_STORE_CERTIFICATES {
            return Err(TrustStoreError::TooManyCertificates {
                path: dir.to_owned(),
                max: MAX_STORE_CERTIFICATES,
            });
        }
    }
    if certificates.is_empty() {
        return Err(TrustStoreError::Empty {
            path: dir.to_owned(),
        });
    }
    Ok(certificates)
}

fn read_bounded(path: &Path, size: u64) -> Result<Vec<u8>, TrustStoreError> {
    let too_large = |size| TrustStoreError::FileTooLarge {
        path: path.to_owned(),
        size,
        max: MAX_CERT_FILE_BYTES,
    };
    if size > MAX_CERT_FILE_BYTES {
        return Err(too_large(size));
    }
    let file = fs::File::open(path).map_err(io_err(path))?;
    let mut bytes = Vec::new();
    // The file may grow between stat and read: never read past the bound.
    file.take(MAX_CERT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > MAX_CERT_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// notation-go's rules: a CA or a self-signed certificate; in a `tsa` store, a root CA
/// (signature verifies with its own key as a certificate issuer, subject == issuer).
fn validate_store_certificate(
    path: &Path,
    cert: &Certificate,
    store_type: StoreType,
) -> Result<(), TrustStoreError> {
    let x = cert.x509();
    let is_ca = matches!(x.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    if !is_ca && chain::verify_cert_signature(&x, x.public_key()).is_err() {
        return Err(TrustStoreError::NotCaOrSelfSigned {
            path: path.to_owned(),
            subject: x.subject().to_string(),
        });
    }
    if store_type == StoreType::Tsa {
        let reason = match chain::check_signature_from(&x, &x) {
            Err(reason) => Some(reason),
            Ok(()) if x.subject().as_raw() != x.issuer().as_raw() => Some(format!(
                "issuer ({}) and subject ({}) are not the same",
                x.issuer(),
                x.subject()
            )),
            Ok(()) => None,
        };
        if let Some(reason) = reason {
            return Err(TrustStoreError::NotRootCa {
                path: path.to_owned(),
                subject: x.subject().to_string(),
                reason,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "truststore_tests.rs"]
mod tests;
