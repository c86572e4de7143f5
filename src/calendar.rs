//! A branch schedule as slot indices: days × windows per day from an opening date.
//!
//! The book knows slots only by index. Most portals number them the same way: day `d` of the
//! booking period, window `w` of that day, slot `d × windows_per_day + w`. [`Calendar`] does that
//! arithmetic (and the date arithmetic behind it) once, checked: every date and window out of the
//! schedule is an error, never a wrapped index.
//!
//! Dates are proleptic Gregorian calendar dates without a time zone ([`Date`]): the day a
//! window falls on is the authority's local day, whatever the server's zone. With the feature
//! `hijri`, [`Date::hijri`] gives a day's Umm al-Qura date (see [`crate::hijri`]).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use thiserror::Error;

use crate::book::SlotIndex;

/// The most slots a calendar may span: `max_slots_per_branch`'s largest value.
pub const MAX_CALENDAR_SLOTS: u32 = 1 << 22;

/// A calendar date (year, month 1–12, day 1–31), years 1 to 9999.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

/// Why a date, a schedule or a slot was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// Not a date (month 13, 30 February, year 0...), or not `YYYY-MM-DD`.
    #[error("not a calendar date between 0001-01-01 and 9999-12-31 written YYYY-MM-DD")]
    BadDate,
    /// `days` or `windows_per_day` is zero, or the schedule has more than
    /// [`MAX_CALENDAR_SLOTS`] slots.
    #[error("a schedule needs at least one day and one window, and at most 4194304 slots in all")]
    BadSchedule,
    /// The date lies outside the schedule's days.
    #[error("{0} is outside this schedule: choose a day from its first to its last")]
    DayOutside(Date),
    /// The window is not below `windows_per_day`.
    #[error("window {window} does not exist: a day has windows 0 to {last}")]
    WindowOutside {
        /// The window asked for.
        window: u32,
        /// The last window of a day.
        last: u32,
    },
}

impl Date {
    /// The date, if it exists.
    ///
    /// ```
    /// use surgegate::calendar::Date;
    ///
    /// assert!(Date::new(2028, 2, 29).is_ok()); // a leap year
    /// assert!(Date::new(2027, 2, 29).is_err());
    /// assert_eq!("2027-01-15".parse::<Date>()?, Date::new(2027, 1, 15)?);
    /// assert_eq!(Date::new(2027, 1, 15)?.to_string(), "2027-01-15");
    /// # Ok::<(), surgegate::calendar::CalendarError>(())
    /// ```
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, CalendarError> {
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        if valid {
            Ok(Self { year, month, day })
        } else {
            Err(CalendarError::BadDate)
        }
    }

    /// A date known to exist, for constants (the caller checks it).
    #[cfg_attr(not(feature = "hijri"), allow(dead_code))]
    pub(crate) const fn from_parts_unchecked(year: u16, month: u8, day: u8) -> Self {
        Self { year, month, day }
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, 1 to 31.
    pub fn day(self) -> u8 {
        self.day
    }

    /// The day of the week as ISO 8601 numbers it: 1 for Monday to 7 for Sunday.
    ///
    /// ```
    /// use surgegate::calendar::Date;
    ///
    /// assert_eq!("2024-03-11".parse::<Date>()?.weekday(), 1); // a Monday
    /// assert_eq!("1970-01-01".parse::<Date>()?.weekday(), 4); // a Thursday
    /// # Ok::<(), surgegate::calendar::CalendarError>(())
    /// ```
    pub fn weekday(self) -> u8 {
        // 1970-01-01 was a Thursday.
        ((self.days_since_unix_epoch() + 3).rem_euclid(7) + 1) as u8
    }

    /// Days since 1970-01-01 (negative before it).
    pub fn days_since_unix_epoch(self) -> i64 {
        // Counted in 400-year eras from 0000-03-01, so that the leap day ends each counted year.
        let (month, day) = (i64::from(self.month), i64::from(self.day));
        let year = i64::from(self.year) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The date `days` after 1970-01-01, if it is between years 1 and 9999.
    pub fn from_days_since_unix_epoch(days: i64) -> Result<Self, CalendarError> {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        let year = u16::try_from(year).map_err(|_| CalendarError::BadDate)?;
        Self::new(year, month as u8, day as u8)
    }

    /// The date `days` later (earlier if negative).
    pub fn add_days(self, days: i64) -> Result<Self, CalendarError> {
        Self::from_days_since_unix_epoch(self.days_since_unix_epoch() + days)
    }
}

fn is_leap(year: u16) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let digits = |r: Range<usize>| -> Result<u16, CalendarError> {
            let part = b.get(r).ok_or(CalendarError::BadDate)?;
            if !part.iter().all(u8::is_ascii_digit) {
                return Err(CalendarError::BadDate);
            }
            Ok(part.iter().fold(0, |n, d| n * 10 + u16::from(d - b'0')))
        };
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(CalendarError::BadDate);
        }
        Self::new(digits(0..4)?, digits(5..7)? as u8, digits(8..10)? as u8)
    }
}

