//! JSON bodies of the HTTP API that clients use: `POST /api/matchmake`, `GET /api/matches`.
//!
//! `udp` (when the server has a datagram endpoint) is the same seat for the datagram
//! transport: where to send, and the connect token (`datagram::ConnectToken`, bincode,
//! base64url) that the handshake needs.

use serde::{Deserialize, Serialize};

use crate::world::Phase;

/// `POST /api/matchmake` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchmakeRequest {
    pub name: String,
    /// Join this match instead of the fullest open one.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_id: Option<u32>,
}

/// `POST /api/matchmake` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchmakeResponse {
    pub match_id: u32,
    pub seat: u32,
    /// The name as the server will show it (cleaned).
    pub name: String,
    pub token: String,
    /// Where to connect: `ws://host/ws?v=<PROTOCOL_VERSION>&token=<token>`.
    pub ws_url: String,
    /// The seat is held this long for the first connection, seconds.
    pub reservation_s: f64,
    /// The token's expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    /// The same seat over the datagram transport, if the server has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpTicket>,
}

/// Where and how to reach the datagram endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpTicket {
    /// `host:port`.
    pub addr: String,
    /// The connect token, bincode then base64url (no padding).
    pub connect_token: String,
}

/// One row of `GET /api/matches`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MatchInfo {
    pub id: u32,
    /// Seats taken: playing, reserved, or holding for a reconnect.
    pub players: usize,
    pub capacity: usize,
    pub spectators: usize,
    pub phase: Phase,
    pub tick: u32,
    pub tick_hz: u32,
}
