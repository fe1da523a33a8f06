//! Property tests of cron schedules: for random valid expressions, fire times strictly
//! increase, each one matches the expression on the zone's wall clock (checked by a
//! reading of the fields written here, independent of the crate's), and around daylight
//! saving transitions no fire is lost or doubled (checked minute by minute).
//!
//! tzdata: the zones come from the tzdata bundled into aloft-core (IANA 2026f); the
//! properties hold for any release, so these tests assume no particular one.

use std::collections::BTreeSet;

use aloft_core::schedule::{Schedule, ScheduleError, time_zone};
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

/// Zones with a 1-hour shift at night, a 30-minute shift, no shift and a half-hour
/// offset, and a shift at midnight (the repeated hour belongs to the day before).
const ZONES: [&str; 5] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Santiago",
];

const UNITS: [(&str, i64); 3] = [("minute", 60), ("hour", 3_600), ("day", 86_400)];

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// One field of values.
#[derive(Clone, Debug)]
enum Part {
    Any,
    One(u16),
    List(Vec<u16>),
    Range(u16, u16),
    /// `a/n`
    Step(u16, u16),
    /// `a-b/n`
    RangeStep(u16, u16, u16),
}

impl Part {
    fn text(&self, names: Option<&[&str]>, min: u16) -> String {
        let value = |v: &u16| match names {
            Some(names) => names[usize::from(v - min)].to_owned(),
            None => v.to_string(),
        };
        match self {
            Part::Any => "*".to_owned(),
            Part::One(v) => value(v),
            Part::List(values) => values.iter().map(value).collect::<Vec<_>>().join(","),
            Part::Range(a, b) => format!("{}-{}", value(a), value(b)),
            Part::Step(a, n) => format!("{}/{n}", value(a)),
            Part::RangeStep(a, b, n) => format!("{}-{}/{n}", value(a), value(b)),
        }
    }

    fn contains(&self, v: u16, max: u16) -> bool {
        match self {
            Part::Any => true,
            Part::One(a) => v == *a,
            Part::List(values) => values.contains(&v),
            Part::Range(a, b) => (*a..=*b).contains(&v),
            Part::Step(a, n) => (*a..=max).contains(&v) && (v - a).is_multiple_of(*n),
            Part::RangeStep(a, b, n) => (*a..=*b).contains(&v) && (v - a).is_multiple_of(*n),
        }
    }
}

/// Which days match.
#[derive(Clone, Debug)]
enum Days {
    Dates(Part),
    Last,
    LastWeekday,
    Nearest(u16),
    Weekdays(Part),
    /// Day-of-week `L` alone.
    Saturday,
    LastOf(u16),
    Nth(u16, u16),
}

/// A random valid cron expression and what it means.
#[derive(Clone, Debug)]
struct Spec {
    minutes: Part,
    hours: Part,
    days: Days,
    months: Part,
    names: bool,
}

