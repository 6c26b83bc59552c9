//! A Skirmish WebSocket client (feature `client`): joins a match over `GET /ws`, then sends
//! [`ClientMessage`]s and receives [`ServerMessage`]s. Used by the Bevy game, the bots and
//! the server's integration tests.
//!
//! A refused join (wrong protocol version, full match, unknown match) comes back as
//! [`ClientError::Refused`] with the HTTP status and the server's reason.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use fastwebsockets::{
    Frame, OpCode, Payload, Role, WebSocket, WebSocketError, WebSocketRead, WebSocketWrite,
};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{CONNECTION, HOST, UPGRADE};
use hyper::upgrade::Upgraded;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};

use crate::api::{MatchmakeRequest, MatchmakeResponse};
use crate::protocol::{
    self, ClientMessage, EnvelopeError, MAX_SERVER_MESSAGE_BYTES, PROTOCOL_VERSION, ServerMessage,
    percent_encode,
};

type Stream = TokioIo<Upgraded>;

/// Where and how to join.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// The server's base URL, e.g. `http://127.0.0.1:7777`.
    pub base_url: String,
    pub name: String,
    /// Join this match; `None` joins or creates one.
    pub match_id: Option<u32>,
    /// Protocol version to announce (tests use a wrong one on purpose).
    pub protocol_version: u32,
    /// `SO_RCVBUF` for the socket, bytes (tests of slow readers make it small).
    pub recv_buffer: Option<u32>,
    /// A join token from matchmaking; without one the server must run with `--open`.
    pub token: Option<String>,
    /// Watch `match_id` as a spectator.
    pub spectate: bool,
    /// As a spectator, see what this player sees (with a view radius) instead of everything.
    pub follow: Option<u32>,
}

