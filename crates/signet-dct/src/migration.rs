//! The trust-policy-level choice between Notation and DCT during a migration window.

use time::OffsetDateTime;

/// The mechanism that verified an image (the `format` of a signature entry in answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// A Notation signature verified.
    Notation,
    /// Docker Content Trust verified.
    Dct,
}

impl Mechanism {
    /// The contract's `format` value: `"notation"` or `"dct"`.
    pub fn format(self) -> &'static str {
        match self {
            Mechanism::Notation => "notation",
            Mechanism::Dct => "dct",
        }
    }
}

/// Whether an image is admitted, given what each mechanism concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Admitted; says by which mechanism.
    Admitted(Mechanism),
    /// DCT verified, but the migration window ended at this instant (RFC 3339).
    WindowClosed { ended: OffsetDateTime },
    /// Neither mechanism verified (or DCT verified with no window configured).
    NotVerified,
}

/// Notation always admits; DCT admits only while `now` is before `migration_until`.
/// Notation is preferred when both verified, so answers name it as soon as it is in place.
pub fn admit(
    notation_verified: bool,
    dct_verified: bool,
    migration_until: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Admission {
    if notation_verified {
        return Admission::Admitted(Mechanism::Notation);
    }
    match (dct_verified, migration_until) {
        (true, Some(until)) if now < until => Admission::Admitted(Mechanism::Dct),
        (true, Some(until)) => Admission::WindowClosed { ended: until },
        _ => Admission::NotVerified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn window_admits_dct_until_its_end_only() {
        let until = Some(datetime!(2028-03-31 00:00 UTC));
        let before = datetime!(2028-03-30 23:59:59 UTC);
        let after = datetime!(2028-03-31 00:00 UTC);
        assert_eq!(
            admit(false, true, until, before),
            Admission::Admitted(Mechanism::Dct)
        );
        assert_eq!(
            admit(false, true, until, after),
            Admission::WindowClosed {
                ended: datetime!(2028-03-31 00:00 UTC)
            }
        );
        assert_eq!(
            admit(true, true, until, after),
            Admission::Admitted(Mechanism::Notation)
        );
        assert_eq!(admit(false, true, None, before), Admission::NotVerified);
        assert_eq!(admit(false, false, until, before), Admission::NotVerified);
    }
}
