//! Schedule expressions: the fault cases S01-S08 of `shared/cases/README.md`, each with
//! its exact expected fire times or error.
//!
//! tzdata: zones come from the tzdata bundled into aloft-core (IANA 2026f, pinned by
//! `tzdata_is_the_pinned_release`), never from the system. The expected values were
//! computed with 2025b; for every zone used here, 2026f has the same offsets as 2025b at
//! every instant from 1970 to 2199 (compared once against a system 2025b copy: the zones
//! that differ are in Canada, Mexico, Cuba, Iran, Moldova, Morocco and a few aliases, none
//! of them used here). So each test assumes "rules as in 2025b", which 2026f keeps.

use aloft_core::schedule::{Field, Schedule, ScheduleError, TZDATA_VERSION, time_zone};
use aloft_core::source::load_str;
use jiff::Timestamp;

/// An instant written as in the cases: `2022-03-24T11:00Z`.
fn utc(text: &str) -> Timestamp {
    text.parse()
        .unwrap_or_else(|e| panic!("{text} is not an instant: {e}"))
}

fn parse(expression: &str) -> Schedule {
    Schedule::parse(expression).unwrap_or_else(|e| panic!("{expression} is refused: {e}"))
}

/// The first `count` fires of `expression` in `zone` strictly after `after`.
fn fires(expression: &str, zone: &str, after: &str, count: usize) -> Vec<Timestamp> {
    let zone = time_zone(zone).expect("a known zone");
    parse(expression)
        .fires_after(utc(after), &zone)
        .take(count)
        .collect()
}

fn assert_fires(expression: &str, zone: &str, after: &str, expected: &[&str]) {
    let expected: Vec<Timestamp> = expected.iter().map(|t| utc(t)).collect();
    assert_eq!(
        fires(expression, zone, after, expected.len()),
        expected,
        "{expression} in {zone} after {after}"
    );
}

/// The error message of an expression that must be refused.
fn refused(expression: &str) -> String {
    match Schedule::parse(expression) {
        Ok(schedule) => panic!("{expression} was accepted: {schedule:?}"),
        Err(error) => error.to_string(),
    }
}

