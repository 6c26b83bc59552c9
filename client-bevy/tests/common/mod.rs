//! What the client's test files share.

use skirmish_server::{Config, Server};
use skirmish_shared::api::MatchmakeResponse;
use skirmish_shared::client::{self, Connection, Transport};

/// A server on 127.0.0.1:0 (matchmaking required) with one player, "first", already in a
/// match over WebSocket: what a lobby lists. Keep the connection alive while it should play.
pub async fn server_with_a_player() -> (Server, MatchmakeResponse, Connection) {
    let mut config = Config::ephemeral();
    config.open = false;
    let server = Server::start(config).await.expect("server");
    let url = server.base_url();
    let mm = client::matchmake(&url, "first", None)
        .await
        .expect("matchmake");
    let first = client::connect_transport(&url, &mm, Transport::Ws, Default::default())
        .await
        .expect("the first player connects");
    (server, mm, first)
}