impl JoinOptions {
    #[must_use]
    pub fn new(base_url: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            name: name.into(),
            match_id: None,
            protocol_version: PROTOCOL_VERSION,
            recv_buffer: None,
            token: None,
            spectate: false,
            follow: None,
        }
    }

    /// Options to join with a matchmaking answer.
    #[must_use]
    pub fn with_token(base_url: impl Into<String>, mm: &MatchmakeResponse) -> Self {
        let mut o = Self::new(base_url, mm.name.clone());
        o.token = Some(mm.token.clone());
        o
    }

    /// The upgrade request's path and query.
    #[must_use]
    pub fn path_and_query(&self) -> String {
        let mut q = format!("/ws?v={}", self.protocol_version);
        if let Some(t) = &self.token {
            q.push_str(&format!("&token={}", percent_encode(t)));
        } else if !self.spectate {
            q.push_str(&format!("&name={}", percent_encode(&self.name)));
        }
        if let Some(m) = self.match_id {
            q.push_str(&format!("&match={m}"));
        }
        if self.spectate {
            q.push_str("&spectate=1");
            if let Some(f) = self.follow {
                q.push_str(&format!("&follow={f}"));
            }
        }
        q
    }
}

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad server URL {0:?}: expected http://host:port or https://host:port")]
    BadUrl(String),
    #[error("cannot reach the server: {0}")]
    Connect(#[source] std::io::Error),
    #[error("HTTP handshake failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("the server refused the join ({status}): {reason}")]
    Refused { status: u16, reason: String },
    #[error("websocket error: {0}")]
    WebSocket(#[from] WebSocketError),
    #[error("server message does not decode: {0}")]
    Decode(#[from] EnvelopeError),
    #[error("the server closed the connection ({code}): {reason}")]
    Closed { code: u16, reason: String },
    #[error(transparent)]
    Tls(#[from] crate::client_tls::ClientTlsError),
    #[error("datagram transport: {0}")]
    Udp(String),
    #[error("raw frames need a WebSocket connection, and this one is UDP")]
    NotWebSocket,
}

/// Where a base URL points: `host:port`, and whether it is `https://` (or `wss://`).
#[derive(Debug, Clone)]
struct Target {
    authority: String,
    tls: bool,
}

impl Target {
    /// The host part, for TLS's server name.
    fn host(&self) -> &str {
        match self.authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => self
                .authority
                .rsplit_once(':')
                .map_or(&*self.authority, |(h, _)| h),
        }
    }
}

/// `host:port` of an `http(s)://host:port` (or `ws(s)://`) base URL.
fn target(base_url: &str) -> Result<Target, ClientError> {
    let (rest, tls) = if let Some(r) = base_url
        .strip_prefix("https://")
        .or_else(|| base_url.strip_prefix("wss://"))
    {
        (Some(r), true)
    } else {
        (
            base_url
                .strip_prefix("http://")
                .or_else(|| base_url.strip_prefix("ws://")),
            false,
        )
    };
    rest.map(|s| s.trim_end_matches('/'))
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .map(|a| Target {
            authority: a.to_string(),
            tls,
        })
        .ok_or_else(|| ClientError::BadUrl(base_url.to_string()))
}

/// Opens the connection (TCP, then TLS for `https://`) and runs the HTTP/1.1 handshake; the
/// connection task keeps going through an upgrade.
async fn http1<B>(
    target: &Target,
    recv_buffer: Option<u32>,
) -> Result<hyper::client::conn::http1::SendRequest<B>, ClientError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = open_tcp(&target.authority, recv_buffer).await?;
    tcp.set_nodelay(true).map_err(ClientError::Connect)?;
    if target.tls {
        let tls = crate::client_tls::connect(tcp, target.host()).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }
}

/// One plain HTTP/1.1 request to `base_url` + `path`; returns status and body (at most 1 MiB).
pub async fn http_request(
    base_url: &str,
    method: &str,
    path: &str,
    json_body: Option<Vec<u8>>,
) -> Result<(u16, Bytes), ClientError> {
    http_request_with(base_url, method, path, json_body, None).await
}

/// [`http_request`] with an `Authorization` header.
pub async fn http_request_with(
    base_url: &str,
    method: &str,
    path: &str,
    json_body: Option<Vec<u8>>,
    authorization: Option<&str>,
) -> Result<(u16, Bytes), ClientError> {
    let target = target(base_url)?;
    let mut sender = http1(&target, None).await?;
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, &target.authority);
    if json_body.is_some() {
        req = req.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    if let Some(auth) = authorization {
        req = req.header(hyper::header::AUTHORIZATION, auth);
    }
    let req = req
        .body(http_body_util::Full::new(Bytes::from(
            json_body.unwrap_or_default(),
        )))
        .map_err(|_| ClientError::BadUrl(format!("{base_url}{path}")))?;
    let response = sender.send_request(req).await?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), 1 << 20)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok((status, body))
}

/// `POST /api/matchmake`: a seat and a signed join token.
pub async fn matchmake(
    base_url: &str,
    name: &str,
    match_id: Option<u32>,
) -> Result<MatchmakeResponse, ClientError> {
    let body = serde_json::to_vec(&MatchmakeRequest {
        name: name.to_string(),
        match_id,
    })
    .map_err(|e| ClientError::BadUrl(e.to_string()))?;
    let (status, body) = http_request(base_url, "POST", "/api/matchmake", Some(body)).await?;
    json_answer(status, &body, "matchmaking answer")
}

/// A 200 answer's JSON body as `T`; any other status is a refusal with the server's reason.
fn json_answer<T: serde::de::DeserializeOwned>(
    status: u16,
    body: &[u8],
    what: &str,
) -> Result<T, ClientError> {
    if status != 200 {
        let reason = String::from_utf8_lossy(body).into_owned();
        return Err(ClientError::Refused { status, reason });
    }
    serde_json::from_slice(body).map_err(|e| ClientError::Refused {
        status,
        reason: format!("bad {what}: {e}"),
    })
}

/// `GET /api/matches`: the matches the server runs (the lobby's list).
pub async fn list_matches(base_url: &str) -> Result<Vec<crate::api::MatchInfo>, ClientError> {
    let (status, body) = http_request(base_url, "GET", "/api/matches", None).await?;
    json_answer(status, &body, "match list")
}

