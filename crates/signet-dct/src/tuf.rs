//! The TUF update for one repository (GUN), as a pure state machine that the client feeds
//! with fetched bytes: root → timestamp → snapshot → targets → delegations, then the lookup
//! of the tag. Every link checks signatures against the role's threshold, expiry against
//! the given clock, the version against what was seen before, and the hashes and length
//! that the metadata above declares.

use std::collections::{BTreeMap, HashMap};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use time::OffsetDateTime;

use crate::error::DctError;
use crate::metadata::{
    role_keys, FileMeta, RoleKeys, RootSigned, SnapshotSigned, TargetsSigned, TimestampSigned,
    Unverified, MAX_DELEGATED_ROLES, MAX_KEYS,
};
use crate::pin::RootPin;

/// The delegation Docker's `docker trust sign` writes to, and which Docker prefers.
pub const RELEASES_ROLE: &str = "targets/releases";
/// At most this many delegated roles are fetched for one repository.
pub const MAX_DELEGATIONS_FETCHED: usize = 32;
/// Delegations deeper than this (`targets/a/b/c/d`) are ignored.
pub const MAX_DELEGATION_DEPTH: usize = 4;

/// What is remembered about a repository between verifications: the last trusted root and
/// the highest version seen of each role (rollback protection).
#[derive(Debug, Clone, Default)]
pub struct RepoState {
    pub(crate) root: Option<TrustedRoot>,
    /// Role name → highest version verified.
    pub versions: BTreeMap<String, u64>,
}

impl RepoState {
    /// Merges a newer state in (concurrent verifications: keep the highest of each).
    pub fn merge(&mut self, newer: RepoState) {
        for (role, version) in newer.versions {
            let slot = self.versions.entry(role).or_insert(0);
            *slot = (*slot).max(version);
        }
        match (&self.root, newer.root) {
            (Some(old), Some(new)) if new.version <= old.version => {}
            (_, Some(new)) => self.root = Some(new),
            (_, None) => {}
        }
    }
}

/// A root whose signatures were checked.
#[derive(Debug, Clone)]
pub(crate) struct TrustedRoot {
    pub(crate) version: u64,
    pub(crate) root: RoleKeys,
    pub(crate) timestamp: RoleKeys,
    pub(crate) snapshot: RoleKeys,
    pub(crate) targets: RoleKeys,
    pub(crate) bytes: Vec<u8>,
}

/// A verified targets role (top-level or delegated).
#[derive(Debug, Clone)]
struct VerifiedTargets {
    targets: BTreeMap<String, FileMeta>,
    /// Delegated children, in document order: (name, keys, paths).
    children: Vec<(String, RoleKeys, Vec<String>)>,
    signers: Vec<String>,
}

/// The signed target a tag resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTarget {
    /// The tag (TUF target name).
    pub tag: String,
    /// The role whose metadata lists the tag (`targets`, `targets/releases`, …).
    pub role: String,
    /// Key IDs that signed that role's metadata.
    pub signers: Vec<String>,
    /// The manifest digest the tag is signed for (`sha256:HEX`).
    pub digest: String,
    /// The manifest size the tag is signed for.
    pub length: u64,
}

/// One verification of one repository.
#[derive(Debug)]
pub struct Update {
    gun: String,
    now: OffsetDateTime,
    previous: RepoState,
    next: RepoState,
    root: Option<TrustedRoot>,
    snapshot_meta: Option<FileMeta>,
    snapshot: Option<BTreeMap<String, FileMeta>>,
    roles: HashMap<String, VerifiedTargets>,
    /// Delegated role → (parent, paths) for every delegation a verified role declares.
    delegated: HashMap<String, (String, Vec<String>, RoleKeys)>,
}

impl Update {
    /// Starts an update of `gun` evaluated at `now`, with the state remembered so far.
    pub fn new(gun: &str, now: OffsetDateTime, previous: RepoState) -> Update {
        Update {
            gun: gun.to_owned(),
            now,
            next: previous.clone(),
            previous,
            root: None,
            snapshot_meta: None,
            snapshot: None,
            roles: HashMap::new(),
            delegated: HashMap::new(),
        }
    }

