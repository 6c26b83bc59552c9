//! A player's seat around its connection: join the match (or resume the seat), serve the
//! connection, then keep the seat for a reconnect or free it.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span};

use skirmish_shared::protocol::close_code;
use skirmish_shared::world::PlayerId;

use super::writer::write_close;
use super::{ConnectionContext, JoinKind, serve};
use crate::link::End;
use crate::r#match::jitter::InputRing;
use crate::r#match::seats::keep_for_reconnect;
use crate::r#match::{MatchCommand, MatchHandle};
use crate::socket;

/// Runs one connection from the upgraded socket to the end.
pub async fn run(
    upgraded: fastwebsockets::upgrade::UpgradeFut,
    join: JoinKind,
    ctx: ConnectionContext,
) {
    let stats = ctx.server.stats.clone();
    let ws = match upgraded.await {
        Ok(ws) => match socket::detach(ws.into_inner().into_inner()) {
            Ok(detached) => Some(detached),
            Err(e) => {
                debug!("taking over the upgraded socket failed: {e}");
                None
            }
        },
        Err(e) => {
            debug!("upgrade failed: {e}");
            None
        }
    };
    match join {
        JoinKind::Player {
            handle,
            seat,
            name,
            resume,
            reconnectable,
        } => {
            let Some(ws) = ws else {
                end_seat(&handle, seat, None, reconnectable, &ctx).await;
                return;
            };
            let inputs = Arc::new(InputRing::new(ctx.input_queue));
            let (reply_tx, reply_rx) = oneshot::channel();
            let cmd = MatchCommand::Join {
                name,
                resume,
                inputs: inputs.clone(),
                reply: reply_tx,
            };
            let player = match handle.commands.send(cmd).await {
                Ok(()) => reply_rx.await.ok(),
                Err(_) => None,
            };
            let Some(player) = player else {
                let _ = write_close(&ws.0, close_code::GOING_AWAY, "match closed", &stats).await;
                end_seat(&handle, seat, None, false, &ctx).await;
                return;
            };
            handle.seats().set_player(seat, player);
            let span = info_span!("player", match_id = handle.id, player_id = player.0);
            let end = serve(ws, Some((player, inputs)), &handle, Some(player), &ctx)
                .instrument(span)
                .await;
            end_seat(
                &handle,
                seat,
                Some(player),
                reconnectable && end == End::Abrupt,
                &ctx,
            )
            .await;
        }
        JoinKind::Spectator { slot, follow } => {
            let Some(ws) = ws else { return };
            let span = info_span!(
                "spectator",
                match_id = slot.handle.id,
                follow = follow.map(|p| p.0)
            );
            serve(ws, None, &slot.handle, follow, &ctx)
                .instrument(span)
                .await;
        }
    }
}

/// After a player's connection: keep the seat for a reconnect (abrupt drop, token seat,
/// grace > 0, match not over) or free it now.
async fn end_seat(
    handle: &MatchHandle,
    seat: u32,
    player: Option<PlayerId>,
    keep: bool,
    ctx: &ConnectionContext,
) {
    let keep = keep_for_reconnect(keep, ctx.reconnect_grace, handle.phase());
    if keep {
        handle
            .seats()
            .disconnect(seat, Instant::now() + ctx.reconnect_grace);
        if let Some(player) = player {
            let _ = handle
                .commands
                .send(MatchCommand::Disconnected { player })
                .await;
        }
    } else {
        let released = handle.seats().release(seat);
        if let Some(player) = player.or(released) {
            let _ = handle.commands.send(MatchCommand::Leave { player }).await;
        }
    }
}
