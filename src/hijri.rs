//! Umm al-Qura (Saudi) Hijri dates of calendar days, feature `hijri`.
//!
//! [`Date::hijri`] gives a day's date in the Umm al-Qura calendar, the Hijri calendar that Saudi
//! Arabia's authorities publish, and [`HijriDate::to_date`] the way back. The month lengths are
//! the ones KACST computed for the calendar, as `icu_calendar` carries them; this module holds no
//! table of its own.
//!
//! Only the years those month lengths cover are offered: 1 Muharram 1300 AH (1882-11-12) to the
//! last day of 1600 AH (2174-11-25), [`HIJRI_FIRST_DAY`] to [`HIJRI_LAST_DAY`]. Outside them a
//! Hijri date would be a tabular estimate that can be a day or two off what the authority
//! publishes, so [`Date::hijri`] answers `None` and [`HijriDate::new`] an error instead.

use std::fmt;

use icu_calendar::cal::Hijri;
use icu_calendar::cal::hijri::UmmAlQura;
use thiserror::Error;

use crate::calendar::Date;

/// The first Hijri year offered.
pub const HIJRI_FIRST_YEAR: u16 = 1300;
/// The last Hijri year offered.
pub const HIJRI_LAST_YEAR: u16 = 1600;
/// 1 Muharram 1300 AH, the first day [`Date::hijri`] answers for.
pub const HIJRI_FIRST_DAY: Date = Date::from_parts_unchecked(1882, 11, 12);
/// 29 Dhu al-Hijjah 1600 AH, the last day [`Date::hijri`] answers for.
pub const HIJRI_LAST_DAY: Date = Date::from_parts_unchecked(2174, 11, 25);

/// A date in the Umm al-Qura calendar: year (AH), month 1–12 (1 is Muharram, 9 Ramadan), day
/// 1–30, within [`HIJRI_FIRST_YEAR`]..=[`HIJRI_LAST_YEAR`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HijriDate {
    year: u16,
    month: u8,
    day: u8,
}

/// Why a Hijri date was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HijriError {
    /// The year is outside 1300–1600 AH, the month outside 1–12, or the day past the month's
    /// last (29 or 30, as the Umm al-Qura calendar sets it for that month).
    #[error(
        "not an Umm al-Qura date between 1 Muharram 1300 and the end of 1600 AH: \
         give a month 1-12 and a day the month has (29 or 30)"
    )]
    BadDate,
}

fn umm_al_qura() -> Hijri<UmmAlQura> {
    Hijri::new_umm_al_qura()
}

impl HijriDate {
    /// The Umm al-Qura date, if it exists and is in the years offered.
    ///
    /// # Errors
    /// [`HijriError::BadDate`] for a year outside 1300–1600, a month outside 1–12, or a day the
    /// month does not have.
    ///
    /// ```
    /// use surgegate::hijri::HijriDate;
    ///
    /// let ramadan = HijriDate::new(1445, 9, 1)?;
    /// assert_eq!(ramadan.to_date().to_string(), "2024-03-11");
    /// assert!(HijriDate::new(1445, 13, 1).is_err());
    /// assert!(HijriDate::new(1299, 1, 1).is_err()); // before the calendar's published years
    /// # Ok::<(), surgegate::hijri::HijriError>(())
    /// ```
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, HijriError> {
        if !(HIJRI_FIRST_YEAR..=HIJRI_LAST_YEAR).contains(&year) {
            return Err(HijriError::BadDate);
        }
        // icu checks the month and the day against that year's month lengths.
        icu_calendar::Date::try_new_hijri_with_calendar(i32::from(year), month, day, umm_al_qura())
            .map_err(|_| HijriError::BadDate)?;
        Ok(Self { year, month, day })
    }

    /// The year, anno Hegirae.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1 (Muharram) to 12 (Dhu al-Hijjah).
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, 1 to 30.
    pub fn day(self) -> u8 {
        self.day
    }