/// `POST /api/udp-ticket`: a fresh datagram ticket for the seat of join token `token` (to
/// come back over UDP after a session timed out: a connect token works from one address).
pub async fn udp_ticket(base_url: &str, token: &str) -> Result<crate::api::UdpTicket, ClientError> {
    let (status, body) = http_request_with(
        base_url,
        "POST",
        "/api/udp-ticket",
        None,
        Some(&format!("Bearer {token}")),
    )
    .await?;
    json_answer(status, &body, "datagram ticket")
}

/// `POST /api/matches`: a new match; returns its id. `admin_key` is the server's operator key
/// (needed unless the server runs with `--open`).
pub async fn create_match(base_url: &str, admin_key: Option<&str>) -> Result<u32, ClientError> {
    let auth = admin_key.map(|k| format!("Bearer {k}"));
    let (status, body) =
        http_request_with(base_url, "POST", "/api/matches", None, auth.as_deref()).await?;
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["id"].as_u64());
    match (status, id) {
        (201, Some(id)) => Ok(id as u32),
        _ => Err(ClientError::Refused {
            status,
            reason: String::from_utf8_lossy(&body).into_owned(),
        }),
    }
}

/// `POST /api/matches/{id}/spectate`: a spectator token for the match.
pub async fn spectator_token(base_url: &str, match_id: u32) -> Result<String, ClientError> {
    let path = format!("/api/matches/{match_id}/spectate");
    let (status, body) = http_request(base_url, "POST", &path, None).await?;
    let token = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["token"].as_str().map(str::to_string));
    match (status, token) {
        (200, Some(t)) => Ok(t),
        _ => Err(ClientError::Refused {
            status,
            reason: String::from_utf8_lossy(&body).into_owned(),
        }),
    }
}

/// Opens the WebSocket: TCP connect, HTTP upgrade, and on refusal the server's reason. A
/// spectator without a token gets one from the API first.
pub async fn connect(opts: &JoinOptions) -> Result<Connection, ClientError> {
    let upgraded = upgrade(opts).await?;
    let mut ws = WebSocket::after_handshake(TokioIo::new(upgraded), Role::Client);
    ws.set_auto_close(false);
    ws.set_auto_pong(false);
    ws.set_max_message_size(MAX_SERVER_MESSAGE_BYTES);
    let (read, write) = ws.split(tokio::io::split);
    Ok(Connection {
        rx: Receiver {
            inner: RxInner::Ws(read),
        },
        tx: Sender {
            inner: TxInner::Ws(write),
        },
    })
}

/// Upgrades like [`connect`], then hands over the plain TCP socket itself (non-blocking,
/// outside any runtime) and the bytes the server sent past the upgrade's response: for a
/// caller that speaks WebSocket frames by hand (the bots' driver). Plain `http://` only.
pub async fn connect_plain(
    opts: &JoinOptions,
) -> Result<(std::net::TcpStream, Vec<u8>), ClientError> {
    if target(&opts.base_url)?.tls {
        return Err(ClientError::BadUrl(format!(
            "{}: a raw socket needs plain http://",
            opts.base_url
        )));
    }
    let upgraded = upgrade(opts).await?;
    let parts = upgraded
        .downcast::<TokioIo<TcpStream>>()
        .map_err(|_| ClientError::BadUrl("the upgraded connection is not a TCP stream".into()))?;
    let stream = parts
        .io
        .into_inner()
        .into_std()
        .map_err(ClientError::Connect)?;
    Ok((stream, parts.read_buf.to_vec()))
}

/// The HTTP upgrade of `/ws`.
async fn upgrade(opts: &JoinOptions) -> Result<Upgraded, ClientError> {
    if opts.spectate
        && opts.token.is_none()
        && let Some(id) = opts.match_id
    {
        let mut with_token = opts.clone();
        with_token.token = Some(spectator_token(&opts.base_url, id).await?);
        return Box::pin(upgrade(&with_token)).await;
    }
    let target = target(&opts.base_url)?;
    let req = Request::builder()
        .method("GET")
        .uri(opts.path_and_query())
        .header(HOST, &target.authority)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13")
        .body(Empty::<Bytes>::new())
        .map_err(|_| ClientError::BadUrl(opts.base_url.clone()))?;

    let mut sender = http1(&target, opts.recv_buffer).await?;
    let mut response = sender.send_request(req).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), 4096).collect().await;
        let reason = body
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        return Err(ClientError::Refused { status, reason });
    }
    Ok(hyper::upgrade::on(&mut response).await?)
}

