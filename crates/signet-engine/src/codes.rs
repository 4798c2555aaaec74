//! The one place where internal errors become contract error codes and messages.
//!
//! | source | code |
//! |---|---|
//! | reference does not parse ([`RegistryError::InvalidReference`]) | `INVALID_REFERENCE` |
//! | no statement applies to `registry/repo` | `NO_TRUST_POLICY` |
//! | registry: connect, transport, HTTP status, throttling, oversize answer, malformed JSON, refused redirect | `REGISTRY_ERROR` |
//! | registry: credentials refused, token service or credential helper failed | `REGISTRY_AUTH_FAILED` |
//! | registry: manifest/tag/repository not found (resolve) | `ARTIFACT_NOT_FOUND` |
//! | registry: content whose digest/size/subject is wrong (resolve, discovery) | `SIGNATURE_INVALID` |
//! | a signature manifest the registry served wrong ([`RejectedSignature`]) or an envelope blob that is missing, oversize or not what its descriptor says | `SIGNATURE_INVALID` (for that signature) |
//! | no signature at all | `SIGNATURE_NOT_FOUND` (from [`signet_notation::verifier::combine`]) |
//! | a signature's own verification | its [`Failure`]'s code; several signatures: the one that got furthest |
//! | multi-arch, per platform: the index selects no platform manifest | `SIGNATURE_NOT_FOUND` |
//! | multi-arch, per platform: more than [`crate::MAX_PLATFORM_MANIFESTS`], or a nested index | `UNSUPPORTED_SIGNATURE` |
//! | multi-arch, per platform: a platform manifest not verified | that manifest's code, the message naming platform and digest |
//! | DCT: Notary server unreachable or failing / too slow | `REGISTRY_ERROR` / `TIMEOUT` (not cached) |
//! | DCT: the repository or the tag is not signed | `SIGNATURE_NOT_FOUND` |
//! | DCT: root not anchored in the pinned keys/certificates; DCT verified after the migration window or without one | `UNTRUSTED_SIGNER` |
//! | DCT: metadata expired | `SIGNATURE_EXPIRED` |
//! | DCT: thresholds, hashes, rollback, tag signed for another manifest, malformed | `SIGNATURE_INVALID` |
//! | the caller's deadline passed, or a registry call ran into it | `TIMEOUT` |
//! | the engine itself (a verification task that panicked, a closed semaphore) | `INTERNAL` |
//!
//! Verdicts with `REGISTRY_ERROR`, `REGISTRY_AUTH_FAILED`, `TIMEOUT` or `INTERNAL` (on the
//! artifact or on any of its signatures, when not verified) are transient: never cached.

use signet_notation::policy::PolicyError;
use signet_notation::verifier::{Check, Failure};
use signet_notation::ErrorCode;
use signet_registry::{RegistryError, RejectedSignature};

use crate::VerdictError;

/// A registry error met while resolving or discovering (the whole artifact fails).
pub(crate) fn registry(e: &RegistryError) -> VerdictError {
    let code = e.code();
    let hint = match code {
        // The helper's own words say what is wrong; the credentials were never sent.
        _ if matches!(e, RegistryError::CredentialHelper { .. }) => {
            "; fix the credential helper (or log in again), or name another Docker config"
        }
        ErrorCode::RegistryAuthFailed => {
            "; check the registry credentials (Docker config) and that they may pull this repository"
        }
        ErrorCode::ArtifactNotFound => "; check the reference (registry, repository, tag)",
        ErrorCode::RegistryError => "; the registry may be unreachable or failing, retry later",
        _ => "",
    };
    VerdictError {
        code,
        message: format!("{e}{hint}"),
    }
}

/// A trust-policy lookup that failed.
pub(crate) fn policy(e: &PolicyError) -> VerdictError {
    match e {
        PolicyError::InvalidReference(m) => VerdictError {
            code: ErrorCode::InvalidReference,
            message: m.clone(),
        },
        PolicyError::NoApplicableStatement(m) | PolicyError::Invalid(m) => VerdictError {
            code: ErrorCode::NoTrustPolicy,
            message: m.clone(),
        },
    }
}

/// The caller's deadline passed.
pub(crate) fn timeout(during: &str) -> VerdictError {
    VerdictError {
        code: ErrorCode::Timeout,
        message: format!(
            "the deadline passed while {during}; the registry may be slow, retry later or allow more time"
        ),
    }
}

/// The engine failed itself.
pub(crate) fn internal(message: impl Into<String>) -> VerdictError {
    VerdictError {
        code: ErrorCode::Internal,
        message: message.into(),
    }
}

/// A digest the registry answered that is not the one asked for.
pub(crate) fn digest_mismatch(expected: &str, actual: &str) -> VerdictError {
    VerdictError {
        code: ErrorCode::SignatureInvalid,
        message: format!(
            "the registry resolved the reference to {actual}, not the digest {expected} it names"
        ),
    }
}

/// A signature manifest the registry listed but served wrong: a failed signature.
pub(crate) fn rejected_signature(r: &RejectedSignature) -> Failure {
    Failure {
        code: ErrorCode::SignatureInvalid,
        check: Check::Integrity,
        message: format!(
            "the registry served signature manifest {} wrong: {}",
            r.digest, r.error
        ),
    }
}

