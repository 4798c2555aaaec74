//! Runs every runnable case of the Notation conformance corpus
//! (`testdata/conformance/cases.json`) through the `signet` binary, exactly as the corpus
//! README's "Running a case with the signet CLI" describes, and fails listing every
//! disagreement at once.
//!
//! The corpus is the repository's copy, or `SIGNET_CONFORMANCE_DIR` when set; it is never
//! skipped. `SIGNET_CONFORMANCE_FILTER=substr`
//! runs only the cases whose id contains `substr`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

fn conformance_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SIGNET_CONFORMANCE_DIR") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("cases.json").is_file(),
            "SIGNET_CONFORMANCE_DIR={} has no cases.json",
            dir.display()
        );
        return dir;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance");
    assert!(
        dir.join("cases.json").is_file(),
        "the conformance corpus is missing from the repository ({}); set SIGNET_CONFORMANCE_DIR to use another copy",
        dir.display()
    );
    dir
}

/// Deep merge per the README: objects merge, other values replace, `null` deletes the key.
fn merge(target: &mut Value, patch: &Value) {
    let (Value::Object(t), Value::Object(p)) = (&mut *target, patch) else {
        *target = patch.clone();
        return;
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else if v.is_object() && t.get(k).is_some_and(Value::is_object) {
            merge(t.get_mut(k).unwrap(), v);
        } else {
            t.insert(k.clone(), v.clone());
        }
    }
}

/// One case's working files.
struct Case<'a> {
    c: &'a Value,
    s: &'a Map<String, Value>,
    vectors: PathBuf,
    tmp: tempfile::TempDir,
}