    /// The month's Arabic name (محرم ... ذو الحجة).
    pub fn month_name_arabic(self) -> &'static str {
        ARABIC_MONTHS[usize::from(self.month - 1)]
    }

    /// The month's name in English transliteration (Muharram ... Dhu al-Hijjah).
    pub fn month_name_english(self) -> &'static str {
        ENGLISH_MONTHS[usize::from(self.month - 1)]
    }

    /// The Gregorian day of this date. Every date [`HijriDate::new`] accepts has one.
    pub fn to_date(self) -> Date {
        let iso = icu_calendar::Date::try_new_hijri_with_calendar(
            i32::from(self.year),
            self.month,
            self.day,
            umm_al_qura(),
        )
        .map(|d| d.to_calendar(icu_calendar::Iso));
        // `new` checked the date, and every year offered lies within 1882–2174.
        let Ok(iso) = iso else {
            return HIJRI_FIRST_DAY;
        };
        let year = u16::try_from(iso.year().extended_year()).unwrap_or(HIJRI_FIRST_DAY.year());
        Date::new(year, iso.month().ordinal, iso.day_of_month().0).unwrap_or(HIJRI_FIRST_DAY)
    }
}

const ARABIC_MONTHS: [&str; 12] = [
    "محرم",
    "صفر",
    "ربيع الأول",
    "ربيع الآخر",
    "جمادى الأولى",
    "جمادى الآخرة",
    "رجب",
    "شعبان",
    "رمضان",
    "شوال",
    "ذو القعدة",
    "ذو الحجة",
];

const ENGLISH_MONTHS: [&str; 12] = [
    "Muharram",
    "Safar",
    "Rabi al-Awwal",
    "Rabi al-Akhir",
    "Jumada al-Ula",
    "Jumada al-Akhirah",
    "Rajab",
    "Shaban",
    "Ramadan",
    "Shawwal",
    "Dhu al-Qadah",
    "Dhu al-Hijjah",
];

/// `1445-09-01 AH`: year, month and day in ASCII digits.
impl fmt::Display for HijriDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02} AH", self.year, self.month, self.day)
    }
}