/// The diagnostics of a workflow file with this schedule block, as printed.
fn schedule_errors(expression: &str, timezone: &str) -> Vec<String> {
    let text = format!(
        "name: timed\nschedule:\n  expression: \"{expression}\"\n  timezone: {timezone}\n\
         tasks:\n  a: {{run: {{pass: {{}}}}}}\n"
    );
    match load_str("wf.yaml", &text) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn tzdata_is_the_pinned_release() {
    // Moving to another release: rerun the cases, and say in the README what changed.
    assert_eq!(TZDATA_VERSION, "2026f");
}

// S01: the search walks calendar dates; the transition day itself fires.

#[test]
fn sunday_noon_fires_on_every_transition_day() {
    let weekly = "cron(0 12 ? * 1 *)";
    let rows = [
        (
            "Europe/Berlin",
            "2022-03-24T11:00Z",
            &[
                "2022-03-27T10:00Z",
                "2022-04-03T10:00Z",
                "2022-04-10T10:00Z",
            ][..],
        ),
        (
            "America/New_York",
            "2022-03-10T17:00Z",
            &[
                "2022-03-13T16:00Z",
                "2022-03-20T16:00Z",
                "2022-03-27T16:00Z",
            ],
        ),
        (
            "Australia/Sydney",
            "2022-09-29T02:00Z",
            &[
                "2022-10-02T01:00Z",
                "2022-10-09T01:00Z",
                "2022-10-16T01:00Z",
            ],
        ),
        (
            "Australia/Lord_Howe",
            "2022-09-29T01:30Z",
            &[
                "2022-10-02T01:00Z",
                "2022-10-09T01:00Z",
                "2022-10-16T01:00Z",
            ],
        ),
        (
            "Europe/Berlin",
            "2022-10-27T10:00Z",
            &["2022-10-30T11:00Z", "2022-11-06T11:00Z"],
        ),
    ];
    for (zone, after, expected) in rows {
        assert_fires(weekly, zone, after, expected);
        assert_fires("cron(0 12 ? * SUN *)", zone, after, expected);
    }
}

#[test]
fn daily_fire_skips_the_instant_asked_about_and_keeps_its_wall_time() {
    // 2021-03-27T08:00Z is itself a fire (09:00 CET).
    assert_fires(
        "cron(0 9 * * ? *)",
        "Europe/Amsterdam",
        "2021-03-27T08:00Z",
        &[
            "2021-03-28T07:00Z",
            "2021-03-29T07:00Z",
            "2021-03-30T07:00Z",
        ],
    );
}

// S02: a wall time in the spring-forward gap is skipped that day, not moved.

#[test]
fn wall_time_in_the_gap_is_skipped_that_day() {
    let nightly = "cron(30 2 * * ? *)";
    assert_fires(
        nightly,
        "America/New_York",
        "2026-03-08T06:30Z",
        &[
            "2026-03-09T06:30Z",
            "2026-03-10T06:30Z",
            "2026-03-11T06:30Z",
        ],
    );
    assert_fires(
        nightly,
        "Europe/Zurich",
        "2022-03-27T00:00Z",
        &[
            "2022-03-28T00:30Z",
            "2022-03-29T00:30Z",
            "2022-03-30T00:30Z",
        ],
    );
}

#[test]
fn half_hour_gap_skips_only_the_wall_times_inside_it() {
    // Lord Howe: 02:00 jumps to 02:30 on 2022-10-02.
    let after = "2022-10-01T01:30Z";
    assert_fires(
        "cron(15 2 * * ? *)",
        "Australia/Lord_Howe",
        after,
        &["2022-10-02T15:15Z", "2022-10-03T15:15Z"],
    );
    assert_fires(
        "cron(45 2 * * ? *)",
        "Australia/Lord_Howe",
        after,
        &["2022-10-01T15:45Z", "2022-10-02T15:45Z"],
    );
}

#[test]
fn weekly_and_yearly_wall_times_in_the_gap_wait_for_their_next_date() {
    assert_fires(
        "cron(30 2 ? * 1 *)",
        "America/New_York",
        "2026-03-07T12:00Z",
        &["2026-03-15T06:30Z"],
    );
    assert_fires(
        "cron(30 2 8 3 ? *)",
        "America/New_York",
        "2026-03-01T00:00Z",
        &["2027-03-08T07:30Z"],
    );
}

// S03: a repeated wall time fires once, at the earlier instant.

#[test]
fn repeated_wall_time_fires_once_at_the_earlier_instant() {
    assert_fires(
        "cron(0 2 * * ? *)",
        "Europe/Berlin",
        "2023-10-27T12:00Z",
        &[
            "2023-10-28T00:00Z",
            "2023-10-29T00:00Z",
            "2023-10-30T01:00Z",
            "2023-10-31T01:00Z",
        ],
    );
    assert_fires(
        "cron(30 1 * * ? *)",
        "America/New_York",
        "2026-10-30T12:00Z",
        &[
            "2026-10-31T05:30Z",
            "2026-11-01T05:30Z",
            "2026-11-02T06:30Z",
        ],
    );
    assert_fires(
        "cron(0,30 1 * * ? *)",
        "America/New_York",
        "2026-10-31T12:00Z",
        &[
            "2026-11-01T05:00Z",
            "2026-11-01T05:30Z",
            "2026-11-02T06:00Z",
            "2026-11-02T06:30Z",
        ],
    );
    // Lord Howe: 01:30 to 02:00 repeats on 2023-04-02.
    assert_fires(
        "cron(30 1 * * ? *)",
        "Australia/Lord_Howe",
        "2023-03-31T12:00Z",
        &[
            "2023-03-31T14:30Z",
            "2023-04-01T14:30Z",
            "2023-04-02T15:00Z",
        ],
    );
}

#[test]
fn asking_between_the_two_occurrences_gives_the_next_day() {
    // 2023-10-29T00:30Z is 02:30 CEST, the first pass; 01:00Z is the second 02:00.
    let berlin = time_zone("Europe/Berlin").expect("a zone");
    let nightly = parse("cron(0 2 * * ? *)");
    for after in [
        "2023-10-29T00:00Z",
        "2023-10-29T00:30Z",
        "2023-10-29T01:00Z",
    ] {
        assert_eq!(
            nightly.next_after(utc(after), &berlin),
            Some(utc("2023-10-30T01:00Z")),
            "after {after}"
        );
    }
}

// S04: list, range and step hours keep their wall times across both transitions.

#[test]
fn multi_hour_expressions_keep_their_wall_times_across_transitions() {
    let zone = "America/Los_Angeles";
    assert_fires(
        "cron(0 7-8 * * ? *)",
        zone,
        "2020-03-07T12:00Z",
        &[
            "2020-03-07T15:00Z",
            "2020-03-07T16:00Z",
            "2020-03-08T14:00Z",
            "2020-03-08T15:00Z",
            "2020-03-09T14:00Z",
            "2020-03-09T15:00Z",
        ],
    );
    assert_fires(
        "cron(0 7,9 * * ? *)",
        zone,
        "2020-03-07T12:00Z",
        &[
            "2020-03-07T15:00Z",
            "2020-03-07T17:00Z",
            "2020-03-08T14:00Z",
            "2020-03-08T16:00Z",
            "2020-03-09T14:00Z",
            "2020-03-09T16:00Z",
        ],
    );
    assert_fires(
        "cron(0 7-8 * * ? *)",
        zone,
        "2020-10-31T12:00Z",
        &[
            "2020-10-31T14:00Z",
            "2020-10-31T15:00Z",
            "2020-11-01T15:00Z",
            "2020-11-01T16:00Z",
        ],
    );
    assert_fires(
        "cron(0 7,9 * * ? *)",
        zone,
        "2020-10-31T12:00Z",
        &[
            "2020-10-31T14:00Z",
            "2020-10-31T16:00Z",
            "2020-11-01T15:00Z",
            "2020-11-01T17:00Z",
        ],
    );
}

#[test]
fn stepped_hours_keep_their_wall_times_too() {
    // `7/8` is 07:00, 15:00 and 23:00 local, whatever the offset.
    assert_fires(
        "cron(0 7/8 * * ? *)",
        "America/Los_Angeles",
        "2020-03-07T12:00Z",
        &[
            "2020-03-07T15:00Z",
            "2020-03-07T23:00Z",
            "2020-03-08T07:00Z",
            "2020-03-08T14:00Z",
            "2020-03-08T22:00Z",
            "2020-03-09T06:00Z",
        ],
    );
}

// S05: both day fields restricted is an error, never AND or OR.

#[test]
fn both_day_fields_restricted_is_refused_naming_both() {
    assert_eq!(
        refused("cron(0 11 1-7 * FRI *)"),
        "`cron(0 11 1-7 * FRI *)` sets both day-of-month `1-7` and day-of-week `FRI`: \
         exactly one of them must be `?`"
    );
    let pairings = [
        "cron(0 11 1-7 * 6 *)",
        "cron(0 0 * * 5 *)",
        "cron(0 0 1-31 * 5 *)",
        "cron(0 0 * * * *)",
        "cron(0 0 L * 6L *)",
        "cron(0 0 15W * 6#1 *)",
        "cron(0 0 LW * MON-FRI *)",
        "cron(0 0 1,15 * 2,4 *)",
        "cron(0 0 1/5 * L *)",
    ];
    for expression in pairings {
        let message = refused(expression);
        assert!(
            message.contains("sets both day-of-month")
                && message.contains("and day-of-week")
                && message.ends_with("exactly one of them must be `?`"),
            "{expression}: {message}"
        );
    }
    assert_eq!(
        refused("cron(0 0 ? * ? *)"),
        "`cron(0 0 ? * ? *)` has `?` in both day-of-month and day-of-week: exactly one of \
         them must be `?`"
    );
}

#[test]
fn both_day_fields_restricted_is_a_validation_error_at_the_expression() {
    assert_eq!(
        schedule_errors("cron(0 11 1-7 * FRI *)", "UTC"),
        [
            "wf.yaml:3:15: `cron(0 11 1-7 * FRI *)` sets both day-of-month `1-7` and \
          day-of-week `FRI`: exactly one of them must be `?`"
        ]
    );
}

#[test]
fn first_friday_is_written_with_hash_not_with_both_day_fields() {
    let expected = [
        "2024-11-01T11:00Z",
        "2024-12-06T11:00Z",
        "2025-01-03T11:00Z",
    ];
    assert_fires(
        "cron(0 11 ? * 6#1 *)",
        "UTC",
        "2024-10-08T00:00Z",
        &expected,
    );
    assert_fires(
        "cron(0 11 ? * FRI#1 *)",
        "UTC",
        "2024-10-08T00:00Z",
        &expected,
    );
    assert_fires(
        "cron(0 11 ? * FRI *)",
        "UTC",
        "2024-10-08T00:00Z",
        &[
            "2024-10-11T11:00Z",
            "2024-10-18T11:00Z",
            "2024-10-25T11:00Z",
            "2024-11-01T11:00Z",
        ],
    );
    assert_fires(
        "cron(0 11 1-7 * ? *)",
        "UTC",
        "2024-10-08T00:00Z",
        &[
            "2024-11-01T11:00Z",
            "2024-11-02T11:00Z",
            "2024-11-03T11:00Z",
            "2024-11-04T11:00Z",
            "2024-11-05T11:00Z",
            "2024-11-06T11:00Z",
            "2024-11-07T11:00Z",
            "2024-12-01T11:00Z",
        ],
    );
}

// S06: day-of-week numbers run 1-7 from Sunday.

#[test]
fn day_of_week_numbers_count_from_sunday() {
    // 2026-08-01 is a Saturday.
    let after = "2026-08-01T12:00Z";
    let rows = [
        ("1", "SUN", "2026-08-02T00:00Z"),
        ("2", "MON", "2026-08-03T00:00Z"),
        ("3", "TUE", "2026-08-04T00:00Z"),
        ("4", "WED", "2026-08-05T00:00Z"),
        ("5", "THU", "2026-08-06T00:00Z"),
        ("6", "FRI", "2026-08-07T00:00Z"),
        ("7", "SAT", "2026-08-08T00:00Z"),
    ];
    for (number, name, expected) in rows {
        for day in [number, name, &name.to_lowercase()] {
            assert_fires(&format!("cron(0 0 ? * {day} *)"), "UTC", after, &[expected]);
        }
    }
}

#[test]
fn day_of_week_ranges_and_lists_agree_with_their_names() {
    let after = "2026-08-01T12:00Z";
    let weekdays = [
        "2026-08-03T11:00Z",
        "2026-08-04T11:00Z",
        "2026-08-05T11:00Z",
        "2026-08-06T11:00Z",
        "2026-08-07T11:00Z",
        "2026-08-10T11:00Z",
    ];
    assert_fires("cron(0 11 ? * 2-6 *)", "UTC", after, &weekdays);
    assert_fires("cron(0 11 ? * MON-FRI *)", "UTC", after, &weekdays);
    let weekend = [
        "2026-08-02T11:00Z",
        "2026-08-08T11:00Z",
        "2026-08-09T11:00Z",
    ];
    assert_fires("cron(0 11 ? * 1,7 *)", "UTC", after, &weekend);
    assert_fires("cron(0 11 ? * SUN,SAT *)", "UTC", after, &weekend);
}

#[test]
fn day_of_week_numbers_and_names_agree_inside_hash_and_last() {
    let names = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    for (number, name) in (1..=7).zip(names) {
        for (by_number, by_name) in [
            (format!("{number}#2"), format!("{name}#2")),
            (format!("{number}L"), format!("{name}L")),
        ] {
            let a = fires(
                &format!("cron(0 0 ? * {by_number} *)"),
                "UTC",
                "2026-01-01T00:00Z",
                12,
            );
            let b = fires(
                &format!("cron(0 0 ? * {by_name} *)"),
                "UTC",
                "2026-01-01T00:00Z",
                12,
            );
            assert_eq!(a, b, "{by_number} vs {by_name}");
            let weekday = b[0].to_zoned_datetime(jiff::tz::TimeZone::UTC).weekday();
            assert_eq!(weekday.to_sunday_one_offset(), number, "{by_name}");
        }
    }
}

#[test]
fn day_of_week_zero_and_eight_are_refused_naming_the_range() {
    for (expression, value) in [
        ("cron(0 0 ? * 0 *)", "0"),
        ("cron(0 0 ? * 8 *)", "8"),
        ("cron(0 0 ? * 0-4 *)", "0"),
        ("cron(0 0 ? * 0#1 *)", "0"),
        ("cron(0 0 ? * 8L *)", "8"),
        ("cron(0 0 ? * 1,8 *)", "8"),
    ] {
        assert_eq!(
            refused(expression),
            format!(
                "day-of-week value {value} in `{expression}` is out of range 1-7 \
                 (1 = SUN, 7 = SAT)"
            )
        );
    }
}

#[test]
fn weekday_is_judged_in_the_zone_not_in_utc() {
    assert_fires(
        "cron(0 7 ? * MON-FRI *)",
        "Asia/Taipei",
        "2026-05-09T12:00Z",
        &[
            "2026-05-10T23:00Z",
            "2026-05-11T23:00Z",
            "2026-05-12T23:00Z",
            "2026-05-13T23:00Z",
            "2026-05-14T23:00Z",
            "2026-05-17T23:00Z",
        ],
    );
}

// S07: February 29 and dates that never occur.

#[test]
fn february_29_fires_in_leap_years_only() {
    let leap_day = "cron(0 9 29 2 ? *)";
    assert_fires(
        leap_day,
        "UTC",
        "2016-02-29T09:00Z",
        &[
            "2020-02-29T09:00Z",
            "2024-02-29T09:00Z",
            "2028-02-29T09:00Z",
        ],
    );
    // 2100 is not a leap year.
    assert_fires(leap_day, "UTC", "2096-02-29T09:00Z", &["2104-02-29T09:00Z"]);
    assert_fires(
        "cron(* * 29 2 ? *)",
        "UTC",
        "2021-12-07T12:00Z",
        &[
            "2024-02-29T00:00Z",
            "2024-02-29T00:01Z",
            "2024-02-29T00:02Z",
        ],
    );
}

#[test]
fn asked_on_a_leap_day_the_next_month_follows() {
    assert_fires(
        "cron(0 9 * * ? *)",
        "UTC",
        "2020-02-29T12:00Z",
        &["2020-03-01T09:00Z"],
    );
    assert_fires(
        "cron(0 9 29 * ? *)",
        "UTC",
        "2020-02-29T12:00Z",
        &["2020-03-29T09:00Z"],
    );
    assert_fires(
        "cron(0 9 29 * ? *)",
        "UTC",
        "2021-01-30T00:00Z",
        &["2021-03-29T09:00Z"],
    );
}

#[test]
fn dates_that_never_occur_are_refused_as_never_firing() {
    for expression in [
        "cron(0 0 30 2 ? *)",
        "cron(0 0 31 4 ? *)",
        "cron(0 0 31 2,4,6,9,11 ? *)",
        "cron(0 9 29 2 ? 2025-2027)",
        "cron(0 9 29 2 ? 2100)",
        "cron(0 0 ? 2 1#5 2026)",
    ] {
        assert_eq!(
            refused(expression),
            format!(
                "`{expression}` never fires: no date in 1970-2199 matches its day-of-month, \
                 month, day-of-week and year"
            )
        );
    }
}

#[test]
fn a_single_leap_day_fires_once() {
    assert_eq!(
        fires("cron(0 9 29 2 ? 2028)", "UTC", "1970-01-01T00:00Z", 5),
        [utc("2028-02-29T09:00Z")]
    );
}

#[test]
fn the_search_ends_at_2199() {
    let zone = time_zone("UTC").expect("UTC");
    let every_minute = parse("cron(* * * * ? *)");
    assert_eq!(
        every_minute.next_after(utc("2199-12-31T23:58Z"), &zone),
        Some(utc("2199-12-31T23:59Z"))
    );
    assert_eq!(
        every_minute.next_after(utc("2199-12-31T23:59Z"), &zone),
        None
    );
    assert_eq!(every_minute.next_after(Timestamp::MAX, &zone), None);
    assert_eq!(
        every_minute.next_after(Timestamp::MIN, &zone),
        Some(utc("1970-01-01T00:00Z"))
    );
    let last_leap_day = parse("cron(0 9 29 2 ? *)");
    assert_eq!(
        last_leap_day.next_after(utc("2196-03-01T00:00Z"), &zone),
        None
    );
}

// S08: what the service accepts and refuses.

#[test]
fn single_value_ranges_and_full_lists_are_valid() {
    let after = "2025-12-29T00:00Z";
    let mut expected: Vec<String> = (0..=15)
        .map(|minute| format!("2025-12-29T08:{minute:02}Z"))
        .collect();
    expected.push("2025-12-30T08:00Z".to_owned());
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_fires(
        "cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)",
        "UTC",
        after,
        &expected,
    );
    assert_fires(
        "cron(30-30 13-13 ? * 2,4,6 *)",
        "UTC",
        after,
        &[
            "2025-12-29T13:30Z",
            "2025-12-31T13:30Z",
            "2026-01-02T13:30Z",
            "2026-01-05T13:30Z",
        ],
    );
    assert_fires(
        "cron(1-31/30 1-1 ? * 1,7 *)",
        "UTC",
        after,
        &[
            "2026-01-03T01:01Z",
            "2026-01-03T01:31Z",
            "2026-01-04T01:01Z",
            "2026-01-04T01:31Z",
        ],
    );
}

#[test]
fn malformed_cron_expressions_are_refused_naming_the_field() {
    assert_eq!(
        refused("cron(*/60 * * * ? *)"),
        "minutes step 60 in `cron(*/60 * * * ? *)` is larger than the field's range 0-59"
    );
    assert_eq!(
        refused("cron(* * * * *)"),
        "`cron(* * * * *)` has 5 fields; cron takes 6: minutes hours day-of-month month \
         day-of-week year"
    );
    let cases = [
        ("cron(60 * * * ? *)", "minutes value 60"),
        ("cron(0 24 * * ? *)", "hours value 24"),
        ("cron(0 0 32 * ? *)", "day-of-month value 32"),
        ("cron(0 0 0 * ? *)", "day-of-month value 0"),
        ("cron(0 0 1 13 ? *)", "month value 13"),
        ("cron(0 0 1 * ? 1969)", "year value 1969"),
        ("cron(0 0 1 * ? 2200)", "year value 2200"),
        ("cron(0 */24 * * ? *)", "hours step 24"),
        ("cron(0 0 1/31 * ? *)", "day-of-month step 31"),
        ("cron(0 0 1 */12 ? *)", "month step 12"),
        ("cron(0/0 * * * ? *)", "minutes step 0"),
        ("cron(0 0 ? * 1/2 *)", "day-of-week `1/2`"),
        ("cron(0 0 1 FOO ? *)", "month `FOO`"),
        ("cron(0 0 ? * FRU *)", "day-of-week `FRU`"),
        ("cron(1,,2 * * * ? *)", "minutes `1,,2`"),
        ("cron(30-10 * * * ? *)", "minutes `30-10`"),
        ("cron(? * * * ? *)", "minutes `?`"),
        ("cron(0 0 1,L * ? *)", "day-of-month `L`"),
        ("cron(0 0 ? * 6#6 *)", "day-of-week `6#6`"),
        ("cron(0 0 ? * 6#0 *)", "day-of-week `6#0`"),
        ("cron(0 0 ? L * *)", "month `L`"),
        ("cron(0 0 1W,2 * ? *)", "day-of-month `1W`"),
    ];
    for (expression, names) in cases {
        let message = refused(expression);
        assert!(
            message.starts_with(names) && message.contains(&format!("`{expression}`")),
            "{expression}: {message}"
        );
    }
    assert_eq!(
        Schedule::parse("cron(0 0 ? * 0 *)"),
        Err(ScheduleError::OutOfRange {
            expression: "cron(0 0 ? * 0 *)".into(),
            field: Field::DayOfWeek,
            value: "0".into(),
        })
    );
}

#[test]
fn rate_takes_the_singular_unit_for_one_and_the_plural_otherwise() {
    assert_eq!(
        refused("rate(1 minutes)"),
        "`rate(1 minutes)`: unit `minutes` is wrong: a value of 1 takes `minute`"
    );
    assert_eq!(
        refused("rate(5 minute)"),
        "`rate(5 minute)`: unit `minute` is wrong: a value of 5 takes `minutes`"
    );
    assert_eq!(
        refused("rate(0 minutes)"),
        "`rate(0 minutes)`: value `0` must be at least 1"
    );
    for (expression, names) in [
        ("rate(2 weeks)", "unit `weeks`"),
        ("rate(-1 minutes)", "value `-1`"),
        ("rate(1.5 hours)", "value `1.5`"),
        ("rate(5)", "rate(VALUE UNIT)"),
        ("rate(99999999999 days)", "value `99999999999`"),
    ] {
        let message = refused(expression);
        assert!(
            message.starts_with(&format!("`{expression}`: ")) && message.contains(names),
            "{expression}: {message}"
        );
    }
    for expression in [
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 hour)",
        "rate(2 days)",
    ] {
        parse(expression);
    }
}