/// An envelope blob that could not be fetched: integrity failures (missing, oversize, wrong
/// bytes) fail the signature as `SIGNATURE_INVALID`; failures of the registry keep their
/// (transient) code.
pub(crate) fn envelope_fetch(e: &RegistryError) -> Failure {
    let code = match e {
        RegistryError::NotFound { .. } | RegistryError::TooLarge { .. } => {
            ErrorCode::SignatureInvalid
        }
        other => other.code(),
    };
    Failure {
        code,
        check: Check::Integrity,
        message: format!("the signature envelope could not be fetched: {e}"),
    }
}

/// An index under a per-platform mode lists no manifest for the configured platforms.
pub(crate) fn no_platform_manifest(index: &str, platforms: &[String]) -> VerdictError {
    let which = if platforms.is_empty() {
        "any platform".to_owned()
    } else {
        platforms.join(", ")
    };
    VerdictError {
        code: ErrorCode::SignatureNotFound,
        message: format!(
            "the image index {index} lists no platform manifest for {which}, so no signature can decide; check the image or the multiArch platforms"
        ),
    }
}

/// An index under a per-platform mode selects more platform manifests than are verified.
pub(crate) fn too_many_platforms(index: &str, count: usize, limit: usize) -> VerdictError {
    VerdictError {
        code: ErrorCode::UnsupportedSignature,
        message: format!(
            "the image index {index} lists {count} platform manifests, more than the {limit} verified per image; sign the index (multiArch mode index or indexOrPlatforms) or name the cluster's platforms"
        ),
    }
}

/// An index under a per-platform mode lists another index.
pub(crate) fn nested_index(index: &str, nested: &str) -> VerdictError {
    VerdictError {
        code: ErrorCode::UnsupportedSignature,
        message: format!(
            "the image index {index} lists another index ({nested}), which is not verified per platform; sign the index (multiArch mode index or indexOrPlatforms)"
        ),
    }
}

/// A Docker Content Trust failure as a contract error.
pub(crate) fn dct(e: &signet_dct::DctError) -> VerdictError {
    use signet_dct::DctError as D;
    let code = match e {
        D::Timeout { .. } => ErrorCode::Timeout,
        D::Server { .. } => ErrorCode::RegistryError,
        D::NotSigned { .. } | D::TargetNotFound { .. } => ErrorCode::SignatureNotFound,
        D::RootNotPinned { .. } => ErrorCode::UntrustedSigner,
        D::Expired { .. } => ErrorCode::SignatureExpired,
        D::NotConfigured { .. } | D::Config(_) => ErrorCode::Internal,
        _ => ErrorCode::SignatureInvalid,
    };
    VerdictError {
        code,
        message: e.to_string(),
    }
}

/// DCT verified the tag, but the migration window has ended.
pub(crate) fn dct_window_closed(tag: &str, signer: &str, ended: &str) -> VerdictError {
    VerdictError {
        code: ErrorCode::UntrustedSigner,
        message: format!(
            "tag {tag} is signed in Docker Content Trust ({signer}), but the migration window ended at {ended} (dct.migrationUntil): DCT alone no longer admits images; sign the image with Notation"
        ),
    }
}

/// DCT verified the tag, but no migration window is configured.
pub(crate) fn dct_no_window(tag: &str, signer: &str) -> VerdictError {
    VerdictError {
        code: ErrorCode::UntrustedSigner,
        message: format!(
            "tag {tag} is signed in Docker Content Trust ({signer}), but no migration window is configured (dct.migrationUntil), so DCT alone does not admit images; sign the image with Notation"
        ),
    }
}

/// A notation failure as a contract error.
pub(crate) fn failure(f: &Failure) -> VerdictError {
    VerdictError {
        code: f.code,
        message: f.message.clone(),
    }
}

/// Whether a failure with this code may be remembered: not when the next attempt could well
/// succeed (registry trouble, deadlines, our own failures).
pub fn is_transient(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RegistryError
            | ErrorCode::RegistryAuthFailed
            | ErrorCode::Timeout
            | ErrorCode::Internal
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_codes() {
        let e = RegistryError::AuthFailed {
            host: "h".into(),
            what: "w".into(),
            message: "m".into(),
        };
        assert_eq!(registry(&e).code, ErrorCode::RegistryAuthFailed);
        let e = RegistryError::NotFound {
            repository: "r".into(),
            what: "blob".into(),
        };
        assert_eq!(registry(&e).code, ErrorCode::ArtifactNotFound);
        assert_eq!(envelope_fetch(&e).code, ErrorCode::SignatureInvalid);
        let e = RegistryError::Timeout { during: "x".into() };
        assert_eq!(envelope_fetch(&e).code, ErrorCode::Timeout);
        assert!(is_transient(ErrorCode::Timeout));
        assert!(!is_transient(ErrorCode::SignatureNotFound));
        assert_eq!(
            policy(&PolicyError::NoApplicableStatement("x".into())).code,
            ErrorCode::NoTrustPolicy
        );
    }
}
