//! A connection's write side, shared by its writer task and its match's loop.
//!
//! In the steady state the match loop writes each tick's shared, pre-framed snapshot straight
//! into every socket: one non-blocking `write` per connection, no task wake-up, no timer. The
//! connection's writer task sleeps meanwhile, having *lent* its socket and cursor here. It
//! takes them back when something needs it: a control reply, a write that did not go through
//! whole (it finishes the frame under a deadline and catches up with the latest tick, so a
//! slow reader skips ticks instead of queueing them), the end of the match.
//!
//! Lending is checked against the match's latest publication under the outlet's lock, and
//! the match publishes before it offers, so no tick falls between the two.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::{Notify, watch};

use crate::events::EventLog;
use crate::fanout::{Cursor, TickOutput};
use crate::socket::{self, Socket};
use crate::stats::Stats;

/// What the writer task lends to the match while it sleeps.
#[derive(Debug)]
pub struct Lent {
    pub sink: Socket,
    pub cursor: Cursor,
}

/// What the writer task gets back.
#[derive(Debug)]
pub struct Returned {
    pub lent: Lent,
    /// The rest of a frame the match began but could not finish: written first.
    pub unsent: Option<Bytes>,
    /// A write failed: the socket is gone.
    pub failed: bool,
}

/// One connection's outlet (see the module docs).
#[derive(Default)]
pub struct Outlet {
    slot: Mutex<Slot>,
    wake: Notify,
}

impl std::fmt::Debug for Outlet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outlet").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Slot {
    lent: Option<Lent>,
    unsent: Option<Bytes>,
    failed: bool,
}

impl Outlet {
    fn slot(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writer: lends the socket to the match, unless the match has published a tick past
    /// `lent.cursor` (then it is handed back to catch up with first).
    pub fn lend(&self, lent: Lent, outputs: &watch::Receiver<Arc<TickOutput>>) -> Result<(), Lent> {
        let mut slot = self.slot();
        let latest = outputs.borrow().tick();
        if lent.cursor.last.as_ref().map(|w| w.tick) != Some(latest) {
            return Err(lent);
        }
        slot.lent = Some(lent);
        Ok(())
    }

    /// Writer: takes the socket back (`None` if it was not lent).
    pub fn take_back(&self) -> Option<Returned> {
        let mut slot = self.slot();
        let lent = slot.lent.take()?;
        Some(Returned {
            lent,
            unsent: slot.unsent.take(),
            failed: std::mem::take(&mut slot.failed),
        })
    }

    /// Writer: waits until the match needs it (or a wake was stored since the last wait).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Wakes the writer task.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Match: delivers `out` if the socket is lent and idle. A write that does not go through
    /// whole leaves the rest to the writer task, woken for it; the end of the match is the
    /// writer's to send.
    pub fn offer(&self, out: &TickOutput, log: &Mutex<EventLog>, stats: &Stats) {
        let mut slot = self.slot();
        if slot.unsent.is_some() || slot.failed {
            return;
        }
        let Some(lent) = slot.lent.as_mut() else {
            return; // the writer has the socket; it catches up by itself
        };
        if out.ended.is_some() {
            drop(slot);
            self.wake();
            return;
        }
        let Some(frame) = lent.cursor.advance(out, log, stats) else {
            return;
        };
        stats.count_sent(frame.len());
        match socket::try_write(&lent.sink, &frame) {
            Ok(n) if n == frame.len() => return,
            Ok(n) => slot.unsent = Some(frame.slice(n..)),
            Err(_) => slot.failed = true,
        }
        drop(slot);
        self.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skirmish_shared::rules::Params;
    use skirmish_shared::sim::Game;
    use skirmish_shared::world::WorldState;

    fn outputs(worlds: &[Arc<WorldState>]) -> Vec<Arc<TickOutput>> {
        let params = Params::default();
        worlds
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let prev = i.checked_sub(1).map(|p| &*worlds[p]);
                Arc::new(TickOutput::new(
                    w.clone(),
                    prev,
                    None,
                    params,
                    Vec::new(),
                    1,
                ))
            })
            .collect()
    }

    fn worlds(n: usize) -> Vec<Arc<WorldState>> {
        let mut g = Game::new(3, Params::default());
        g.add_player("a".into());
        (0..n)
            .map(|_| {
                g.step(|_| None);
                Arc::new(g.world.clone())
            })
            .collect()
    }

    #[tokio::test]
    async fn a_lent_socket_gets_each_tick_inline_and_a_full_one_wakes_the_writer() {
        use std::io::Read;
        let outs = outputs(&worlds(4));
        let (tx, rx) = watch::channel(outs[0].clone());
        let log = Mutex::new(EventLog::default());
        let stats = Stats::default();
        let (server, mut client) = socket::test_pair();
        let outlet = Outlet::default();
        let lent = Lent {
            sink: server.clone(),
            cursor: Cursor::at(&outs[0]),
        };
        assert!(outlet.lend(lent, &rx).is_ok());

        tx.send_replace(outs[1].clone());
        outlet.offer(&outs[1], &log, &stats);
        assert_eq!(stats.messages_out.get(), 1, "written inline");
        let first = outs[1].delta_frame.clone().expect("delta");
        let mut got = vec![0u8; first.len()];
        client.read_exact(&mut got).expect("the client receives it");
        assert_eq!(got, first, "the shared frame, as is");

        let mut woken = std::pin::pin!(outlet.woken());
        assert!(
            futures_poll(&mut woken).is_pending(),
            "no wake while all is well"
        );

        // The client stops reading: fill its receive and our send buffer.
        let block = vec![0u8; 1 << 16];
        let mut rounds = 0;
        while socket::try_write(&server, &block).expect("write") > 0 {
            rounds += 1;
            assert!(rounds < 10_000, "the buffers never filled");
        }
        tx.send_replace(outs[2].clone());
        outlet.offer(&outs[2], &log, &stats);
        assert!(
            futures_poll(&mut woken).is_ready(),
            "a short write wakes the writer"
        );
        let back = outlet.take_back().expect("lent");
        let unsent = back.unsent.expect("the rest of the frame is the writer's");
        let second = outs[2].delta_frame.clone().expect("delta");
        assert!(
            !unsent.is_empty() && second.ends_with(&unsent),
            "the frame's unwritten tail"
        );
        assert_eq!(
            back.lent.cursor.last.as_ref().map(|w| w.tick),
            Some(outs[2].tick())
        );
        let again = outlet.lend(back.lent, &rx);
        assert!(again.is_ok(), "at the latest tick, it can be lent again");
    }

    #[tokio::test]
    async fn lending_behind_the_latest_tick_is_refused() {
        let outs = outputs(&worlds(3));
        let (_tx, rx) = watch::channel(outs[2].clone());
        let outlet = Outlet::default();
        let (server, _client) = socket::test_pair();
        let lent = Lent {
            sink: server,
            cursor: Cursor::at(&outs[1]),
        };
        assert!(
            outlet.lend(lent, &rx).is_err(),
            "tick 2 was published: catch up first"
        );
        assert!(outlet.take_back().is_none());
    }

    fn futures_poll<F: std::future::Future>(
        f: &mut std::pin::Pin<&mut F>,
    ) -> std::task::Poll<F::Output> {
        f.as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    }
}