#[test]
fn rate_fires_every_period_from_its_anchor() {
    let utc_zone = time_zone("UTC").expect("UTC");
    let berlin = time_zone("Europe/Berlin").expect("a zone");
    let anchor = utc("2026-03-28T10:17Z");
    let daily = parse("rate(2 days)").with_anchor(anchor);
    // Before the anchor, the anchor itself is the first fire.
    assert_eq!(
        daily.next_after(utc("2026-01-01T00:00Z"), &utc_zone),
        Some(anchor)
    );
    // A day is 24 hours of elapsed time, across the Berlin transition of 2026-03-29 too.
    let fires: Vec<Timestamp> = daily.fires_after(anchor, &berlin).take(2).collect();
    assert_eq!(fires, [utc("2026-03-30T10:17Z"), utc("2026-04-01T10:17Z")]);
    // Without an anchor, whole multiples of the period since the epoch.
    let hourly = parse("rate(1 hour)");
    assert_eq!(
        hourly.next_after(utc("2026-03-28T10:17Z"), &utc_zone),
        Some(utc("2026-03-28T11:00Z"))
    );
    assert_eq!(
        parse("rate(5 minutes)").next_after(utc("2026-03-28T10:15Z"), &utc_zone),
        Some(utc("2026-03-28T10:20Z"))
    );
    assert_eq!(hourly.next_after(utc("2199-12-31T23:00Z"), &utc_zone), None);
}

