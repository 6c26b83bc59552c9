//! The client side of the datagram transport (feature `client`), first part: the handshake
//! over a real UDP socket with the ticket from matchmaking, giving a [`UdpSession`] whose
//! packets are sealed and opened with the session keys. Playing over it is not built yet
//! (issue 14); the session can ping the server to check the path.

use std::time::Duration;

use tokio::net::UdpSocket;

use crate::api::UdpTicket;
use crate::datagram::{ClientHandshake, ConnectToken, DatagramError, Kind, Opener, Sealer};

/// How often the request (and the response) is resent while no answer comes.
const RESEND_EVERY: Duration = Duration::from_millis(250);

/// Why the datagram path could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UdpError {
    #[error("udp socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad connect token: {0}")]
    Token(DatagramError),
    #[error("no answer from {0} within {1:?} (UDP blocked?)")]
    NoAnswer(String, Duration),
}

/// A seated datagram session.
#[derive(Debug)]
pub struct UdpSession {
    pub socket: UdpSocket,
    pub to_server: Sealer,
    pub from_server: Opener,
    /// The handshake's last packet, resent until the server answers (it may be lost).
    response: Vec<u8>,
    answered: bool,
}

/// Runs the handshake with `ticket`, resending while nothing comes back, for at most `wait`.
pub async fn connect(ticket: &UdpTicket, wait: Duration) -> Result<UdpSession, UdpError> {
    let token = ConnectToken::from_text(&ticket.connect_token).map_err(UdpError::Token)?;
    let socket = UdpSocket::bind(if ticket.addr.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    })
    .await?;
    socket.connect(&ticket.addr).await?;
    let mut hs = ClientHandshake::new(token);
    let request = hs.request();
    let no_answer = || UdpError::NoAnswer(ticket.addr.clone(), wait);
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 1500];
    // Request until a challenge we can open comes back.
    let response = loop {
        socket.send(&request).await?;
        let until = (tokio::time::Instant::now() + RESEND_EVERY).min(deadline);
        if let Ok(Ok(n)) = tokio::time::timeout_at(until, socket.recv(&mut buf)).await
            && let Ok(r) = hs.on_challenge(&buf[..n])
        {
            break r;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(no_answer());
        }
    };
    socket.send(&response).await?;
    let (to_server, from_server) = hs.into_session();
    Ok(UdpSession {
        socket,
        to_server,
        from_server,
        response,
        answered: false,
    })
}

impl UdpSession {
    /// Sends a sealed ping until a sealed pong comes back. Until the server has answered
    /// once, the handshake's response goes first (the server seats the session when it
    /// arrives, and it may have been lost).
    pub async fn ping(&mut self, wait: Duration) -> Result<(), UdpError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = [0u8; 1500];
        loop {
            if !self.answered {
                self.socket.send(&self.response).await?;
            }
            let ping = self.to_server.seal(Kind::Payload, b"ping");
            self.socket.send(&ping).await?;
            let until = (tokio::time::Instant::now() + RESEND_EVERY).min(deadline);
            if let Ok(Ok(n)) = tokio::time::timeout_at(until, self.socket.recv(&mut buf)).await
                && let Ok((Kind::Payload, _, body)) = self.from_server.open(&buf[..n])
                && body == b"pong"
            {
                self.answered = true;
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(UdpError::NoAnswer(
                    self.socket
                        .peer_addr()
                        .map_or_else(|_| "?".into(), |a| a.to_string()),
                    wait,
                ));
            }
        }
    }
}
