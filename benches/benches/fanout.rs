//! Fan-out: one tick's publication reaching 1,000 connection writers in one process. Each
//! writer is a tokio task waiting on the match's `watch` channel, exactly as the server's
//! writers do; it takes the shared frame (`TickOutput::frame_for`) and writes it to a sink.
//! Measured: from `send_replace` to the last writer done.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use skirmish_server::events::EventLog;
use skirmish_server::fanout::TickOutput;
use skirmish_shared::rules::Params;
use skirmish_shared::workload::Wander;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, watch};

const WRITERS: usize = 1000;

fn fanout(c: &mut Criterion) {
    let params = Params::new(30);
    let worlds: Vec<Arc<_>> = Wander::new(16, 42, params)
        .worlds(1024)
        .into_iter()
        .map(Arc::new)
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let log = Arc::new(Mutex::new(EventLog::default()));
    let first = Arc::new(TickOutput::new(
        worlds[0].clone(),
        None,
        None,
        params,
        Vec::new(),
        1,
    ));
    let (tx, rx) = watch::channel(first);
    let done = Arc::new(AtomicUsize::new(0));
    let all_done = Arc::new(Notify::new());
    rt.block_on(async {
        for _ in 0..WRITERS {
            let mut rx = rx.clone();
            let (done, all_done, log) = (done.clone(), all_done.clone(), log.clone());
            tokio::spawn(async move {
                let mut sink = tokio::io::sink();
                let mut last = rx.borrow().world.clone();
                let mut next_event = 1;
                while rx.changed().await.is_ok() {
                    let out = rx.borrow_and_update().clone();
                    let f = out.frame_for(Some(&last), next_event, &log);
                    let _ = sink.write_all(&f.bytes).await;
                    last = out.world.clone();
                    next_event = f.next_event;
                    if done.fetch_add(1, Ordering::AcqRel) + 1 == WRITERS {
                        all_done.notify_one();
                    }
                }
            });
        }
    });
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(WRITERS as u64));
    let mut i = 1;
    group.bench_function("publish_to_1000_writers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (prev, cur) = (
                        worlds[(i - 1) % worlds.len()].clone(),
                        worlds[i % worlds.len()].clone(),
                    );
                    i += 1;
                    if cur.tick.diff(prev.tick) != 1 {
                        // Wrapped around the recorded worlds: resync the writers, untimed.
                        done.store(0, Ordering::Release);
                        let notified = all_done.notified();
                        tx.send_replace(Arc::new(TickOutput::new(
                            cur,
                            None,
                            None,
                            params,
                            Vec::new(),
                            1,
                        )));
                        notified.await;
                        continue;
                    }
                    let out = Arc::new(TickOutput::new(
                        cur,
                        Some(&prev),
                        None,
                        params,
                        Vec::new(),
                        1,
                    ));
                    done.store(0, Ordering::Release);
                    let notified = all_done.notified();
                    let start = Instant::now();
                    tx.send_replace(out);
                    notified.await;
                    total += start.elapsed();
                }
                total
            })
        });
    });
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
