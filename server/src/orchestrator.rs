//! Agones (feature `agones`, flag `--agones`): the server as an Agones GameServer, through the
//! SDK sidecar. `Ready` once listening, `Health` every two seconds while every match loop is
//! ticking (a stalled loop stops the pings, and Agones marks the server unhealthy), player
//! tracking (`PlayerConnect`/`PlayerDisconnect`, capacity = `--max-connections`), and
//! `Shutdown` after draining. One process hosts many matches and stays allocatable while it
//! has room: the high-density pattern.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::context::{LifecycleEvent, ServerContext};
use crate::registry::Registry;

/// How often health is reported.
const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// A match loop that has not ticked for this long counts as stalled.
const STALLED_AFTER_MS: u64 = 2_000;

/// The SDK connection and the tasks that use it.
pub struct Agones {
    sdk: agones::Sdk,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Agones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Agones")
    }
}

/// Why the Agones lifecycle could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgonesError {
    #[error("cannot reach the Agones SDK sidecar on port {port}: {source}")]
    Connect {
        port: u16,
        #[source]
        source: agones::errors::Error,
    },
    #[error("{call}: {source}")]
    Call {
        call: &'static str,
        #[source]
        source: agones::errors::Error,
    },
}

impl Agones {
    /// Connects to the sidecar on `port`, reports Ready and starts health and player tracking.
    pub async fn start(
        port: u16,
        capacity: usize,
        ctx: ServerContext,
        registry: std::sync::Arc<Registry>,
        mut players: mpsc::Receiver<LifecycleEvent>,
    ) -> Result<Self, AgonesError> {
        let mut sdk = agones::Sdk::new(Some(port), None)
            .await
            .map_err(|source| AgonesError::Connect { port, source })?;
        let mut alpha = sdk.alpha().clone();
        alpha
            .set_player_capacity(capacity as i64)
            .await
            .map_err(|source| AgonesError::Call {
                call: "SetPlayerCapacity",
                source,
            })?;
        sdk.ready().await.map_err(|source| AgonesError::Call {
            call: "Ready",
            source,
        })?;
        info!(port, "Agones: ready");

        let health = sdk.health_check();
        let shutdown = ctx.shutdown.clone();
        let health_task = tokio::spawn(async move {
            let mut every = tokio::time::interval(HEALTH_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = shutdown.cancelled() => break,
                }
                let now = crate::token::unix_now_ms();
                let stalled = registry.all().iter().any(|m| {
                    now.saturating_sub(m.ticked_at_ms.load(Ordering::Relaxed)) > STALLED_AFTER_MS
                });
                if stalled {
                    warn!("Agones: a match loop is stalled; not reporting health");
                } else if health.send(()).await.is_err() {
                    warn!("Agones: the health stream closed");
                    break;
                }
            }
        });
        let tracking_task = tokio::spawn(async move {
            while let Some(e) = players.recv().await {
                let r = match &e {
                    LifecycleEvent::PlayerJoined(id) => {
                        alpha.player_connect(id.clone()).await.map(|_| ())
                    }
                    LifecycleEvent::PlayerLeft(id) => {
                        alpha.player_disconnect(id.clone()).await.map(|_| ())
                    }
                };
                if let Err(err) = r {
                    warn!("Agones player tracking ({e:?}): {err}");
                }
            }
        });
        Ok(Self {
            sdk,
            tasks: vec![health_task, tracking_task],
        })
    }

    /// Tells Agones the server is done (after draining).
    pub async fn shutdown(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        match self.sdk.shutdown().await {
            Ok(()) => info!("Agones: shutdown reported"),
            Err(e) => warn!("Agones Shutdown: {e}"),
        }
    }
}
