//! A connection's read side, lent to its match's loop.
//!
//! A reader woken by the runtime for every input that arrives costs a task wake-up, a poll
//! of the connection task and its `select!`, per input. Instead the connection lends its
//! reader (a future that parses and forwards whatever has arrived, then waits) to the match,
//! which polls every lent reader once at the start of each tick, with a no-op waker: inputs
//! are read when they are needed, in one pass, and nothing is woken per input.
//!
//! When the reader finishes (close, protocol error, peer gone) the match stores its result
//! and wakes the connection task. The connection takes the reader back to drive it itself
//! when the match can no longer poll it (its writer ended: match over, server shutting down,
//! socket stalled), e.g. to wait for the peer's close frame.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;

/// A reader future: runs until the connection's read side ends, with how it ended.
pub type ReadTask<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One connection's inlet (see the module docs).
pub struct Inlet<T> {
    slot: Mutex<Slot<T>>,
    finished: Notify,
}

enum Slot<T> {
    Lent(ReadTask<T>),
    Finished(T),
    /// Taken back by the connection, or its result collected.
    Empty,
}

impl<T> std::fmt::Debug for Inlet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inlet").finish_non_exhaustive()
    }
}

impl<T: Send> Inlet<T> {
    /// An inlet with `reader` lent to the match.
    #[must_use]
    pub fn new(reader: ReadTask<T>) -> Self {
        Self {
            slot: Mutex::new(Slot::Lent(reader)),
            finished: Notify::new(),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Match: lets the reader process what has arrived. A finished reader's result is kept
    /// for the connection, which is woken.
    pub fn poll_reader(&self) {
        let mut slot = self.slot();
        let Slot::Lent(reader) = &mut *slot else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(end) = reader.as_mut().poll(&mut cx) {
            *slot = Slot::Finished(end);
            drop(slot);
            self.finished.notify_one();
        }
    }

    /// Connection: waits for the reader to finish under the match's polling.
    pub async fn finished(&self) {
        self.finished.notified().await;
    }

    /// Connection: takes the reader back (`Ok`), or its result if it already finished
    /// (`Err`); `None` if either was taken before.
    pub fn take_back(&self) -> Option<Result<ReadTask<T>, T>> {
        match std::mem::replace(&mut *self.slot(), Slot::Empty) {
            Slot::Lent(r) => Some(Ok(r)),
            Slot::Finished(end) => Some(Err(end)),
            Slot::Empty => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn the_match_drives_the_reader_and_the_connection_gets_its_result() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(8);
        let seen = Arc::new(AtomicU32::new(0));
        let counted = seen.clone();
        let inlet = Arc::new(Inlet::new(Box::pin(async move {
            while let Some(n) = rx.recv().await {
                counted.fetch_add(n, Ordering::Relaxed);
            }
            "closed"
        })));
        tx.try_send(2).expect("room");
        tx.try_send(3).expect("room");
        assert_eq!(
            seen.load(Ordering::Relaxed),
            0,
            "nothing runs until the match polls"
        );
        inlet.poll_reader();
        assert_eq!(
            seen.load(Ordering::Relaxed),
            5,
            "one poll reads all that arrived"
        );

        let waiter = tokio::spawn({
            let inlet = inlet.clone();
            async move {
                inlet.finished().await;
                inlet.take_back()
            }
        });
        drop(tx);
        inlet.poll_reader();
        let got = waiter.await.expect("joins");
        assert!(
            matches!(got, Some(Err("closed"))),
            "the result is the connection's"
        );
        assert!(inlet.take_back().is_none());
    }

    #[tokio::test]
    async fn a_reader_taken_back_is_no_longer_polled_by_the_match() {
        let polls = Arc::new(AtomicU32::new(0));
        let p = polls.clone();
        let inlet = Inlet::new(Box::pin(std::future::poll_fn(move |_| {
            p.fetch_add(1, Ordering::Relaxed);
            Poll::<()>::Pending
        })));
        inlet.poll_reader();
        let reader = inlet.take_back();
        assert!(matches!(reader, Some(Ok(_))));
        inlet.poll_reader();
        assert_eq!(polls.load(Ordering::Relaxed), 1);
    }
}
