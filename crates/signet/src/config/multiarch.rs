//! `multiArch:` — how an image index is verified, per trust-policy statement.
//!
//! Kept in Signet's configuration rather than in `trustpolicy.json`: notation rejects
//! unknown keys in a trust policy, and the same document must stay usable by `notation
//! verify`. Statements are named as in the trust policy; a statement not named here (or a
//! name the policy does not have) verifies an index by its own signature, as notation does.
//!
//! ```yaml
//! multiArch:
//!   statements:
//!     production:                 # a trust-policy statement name
//!       mode: platforms           # index (default) | platforms | indexOrPlatforms
//!       platforms: [linux/amd64, linux/arm64]   # optional: only these must be signed
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use signet_engine::multiarch::check_platform;
use signet_engine::{MultiArchMode, MultiArchPolicy};

/// `multiArch:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MultiArchConfig {
    #[serde(default)]
    pub statements: BTreeMap<String, MultiArchStatement>,
}

/// `multiArch.statements.NAME`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MultiArchStatement {
    pub mode: Option<String>,
    #[serde(default)]
    pub platforms: Vec<String>,
}

impl MultiArchConfig {
    /// The engine's options by statement name; problems go to `errors`.
    pub(super) fn validate(&self, errors: &mut Vec<String>) -> BTreeMap<String, MultiArchPolicy> {
        let mut out = BTreeMap::new();
        for (name, s) in &self.statements {
            let key = format!("multiArch.statements.{name}");
            if name.trim().is_empty() {
                errors.push("multiArch.statements: empty statement name".into());
                continue;
            }
            let mode = match s.mode.as_deref() {
                None => MultiArchMode::Index,
                Some(m) => match MultiArchMode::parse(m) {
                    Some(mode) => mode,
                    None => {
                        errors.push(format!(
                            "{key}.mode: {m:?} is not one of index, platforms, indexOrPlatforms"
                        ));
                        continue;
                    }
                },
            };
            if mode == MultiArchMode::Index && !s.platforms.is_empty() {
                errors.push(format!(
                    "{key}.platforms: only used with mode platforms or indexOrPlatforms (mode is index)"
                ));
            }
            for p in &s.platforms {
                if let Err(e) = check_platform(p) {
                    errors.push(format!("{key}.platforms: {e}"));
                }
            }
            out.insert(
                name.clone(),
                MultiArchPolicy {
                    mode,
                    platforms: s.platforms.clone(),
                },
            );
        }
        out
    }
}