impl Spec {
    fn expression(&self) -> String {
        let names = |list: &'static [&'static str]| self.names.then_some(list);
        let (day_of_month, day_of_week) = match &self.days {
            Days::Dates(part) => (part.text(None, 1), "?".to_owned()),
            Days::Last => ("L".to_owned(), "?".to_owned()),
            Days::LastWeekday => ("LW".to_owned(), "?".to_owned()),
            Days::Nearest(day) => (format!("{day}W"), "?".to_owned()),
            Days::Weekdays(part) => ("?".to_owned(), part.text(names(&DAY_NAMES), 1)),
            Days::Saturday => ("?".to_owned(), "L".to_owned()),
            Days::LastOf(day) => (
                "?".to_owned(),
                format!("{}L", weekday_text(*day, self.names)),
            ),
            Days::Nth(day, nth) => (
                "?".to_owned(),
                format!("{}#{nth}", weekday_text(*day, self.names)),
            ),
        };
        format!(
            "cron({} {} {day_of_month} {} {day_of_week} *)",
            self.minutes.text(None, 0),
            self.hours.text(None, 0),
            self.months.text(names(&MONTH_NAMES), 1),
        )
    }

    /// Whether the wall time matches, read straight from the fields.
    fn matches(&self, wall: DateTime) -> bool {
        let unsigned = |v: i8| u16::from(v.unsigned_abs());
        wall.second() == 0
            && wall.subsec_nanosecond() == 0
            && self.minutes.contains(unsigned(wall.minute()), 59)
            && self.hours.contains(unsigned(wall.hour()), 23)
            && self.months.contains(unsigned(wall.month()), 12)
            && self.day_matches(wall)
    }

    fn day_matches(&self, wall: DateTime) -> bool {
        let date = wall.date();
        let day = u16::from(date.day().unsigned_abs());
        let length = u16::from(date.days_in_month().unsigned_abs());
        let weekday = u16::from(date.weekday().to_sunday_one_offset().unsigned_abs());
        let is_weekday = |d: u16| {
            let day = i8::try_from(d).expect("a day of the month");
            let date = Date::new(date.year(), date.month(), day).expect("a day of the month");
            !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
        };
        match &self.days {
            Days::Dates(part) => part.contains(day, 31),
            Days::Last => day == length,
            Days::LastWeekday => (1..=length).rev().find(|&d| is_weekday(d)) == Some(day),
            Days::Nearest(n) => {
                *n <= length
                    && (1..=length)
                        .filter(|&d| is_weekday(d))
                        .min_by_key(|&d| d.abs_diff(*n))
                        == Some(day)
            }
            Days::Weekdays(part) => part.contains(weekday, 7),
            Days::Saturday => weekday == 7,
            Days::LastOf(wanted) => weekday == *wanted && day + 7 > length,
            Days::Nth(wanted, nth) => weekday == *wanted && (day - 1) / 7 + 1 == *nth,
        }
    }
}

fn weekday_text(day: u16, names: bool) -> String {
    if names {
        DAY_NAMES[usize::from(day - 1)].to_owned()
    } else {
        day.to_string()
    }
}

fn part(min: u16, max: u16, steps: bool) -> BoxedStrategy<Part> {
    let simple = prop_oneof![
        Just(Part::Any),
        (min..=max).prop_map(Part::One),
        prop::collection::btree_set(min..=max, 2..5)
            .prop_map(|set: BTreeSet<u16>| Part::List(set.into_iter().collect())),
        (min..=max, min..=max).prop_map(|(a, b)| Part::Range(a.min(b), a.max(b))),
    ];
    if !steps {
        return simple.boxed();
    }
    prop_oneof![
        3 => simple,
        1 => (min..=max, 1..=max - min).prop_map(|(a, n)| Part::Step(a, n)),
        1 => (min..=max, min..=max, 1..=max - min)
            .prop_map(|(a, b, n)| Part::RangeStep(a.min(b), a.max(b), n)),
    ]
    .boxed()
}

fn days() -> impl Strategy<Value = Days> {
    prop_oneof![
        4 => part(1, 31, true).prop_map(Days::Dates),
        1 => Just(Days::Last),
        1 => Just(Days::LastWeekday),
        1 => (1u16..=31).prop_map(Days::Nearest),
        4 => part(1, 7, false).prop_map(Days::Weekdays),
        1 => Just(Days::Saturday),
        1 => (1u16..=7).prop_map(Days::LastOf),
        1 => (1u16..=7, 1u16..=4).prop_map(|(d, n)| Days::Nth(d, n)),
    ]
}

/// Any valid expression, over every field's syntax.
fn spec() -> impl Strategy<Value = Spec> {
    (
        part(0, 59, true),
        part(0, 23, true),
        days(),
        prop_oneof![3 => Just(Part::Any), 1 => part(1, 12, true)],
        any::<bool>(),
    )
        .prop_map(|(minutes, hours, days, months, names)| Spec {
            minutes,
            hours,
            days,
            months,
            names,
        })
}

/// Expressions that fire on most days, so a two-day window holds fires.
fn daily_spec() -> impl Strategy<Value = Spec> {
    (part(0, 59, true), part(0, 23, true), any::<bool>()).prop_map(|(minutes, hours, names)| Spec {
        minutes,
        hours,
        days: Days::Dates(Part::Any),
        months: Part::Any,
        names,
    })
}

fn zone(name: &str) -> TimeZone {
    time_zone(name).expect("a zone of the bundled tzdata")
}