#[test]
fn at_fires_once_at_its_wall_time_in_the_zone() {
    let one_time = parse("at(2025-01-31T15:59:42)");
    let berlin = time_zone("Europe/Berlin").expect("a zone");
    let fire = utc("2025-01-31T14:59:42Z");
    assert_eq!(
        one_time.next_after(utc("2025-01-01T00:00Z"), &berlin),
        Some(fire)
    );
    assert_eq!(one_time.next_after(fire, &berlin), None);
    // Repeated wall time: the earlier instant; skipped wall time: never.
    let new_york = time_zone("America/New_York").expect("a zone");
    assert_eq!(
        parse("at(2026-11-01T01:30:00)").next_after(Timestamp::MIN, &new_york),
        Some(utc("2026-11-01T05:30Z"))
    );
    assert_eq!(
        parse("at(2026-03-08T02:30:00)").next_after(Timestamp::MIN, &new_york),
        None
    );
    for (expression, names) in [
        (
            "at(2025-02-30T00:00:00)",
            "2025-02-30T00:00:00 is not a valid date",
        ),
        ("at(2025-01-31 15:59:42)", "at(yyyy-mm-ddThh:mm:ss)"),
        ("at(2025-01-31T15:59)", "at(yyyy-mm-ddThh:mm:ss)"),
        ("at(1969-12-31T23:59:59)", "year 1969"),
    ] {
        let message = refused(expression);
        assert!(
            message.starts_with(&format!("`{expression}`: ")) && message.contains(names),
            "{expression}: {message}"
        );
    }
}

