//! JWS JSON envelopes (`application/jose+json`).
