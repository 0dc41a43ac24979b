//! Working days on China's official calendar, and the deadlines counted in them.
//!
//! A working day is a Monday to Friday that is not an official holiday, or a Saturday
//! or Sunday that the State Council turned into a working day to lengthen a holiday
//! (调休上班). Deadlines of incidents are counted in these days, so a deadline that
//! crosses National Day moves by a week, and one that crosses an adjusted Saturday
//! moves by a day less than a plain weekday count would say:
//!
//! ```
//! use chrono::NaiveDate;
//! use wangge_core::calendar::Calendar;
//!
//! let calendar = Calendar::china();
//! let dispatched = NaiveDate::from_ymd_opt(2025, 9, 30).expect("a real date");
//! // 1–8 October are off, Saturday 11 October is a working day:
//! // 9 (1st), 10 (2nd), 11 (3rd), 13 (4th), 14 (5th).
//! let due = calendar.add_working_days(dispatched, 5);
//! assert_eq!(due.value, NaiveDate::from_ymd_opt(2025, 10, 14).expect("a real date"));
//! assert!(!due.estimated);
//! ```
//!
//! # Where the data comes from, and how it is updated
//!
//! Every year, usually in November, the State Council General Office publishes the next
//! year's schedule (国务院办公厅关于XXXX年部分节假日安排的通知). `calendar/cn.json`,
//! embedded in the library, holds these notices for 2020–2026, each year naming its
//! document; [`Calendar::china`] reads it. The calendar is reference data written by the
//! server: when a new year is published the server sends the same JSON format,
//! [`Calendar::from_json`] validates it and [`Calendar::merge`] adds it (a year the
//! update carries replaces the one the device had, so a correction — like 2020's
//! extended Spring Festival — reaches devices the same way).
//!
//! ```json
//! {"version": "2025-11-04",
//!  "years": {"2025": {"holidays": ["2025-01-01", "2025-01-28", "…"],
//!                     "workdays": ["2025-01-26", "2025-02-08", "…"],
//!                     "names": {"2025-01-28": "春节"}}}}
//! ```
//!
//! `holidays` are all the days off of each holiday block, weekend days inside the block
//! included; `workdays` are the Saturdays and Sundays that are working days; `names`
//! (optional) names a block by its first day. Other fields (`source`, `note`) are for
//! people and are ignored. A bad file is refused whole with a [`CalendarError`] naming
//! the year and the date; it never panics.
//!
//! # Years without a published schedule
//!
//! A year that is not in the data is still answered, by the weekends-only rule (Monday
//! to Friday work, Saturday and Sunday off), and every answer that consulted such a day
//! says so: [`Answer::estimated`] is `true`. The app shows such deadlines as estimates
//! until the server sends the year.
//!
//! # Deadlines
//!
//! [`deadline_status`] is a pure function of the calendar, the rule, the [`Clock`] and
//! `now`; it does no I/O and never reads the device clock. Times are judged in China
//! time (+08:00) whatever offset they carry.
//!
//! - The day of dispatch is not counted (期间开始的当日不计入, Civil Code art. 201): a
//!   deadline of n working days ends at 23:59:59 of the n-th working day after the day of
//!   dispatch ([`DeadlineRule::WorkingDays`]; 5 normally, 10 for complex matters).
//! - A statutory deadline in calendar days ([`DeadlineRule::CalendarDays`]) ends on the
//!   n-th calendar day after dispatch; if that day is not a working day it moves to the
//!   next working day, as Civil Code art. 203 moves a period whose last day is a holiday.
//! - Enterprise requests follow "117" (1小时响应、1天拿方案、7天办结), read here as:
//!   an answer within 1 hour of dispatch, in clock time whatever the day
//!   ([`DeadlineStatus::answer_due_at`]); a plan by the end of the next working day
//!   ([`DeadlineStatus::plan_due_at`]); closed within 7 days ("最迟7天内办结": calendar
//!   days, as 天 means where the seed does not say 工作日), by the calendar-day rule above
//!   ([`DeadlineStatus::due_at`]). Whether the answer and the plan came in time is for the
//!   incident to compare with its own record; this module gives the times.
//! - A department's clock stops when it completes the item or rejects it as not its duty;
//!   a stopped clock freezes the status at the moment it stopped, so an item completed in
//!   time is never overdue later.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Included};

use chrono::{DateTime, Datelike, Days, FixedOffset, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use serde::Deserialize;

/// China Standard Time, in which every deadline is judged.
pub const CHINA_TIME: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("+08:00 is a valid offset"),
};

/// The last second of a day, the moment a deadline ends.
const END_OF_DAY: NaiveTime = match NaiveTime::from_hms_opt(23, 59, 59) {
    Some(time) => time,
    None => panic!("23:59:59 is a valid time"),
};

/// The schedules published by the State Council General Office, 2020–2026.
/// The built-in calendar data, as the server publishes it in its reference document.
pub const CHINA_JSON: &str = include_str!("calendar/cn.json");

/// Why calendar data was refused. Nothing of it is used: a calendar loads whole or not at all.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar data is not a calendar file: {0}")]
    Malformed(#[source] serde_json::Error),

    #[error("calendar data: {key:?} is not a year: years are keys like \"2026\"")]
    BadYear { key: String },

    #[error("calendar year {year}: {value:?} is not a date: write dates as YYYY-MM-DD")]
    BadDate { year: i32, value: String },

    #[error("calendar year {year}: {date} is not in {year}: list it under its own year")]
    OutsideYear { year: i32, date: NaiveDate },

    #[error("calendar year {year}: {date} is listed twice in {list}")]
    Duplicate { year: i32, date: NaiveDate, list: &'static str },

    #[error("calendar year {year}: {date} is listed both as a holiday and as a working day")]
    HolidayAndWorkday { year: i32, date: NaiveDate },

    #[error(
        "calendar year {year}: {date} is a {} and cannot be an adjusted working day: only Saturdays and Sundays can",
        weekday_name(*.weekday)
    )]
    WorkdayNotWeekend { year: i32, date: NaiveDate, weekday: Weekday },

    #[error("calendar year {year}: a name is given for {date}, which is not listed as a holiday")]
    NameNotHoliday { year: i32, date: NaiveDate },
}

