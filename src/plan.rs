//! Capacity plans: the CSV file an authority uploads to open its windows, with a column per
//! channel for the units it keeps for its counters or its call centre.
//!
//! Guarantee: a plan is checked whole before anything is applied. [`Plan::parse`] returns every
//! line or, if any line is wrong, every wrong line with its number and what is wrong with it
//! (never only the first), so a caller that applies only parsed plans applies all or nothing of
//! a file's checks.
//!
//! The format, one slot a line: `branch,day,window,capacity[,quota…]`. `day` is an ISO date
//! (`2027-01-31`), `window` its window of the [`Calendar`] (0-based), `capacity` the slot's
//! units. An optional header line names the columns: `branch,day,window,capacity` and, per
//! quota column, `channel:N` (N from 0 to 255). Without a header the quota columns are channels
//! 1, 2, 3, … in order. An empty quota field keeps no quota for that channel. The quotas of a
//! line never add up to more than its capacity. Blank lines are skipped; fields may be padded
//! with spaces. The four-column plans of the example portal are valid plans with no quotas.
//!
//! A book without a calendar (the gateway's) names slots by index instead:
//! `branch,slot,capacity[,quota…]`, read by [`Plan::parse_slots`] with the same rules.

use std::collections::HashMap;
use std::fmt;

use crate::book::{BranchId, Channel, MAX_CAPACITY, SlotIndex};
use crate::calendar::{Calendar, Date};

/// The most lines a plan may hold.
pub const MAX_PLAN_LINES: usize = 1_000_000;

/// The most wrong lines a [`PlanError`] lists (the count says how many there were).
pub const MAX_LISTED_ERRORS: usize = 1_000;

/// One slot of a plan: its capacity and the quotas kept for channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanLine {
    /// The line's number in the file, from 1.
    pub line: usize,
    /// The branch.
    pub branch: BranchId,
    /// The slot, from the calendar's day and window.
    pub slot: SlotIndex,
    /// The slot's capacity.
    pub capacity: u32,
    /// Quotas by channel, in column order (channels with an empty field left out).
    pub quotas: Vec<(Channel, u32)>,
}

/// A parsed plan: every line, each slot once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The lines, in file order.
    pub lines: Vec<PlanLine>,
}

/// One wrong line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// Its number in the file, from 1.
    pub line: usize,
    /// What is wrong, and so what to change.
    pub reason: String,
}

/// Why a plan was refused: its wrong lines, in order. Nothing of the plan may be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanError {
    /// The wrong lines (at most [`MAX_LISTED_ERRORS`]).
    pub lines: Vec<LineError>,
    /// How many lines were wrong in all.
    pub wrong: usize,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the plan was not applied: {} line(s) are wrong; fix them and upload it again",
            self.wrong
        )?;
        for e in &self.lines {
            write!(f, "\nline {}: {}", e.line, e.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanError {}

const DAY_COLUMNS: [&str; 4] = ["branch", "day", "window", "capacity"];
const SLOT_COLUMNS: [&str; 3] = ["branch", "slot", "capacity"];

/// How a plan's lines name their slot, and which branches they may name.
enum Layout<'a> {
    /// `branch,day,window,capacity`: branches `1..=max_branch`.
    Days {
        calendar: &'a Calendar,
        max_branch: u32,
    },
    /// `branch,slot,capacity`: branches `0..branches`, slots `0..slots`.
    Slots { branches: u32, slots: u32 },
}

impl Layout<'_> {
    /// The columns before the quotas, the last of them the capacity.
    fn columns(&self) -> &'static [&'static str] {
        match self {
            Layout::Days { .. } => &DAY_COLUMNS,
            Layout::Slots { .. } => &SLOT_COLUMNS,
        }
    }

    /// What names a slot, in words.
    fn place(&self) -> &'static str {
        match self {
            Layout::Days { .. } => "branch, day and window",
            Layout::Slots { .. } => "branch and slot",
        }
    }

    /// The branch and slot that a line's fields before the capacity name.
    fn locate(&self, fields: &[&str]) -> Result<(BranchId, SlotIndex), String> {
        let branch = number(fields[0], "branch")?;
        match *self {
            Layout::Days {
                calendar,
                max_branch,
            } => {
                if !(1..=max_branch).contains(&branch) {
                    return Err(format!("branch {branch} is not one of 1..={max_branch}"));
                }
                Ok((BranchId(branch), day_slot(calendar, fields[1], fields[2])?))
            }
            Layout::Slots { branches, slots } => {
                if branch >= branches {
                    return Err(format!("branch {branch} is not below {branches}"));
                }
                let slot = number(fields[1], "slot")?;
                if slot >= slots {
                    return Err(format!("slot {slot} is not below {slots}"));
                }
                Ok((BranchId(branch), slot))
            }
        }
    }
}

