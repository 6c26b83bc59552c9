//! `skirmish-client`: not built yet. See issue 4 (the Bevy client with prediction,
//! reconciliation, interpolation and a HUD).

fn main() {
    eprintln!(
        "skirmish-client is not implemented yet: it is the work of issue 4 (see docs/status.md)"
    );
    std::process::exit(2);
}
