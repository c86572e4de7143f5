//! What a surge through the gate reports: who was served, turned away or failed, the bookings
//! against the capacity recounted slot by slot through the booking API, the time in line and
//! of the gated requests, the wall time and the gate's memory.

use serde_json::{Value, json};

/// A surge's result.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub visitors: u64,
    /// Admitted and finished (with or without an appointment).
    pub served: u64,
    /// Bookings confirmed through the API (by visitors served or not).
    pub booked: u64,
    pub no_appointment: u64,
    pub turned_away: u64,
    pub failed: u64,
    /// Still in line or under way when the time limit came.
    pub unfinished: u64,
    pub requests: u64,
    pub waiting_answers: u64,
    /// 429/503 answers at the door (each retried after `Retry-After`).
    pub refusals: u64,
    /// 502/504 answers on gated pages (each retried after `Retry-After`).
    pub upstream_errors: u64,
    /// The plan's total.
    pub capacity: u64,
    /// Booked, held, and slots whose held + booked exceeds their capacity, as the booking API
    /// tells them after the surge.
    pub booked_in_book: u64,
    pub held_in_book: u64,
    pub overbooked_slots: u64,
    /// Slots whose capacity is not the plan's.
    pub wrong_capacity_slots: u64,
    /// Visitors the room dropped for a missed check-in (they join again at the back on their
    /// next refresh), and refusals the gate counted (full, closed, over a limit, store down),
    /// from `GET /admin/stats`.
    pub dropped_from_line: u64,
    pub gate_refusals: u64,
    pub line_p50_ms: f64,
    pub line_p99_ms: f64,
    pub gated_p50_ms: f64,
    pub gated_p99_ms: f64,
    pub wall_s: f64,
    pub gate_rss_kib: u64,
    pub gate_peak_rss_kib: u64,
    /// The first failures, to show what went wrong.
    pub errors: Vec<String>,
}

/// The `q` quantile (0..=1) of `us` (microseconds), in milliseconds; 0 when empty.
pub fn quantile_ms(us: &mut [u64], q: f64) -> f64 {
    if us.is_empty() {
        return 0.0;
    }
    us.sort_unstable();
    let at = ((us.len() as f64 * q).ceil() as usize).clamp(1, us.len()) - 1;
    us[at] as f64 / 1e3
}

impl Report {
    /// Whether every rule held: nobody turned away, failed or left unfinished, every booking
    /// in the book made by a visitor and none beyond a slot's capacity.
    pub fn ok(&self) -> bool {
        self.turned_away == 0
            && self.failed == 0
            && self.unfinished == 0
            && self.served == self.visitors
            && self.overbooked_slots == 0
            && self.wrong_capacity_slots == 0
            && self.booked_in_book == self.booked
            && self.held_in_book == 0
            && self.booked <= self.capacity
    }

    pub fn to_json(&self) -> Value {
        json!({
            "visitors": self.visitors, "served": self.served, "booked": self.booked,
            "no_appointment": self.no_appointment, "turned_away": self.turned_away,
            "failed": self.failed, "unfinished": self.unfinished, "requests": self.requests,
            "waiting_answers": self.waiting_answers, "refusals": self.refusals,
            "upstream_errors": self.upstream_errors,
            "capacity": self.capacity, "booked_in_book": self.booked_in_book,
            "held_in_book": self.held_in_book, "overbooked_slots": self.overbooked_slots,
            "wrong_capacity_slots": self.wrong_capacity_slots,
            "dropped_from_line": self.dropped_from_line, "gate_refusals": self.gate_refusals,
            "line_p50_ms": self.line_p50_ms, "line_p99_ms": self.line_p99_ms,
            "gated_p50_ms": self.gated_p50_ms, "gated_p99_ms": self.gated_p99_ms,
            "wall_s": self.wall_s, "gate_rss_kib": self.gate_rss_kib,
            "gate_peak_rss_kib": self.gate_peak_rss_kib, "errors": self.errors, "ok": self.ok(),
        })
    }

    /// The report for a reader, one fact a line.
    pub fn text(&self) -> String {
        let mut lines = vec![
            format!("visitors            {}", self.visitors),
            format!(
                "served              {} ({} booked, {} admitted with no appointment left)",
                self.served, self.booked, self.no_appointment
            ),
            format!("turned away         {}", self.turned_away),
            format!("failed / unfinished {} / {}", self.failed, self.unfinished),
            format!(
                "requests            {} ({} waiting pages, {} refusals, {} upstream errors)",
                self.requests, self.waiting_answers, self.refusals, self.upstream_errors
            ),
            format!(
                "bookings            {} of a capacity of {}; the book: {} booked, {} held, {} slots overbooked",
                self.booked,
                self.capacity,
                self.booked_in_book,
                self.held_in_book,
                self.overbooked_slots
            ),
            format!(
                "the room            {} dropped for a missed check-in, {} refusals counted by the gate",
                self.dropped_from_line, self.gate_refusals
            ),
            format!(
                "time in line        p50 {:.1} ms, p99 {:.1} ms",
                self.line_p50_ms, self.line_p99_ms
            ),
            format!(
                "gated request       p50 {:.2} ms, p99 {:.2} ms",
                self.gated_p50_ms, self.gated_p99_ms
            ),
            format!("wall time           {:.1} s", self.wall_s),
            format!(
                "gate RSS            {} KiB at the end, {} KiB at the peak",
                self.gate_rss_kib, self.gate_peak_rss_kib
            ),
        ];
        lines.extend(self.errors.iter().map(|e| format!("error: {e}")));
        lines.push(
            if self.ok() {
                "every rule held"
            } else {
                "A RULE WAS BROKEN"
            }
            .into(),
        );
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::{Report, quantile_ms};

    #[test]
    fn quantiles_and_rules() {
        let mut us: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(quantile_ms(&mut us, 0.5), 50.0);
        assert_eq!(quantile_ms(&mut us, 0.99), 99.0);
        assert_eq!(quantile_ms(&mut [], 0.5), 0.0);
        let good = Report {
            visitors: 2,
            served: 2,
            booked: 1,
            booked_in_book: 1,
            capacity: 1,
            ..Report::default()
        };
        assert!(good.ok());
        assert!(
            !Report {
                turned_away: 1,
                ..good.clone()
            }
            .ok()
        );
        assert!(
            !Report {
                overbooked_slots: 1,
                ..good.clone()
            }
            .ok()
        );
        assert!(
            !Report {
                booked_in_book: 2,
                ..good
            }
            .ok()
        );
    }
}