#[test]
fn other_forms_are_refused() {
    for expression in [
        "",
        "cron",
        "cron(0 0 * * ? *",
        "every day",
        "CRON(0 0 * * ? *)",
    ] {
        assert_eq!(
            refused(expression),
            format!(
                "schedule expression `{expression}` is not one of cron(...), rate(...) or \
                 at(...)"
            )
        );
    }
}

#[test]
fn last_nearest_weekday_and_nth_weekday_pick_the_right_days() {
    // 2026-02: Sunday the 1st to Saturday the 28th; 2026-05: Friday the 1st to Sunday
    // the 31st.
    let cases = [
        ("cron(0 0 L * ? *)", "2026-02-28T00:00Z"),
        ("cron(0 0 LW * ? *)", "2026-02-27T00:00Z"),
        ("cron(0 0 1W * ? *)", "2026-02-02T00:00Z"),
        ("cron(0 0 28W * ? *)", "2026-02-27T00:00Z"),
        ("cron(0 0 ? * 6L *)", "2026-02-27T00:00Z"),
        ("cron(0 0 ? * 1#4 *)", "2026-02-22T00:00Z"),
        ("cron(0 0 ? * L *)", "2026-02-07T00:00Z"),
    ];
    for (expression, expected) in cases {
        assert_fires(expression, "UTC", "2026-01-31T12:00Z", &[expected]);
    }
    let may = [
        ("cron(0 0 LW * ? *)", "2026-05-29T00:00Z"),
        ("cron(0 0 31W * ? *)", "2026-05-29T00:00Z"),
        ("cron(0 0 2W * ? *)", "2026-05-01T00:00Z"),
        ("cron(0 0 ? * 1#5 *)", "2026-05-31T00:00Z"),
    ];
    for (expression, expected) in may {
        assert_fires(expression, "UTC", "2026-04-30T12:00Z", &[expected]);
    }
    // Saturday the 1st moves forward to Monday the 3rd, not back into the month before.
    assert_fires(
        "cron(0 0 1W * ? *)",
        "UTC",
        "2026-07-31T12:00Z",
        &["2026-08-03T00:00Z"],
    );
    // 31W in a 30-day month: no such day, no fire that month.
    assert_fires(
        "cron(0 0 31W * ? *)",
        "UTC",
        "2026-06-01T00:00Z",
        &["2026-07-31T00:00Z"],
    );
}

