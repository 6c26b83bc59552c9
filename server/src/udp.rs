//! The datagram endpoint, first part (issue 14): one UDP socket on the game port's number,
//! where clients with a connect token from matchmaking complete the handshake
//! (`skirmish_shared::datagram`) and get an authenticated, encrypted session. A seated
//! session answers a sealed `ping` with a sealed `pong`; playing over it (inputs, snapshots
//! against acknowledged baselines, the matches doing this socket's I/O in their tick) is the
//! next part. Anything that does not authenticate is dropped and counted, never answered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use skirmish_shared::datagram::{self, Handshake, Kind, Session, Step};

use crate::registry::Registry;
use crate::stats::Stats;

/// The largest datagram read.
const MAX_DATAGRAM: usize = 1500;

/// What the endpoint needs.
#[derive(Debug)]
pub struct UdpEndpoint {
    pub socket: UdpSocket,
    pub key: datagram::Key,
    /// This server instance; tokens of another are refused unless `any_instance`.
    pub instance: u64,
    pub any_instance: bool,
    pub registry: Arc<Registry>,
    pub stats: Arc<Stats>,
    /// Most sessions at once (the WebSocket connection cap).
    pub max_sessions: usize,
}

impl UdpEndpoint {
    /// Serves until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut handshake: Handshake<SocketAddr> = Handshake::new(self.key);
        let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        info!(addr = ?self.socket.local_addr().ok(), "datagram endpoint: handshakes only, play over UDP is not built yet");
        loop {
            let (n, from) = tokio::select! {
                () = shutdown.cancelled() => return,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        debug!("udp recv: {e}");
                        continue;
                    }
                },
            };
            let packet = &buf[..n];
            if let Some(session) = sessions.get_mut(&from) {
                match session.from_client.open(packet) {
                    Ok((Kind::Payload, _, body)) if body == b"ping" => {
                        let pong = session.to_client.seal(Kind::Payload, b"pong");
                        let _ = self.socket.send_to(&pong, from).await;
                    }
                    Ok((Kind::Disconnect, _, _)) => {
                        sessions.remove(&from);
                    }
                    Ok(_) => {}
                    Err(_) => self.stats.udp_dropped.inc(),
                }
                continue;
            }
            let cookie = random_cookie();
            match handshake.on_packet(&from, packet, crate::token::unix_now_s(), cookie) {
                Step::Reply(challenge) => {
                    let _ = self.socket.send_to(&challenge, from).await;
                }
                Step::Connected(session) => {
                    let claims = &session.claims;
                    let known = self.registry.get(claims.match_id).is_some();
                    let ours = claims.instance == self.instance || self.any_instance;
                    if !known || !ours || sessions.len() >= self.max_sessions {
                        self.stats.udp_dropped.inc();
                        continue;
                    }
                    debug!(match_id = claims.match_id, seat = claims.seat, %from, "udp session");
                    self.stats.udp_sessions.inc();
                    sessions.insert(from, *session);
                }
                Step::Drop(e) => {
                    debug!(%from, "udp packet dropped: {e}");
                    self.stats.udp_dropped.inc();
                }
            }
        }
    }
}

/// Unpredictable bytes for a challenge (an attacker who cannot see the challenge must not
/// be able to guess it); a zero cookie if the system's generator fails (the session keys
/// still protect the handshake).
fn random_cookie() -> [u8; 8] {
    let mut c = [0u8; 8];
    let _ = getrandom::fill(&mut c);
    c
}
