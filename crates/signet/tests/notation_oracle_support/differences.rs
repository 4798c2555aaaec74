//! The cases where Signet's answer deliberately differs from notation's (each explained in
//! `docs/notation-differences.md`).

/// A case pattern (`variant/check`; `*` matches any run of characters) and both answers, as
/// the test prints them (`verified`, `failed CODE`, `failed`, `refused`); `signet: "=CHECK"`
/// means Signet's answer for the same signature under CHECK.
#[derive(Debug)]
pub(crate) struct Expectation {
    pub case: &'static str,
    pub notation: &'static str,
    pub signet: &'static str,
}

/// Deliberate differences (docs/notation-differences.md). An entry applies to the cases it
/// matches where the two answers differ; `notation: "*"` accepts any answer of notation.
pub(crate) const LISTED_DIFFERENCES: &[Expectation] = &[
    // D2: a leaf with anyExtendedKeyUsage (beside codeSigning). notation signs with it and
    // accepts it; the conformance README, rule (a), makes Signet reject it in the integrity
    // step, before any trust policy check.
    Expectation {
        case: "any-eku-*/*",
        notation: "*",
        signet: "failed SIGNATURE_INVALID",
    },
    // D3: a trust store laid out like a Kubernetes ConfigMap/Secret mount (symlinks and a
    // `..<timestamp>` directory). notation refuses the store; Signet loads it (conformance
    // README, rule (b)) and answers exactly as with the same CA in a plain store (`=strict`:
    // Signet's answer for the same signature under the `strict` check).
    Expectation {
        case: "*/strict-kubernetes-mounted-store",
        notation: "failed UNTRUSTED_SIGNER",
        signet: "=strict",
    },
];

/// `*`-glob match.
pub(crate) fn matches(pattern: &str, case: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == case,
        Some((head, rest)) => {
            let Some(tail) = case.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && matches(rest, &tail[i..]))
        }
    }
}
