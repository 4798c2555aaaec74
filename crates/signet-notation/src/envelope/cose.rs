//! COSE_Sign1 envelopes (`application/cose`).
