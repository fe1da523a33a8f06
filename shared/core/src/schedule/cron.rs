//! `cron(minutes hours day-of-month month day-of-week year)`, as EventBridge Scheduler
//! reads it.
//!
//! - minutes 0-59, hours 0-23, month 1-12 or JAN-DEC, year 1970-2199: `*`, values,
//!   ranges `a-b`, steps and lists;
//! - day-of-month 1-31: the same, or alone `L` (last day), `LW` (last weekday) or `nW`
//!   (the weekday nearest day n, within the month);
//! - day-of-week 1-7 (1 = SUN) or SUN-SAT: `*`, values, ranges and lists, no steps; or
//!   alone `L` (SAT), `nL` (the last weekday n of the month) or `n#k` (the k-th weekday n
//!   of the month, k from 1 to 5).
//!
//! A step `a/n` runs from a to the field's end, `*/n` from its start, `a-b/n` from a to
//! b; n goes from 1 to the field's largest value minus its smallest. Exactly one of the
//! two day fields is `?`: the other one alone picks the days. Names are read without
//! regard to case. Ranges run forwards (`22-2` is refused, not wrapped), and `L`, `W`
//! and `#` stand alone in their field, not inside lists or ranges.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

use super::error::{Field, ScheduleError};
use super::{FIRST_YEAR, LAST_YEAR, earliest};

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Cron {
    minutes: Vec<i8>,
    hours: Vec<i8>,
    days: Days,
    /// Bit m - 1 for month m.
    months: Bits,
    /// Bit y - 1970 for year y.
    years: Bits,
}

/// Which days of a month match: by day-of-month or by day-of-week.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Days {
    /// Bit d for day d.
    Dates(u32),
    /// `L`: the last day of the month.
    Last,
    /// `LW`: the last weekday (MON-FRI) of the month.
    LastWeekday,
    /// `nW`: the weekday nearest day n, without leaving the month.
    NearestWeekday(i8),
    /// Bit w for weekday w, 1 = SUN.
    Weekdays(u8),
    /// `nL`: the last weekday n of the month.
    LastOf(i8),
    /// `n#k`: the k-th weekday n of the month.
    Nth(i8, i8),
}

/// A set of field values: bit i stands for the field's smallest value plus i.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bits([u64; 4]);

impl Bits {
    fn insert(&mut self, index: u16) {
        if let Some(word) = self.0.get_mut(usize::from(index / 64)) {
            *word |= 1 << (index % 64);
        }
    }

    fn contains(&self, index: u16) -> bool {
        self.0
            .get(usize::from(index / 64))
            .is_some_and(|word| word >> (index % 64) & 1 == 1)
    }

    /// The values of `field` in the set, ascending.
    fn values(self, field: Field) -> Vec<i8> {
        let (min, max) = field.range();
        (0..=max - min)
            .filter(|&i| self.contains(i))
            .filter_map(|i| i8::try_from(min + i).ok())
            .collect()
    }
}

impl Cron {
    /// Parses the fields inside `cron(...)`; `expression` is the whole text, for errors.
    pub(super) fn parse(expression: &str, body: &str) -> Result<Cron, ScheduleError> {
        let fields: Vec<&str> = body.split_whitespace().collect();
        let [minutes, hours, day_of_month, month, day_of_week, year] = fields[..] else {
            return Err(ScheduleError::FieldCount {
                expression: expression.to_owned(),
                found: fields.len(),
            });
        };
        let parser = Parser { expression };
        let cron = Cron {
            minutes: parser.set(Field::Minutes, minutes)?.values(Field::Minutes),
            hours: parser.set(Field::Hours, hours)?.values(Field::Hours),
            days: parser.days(day_of_month, day_of_week)?,
            months: parser.set(Field::Month, month)?,
            years: parser.set(Field::Year, year)?,
        };
        if cron.next_date(Date::constant(FIRST_YEAR, 1, 1)).is_none() {
            return Err(ScheduleError::NeverFires {
                expression: expression.to_owned(),
            });
        }
        Ok(cron)
    }

    /// The first fire strictly after `after` on the wall clock of `zone`.
    ///
    /// Dates are walked from the local date of `after`; on each matching date the wall
    /// times are tried in order, and the first that exists and falls after `after` is
    /// the answer. Wall order is instant order on one date: a later wall time could only
    /// come first if a date had a gap and then a fold over the same wall times, which
    /// no zone of the tzdata has from 1970 on (a test checks every zone).
    pub(super) fn next_after(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let wall = zone.to_datetime(after);
        let (mut date, mut floor) = if wall.year() < FIRST_YEAR {
            (Date::constant(FIRST_YEAR, 1, 1), None)
        } else {
            (wall.date(), Some(wall.time()))
        };
        loop {
            let found = self.next_date(date)?;
            if found != date {
                floor = None;
            }
            if let Some(fire) = self.first_fire_on(found, floor, after, zone) {
                return Some(fire);
            }
            date = found.tomorrow().ok()?;
            floor = None;
        }
    }