/// The parsed expression; `None` for one that never fires (such as `31W` in February
/// alone), which the generator cannot rule out.
fn schedule(spec: &Spec) -> Option<Schedule> {
    let expression = spec.expression();
    match Schedule::parse(&expression) {
        Ok(schedule) => Some(schedule),
        Err(ScheduleError::NeverFires { .. }) => None,
        Err(e) => panic!("{expression} is refused: {e}"),
    }
}

/// True if `fire` is the first instant of its wall time in `zone`.
fn is_first_occurrence(zone: &TimeZone, fire: Timestamp) -> bool {
    let wall = zone.to_datetime(fire);
    zone.to_ambiguous_timestamp(wall).earlier().ok() == Some(fire)
}

/// An instant from 1965 to 2205, so the search bounds are crossed too.
fn instant() -> impl Strategy<Value = Timestamp> {
    (-157_766_400i64..7_415_884_800).prop_map(|s| Timestamp::from_second(s).expect("in range"))
}

/// A transition of `zone` near `year` (or mid-year, in a zone without one), and a
/// window of 30 hours on either side, whole minutes.
fn window(zone: &TimeZone, year: i16, which: usize) -> (Timestamp, Timestamp) {
    let start = jiff::civil::date(year, 1, 1)
        .to_zoned_datetime(TimeZone::UTC)
        .expect("a date")
        .timestamp();
    let center = zone
        .following(start)
        .nth(which)
        .map(|t| t.timestamp())
        .unwrap_or(start + SignedDuration::from_hours(24 * 180));
    let minute = center.as_second().div_euclid(60) * 60;
    let center = Timestamp::from_second(minute).expect("in range");
    let half = SignedDuration::from_hours(30);
    (center - half, center + half)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fires_increase_and_match_the_wall_clock(
        spec in spec(),
        name in prop::sample::select(&ZONES[..]),
        after in instant(),
    ) {
        let zone = zone(name);
        let Some(schedule) = schedule(&spec) else {
            return Ok(());
        };
        let expression = spec.expression();
        let mut previous = after;
        for fire in schedule.fires_after(after, &zone).take(20) {
            prop_assert!(fire > previous, "{expression} in {name}: {fire} after {previous}");
            let wall = zone.to_datetime(fire);
            prop_assert!(spec.matches(wall), "{expression} in {name}: {fire} is {wall}");
            prop_assert!(is_first_occurrence(&zone, fire), "{expression} in {name}: {fire}");
            prop_assert!((1970..=2199).contains(&wall.year()));
            previous = fire;
        }
    }

    #[test]
    fn no_fire_is_lost_or_doubled_around_transitions(
        spec in daily_spec(),
        name in prop::sample::select(&ZONES[..]),
        year in 1971i16..2060,
        which in 0usize..2,
    ) {
        let zone = zone(name);
        let (start, end) = window(&zone, year, which);
        let expected: Vec<Timestamp> = (0..)
            .map(|minute| start + SignedDuration::from_mins(minute))
            .take_while(|t| *t <= end)
            .filter(|t| spec.matches(zone.to_datetime(*t)) && is_first_occurrence(&zone, *t))
            .collect();
        let before = start - SignedDuration::from_secs(1);
        let schedule = schedule(&spec).expect("a daily expression fires");
        let actual: Vec<Timestamp> = schedule
            .fires_after(before, &zone)
            .take_while(|t| *t <= end)
            .collect();
        let expression = spec.expression();
        prop_assert_eq!(actual, expected, "{} in {} from {} to {}", expression, name, start, end);
    }

    #[test]
    fn a_daily_expression_fires_within_48_hours(
        minute in 0u16..60,
        hour in 0u16..24,
        name in prop::sample::select(&ZONES[..]),
        after in -157_766_400i64..7_257_945_600,
    ) {
        // S02: a skipped wall time costs one day, never more.
        let expression = format!("cron({minute} {hour} * * ? *)");
        let zone = zone(name);
        let after = Timestamp::from_second(after).expect("in range");
        let after = after.max(Timestamp::UNIX_EPOCH);
        let next = Schedule::parse(&expression).expect("valid").next_after(after, &zone);
        let next = next.expect("a daily expression fires before 2200");
        let wait = next.duration_since(after);
        prop_assert!(wait <= SignedDuration::from_hours(48), "{expression} in {name}: {after}");
    }

    #[test]
    fn rate_fires_are_whole_periods_from_the_anchor(
        count in 1u32..500,
        unit in prop::sample::select(&UNITS[..]),
        anchor in instant(),
        after in instant(),
    ) {
        let (unit, seconds) = unit;
        let plural = if count == 1 { "" } else { "s" };
        let expression = format!("rate({count} {unit}{plural})");
        let schedule = Schedule::parse(&expression).expect("valid").with_anchor(anchor);
        let period = SignedDuration::from_secs(i64::from(count) * seconds);
        let Some(next) = schedule.next_after(after, &TimeZone::UTC) else {
            return Ok(());
        };
        prop_assert!(next > after && next >= anchor);
        let steps = next.duration_since(anchor).as_secs() / period.as_secs();
        prop_assert_eq!(next.duration_since(anchor), period * i32::try_from(steps).expect("fits"));
        prop_assert!(next - period <= after || next == anchor);
    }
}

