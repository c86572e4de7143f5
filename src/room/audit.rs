//! The whole-room consistency check that tests and audits call.

use super::state::Core;
use super::*;

impl Core {
    pub(super) fn check(&self) -> Result<(), InvariantViolation> {
        let now = self.settled_ns();
        self.line.check(now, "line").map_err(InvariantViolation)?;
        self.prequeue
            .check(now, "pre-queue")
            .map_err(InvariantViolation)?;
        self.passes.check(now).map_err(InvariantViolation)?;
        ensure!(
            self.opening.is_some() || self.prequeue.waiting() == 0,
            "{} pre-queued with no opening pending",
            self.prequeue.waiting()
        );
        if let Some((at, _)) = self.opening {
            ensure!(at > now, "opening at {at} still pending at {now}");
        }
        let mut visitors = std::collections::HashSet::new();
        for v in self
            .line
            .iter()
            .map(|(_, w)| w.visitor)
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
        ensure!(
            (self.line.waiting() + self.prequeue.waiting()) <= self.max_waiting as usize,
            "{} waiting above max_waiting {}",
            self.line.waiting() + self.prequeue.waiting(),
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
}
