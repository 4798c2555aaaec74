//! From (envelope, artifact descriptor, trust policy statement, trust stores, clock) to a verdict.