#[test]
fn no_zone_has_a_gap_and_then_a_fold_over_the_same_wall_times() {
    // The cron search takes wall times of one date in wall order as instant order. That
    // fails only if, within a day or two, the clocks skip over some wall times and then
    // go back over them again: look for it in every zone from 1970 to 2199.
    let database = TimeZoneDatabase::bundled();
    let start = Timestamp::UNIX_EPOCH;
    let end = Timestamp::from_second(7_258_118_400).expect("2200-01-01");
    let mut found = Vec::new();
    for name in database.available() {
        let zone = database.get(name.as_str()).expect("an available zone");
        // (wall range skipped, instant) of recent gaps.
        let mut gaps: Vec<(DateTime, DateTime, Timestamp)> = Vec::new();
        for transition in zone.following(start) {
            let at = transition.timestamp();
            if at >= end {
                break;
            }
            let before = zone.to_offset(at - SignedDuration::from_nanos(1));
            let after = transition.offset();
            let (wall_before, wall_after) = (before.to_datetime(at), after.to_datetime(at));
            gaps.retain(|(_, _, when)| at.duration_since(*when) < SignedDuration::from_hours(72));
            if wall_after > wall_before {
                gaps.push((wall_before, wall_after, at));
            } else if wall_after < wall_before
                && gaps
                    .iter()
                    .any(|(from, to, _)| wall_after < *to && *from < wall_before)
            {
                found.push(format!("{} at {at}", name.as_str()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "gap then fold over the same wall times: {found:?}"
    );
}

#[test]
fn special_day_fields_pick_the_right_day_of_every_month() {
    // Every W, L, LW, nL, n#k and `L` against the fields read day by day, 2024-2031
    // (every month length with every weekday of the 1st), midnight UTC.
    let mut specials = vec![Days::Last, Days::LastWeekday, Days::Saturday];
    specials.extend((1..=31).map(Days::Nearest));
    specials.extend((1..=7).map(Days::LastOf));
    specials.extend((1..=7).flat_map(|day| (1..=5).map(move |nth| Days::Nth(day, nth))));
    let start = Date::new(2024, 1, 1).expect("a date");
    let end = Date::new(2031, 12, 31).expect("a date");
    let midnight = |date: Date| {
        TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .expect("in range")
    };
    for days in specials {
        let spec = Spec {
            minutes: Part::One(0),
            hours: Part::One(0),
            days,
            months: Part::Any,
            names: false,
        };
        let expected: Vec<Timestamp> = start
            .series(jiff::Span::new().days(1))
            .take_while(|date| *date <= end)
            .filter(|date| spec.day_matches(date.to_datetime(jiff::civil::Time::midnight())))
            .map(midnight)
            .collect();
        let schedule = schedule(&spec).expect("fires");
        let before = midnight(start) - SignedDuration::from_secs(1);
        let actual: Vec<Timestamp> = schedule
            .fires_after(before, &TimeZone::UTC)
            .take_while(|fire| *fire <= midnight(end))
            .collect();
        assert_eq!(actual, expected, "{}", spec.expression());
    }
}
