//! Fan-out: one tick's publication reaching 1,000 connections in one process, the way the
//! match loop does it: publish on the `watch` channel, then offer the tick to every
//! connection's outlet, which writes the shared pre-framed delta into its socket (one
//! non-blocking `send` each). The sockets are real loopback TCP connections; their client
//! ends are drained between samples, untimed, so no send buffer ever fills.
//!
//! Measured: from `send_replace` to the last socket written. Almost all of it is the
//! kernel's loopback `send`, the per-client floor of the server (see `send_floor`).

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use skirmish_server::events::EventLog;
use skirmish_server::fanout::{Cursor, TickOutput};
use skirmish_server::outlet::{Lent, Outlet};
use skirmish_server::socket::Socket;
use skirmish_server::stats::Stats;
use skirmish_shared::rules::Params;
use skirmish_shared::workload::Wander;
use tokio::sync::watch;

const CONNECTIONS: usize = 1000;

fn connections(n: usize) -> Vec<(Socket, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    (0..n)
        .map(|_| {
            let client = TcpStream::connect(addr).expect("connect");
            let (server, _) = listener.accept().expect("accept");
            server.set_nodelay(true).expect("nodelay");
            client.set_nonblocking(true).expect("nonblocking");
            (Socket::plain(server).expect("nonblocking"), client)
        })
        .collect()
}

fn drain(clients: &mut [TcpStream]) {
    let mut buf = [0u8; 65536];
    for c in clients {
        while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
    }
}

fn fanout(c: &mut Criterion) {
    let params = Params::new(30);
    let outputs: Vec<Arc<TickOutput>> = {
        let worlds: Vec<Arc<_>> = Wander::new(16, 42, params)
            .worlds(1024)
            .into_iter()
            .map(Arc::new)
            .collect();
        (0..worlds.len())
            .map(|i| {
                let prev = i.checked_sub(1).map(|p| &*worlds[p]);
                Arc::new(TickOutput::new(
                    worlds[i].clone(),
                    prev,
                    None,
                    params,
                    Vec::new(),
                    1,
                ))
            })
            .collect()
    };
    let log = Mutex::new(EventLog::default());
    let stats = Stats::default();
    let (tx, rx) = watch::channel(outputs[0].clone());
    let (servers, mut clients): (Vec<_>, Vec<_>) = connections(CONNECTIONS).into_iter().unzip();
    let outlets: Vec<Outlet> = servers.iter().map(|_| Outlet::default()).collect();
    // Lends every socket at `outputs[at]` (the writer task's part in the server).
    let lend_all = |at: usize| {
        for (o, s) in outlets.iter().zip(&servers) {
            let _ = o.take_back();
            let lent = Lent {
                sink: s.clone(),
                cursor: Cursor::at(&outputs[at]),
            };
            assert!(o.lend(lent, &rx).is_ok(), "lent at the latest tick");
        }
    };
    lend_all(0);

    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(CONNECTIONS as u64));
    let mut i = 0;
    group.bench_function("publish_to_1000_sockets", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                i += 1;
                if i == outputs.len() {
                    // Wrapped around the recorded ticks: start the cursors over, untimed.
                    i = 0;
                    tx.send_replace(outputs[0].clone());
                    lend_all(0);
                    continue;
                }
                let out = &outputs[i];
                let start = Instant::now();
                tx.send_replace(out.clone());
                for o in &outlets {
                    o.offer(out, &log, &stats);
                }
                total += start.elapsed();
            }
            drain(&mut clients);
            total
        });
    });
    group.finish();
    for o in &outlets {
        let back = o.take_back().expect("lent");
        assert!(
            back.unsent.is_none() && !back.failed,
            "every send went out whole"
        );
    }
    println!(
        "fanout: {} frames sent, {} ticks skipped",
        stats.messages_out.get(),
        stats.snapshots_skipped.get()
    );
}

criterion_group!(benches, fanout);
criterion_main!(benches);
