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

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use tokio::sync::{Notify, watch};

use crate::events::EventLog;
use crate::fanout::{Cursor, TickOutput};
use crate::stats::Stats;

/// The socket's write half.
pub type Sink = Pin<Box<dyn AsyncWrite + Send>>;

/// What the writer task lends to the match while it sleeps.
pub struct Lent {
    pub sink: Sink,
    pub cursor: Cursor,
}

impl std::fmt::Debug for Lent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lent")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
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
        stats.messages_out.inc();
        stats.bytes_out.add(frame.len() as u64);
        match try_write(&mut lent.sink, &frame) {
            Ok(n) if n == frame.len() => return,
            Ok(n) => slot.unsent = Some(frame.slice(n..)),
            Err(_) => slot.failed = true,
        }
        drop(slot);
        self.wake();
    }
}

/// One non-blocking write attempt: the bytes written, 0 if the socket would block.
fn try_write(sink: &mut Sink, bytes: &[u8]) -> io::Result<usize> {
    // A no-op waker: if the socket is full, the writer task polls again with its own.
    let mut cx = Context::from_waker(Waker::noop());
    match sink.as_mut().poll_write(&mut cx, bytes) {
        Poll::Ready(Ok(0)) if !bytes.is_empty() => Err(io::ErrorKind::WriteZero.into()),
        Poll::Ready(r) => r,
        Poll::Pending => Ok(0),
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
                Arc::new(TickOutput::new(w.clone(), prev, None, params, Vec::new(), 1))
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
        let outs = outputs(&worlds(4));
        let (tx, rx) = watch::channel(outs[0].clone());
        let log = Mutex::new(EventLog::default());
        let stats = Stats::default();
        let first = outs[1].delta_frame.clone().expect("delta");
        let second = outs[2].delta_frame.clone().expect("delta");
        // A pipe with room for the first delta and half the second: the reader never reads.
        let (client, server) = tokio::io::duplex(first.len() + second.len() / 2);
        let outlet = Outlet::default();
        let lent = Lent {
            sink: Box::pin(server),
            cursor: Cursor::at(&outs[0]),
        };
        assert!(outlet.lend(lent, &rx).is_ok());

        tx.send_replace(outs[1].clone());
        outlet.offer(&outs[1], &log, &stats);
        assert_eq!(stats.messages_out.get(), 1, "written inline");

        let mut woken = std::pin::pin!(outlet.woken());
        assert!(futures_poll(&mut woken).is_pending(), "no wake while all is well");

        tx.send_replace(outs[2].clone());
        outlet.offer(&outs[2], &log, &stats);
        assert!(futures_poll(&mut woken).is_ready(), "a short write wakes the writer");
        let back = outlet.take_back().expect("lent");
        let unsent = back.unsent.expect("the rest of the frame is the writer's");
        assert_eq!(unsent, second.slice(second.len() / 2..), "the frame's unwritten tail");
        assert_eq!(back.lent.cursor.last.as_ref().map(|w| w.tick), Some(outs[2].tick()));
        drop(client);
    }

    #[tokio::test]
    async fn lending_behind_the_latest_tick_is_refused() {
        let outs = outputs(&worlds(3));
        let (_tx, rx) = watch::channel(outs[2].clone());
        let outlet = Outlet::default();
        let (_client, server) = tokio::io::duplex(1024);
        let lent = Lent {
            sink: Box::pin(server),
            cursor: Cursor::at(&outs[1]),
        };
        assert!(outlet.lend(lent, &rx).is_err(), "tick 2 was published: catch up first");
        assert!(outlet.take_back().is_none());
    }

    fn futures_poll<F: std::future::Future>(f: &mut Pin<&mut F>) -> Poll<F::Output> {
        f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }
}