/// A branch schedule: `days` days from `first_day`, each with `windows_per_day` windows; slot
/// `d × windows_per_day + w` is window `w` of day `d`.
///
/// ```
/// use surgegate::calendar::{Calendar, Date};
/// use surgegate::{ApplicantId, BranchId, SlotBook};
///
/// let first: Date = "2027-01-04".parse()?;
/// let cal = Calendar::new(first, 365, 16)?; // a year of 16 half-hour windows a day
/// let book = SlotBook::builder().max_slots_per_branch(cal.slots()).build();
///
/// let slot = cal.slot("2027-01-05".parse()?, 3)?;
/// assert_eq!(slot, 19);
/// book.set_capacity(BranchId(1), slot, 4)?;
///
/// // The earliest window in the week of the 5th.
/// let week = cal.slots_between("2027-01-04".parse()?, "2027-01-10".parse()?)?;
/// let hold = book.reserve_earliest(BranchId(1), week, ApplicantId(7))?;
/// assert_eq!(cal.day_and_window(hold.slot), Some(("2027-01-05".parse()?, 3)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calendar {
    first_day: Date,
    days: u32,
    windows_per_day: u32,
}

impl Calendar {
    /// A schedule of `days` days from `first_day` with `windows_per_day` windows each; at most
    /// [`MAX_CALENDAR_SLOTS`] slots in all, and its last day no later than 9999-12-31.
    pub fn new(first_day: Date, days: u32, windows_per_day: u32) -> Result<Self, CalendarError> {
        let slots = u64::from(days) * u64::from(windows_per_day);
        if days == 0 || windows_per_day == 0 || slots > u64::from(MAX_CALENDAR_SLOTS) {
            return Err(CalendarError::BadSchedule);
        }
        first_day.add_days(i64::from(days) - 1)?;
        Ok(Self {
            first_day,
            days,
            windows_per_day,
        })
    }

    /// Slots in the schedule: the `max_slots_per_branch` a book for it needs.
    pub fn slots(&self) -> u32 {
        self.days * self.windows_per_day
    }

    /// The first day.
    pub fn first_day(&self) -> Date {
        self.first_day
    }

    /// The last day.
    pub fn last_day(&self) -> Date {
        self.date_of(self.days - 1)
    }

    /// Windows per day.
    pub fn windows_per_day(&self) -> u32 {
        self.windows_per_day
    }

    fn date_of(&self, day_number: u32) -> Date {
        // In range: `new` checked that the last day exists.
        self.first_day
            .add_days(i64::from(day_number))
            .unwrap_or(self.first_day)
    }

    /// The number of `day` in the schedule (0 for the first day).
    fn day_number(&self, day: Date) -> Result<u32, CalendarError> {
        let n = day.days_since_unix_epoch() - self.first_day.days_since_unix_epoch();
        u32::try_from(n)
            .ok()
            .filter(|&n| n < self.days)
            .ok_or(CalendarError::DayOutside(day))
    }

    /// The slot of `window` on `day`.
    pub fn slot(&self, day: Date, window: u32) -> Result<SlotIndex, CalendarError> {
        if window >= self.windows_per_day {
            return Err(CalendarError::WindowOutside {
                window,
                last: self.windows_per_day - 1,
            });
        }
        Ok(self.day_number(day)? * self.windows_per_day + window)
    }

    /// The day and window of `slot`, if it is in the schedule.
    pub fn day_and_window(&self, slot: SlotIndex) -> Option<(Date, u32)> {
        (slot < self.slots()).then(|| {
            (
                self.date_of(slot / self.windows_per_day),
                slot % self.windows_per_day,
            )
        })
    }

