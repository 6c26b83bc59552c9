//! Interest management for big matches (issue 15): what each client is sent. A client sees
//! the players and projectiles within a view radius of its own player, and when what it sees
//! does not fit its byte budget, the players it gets exactly this tick are chosen by
//! accumulated priority ([`priority`]) and the rest are carried on by the client's own
//! prediction until their turn ([`view`]). A view looks at the cells around its player in
//! the tick's shared [`grid`], not at every entity of the match.

pub mod grid;
pub mod priority;
pub mod view;

pub use view::{Selection, Settings, View};