    fn check_version(&mut self, role: &str, version: u64) -> Result<(), DctError> {
        if let Some(&seen) = self.previous.versions.get(role) {
            if version < seen {
                return Err(DctError::Rollback {
                    role: role.to_owned(),
                    found: version,
                    seen,
                });
            }
        }
        self.next.versions.insert(role.to_owned(), version);
        Ok(())
    }

    /// Verifies `root.json`: its own threshold, anchored in `pin` (or rotated from the root
    /// trusted before: signed by that root's threshold as well), not expired, not older.
    pub fn verify_root(&mut self, bytes: &[u8], pin: &RootPin) -> Result<(), DctError> {
        let doc = Unverified::parse("root", bytes)?;
        let signed: RootSigned = doc.peek()?;
        signed.common.check_type("root", "Root")?;
        if signed.keys.len() > MAX_KEYS {
            return Err(DctError::malformed(
                "root",
                format!("more than {MAX_KEYS} keys"),
            ));
        }
        let role = |name: &str| -> Result<RoleKeys, DctError> {
            let entry = signed
                .roles
                .get(name)
                .ok_or_else(|| DctError::malformed("root", format!("no {name} role")))?;
            role_keys("root", name, &entry.keyids, entry.threshold, &signed.keys)
        };
        let root_role = role("root")?;
        let trusted = TrustedRoot {
            version: signed.common.version,
            timestamp: role("timestamp")?,
            snapshot: role("snapshot")?,
            targets: role("targets")?,
            root: root_role.clone(),
            bytes: bytes.to_vec(),
        };
        doc.verify(&root_role)?;

        // Anchoring: enough root signatures from pinned keys, or a rotation signed by the
        // previously trusted root's threshold.
        let signers = doc.valid_signers(&root_role);
        let mut reasons = Vec::new();
        let mut pinned_signers = 0usize;
        for id in &signers {
            if let Some(key) = root_role.keys.get(id) {
                match pin.anchors(key, self.now) {
                    Ok(()) => pinned_signers += 1,
                    Err(reason) => reasons.push(reason),
                }
            }
        }
        let pinned = pinned_signers >= root_role.threshold as usize;
        let rotated = match &self.previous.root {
            Some(old) if old.bytes == bytes => true,
            Some(old) => signed.common.version > old.version && doc.verify(&old.root).is_ok(),
            None => false,
        };
        if !pinned && !rotated {
            let reason = if reasons.is_empty() {
                format!(
                    "{pinned_signers} of {} required root signatures are from pinned keys",
                    root_role.threshold
                )
            } else {
                reasons.join("; ")
            };
            return Err(DctError::RootNotPinned {
                gun: self.gun.clone(),
                reason,
            });
        }
        if let Some(old) = &self.previous.root {
            if signed.common.version < old.version {
                return Err(DctError::Rollback {
                    role: "root".to_owned(),
                    found: signed.common.version,
                    seen: old.version,
                });
            }
        }
        signed.common.check_expiry("root", self.now)?;
        self.check_version("root", signed.common.version)?;
        self.next.root = Some(trusted.clone());
        self.root = Some(trusted);
        Ok(())
    }

    fn trusted_root(&self) -> Result<&TrustedRoot, DctError> {
        self.root
            .as_ref()
            .ok_or_else(|| DctError::malformed("root", "root was not verified first"))
    }

    /// Verifies `timestamp.json`; it declares the snapshot's hashes and length.
    pub fn verify_timestamp(&mut self, bytes: &[u8]) -> Result<(), DctError> {
        let role = self.trusted_root()?.timestamp.clone();
        let doc = Unverified::parse("timestamp", bytes)?;
        doc.verify(&role)?;
        let signed: TimestampSigned = doc.peek()?;
        signed.common.check_type("timestamp", "Timestamp")?;
        signed.common.check_expiry("timestamp", self.now)?;
        self.check_version("timestamp", signed.common.version)?;
        let meta = signed
            .meta
            .get("snapshot")
            .cloned()
            .ok_or_else(|| DctError::malformed("timestamp", "declares no snapshot"))?;
        self.snapshot_meta = Some(meta);
        Ok(())
    }

