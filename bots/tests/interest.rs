//! Interest management (issue 15) with real clients: bots play a big match over WebSocket and
//! UDP while a player and a spectator who sees everything watch the same ticks. What the
//! player holds is what is within its view radius (nothing beyond it, nothing missing inside
//! it), its own player exact; a spectator can follow the player's view; under a budget too
//! small for the match the players are caught up by priority, and every bot's checksums still
//! verify (the checksum is over the client's own view).

use std::collections::HashMap;
use std::time::Duration;

use skirmish_bots::behavior::Behavior;
use skirmish_bots::swarm::{self, SwarmConfig};
use skirmish_server::{Config, Server};
use skirmish_shared::client::{self, JoinOptions, Receiver, Transport};
use skirmish_shared::protocol::ServerMessage;
use skirmish_shared::quant::POS_SCALE;
use skirmish_shared::receiver::{Received, SnapshotReceiver};
use skirmish_shared::rules::Params;
use skirmish_shared::tick::Tick;
use skirmish_shared::world::{PlayerId, WorldState};

const ADMIN_KEY: &str = "interest-test-key";
const DEADLINE: Duration = Duration::from_secs(10);

async fn server(view_radius: Option<u32>, budget: usize) -> Server {
    let mut c = Config::ephemeral();
    c.admin_key = Some(ADMIN_KEY.into());
    c.match_size = 64;
    c.view_radius = view_radius;
    c.snapshot_budget = budget;
    Server::start(c).await.expect("server")
}

fn bots(server: &Server, bots: usize, transport: Transport, seconds: u64) -> SwarmConfig {
    SwarmConfig {
        base_url: server.base_url(),
        bots,
        match_size: bots,
        duration: Duration::from_secs(seconds),
        ramp: Duration::from_millis(800),
        warmup: Duration::from_millis(500),
        behavior: Behavior::Wander,
        server_metrics: Some(format!("{}/api/stats", server.base_url())),
        seed: 15,
        progress: false,
        tick_hz: 30,
        attackers: 0,
        attack: None,
        admin_key: Some(ADMIN_KEY.into()),
        transport,
        link: skirmish_shared::link_sim::LinkConfig::default(),
        driver_threads: 1,
        verify_every: 1,
    }
}

/// A WebSocket watcher (player or spectator) and the worlds it decoded, by tick.
struct Watcher {
    rx: Receiver,
    _tx: client::Sender,
    id: Option<PlayerId>,
    worlds: SnapshotReceiver,
    seen: HashMap<Tick, WorldState>,
}

impl Watcher {
    async fn join(opts: JoinOptions) -> Self {
        let (mut rx, tx) = client::connect(&opts).await.expect("joins").split();
        let (msg, _) = tokio::time::timeout(DEADLINE, rx.recv_message())
            .await
            .expect("welcome in time")
            .expect("welcome");
        let ServerMessage::Welcome {
            player_id,
            snapshot,
            tick_hz,
            ..
        } = msg
        else {
            panic!("expected a welcome, got {msg:?}");
        };
        let mut worlds = SnapshotReceiver::new(Params::new(tick_hz));
        assert!(matches!(
            worlds.receive(&snapshot),
            Received::Applied { verified: true, .. }
        ));
        Self {
            rx,
            _tx: tx,
            id: player_id,
            worlds,
            seen: HashMap::new(),
        }
    }

    /// Reads `n` snapshots; each must apply (and verify when it carries a checksum).
    async fn watch(&mut self, n: usize) {
        let mut verified = 0;
        while self.seen.len() < n {
            let (msg, _) = tokio::time::timeout(DEADLINE, self.rx.recv_message())
                .await
                .expect("snapshot in time")
                .expect("open");
            if let ServerMessage::Snapshot(s) = msg {
                match self.worlds.receive(&s) {
                    Received::Applied { verified: v, .. } => verified += usize::from(v),
                    other => panic!("snapshot not applied: {other:?}"),
                }
                let w = self.worlds.latest().expect("a world").clone();
                self.seen.insert(w.tick, w);
            }
        }
        assert!(verified >= n / 40, "checksums verified: {verified}");
    }
}

fn opts(server: &Server, name: &str) -> JoinOptions {
    let mut o = JoinOptions::new(server.base_url(), name);
    o.match_id = Some(1);
    o
}

