//! The workloads in a Kubernetes `List` (as `kubectl get pods,deployments,... -A -o json`
//! prints it) and the images each runs: the input of `signet audit`.
//!
//! - Workload kinds, and where their pod spec is (as the admission webhook reads them):
//!   `Pod` (`spec`); `Deployment`, `ReplicaSet`, `StatefulSet`, `DaemonSet` (apps), `Job`
//!   (batch), `ReplicationController` (`spec.template.spec`); `CronJob` (batch,
//!   `spec.jobTemplate.spec.template.spec`). Other kinds are counted and ignored.
//! - Images: `initContainers`, `containers`, `ephemeralContainers`, as written.
//! - An object whose controller (its `ownerReferences` entry with `controller: true`, else
//!   its first one) is in the input too is reported under that owner, followed up the chain:
//!   a Pod of a ReplicaSet of a Deployment is reported under the Deployment, a Pod of a Job
//!   of a CronJob under the CronJob. Owners are matched by namespace, kind and name, and by
//!   `uid` when both sides carry one (a recreated owner is another object).
//!
//! The document is parsed whole with `serde_json` (whose nesting limit of 128 bounds the
//! recursion); the caller bounds its size ([`MAX_INPUT_BYTES`]).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// Largest input read (256 MiB: a `kubectl get -A -o json` of a large cluster).
pub const MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;

/// Longest owner chain followed (Pod → ReplicaSet → Deployment is 2).
const MAX_OWNER_DEPTH: usize = 8;

/// One workload and the images of every object reported under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    /// In order of first appearance, without duplicates.
    pub images: Vec<String>,
}

/// What the input holds.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Sorted by namespace, kind, name.
    pub workloads: Vec<Workload>,
    /// Objects of other kinds (`Kind` or `Kind.group` → count).
    pub ignored: BTreeMap<String, usize>,
}

/// Why the input is not something `audit` can read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("not a Kubernetes List: {0}; expected the JSON of `kubectl get pods,deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs -A -o json`")]
    NotAList(String),
    #[error("{at}: {problem}")]
    BadObject { at: String, problem: String },
}

