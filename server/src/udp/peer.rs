//! A datagram player as both of its sides see it. The endpoint opens each packet as it
//! arrives and leaves what it carried here (the newest acknowledgement, new inputs straight
//! into the player's input queue, reliable-channel traffic); the match takes it at the start
//! of its tick, exactly as it reads a WebSocket connection's buffered bytes once per tick.

use skirmish_shared::world::Name;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use skirmish_shared::datagram::reliable::Outgoing;
use skirmish_shared::tick::{Seq, Tick};

use crate::link::End;
use crate::r#match::jitter::InputRing;

/// Reliable-channel packets kept between two ticks; more are dropped (the client resends).
pub const MAX_RELIABLE_PER_TICK: usize = 8;

/// One datagram player (see the module docs).
#[derive(Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    pub match_id: u32,
    pub seat: u32,
    pub name: Name,
    /// New inputs, pushed by the endpoint, consumed by the match one per tick.
    pub inputs: Arc<InputRing>,
    inbox: Mutex<Inbox>,
}

/// What arrived since the match last looked.
#[derive(Debug, Default)]
pub struct Inbox {
    /// The newest packet's acknowledgement (`None`: the client wants a full snapshot).
    pub ack: Option<Tick>,
    pub reliable: Vec<Outgoing>,
    /// The newest input received (echoed in every snapshot packet).
    pub last_input: Option<Seq>,
    /// Set once: the client disconnected or timed out (endpoint), or the match let it go.
    pub ended: Option<End>,
}

impl Peer {
    #[must_use]
    pub fn new(addr: SocketAddr, match_id: u32, seat: u32, name: Name, queue: usize) -> Self {
        Self {
            addr,
            match_id,
            seat,
            name,
            inputs: Arc::new(InputRing::new(queue)),
            inbox: Mutex::default(),
        }
    }

    pub fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the session over (the first reason sticks).
    pub fn end(&self, how: End) {
        self.inbox().ended.get_or_insert(how);
    }

    #[must_use]
    pub fn ended(&self) -> Option<End> {
        self.inbox().ended
    }
}
