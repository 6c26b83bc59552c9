//! The Agones lifecycle against a gRPC test double that speaks the SDK sidecar's protocol
//! (service paths `agones.dev.sdk.SDK/*` and `agones.dev.sdk.alpha.SDK/*`, protobuf bodies):
//! Ready once listening, Health while ticking, PlayerConnect/PlayerDisconnect, Shutdown last.

#![cfg(feature = "agones")]

mod common;

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use common::*;
use skirmish_server::Config;
use tonic::codegen::{BoxFuture, Service, StdError, http};
use tonic::server::{ClientStreamingService, Grpc, NamedService, UnaryService};

#[derive(Clone, PartialEq, prost::Message)]
struct Empty {}

#[derive(Clone, PartialEq, prost::Message)]
struct PlayerId {
    #[prost(string, tag = "1")]
    player_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Bool {
    #[prost(bool, tag = "1")]
    value: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Count {
    #[prost(int64, tag = "1")]
    count: i64,
}

type Calls = Arc<Mutex<Vec<String>>>;

fn log(calls: &Calls, what: String) {
    calls.lock().expect("lock").push(what);
}

/// Answers a unary call with `reply`, logging `name` and the request.
struct Unary<Req, Resp> {
    calls: Calls,
    name: &'static str,
    reply: Resp,
    describe: fn(&Req) -> String,
}

impl<Req: Send + 'static, Resp: Clone + Send + 'static> UnaryService<Req> for Unary<Req, Resp> {
    type Response = Resp;
    type Future = BoxFuture<tonic::Response<Resp>, tonic::Status>;
    fn call(&mut self, request: tonic::Request<Req>) -> Self::Future {
        log(
            &self.calls,
            format!("{}{}", self.name, (self.describe)(request.get_ref())),
        );
        let reply = self.reply.clone();
        Box::pin(async move { Ok(tonic::Response::new(reply)) })
    }
}

/// The client-streaming Health call: logs every ping.
struct Health(Calls);

impl ClientStreamingService<Empty> for Health {
    type Response = Empty;
    type Future = BoxFuture<tonic::Response<Empty>, tonic::Status>;
    fn call(&mut self, request: tonic::Request<tonic::Streaming<Empty>>) -> Self::Future {
        let calls = self.0.clone();
        Box::pin(async move {
            let mut stream = request.into_inner();
            while let Ok(Some(_)) = stream.message().await {
                log(&calls, "Health".into());
            }
            Ok(tonic::Response::new(Empty {}))
        })
    }
}

fn unimplemented() -> http::Response<tonic::body::BoxBody> {
    let mut r = http::Response::new(tonic::body::empty_body());
    r.headers_mut().insert(
        "grpc-status",
        http::HeaderValue::from(tonic::Code::Unimplemented as i32),
    );
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    r
}

fn none<T>(_: &T) -> String {
    String::new()
}

/// Routes one gRPC request of either service.
fn route<B>(
    calls: Calls,
    req: http::Request<B>,
) -> BoxFuture<http::Response<tonic::body::BoxBody>, std::convert::Infallible>
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    let path = req.uri().path().to_string();
    Box::pin(async move {
        let res = match path.as_str() {
            "/agones.dev.sdk.SDK/GetGameServer" => {
                Grpc::new(tonic::codec::ProstCodec::default())
                    .unary(
                        Unary {
                            calls,
                            name: "GetGameServer",
                            reply: agones::GameServer::default(),
                            describe: none::<Empty>,
                        },
                        req,
                    )
                    .await
            }
            "/agones.dev.sdk.SDK/Ready" => {
                Grpc::new(tonic::codec::ProstCodec::default())
                    .unary(
                        Unary {
                            calls,
                            name: "Ready",
                            reply: Empty {},
                            describe: none::<Empty>,
                        },
                        req,
                    )
                    .await
            }
            "/agones.dev.sdk.SDK/Shutdown" => {
                Grpc::new(tonic::codec::ProstCodec::default())
                    .unary(
                        Unary {
                            calls,
                            name: "Shutdown",
                            reply: Empty {},
                            describe: none::<Empty>,
                        },
                        req,
                    )
                    .await
            }
            "/agones.dev.sdk.SDK/Health" => {
                Grpc::new(tonic::codec::ProstCodec::default())
                    .client_streaming(Health(calls), req)
                    .await
            }
            "/agones.dev.sdk.alpha.SDK/SetPlayerCapacity" => {
                Grpc::new(tonic::codec::ProstCodec::default())
                    .unary(
                        Unary {
                            calls,
                            name: "SetPlayerCapacity",
                            reply: Empty {},
                            describe: |c: &Count| format!(" {}", c.count),
                        },
                        req,
                    )
                    .await
            }
            "/agones.dev.sdk.alpha.SDK/PlayerConnect" => {
                Grpc::new(tonic::codec::ProstCodec::default())
                    .unary(
                        Unary {
                            calls,
                            name: "PlayerConnect",
                            reply: Bool { value: true },
                            describe: |p: &PlayerId| format!(" {}", p.player_id),
                        },
                        req,
                    )
                    .await
            }
            "/agones.dev.sdk.alpha.SDK/PlayerDisconnect" => {
                Grpc::new(tonic::codec::ProstCodec::default())
                    .unary(
                        Unary {
                            calls,
                            name: "PlayerDisconnect",
                            reply: Bool { value: true },
                            describe: |p: &PlayerId| format!(" {}", p.player_id),
                        },
                        req,
                    )
                    .await
            }
            other => {
                log(&calls, format!("unimplemented {other}"));
                unimplemented()
            }
        };
        Ok(res)
    })
}

macro_rules! service {
    ($name:ident, $path:literal) => {
        #[derive(Clone)]
        struct $name(Calls);
        impl NamedService for $name {
            const NAME: &'static str = $path;
        }
        impl<B> Service<http::Request<B>> for $name
        where
            B: http_body::Body + Send + 'static,
            B::Error: Into<StdError> + Send + 'static,
        {
            type Response = http::Response<tonic::body::BoxBody>;
            type Error = std::convert::Infallible;
            type Future = BoxFuture<Self::Response, Self::Error>;
            fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, req: http::Request<B>) -> Self::Future {
                route(self.0.clone(), req)
            }
        }
    };
}