fn day_slot(calendar: &Calendar, day: &str, window: &str) -> Result<SlotIndex, String> {
    let day: Date = day
        .parse()
        .map_err(|_| format!("day {day:?} is not a date like 2027-01-31"))?;
    let window = number(window, "window")?;
    if window >= calendar.windows_per_day() {
        return Err(format!(
            "window {window} is not one of 0..{}",
            calendar.windows_per_day()
        ));
    }
    calendar.slot(day, window).map_err(|_| {
        format!(
            "day {day} is outside {}..={}",
            calendar.first_day(),
            calendar.last_day()
        )
    })
}

impl Plan {
    /// Parses a whole plan against `calendar`, for branches `1..=max_branch`.
    ///
    /// # Errors
    ///
    /// [`PlanError`] naming every wrong line: a field that is not a number or a date, a branch,
    /// day or window outside the schedule, a capacity or quota above [`MAX_CAPACITY`], quotas
    /// above the line's capacity, a slot named twice, a bad header, more than
    /// [`MAX_PLAN_LINES`] lines.
    ///
    /// ```
    /// use surgegate::plan::Plan;
    /// use surgegate::{BranchId, Calendar, Channel, Date, SlotBook};
    ///
    /// let calendar = Calendar::new(Date::new(2027, 1, 4)?, 14, 8)?;
    /// let text = "branch,day,window,capacity,channel:1,channel:2\n\
    ///             1,2027-01-04,0,10,2,1\n\
    ///             1,2027-01-04,1,10,,3\n";
    /// let plan = Plan::parse(text, &calendar, 3)?;
    /// assert_eq!(plan.lines[1].quotas, [(Channel(2), 3)]);
    ///
    /// let book = SlotBook::builder().build();
    /// for line in &plan.lines {
    ///     book.set_capacity(line.branch, line.slot, line.capacity)?;
    ///     for &(channel, quota) in &line.quotas {
    ///         book.set_channel_quota(line.branch, line.slot, channel, quota)?;
    ///     }
    /// }
    /// assert_eq!(book.slot(BranchId(1), 0).unwrap().remaining(), 7);
    ///
    /// let bad = Plan::parse("1,2027-01-04,0,5,6\n1,2027-01-04,9,5\n", &calendar, 3).unwrap_err();
    /// assert_eq!(bad.lines.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse(text: &str, calendar: &Calendar, max_branch: u32) -> Result<Plan, PlanError> {
        parse_with(
            text,
            &Layout::Days {
                calendar,
                max_branch,
            },
        )
    }

    /// Parses a whole plan whose lines name slots by index, `branch,slot,capacity[,quota…]`
    /// (header `branch,slot,capacity[,channel:N…]`), for branches `0..branches` and slots
    /// `0..slots`: the form for a book without a [`Calendar`]. Quota columns, blank lines and
    /// padding work as in [`Plan::parse`].
    ///
    /// # Errors
    ///
    /// [`PlanError`] naming every wrong line, as [`Plan::parse`] does, with a branch or slot
    /// at or above its bound in place of a day outside the schedule.
    ///
    /// ```
    /// use surgegate::plan::Plan;
    /// use surgegate::{BranchId, Channel};
    ///
    /// let plan = Plan::parse_slots("branch,slot,capacity,channel:2\n0,17,8,3\n", 4, 100)?;
    /// let line = &plan.lines[0];
    /// assert_eq!((line.branch, line.slot, line.capacity), (BranchId(0), 17, 8));
    /// assert_eq!(line.quotas, [(Channel(2), 3)]);
    /// assert!(Plan::parse_slots("4,0,1\n", 4, 100).is_err());
    /// # Ok::<(), surgegate::plan::PlanError>(())
    /// ```
    pub fn parse_slots(text: &str, branches: u32, slots: u32) -> Result<Plan, PlanError> {
        parse_with(text, &Layout::Slots { branches, slots })
    }
}

fn parse_with(text: &str, layout: &Layout<'_>) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    let mut errors = Vec::new();
    let mut wrong = 0;
    let fixed = layout.columns().len();
    // The quota columns' channels, and whether a header fixed them.
    let mut channels: Option<(Vec<Channel>, bool)> = None;
    let mut seen: HashMap<(BranchId, SlotIndex), usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        if line > MAX_PLAN_LINES {
            wrong += 1;
            errors.push(LineError {
                line,
                reason: format!("a plan holds at most {MAX_PLAN_LINES} lines: split it"),
            });
            break;
        }
        let result = if channels.is_none() && is_header(raw) {
            header_channels(raw, layout.columns()).map(|c| channels = Some((c, true)))
        } else {
            let (columns, by_header) = channels.get_or_insert_with(|| (Vec::new(), false));
            if !*by_header {
                number_columns(columns, raw.split(',').count().saturating_sub(fixed));
            }
            parse_line(raw, line, layout, columns).and_then(|l| {
                match seen.insert((l.branch, l.slot), line) {
                    Some(first) => Err(format!(
                        "the same {} as line {first}: keep one of them",
                        layout.place()
                    )),
                    None => {
                        plan.lines.push(l);
                        Ok(())
                    }
                }
            })
        };
        if let Err(reason) = result {
            wrong += 1;
            if errors.len() < MAX_LISTED_ERRORS {
                errors.push(LineError { line, reason });
            }
        }
    }
    if wrong == 0 {
        Ok(plan)
    } else {
        Err(PlanError {
            lines: errors,
            wrong,
        })
    }
}

