//! The pure verification on metadata captured from the real Notary server (no I/O), at a
//! fixed clock: the chain, canonical JSON, expiry, pinning and rollback rules.

#![allow(clippy::unwrap_used)]

use signet_dct::{check_manifest, DctError, RepoState, RootPin, Update};
use time::macros::datetime;
use time::OffsetDateTime;

const ROOT: &[u8] = include_bytes!("fixtures/notary-v0.7.0/root.json");
const TIMESTAMP: &[u8] = include_bytes!("fixtures/notary-v0.7.0/timestamp.json");
const SNAPSHOT: &[u8] = include_bytes!("fixtures/notary-v0.7.0/snapshot.json");
const TARGETS: &[u8] = include_bytes!("fixtures/notary-v0.7.0/targets.json");
const ROOT_KEY_ID: &str = "d9df192a2e145763625c7849f3a01dcaef6b6bcd45e08e3361d65722310eb449";
const HELLO_DIGEST: &str =
    "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
const NOW: OffsetDateTime = datetime!(2026-12-06 00:00 UTC);

fn pin() -> RootPin {
    RootPin {
        key_ids: vec![ROOT_KEY_ID.to_owned()],
        ..RootPin::default()
    }
}

fn run(state: RepoState, now: OffsetDateTime) -> Result<Update, DctError> {
    let mut update = Update::new("example.com/app", now, state);
    update.verify_root(ROOT, &pin())?;
    update.verify_timestamp(TIMESTAMP)?;
    update.verify_snapshot(SNAPSHOT)?;
    update.verify_targets(TARGETS)?;
    Ok(update)
}

#[test]
fn the_captured_chain_verifies_and_names_the_target() {
    let update = run(RepoState::default(), NOW).unwrap();
    let target = update.find_target("v1").unwrap();
    assert_eq!(target.role, "targets");
    assert_eq!(target.digest, HELLO_DIGEST);
    assert_eq!(target.length, 6);
    check_manifest(&target, HELLO_DIGEST, 6).unwrap();
    let state = update.into_state();
    assert_eq!(state.versions.get("snapshot"), Some(&2));
    assert_eq!(state.versions.get("timestamp"), Some(&1));
}

#[test]
fn signatures_are_over_canonical_json_not_the_served_bytes() {
    let doc: serde_json::Value = serde_json::from_slice(ROOT).unwrap();
    let pretty = serde_json::to_vec_pretty(&doc).unwrap();
    let mut update = Update::new("example.com/app", NOW, RepoState::default());
    update.verify_root(&pretty, &pin()).unwrap();
    // …but the snapshot pins the root's exact bytes.
    update.verify_timestamp(TIMESTAMP).unwrap();
    let err = update.verify_snapshot(SNAPSHOT).unwrap_err();
    assert!(
        matches!(&err, DctError::MetaMismatch { role, .. } if role == "root"),
        "{err}"
    );
}

#[test]
fn changed_signed_content_breaks_the_signature() {
    let text = String::from_utf8(ROOT.to_vec()).unwrap();
    let tampered = text.replacen("\"threshold\":1", "\"threshold\":1 ", 1);
    // Whitespace alone is canonicalized away; a changed value is not.
    let mut update = Update::new("example.com/app", NOW, RepoState::default());
    update.verify_root(tampered.as_bytes(), &pin()).unwrap();
    let tampered = text.replacen("2036-12-02", "2046-12-02", 1);
    let mut update = Update::new("example.com/app", NOW, RepoState::default());
    let err = update.verify_root(tampered.as_bytes(), &pin()).unwrap_err();
    assert!(
        matches!(&err, DctError::ThresholdNotMet { role, valid: 0, .. } if role == "root"),
        "{err}"
    );
}

#[test]
fn expiry_follows_the_clock() {
    let err = run(RepoState::default(), datetime!(2026-12-20 00:00 UTC)).unwrap_err();
    assert!(
        matches!(&err, DctError::Expired { role, .. } if role == "timestamp"),
        "{err}"
    );
    let err = run(RepoState::default(), datetime!(2030-01-01 00:00 UTC)).unwrap_err();
    assert!(matches!(&err, DctError::Expired { .. }), "{err}");
}

#[test]
fn an_unpinned_root_is_refused_without_trust_on_first_use() {
    let mut update = Update::new("example.com/app", NOW, RepoState::default());
    let other = RootPin {
        key_ids: vec!["ab".repeat(32)],
        ..RootPin::default()
    };
    let err = update.verify_root(ROOT, &other).unwrap_err();
    assert!(matches!(err, DctError::RootNotPinned { .. }), "{err}");
    let mut update = Update::new("example.com/app", NOW, RepoState::default());
    let err = update.verify_root(ROOT, &RootPin::default()).unwrap_err();
    assert!(matches!(err, DctError::RootNotPinned { .. }), "{err}");
}

#[test]
fn versions_below_those_seen_are_a_rollback() {
    let mut seen = run(RepoState::default(), NOW).unwrap().into_state();
    seen.versions.insert("targets".to_owned(), 3);
    let err = run(seen, NOW).unwrap_err();
    assert!(
        matches!(&err, DctError::Rollback { role, found: 2, seen: 3 } if role == "targets"),
        "{err}"
    );
}
