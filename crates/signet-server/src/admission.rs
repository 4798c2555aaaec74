//! Kubernetes admission: which images a workload runs, and which are excluded.

use serde_json::Value;

/// What the webhook exempts from verification.
#[derive(Debug, Clone, Default)]
pub struct AdmissionSettings {
    /// Namespaces whose objects are admitted without verification (exact names or globs).
    pub exclude_namespaces: Vec<String>,
    /// Images admitted without verification: globs over the reference as written in the
    /// pod spec, `*` matching any run of characters (including `/`), `?` one character.
    pub exclude_images: Vec<String>,
}

impl AdmissionSettings {
    pub(crate) fn namespace_excluded(&self, ns: &str) -> bool {
        self.exclude_namespaces.iter().any(|p| glob_match(p, ns))
    }

    pub(crate) fn image_excluded(&self, image: &str) -> bool {
        self.exclude_images.iter().any(|p| glob_match(p, image))
    }
}

/// `*` (any run) and `?` (one character) globbing over the whole text.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The workload kinds understood, and where their pod spec is.
pub(crate) fn pod_spec<'a>(
    group: &str,
    kind: &str,
    object: &'a Value,
) -> Result<&'a Value, String> {
    let path: &[&str] = match (group, kind) {
        ("", "Pod") => &["spec"],
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => &["spec", "template", "spec"],
        ("batch", "CronJob") => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => {
            let gk = if group.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind}.{group}")
            };
            return Err(format!(
                "kind {gk} is not handled by the signet webhook (it only admits Pods and the \
                 pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, \
                 CronJobs and ReplicationControllers); fix the webhook's rules"
            ));
        }
    };
    let mut v = object;
    for p in path {
        v = v
            .get(p)
            .ok_or_else(|| format!("{kind} has no .{}", path.join(".")))?;
    }
    Ok(v)
}

/// Every image of a pod spec: containers, initContainers, ephemeralContainers, in order,
/// without duplicates.
pub(crate) fn images(spec: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for field in ["initContainers", "containers", "ephemeralContainers"] {
        if let Some(list) = spec.get(field).and_then(Value::as_array) {
            for c in list {
                if let Some(image) = c.get("image").and_then(Value::as_str) {
                    if !out.iter().any(|i| i == image) {
                        out.push(image.to_owned());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("registry.k8s.io/*", "registry.k8s.io/pause:3.9"));
        assert!(glob_match("*", ""));
        assert!(glob_match("kube-*", "kube-system"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*/app:*", "reg.io/team/app:v1"));
        assert!(!glob_match("docker.io/*", "ghcr.io/x"));
        assert!(!glob_match("kube-system", "kube-system2"));
    }
}