#[test]
fn unknown_time_zones_are_refused_by_name() {
    assert_eq!(
        time_zone("Europe/Berln").map(|_| ()),
        Err(ScheduleError::UnknownZone {
            name: "Europe/Berln".into()
        })
    );
    assert_eq!(
        ScheduleError::UnknownZone {
            name: "Mars/Olympus".into()
        }
        .to_string(),
        "unknown time zone `Mars/Olympus`: name an IANA zone such as `Europe/Berlin` \
         (tzdata 2026f)"
    );
    for name in ["", "Etc/Unknown", "+02:00"] {
        assert!(time_zone(name).is_err(), "{name:?}");
    }
    for name in [
        "UTC",
        "Europe/Berlin",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
    ] {
        assert!(time_zone(name).is_ok(), "{name}");
    }
}

#[test]
fn validation_reports_expression_and_zone_at_their_positions() {
    assert_eq!(
        schedule_errors("cron(*/60 * * * ? *)", "Mars/Olympus"),
        [
            "wf.yaml:3:15: minutes step 60 in `cron(*/60 * * * ? *)` is larger than the \
             field's range 0-59",
            "wf.yaml:4:13: unknown time zone `Mars/Olympus`: name an IANA zone such as \
             `Europe/Berlin` (tzdata 2026f)",
        ]
    );
    assert_eq!(
        schedule_errors("cron(0 0 ? * 0 *)", "UTC"),
        [
            "wf.yaml:3:15: day-of-week value 0 in `cron(0 0 ? * 0 *)` is out of range 1-7 \
          (1 = SUN, 7 = SAT)"
        ]
    );
    assert_eq!(
        schedule_errors("cron(0 0 30 2 ? *)", "UTC"),
        [
            "wf.yaml:3:15: `cron(0 0 30 2 ? *)` never fires: no date in 1970-2199 matches its \
          day-of-month, month, day-of-week and year"
        ]
    );
    assert_eq!(
        schedule_errors("rate(1 minutes)", "UTC"),
        [
            "wf.yaml:3:15: `rate(1 minutes)`: unit `minutes` is wrong: a value of 1 takes \
          `minute`"
        ]
    );
    assert!(schedule_errors("cron(0 2 * * ? *)", "Europe/Berlin").is_empty());
    assert!(schedule_errors("rate(5 minutes)", "Asia/Kolkata").is_empty());
}

#[test]
fn a_wall_time_that_never_exists_in_the_zone_is_a_validation_error() {
    assert_eq!(
        schedule_errors("at(2026-03-08T02:30:00)", "America/New_York"),
        [
            "wf.yaml:3:15: `at(2026-03-08T02:30:00)` never fires in time zone \
          `America/New_York`: every date and time it names falls in a gap where the clocks \
          skip forward"
        ]
    );
    assert_eq!(
        schedule_errors("cron(30 2 8 3 ? 2026)", "America/New_York").len(),
        1
    );
    assert!(schedule_errors("cron(30 2 8 3 ? 2026)", "UTC").is_empty());
}
