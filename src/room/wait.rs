//! Waiting for a ticket's turn without polling in a loop (feature `tokio`).

use std::time::Duration;

use super::{Entry, Pass, PollError, TicketToken, WaitingRoom};
use crate::clock::Clock;

impl<C: Clock> WaitingRoom<C> {
    /// Waits until this ticket is admitted and returns its pass.
    ///
    /// Sleeps until the ticket's ETA, checking in on the visitor's behalf often enough that the
    /// ticket never lapses while this future is alive (every third of `checkin_timeout`, or
    /// sooner if the ETA is sooner), and wakes early when the operator changes the rate, the
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
        loop {
            // Register for wake-ups before polling, so a change between the poll and the sleep
            // is not missed.
            let mut notified = std::pin::pin!(self.notify.notified());
            notified.as_mut().enable();
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
                    // Woken by the operator, or the nap is over: poll again either way.
                    let _ = tokio::time::timeout(nap, notified).await;
                }
            }
        }
    }
}
