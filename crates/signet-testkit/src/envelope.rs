//! Notation envelopes produced by a [`TestSigner`].

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use coset::cbor::Value;
use coset::{HeaderBuilder, TaggedCborSerializable as _};
use serde_json::{json, Map};
use time::OffsetDateTime;

use crate::pki::TestSigner;
use crate::PAYLOAD_MEDIA_TYPE;

/// The envelope format to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeKind {
    Cose,
    Jws,
}

impl EnvelopeKind {
    /// The envelope's media type.
    pub fn media_type(self) -> &'static str {
        match self {
            EnvelopeKind::Cose => "application/cose",
            EnvelopeKind::Jws => "application/jose+json",
        }
    }
}

/// The Notation signing scheme, which decides the signed time attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningScheme {
    /// `notary.x509`: `signingTime`, a claim of the signer.
    X509,
    /// `notary.x509.signingAuthority`: `authenticSigningTime`, vouched for by the signing
    /// authority (critical).
    SigningAuthority,
}

impl SigningScheme {
    fn name(self) -> &'static str {
        match self {
            SigningScheme::X509 => "notary.x509",
            SigningScheme::SigningAuthority => "notary.x509.signingAuthority",
        }
    }

    fn time_attribute(self) -> &'static str {
        match self {
            SigningScheme::X509 => "io.cncf.notary.signingTime",
            SigningScheme::SigningAuthority => "io.cncf.notary.authenticSigningTime",
        }
    }
}

/// What to sign and how.
#[derive(Debug, Clone)]
pub struct SignOptions {
    pub kind: EnvelopeKind,
    /// The signed descriptor's media type, digest and size.
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    /// `targetArtifact.annotations` (user metadata).
    pub annotations: Vec<(String, String)>,
    /// `signingTime` or `authenticSigningTime`, after `signing_scheme`.
    pub signing_time: OffsetDateTime,
    pub signing_scheme: SigningScheme,
    pub expiry: Option<OffsetDateTime>,
    /// Extra protected attributes: (name, string value, critical).
    pub extra_attributes: Vec<(String, String, bool)>,
}

impl SignOptions {
    /// Signs `digest` (an OCI manifest of `media_type` and `size`) at 2025-01-01.
    pub fn new(kind: EnvelopeKind, media_type: &str, digest: &str, size: i64) -> Self {
        SignOptions {
            kind,
            media_type: media_type.to_owned(),
            digest: digest.to_owned(),
            size,
            annotations: Vec::new(),
            signing_time: rcgen::date_time_ymd(2025, 1, 1),
            signing_scheme: SigningScheme::X509,
            expiry: None,
            extra_attributes: Vec::new(),
        }
    }

    fn payload(&self) -> Vec<u8> {
        let mut descriptor = json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        });
        if !self.annotations.is_empty() {
            let annotations: Map<String, serde_json::Value> = self
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            descriptor["annotations"] = serde_json::Value::Object(annotations);
        }
        serde_json::to_vec(&json!({ "targetArtifact": descriptor })).unwrap()
    }
}

impl TestSigner {
    /// Produces a Notation signature envelope.
    pub fn sign(&self, options: &SignOptions) -> Vec<u8> {
        match options.kind {
            EnvelopeKind::Cose => self.sign_cose(options),
            EnvelopeKind::Jws => self.sign_jws(options),
        }
    }

    fn sign_cose(&self, options: &SignOptions) -> Vec<u8> {
        let text = |s: &str| coset::RegisteredLabelWithPrivate::Text(s.to_owned());
        let mut protected = HeaderBuilder::new()
            .algorithm(match self.kind.cose_alg() {
                -37 => coset::iana::Algorithm::PS256,
                -38 => coset::iana::Algorithm::PS384,
                -39 => coset::iana::Algorithm::PS512,
                -7 => coset::iana::Algorithm::ES256,
                -35 => coset::iana::Algorithm::ES384,
                _ => coset::iana::Algorithm::ES512,
            })
            .content_type(PAYLOAD_MEDIA_TYPE.to_owned())
            .text_value(
                "io.cncf.notary.signingScheme".into(),
                Value::Text(options.signing_scheme.name().into()),
            )
            .text_value(
                options.signing_scheme.time_attribute().into(),
                Value::Tag(
                    1,
                    Box::new(Value::Integer(options.signing_time.unix_timestamp().into())),
                ),
            );
        let mut crit = vec![text("io.cncf.notary.signingScheme")];
        if options.signing_scheme == SigningScheme::SigningAuthority {
            crit.push(text(options.signing_scheme.time_attribute()));
        }
        if let Some(expiry) = options.expiry {
            protected = protected.text_value(
                "io.cncf.notary.expiry".into(),
                Value::Tag(1, Box::new(Value::Integer(expiry.unix_timestamp().into()))),
            );
            crit.push(text("io.cncf.notary.expiry"));
        }
        for (name, value, critical) in &options.extra_attributes {
            protected = protected.text_value(name.clone(), Value::Text(value.clone()));
            if *critical {
                crit.push(text(name));
            }
        }
        let mut protected = protected.build();
        protected.crit = crit;
        let chain = Value::Array(self.chain.iter().map(|c| Value::Bytes(c.clone())).collect());
        let unprotected = HeaderBuilder::new()
            .value(33, chain)
            .text_value(
                "io.cncf.notary.signingAgent".into(),
                Value::Text("signet-testkit/0.1".into()),
            )
            .build();
        let sign1 = coset::CoseSign1Builder::new()
            .protected(protected)
            .unprotected(unprotected)
            .payload(options.payload())
            .create_signature(b"", |tbs| self.key.sign(tbs))
            .build();
        sign1.to_tagged_vec().unwrap()
    }

    fn sign_jws(&self, options: &SignOptions) -> Vec<u8> {
        let rfc3339 = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let mut protected = Map::new();
        protected.insert("alg".into(), json!(self.kind.jws_alg()));
        protected.insert("cty".into(), json!(PAYLOAD_MEDIA_TYPE));
        protected.insert(
            "io.cncf.notary.signingScheme".into(),
            json!(options.signing_scheme.name()),
        );
        protected.insert(
            options.signing_scheme.time_attribute().into(),
            json!(rfc3339(options.signing_time)),
        );
        let mut crit = vec![json!("io.cncf.notary.signingScheme")];
        if options.signing_scheme == SigningScheme::SigningAuthority {
            crit.push(json!(options.signing_scheme.time_attribute()));
        }
        if let Some(expiry) = options.expiry {
            protected.insert("io.cncf.notary.expiry".into(), json!(rfc3339(expiry)));
            crit.push(json!("io.cncf.notary.expiry"));
        }
        for (name, value, critical) in &options.extra_attributes {
            protected.insert(name.clone(), json!(value));
            if *critical {
                crit.push(json!(name));
            }
        }
        protected.insert("crit".into(), serde_json::Value::Array(crit));
        let protected_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&protected).unwrap());
        let payload_b64 = URL_SAFE_NO_PAD.encode(options.payload());
        let signing_input = format!("{protected_b64}.{payload_b64}");
        let signature = self.key.sign(signing_input.as_bytes());
        let x5c: Vec<String> = self.chain.iter().map(|c| STANDARD.encode(c)).collect();
        serde_json::to_vec(&json!({
            "payload": payload_b64,
            "protected": protected_b64,
            "header": {
                "x5c": x5c,
                "io.cncf.notary.signingAgent": "signet-testkit/0.1",
            },
            "signature": URL_SAFE_NO_PAD.encode(signature),
        }))
        .unwrap()
    }
}