fn is_header(raw: &str) -> bool {
    raw.split(',')
        .next()
        .is_some_and(|f| f.trim().eq_ignore_ascii_case("branch"))
}

/// The channels a header's quota columns name, after the layout's own `columns`.
fn header_channels(raw: &str, columns: &[&str]) -> Result<Vec<Channel>, String> {
    let fields: Vec<&str> = raw.split(',').map(str::trim).collect();
    let fixed = columns.len();
    if fields.len() < fixed
        || !fields[..fixed]
            .iter()
            .zip(columns)
            .all(|(f, h)| f.eq_ignore_ascii_case(h))
    {
        return Err(format!("the header must start with {}", columns.join(",")));
    }
    let mut channels: Vec<Channel> = Vec::new();
    for f in &fields[fixed..] {
        let n = f
            .strip_prefix("channel:")
            .and_then(|n| n.parse::<u8>().ok())
            .ok_or_else(|| format!("quota column {f:?} is not channel:N with N from 0 to 255"))?;
        if channels.contains(&Channel(n)) {
            return Err(format!("channel:{n} has two columns: keep one"));
        }
        channels.push(Channel(n));
    }
    Ok(channels)
}

/// Without a header, quota columns are channels 1, 2, 3, … (up to 255): numbers enough for
/// `columns` of them.
fn number_columns(channels: &mut Vec<Channel>, columns: usize) {
    while channels.len() < columns.min(255) {
        channels.push(Channel(channels.len() as u8 + 1));
    }
}

fn number(field: &str, what: &str) -> Result<u32, String> {
    field
        .parse()
        .map_err(|_| format!("{what} {field:?} is not a whole number"))
}