    /// Every slot of the days `from..=to`, clamped to the schedule; an error if the two days
    /// do not overlap it at all. For `reserve_earliest` and `availability`.
    pub fn slots_between(&self, from: Date, to: Date) -> Result<Range<SlotIndex>, CalendarError> {
        let first = self.first_day.days_since_unix_epoch();
        let (lo, hi) = (
            from.days_since_unix_epoch() - first,
            to.days_since_unix_epoch() - first,
        );
        if hi < 0 || lo >= i64::from(self.days) || lo > hi {
            return Err(CalendarError::DayOutside(if hi < 0 { to } else { from }));
        }
        let lo = lo.max(0) as u32;
        let hi = hi.min(i64::from(self.days) - 1) as u32;
        Ok(lo * self.windows_per_day..(hi + 1) * self.windows_per_day)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn days_round_trip_through_the_unix_epoch_for_every_day_of_four_centuries() {
        assert_eq!(d("1970-01-01").days_since_unix_epoch(), 0);
        assert_eq!(d("2000-03-01").days_since_unix_epoch(), 11_017);
        assert_eq!(d("0001-01-01").days_since_unix_epoch(), -719_162);
        assert_eq!(d("9999-12-31").days_since_unix_epoch(), 2_932_896);
        let start = d("1900-01-01").days_since_unix_epoch();
        let mut previous = Date::from_days_since_unix_epoch(start - 1).unwrap();
        for n in start..start + 146_097 {
            let date = Date::from_days_since_unix_epoch(n).unwrap();
            assert_eq!(date.days_since_unix_epoch(), n);
            assert!(date > previous);
            assert_eq!(date.to_string().parse::<Date>().unwrap(), date);
            previous = date;
        }
        assert!(Date::from_days_since_unix_epoch(2_932_897).is_err());
        assert!(Date::from_days_since_unix_epoch(-719_163).is_err());
    }

    #[test]
    fn weekdays_follow_each_other_from_a_known_monday() {
        let monday = d("2024-03-11");
        for n in -800..800 {
            let day = monday.add_days(n).unwrap();
            assert_eq!(i64::from(day.weekday()), n.rem_euclid(7) + 1, "{day}");
        }
        assert_eq!(d("0001-01-01").weekday(), 1);
        assert_eq!(d("9999-12-31").weekday(), 5);
    }

    #[test]
    fn bad_dates_and_texts_are_errors() {
        for text in [
            "2027-02-29",
            "2100-02-29",
            "2027-13-01",
            "2027-00-10",
            "0000-01-01",
            "2027-1-05",
            "2027/01/05",
            "20270105",
            "",
            "２027-01-05",
            "2027-01-32",
        ] {
            assert_eq!(text.parse::<Date>(), Err(CalendarError::BadDate), "{text}");
        }
        assert!(Date::new(2000, 2, 29).is_ok());
    }

    #[test]
    fn slots_map_to_days_and_windows_and_back() {
        let cal = Calendar::new(d("2027-12-30"), 5, 3).unwrap();
        assert_eq!(cal.slots(), 15);
        assert_eq!(cal.last_day(), d("2028-01-03"));
        for slot in 0..15 {
            let (day, window) = cal.day_and_window(slot).unwrap();
            assert_eq!(cal.slot(day, window), Ok(slot));
        }
        assert_eq!(cal.day_and_window(15), None);
        assert_eq!(
            cal.slot(d("2028-01-04"), 0),
            Err(CalendarError::DayOutside(d("2028-01-04")))
        );
        assert_eq!(
            cal.slot(d("2027-12-30"), 3),
            Err(CalendarError::WindowOutside { window: 3, last: 2 })
        );
        assert_eq!(
            cal.slots_between(d("2027-12-31"), d("2028-01-01")),
            Ok(3..9)
        );
        assert_eq!(
            cal.slots_between(d("2027-01-01"), d("2030-01-01")),
            Ok(0..15)
        );
        assert!(cal.slots_between(d("2028-01-04"), d("2028-02-01")).is_err());
        assert!(cal.slots_between(d("2028-01-01"), d("2027-12-31")).is_err());
    }

    #[test]
    fn schedules_are_bounded() {
        let first = d("2027-01-01");
        assert_eq!(Calendar::new(first, 0, 4), Err(CalendarError::BadSchedule));
        assert_eq!(Calendar::new(first, 4, 0), Err(CalendarError::BadSchedule));
        assert_eq!(
            Calendar::new(first, 1 << 12, 1 << 11),
            Err(CalendarError::BadSchedule)
        );
        assert!(Calendar::new(first, 1 << 11, 1 << 11).is_ok());
        assert_eq!(
            Calendar::new(d("9999-12-01"), 40, 1),
            Err(CalendarError::BadDate)
        );
    }
}
