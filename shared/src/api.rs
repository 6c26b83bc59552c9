//! JSON bodies of the HTTP API that clients use: `POST /api/matchmake`.

use serde::{Deserialize, Serialize};

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
}
