//! What the server's parts share: counters, metrics, the results and replay stores, the shutdown and
//! drain signals, the task tracker and the orchestrator's event queue. Matches and
//! connections get a clone; the registry of matches is kept beside it (in `http::AppState`
//! and `Server`), so nothing here depends on a match.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::results::ResultsStore;
use crate::stats::Stats;

/// Services shared by every match and connection of one server.
#[derive(Debug, Clone)]
pub struct ServerContext {
    pub stats: Arc<Stats>,
    pub metrics: Arc<Metrics>,
    pub results: Arc<ResultsStore>,
    /// Where matches record their replays (`None`: replays are off).
    pub replays: Option<Arc<crate::replay::ReplayStore>>,
    pub shutdown: CancellationToken,
    /// Match and connection tasks, so shutdown can wait for them (and for the results).
    pub tasks: tokio_util::task::TaskTracker,
    /// Set while draining: no new joins, matches play on until the drain timeout.
    pub draining: CancellationToken,
    /// Players joining and leaving, for an orchestrator's player tracking (Agones).
    pub lifecycle: Option<mpsc::Sender<LifecycleEvent>>,
}

/// What an orchestrator wants to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// A player took a seat: `"<match>/<player>"`.
    PlayerJoined(String),
    PlayerLeft(String),
}