service!(SdkService, "agones.dev.sdk.SDK");
service!(AlphaService, "agones.dev.sdk.alpha.SDK");

/// Starts the double; returns its port and the call log.
async fn sidecar() -> (u16, Calls) {
    let calls: Calls = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let incoming = tonic::transport::server::TcpIncoming::from_listener(listener, true, None)
        .expect("incoming");
    let server = tonic::transport::Server::builder()
        .add_service(SdkService(calls.clone()))
        .add_service(AlphaService(calls.clone()))
        .serve_with_incoming(incoming);
    tokio::spawn(server);
    (port, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_health_players_and_shutdown_in_order() {
    let (port, calls) = sidecar().await;
    let mut config = Config::ephemeral();
    config.agones = true;
    config.agones_sdk_port = port;
    config.max_connections = 100;
    let server = start(config).await;
    let mut p = join(&server, "agent", None).await;
    let player = format!("{}/{}", p.match_id, p.id.0);
    // Play past at least one health period.
    let until = tokio::time::Instant::now() + Duration::from_millis(2500);
    while tokio::time::Instant::now() < until {
        p.next_world().await;
    }
    p.tx.close(1000, "bye").await.expect("close");
    let _ = p.expect_close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server
        .drain(Duration::from_millis(200))
        .await
        .expect("drained");

    let calls = calls.lock().expect("lock").clone();
    let pos = |name: &str| {
        calls
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("no {name} in {calls:?}"))
    };
    assert!(pos("GetGameServer") < pos("Ready"), "{calls:?}");
    assert!(pos("SetPlayerCapacity 100") < pos("Ready"));
    assert!(pos("Ready") < pos(&format!("PlayerConnect {player}")));
    assert!(pos(&format!("PlayerConnect {player}")) < pos(&format!("PlayerDisconnect {player}")));
    assert!(
        calls.iter().any(|c| c == "Health"),
        "health reported while ticking: {calls:?}"
    );
    assert_eq!(
        calls.last().map(String::as_str),
        Some("Shutdown"),
        "{calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.starts_with("unimplemented")),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_sidecar_is_a_clear_start_error() {
    let mut config = Config::ephemeral();
    config.agones = true;
    // Nothing listens there; the SDK retries for up to 30 s, so bound the wait.
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    config.agones_sdk_port = unused;
    let r = tokio::time::timeout(
        Duration::from_secs(45),
        skirmish_server::Server::start(config),
    )
    .await
    .expect("gives up in time");
    let err = r.expect_err("no sidecar");
    assert!(err.to_string().contains("Agones SDK sidecar"), "{err}");
}