/// Which transport to play over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// UDP datagrams (the matchmaking answer's ticket); fails if none gets through.
    Udp,
    /// WebSocket over TCP.
    Ws,
    /// UDP, falling back to WebSocket when no datagram gets through within
    /// [`AUTO_UDP_WAIT`] (UDP blocked, or the server has no datagram endpoint).
    #[default]
    Auto,
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "udp" => Ok(Self::Udp),
            "ws" => Ok(Self::Ws),
            "auto" => Ok(Self::Auto),
            other => Err(format!("unknown transport {other:?}: udp, ws or auto")),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Udp => "udp",
            Self::Ws => "ws",
            Self::Auto => "auto",
        })
    }
}

/// How long `auto` waits for the datagram path before it falls back to WebSocket.
pub const AUTO_UDP_WAIT: Duration = Duration::from_millis(1500);
/// How long `udp` waits for the datagram path.
pub const UDP_WAIT: Duration = Duration::from_secs(5);

/// Joins with a matchmaking answer over `transport`; `link` simulates a network per packet
/// on UDP (over WebSocket it is the caller's: TCP cannot lose a message).
pub async fn connect_transport(
    base_url: &str,
    mm: &MatchmakeResponse,
    transport: Transport,
    link: crate::link_sim::LinkConfig,
) -> Result<Connection, ClientError> {
    let udp_wait = match transport {
        Transport::Ws => None,
        Transport::Udp => Some(UDP_WAIT),
        Transport::Auto => Some(AUTO_UDP_WAIT),
    };
    if let Some(wait) = udp_wait {
        let attempt = match &mm.udp {
            Some(ticket) => crate::client_udp::join(ticket, wait, link)
                .await
                .map_err(|e| ClientError::Udp(e.to_string())),
            None => Err(ClientError::Udp(
                "the server offers no datagram endpoint".into(),
            )),
        };
        match attempt {
            Ok((rx, tx)) => {
                return Ok(Connection {
                    rx: Receiver {
                        inner: RxInner::Udp(rx),
                    },
                    tx: Sender {
                        inner: TxInner::Udp(tx),
                    },
                });
            }
            Err(e) if transport == Transport::Udp => return Err(e),
            Err(_) => {} // auto: fall back
        }
    }
    connect(&JoinOptions::with_token(base_url.to_string(), mm)).await
}

async fn open_tcp(authority: &str, recv_buffer: Option<u32>) -> Result<TcpStream, ClientError> {
    let mut last_err = None;
    for addr in tokio::net::lookup_host(authority)
        .await
        .map_err(ClientError::Connect)?
    {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        };
        let socket = socket.map_err(ClientError::Connect)?;
        if let Some(size) = recv_buffer {
            socket
                .set_recv_buffer_size(size)
                .map_err(ClientError::Connect)?;
        }
        match socket.connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last_err = Some(e),
        }
    }
    Err(ClientError::Connect(last_err.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
    })))
}

/// An open connection; [`Connection::split`] gives halves for concurrent reading and writing.
#[derive(Debug)]
pub struct Connection {
    pub rx: Receiver,
    pub tx: Sender,
}

impl Connection {
    #[must_use]
    pub fn split(self) -> (Receiver, Sender) {
        (self.rx, self.tx)
    }
}

/// What the server sent.
#[derive(Debug)]
pub enum Incoming {
    /// A decoded message and the size of its frame payload in bytes.
    Message(ServerMessage, usize),
    /// The server sent a close frame (answer it with [`Sender::close`]).
    Close { code: u16, reason: String },
}

/// The reading half (of a WebSocket, or of a datagram session).
pub struct Receiver {
    inner: RxInner,
}

enum RxInner {
    Ws(WebSocketRead<ReadHalf<Stream>>),
    Udp(crate::client_udp::UdpReceiver),
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receiver")
    }
}

