//! The Skirmish game client. The netcode is sans-IO and lives in `skirmish_shared::netcode`
//! (prediction and reconciliation of the own player, interpolation of everything else, the
//! desync checker), so tests drive it without a window or a socket; [`net`] runs the connection on a background tokio runtime
//! (with an optional simulated latency/jitter/loss layer); [`replay`] plays a recorded match
//! in its place; [`game`] is the Bevy app.

pub mod game;
pub mod net;
pub mod replay;