/// A calendar answer, and whether it had to be guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Answer<T> {
    pub value: T,
    /// Some day consulted lies in a year without a published schedule, so the
    /// weekends-only rule was used for it: the real answer may differ.
    pub estimated: bool,
}

/// China's working-day calendar: the published years, and the weekends-only rule for the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    version: String,
    years: BTreeMap<i32, Year>,
}

/// One year's published schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Year {
    /// Days off, on any day of the week.
    holidays: BTreeSet<NaiveDate>,
    /// Saturdays and Sundays that are working days.
    workdays: BTreeSet<NaiveDate>,
    /// Names of holiday blocks, by their first day.
    names: BTreeMap<NaiveDate, String>,
}

/// The JSON file, kept apart from [`Calendar`] so the format can change without the API.
#[derive(Debug, Deserialize)]
struct CalendarFile {
    version: String,
    years: BTreeMap<String, YearFile>,
}

#[derive(Debug, Deserialize)]
struct YearFile {
    // No defaults: a misspelt "workdays" must fail rather than publish a year without them.
    holidays: Vec<String>,
    workdays: Vec<String>,
    #[serde(default)]
    names: BTreeMap<String, String>,
}

impl Calendar {
    /// The built-in calendar: China's schedules for 2020–2026. It parses the embedded data on
    /// each call: build it once and keep it.
    pub fn china() -> Calendar {
        // The embedded file is checked by the tests, so it cannot fail at run time.
        Calendar::from_json(CHINA_JSON).expect("the embedded calendar/cn.json is valid")
    }

    /// A calendar with no published year: every answer uses the weekends-only rule and is estimated.
    pub fn weekends_only() -> Calendar {
        Calendar { version: String::new(), years: BTreeMap::new() }
    }

    /// Reads a calendar in the JSON format described in the module docs, as the server sends it.
    pub fn from_json(json: &str) -> Result<Calendar, CalendarError> {
        let file: CalendarFile = serde_json::from_str(json).map_err(CalendarError::Malformed)?;
        let mut years = BTreeMap::new();
        for (key, year_file) in file.years {
            let year = parse_year(&key)?;
            years.insert(year, Year::from_file(year, year_file)?);
        }
        Ok(Calendar { version: file.version, years })
    }

    /// Takes in an update: each year it carries replaces this calendar's schedule for that
    /// year; the other years are kept. The version becomes the update's.
    pub fn merge(&mut self, update: Calendar) {
        self.version = update.version;
        self.years.extend(update.years);
    }

    /// The data's version, as its file states it (empty for [`Calendar::weekends_only`]).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The years with a published schedule, in order.
    pub fn published_years(&self) -> impl Iterator<Item = i32> {
        self.years.keys().copied()
    }

    /// Whether `year` has a published schedule; answers about other years are estimated.
    pub fn is_published(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// Whether `date` is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> Answer<bool> {
        let weekday = is_weekday(date);
        match self.years.get(&date.year()) {
            Some(year) if year.workdays.contains(&date) => Answer { value: true, estimated: false },
            Some(year) if year.holidays.contains(&date) => Answer { value: false, estimated: false },
            Some(_) => Answer { value: weekday, estimated: false },
            None => Answer { value: weekday, estimated: true },
        }
    }

    /// The name of the holiday `date` belongs to (like `"春节"`), if it is a listed holiday
    /// of a named block.
    pub fn holiday_name(&self, date: NaiveDate) -> Option<&str> {
        // Walk back to the first day of the block, across a new year if need be.
        let mut day = date;
        loop {
            let year = self.years.get(&day.year())?;
            if !year.holidays.contains(&day) {
                return None;
            }
            if let Some(name) = year.names.get(&day) {
                return Some(name);
            }
            day = day.pred_opt()?;
        }
    }

    /// The `n`-th working day strictly after `start`; `start` itself when `n` is 0.
    ///
    /// `start` may be any day, a holiday or weekend included. Beyond year 262143, the last
    /// date chrono represents, the answer stays at that date.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Answer<NaiveDate> {
        if n == 0 {
            return Answer { value: start, estimated: false };
        }
        let target = i64::from(n);
        let first = day_number(start);
        let last_representable = day_number(NaiveDate::MAX);
        // Widen until the window holds n working days, then find the first day that
        // completes them; counting a window costs the same whatever its length.
        let mut span = target + 30;
        let hi = loop {
            let hi = first.saturating_add(span).min(last_representable);
            if self.count_working_days(start, date_at(hi)).value >= target {
                break hi;
            }
            if hi == last_representable {
                return Answer { value: NaiveDate::MAX, estimated: true };
            }
            span = span.saturating_mul(2);
        };
        let (mut lo, mut hi) = (first + 1, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.count_working_days(start, date_at(mid)).value >= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let due = date_at(hi);
        Answer { value: due, estimated: self.count_working_days(start, due).estimated }
    }

    /// The number of working days in `(from, to]`: after `from`, up to and including `to`.
    /// Negative, the same count, when `to` is before `from`, so that
    /// `working_days_between(d, add_working_days(d, n)) == n`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> Answer<i64> {
        if to >= from {
            self.count_working_days(from, to)
        } else {
            let backwards = self.count_working_days(to, from);
            Answer { value: -backwards.value, estimated: backwards.estimated }
        }
    }

    /// Working days in `(after, through]`, zero when `through <= after`.
    fn count_working_days(&self, after: NaiveDate, through: NaiveDate) -> Answer<i64> {
        if through <= after {
            return Answer { value: 0, estimated: false };
        }
        let mut count = weekdays_up_to(day_number(through)) - weekdays_up_to(day_number(after));
        let first_year = after.succ_opt().map_or(after.year(), |day| day.year());
        let window = (Excluded(after), Included(through));
        let mut n_published: i64 = 0;
        for year in self.years.range(first_year..=through.year()).map(|(_, year)| year) {
            n_published += 1;
            count -= to_i64(year.holidays.range(window).filter(|day| is_weekday(**day)).count());
            count += to_i64(year.workdays.range(window).count());
        }
        let n_years = i64::from(through.year()) - i64::from(first_year) + 1;
        Answer { value: count, estimated: n_published < n_years }
    }
}

