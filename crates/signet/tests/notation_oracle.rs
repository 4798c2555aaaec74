//! The real notation CLI (v1.3.2) as a second oracle: signatures made by `notation sign`
//! (COSE and JWS; RSA and EC keys; `--expiry`; user metadata; RFC 3161 timestamps from an
//! `openssl ts` responder on 127.0.0.1) into OCI layouts and into the real `docker-registry`,
//! then `notation verify` and `signet verify` over a matrix of trust policies. Both must reach
//! the same verdict, and the same failing check where notation's message names one.
//!
//! Time: notation has no `--at`, and libfaketime cannot move a Go program's clock (Go reads the
//! vDSO directly; checked: `faketime ... <go binary>` prints the real time). So every
//! verification runs at the real instant (Signet gets `--at` = the instant notation ran), and
//! the time-dependent chains are made like this:
//! - *expired chain*: a leaf valid until a few seconds after it signs; the verifications wait
//!   until it has expired (a precondition wait, not a timing assertion);
//! - *chain not valid at the authentic signing time*: the TSA (a C program, so libfaketime
//!   works) is run in the past (before the leaf's notBefore) or in the future (after its
//!   notAfter), so the timestamp's genTime lies outside the chain's validity while the chain
//!   itself is valid now.
//!
//! The notation binary: `$SIGNET_NOTATION`, else `~/.cache/signet/notation-v1.3.2/notation`
//! (what `.ci/install-deps` builds), else `notation` on PATH. Missing under `CI=true` is a
//! failure; missing locally skips loudly.
//!
//! Disagreements are listed in `docs/notation-differences.md`; the test asserts the listed
//! outcome for those cases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod notation_oracle_support;

use notation_oracle_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notation_and_signet_agree() {
    let Some(notation) = find_notation() else {
        return;
    };
    let report = run_oracle(notation).await;
    println!("{report}");
}