    /// The snapshot length the verified timestamp declares (the fetch bound).
    pub fn snapshot_length(&self) -> Option<u64> {
        self.snapshot_meta.as_ref().map(|m| m.length)
    }

    /// Verifies `snapshot.json` against the timestamp's declaration and the root's keys.
    pub fn verify_snapshot(&mut self, bytes: &[u8]) -> Result<(), DctError> {
        let meta = self
            .snapshot_meta
            .clone()
            .ok_or_else(|| DctError::malformed("snapshot", "timestamp was not verified first"))?;
        meta.check("snapshot", "timestamp", bytes)?;
        let role = self.trusted_root()?.snapshot.clone();
        let doc = Unverified::parse("snapshot", bytes)?;
        doc.verify(&role)?;
        let signed: SnapshotSigned = doc.peek()?;
        signed.common.check_type("snapshot", "Snapshot")?;
        signed.common.check_expiry("snapshot", self.now)?;
        self.check_version("snapshot", signed.common.version)?;
        if let Some(root_meta) = signed.meta.get("root") {
            let root_bytes = self.trusted_root()?.bytes.clone();
            root_meta.check("root", "snapshot", &root_bytes)?;
        }
        if !signed.meta.contains_key("targets") {
            return Err(DctError::malformed("snapshot", "declares no targets"));
        }
        self.snapshot = Some(signed.meta);
        Ok(())
    }

    /// The length the snapshot declares for `role` (the fetch bound); `None` when the role
    /// is not in the snapshot (never published).
    pub fn declared_length(&self, role: &str) -> Option<u64> {
        self.snapshot.as_ref()?.get(role).map(|m| m.length)
    }

    /// Verifies the top-level `targets.json`.
    pub fn verify_targets(&mut self, bytes: &[u8]) -> Result<(), DctError> {
        let role = self.trusted_root()?.targets.clone();
        self.verify_targets_role("targets", &role, bytes)
    }

    /// Delegated roles that verified metadata declares, that the snapshot lists, and that
    /// are not fetched yet, in lookup order (`targets/releases` first), within the bounds.
    pub fn pending_delegations(&self) -> Vec<String> {
        if self.roles.len() > MAX_DELEGATIONS_FETCHED {
            return Vec::new();
        }
        let mut names: Vec<&String> = self
            .delegated
            .keys()
            .filter(|name| !self.roles.contains_key(*name))
            .filter(|name| self.declared_length(name).is_some())
            .filter(|name| name.split('/').count() <= MAX_DELEGATION_DEPTH + 1)
            .collect();
        names.sort_by_key(|name| (name.as_str() != RELEASES_ROLE, name.to_string()));
        names.into_iter().cloned().collect()
    }

    /// Verifies a delegated role's metadata against the snapshot and its delegating keys.
    pub fn verify_delegation(&mut self, name: &str, bytes: &[u8]) -> Result<(), DctError> {
        let (_, _, keys) = self
            .delegated
            .get(name)
            .cloned()
            .ok_or_else(|| DctError::malformed(name, "no verified role delegates to it"))?;
        self.verify_targets_role(name, &keys, bytes)
    }