impl Year {
    fn from_file(year: i32, file: YearFile) -> Result<Year, CalendarError> {
        let holidays = parse_dates(year, &file.holidays, "holidays")?;
        let workdays = parse_dates(year, &file.workdays, "workdays")?;
        if let Some(date) = holidays.intersection(&workdays).next() {
            return Err(CalendarError::HolidayAndWorkday { year, date: *date });
        }
        if let Some(date) = workdays.iter().find(|date| is_weekday(**date)) {
            return Err(CalendarError::WorkdayNotWeekend { year, date: *date, weekday: date.weekday() });
        }
        let mut names = BTreeMap::new();
        for (key, name) in file.names {
            let date = parse_date(year, &key)?;
            if !holidays.contains(&date) {
                return Err(CalendarError::NameNotHoliday { year, date });
            }
            names.insert(date, name);
        }
        Ok(Year { holidays, workdays, names })
    }
}

fn parse_year(key: &str) -> Result<i32, CalendarError> {
    key.parse::<i32>()
        .ok()
        .filter(|year| NaiveDate::from_ymd_opt(*year, 1, 1).is_some())
        .ok_or_else(|| CalendarError::BadYear { key: key.to_owned() })
}

fn parse_date(year: i32, value: &str) -> Result<NaiveDate, CalendarError> {
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| CalendarError::BadDate { year, value: value.to_owned() })?;
    if date.year() != year {
        return Err(CalendarError::OutsideYear { year, date });
    }
    Ok(date)
}

fn parse_dates(year: i32, values: &[String], list: &'static str) -> Result<BTreeSet<NaiveDate>, CalendarError> {
    let mut dates = BTreeSet::new();
    for value in values {
        let date = parse_date(year, value)?;
        if !dates.insert(date) {
            return Err(CalendarError::Duplicate { year, date, list });
        }
    }
    Ok(dates)
}

fn is_weekday(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// Days since 0000-12-31, a Sunday: day 1 is Monday 0001-01-01.
fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce())
}

/// The date of a day number, clamped to the dates chrono represents.
fn date_at(day: i64) -> NaiveDate {
    let clamped = day.clamp(day_number(NaiveDate::MIN), day_number(NaiveDate::MAX));
    i32::try_from(clamped).ok().and_then(NaiveDate::from_num_days_from_ce_opt).unwrap_or(NaiveDate::MAX)
}

/// Mondays to Fridays among days `1..=day` (negative for days before day 1), so that the
/// difference of two values counts the weekdays between them.
fn weekdays_up_to(day: i64) -> i64 {
    // Days 1 to 5 of each week from day 1 are Monday to Friday.
    5 * day.div_euclid(7) + day.rem_euclid(7).min(5)
}

fn to_i64(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// How long a department has to handle an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadlineRule {
    /// Ends with the n-th working day after the day of dispatch.
    WorkingDays(u32),
    /// A statutory limit: ends with the n-th calendar day after the day of dispatch, moved
    /// to the next working day if that day is not one.
    CalendarDays(u32),
    /// Enterprise requests: answer in 1 hour, a plan in 1 working day, closed in 7.
    Enterprise117,
}

impl DeadlineRule {
    /// The usual limit: 5 working days.
    pub const NORMAL: DeadlineRule = DeadlineRule::WorkingDays(5);
    /// The limit for complex matters: 10 working days.
    pub const COMPLEX: DeadlineRule = DeadlineRule::WorkingDays(10);
}

/// One department's clock on an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Clock {
    /// When the item was dispatched to the department.
    pub started: DateTime<FixedOffset>,
    /// When the department completed the item or rejected it as not its duty.
    pub stopped: Option<DateTime<FixedOffset>>,
}

/// Where an item stands against its deadline, at `now` or at the moment its clock stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeadlineStatus {
    /// The end of the due day, 23:59:59 China time. For "117", the time to close the item.
    pub due_at: DateTime<FixedOffset>,
    /// Still running, not overdue, and the due day is today or the next working day.
    pub due_soon: bool,
    /// The clock ran (or stopped) after the end of the due day.
    pub overdue: bool,
    /// Working days after the day of dispatch up to and including today (or the day the
    /// clock stopped): the one in progress counts. Equals the rule's n on the due day.
    pub working_days_used: i64,
    /// Working days after today up to and including the due day: 0 on the due day,
    /// negative once working days have passed beyond it.
    pub working_days_left: i64,
    /// Some day involved lies in a year without a published schedule.
    pub estimated: bool,
    /// "117" only: the answer is due 1 hour after dispatch.
    pub answer_due_at: Option<DateTime<FixedOffset>>,
    /// "117" only: the plan is due at the end of the next working day.
    pub plan_due_at: Option<DateTime<FixedOffset>>,
}

/// The n-th calendar day after `start`, moved to the next working day if it is not one.
fn calendar_days_due(calendar: &Calendar, start: NaiveDate, n: u32) -> (NaiveDate, bool) {
    let last = start.checked_add_days(Days::new(u64::from(n))).unwrap_or(NaiveDate::MAX);
    let working = calendar.is_working_day(last);
    if working.value {
        (last, working.estimated)
    } else {
        let next = calendar.add_working_days(last, 1);
        (next.value, working.estimated || next.estimated)
    }
}

