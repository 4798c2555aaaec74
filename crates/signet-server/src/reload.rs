//! Reloading files mounted from Kubernetes Secrets and ConfigMaps.
//!
//! Kubernetes updates such a mount by writing a new timestamped directory and renaming a
//! `..data` symlink onto it: the file path never sees a write, so we **watch the directory**
//! (inotify via `notify`), debounce, and re-read. Every reloadable compares a fingerprint of
//! the bytes it depends on, builds the new value aside, validates it and swaps it in; a bad
//! new file keeps the old value and is logged. A slow poll backs the watcher up (missed
//! events, directories that appear later).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// A digest of the bytes (and names) of a set of files and directories.
pub type Fingerprint = [u8; 32];

/// Something rebuilt when the files under its directories change.
#[derive(Clone)]
pub struct Reloadable {
    /// Its name in logs and metrics (`tls`, `trust`).
    pub name: &'static str,
    /// Directories to watch, and whether recursively.
    pub watch: Vec<(PathBuf, bool)>,
    /// Rebuilds when the bytes changed: `Ok(true)` applied, `Ok(false)` unchanged,
    /// `Err(why)` kept the old value.
    pub reload: Arc<dyn Fn() -> Result<bool, String> + Send + Sync>,
}

impl std::fmt::Debug for Reloadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloadable")
            .field("name", &self.name)
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

/// Hashes the named files, or every file under the named directories (recursively when
/// asked), symlinks followed, in a stable order. Unreadable entries hash as their error.
pub fn fingerprint(paths: &[(PathBuf, bool)]) -> Fingerprint {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for (path, recursive) in paths {
        walk(&mut ctx, path, *recursive, 0);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn walk(ctx: &mut aws_lc_rs::digest::Context, path: &Path, recursive: bool, depth: usize) {
    ctx.update(path.as_os_str().as_encoded_bytes());
    ctx.update(b"\0");
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            if depth > 0 && !recursive || depth > 8 {
                return;
            }
            let mut names: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) => {
                    ctx.update(e.to_string().as_bytes());
                    return;
                }
            };
            names.sort();
            for n in names.iter().take(10_000) {
                walk(ctx, n, recursive, depth + 1);
            }
        }
        Ok(_) => match std::fs::read(path) {
            Ok(bytes) => {
                ctx.update(&(bytes.len() as u64).to_be_bytes());
                ctx.update(&bytes);
            }
            Err(e) => ctx.update(e.to_string().as_bytes()),
        },
        Err(e) => ctx.update(e.to_string().as_bytes()),
    }
}

/// Settings of the reload loop.
#[derive(Debug, Clone)]
pub struct ReloadSettings {
    /// Quiet time after the last event before re-reading (default 500 ms).
    pub debounce: Duration,
    /// Re-check every this often even without events (default 30 s).
    pub poll_interval: Duration,
}

impl Default for ReloadSettings {
    fn default() -> Self {
        ReloadSettings {
            debounce: Duration::from_millis(500),
            poll_interval: Duration::from_secs(30),
        }
    }
}

/// Runs until the returned handle is dropped/aborted: watches every directory of every
/// reloadable and reloads on change.
pub(crate) fn spawn(
    reloadables: Vec<Reloadable>,
    settings: ReloadSettings,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut dirs: BTreeSet<(PathBuf, bool)> = BTreeSet::new();
    for r in &reloadables {
        dirs.extend(r.watch.iter().cloned());
    }
    let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if ev.is_ok() {
            let _ = tx.send(());
        }
    });
    let watcher = match watcher {
        Ok(mut w) => {
            for (dir, recursive) in &dirs {
                let mode = if *recursive {
                    RecursiveMode::Recursive
                } else {
                    RecursiveMode::NonRecursive
                };
                if let Err(e) = w.watch(dir, mode) {
                    tracing::warn!(dir = %dir.display(), error = %e,
                        "cannot watch directory; changes will be picked up by polling only");
                }
            }
            Some(w)
        }
        Err(e) => {
            tracing::warn!(error = %e, "no file watcher; changes will be picked up by polling only");
            None
        }
    };
    tokio::spawn(async move {
        let _keep = watcher;
        let mut poll = tokio::time::interval(settings.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        loop {
            tokio::select! {
                ev = rx.recv() => {
                    if ev.is_none() { return; }
                    // Debounce: wait for quiet, then drain.
                    loop {
                        match tokio::time::timeout(settings.debounce, rx.recv()).await {
                            Ok(Some(())) => continue,
                            Ok(None) => return,
                            Err(_) => break,
                        }
                    }
                }
                _ = poll.tick() => {}
            }
            for r in &reloadables {
                let f = r.reload.clone();
                let outcome = tokio::task::spawn_blocking(move || f())
                    .await
                    .unwrap_or_else(|e| Err(format!("reload panicked: {e}")));
                match outcome {
                    Ok(false) => {}
                    Ok(true) => {
                        metrics.reload(r.name, true);
                        tracing::info!(what = r.name, "reloaded");
                    }
                    Err(why) => {
                        metrics.reload(r.name, false);
                        tracing::error!(what = r.name, error = %why,
                            "reload failed; keeping the previous value");
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_follows_content_and_symlink_swaps() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("v1")).unwrap();
        std::fs::write(d.join("v1/p.json"), "a").unwrap();
        std::os::unix::fs::symlink("v1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/p.json", d.join("p.json")).unwrap();
        let file = vec![(d.join("p.json"), false)];
        let a = fingerprint(&file);
        assert_eq!(a, fingerprint(&file));
        std::fs::create_dir(d.join("v2")).unwrap();
        std::fs::write(d.join("v2/p.json"), "b").unwrap();
        std::os::unix::fs::symlink("v2", d.join("..tmp")).unwrap();
        std::fs::rename(d.join("..tmp"), d.join("..data")).unwrap();
        assert_ne!(a, fingerprint(&file));
    }
}
