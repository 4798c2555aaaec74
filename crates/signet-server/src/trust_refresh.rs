//! Trust stores fetched from a remote source (Azure Key Vault) on an interval and applied to
//! the cluster's trust: built aside, swapped when they load, the trust in use kept (and the
//! failure logged and counted) when they do not. The source is a seam so the server knows
//! no cloud: the binary adapts `signet-azure`'s Key Vault source to [`TrustStoreSource`].

use std::sync::Arc;
use std::time::Duration;

use signet_notation::truststore::TrustStore;

use crate::scrape::TrustRefreshStats;
use crate::verifier::{BoxFuture, EngineVerifier};

/// Until the first fetch succeeds, the next one comes after at most this long.
const FIRST_FETCH_RETRY: Duration = Duration::from_secs(30);

/// What one fetch found.
#[derive(Debug, Clone, Default)]
pub struct FetchedStores {
    /// Every configured store (possibly empty when all its certificates were dropped).
    pub stores: Vec<TrustStore>,
    /// Certificates the source no longer offers (deleted, disabled), with the reason.
    pub dropped: Vec<(String, String)>,
}

/// A remote source of trust stores.
pub trait TrustStoreSource: Send + Sync + 'static {
    /// Names the source in logs (the vault URL).
    fn describe(&self) -> &str;
    /// Fetches every store; an error means nothing was fetched (the trust in use stays).
    fn fetch(&self) -> BoxFuture<'_, Result<FetchedStores, String>>;
}

/// DER of every certificate applied, per store, to notice changes.
type Applied = Vec<(String, Vec<Vec<u8>>)>;

/// Fetches once and applies what changed; then, in the background, every `interval`
/// (every 30 s at most until a fetch succeeds). Returns the outcome counters for `/metrics`.
pub async fn start(
    source: Arc<dyn TrustStoreSource>,
    verifier: Arc<EngineVerifier>,
    interval: Duration,
) -> Arc<TrustRefreshStats> {
    let outcomes = Arc::new(TrustRefreshStats::default());
    let mut applied = refresh(source.as_ref(), &verifier, None, &outcomes).await;
    let stats = outcomes.clone();
    tokio::spawn(async move {
        loop {
            let wait = match applied {
                Some(_) => interval,
                None => interval.min(FIRST_FETCH_RETRY),
            };
            tokio::time::sleep(wait).await;
            applied = refresh(source.as_ref(), &verifier, applied, &stats).await;
        }
    });
    outcomes
}

/// One round: returns what is applied afterwards.
async fn refresh(
    source: &dyn TrustStoreSource,
    verifier: &EngineVerifier,
    previous: Option<Applied>,
    outcomes: &TrustRefreshStats,
) -> Option<Applied> {
    let fetched = match source.fetch().await {
        Ok(fetched) => fetched,
        Err(e) => {
            tracing::error!(source = %source.describe(), error = %e,
                "trust stores not fetched; the last good set stays in use");
            outcomes.record(false);
            return previous;
        }
    };
    for (name, reason) in &fetched.dropped {
        tracing::warn!(source = %source.describe(), certificate = %name, reason = %reason,
            "certificate no longer trusted");
    }
    let applied: Applied = fetched
        .stores
        .iter()
        .map(|s| {
            (
                format!("{}:{}", s.store_type.as_str(), s.name),
                s.certificates.iter().map(|c| c.der().to_vec()).collect(),
            )
        })
        .collect();
    if previous.as_ref() == Some(&applied) {
        outcomes.record(true);
        return previous;
    }
    let names: Vec<&str> = applied.iter().map(|(n, _)| n.as_str()).collect();
    match verifier.set_extra_stores(fetched.stores) {
        Ok(_) => {
            tracing::info!(source = %source.describe(), stores = ?names, "trust stores applied");
            outcomes.record(true);
            Some(applied)
        }
        Err(e) => {
            tracing::error!(source = %source.describe(), error = %e,
                "trust stores fetched but the trust material did not load; the trust in use is kept");
            outcomes.record(false);
            // Not applied: the next round tries again.
            previous
        }
    }
}
