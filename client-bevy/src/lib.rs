//! The Skirmish game client. The netcode is sans-IO ([`netcode`]: prediction and
//! reconciliation of the own player, interpolation of everything else) so tests drive it
//! without a window or a socket; [`net`] runs the connection on a background tokio runtime
//! (with an optional simulated latency/jitter/loss layer); [`game`] is the Bevy app.

pub mod game;
pub mod net;
pub mod netcode;