    /// The first fire on `date` at a wall time later than `floor`, after `after`.
    fn first_fire_on(
        &self,
        date: Date,
        floor: Option<Time>,
        after: Timestamp,
        zone: &TimeZone,
    ) -> Option<Timestamp> {
        for &hour in &self.hours {
            if floor.is_some_and(|floor| hour < floor.hour()) {
                continue;
            }
            for &minute in &self.minutes {
                let Ok(time) = Time::new(hour, minute, 0, 0) else {
                    continue;
                };
                if floor.is_some_and(|floor| time <= floor) {
                    continue;
                }
                let fire = earliest(zone, date.to_datetime(time));
                if let Some(fire) = fire.filter(|fire| *fire > after) {
                    return Some(fire);
                }
            }
        }
        None
    }

    /// The first date on or after `from` whose day, month and year match, up to
    /// 2199-12-31.
    fn next_date(&self, from: Date) -> Option<Date> {
        let from = from.max(Date::constant(FIRST_YEAR, 1, 1));
        let (mut year, mut month, mut day) = (from.year(), from.month(), from.day());
        while year <= LAST_YEAR {
            let year_index = u16::try_from(year - FIRST_YEAR).ok()?;
            while self.years.contains(year_index) && month <= 12 {
                if self.months.contains(u16::from(month.unsigned_abs() - 1)) {
                    let first = Date::new(year, month, 1).ok()?;
                    let days = self.days_in(first) & (u32::MAX << day);
                    if days != 0 {
                        let found = i8::try_from(days.trailing_zeros()).ok()?;
                        return Date::new(year, month, found).ok();
                    }
                }
                (month, day) = (month + 1, 1);
            }
            (year, month, day) = (year + 1, 1, 1);
        }
        None
    }

    /// The matching days of the month that starts on `first`: bit d for day d.
    fn days_in(&self, first: Date) -> u32 {
        let length = first.days_in_month();
        let offset = first.weekday().to_sunday_zero_offset();
        // 1 = SUN ... 7 = SAT, as the day-of-week field counts.
        let weekday = |day: i8| (offset + day - 1) % 7 + 1;
        let bit = |day: i8| 1u32 << day;
        match self.days {
            Days::Dates(dates) => dates & (u32::MAX >> (31 - length)) & !1,
            Days::Last => bit(length),
            Days::LastWeekday => match weekday(length) {
                7 => bit(length - 1),
                1 => bit(length - 2),
                _ => bit(length),
            },
            Days::NearestWeekday(day) if day > length => 0,
            Days::NearestWeekday(day) => match weekday(day) {
                7 if day == 1 => bit(3),
                7 => bit(day - 1),
                1 if day == length => bit(day - 2),
                1 => bit(day + 1),
                _ => bit(day),
            },
            Days::Weekdays(set) => (1..=length)
                .filter(|&day| set >> weekday(day) & 1 == 1)
                .fold(0, |days, day| days | bit(day)),
            Days::LastOf(wanted) => bit(length - (weekday(length) - wanted).rem_euclid(7)),
            Days::Nth(wanted, nth) => {
                let day = 1 + (wanted - weekday(1)).rem_euclid(7) + 7 * (nth - 1);
                if day <= length { bit(day) } else { 0 }
            }
        }
    }
}

/// Reads the fields of one expression, naming it in every error.
#[derive(Debug)]
struct Parser<'a> {
    expression: &'a str,
}

