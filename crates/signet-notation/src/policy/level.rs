//! Verification levels, overrides and the resulting actions (notation-go
//! `SignatureVerification.GetVerificationLevel`).

use super::{Action, Actions, Level};

/// The validation types an `override` may name, in Notation's order.
pub const VALIDATION_TYPES: [&str; 5] = [
    "integrity",
    "authenticity",
    "authenticTimestamp",
    "expiry",
    "revocation",
];

impl Level {
    /// Parses a `signatureVerification.level` value (exact, case-sensitive).
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "strict" => Some(Level::Strict),
            "permissive" => Some(Level::Permissive),
            "audit" => Some(Level::Audit),
            "skip" => Some(Level::Skip),
            _ => None,
        }
    }

    /// The level's name as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Strict => "strict",
            Level::Permissive => "permissive",
            Level::Audit => "audit",
            Level::Skip => "skip",
        }
    }

    /// The actions of the level before any override.
    pub fn actions(self) -> Actions {
        use Action::{Enforce, Log, Skip};
        match self {
            Level::Strict => Actions {
                integrity: Enforce,
                authenticity: Enforce,
                authentic_timestamp: Enforce,
                expiry: Enforce,
                revocation: Enforce,
            },
            Level::Permissive => Actions {
                integrity: Enforce,
                authenticity: Enforce,
                authentic_timestamp: Log,
                expiry: Log,
                revocation: Log,
            },
            Level::Audit => Actions {
                integrity: Enforce,
                authenticity: Log,
                authentic_timestamp: Log,
                expiry: Log,
                revocation: Log,
            },
            Level::Skip => Actions {
                integrity: Skip,
                authenticity: Skip,
                authentic_timestamp: Skip,
                expiry: Skip,
                revocation: Skip,
            },
        }
    }
}

impl Action {
    /// Parses an override action (`enforce`, `log`, `skip`; exact, case-sensitive).
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "enforce" => Some(Action::Enforce),
            "log" => Some(Action::Log),
            "skip" => Some(Action::Skip),
            _ => None,
        }
    }

    /// The action's name as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Enforce => "enforce",
            Action::Log => "log",
            Action::Skip => "skip",
        }
    }
}

/// Resolves `signatureVerification.level` and `override` (key/value pairs as written; a
/// later duplicate key wins) into the level and its actions.
///
/// Errors (as notation-go): empty or unknown level; any override on `skip`; an unknown
/// validation type or action; overriding `integrity`; skipping anything but `revocation`.
pub fn resolve_actions(
    level: &str,
    overrides: &[(String, String)],
) -> Result<(Level, Actions), String> {
    if level.is_empty() {
        return Err(
            "signature verification level is empty or missing; set \"level\" to one of \"strict\", \"permissive\", \"audit\" or \"skip\""
                .to_owned(),
        );
    }
    let base = Level::parse(level).ok_or_else(|| {
        format!(
            "invalid signature verification level {level:?}; use one of \"strict\", \"permissive\", \"audit\" or \"skip\""
        )
    })?;
    let mut actions = base.actions();
    if overrides.is_empty() {
        return Ok((base, actions));
    }
    if base == Level::Skip {
        return Err(
            "signature verification level \"skip\" can't be used to customize signature verification; remove \"override\""
                .to_owned(),
        );
    }
    for (key, value) in overrides {
        if !VALIDATION_TYPES.contains(&key.as_str()) {
            return Err(format!(
                "verification type {key:?} in \"override\" is not supported; supported values are {VALIDATION_TYPES:?}"
            ));
        }
        let action = Action::parse(value).ok_or_else(|| {
            format!(
                "verification action {value:?} for {key:?} in \"override\" is not supported; supported values are \"enforce\", \"log\" and \"skip\""
            )
        })?;
        match key.as_str() {
            "integrity" => {
                return Err("\"integrity\" verification can not be overridden; remove it from \"override\"".to_owned())
            }
            "revocation" => actions.revocation = action,
            other if action == Action::Skip => {
                return Err(format!(
                    "{other:?} verification can not be skipped; only \"revocation\" may be overridden to \"skip\""
                ))
            }
            "authenticity" => actions.authenticity = action,
            "authenticTimestamp" => actions.authentic_timestamp = action,
            "expiry" => actions.expiry = action,
            // Unreachable: the key was checked against VALIDATION_TYPES above.
            other => return Err(format!("verification type {other:?} is not supported")),
        }
    }
    Ok((base, actions))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::test_support::cases;
    use serde_json::Value;

    fn action_name(a: Action) -> &'static str {
        a.as_str()
    }

    #[test]
    fn conformance_verification_level() {
        let mut agree = 0;
        let all = cases("verification-level");
        for case in &all {
            let id = case["id"].as_str().unwrap_or("?");
            let sv = &case["inputs"]["signatureVerification"];
            let level = sv["level"].as_str().unwrap_or("");
            let overrides: Vec<(String, String)> = sv["override"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let expected = &case["expected_signet"];
            let got = resolve_actions(level, &overrides);
            if expected["error"] == Value::Bool(true) {
                assert!(got.is_err(), "{id}: expected an error, got {got:?}");
            } else {
                let (_, a) = got.unwrap_or_else(|e| panic!("{id}: unexpected error {e}"));
                let exp = &expected["actions"];
                assert_eq!(exp["integrity"], action_name(a.integrity), "{id}");
                assert_eq!(exp["authenticity"], action_name(a.authenticity), "{id}");
                assert_eq!(
                    exp["authenticTimestamp"],
                    action_name(a.authentic_timestamp),
                    "{id}"
                );
                assert_eq!(exp["expiry"], action_name(a.expiry), "{id}");
                assert_eq!(exp["revocation"], action_name(a.revocation), "{id}");
            }
            agree += 1;
        }
        assert_eq!(agree, all.len());
        eprintln!("verification-level: {agree}/{} agree", all.len());
    }

    #[test]
    fn integrity_enforce_override_is_still_an_error() {
        assert!(resolve_actions("strict", &[("integrity".into(), "enforce".into())]).is_err());
        assert!(resolve_actions("skip", &[]).is_ok());
    }
}
