//! The Skirmish bot swarm: many real WebSocket clients (the shared client), each predicting
//! its own player with the shared rules, with a latency and bandwidth report.
//!
//! - [`behavior`] — how a bot steers (`wander` is the benchmark workload).
//! - [`brain`] — one bot's mind without I/O: snapshot checks, latency, the input per tick.
//! - [`bot`] — one bot as a task over the shared client (WebSocket, or UDP).
//! - [`driver`] — UDP bots, many per thread, each served once per tick (`--transport udp`).
//! - [`stats`] — what the swarm counts, shared by all bots.
//! - [`swarm`] — ramp, measurement window, progress, stop.
//! - [`report`] — the final report (table and JSON).
//! - [`probe`] — the server's CPU and memory from its `/api/stats`, and our own.
//! - [`attack`] — abuse behaviours, to attack your own server and see what it does.

pub mod attack;
pub mod behavior;
pub mod bot;
pub mod brain;
pub mod driver;
pub mod probe;
pub mod report;
pub mod stats;
pub mod swarm;