/// The status of `clock` under `rule` at `now`. A stopped clock is judged at the moment it
/// stopped, whatever `now` is.
pub fn deadline_status(
    calendar: &Calendar,
    rule: DeadlineRule,
    clock: &Clock,
    now: DateTime<FixedOffset>,
) -> DeadlineStatus {
    let started = clock.started.with_timezone(&CHINA_TIME);
    let at = clock.stopped.unwrap_or(now).with_timezone(&CHINA_TIME);
    let start_day = started.date_naive();
    let at_day = at.date_naive();

    let (due_day, mut estimated) = match rule {
        DeadlineRule::WorkingDays(n) => {
            let due = calendar.add_working_days(start_day, n);
            (due.value, due.estimated)
        }
        DeadlineRule::CalendarDays(n) => calendar_days_due(calendar, start_day, n),
        // "最迟7天内办结": days, not working days (the seed says 天, where a working-day
        // limit says 工作日), so the calendar-day rule with its move past holidays.
        DeadlineRule::Enterprise117 => calendar_days_due(calendar, start_day, 7),
    };
    let (answer_due_at, plan_due_at) = match rule {
        DeadlineRule::Enterprise117 => {
            let plan = calendar.add_working_days(start_day, 1);
            estimated |= plan.estimated;
            (Some(started.checked_add_signed(TimeDelta::hours(1)).unwrap_or(started)), Some(end_of(plan.value)))
        }
        DeadlineRule::WorkingDays(_) | DeadlineRule::CalendarDays(_) => (None, None),
    };

    let used = calendar.working_days_between(start_day, at_day);
    let left = calendar.working_days_between(at_day, due_day);
    estimated |= used.estimated || left.estimated;
    // Comparing days rather than instants keeps the whole last second of the due day in time.
    let overdue = at_day > due_day;
    DeadlineStatus {
        due_at: end_of(due_day),
        due_soon: clock.stopped.is_none() && !overdue && left.value <= 1,
        overdue,
        working_days_used: used.value.max(0),
        working_days_left: left.value,
        estimated,
        answer_due_at,
        plan_due_at,
    }
}