/// Compares what `watcher` held at each tick with the whole match at that tick (`all`): the
/// followed player `me` exact; every player and projectile it holds in the match and within
/// the radius plus an eighth (the hysteresis); every player within the radius held. Returns
/// the ticks compared and how many of them held fewer players than the match had.
fn check_view(watcher: &Watcher, all: &Watcher, me: PlayerId, radius: u32) -> (usize, usize) {
    let r = i64::from(radius) * i64::from(POS_SCALE);
    let keep = r + r / 8;
    let (mut compared, mut fewer) = (0, 0);
    for (tick, mine) in &watcher.seen {
        let Some(truth) = all.seen.get(tick) else {
            continue;
        };
        compared += 1;
        let at = truth.player(me).expect("the player is in the match").pos;
        assert_eq!(
            mine.player(me),
            truth.player(me),
            "the followed player is exact"
        );
        for p in &mine.players {
            let t = truth.player(p.id).unwrap_or_else(|| {
                panic!(
                    "tick {}: player {} left the match but not the view",
                    tick.0, p.id.0
                )
            });
            assert!(
                t.pos.dist_sq(at) <= keep * keep,
                "tick {}: player {} is out of view and still held",
                tick.0,
                p.id.0
            );
        }
        for t in &truth.players {
            if t.pos.dist_sq(at) <= r * r {
                assert!(
                    mine.player(t.id).is_some(),
                    "tick {}: player {} is within the view radius and missing",
                    tick.0,
                    t.id.0
                );
            }
        }
        for q in &mine.projectiles {
            let t = truth
                .projectiles
                .iter()
                .find(|p| p.id == q.id)
                .unwrap_or_else(|| {
                    panic!("tick {}: a projectile gone from the match is held", tick.0)
                });
            assert!(
                t.owner == me || t.pos_at(*tick, &Params::new(30)).dist_sq(at) <= keep * keep,
                "tick {}: a projectile out of view is held",
                tick.0
            );
        }
        fewer += usize::from(mine.players.len() < truth.players.len());
    }
    (compared, fewer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_holds_what_is_within_its_view_and_nothing_else() {
    let radius = 250;
    let server = server(Some(radius), 600).await;
    let swarm = tokio::spawn(swarm::run(
        bots(&server, 40, Transport::Udp, 6),
        std::future::pending(),
    ));
    // The swarm creates match 1; join it once its bots are in.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut player = Watcher::join(opts(&server, "watcher")).await;
    let me = player.id.expect("a player");
    let mut all = Watcher::join(JoinOptions {
        spectate: true,
        ..opts(&server, "spectator")
    })
    .await;
    let mut follower = Watcher::join(JoinOptions {
        spectate: true,
        follow: Some(me.0),
        ..opts(&server, "follower")
    })
    .await;
    let ((), (), ()) = tokio::join!(player.watch(90), all.watch(90), follower.watch(90));

    let (compared, fewer) = check_view(&player, &all, me, radius);
    assert!(compared > 60, "{compared} ticks compared");
    assert!(
        fewer > compared / 2,
        "the view left players out on {fewer} of {compared} ticks"
    );
    let (followed, _) = check_view(&follower, &all, me, radius);
    assert!(followed > 60, "{followed} ticks of the follower compared");

    let report = swarm.await.expect("swarm task").expect("swarm runs");
    assert_eq!(report.bots_connected, 40, "{:?}", report.failures);
    assert_eq!(report.desyncs, 0);
    assert_eq!(report.checksum_desyncs, 0);
    let s = report.server.expect("server metrics");
    assert!(s.view_snapshots > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_small_budget_players_wait_their_turn_and_every_checksum_verifies() {
    // Two matches of 24 players, the whole arena in view, 64 bytes a tick: their changes
    // (about 85 bytes a tick) do not fit.
    let server = server(None, 64).await;
    let (udp, ws) = tokio::join!(
        swarm::run(bots(&server, 24, Transport::Udp, 5), std::future::pending()),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            swarm::run(bots(&server, 24, Transport::Ws, 5), std::future::pending()).await
        }
    );
    for report in [udp.expect("udp swarm"), ws.expect("ws swarm")] {
        assert_eq!(report.bots_connected, 24, "{:?}", report.failures);
        assert_eq!(report.desyncs, 0, "own-player steps re-simulate exactly");
        assert_eq!(report.checksum_desyncs, 0, "checksums over the view verify");
        assert!(report.predictions_checked > 24 * 30);
        let s = report.server.expect("server metrics");
        assert!(s.view_players_held > 0, "the budget held players back");
        assert!(
            (2..=30).contains(&s.view_longest_wait_ticks),
            "longest wait {} ticks",
            s.view_longest_wait_ticks
        );
    }
}
