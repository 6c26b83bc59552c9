//! A connection as its match's loop drives it: the read side (`inlet`) and the write side
//! (`outlet`), and how a connection ended.

use crate::inlet::Inlet;
use crate::outlet::Outlet;

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A close handshake (either side started it).
    Closed,
    /// The peer vanished, or stopped accepting writes.
    Abrupt,
}

/// A connection's read and write side, as its match loop drives them.
#[derive(Debug)]
pub struct Link {
    pub inlet: Inlet<End>,
    pub outlet: Outlet,
    /// A spectator watching `--spectator-delay` behind: offered the match's delayed
    /// publication, not the live one.
    pub delayed: bool,
}