/// The last second of `day`, China time.
fn end_of(day: NaiveDate) -> DateTime<FixedOffset> {
    CHINA_TIME
        .from_local_datetime(&day.and_time(END_OF_DAY))
        .single()
        .unwrap_or_else(|| DateTime::<Utc>::MAX_UTC.with_timezone(&CHINA_TIME))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// A China time written as `YYYY-MM-DD HH:MM`.
    fn time(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_str(&format!("{text} +0800"), "%Y-%m-%d %H:%M %z").unwrap()
    }

    fn days(first: NaiveDate, last: NaiveDate) -> impl Iterator<Item = NaiveDate> {
        first.iter_days().take_while(move |day| *day <= last)
    }

    /// Every holiday block of 2024–2026, as the notices give them, weekend days included.
    const BLOCKS_2024_2026: &[(&str, &str, &str)] = &[
        ("2023-12-30", "2024-01-01", "元旦"),
        ("2024-02-10", "2024-02-17", "春节"),
        ("2024-04-04", "2024-04-06", "清明节"),
        ("2024-05-01", "2024-05-05", "劳动节"),
        ("2024-06-08", "2024-06-10", "端午节"),
        ("2024-09-15", "2024-09-17", "中秋节"),
        ("2024-10-01", "2024-10-07", "国庆节"),
        ("2025-01-01", "2025-01-01", "元旦"),
        ("2025-01-28", "2025-02-04", "春节"),
        ("2025-04-04", "2025-04-06", "清明节"),
        ("2025-05-01", "2025-05-05", "劳动节"),
        ("2025-05-31", "2025-06-02", "端午节"),
        ("2025-10-01", "2025-10-08", "国庆节、中秋节"),
        ("2026-01-01", "2026-01-03", "元旦"),
        ("2026-02-15", "2026-02-23", "春节"),
        ("2026-04-04", "2026-04-06", "清明节"),
        ("2026-05-01", "2026-05-05", "劳动节"),
        ("2026-06-19", "2026-06-21", "端午节"),
        ("2026-09-25", "2026-09-27", "中秋节"),
        ("2026-10-01", "2026-10-07", "国庆节"),
    ];

    /// Every adjusted working Saturday and Sunday of 2024–2026.
    const ADJUSTED_2024_2026: &[(&str, Weekday)] = &[
        ("2024-02-04", Weekday::Sun),
        ("2024-02-18", Weekday::Sun),
        ("2024-04-07", Weekday::Sun),
        ("2024-04-28", Weekday::Sun),
        ("2024-05-11", Weekday::Sat),
        ("2024-09-14", Weekday::Sat),
        ("2024-09-29", Weekday::Sun),
        ("2024-10-12", Weekday::Sat),
        ("2025-01-26", Weekday::Sun),
        ("2025-02-08", Weekday::Sat),
        ("2025-04-27", Weekday::Sun),
        ("2025-09-28", Weekday::Sun),
        ("2025-10-11", Weekday::Sat),
        ("2026-01-04", Weekday::Sun),
        ("2026-02-14", Weekday::Sat),
        ("2026-02-28", Weekday::Sat),
        ("2026-05-09", Weekday::Sat),
        ("2026-09-20", Weekday::Sun),
        ("2026-10-10", Weekday::Sat),
    ];

    #[track_caller]
    fn check_day(calendar: &Calendar, day: &str, working: bool, estimated: bool) {
        assert_eq!(calendar.is_working_day(date(day)), Answer { value: working, estimated }, "is_working_day({day})");
    }

    #[track_caller]
    fn check_add(calendar: &Calendar, start: &str, n: u32, expected: &str, estimated: bool) {
        let answer = calendar.add_working_days(date(start), n);
        assert_eq!(answer, Answer { value: date(expected), estimated }, "{start} + {n} working days");
    }

    #[track_caller]
    fn check_between(calendar: &Calendar, from: &str, to: &str, expected: i64, estimated: bool) {
        let answer = calendar.working_days_between(date(from), date(to));
        assert_eq!(answer, Answer { value: expected, estimated }, "working days in ({from}, {to}]");
    }

    #[test]
    fn every_2024_to_2026_holiday_is_a_day_off_with_its_name() {
        let calendar = Calendar::china();
        for (first, last, name) in BLOCKS_2024_2026 {
            for day in days(date(first), date(last)) {
                check_day(&calendar, &day.to_string(), false, false);
                assert_eq!(calendar.holiday_name(day), Some(*name), "name of {day}");
            }
        }
    }

    #[test]
    fn every_2024_to_2026_adjusted_weekend_day_is_a_working_day() {
        let calendar = Calendar::china();
        for (day, weekday) in ADJUSTED_2024_2026 {
            assert_eq!(date(day).weekday(), *weekday, "{day} is a {weekday}");
            check_day(&calendar, day, true, false);
            assert_eq!(calendar.holiday_name(date(day)), None);
        }
    }

    #[test]
    fn the_2024_to_2026_tables_are_the_whole_data_for_those_years() {
        // Any other day of 2024–2026 follows the weekday rule, so the tables above miss nothing.
        let calendar = Calendar::china();
        let holidays: BTreeSet<NaiveDate> =
            BLOCKS_2024_2026.iter().flat_map(|(first, last, _)| days(date(first), date(last))).collect();
        let adjusted: BTreeSet<NaiveDate> = ADJUSTED_2024_2026.iter().map(|(day, _)| date(day)).collect();
        for day in days(date("2024-01-01"), date("2026-12-31")) {
            let expected = adjusted.contains(&day) || (!holidays.contains(&day) && is_weekday(day));
            assert_eq!(calendar.is_working_day(day), Answer { value: expected, estimated: false }, "{day}");
        }
    }

    #[test]
    fn ordinary_days_follow_the_week() {
        let calendar = Calendar::china();
        check_day(&calendar, "2025-03-05", true, false); // a Wednesday
        check_day(&calendar, "2025-03-08", false, false); // a Saturday
        check_day(&calendar, "2025-03-09", false, false); // a Sunday
        // New Year's Eve 2024 was only encouraged as a day off: it is a working day.
        check_day(&calendar, "2024-02-09", true, false);
    }

    #[test]
    fn each_published_year_takes_off_exactly_its_statutory_holidays() {
        // The 调休 swaps are zero-sum: weekday holidays minus working weekend days is the
        // number of statutory holiday days: 11 until 2024, 13 from 2025 (除夕 and 2 May
        // added), and 13 in 2020, whose Spring Festival was extended by two working days.
        let calendar = Calendar::china();
        let statutory = [(2020, 13), (2021, 11), (2022, 11), (2023, 11), (2024, 11), (2025, 13), (2026, 13)];
        assert_eq!(calendar.published_years().collect::<Vec<_>>(), statutory.map(|(year, _)| year));
        for (year, n_statutory) in statutory {
            let first = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
            let last = NaiveDate::from_ymd_opt(year, 12, 31).unwrap();
            let n_weekdays = days(first, last).filter(|day| is_weekday(*day)).count() as i64;
            let n_working = calendar.working_days_between(first.pred_opt().unwrap(), last);
            assert_eq!(n_working, Answer { value: n_weekdays - n_statutory, estimated: false }, "{year}");
        }
    }

    #[test]
    fn the_2020_spring_festival_includes_the_covid_extension() {
        let calendar = Calendar::china();
        check_day(&calendar, "2020-01-19", true, false); // Sunday, worked as published
        check_day(&calendar, "2020-01-31", false, false); // Friday, extension
        check_day(&calendar, "2020-02-01", false, false); // Saturday, published as worked, then off
        check_day(&calendar, "2020-02-02", false, false);
        check_day(&calendar, "2020-02-03", true, false);
        assert_eq!(calendar.holiday_name(date("2020-02-02")), Some("春节"));
    }

    #[test]
    fn a_new_year_block_across_years_is_named_from_its_first_day() {
        let calendar = Calendar::china();
        assert_eq!(calendar.holiday_name(date("2022-12-31")), Some("元旦"));
        assert_eq!(calendar.holiday_name(date("2023-01-02")), Some("元旦"));
        assert_eq!(calendar.holiday_name(date("2023-01-03")), None);
    }

    #[test]
    fn adding_working_days_across_spring_festival_and_national_day() {
        let calendar = Calendar::china();
        let table = [
            // 2024 Spring Festival: 10–17 Feb off, Sun 4 and Sun 18 Feb worked, Fri 9 Feb worked.
            ("2024-02-02", 1, "2024-02-04"),
            ("2024-02-08", 1, "2024-02-09"),
            ("2024-02-08", 2, "2024-02-18"),
            ("2024-02-08", 3, "2024-02-19"),
            // 2024 National Day: 1–7 Oct off, Sun 29 Sep and Sat 12 Oct worked.
            ("2024-09-27", 1, "2024-09-29"),
            ("2024-09-29", 1, "2024-09-30"),
            ("2024-09-30", 1, "2024-10-08"),
            ("2024-09-30", 5, "2024-10-12"),
            // 2025 Spring Festival: 28 Jan–4 Feb off, Sun 26 Jan and Sat 8 Feb worked.
            ("2025-01-24", 1, "2025-01-26"),
            ("2025-01-24", 3, "2025-02-05"),
            ("2025-01-27", 5, "2025-02-10"),
            // 2025 National Day and Mid-Autumn: 1–8 Oct off, Sun 28 Sep and Sat 11 Oct worked.
            ("2025-09-26", 1, "2025-09-28"),
            ("2025-09-30", 1, "2025-10-09"),
            ("2025-09-30", 5, "2025-10-14"),
            ("2025-09-30", 10, "2025-10-21"),
            // 2026 New Year: 1–3 Jan off, Sun 4 Jan worked.
            ("2025-12-31", 1, "2026-01-04"),
            ("2025-12-31", 2, "2026-01-05"),
            // 2026 Spring Festival: 15–23 Feb off, Sat 14 and Sat 28 Feb worked.
            ("2026-02-13", 1, "2026-02-14"),
            ("2026-02-13", 2, "2026-02-24"),
            ("2026-02-12", 5, "2026-02-26"),
            ("2026-02-24", 4, "2026-02-28"),
            // 2026 Mid-Autumn, then National Day: 1–7 Oct off, Sun 20 Sep and Sat 10 Oct worked.
            ("2026-09-18", 1, "2026-09-20"),
            ("2026-09-24", 1, "2026-09-28"),
            ("2026-09-30", 1, "2026-10-08"),
            ("2026-09-30", 3, "2026-10-10"),
            ("2026-09-30", 4, "2026-10-12"),
        ];
        for (start, n, expected) in table {
            check_add(&calendar, start, n, expected, false);
        }
    }

    #[test]
    fn adding_from_a_holiday_a_weekend_or_an_adjusted_day() {
        let calendar = Calendar::china();
        check_add(&calendar, "2025-10-03", 1, "2025-10-09", false); // a holiday
        check_add(&calendar, "2025-03-08", 1, "2025-03-10", false); // a Saturday
        check_add(&calendar, "2025-03-09", 5, "2025-03-14", false); // a Sunday
        check_add(&calendar, "2025-10-11", 1, "2025-10-13", false); // an adjusted Saturday
    }

    #[test]
    fn adding_zero_working_days_is_the_start_itself() {
        let calendar = Calendar::china();
        check_add(&calendar, "2025-10-03", 0, "2025-10-03", false);
        check_add(&calendar, "2025-03-05", 0, "2025-03-05", false);
    }

    #[test]
    fn an_unpublished_year_answers_weekends_only_and_says_it_is_estimated() {
        let calendar = Calendar::china();
        assert!(!calendar.is_published(2031));
        check_day(&calendar, "2031-01-01", true, true); // a Wednesday, New Year's Day in fact
        check_day(&calendar, "2031-01-04", false, true); // a Saturday
        check_add(&calendar, "2031-10-01", 5, "2031-10-08", true);
        check_between(&calendar, "2031-01-01", "2031-12-31", 260, true);
        assert_eq!(calendar.holiday_name(date("2031-01-01")), None);
        check_day(&Calendar::weekends_only(), "2025-10-01", true, true);
    }

    #[test]
    fn a_span_into_an_unpublished_year_is_estimated() {
        let calendar = Calendar::china();
        check_add(&calendar, "2026-12-30", 1, "2026-12-31", false);
        // 2027-01-01 is counted as a working day, which it will almost surely not be.
        check_add(&calendar, "2026-12-30", 2, "2027-01-01", true);
        check_add(&calendar, "2026-12-30", 3, "2027-01-04", true);
        check_between(&calendar, "2026-12-01", "2027-01-05", 25, true);
        check_between(&calendar, "2026-12-01", "2026-12-31", 22, false);
        // A span before the first published year is estimated the same way.
        check_between(&calendar, "2019-12-30", "2020-01-02", 2, true);
    }

    #[test]
    fn working_days_between_counts_both_ways() {
        let calendar = Calendar::china();
        check_between(&calendar, "2025-09-30", "2025-10-14", 5, false);
        check_between(&calendar, "2025-10-14", "2025-09-30", -5, false);
        check_between(&calendar, "2025-10-14", "2025-10-14", 0, false);
        check_between(&calendar, "2025-10-01", "2025-10-08", 0, false);
        check_between(&calendar, "2025-10-08", "2025-10-09", 1, false);
        check_between(&calendar, "2025-10-09", "2025-10-08", -1, false);
        check_between(&calendar, "2023-12-31", "2024-12-31", 251, false);
        check_between(&calendar, "2024-12-31", "2025-12-31", 248, false);
        check_between(&calendar, "2025-12-31", "2026-12-31", 248, false);
        check_between(&calendar, "2026-12-31", "2023-12-31", -747, false);
    }

    #[test]
    fn adding_and_counting_agree_with_a_day_by_day_walk() {
        let calendar = Calendar::china();
        for start in days(date("2023-12-01"), date("2027-01-31")) {
            let mut day = start;
            for n in 0..=12 {
                if n > 0 {
                    day = day.succ_opt().unwrap();
                    while !calendar.is_working_day(day).value {
                        day = day.succ_opt().unwrap();
                    }
                }
                let added = calendar.add_working_days(start, n);
                assert_eq!(added.value, day, "{start} + {n}");
                assert_eq!(calendar.working_days_between(start, day).value, i64::from(n), "({start}, {day}]");
                assert_eq!(calendar.working_days_between(day, start).value, -i64::from(n), "({day}, {start}]");
            }
        }
    }

    #[test]
    fn absurd_spans_end_at_the_last_date_without_panicking() {
        let calendar = Calendar::china();
        assert_eq!(
            calendar.add_working_days(date("2025-01-01"), u32::MAX),
            Answer { value: NaiveDate::MAX, estimated: true }
        );
        assert_eq!(calendar.add_working_days(NaiveDate::MAX, 1).value, NaiveDate::MAX);
        assert!(calendar.add_working_days(NaiveDate::MIN, 1).estimated);
        let status = deadline_status(
            &calendar,
            DeadlineRule::WorkingDays(u32::MAX),
            &Clock { started: time("2025-01-01 09:00"), stopped: None },
            time("2025-01-02 09:00"),
        );
        assert!(status.estimated && !status.overdue);
    }

    // Calendar data: the errors name the year and the date.

    #[track_caller]
    fn check_refused(year: &str, holidays: &str, workdays: &str, expected: &str) {
        let json = format!(
            r#"{{"version": "test", "years": {{"{year}": {{"holidays": {holidays}, "workdays": {workdays}}}}}}}"#
        );
        let error = Calendar::from_json(&json).unwrap_err();
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn a_date_outside_its_year_is_refused() {
        check_refused(
            "2027",
            r#"["2026-12-31"]"#,
            "[]",
            "calendar year 2027: 2026-12-31 is not in 2027: list it under its own year",
        );
        let error =
            Calendar::from_json(r#"{"version": "t", "years": {"2027": {"holidays": [], "workdays": ["2028-01-01"]}}}"#)
                .unwrap_err();
        assert!(matches!(error, CalendarError::OutsideYear { year: 2027, .. }), "{error:?}");
    }

    #[test]
    fn a_date_both_holiday_and_workday_is_refused() {
        check_refused(
            "2027",
            r#"["2027-01-02"]"#,
            r#"["2027-01-02"]"#,
            "calendar year 2027: 2027-01-02 is listed both as a holiday and as a working day",
        );
    }

    #[test]
    fn a_weekday_listed_as_an_adjusted_working_day_is_refused() {
        check_refused(
            "2027",
            "[]",
            r#"["2027-01-04"]"#,
            "calendar year 2027: 2027-01-04 is a Monday and cannot be an adjusted working day: only Saturdays and Sundays can",
        );
    }

    #[test]
    fn malformed_data_is_refused() {
        let table = [
            ("{", "malformed"),
            (r#"{"years": {}}"#, "malformed"),
            (r#"{"version": "t", "years": {"2027": {"holidays": []}}}"#, "malformed"),
            (r#"{"version": "t", "years": {"2027": {"holidays": [1], "workdays": []}}}"#, "malformed"),
            (r#"{"version": "t", "years": {"20x7": {"holidays": [], "workdays": []}}}"#, "bad year"),
            (r#"{"version": "t", "years": {"2027": {"holidays": ["2027-02-30"], "workdays": []}}}"#, "bad date"),
            (
                r#"{"version": "t", "years": {"2027": {"holidays": ["2027-01-01", "2027-01-01"], "workdays": []}}}"#,
                "duplicate",
            ),
            (
                r#"{"version": "t", "years": {"2027": {"holidays": [], "workdays": [], "names": {"2027-01-01": "元旦"}}}}"#,
                "name",
            ),
        ];
        for (json, expected) in table {
            let error = Calendar::from_json(json).unwrap_err();
            let kind = match error {
                CalendarError::Malformed(_) => "malformed",
                CalendarError::BadYear { .. } => "bad year",
                CalendarError::BadDate { year: 2027, .. } => "bad date",
                CalendarError::Duplicate { year: 2027, list: "holidays", .. } => "duplicate",
                CalendarError::NameNotHoliday { year: 2027, .. } => "name",
                _ => "other",
            };
            assert_eq!(kind, expected, "{json}: {error}");
        }
    }

    #[test]
    fn an_update_adds_a_newly_published_year() {
        // Invented for the test; not the real 2027 schedule.
        let update = r#"{"version": "test-2027", "years": {"2027": {
            "holidays": ["2027-01-01", "2027-01-02", "2027-01-03"],
            "workdays": ["2027-01-09"],
            "names": {"2027-01-01": "元旦"}}}}"#;
        let mut calendar = Calendar::china();
        check_day(&calendar, "2027-01-01", true, true);
        calendar.merge(Calendar::from_json(update).unwrap());
        assert_eq!(calendar.version(), "test-2027");
        assert_eq!(calendar.published_years().collect::<Vec<_>>(), (2020..=2027).collect::<Vec<_>>());
        check_day(&calendar, "2027-01-01", false, false);
        check_day(&calendar, "2027-01-09", true, false);
        assert_eq!(calendar.holiday_name(date("2027-01-03")), Some("元旦"));
        check_add(&calendar, "2026-12-30", 2, "2027-01-04", false);
        // The years the update does not carry are kept.
        check_add(&calendar, "2025-09-30", 5, "2025-10-14", false);
    }

    #[test]
    fn an_update_replaces_a_year_it_carries() {
        let mut calendar = Calendar::china();
        calendar.merge(
            Calendar::from_json(r#"{"version": "v2", "years": {"2026": {"holidays": [], "workdays": []}}}"#).unwrap(),
        );
        check_day(&calendar, "2026-10-01", true, false);
        check_day(&calendar, "2025-10-01", false, false);
    }

    // Deadlines.

    fn running(started: &str) -> Clock {
        Clock { started: time(started), stopped: None }
    }

    #[track_caller]
    fn check_status(rule: DeadlineRule, clock: Clock, now: &str, expected: DeadlineStatus) {
        assert_eq!(deadline_status(&Calendar::china(), rule, &clock, time(now)), expected, "{rule:?} at {now}");
    }

    fn status(due_at: &str, used: i64, left: i64) -> DeadlineStatus {
        DeadlineStatus {
            due_at: DateTime::parse_from_str(&format!("{due_at} 23:59:59 +0800"), "%Y-%m-%d %H:%M:%S %z").unwrap(),
            due_soon: (0..=1).contains(&left),
            overdue: false,
            working_days_used: used,
            working_days_left: left,
            estimated: false,
            answer_due_at: None,
            plan_due_at: None,
        }
    }

    #[test]
    fn five_working_days_run_from_dispatch_to_the_end_of_the_fifth() {
        let clock = running("2025-09-30 10:00");
        check_status(DeadlineRule::NORMAL, clock, "2025-09-30 11:00", status("2025-10-14", 0, 5));
        check_status(DeadlineRule::NORMAL, clock, "2025-10-05 11:00", status("2025-10-14", 0, 5));
        check_status(DeadlineRule::NORMAL, clock, "2025-10-09 09:00", status("2025-10-14", 1, 4));
        check_status(DeadlineRule::NORMAL, clock, "2025-10-11 09:00", status("2025-10-14", 3, 2));
        check_status(DeadlineRule::NORMAL, clock, "2025-10-13 15:00", status("2025-10-14", 4, 1));
        check_status(DeadlineRule::NORMAL, clock, "2025-10-14 23:59", status("2025-10-14", 5, 0));
        let late = DeadlineStatus { due_soon: false, overdue: true, ..status("2025-10-14", 6, -1) };
        check_status(DeadlineRule::NORMAL, clock, "2025-10-15 00:00", late);
    }

    #[test]
    fn ten_working_days_for_complex_matters() {
        let clock = running("2025-09-30 10:00");
        check_status(DeadlineRule::COMPLEX, clock, "2025-10-09 09:00", status("2025-10-21", 1, 9));
        check_status(DeadlineRule::WorkingDays(10), clock, "2025-10-20 09:00", status("2025-10-21", 9, 1));
    }

    #[test]
    fn due_soon_when_the_due_day_is_the_next_working_day() {
        let clock = running("2025-03-03 09:00"); // a Monday; due Monday 10 March
        check_status(DeadlineRule::NORMAL, clock, "2025-03-06 09:00", status("2025-03-10", 3, 2));
        check_status(DeadlineRule::NORMAL, clock, "2025-03-07 09:00", status("2025-03-10", 4, 1));
        // Over the weekend the due Monday is the next working day.
        check_status(DeadlineRule::NORMAL, clock, "2025-03-08 09:00", status("2025-03-10", 4, 1));
        assert!(deadline_status(&Calendar::china(), DeadlineRule::NORMAL, &clock, time("2025-03-08 09:00")).due_soon);
    }

    #[test]
    fn calendar_days_end_on_the_nth_day_or_the_next_working_day() {
        // Ends on a working day: kept.
        check_status(
            DeadlineRule::CalendarDays(7),
            running("2025-03-03 09:00"),
            "2025-03-04 09:00",
            status("2025-03-10", 1, 4),
        );
        // Ends on a Sunday: moved to Monday.
        check_status(
            DeadlineRule::CalendarDays(30),
            running("2025-01-10 09:00"),
            "2025-01-13 09:00",
            status("2025-02-10", 1, 16),
        );
        // Ends inside National Day: moved to the first working day after it.
        check_status(
            DeadlineRule::CalendarDays(15),
            running("2025-09-20 09:00"),
            "2025-09-22 09:00",
            status("2025-10-09", 1, 8),
        );
        // Ends on an adjusted Saturday, a working day: kept.
        check_status(
            DeadlineRule::CalendarDays(1),
            running("2025-10-10 09:00"),
            "2025-10-10 18:00",
            status("2025-10-11", 0, 1),
        );
    }

    #[test]
    fn enterprise_117_answer_in_an_hour_plan_next_working_day_close_in_seven_days() {
        let expected = DeadlineStatus {
            answer_due_at: Some(time("2025-09-30 17:30")),
            plan_due_at: Some(status("2025-10-09", 0, 0).due_at),
            // 7 days after 09-30 is 10-07, inside the National Day holiday: the next working day.
            ..status("2025-10-09", 0, 1)
        };
        check_status(DeadlineRule::Enterprise117, running("2025-09-30 16:30"), "2025-09-30 16:45", expected);
        // Dispatched late on a Friday: the answer is still due within the hour, the plan on Monday.
        let friday = deadline_status(
            &Calendar::china(),
            DeadlineRule::Enterprise117,
            &running("2025-03-07 23:30"),
            time("2025-03-07 23:40"),
        );
        assert_eq!(friday.answer_due_at, Some(time("2025-03-08 00:30")));
        assert_eq!(friday.plan_due_at, Some(status("2025-03-10", 0, 0).due_at));
        assert_eq!(friday.due_at, status("2025-03-14", 0, 0).due_at);
    }

    #[test]
    fn a_stopped_clock_freezes_the_status() {
        // Completed on the due day: in time, and never overdue afterwards.
        let on_time = Clock { started: time("2025-09-30 10:00"), stopped: Some(time("2025-10-14 18:00")) };
        let frozen = DeadlineStatus { due_soon: false, ..status("2025-10-14", 5, 0) };
        check_status(DeadlineRule::NORMAL, on_time, "2025-11-01 09:00", frozen);
        check_status(DeadlineRule::NORMAL, on_time, "2026-06-01 09:00", frozen);
        // Rejected as not its duty after the deadline: overdue, and it stays so.
        let late = Clock { started: time("2025-09-30 10:00"), stopped: Some(time("2025-10-15 09:00")) };
        let overdue = DeadlineStatus { due_soon: false, overdue: true, ..status("2025-10-14", 6, -1) };
        check_status(DeadlineRule::NORMAL, late, "2025-10-16 09:00", overdue);
        check_status(DeadlineRule::NORMAL, late, "2025-12-01 09:00", overdue);
    }

    #[test]
    fn dispatch_is_judged_by_the_date_in_china() {
        // 17:00 UTC on 29 September is 01:00 on 30 September in China.
        let started = DateTime::parse_from_rfc3339("2025-09-29T17:00:00Z").unwrap();
        let now = DateTime::parse_from_rfc3339("2025-09-30T02:00:00Z").unwrap();
        let status_now =
            deadline_status(&Calendar::china(), DeadlineRule::NORMAL, &Clock { started, stopped: None }, now);
        assert_eq!(status_now.due_at, status("2025-10-14", 0, 0).due_at);
        assert_eq!(status_now.due_at.offset(), &CHINA_TIME);
    }

    #[test]
    fn a_deadline_into_an_unpublished_year_is_estimated() {
        let status_now = deadline_status(
            &Calendar::china(),
            DeadlineRule::NORMAL,
            &running("2026-12-28 09:00"),
            time("2026-12-28 10:00"),
        );
        assert_eq!(status_now.due_at, status("2027-01-04", 0, 0).due_at);
        assert!(status_now.estimated);
        let inside = deadline_status(
            &Calendar::china(),
            DeadlineRule::NORMAL,
            &running("2026-12-14 09:00"),
            time("2026-12-14 10:00"),
        );
        assert!(!inside.estimated);
    }
}
