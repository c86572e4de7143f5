//! The whole-room consistency check that tests and audits call.

use crate::invariant::{InvariantViolation, ensure};

use super::arrivals::MAX_ARRIVALS;
use super::line::Line;
use super::state::Core;

impl Core {
    pub(super) fn check(&self) -> Result<(), InvariantViolation> {
        let now = self.settled_ns();
        self.line.check(now, "line").map_err(InvariantViolation)?;
        self.prequeue
            .check(now, "pre-queue")
            .map_err(InvariantViolation)?;
        self.passes.check(now).map_err(InvariantViolation)?;
        self.check_arrivals(now)?;
        ensure!(
            self.opening.is_some() || self.prequeue.waiting() == 0,
            "{} pre-queued with no opening pending",
            self.prequeue.waiting()
        );
        if let Some((at, _)) = self.opening {
            ensure!(at > now, "opening at {at} still pending at {now}");
        }
        let mut visitors = std::collections::HashSet::new();
        let batch = self.arrivals.lock();
        for v in self
            .line
            .iter()
            .map(|(_, w)| w.visitor)
            .chain(batch.iter().map(|w| w.visitor))
            .chain(self.prequeue.iter().map(|(_, w)| w.visitor))
            .chain(self.passes.iter().map(|(_, p)| p.visitor))
        {
            ensure!(visitors.insert(v), "{v:?} holds two tickets or passes");
        }
        ensure!(
            self.passes.len() <= self.max_active as usize || self.lowered_below_active,
            "{} live passes above max_active {}",
            self.passes.len(),
            self.max_active
        );
        let waiting = self.line.waiting() + batch.len() + self.prequeue.waiting();
        drop(batch);
        ensure!(
            waiting <= self.max_waiting as usize,
            "{waiting} waiting above max_waiting {}",
            self.max_waiting
        );
        ensure!(
            self.admitted_total
                == self.passes.len() as u64 + self.passes_finished + self.passes_lapsed,
            "{} admitted but {} live + {} finished + {} lapsed",
            self.admitted_total,
            self.passes.len(),
            self.passes_finished,
            self.passes_lapsed
        );
        // Idle capacity is never wasted: if the head could be admitted now, it would have been
        // (unless the room is still catching up, and that admission is among the events left).
        if !self.behind
            && !self.paused
            && self.opening.is_none()
            && self.line.waiting() > 0
            && self.passes.len() < self.max_active as usize
        {
            ensure!(
                !self.gcra.conforms_ns(now),
                "the head of the line could be admitted at {now} but waits"
            );
        }
        Ok(())
    }

    /// Arrivals behind the line (see `room::arrivals`): only where others wait and no opening
    /// is pending, each at its token's home index to be, found by its token, not lapsed, and
    /// not due before the room's next event.
    fn check_arrivals(&self, now: u64) -> Result<(), InvariantViolation> {
        let batch = self.arrivals.lock();
        if batch.len() == 0 {
            return Ok(());
        }
        ensure!(
            self.line.waiting() > 0 && self.opening.is_none() && !self.closed,
            "{} arrivals behind a line of {} (opening pending: {}, closed: {})",
            batch.len(),
            self.line.waiting(),
            self.opening.is_some(),
            self.closed
        );
        ensure!(
            batch.len() <= MAX_ARRIVALS,
            "{} arrivals, above {}",
            batch.len(),
            MAX_ARRIVALS
        );
        let first = self.line.next_index();
        for (k, w) in batch.iter().enumerate() {
            let home = Line::home_index(w.token);
            ensure!(
                home == first.wrapping_add(k as u32),
                "arrival {k}'s token has home index {home}, not {}",
                first.wrapping_add(k as u32)
            );
            ensure!(
                self.line.find_token(w.token).is_none() && self.passes.get(w.token).is_none(),
                "arrival {k}'s token is also in line or a pass"
            );
            let deadline = w.deadline_ns.get();
            ensure!(
                deadline > now && deadline >= self.next_event_ns,
                "arrival {k}'s deadline {deadline} is due by {now} or before the next event {}",
                self.next_event_ns
            );
        }
        Ok(())
    }
}