    fn verify_targets_role(
        &mut self,
        name: &str,
        role: &RoleKeys,
        bytes: &[u8],
    ) -> Result<(), DctError> {
        let meta = self
            .snapshot
            .as_ref()
            .and_then(|s| s.get(name))
            .cloned()
            .ok_or_else(|| DctError::malformed(name, "the snapshot does not list it"))?;
        meta.check(name, "snapshot", bytes)?;
        let doc = Unverified::parse(name, bytes)?;
        let signers = doc.verify(role)?;
        let signed: TargetsSigned = doc.peek()?;
        signed.common.check_type(name, "Targets")?;
        signed.common.check_expiry(name, self.now)?;
        self.check_version(name, signed.common.version)?;
        let delegations = signed.delegations.unwrap_or_default();
        if delegations.roles.len() > MAX_DELEGATED_ROLES {
            return Err(DctError::malformed(
                name,
                format!("more than {MAX_DELEGATED_ROLES} delegated roles"),
            ));
        }
        if delegations.keys.len() > MAX_KEYS {
            return Err(DctError::malformed(
                name,
                format!("more than {MAX_KEYS} delegation keys"),
            ));
        }
        let mut children = Vec::new();
        for child in &delegations.roles {
            let parent_prefix = format!("{name}/");
            let rest = child.name.strip_prefix(&parent_prefix).unwrap_or("");
            if rest.is_empty() || rest.contains('/') || rest.contains("..") {
                return Err(DctError::malformed(
                    name,
                    format!("delegated role {:?} is not a direct child", child.name),
                ));
            }
            let keys = role_keys(
                name,
                &child.name,
                &child.keyids,
                child.threshold,
                &delegations.keys,
            )?;
            let paths = child.paths.clone().unwrap_or_default();
            self.delegated.insert(
                child.name.clone(),
                (name.to_owned(), paths.clone(), keys.clone()),
            );
            children.push((child.name.clone(), keys, paths));
        }
        self.roles.insert(
            name.to_owned(),
            VerifiedTargets {
                targets: signed.targets,
                children,
                signers,
            },
        );
        Ok(())
    }

    /// Whether every delegation on the way from `targets` to `role` allows `tag`.
    fn paths_allow(&self, role: &str, tag: &str) -> bool {
        let mut current = role;
        let mut hops = 0;
        while current != "targets" {
            let Some((parent, paths, _)) = self.delegated.get(current) else {
                return false;
            };
            if !paths.iter().any(|p| tag.starts_with(p.as_str())) {
                return false;
            }
            current = parent;
            hops += 1;
            if hops > MAX_DELEGATION_DEPTH {
                return false;
            }
        }
        true
    }

    /// Finds the tag as Docker does: `targets/releases` (and what it delegates) first,
    /// then `targets` and its other delegations, depth first.
    pub fn find_target(&self, tag: &str) -> Result<SignedTarget, DctError> {
        let mut order: Vec<String> = Vec::new();
        let mut stack = vec!["targets".to_owned()];
        if self.roles.contains_key(RELEASES_ROLE) {
            stack.push(RELEASES_ROLE.to_owned());
        }
        while let Some(role) = stack.pop() {
            if order.contains(&role) || order.len() > MAX_DELEGATIONS_FETCHED {
                continue;
            }
            let Some(verified) = self.roles.get(&role) else {
                continue;
            };
            order.push(role.clone());
            for (child, _, _) in verified.children.iter().rev() {
                stack.push(child.clone());
            }
        }
        for role in order {
            let verified = &self.roles[&role];
            let Some(meta) = verified.targets.get(tag) else {
                continue;
            };
            if !self.paths_allow(&role, tag) {
                continue;
            }
            let sha256 = meta
                .hashes
                .get("sha256")
                .and_then(|h| STANDARD.decode(h.as_bytes()).ok())
                .filter(|h| h.len() == 32)
                .ok_or_else(|| {
                    DctError::malformed(&role, format!("target {tag} has no valid sha256 hash"))
                })?;
            return Ok(SignedTarget {
                tag: tag.to_owned(),
                role,
                signers: verified.signers.clone(),
                digest: format!("sha256:{}", crate::keys::hex(&sha256)),
                length: meta.length,
            });
        }
        Err(DctError::TargetNotFound {
            gun: self.gun.clone(),
            tag: tag.to_owned(),
        })
    }

    /// The state to remember after this update (only meaningful once the chain verified).
    pub fn into_state(self) -> RepoState {
        self.next
    }
}

/// The final check: the signed target is the manifest the registry gave.
pub fn check_manifest(target: &SignedTarget, digest: &str, size: u64) -> Result<(), DctError> {
    if target.digest.eq_ignore_ascii_case(digest) && target.length == size {
        return Ok(());
    }
    Err(DctError::TargetMismatch {
        tag: target.tag.clone(),
        role: target.role.clone(),
        signed_sha256: target.digest.trim_start_matches("sha256:").to_owned(),
        signed_length: target.length,
        digest: digest.to_owned(),
        size,
    })
}
