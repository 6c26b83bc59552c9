//! Everything both ends of Skirmish must agree on.
//!
//! The server and every client (the Bevy game, the bots, the browser page) run the same
//! deterministic rules on the same quantized numbers, and speak the same wire format:
//!
//! - [`tick`] — wrap-around-safe `Tick` and input `Seq` newtypes.
//! - [`quant`] — quantized value types (`QVec`, `QAngle`, `MoveVec`) and the integer math the
//!   rules use (sine table, damping factor, square root): no platform float functions.
//! - [`rules`] — the game's named constants and per-tick-rate parameters.
//! - [`rng`] — the match's seeded deterministic random number generator.
//! - [`world`] — the quantized world state (players, orbs, projectiles) and its checksum.
//! - [`sim`] — `step`, the authoritative fixed-tick rules, and `apply_input`, the part a client
//!   predicts.
//! - [`api`] — JSON bodies of the HTTP API that clients use (matchmaking).
//! - [`bits`] — bit-level writer and reader with zig-zag and Exp-Golomb codes.
//! - [`codec`] — the delta snapshot codec.
//! - [`datagram`] — the datagram transport's sans-IO core: connect tokens, the handshake,
//!   sealed packets, the replay window; what packets carry (`play`), the reliable channel.
//! - [`link_sim`] — a simulated network link per packet (latency, jitter, loss, duplication).
//! - [`process`] — CPU time and RSS of a process, from `/proc`.
//! - [`protocol`] — the bincode message envelope, input frames, close codes, version.
//! - [`receiver`] — sans-IO client side of the snapshot stream (baseline tracking, checksum
//!   verification, desync counting).
//! - [`netcode`] — sans-IO client netcode: prediction and reconciliation, interpolation, and
//!   the desync checker the bots and the game client share.
//! - [`workload`] — the benchmark workload (wandering players), its steering shared with the
//!   bots, and a match of wanderers without a network.
//! - `client` (feature `client`): the client used by the Bevy game, bots and tests, over
//!   WebSocket or UDP (`Transport`); `client_tls`: its `https://`/`wss://` side (system roots
//!   plus CAs the program trusts); `client_udp`: its datagram side (handshake, then play).
//! - `test_certs` (feature `test-certs`): a private CA and server certificates for tests.

pub mod api;
pub mod bits;
pub mod codec;
pub mod datagram;
pub mod link_sim;
pub mod netcode;
pub mod process;
pub mod protocol;
pub mod quant;
pub mod receiver;
pub mod replay;
pub mod rng;
pub mod rules;
pub mod sim;
pub mod tick;
pub mod workload;
pub mod world;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod client_tls;
#[cfg(feature = "client")]
pub mod client_udp;
#[cfg(feature = "test-certs")]
pub mod test_certs;
