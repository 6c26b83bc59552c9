//! One plugin per concern. The first five need no window (`app::add_logic`); the rest draw.

pub mod capture;
pub mod chat;
pub mod hud;
pub mod input;
pub mod lobby;
pub mod menu;
pub mod netcode;
pub mod session;
pub mod world_view;
