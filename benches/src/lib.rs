//! Skirmish benchmarks. The criterion benches live in `benches/` (`cargo bench -p
//! skirmish-benches`); the load ladder is the `ladder` binary. This library holds what they
//! share: the ladder's table and plot.

pub mod ladder;
