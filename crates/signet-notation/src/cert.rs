//! An owned, parsed-once X.509 certificate.

use std::sync::Arc;

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::Instant;

/// Why bytes are not a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("not a DER X.509 certificate: {0}")]
    Der(String),
    #[error("{0} bytes follow the DER certificate")]
    TrailingBytes(usize),
    #[error("not PEM: {0}")]
    Pem(String),
    #[error("PEM block of type {0:?}, expected CERTIFICATE")]
    PemType(String),
    #[error("no certificate found")]
    Empty,
}

/// An X.509 certificate that has been parsed successfully once; cheap to clone.
///
/// Holds the DER bytes; [`Certificate::x509`] re-parses on demand (microseconds), which keeps
/// the type free of self-references.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Certificate {
    der: Arc<[u8]>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .finish()
    }
}

impl Certificate {
    /// Parses one DER certificate, rejecting trailing bytes.
    pub fn from_der(der: impl Into<Arc<[u8]>>) -> Result<Self, CertificateError> {
        let der: Arc<[u8]> = der.into();
        match X509Certificate::from_der(&der) {
            Ok((&[], _)) => Ok(Certificate { der }),
            Ok((rest, _)) => Err(CertificateError::TrailingBytes(rest.len())),
            Err(e) => Err(CertificateError::Der(e.to_string())),
        }
    }

    /// Parses a file's content that is either one DER certificate or one or more PEM
    /// `CERTIFICATE` blocks (Notation trust stores accept both).
    pub fn parse_pem_or_der(bytes: &[u8]) -> Result<Vec<Self>, CertificateError> {
        let trimmed = bytes.trim_ascii_start();
        if trimmed.starts_with(b"-----BEGIN") {
            Self::parse_pem(bytes)
        } else if bytes.is_empty() {
            Err(CertificateError::Empty)
        } else {
            Ok(vec![Self::from_der(bytes.to_vec())?])
        }
    }

    /// Parses every PEM block in `bytes`; each must be a `CERTIFICATE`.
    pub fn parse_pem(bytes: &[u8]) -> Result<Vec<Self>, CertificateError> {
        let mut certs = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(bytes) {
            let pem = pem.map_err(|e| CertificateError::Pem(e.to_string()))?;
            if pem.label != "CERTIFICATE" {
                return Err(CertificateError::PemType(pem.label));
            }
            certs.push(Self::from_der(pem.contents)?);
        }
        if certs.is_empty() {
            return Err(CertificateError::Empty);
        }
        Ok(certs)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed certificate.
    pub fn x509(&self) -> X509Certificate<'_> {
        match X509Certificate::from_der(&self.der) {
            Ok((_, cert)) => cert,
            // `from_der` succeeded on these very bytes in the constructor.
            Err(e) => unreachable!("certificate parsed at construction no longer parses: {e}"),
        }
    }

    /// The subject as RFC 4514 writes it and Notation prints it: most specific RDN first,
    /// `CN=leaf,O=Org,C=US`.
    pub fn subject(&self) -> String {
        rfc4514(self.x509().subject())
    }

    /// The issuer, in the same form as [`Certificate::subject`].
    pub fn issuer(&self) -> String {
        rfc4514(self.x509().issuer())
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> Instant {
        self.x509().validity().not_before.to_datetime()
    }

    /// End of the validity period.
    pub fn not_after(&self) -> Instant {
        self.x509().validity().not_after.to_datetime()
    }

    /// Whether `at` lies within the validity period (bounds included, as Go's x509 does).
    pub fn is_valid_at(&self, at: Instant) -> bool {
        at >= self.not_before() && at <= self.not_after()
    }

    /// SHA-256 of the DER, lower-case hex.
    pub fn sha256_fingerprint(&self) -> String {
        crate::descriptor::hex(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der).as_ref(),
        )
    }
}

/// RFC 4514 string of a name: RDNs in reverse order, `,`-separated, multi-valued RDNs joined
/// with `+`, special characters escaped; unknown attribute types as dotted OIDs.
fn rfc4514(name: &x509_parser::x509::X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type();
                    // The names RFC 4514 and Go's pkix.Name.String() use.
                    let id = oid.to_id_string();
                    let short = match id.as_str() {
                        "2.5.4.3" => "CN",
                        "2.5.4.6" => "C",
                        "2.5.4.7" => "L",
                        "2.5.4.8" => "ST",
                        "2.5.4.9" => "STREET",
                        "2.5.4.10" => "O",
                        "2.5.4.11" => "OU",
                        "2.5.4.5" => "SERIALNUMBER",
                        "2.5.4.17" => "POSTALCODE",
                        "0.9.2342.19200300.100.1.25" => "DC",
                        "0.9.2342.19200300.100.1.1" => "UID",
                        other => other,
                    };
                    let value = attr.as_str().map(escape_rfc4514).unwrap_or_else(|_| {
                        format!("#{}", crate::descriptor::hex(attr.attr_value().data))
                    });
                    format!("{short}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn escape_rfc4514(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_rfc4514() {
        assert_eq!(escape_rfc4514("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc4514(" #x "), "\\ #x\\ ");
        assert_eq!(escape_rfc4514("plain"), "plain");
    }
}