/// Reads the workloads of a `List` (any kind ending in `List` with `items`) or of a single
/// workload object.
pub fn parse(bytes: &[u8]) -> Result<Inventory, InputError> {
    let document: Value = serde_json::from_slice(bytes).map_err(InputError::NotJson)?;
    let Some(top) = document.as_object() else {
        return Err(InputError::NotAList(format!(
            "the document is a JSON {}, not an object",
            json_type(&document)
        )));
    };
    let kind = top.get("kind").and_then(Value::as_str).unwrap_or_default();
    let items: Vec<(String, &Value)> = if kind.ends_with("List") {
        let Some(items) = top.get("items").and_then(Value::as_array) else {
            return Err(InputError::NotAList(format!(
                "kind {kind} without an \"items\" array"
            )));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("items[{i}]"), v))
            .collect()
    } else if workload_kind(api_group(top.get("apiVersion")), kind).is_some() {
        vec![("the object".to_owned(), &document)]
    } else if kind.is_empty() {
        return Err(InputError::NotAList("no \"kind\" in the document".into()));
    } else {
        return Err(InputError::NotAList(format!(
            "kind {kind:?} is neither a List nor a workload"
        )));
    };

    let mut inventory = Inventory::default();
    let mut objects: Vec<Object> = Vec::new();
    for (at, item) in items {
        let bad = |problem: String| InputError::BadObject {
            at: at.clone(),
            problem,
        };
        let Some(obj) = item.as_object() else {
            return Err(bad(format!("a JSON {}, not an object", json_type(item))));
        };
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let group = api_group(obj.get("apiVersion"));
        let Some(spec_path) = workload_kind(group, kind) else {
            let name = match (kind, group) {
                ("", _) => "(no kind)".to_owned(),
                (k, None | Some("")) => k.to_owned(),
                (k, Some(g)) => format!("{k}.{g}"),
            };
            *inventory.ignored.entry(name).or_default() += 1;
            continue;
        };
        let metadata = obj.get("metadata");
        let text = |field: &str| {
            metadata
                .and_then(|m| m.get(field))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let name = text("name");
        if name.is_empty() {
            return Err(bad(format!("{kind} without metadata.name")));
        }
        let mut namespace = text("namespace");
        if namespace.is_empty() {
            namespace = "default".into();
        }
        let mut spec = item;
        for step in spec_path {
            spec = spec.get(step).ok_or_else(|| {
                bad(format!(
                    "{kind} {namespace}/{name} has no .{}",
                    spec_path.join(".")
                ))
            })?;
        }
        objects.push(Object {
            workload: Workload {
                namespace,
                kind: kind.to_owned(),
                name,
                images: images(spec),
            },
            uid: text("uid"),
            owner: controller(metadata),
        });
    }

    let index: HashMap<(&str, &str, &str), usize> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let w = &o.workload;
            ((w.namespace.as_str(), w.kind.as_str(), w.name.as_str()), i)
        })
        .collect();
    let owner_of = |i: usize| -> Option<usize> {
        let o = &objects[i];
        let r = o.owner.as_ref()?;
        let j = *index.get(&(
            o.workload.namespace.as_str(),
            r.kind.as_str(),
            r.name.as_str(),
        ))?;
        let uid = &objects[j].uid;
        (r.uid.is_empty() || uid.is_empty() || &r.uid == uid).then_some(j)
    };
    let mut roots: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..objects.len() {
        let mut root = i;
        for _ in 0..MAX_OWNER_DEPTH {
            match owner_of(root) {
                Some(j) if j != i => root = j,
                _ => break,
            }
        }
        roots.entry(root).or_default().push(i);
    }
    let mut workloads: Vec<Workload> = roots
        .into_iter()
        .map(|(root, members)| {
            let mut w = objects[root].workload.clone();
            for m in members {
                for image in &objects[m].workload.images {
                    if !w.images.contains(image) {
                        w.images.push(image.clone());
                    }
                }
            }
            w
        })
        .collect();
    workloads
        .sort_by(|a, b| (&a.namespace, &a.kind, &a.name).cmp(&(&b.namespace, &b.kind, &b.name)));
    inventory.workloads = workloads;
    Ok(inventory)
}

/// A workload object before owners are folded in.
struct Object {
    workload: Workload,
    uid: String,
    owner: Option<OwnerRef>,
}

struct OwnerRef {
    kind: String,
    name: String,
    uid: String,
}

/// The controlling owner: the `ownerReferences` entry with `controller: true`, else the first.
fn controller(metadata: Option<&Value>) -> Option<OwnerRef> {
    let refs = metadata?.get("ownerReferences")?.as_array()?;
    let r = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| refs.first())?;
    let field = |f: &str| {
        r.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Some(OwnerRef {
        kind: field("kind"),
        name: field("name"),
        uid: field("uid"),
    })
}

/// The API group of `apiVersion` (`apps/v1` → `apps`, `v1` → ``); `None` when absent.
fn api_group(api_version: Option<&Value>) -> Option<&str> {
    let v = api_version?.as_str()?;
    Some(v.rsplit_once('/').map(|(g, _)| g).unwrap_or(""))
}

/// Where the pod spec of a workload kind is; `None` for other kinds. Without `apiVersion`
/// the kind alone decides.
fn workload_kind(group: Option<&str>, kind: &str) -> Option<&'static [&'static str]> {
    let (expected_group, path): (&str, &'static [&'static str]) = match kind {
        "Pod" => ("", &["spec"]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            ("apps", &["spec", "template", "spec"])
        }
        "Job" => ("batch", &["spec", "template", "spec"]),
        "ReplicationController" => ("", &["spec", "template", "spec"]),
        "CronJob" => (
            "batch",
            &["spec", "jobTemplate", "spec", "template", "spec"],
        ),
        _ => return None,
    };
    group.is_none_or(|g| g == expected_group).then_some(path)
}

