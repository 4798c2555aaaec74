//! The JSON spoken on the wire: Gatekeeper external data (`ProviderRequest` /
//! `ProviderResponse`, `externaldata.gatekeeper.sh/v1beta1`) and Kubernetes
//! `AdmissionReview` (`admission.k8s.io/v1`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Gatekeeper's external-data API version.
pub const PROVIDER_API_VERSION: &str = "externaldata.gatekeeper.sh/v1beta1";
/// Kubernetes' admission API version.
pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";

/// `ProviderRequest`, read leniently (every field optional) so that each defect gets its
/// own precise `systemError` instead of a generic parse error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProviderRequest {
    pub(crate) api_version: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) request: Option<ProviderRequestBody>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ProviderRequestBody {
    pub(crate) keys: Option<Vec<Value>>,
}

/// `ProviderResponse`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderResponse {
    pub api_version: String,
    pub kind: String,
    pub response: ProviderResponseBody,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderResponseBody {
    pub idempotent: bool,
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub system_error: String,
}

/// One answer per key: `value` or `error`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Item {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl ProviderResponse {
    pub(crate) fn new(idempotent: bool, items: Vec<Item>, system_error: String) -> Self {
        ProviderResponse {
            api_version: PROVIDER_API_VERSION.into(),
            kind: "ProviderResponse".into(),
            response: ProviderResponseBody {
                idempotent,
                items,
                system_error,
            },
        }
    }

    /// A response with no items and a `systemError`.
    pub(crate) fn system_error(idempotent: bool, message: impl Into<String>) -> Self {
        Self::new(idempotent, Vec::new(), message.into())
    }
}

/// The `error` object of a verify value.
#[derive(Debug, Serialize)]
pub(crate) struct ValueError<'a> {
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
}

/// A check that failed but whose action is `log`.
#[derive(Debug, Serialize)]
pub(crate) struct LoggedCheck<'a> {
    /// Named as notation names it: `integrity`, `authenticity`, `authenticTimestamp`,
    /// `expiry`, `revocation`.
    pub(crate) check: signet_notation::verifier::Check,
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
}

/// The verify item value (CONTRACT.md).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerifyValue<'a> {
    pub(crate) verified: bool,
    pub(crate) is_success: bool,
    pub(crate) digest: Option<&'a str>,
    pub(crate) error: Option<ValueError<'a>>,
    /// The trust policy statement applied (`null` when none was selected).
    pub(crate) policy: Option<&'a str>,
    /// Its level: `strict`, `permissive`, `audit` or `skip` (`null` when none).
    pub(crate) level: Option<&'a str>,
    /// Checks of the deciding signature that failed but are only logged at this level
    /// (the Rego template reads `level` and `logged`: keep these names).
    pub(crate) logged: Vec<LoggedCheck<'a>>,
    pub(crate) signatures: &'a [signet_engine::SignatureSummary],
    #[serde(rename = "traceID")]
    pub(crate) trace_id: &'a str,
    pub(crate) timestamp: &'a str,
}

/// `AdmissionReview` as received; `request.object` is kept as raw JSON.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdmissionReviewIn {
    pub(crate) api_version: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) request: Option<AdmissionRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdmissionRequest {
    pub(crate) uid: Option<String>,
    pub(crate) kind: Option<GroupVersionKind>,
    pub(crate) namespace: Option<String>,
    pub(crate) operation: Option<String>,
    pub(crate) object: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GroupVersionKind {
    #[serde(default)]
    pub(crate) group: String,
    #[serde(default)]
    pub(crate) kind: String,
}

/// `AdmissionReview` answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReviewOut {
    pub api_version: String,
    pub kind: String,
    pub response: AdmissionResponse,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AdmissionStatus>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AdmissionStatus {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

impl AdmissionReviewOut {
    pub(crate) fn allow(uid: String) -> Self {
        Self::answer(uid, true, None)
    }

    pub(crate) fn deny(uid: String, code: u16, message: String) -> Self {
        let reason = if code == 403 {
            "Forbidden"
        } else {
            "BadRequest"
        };
        Self::answer(
            uid,
            false,
            Some(AdmissionStatus {
                code,
                reason: reason.into(),
                message,
            }),
        )
    }

    fn answer(uid: String, allowed: bool, status: Option<AdmissionStatus>) -> Self {
        AdmissionReviewOut {
            api_version: ADMISSION_API_VERSION.into(),
            kind: "AdmissionReview".into(),
            response: AdmissionResponse {
                uid,
                allowed,
                status,
            },
        }
    }
}