impl Parser<'_> {
    fn token(&self, field: Field, token: &str, reason: impl Into<String>) -> ScheduleError {
        ScheduleError::Token {
            expression: self.expression.to_owned(),
            field,
            token: token.to_owned(),
            reason: reason.into(),
        }
    }

    /// A field of values, ranges, steps and `*`, separated by commas.
    fn set(&self, field: Field, text: &str) -> Result<Bits, ScheduleError> {
        let mut bits = Bits::default();
        for item in text.split(',') {
            if item.is_empty() {
                return Err(self.token(field, text, "a list entry is empty"));
            }
            self.item(field, item, &mut bits)?;
        }
        Ok(bits)
    }

    /// `*`, `a`, `a-b`, each with an optional `/n`.
    fn item(&self, field: Field, item: &str, bits: &mut Bits) -> Result<(), ScheduleError> {
        let (min, max) = field.range();
        let (span, step) = match item.split_once('/') {
            Some((span, step)) => (span, Some(step)),
            None => (item, None),
        };
        if step.is_some() && field == Field::DayOfWeek {
            return Err(self.token(field, item, "day-of-week takes no steps (`/`)"));
        }
        let step = step.map(|step| self.step(field, step)).transpose()?;
        let (start, end) = match (span, span.split_once('-')) {
            ("*", _) => (min, max),
            (_, Some((first, last))) => {
                let (first, last) = (self.value(field, first)?, self.value(field, last)?);
                if first > last {
                    let reason = "the range runs backwards; write it as two ranges";
                    return Err(self.token(field, item, reason));
                }
                (first, last)
            }
            (_, None) => {
                let value = self.value(field, span)?;
                (value, if step.is_some() { max } else { value })
            }
        };
        for value in (start..=end).step_by(usize::from(step.unwrap_or(1))) {
            bits.insert(value - min);
        }
        Ok(())
    }

    /// The `n` of `/n`: from 1 to the field's largest value minus its smallest.
    fn step(&self, field: Field, text: &str) -> Result<u16, ScheduleError> {
        let (min, max) = field.range();
        let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        match text.parse::<u16>() {
            Ok(step) if digits && (1..=max - min).contains(&step) => Ok(step),
            _ => Err(ScheduleError::Step {
                expression: self.expression.to_owned(),
                field,
                step: text.to_owned(),
            }),
        }
    }

    /// One value: a number in the field's range, or a name of one.
    fn value(&self, field: Field, token: &str) -> Result<u16, ScheduleError> {
        let (min, max) = field.range();
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            return match token.parse::<u16>() {
                Ok(value) if (min..=max).contains(&value) => Ok(value),
                _ => Err(ScheduleError::OutOfRange {
                    expression: self.expression.to_owned(),
                    field,
                    value: token.to_owned(),
                }),
            };
        }
        let names = field.names();
        if let Some(index) = names.iter().position(|n| n.eq_ignore_ascii_case(token)) {
            return Ok(min + u16::try_from(index).unwrap_or(u16::MAX));
        }
        Err(self.token(field, token, value_fault(field, token)))
    }

    /// The two day fields: exactly one of them is `?`.
    fn days(&self, day_of_month: &str, day_of_week: &str) -> Result<Days, ScheduleError> {
        match (day_of_month == "?", day_of_week == "?") {
            (true, true) => Err(ScheduleError::NoDayField {
                expression: self.expression.to_owned(),
            }),
            (false, false) => Err(ScheduleError::BothDayFields {
                expression: self.expression.to_owned(),
                day_of_month: day_of_month.to_owned(),
                day_of_week: day_of_week.to_owned(),
            }),
            (false, true) => self.month_days(day_of_month),
            (true, false) => self.week_days(day_of_week),
        }
    }

    fn month_days(&self, text: &str) -> Result<Days, ScheduleError> {
        let field = Field::DayOfMonth;
        if text.eq_ignore_ascii_case("L") {
            return Ok(Days::Last);
        }
        if text.eq_ignore_ascii_case("LW") {
            return Ok(Days::LastWeekday);
        }
        if let Some(day) = text.strip_suffix(['W', 'w'])
            && day.bytes().all(|b| b.is_ascii_digit())
        {
            let day = self.value(field, day)?;
            return Ok(Days::NearestWeekday(small(day)));
        }
        let bits = self.set(field, text)?;
        // Bit i is day i + 1.
        Ok(Days::Dates(u32::try_from(bits.0[0] << 1).unwrap_or(0)))
    }

    fn week_days(&self, text: &str) -> Result<Days, ScheduleError> {
        let field = Field::DayOfWeek;
        if text.eq_ignore_ascii_case("L") {
            // The last day of the week.
            return Ok(Days::Weekdays(1 << 7));
        }
        if let Some((day, nth)) = text.split_once('#') {
            let day = self.value(field, day)?;
            let week = Some(nth.as_bytes())
                .filter(|digits| matches!(digits, [b'1'..=b'5']))
                .and_then(|_| nth.parse::<i8>().ok());
            return match week {
                Some(week) => Ok(Days::Nth(small(day), week)),
                None => {
                    let reason = "the number after `#` is the week of the month, 1-5";
                    Err(self.token(field, text, reason))
                }
            };
        }
        if let Some(day) = text.strip_suffix(['L', 'l']) {
            return Ok(Days::LastOf(small(self.value(field, day)?)));
        }
        let bits = self.set(field, text)?;
        // Bit i is weekday i + 1.
        Ok(Days::Weekdays(u8::try_from(bits.0[0] << 1).unwrap_or(0)))
    }
}

/// A day or weekday number (at most 31) as the calendar types count.
fn small(value: u16) -> i8 {
    i8::try_from(value).unwrap_or(i8::MAX)
}

/// Why `token` is not a value of `field`.
fn value_fault(field: Field, token: &str) -> String {
    let day_field = matches!(field, Field::DayOfMonth | Field::DayOfWeek);
    let marks = [
        ('?', day_field),
        ('L', day_field),
        ('W', field == Field::DayOfMonth),
        ('#', field == Field::DayOfWeek),
    ];
    let upper = token.to_ascii_uppercase();
    if let Some((mark, allowed)) = marks.into_iter().find(|(mark, _)| upper.contains(*mark)) {
        return if allowed {
            format!("`{mark}` must be the whole {field} field")
        } else {
            format!("`{mark}` is not allowed in {field}")
        };
    }
    if token.is_empty() {
        return "a value is missing".to_owned();
    }
    match field.names() {
        [first, .., last] => format!("not a number or a name ({first}-{last})"),
        _ => "not a number".to_owned(),
    }
}
