//! A capacity plan: CSV lines `branch,day,window,capacity` (an optional header line), checked
//! whole before anything changes: any bad line rejects the file with the numbers of its lines.

use std::collections::HashMap;

use surgegate::book::MAX_CAPACITY;
use surgegate::calendar::{Calendar, Date};
use surgegate::{BranchId, SlotIndex};

/// The most lines a plan may hold.
pub const MAX_PLAN_LINES: usize = 1_000_000;

/// One line's change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub branch: BranchId,
    pub slot: SlotIndex,
    pub capacity: u32,
}

/// What is wrong with a line (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub error: String,
}

/// Every change of a plan, or every line that is wrong (none of the plan applies).
pub fn parse(
    text: &str,
    calendar: &Calendar,
    branches: u32,
) -> Result<Vec<Change>, Vec<LineError>> {
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<(BranchId, SlotIndex), usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || (line == 1 && raw.eq_ignore_ascii_case("branch,day,window,capacity")) {
            continue;
        }
        if line > MAX_PLAN_LINES {
            errors.push(LineError {
                line,
                error: format!("a plan holds at most {MAX_PLAN_LINES} lines"),
            });
            break;
        }
        match parse_line(raw, calendar, branches) {
            Ok(change) => match seen.insert((change.branch, change.slot), line) {
                Some(first) => errors.push(LineError {
                    line,
                    error: format!("the same branch, day and window as line {first}"),
                }),
                None => changes.push(change),
            },
            Err(error) => errors.push(LineError { line, error }),
        }
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(errors)
    }
}

fn parse_line(raw: &str, calendar: &Calendar, branches: u32) -> Result<Change, String> {
    let fields: Vec<&str> = raw.split(',').map(str::trim).collect();
    let [branch, day, window, capacity] = fields[..] else {
        return Err(format!(
            "expected 4 fields (branch,day,window,capacity), found {}",
            fields.len()
        ));
    };
    let branch: u32 = branch
        .parse()
        .map_err(|_| format!("branch {branch:?} is not a number"))?;
    if !(1..=branches).contains(&branch) {
        return Err(format!("branch {branch} is not one of 1..={branches}"));
    }
    let day: Date = day
        .parse()
        .map_err(|_| format!("day {day:?} is not a date like 2027-01-31"))?;
    let window: u32 = window
        .parse()
        .map_err(|_| format!("window {window:?} is not a number"))?;
    if window >= calendar.windows_per_day() {
        return Err(format!(
            "window {window} is not one of 0..{}",
            calendar.windows_per_day()
        ));
    }
    let slot = calendar.slot(day, window).map_err(|_| {
        format!(
            "day {day} is outside {}..={}",
            calendar.first_day(),
            calendar.last_day()
        )
    })?;
    let capacity: u32 = capacity
        .parse()
        .map_err(|_| format!("capacity {capacity:?} is not a number"))?;
    if capacity > MAX_CAPACITY {
        return Err(format!(
            "capacity {capacity} is above the largest a slot holds ({MAX_CAPACITY})"
        ));
    }
    Ok(Change {
        branch: BranchId(branch),
        slot,
        capacity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar() -> Calendar {
        Calendar::new("2027-01-04".parse().unwrap(), 14, 8).unwrap()
    }

    #[test]
    fn a_good_plan_parses_whole() {
        let plan = "branch,day,window,capacity\n1,2027-01-04,0,5\n\n2, 2027-01-17 ,7, 0\n";
        let changes = parse(plan, &calendar(), 3).unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(
            changes[1],
            Change {
                branch: BranchId(2),
                slot: 13 * 8 + 7,
                capacity: 0
            }
        );
    }

    #[test]
    fn every_bad_line_is_named() {
        let plan = "1,2027-01-04,0,5\n9,2027-01-04,0,5\n1,2027-02-30,0,5\n1,2027-01-04,8,5\n\
                    1,2027-01-04,0,6\nx\n1,2026-12-31,0,1\n1,2027-01-05,0,-1\n";
        let errors = parse(plan, &calendar(), 3).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8], "{errors:?}");
        assert!(errors[3].error.contains("line 1"), "{errors:?}");
    }
}