/// Every image of a pod spec: initContainers, containers, ephemeralContainers, in order,
/// without duplicates (containers without an image are skipped).
fn images(spec: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(image) = c.get("image").and_then(Value::as_str) {
                if !out.iter().any(|i| i == image) {
                    out.push(image.to_owned());
                }
            }
        }
    }
    out
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_spec(images: &[&str]) -> Value {
        json!({"containers": images.iter().map(|i| json!({"name": "c", "image": i})).collect::<Vec<_>>()})
    }

    #[test]
    fn folds_pods_into_their_owners() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-abc-1", "namespace": "shop", "uid": "p1",
              "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc", "uid": "rs1", "controller": true}]},
             "spec": pod_spec(&["a", "sidecar"])},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-abc", "namespace": "shop", "uid": "rs1",
              "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": "d1", "controller": true}]},
             "spec": {"template": {"spec": pod_spec(&["a"])}}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "uid": "d1"},
             "spec": {"template": {"spec": pod_spec(&["a"])}}},
            // Owner not in the input: reported under the Pod.
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job-x", "namespace": "shop",
              "ownerReferences": [{"kind": "Job", "name": "gone", "controller": true}]},
             "spec": {"initContainers": [{"image": "init"}], "containers": [{"image": "b"}, {"name": "no image"}]}},
            // Same name, other uid: another object.
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stale", "namespace": "shop",
              "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": "d0", "controller": true}]},
             "spec": pod_spec(&["c"])},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}},
            {"apiVersion": "extensions/v1beta1", "kind": "Deployment", "metadata": {"name": "old"}},
        ]});
        let inv = parse(list.to_string().as_bytes()).unwrap();
        let names: Vec<_> = inv
            .workloads
            .iter()
            .map(|w| (w.kind.as_str(), w.name.as_str(), w.images.join(",")))
            .collect();
        assert_eq!(
            names,
            [
                ("Deployment", "web", "a,sidecar".to_owned()),
                ("Pod", "job-x", "init,b".to_owned()),
                ("Pod", "stale", "c".to_owned()),
            ]
        );
        assert_eq!(inv.ignored["Service"], 1);
        assert_eq!(inv.ignored["Deployment.extensions"], 1);
    }

    #[test]
    fn cronjobs_and_single_objects() {
        let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec(&["x"])}}}}});
        let inv = parse(cron.to_string().as_bytes()).unwrap();
        assert_eq!(inv.workloads.len(), 1);
        assert_eq!(inv.workloads[0].namespace, "default");
        assert_eq!(inv.workloads[0].images, ["x"]);
    }

    #[test]
    fn owner_cycles_end() {
        let list = json!({"kind": "List", "items": [
            {"kind": "ReplicaSet", "metadata": {"name": "a", "ownerReferences": [{"kind": "ReplicaSet", "name": "b"}]},
             "spec": {"template": {"spec": pod_spec(&["1"])}}},
            {"kind": "ReplicaSet", "metadata": {"name": "b", "ownerReferences": [{"kind": "ReplicaSet", "name": "a"}]},
             "spec": {"template": {"spec": pod_spec(&["2"])}}},
        ]});
        let inv = parse(list.to_string().as_bytes()).unwrap();
        let images: usize = inv.workloads.iter().map(|w| w.images.len()).sum();
        assert!(images >= 2);
    }

    #[test]
    fn malformed_inputs_say_what_is_wrong() {
        let err = |s: &str| parse(s.as_bytes()).unwrap_err().to_string();
        assert!(err("{").starts_with("not JSON"));
        assert!(err("[]").contains("not a Kubernetes List: the document is a JSON array"));
        assert!(err(r#"{"kind": "Secret"}"#).contains("\"Secret\" is neither"));
        assert!(err(r#"{"items": []}"#).contains("no \"kind\""));
        assert!(err(r#"{"kind": "List"}"#).contains("without an \"items\" array"));
        assert!(err(r#"{"kind": "List", "items": [1]}"#).contains("items[0]: a JSON number"));
        assert!(
            err(r#"{"kind": "List", "items": [{"kind": "Pod", "metadata": {}}]}"#)
                .contains("items[0]: Pod without metadata.name")
        );
        assert!(
            err(r#"{"kind": "List", "items": [{"kind": "Deployment", "metadata": {"name": "d"}, "spec": {}}]}"#)
                .contains("Deployment default/d has no .spec.template.spec")
        );
        let deep = "[".repeat(100_000);
        assert!(err(&deep).starts_with("not JSON"));
    }
}
