//! Replays (issue 16), the server's side: every match records itself as it runs
//! (`recorder`, in the match task: never waits for the disk), one writer thread compresses and
//! writes the files, keeps their index and the retention limits (`store`), and
//! `skirmish-server replay verify|show` reads them back (`cli`). The format, the recording
//! and the re-simulation are `skirmish_shared::replay`'s.

pub mod cli;
pub mod recorder;
pub mod routes;
pub mod store;

pub use recorder::Recorder;
pub use store::{ReplayInfo, ReplayStore};
