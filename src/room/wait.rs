//! Waiting for a ticket's turn without polling in a loop (feature `tokio`).
//!
//! Guarantee: a waiter sleeps until its ETA or its next check-in, and is woken at once by the
//! call that admits its ticket (whichever call that is: a `finish` that frees an active place,
//! another visitor's poll, a rate change), and by operator changes that move every ETA. Only
//! the waiters whose tickets were admitted are woken by an admission, never all of them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::Clock;

use super::WaitingRoom;
use super::error::PollError;
use super::types::{Entry, Pass, TicketToken};

/// The tickets that async waiters wait on, kept in the room's core: an admission moves the
/// ticket's wake-up to `due`, which the call that admitted it sends after unlocking.
#[derive(Debug, Default)]
pub(super) struct Awaited {
    by_token: HashMap<u128, Arc<Notify>>,
    due: Vec<Arc<Notify>>,
}

impl Awaited {
    /// The ticket `token` was admitted: wake its waiter, if it has one.
    pub(super) fn admitted(&mut self, token: u128) {
        // The common case, nobody waiting asynchronously, costs one length check.
        if !self.by_token.is_empty()
            && let Some(notify) = self.by_token.remove(&token)
        {
            self.due.push(notify);
        }
    }

    /// The wake-ups to send once the lock is released.
    pub(super) fn take_due(&mut self) -> Vec<Arc<Notify>> {
        std::mem::take(&mut self.due)
    }

    fn register(&mut self, token: u128) -> Arc<Notify> {
        self.by_token.entry(token).or_default().clone()
    }

    fn unregister(&mut self, token: u128) {
        self.by_token.remove(&token);
    }
}

/// Removes a waiter's registration when its `wait` ends or is dropped.
struct Registration<'a, C: Clock> {
    room: &'a WaitingRoom<C>,
    token: u128,
}

impl<C: Clock> Drop for Registration<'_, C> {
    fn drop(&mut self) {
        self.room.core.write().awaited.unregister(self.token);
    }
}

impl<C: Clock> WaitingRoom<C> {
    /// Waits until this ticket is admitted and returns its pass.
    ///
    /// Sleeps until the ticket's ETA, checking in on the visitor's behalf often enough that the
    /// ticket never lapses while this future is alive (every third of `checkin_timeout`, or
    /// sooner if the ETA is sooner), and wakes at once when a call admits the ticket (a `finish`
    /// that frees an active place under `max_active`, say) or the operator changes the rate, the
    /// burst or `max_active`, resumes the room or schedules an opening. It never spins: between
    /// wake-ups it sleeps on tokio's timer.
    ///
    /// The sleeps run on tokio's clock, so the room's clock should track real (or tokio) time:
    /// use the default [`SystemClock`](crate::SystemClock), or
    /// [`TokioClock`](crate::TokioClock) in tests with paused time.
    ///
    /// # Cancel safety
    ///
    /// This future is cancel-safe. It holds no place of its own: the ticket is in the room, and
    /// the future only polls it. Dropping the future (a timeout, a `select!` branch losing, a
    /// closed connection) leaves the ticket in line exactly where it was; if nobody polls it
    /// again, it lapses `checkin_timeout` after the last check-in, like any silent visitor, and
    /// those behind move up. Calling `wait` again with the same token resumes waiting at the same
    /// place.
    ///
    /// # Errors
    ///
    /// Those of [`poll`](Self::poll): the token is unknown, finished or lapsed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use surgegate::{Entry, TokioClock, VisitorId, WaitingRoom};
    ///
    /// let room = WaitingRoom::builder().rate_per_second(2).burst(1).clock(TokioClock::new()).build();
    /// room.join(VisitorId(1))?;
    /// let Entry::Waiting(ticket) = room.join(VisitorId(2))? else { unreachable!() };
    /// let pass = room.wait(ticket.token).await?;
    /// assert_eq!(pass.visitor, VisitorId(2));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait(&self, token: TicketToken) -> Result<Pass, PollError> {
        let checkin_every = (self.checkin_timeout() / 3).max(Duration::from_millis(1));
        let mine = self.core.write().awaited.register(token.0);
        let _registration = Registration {
            room: self,
            token: token.0,
        };
        loop {
            // Register for wake-ups before polling, so a change between the poll and the sleep
            // is not missed. (An admission of this ticket meanwhile leaves a permit in `mine`.)
            let mut operator = std::pin::pin!(self.notify.notified());
            operator.as_mut().enable();
            let mut admitted = std::pin::pin!(mine.notified());
            admitted.as_mut().enable();
            match self.poll(token)? {
                Entry::Admitted(pass) => return Ok(pass),
                Entry::Waiting(ticket) => {
                    // A waiting ticket whose ETA is zero is in a room that is not admitting
                    // (paused): nothing will happen before a check-in is due or the operator
                    // acts, and the operator's action wakes us.
                    let nap = if ticket.eta.is_zero() {
                        checkin_every
                    } else {
                        ticket.eta.min(checkin_every)
                    };
                    // Woken by the operator or by the admission, or the nap is over: poll again
                    // either way.
                    let either = std::future::poll_fn(|cx| {
                        let a = operator.as_mut().poll(cx).is_ready();
                        let b = admitted.as_mut().poll(cx).is_ready();
                        if a || b {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    });
                    let _ = tokio::time::timeout(nap, either).await;
                }
            }
        }
    }
}