type NoSend = Pin<Box<dyn Future<Output = Result<(), WebSocketError>> + Send>>;

impl Receiver {
    /// The next message or close. Pings are ignored (the server sends none).
    pub async fn recv(&mut self) -> Result<Incoming, ClientError> {
        let read = match &mut self.inner {
            RxInner::Ws(read) => read,
            RxInner::Udp(udp) => return udp.recv().await,
        };
        loop {
            // Auto-close and auto-pong are off, so there are no obligated sends.
            let frame = read
                .read_frame::<NoSend, WebSocketError>(&mut |_| Box::pin(async { Ok(()) }))
                .await?;
            match frame.opcode {
                OpCode::Binary => {
                    let len = frame.payload.len();
                    return Ok(Incoming::Message(
                        protocol::decode_server(&frame.payload)?,
                        len,
                    ));
                }
                OpCode::Close => {
                    let (code, reason) = parse_close(&frame.payload);
                    return Ok(Incoming::Close { code, reason });
                }
                _ => {}
            }
        }
    }

    /// Like [`Receiver::recv`], but a close becomes [`ClientError::Closed`].
    pub async fn recv_message(&mut self) -> Result<(ServerMessage, usize), ClientError> {
        match self.recv().await? {
            Incoming::Message(m, n) => Ok((m, n)),
            Incoming::Close { code, reason } => Err(ClientError::Closed { code, reason }),
        }
    }
}

/// Splits a close payload into code and reason (1005 "no status" when empty).
#[must_use]
pub fn parse_close(payload: &[u8]) -> (u16, String) {
    if payload.len() < 2 {
        return (1005, String::new());
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    (code, String::from_utf8_lossy(&payload[2..]).into_owned())
}

/// The writing half (of a WebSocket, or of a datagram session).
pub struct Sender {
    inner: TxInner,
}

enum TxInner {
    Ws(WebSocketWrite<WriteHalf<Stream>>),
    Udp(crate::client_udp::UdpSender),
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sender")
    }
}

impl Sender {
    /// Sends one message as a binary frame.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        if let TxInner::Udp(udp) = &mut self.inner {
            udp.send(msg);
            return Ok(());
        }
        self.send_frame(Frame::binary(Payload::Owned(protocol::encode(msg))))
            .await
    }

    /// Sends any frame (tests send text, garbage and oversized frames on purpose); over UDP
    /// there are no frames, and this fails.
    pub async fn send_frame(&mut self, frame: Frame<'_>) -> Result<(), ClientError> {
        match &mut self.inner {
            TxInner::Ws(write) => write.write_frame(frame).await?,
            TxInner::Udp(_) => return Err(ClientError::NotWebSocket),
        }
        Ok(())
    }

    /// Sends a close frame with `code` and `reason` (over UDP: the session's disconnect).
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        if let TxInner::Udp(udp) = &mut self.inner {
            udp.close();
            return Ok(());
        }
        self.send_frame(Frame::close(code, reason.as_bytes())).await
    }

    /// Datagram bytes sent so far (UDP); 0 over WebSocket (count frames there).
    #[must_use]
    pub fn bytes_sent(&self) -> u64 {
        match &self.inner {
            TxInner::Ws(_) => 0,
            TxInner::Udp(u) => u.bytes_sent(),
        }
    }

    /// Which transport this connection uses.
    #[must_use]
    pub fn transport(&self) -> Transport {
        match self.inner {
            TxInner::Ws(_) => Transport::Ws,
            TxInner::Udp(_) => Transport::Udp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_percent_encoded() {
        let mut o = JoinOptions::new("http://127.0.0.1:1", "a b&é");
        o.match_id = Some(3);
        assert_eq!(
            o.path_and_query(),
            format!("/ws?v={PROTOCOL_VERSION}&name=a%20b%26%C3%A9&match=3")
        );
        assert_eq!(
            parse_close(&[0x03, 0xE8, b'o', b'k']),
            (1000, "ok".to_string())
        );
        assert_eq!(parse_close(&[]).0, 1005);
    }
}