fn parse_line(
    raw: &str,
    line: usize,
    layout: &Layout<'_>,
    channels: &[Channel],
) -> Result<PlanLine, String> {
    let fields: Vec<&str> = raw.split(',').map(str::trim).collect();
    let fixed = layout.columns().len();
    if fields.len() < fixed {
        return Err(format!(
            "expected {} and a quota per channel, found {} field(s)",
            layout.columns().join(","),
            fields.len()
        ));
    }
    if fields.len() - fixed > channels.len() {
        return Err(format!(
            "{} quota field(s), but the plan has {} channel column(s)",
            fields.len() - fixed,
            channels.len()
        ));
    }
    let (branch, slot) = layout.locate(&fields[..fixed - 1])?;
    let capacity = number(fields[fixed - 1], "capacity")?;
    if capacity > MAX_CAPACITY {
        return Err(format!(
            "capacity {capacity} is above the largest a slot holds ({MAX_CAPACITY})"
        ));
    }
    let mut quotas = Vec::new();
    for (f, &channel) in fields[fixed..].iter().zip(channels.iter()) {
        if f.is_empty() {
            continue;
        }
        let quota = number(f, &format!("the quota of {channel}"))?;
        quotas.push((channel, quota));
    }
    let kept: u64 = quotas.iter().map(|&(_, q)| u64::from(q)).sum();
    if kept > u64::from(capacity) {
        return Err(format!(
            "the quotas add up to {kept}, above the capacity {capacity}: lower a quota or raise the capacity"
        ));
    }
    Ok(PlanLine {
        line,
        branch,
        slot,
        capacity,
        quotas,
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{LineError, MAX_LISTED_ERRORS, Plan};
    use crate::book::{BranchId, Channel};
    use crate::calendar::Calendar;

    fn calendar() -> Calendar {
        Calendar::new("2027-01-04".parse().unwrap(), 14, 8).unwrap()
    }

    #[test]
    fn the_portals_four_column_plans_still_parse() {
        let plan = "branch,day,window,capacity\n1,2027-01-04,0,5\n\n2, 2027-01-17 ,7, 0\n";
        let p = Plan::parse(plan, &calendar(), 3).unwrap();
        assert_eq!(p.lines.len(), 2);
        assert_eq!(
            (p.lines[1].branch, p.lines[1].slot, p.lines[1].capacity),
            (BranchId(2), 13 * 8 + 7, 0)
        );
        assert!(p.lines.iter().all(|l| l.quotas.is_empty()));
    }

    #[test]
    fn quota_columns_follow_the_header_or_count_from_one() {
        let with = "branch,day,window,capacity,channel:7,channel:0\n1,2027-01-04,0,9,2,3\n";
        let p = Plan::parse(with, &calendar(), 3).unwrap();
        assert_eq!(p.lines[0].quotas, [(Channel(7), 2), (Channel(0), 3)]);
        let without = "1,2027-01-04,0,9,2,,4\n";
        let p = Plan::parse(without, &calendar(), 3).unwrap();
        assert_eq!(p.lines[0].quotas, [(Channel(1), 2), (Channel(3), 4)]);
    }

    #[test]
    fn every_bad_line_is_named_and_nothing_is_returned() {
        let plan = "branch,day,window,capacity,channel:1\n\
                    1,2027-01-04,0,5,1\n\
                    9,2027-01-04,0,5\n\
                    1,2027-02-30,0,5\n\
                    1,2027-01-04,8,5\n\
                    1,2027-01-04,0,6\n\
                    x\n\
                    1,2026-12-31,0,1\n\
                    1,2027-01-05,0,-1\n\
                    1,2027-01-05,1,3,4\n\
                    1,2027-01-05,2,3,1,1\n\
                    1,2027-01-05,3,3,one\n";
        let e = Plan::parse(plan, &calendar(), 3).unwrap_err();
        let lines: Vec<usize> = e.lines.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12], "{e}");
        assert!(e.lines[3].reason.contains("line 2"), "{e}");
        assert!(e.lines[7].reason.contains("above the capacity"), "{e}");
        assert_eq!(e.wrong, 10);
        assert!(e.to_string().contains("line 12:"));
    }

    #[test]
    fn slot_plans_follow_the_same_rules_by_index() {
        let text = "branch,slot,capacity,channel:3\n0,0,5,2\n3, 99 ,1,\n\n";
        let p = Plan::parse_slots(text, 4, 100).unwrap();
        assert_eq!(p.lines[0].quotas, [(Channel(3), 2)]);
        assert_eq!(
            (p.lines[1].branch, p.lines[1].slot, p.lines[1].capacity),
            (BranchId(3), 99, 1)
        );
        assert!(p.lines[1].quotas.is_empty());
        let p = Plan::parse_slots("1,2,9,1,4\n", 4, 100).unwrap();
        assert_eq!(p.lines[0].quotas, [(Channel(1), 1), (Channel(2), 4)]);
        let bad = "branch,slot,capacity\n1,0,5\n1,0,6\nx,1,1\n1,100,1\n4,1,1\n2,3\n\
                   2,4,5000000000\n2,5,1,1\nbranch,slot,capacity\n";
        let e = Plan::parse_slots(bad, 4, 100).unwrap_err();
        let lines: Vec<usize> = e.lines.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8, 9, 10], "{e}");
        assert!(
            e.lines[0].reason.contains("branch and slot as line 2"),
            "{e}"
        );
        assert!(
            e.lines[2].reason.contains("slot 100 is not below 100"),
            "{e}"
        );
        assert!(e.lines[3].reason.contains("branch 4 is not below 4"), "{e}");
        let header = Plan::parse_slots("branch,day,window,capacity\n", 4, 100).unwrap_err();
        assert!(
            header.lines[0].reason.contains("branch,slot,capacity"),
            "{header}"
        );
        // A day plan is not a slot plan: its date is no slot number.
        assert!(Plan::parse_slots("1,2027-01-04,0,5\n", 4, 100).is_err());
    }

    #[test]
    fn hostile_headers_and_huge_files_are_refused_with_a_bounded_answer() {
        for header in [
            "branch,day,window,capacity,channel:256",
            "branch,day,window,capacity,channel:1,channel:1",
            "branch,day,window,capacity,counter",
            "branch,day,window",
        ] {
            let e = Plan::parse(&format!("{header}\n"), &calendar(), 3).unwrap_err();
            assert_eq!(e.lines[0].line, 1, "{header}: {e}");
        }
        let junk = "x\n".repeat(MAX_LISTED_ERRORS * 3);
        let e = Plan::parse(&junk, &calendar(), 3).unwrap_err();
        assert_eq!(
            (e.lines.len(), e.wrong),
            (MAX_LISTED_ERRORS, MAX_LISTED_ERRORS * 3)
        );
        assert_eq!(
            e.lines[0],
            LineError {
                line: 1,
                reason:
                    "expected branch,day,window,capacity and a quota per channel, found 1 field(s)"
                        .into()
            }
        );
        // Quotas at the field's limit neither overflow nor pass.
        let big = format!("1,2027-01-04,0,5,{},{}\n", u32::MAX, u32::MAX);
        assert!(Plan::parse(&big, &calendar(), 3).is_err());
    }
}
