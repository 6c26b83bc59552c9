//! `skirmish-benches`: not built yet. See issue 3 (bot swarm load tester, benchmarks, Colyseus comparison).

fn main() {
    eprintln!(
        "skirmish-benches is not implemented yet: it is the work of issue 3 (see docs/status.md)"
    );
    std::process::exit(2);
}