impl Date {
    /// This day's Umm al-Qura date, or `None` outside [`HIJRI_FIRST_DAY`]..=[`HIJRI_LAST_DAY`]
    /// (where the calendar's published month lengths end).
    ///
    /// ```
    /// use surgegate::calendar::Date;
    ///
    /// let day: Date = "2024-07-07".parse()?;
    /// let hijri = day.hijri().expect("within 1300-1600 AH");
    /// assert_eq!((hijri.year(), hijri.month(), hijri.day()), (1446, 1, 1));
    /// assert_eq!(hijri.month_name_arabic(), "محرم");
    /// assert_eq!("1700-01-01".parse::<Date>()?.hijri(), None);
    /// # Ok::<(), surgegate::calendar::CalendarError>(())
    /// ```
    pub fn hijri(self) -> Option<HijriDate> {
        if self < HIJRI_FIRST_DAY || self > HIJRI_LAST_DAY {
            return None;
        }
        let iso = icu_calendar::Date::try_new_iso(i32::from(self.year()), self.month(), self.day())
            .ok()?;
        let h = iso.to_calendar(umm_al_qura());
        Some(HijriDate {
            year: u16::try_from(h.year().extended_year()).ok()?,
            month: h.month().ordinal,
            day: h.day_of_month().0,
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{HIJRI_FIRST_DAY, HIJRI_LAST_DAY, HijriDate, HijriError};
    use crate::calendar::Date;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn h(date: &str) -> (u16, u8, u8) {
        let h = d(date).hijri().unwrap();
        (h.year(), h.month(), h.day())
    }

    /// Days the Saudi authorities announced in the Umm al-Qura calendar.
    #[test]
    fn published_days_match() {
        // The Supreme Court: 30/12/1445 AH = 2024-07-06, 1/1/1446 AH = 2024-07-07.
        assert_eq!(h("2024-07-06"), (1445, 12, 30));
        assert_eq!(h("2024-07-07"), (1446, 1, 1));
        // 1 Ramadan 1445 = Monday 2024-03-11.
        assert_eq!(h("2024-03-11"), (1445, 9, 1));
        assert_eq!(h("2024-03-10"), (1445, 8, 29));
        // 1 Shawwal 1444 (Eid al-Fitr) = Friday 2023-04-21, after 29 days of Ramadan.
        assert_eq!(h("2023-04-21"), (1444, 10, 1));
        assert_eq!(h("2023-04-20"), (1444, 9, 29));
        // 1 Muharram 1444 = Saturday 2022-07-30; 2022-07-29 completed Dhu al-Hijjah 1443.
        assert_eq!(h("2022-07-30"), (1444, 1, 1));
        assert_eq!(h("2022-07-29"), (1443, 12, 30));
    }

    #[test]
    fn the_range_ends_where_the_published_years_end() {
        assert_eq!(h("1882-11-12"), (1300, 1, 1));
        assert_eq!(HIJRI_FIRST_DAY.hijri(), HijriDate::new(1300, 1, 1).ok());
        let last = HIJRI_LAST_DAY.hijri().unwrap();
        assert_eq!((last.year(), last.month()), (1600, 12));
        assert_eq!(HIJRI_LAST_DAY.add_days(1).unwrap().hijri(), None);
        assert_eq!(HIJRI_FIRST_DAY.add_days(-1).unwrap().hijri(), None);
        assert_eq!(d("0001-01-01").hijri(), None);
        assert_eq!(d("9999-12-31").hijri(), None);
    }

    #[test]
    fn every_day_of_the_range_round_trips_in_order() {
        let first = HIJRI_FIRST_DAY.days_since_unix_epoch();
        let last = HIJRI_LAST_DAY.days_since_unix_epoch();
        let mut previous: Option<HijriDate> = None;
        for n in first..=last {
            let date = Date::from_days_since_unix_epoch(n).unwrap();
            let hijri = date.hijri().unwrap();
            assert_eq!(hijri.to_date(), date);
            assert_eq!(
                HijriDate::new(hijri.year(), hijri.month(), hijri.day()),
                Ok(hijri)
            );
            if let Some(p) = previous {
                // The next day: one day on, or day 1 of the next month (after day 29 or 30).
                let next_day = (p.year, p.month, p.day + 1) == (hijri.year, hijri.month, hijri.day);
                let next_month = hijri.day == 1
                    && (p.day == 29 || p.day == 30)
                    && if p.month == 12 {
                        (hijri.year, hijri.month) == (p.year + 1, 1)
                    } else {
                        (hijri.year, hijri.month) == (p.year, p.month + 1)
                    };
                assert!(next_day || next_month, "{p} then {hijri}");
            }
            previous = Some(hijri);
        }
    }

    #[test]
    fn dates_that_do_not_exist_are_errors() {
        for (y, m, day) in [
            (1299, 12, 29),
            (1601, 1, 1),
            (1445, 0, 1),
            (1445, 13, 1),
            (1445, 1, 0),
            (1445, 1, 31),
            (1444, 9, 30), // that Ramadan had 29 days
            (0, 1, 1),
            (u16::MAX, u8::MAX, u8::MAX),
        ] {
            assert_eq!(
                HijriDate::new(y, m, day),
                Err(HijriError::BadDate),
                "{y}-{m}-{day}"
            );
        }
        assert_eq!(
            HijriDate::new(1445, 12, 30).map(HijriDate::to_date),
            Ok(d("2024-07-06"))
        );
    }

    #[test]
    fn months_are_named() {
        let ramadan = HijriDate::new(1445, 9, 1).unwrap();
        assert_eq!(ramadan.month_name_arabic(), "رمضان");
        assert_eq!(ramadan.month_name_english(), "Ramadan");
        assert_eq!(ramadan.to_string(), "1445-09-01 AH");
        assert_eq!(
            HijriDate::new(1446, 12, 1).unwrap().month_name_arabic(),
            "ذو الحجة"
        );
    }
}
