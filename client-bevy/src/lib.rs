//! The Skirmish game client. The netcode is sans-IO and lives in `skirmish_shared::netcode`
//! (prediction and reconciliation of the own player and its shots, interpolation of
//! everything else, the desync checker), so tests drive it without a window or a socket;
//! [`net`] runs the connection on a background tokio runtime (with an optional simulated
//! latency/jitter/loss layer); [`replay`] plays a recorded match in its place; [`app`] is the
//! Bevy app: its states and one plugin per concern ([`plugins`]).

pub mod app;
pub mod net;
pub mod plugins;
pub mod replay;
