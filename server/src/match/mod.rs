//! A match's one home: its handle and the commands it takes ([`handle`]), its task — clock,
//! the connections' I/O each tick, joins and leaves (`task`) — the phase rules as a pure
//! state machine ([`phase`]), the players' input queues ([`jitter`]) and its seats
//! ([`seats`]), the spectators' delay ([`delay`]). A finished match's result is assembled in
//! `results`.

pub mod datagrams;
pub mod delay;
pub mod handle;
pub mod jitter;
pub mod phase;
pub mod seats;
mod task;

pub use handle::{Attachment, MatchCommand, MatchHandle, MatchInfo, SpectatorSlot};
pub use task::{MAX_CATCH_UP, spawn};
