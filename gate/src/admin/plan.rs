//! A capacity plan: CSV lines `branch,slot,capacity` (an optional header line), checked whole
//! before anything changes. Any bad line rejects the plan, with every bad line named.

use std::collections::HashMap;

use surgegate::book::MAX_CAPACITY;
use surgegate::{BranchId, SlotIndex};

/// The most lines a plan may hold.
pub const MAX_PLAN_LINES: usize = 1_000_000;

/// One line's change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// The branch.
    pub branch: BranchId,
    /// The slot.
    pub slot: SlotIndex,
    /// Its new capacity.
    pub capacity: u32,
}

/// What is wrong with a line (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// The line's number.
    pub line: usize,
    /// What is wrong.
    pub error: String,
}

/// Every change of a plan, or every line that is wrong (and none of the plan applies).
pub fn parse(text: &str, max_branches: u32, max_slots: u32) -> Result<Vec<Change>, Vec<LineError>> {
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<(BranchId, SlotIndex), usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() || (line == 1 && raw.eq_ignore_ascii_case("branch,slot,capacity")) {
            continue;
        }
        if line > MAX_PLAN_LINES {
            errors.push(LineError {
                line,
                error: format!("a plan holds at most {MAX_PLAN_LINES} lines"),
            });
            break;
        }
        match parse_line(raw, max_branches, max_slots) {
            Ok(change) => match seen.insert((change.branch, change.slot), line) {
                Some(first) => errors.push(LineError {
                    line,
                    error: format!("the same branch and slot as line {first}"),
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

fn field(name: &str, text: &str, below: u64) -> Result<u64, String> {
    let digits = !text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit());
    let n: u64 = digits
        .then(|| text.parse().ok())
        .flatten()
        .ok_or_else(|| format!("{name} {text:?} is not a whole number"))?;
    if n >= below {
        return Err(format!("{name} {n} is not below {below}"));
    }
    Ok(n)
}

fn parse_line(raw: &str, max_branches: u32, max_slots: u32) -> Result<Change, String> {
    let fields: Vec<&str> = raw.split(',').map(str::trim).collect();
    let [branch, slot, capacity] = fields[..] else {
        return Err(format!(
            "expected 3 fields (branch,slot,capacity), found {}",
            fields.len()
        ));
    };
    let branch = field("branch", branch, u64::from(max_branches))? as u32;
    let slot = field("slot", slot, u64::from(max_slots))? as u32;
    let capacity = field("capacity", capacity, u64::from(MAX_CAPACITY) + 1)? as u32;
    Ok(Change {
        branch: BranchId(branch),
        slot,
        capacity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_plan_parses_whole() {
        let plan = "branch,slot,capacity\n1,0,5\n\n2, 13 , 0\n";
        let changes = parse(plan, 4, 100).unwrap();
        assert_eq!(
            changes,
            [
                Change {
                    branch: BranchId(1),
                    slot: 0,
                    capacity: 5
                },
                Change {
                    branch: BranchId(2),
                    slot: 13,
                    capacity: 0
                },
            ]
        );
    }

    #[test]
    fn every_bad_line_is_named() {
        let plan = "1,0,5\n9,0,5\n1,100,5\n1,0,6\nx\n1,1,-1\n1,2,99999999999\n1,3\n";
        let errors = parse(plan, 4, 100).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8], "{errors:?}");
        assert!(errors[2].error.contains("line 1"), "{errors:?}");
    }
}
