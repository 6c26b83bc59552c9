//! Interest management for big matches (issue 15, begun): which parts of the arena a client
//! sees ([`grid`]), and what it gets first when its view does not fit its byte budget
//! ([`priority`]). Sans-IO and not wired to the match loop yet: the cell-wise encoding and
//! the clients' handling of entities entering and leaving view come next (`docs/status.md`).

pub mod grid;
pub mod priority;