impl Case<'_> {
    fn id(&self) -> &str {
        self.c["id"].as_str().unwrap()
    }

    /// `P(x)`: `vectors/x`, or `x` if absolute.
    fn p(&self, x: &str) -> PathBuf {
        let x = Path::new(x);
        if x.is_absolute() {
            x.to_path_buf()
        } else {
            self.vectors.join(x)
        }
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.s.get(key).and_then(Value::as_str)
    }

    fn path_str(&self, key: &str) -> String {
        self.p(self
            .str(key)
            .unwrap_or_else(|| panic!("{}: signet.{key} missing", self.id())))
            .to_string_lossy()
            .into_owned()
    }

    /// POLICY: `P(trust_policy)` with `policy_patch` merged into every statement.
    fn policy(&self) -> String {
        let src = self.p(self.str("trust_policy").expect("trust_policy"));
        let Some(patch) = self.s.get("policy_patch").filter(|p| !p.is_null()) else {
            return src.to_string_lossy().into_owned();
        };
        let mut doc: Value = serde_json::from_slice(&fs::read(&src).unwrap())
            .unwrap_or_else(|e| panic!("{}: policy {} is not JSON: {e}", self.id(), src.display()));
        for st in doc["trustPolicies"]
            .as_array_mut()
            .expect("trustPolicies array")
        {
            merge(st, patch);
        }
        let out = self.tmp.path().join("policy.json");
        fs::write(&out, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        out.to_string_lossy().into_owned()
    }

    /// STORE: a root as is, or built from `stores` (optionally Kubernetes-style).
    fn store(&self) -> String {
        let ts = self.s["trust_store"].as_object().expect("trust_store");
        if let Some(root) = ts.get("root").and_then(Value::as_str) {
            return self.p(root).to_string_lossy().into_owned();
        }
        let root = self.tmp.path().join("truststore");
        let kubernetes = ts.get("layout").and_then(Value::as_str) == Some("kubernetes");
        for (name, files) in ts["stores"].as_object().expect("trust_store.stores") {
            let (store_type, store_name) = name.split_once('/').expect("type/name");
            let dir = root.join("x509").join(store_type).join(store_name);
            let files_dir = if kubernetes {
                dir.join("..2025_06_01_00_00_00.000000001")
            } else {
                dir.clone()
            };
            fs::create_dir_all(&files_dir).unwrap();
            if kubernetes {
                symlink(
                    Path::new("..2025_06_01_00_00_00.000000001"),
                    &dir.join("..data"),
                );
            }
            for f in files.as_array().expect("store files") {
                let src = self.p(f.as_str().unwrap());
                let file_name = src.file_name().unwrap();
                fs::copy(&src, files_dir.join(file_name))
                    .unwrap_or_else(|e| panic!("{}: copy {}: {e}", self.id(), src.display()));
                if kubernetes {
                    symlink(&Path::new("..data").join(file_name), &dir.join(file_name));
                }
            }
        }
        root.to_string_lossy().into_owned()
    }

    fn at_args(&self, args: &mut Vec<String>) {
        if let Some(at) = self.c["at"].as_str() {
            args.extend(["--at".into(), at.into()]);
        }
    }

    fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let push = |a: &mut Vec<String>, k: &str, v: String| {
            a.push(k.to_owned());
            a.push(v);
        };
        match self.str("command").unwrap() {
            "envelope-verify" => {
                let envelope = match self.str("envelope") {
                    Some(e) => self.p(e).to_string_lossy().into_owned(),
                    None => {
                        let p = self.tmp.path().join("empty-envelope");
                        fs::write(&p, b"").unwrap();
                        p.to_string_lossy().into_owned()
                    }
                };
                a.extend(["envelope".into(), "verify".into()]);
                push(&mut a, "--envelope", envelope);
                push(
                    &mut a,
                    "--media-type",
                    self.str("media_type").unwrap().into(),
                );
                push(&mut a, "--subject", self.str("subject").unwrap().into());
                push(
                    &mut a,
                    "--subject-media-type",
                    self.str("subject_media_type").unwrap().into(),
                );
                push(
                    &mut a,
                    "--subject-size",
                    self.s["subject_size"].as_i64().unwrap().to_string(),
                );
                push(&mut a, "--trust-policy", self.policy());
                push(&mut a, "--trust-store", self.store());
                self.at_args(&mut a);
                push(&mut a, "--output", "json".into());
            }
            "verify-oci-layout" => {
                a.extend(["verify".into(), "--oci-layout".into()]);
                push(&mut a, "--scope", self.str("scope").unwrap().into());
                push(&mut a, "--trust-policy", self.policy());
                push(&mut a, "--trust-store", self.store());
                self.at_args(&mut a);
                push(&mut a, "--output", "json".into());
                a.push(format!(
                    "{}:{}",
                    self.path_str("layout"),
                    self.str("tag").unwrap()
                ));
            }
            "blob-verify" => {
                let ext = match self.str("signature_format").unwrap() {
                    "jws" => "jws",
                    "cose" => "cose",
                    other => panic!("{}: signature_format {other}", self.id()),
                };
                let sig = self.tmp.path().join(format!("signature.{ext}.sig"));
                match self.str("signature") {
                    Some(s) => {
                        fs::copy(self.p(s), &sig).unwrap();
                    }
                    None => fs::write(&sig, b"").unwrap(),
                }
                let blob = match self.str("blob_text") {
                    Some(text) => {
                        let p = self.tmp.path().join("blob");
                        fs::write(&p, text).unwrap();
                        p.to_string_lossy().into_owned()
                    }
                    None => self.path_str("blob"),
                };
                a.extend(["blob".into(), "verify".into()]);
                push(&mut a, "--signature", sig.to_string_lossy().into_owned());
                push(&mut a, "--trust-policy", self.policy());
                push(&mut a, "--trust-store", self.store());
                if let Some(n) = self.str("policy_name") {
                    push(&mut a, "--policy-name", n.into());
                }
                if let Some(mt) = self.str("media_type") {
                    push(&mut a, "--media-type", mt.into());
                }
                self.at_args(&mut a);
                push(&mut a, "--output", "json".into());
                a.push(blob);
            }
            "policy-check" => {
                let file = match self.str("document_input") {
                    Some(input) => {
                        let doc = self.c["inputs"]
                            .get(input)
                            .unwrap_or_else(|| panic!("{}: inputs.{input} missing", self.id()));
                        let p = self.tmp.path().join("policy-input.json");
                        fs::write(&p, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
                        p.to_string_lossy().into_owned()
                    }
                    None => self.path_str("trust_policy"),
                };
                a.extend(["policy".into(), "check".into()]);
                push(&mut a, "--trust-policy", file);
                if self.s.get("blob").and_then(Value::as_bool) == Some(true) {
                    a.push("--blob".into());
                }
            }
            "envelope-inspect" => {
                a.extend(["envelope".into(), "inspect".into()]);
                a.push(self.path_str("envelope"));
            }
            other => panic!("{}: unknown signet.command {other}", self.id()),
        }
        a
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {} -> {}: {e}", link.display(), target.display()));
}

#[cfg(not(unix))]
fn symlink(_target: &Path, _link: &Path) {
    panic!("the Kubernetes trust-store layout needs symlinks (unix only)");
}

/// What the binary did.
struct Run {
    exit: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn usage_error(&self) -> bool {
        self.exit == 2
            && (self.stderr.contains("Usage:")
                || self.stderr.contains("unexpected argument")
                || self.stderr.contains("unrecognized subcommand"))
    }

    fn first_result(&self) -> Result<&'static str, (bool, Option<String>)> {
        let doc: Value = match serde_json::from_str(&self.stdout) {
            Ok(v) => v,
            Err(_) => return Ok("stdout is not a JSON document"),
        };
        let Some(r0) = doc.get("results").and_then(|r| r.get(0)) else {
            return Ok("JSON has no results[0]");
        };
        let Some(verified) = r0.get("verified").and_then(Value::as_bool) else {
            return Ok("results[0].verified is not a boolean");
        };
        let code = r0
            .get("error")
            .and_then(|e| e.get("code"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Err((verified, code))
    }
}

/// Whether `run` satisfies one verification outcome `{verified, code, exit}`.
fn verification_agrees(expected: &Value, run: &Run) -> Result<(), String> {
    let exits: Vec<i64> = expected["exit"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    if !exits.contains(&i64::from(run.exit)) {
        return Err(format!("exit {} not in {exits:?}", run.exit));
    }
    match run.exit {
        0 => match run.first_result() {
            Ok(why) => Err(format!("exit 0 but {why}")),
            Err((true, _)) => Ok(()),
            Err((false, _)) => Err("exit 0 but results[0].verified is false".into()),
        },
        1 => match run.first_result() {
            Ok(why) => Err(format!("exit 1 but {why}")),
            Err((true, _)) => Err("exit 1 but results[0].verified is true".into()),
            Err((false, code)) => match expected["code"].as_array() {
                None => Ok(()),
                Some(codes) => {
                    if codes
                        .iter()
                        .any(|c| c.as_str().is_some() && c.as_str() == code.as_deref())
                    {
                        Ok(())
                    } else {
                        Err(format!(
                            "error.code {} not in {}",
                            code.as_deref().unwrap_or("(none)"),
                            Value::Array(codes.clone())
                        ))
                    }
                }
            },
        },
        2 if run.usage_error() => Err("exit 2 from a usage error (unknown flag/subcommand)".into()),
        _ => Ok(()),
    }
}

fn agrees(kind_command: &str, expected: &Value, run: &Run) -> Result<(), String> {
    match kind_command {
        "policy-check" => {
            let valid = expected["valid"].as_bool().expect("expected_signet.valid");
            let want = if valid { 0 } else { 2 };
            if run.usage_error() {
                Err("usage error".into())
            } else if run.exit == want {
                Ok(())
            } else {
                Err(format!("exit {} (want {want})", run.exit))
            }
        }
        "envelope-inspect" => {
            let parses = expected["parses"]
                .as_bool()
                .expect("expected_signet.parses");
            let ok = if parses {
                run.exit == 0
            } else {
                (run.exit == 1 || run.exit == 2) && !run.usage_error()
            };
            if ok {
                Ok(())
            } else {
                Err(format!("exit {} (parses: {parses})", run.exit))
            }
        }
        _ => {
            let first = verification_agrees(expected, run);
            if first.is_ok() {
                return first;
            }
            for alt in expected["alternatives"].as_array().into_iter().flatten() {
                if verification_agrees(alt, run).is_ok() {
                    return Ok(());
                }
            }
            first
        }
    }
}

fn excerpt(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[test]
fn conformance_cases() {
    let dir = conformance_dir();
    let vectors = dir.join("vectors");
    let doc: Value = serde_json::from_slice(&fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let unit_only: Vec<&str> = doc["unit_only_kinds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let filter = std::env::var("SIGNET_CONFORMANCE_FILTER").ok();
    let bin = env!("CARGO_BIN_EXE_signet");

    let mut ran = 0usize;
    let mut disagreements = Vec::new();
    for c in doc["cases"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let kind = c["kind"].as_str().unwrap();
        let Some(s) = c["signet"].as_object() else {
            continue;
        };
        if unit_only.contains(&kind) || s.contains_key("unit_only") {
            continue;
        }
        if filter.as_deref().is_some_and(|f| !id.contains(f)) {
            continue;
        }
        let case = Case {
            c,
            s,
            vectors: vectors.clone(),
            tmp: tempfile::tempdir().unwrap(),
        };
        let args = case.args();
        let out = Command::new(bin)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        let run = Run {
            exit: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        ran += 1;
        let command = s["command"].as_str().unwrap();
        if let Err(why) = agrees(command, &c["expected_signet"], &run) {
            let got_code = run
                .first_result()
                .err()
                .map(|(v, code)| format!(" (verified {v}, code {})", code.unwrap_or_default()))
                .unwrap_or_default();
            let mut d = String::new();
            writeln!(d, "- {id} [{kind}]: {why}").unwrap();
            writeln!(d, "    expected: {}", c["expected_signet"]).unwrap();
            writeln!(d, "    got:      exit {}{got_code}", run.exit).unwrap();
            writeln!(d, "    command:  signet {}", args.join(" ")).unwrap();
            if !run.stderr.trim().is_empty() {
                writeln!(d, "    stderr:   {}", excerpt(&run.stderr, 400)).unwrap();
            }
            disagreements.push(d);
        }
    }

    assert!(ran > 0, "no conformance case ran (filter {filter:?})");
    if !disagreements.is_empty() {
        eprintln!(
            "\n{} of {ran} conformance cases disagree:\n",
            disagreements.len()
        );
        for d in &disagreements {
            eprint!("{d}");
        }
        panic!(
            "{} of {ran} conformance cases disagree (see the list above)",
            disagreements.len()
        );
    }
    eprintln!("all {ran} conformance cases agree");
}

#[test]
fn merge_follows_the_readme() {
    let mut st = serde_json::json!({
        "signatureVerification": {"level": "strict", "override": {"expiry": "log"}},
        "trustStores": ["ca:x"],
        "name": "n"
    });
    merge(
        &mut st,
        &serde_json::json!({"signatureVerification": {"level": "audit"}, "trustStores": null, "name": "m"}),
    );
    assert_eq!(
        st,
        serde_json::json!({
            "signatureVerification": {"level": "audit", "override": {"expiry": "log"}},
            "name": "m"
        })
    );
}
