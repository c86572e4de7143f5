//! What visitors and operators are told: tickets with their ETA, passes, `retry_after`, and the
//! room's stats.

use std::time::Duration;

use super::admitted::PassRec;
use super::state::Core;
use super::types::{Pass, RoomStats, Ticket, TicketToken};

impl Core {
    /// Estimated time (ns from now) until the visitor at `position` is admitted.
    pub(super) fn eta_ns(&self, position: u64) -> u64 {
        self.eta_at_ns(self.now_ns, position)
    }

    /// Estimated time (ns from `now`) until the visitor at `position` is admitted, for a room
    /// at `now` (its time, or a later one at which nothing falls due before).
    pub(super) fn eta_at_ns(&self, now: u64, position: u64) -> u64 {
        let start = self.opening.map_or(now, |(at, _)| at.max(now));
        let mut at = self.gcra.kth_admission_ns(start, position);
        if self.max_active != u32::MAX {
            let free = u64::from(self.max_active).saturating_sub(self.passes.len() as u64);
            if position > free {
                // Each active place turns over once per mean pass duration.
                let need = u128::from(position - free);
                let wait = need * u128::from(self.mean_pass_ns) / u128::from(self.max_active);
                at = at.max(start.saturating_add(u64::try_from(wait).unwrap_or(u64::MAX)));
            }
        }
        at.saturating_sub(now)
    }

    pub(super) fn ticket(&self, index: u32) -> Ticket {
        self.ticket_at(index, self.now_ns)
    }

    /// The ticket of the line's entry `index`, as of `now` (see [`Self::eta_at_ns`]).
    pub(super) fn ticket_at(&self, index: u32, now: u64) -> Ticket {
        let w = self.line.get(index);
        let position = self.line.position(index);
        Ticket {
            token: TicketToken(w.token),
            position,
            eta: Duration::from_nanos(self.eta_at_ns(now, position)),
        }
    }

    pub(super) fn prequeue_ticket(&self, index: u32) -> Ticket {
        self.prequeue_ticket_at(index, self.now_ns)
    }

    /// The ticket of the pre-queue's entry `index`, as of `now`.
    pub(super) fn prequeue_ticket_at(&self, index: u32, now: u64) -> Ticket {
        let w = self.prequeue.get(index);
        let position = (self.line.waiting() + self.prequeue.waiting()) as u64;
        Ticket {
            token: TicketToken(w.token),
            position,
            eta: Duration::from_nanos(self.eta_at_ns(now, position)),
        }
    }

    /// The ticket of arrival `k` behind the line (see `room::arrivals`), as of `now`.
    pub(super) fn arrival_ticket(&self, token: u128, k: u32, now: u64) -> Ticket {
        let position = self.line.waiting() as u64 + u64::from(k) + 1;
        Ticket {
            token: TicketToken(token),
            position,
            eta: Duration::from_nanos(self.eta_at_ns(now, position)),
        }
    }

    pub(super) fn pass(token: u128, p: &PassRec) -> Pass {
        Pass {
            token: TicketToken(token),
            visitor: p.visitor,
            expires_at: Duration::from_nanos(p.lapses_ns()),
        }
    }

    /// When to try joining again: the next admission or lapse, at least 1 ms away.
    pub(super) fn retry_after(&mut self) -> Duration {
        let now = self.now_ns;
        let mut t = self.next_admission_ns().unwrap_or(u64::MAX);
        if self.passes.len() >= self.max_active as usize {
            t = t.min(self.passes.next_expiry().unwrap_or(u64::MAX));
        }
        t = t.min(self.line.next_lapse().unwrap_or(u64::MAX));
        t = t.min(self.prequeue.next_lapse().unwrap_or(u64::MAX));
        if t == u64::MAX {
            t = now.saturating_add(self.checkin_timeout_ns);
        }
        Duration::from_nanos(t.saturating_sub(now).max(1_000_000))
    }

    pub(super) fn stats(&self) -> RoomStats {
        let waiting = self.line.waiting() as u64;
        let prequeued = self.prequeue.waiting() as u64;
        let last = waiting + prequeued;
        RoomStats {
            waiting,
            prequeued,
            active: self.passes.len() as u64,
            admitted_total: self.admitted_total,
            dropped_total: self.dropped_total,
            left_total: self.left_total,
            rate_per_second: self.gcra.rate_per_second(),
            burst: self.gcra.burst(),
            max_active: self.max_active,
            max_waiting: self.max_waiting,
            paused: self.paused,
            closed: self.closed,
            opens_at: self.opening.map(|(at, _)| Duration::from_nanos(at)),
            prequeue_seed: self.opening.map(|(_, s)| s).or(self.last_seed),
            back_of_line_eta: if last == 0 {
                Duration::ZERO
            } else {
                Duration::from_nanos(self.eta_ns(last))
            },
        }
    }
}
