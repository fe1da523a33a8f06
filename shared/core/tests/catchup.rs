//! Which ticks a scheduler fires (case S09 and its kind): on time, after downtime within
//! `catchup`, and over a backfill range. Pure functions of explicit instants.
//!
//! tzdata: the bundled release (2026f), with the rules of 2025b for the zones used here.

use aloft_core::schedule::ticks::{Catchup, Due, ON_TIME_MS, RangeError, between, due, tick_key};
use aloft_core::schedule::{Schedule, time_zone};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

fn utc(text: &str) -> Timestamp {
    text.parse()
        .unwrap_or_else(|e| panic!("{text} is not an instant: {e}"))
}

fn utcs(texts: &[&str]) -> Vec<Timestamp> {
    texts.iter().map(|t| utc(t)).collect()
}

fn schedule(expression: &str) -> Schedule {
    Schedule::parse(expression).unwrap_or_else(|e| panic!("{expression} is refused: {e}"))
}

fn catchup(window: &str, max_runs: u32) -> Option<Catchup> {
    let window: aloft_core::Duration = window.parse().expect("a duration");
    Some(Catchup {
        window_ms: window.as_millis(),
        max_runs,
    })
}

/// `due` for an expression in a zone, between two instants written as text.
fn due_in(expression: &str, zone: &str, rule: Option<Catchup>, last: &str, now: &str) -> Due {
    let zone = time_zone(zone).expect("a known zone");
    due(&schedule(expression), &zone, rule, utc(last), utc(now))
}

const EVERY_MINUTE: &str = "cron(* * * * ? *)";

// S09: last run 08:29, the trigger down until 10:21:30.

#[test]
fn s09_a_long_outage_with_max_runs_1_fires_only_the_latest_tick() {
    let zone = time_zone("UTC").expect("UTC");
    let missed = schedule(EVERY_MINUTE)
        .fires_after(utc("2025-06-10T08:29:00Z"), &zone)
        .take_while(|t| *t <= utc("2025-06-10T10:21:30Z"))
        .count();
    assert_eq!(missed, 112, "08:30 ... 10:21");

    let found = due_in(
        EVERY_MINUTE,
        "UTC",
        catchup("3d", 1),
        "2025-06-10T08:29:00Z",
        "2025-06-10T10:21:30Z",
    );
    assert_eq!(found.fire, utcs(&["2025-06-10T10:21:00Z"]));
    assert_eq!(found.passed_over, Some(utc("2025-06-10T08:30:00Z")));
    assert_eq!(found.last, utc("2025-06-10T10:21:00Z"));

    // Then every tick on time, one at a time.
    let mut last = found.last;
    for (now, tick) in [
        ("2025-06-10T10:22:00Z", "2025-06-10T10:22:00Z"),
        ("2025-06-10T10:23:00.004Z", "2025-06-10T10:23:00Z"),
    ] {
        let zone = time_zone("UTC").expect("UTC");
        let next = due(
            &schedule(EVERY_MINUTE),
            &zone,
            catchup("3d", 1),
            last,
            utc(now),
        );
        assert_eq!(next.fire, utcs(&[tick]));
        assert_eq!(next.passed_over, None);
        last = next.last;
    }
}

#[test]
fn s09_a_200s_window_makes_up_the_ticks_not_older_than_it() {
    let found = due_in(
        EVERY_MINUTE,
        "UTC",
        catchup("200s", 5),
        "2025-06-10T08:29:00Z",
        "2025-06-10T10:21:30Z",
    );
    // Eligible: at or after 10:18:10.
    assert_eq!(
        found.fire,
        utcs(&[
            "2025-06-10T10:19:00Z",
            "2025-06-10T10:20:00Z",
            "2025-06-10T10:21:00Z"
        ])
    );
    assert_eq!(found.passed_over, Some(utc("2025-06-10T08:30:00Z")));
}

#[test]
fn s09_max_runs_keeps_the_most_recent_ticks_oldest_first() {
    let found = due_in(
        EVERY_MINUTE,
        "UTC",
        catchup("3d", 5),
        "2025-06-10T08:29:00Z",
        "2025-06-10T10:21:30Z",
    );
    assert_eq!(
        found.fire,
        utcs(&[
            "2025-06-10T10:17:00Z",
            "2025-06-10T10:18:00Z",
            "2025-06-10T10:19:00Z",
            "2025-06-10T10:20:00Z",
            "2025-06-10T10:21:00Z"
        ])
    );
}

#[test]
fn s09_a_year_down_fires_one_run_without_listing_the_missed_ticks() {
    // 365 days of minutes: 525 600 missed ticks.
    let down = utc("2026-06-10T08:29:00Z").duration_since(utc("2025-06-10T08:29:00Z"));
    assert_eq!(down.as_secs() / 60, 525_600);
    let found = due_in(
        EVERY_MINUTE,
        "UTC",
        catchup("3d", 1),
        "2025-06-10T08:29:00Z",
        "2026-06-10T08:29:30Z",
    );
    assert_eq!(found.fire, utcs(&["2026-06-10T08:29:00Z"]));
    assert_eq!(found.passed_over, Some(utc("2025-06-10T08:30:00Z")));
    assert_eq!(found.last, utc("2026-06-10T08:29:00Z"));
}

#[test]
fn without_catchup_missed_ticks_are_passed_over_and_only_an_on_time_tick_fires() {
    let hourly = "cron(0 * * * ? *)";
    let found = due_in(
        hourly,
        "UTC",
        None,
        "2025-06-10T06:00:00Z",
        "2025-06-10T10:20:00Z",
    );
    assert_eq!(found.fire, Vec::<Timestamp>::new());
    assert_eq!(found.passed_over, Some(utc("2025-06-10T07:00:00Z")));
    assert_eq!(found.last, utc("2025-06-10T10:00:00Z"), "decided, not owed");

    // A tick at most a minute late is on time, not missed.
    for now in [
        "2025-06-10T10:00:00Z",
        "2025-06-10T10:00:59Z",
        "2025-06-10T10:01:00Z",
    ] {
        let found = due_in(hourly, "UTC", None, "2025-06-10T09:00:00Z", now);
        assert_eq!(found.fire, utcs(&["2025-06-10T10:00:00Z"]), "at {now}");
        assert_eq!(found.passed_over, None);
    }
    let late = due_in(
        hourly,
        "UTC",
        None,
        "2025-06-10T09:00:00Z",
        "2025-06-10T10:01:00.001Z",
    );
    assert_eq!(late.fire, Vec::<Timestamp>::new());
    assert_eq!(late.passed_over, Some(utc("2025-06-10T10:00:00Z")));
    assert_eq!(ON_TIME_MS, 60_000);
}

#[test]
fn max_runs_0_makes_up_nothing_like_no_catchup() {
    let rule = catchup("3d", 0);
    let a = due_in(
        EVERY_MINUTE,
        "UTC",
        rule,
        "2025-06-10T08:29:00Z",
        "2025-06-10T10:21:30Z",
    );
    let b = due_in(
        EVERY_MINUTE,
        "UTC",
        None,
        "2025-06-10T08:29:00Z",
        "2025-06-10T10:21:30Z",
    );
    assert_eq!(a, b);
    assert_eq!(
        a.fire,
        utcs(&["2025-06-10T10:21:00Z"]),
        "on time: 30 s late"
    );
}

#[test]
fn the_window_includes_a_tick_exactly_its_length_old_and_no_older() {
    let rule = catchup("200s", 5);
    let last = "2025-06-10T10:00:00Z";
    // 10:21:20 - 200 s = 10:18:00: that tick is eligible.
    let edge = due_in(EVERY_MINUTE, "UTC", rule, last, "2025-06-10T10:21:20Z");
    assert_eq!(edge.fire.first(), Some(&utc("2025-06-10T10:18:00Z")));
    assert_eq!(edge.fire.len(), 4);
    let past = due_in(EVERY_MINUTE, "UTC", rule, last, "2025-06-10T10:21:20.001Z");
    assert_eq!(past.fire.first(), Some(&utc("2025-06-10T10:19:00Z")));
    assert_eq!(past.fire.len(), 3);
}

#[test]
fn nothing_is_due_before_the_next_tick_and_a_tick_at_now_fires() {
    let last = "2025-06-10T10:21:00Z";
    let early = due_in(EVERY_MINUTE, "UTC", None, last, "2025-06-10T10:21:59.999Z");
    assert_eq!(early.fire, Vec::<Timestamp>::new());
    assert_eq!(early.passed_over, None);
    assert_eq!(early.last, utc(last));
    let at = due_in(EVERY_MINUTE, "UTC", None, last, "2025-06-10T10:22:00Z");
    assert_eq!(at.fire, utcs(&["2025-06-10T10:22:00Z"]));
    let back = due_in(EVERY_MINUTE, "UTC", None, last, "2025-06-10T10:00:00Z");
    assert_eq!(back.fire, Vec::<Timestamp>::new(), "a clock that went back");
}

#[test]
fn catchup_on_a_fall_back_day_fires_the_repeated_wall_time_once() {
    // Berlin 02:00 on 2023-10-29 occurs at 00:00Z and 01:00Z: one tick, the first.
    let found = due_in(
        "cron(0 2 * * ? *)",
        "Europe/Berlin",
        catchup("3d", 5),
        "2023-10-26T12:00:00Z",
        "2023-10-30T12:00:00Z",
    );
    assert_eq!(
        found.fire,
        utcs(&[
            "2023-10-28T00:00:00Z",
            "2023-10-29T00:00:00Z",
            "2023-10-30T01:00:00Z"
        ])
    );
    assert_eq!(found.passed_over, Some(utc("2023-10-27T00:00:00Z")));
}

#[test]
fn catchup_on_a_spring_forward_day_skips_the_missing_wall_time() {
    // New York 02:30 does not exist on 2026-03-08.
    let rule = catchup("3d", 5);
    let found = due_in(
        "cron(30 2 * * ? *)",
        "America/New_York",
        rule,
        "2026-03-06T12:00:00Z",
        "2026-03-10T12:00:00Z",
    );
    assert_eq!(
        found.fire,
        utcs(&["2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"])
    );
    assert_eq!(found.passed_over, Some(utc("2026-03-07T07:30:00Z")));
    let one = due_in(
        "cron(30 2 * * ? *)",
        "America/New_York",
        catchup("3d", 1),
        "2026-03-06T12:00:00Z",
        "2026-03-10T12:00:00Z",
    );
    assert_eq!(one.fire, utcs(&["2026-03-10T06:30:00Z"]));
}

#[test]
fn a_sparse_schedule_is_searched_back_past_long_quiet_spans() {
    // Yearly on 29 February: the latest tick is years back.
    let found = due_in(
        "cron(0 9 29 2 ? *)",
        "UTC",
        catchup("366d", 1),
        "2019-01-01T00:00:00Z",
        "2020-12-31T00:00:00Z",
    );
    assert_eq!(found.fire, utcs(&["2020-02-29T09:00:00Z"]));
    let none = due_in(
        "cron(0 9 29 2 ? *)",
        "UTC",
        None,
        "2019-01-01T00:00:00Z",
        "2023-12-31T00:00:00Z",
    );
    assert_eq!(none.fire, Vec::<Timestamp>::new());
    assert_eq!(none.last, utc("2020-02-29T09:00:00Z"));
}

#[test]
fn tick_keys_are_rfc3339_utc_whole_seconds() {
    assert_eq!(
        tick_key(utc("2025-06-10T10:21:00Z")),
        "schedule:2025-06-10T10:21:00Z"
    );
    assert_eq!(
        tick_key(utc("2025-06-10T12:21:00+02:00")),
        "schedule:2025-06-10T10:21:00Z"
    );
    assert_eq!(
        tick_key(utc("2025-06-10T10:21:00.250Z")),
        "schedule:2025-06-10T10:21:00Z"
    );
}

#[test]
fn a_backfill_range_holds_its_start_not_its_end_and_folds_once() {
    let zone = time_zone("Europe/Berlin").expect("zone");
    let daily = schedule("cron(0 2 * * ? *)");
    let ticks = between(
        &daily,
        &zone,
        utc("2023-10-28T00:00:00Z"),
        utc("2023-10-30T01:00:00Z"),
        100,
    )
    .expect("a range");
    assert_eq!(
        ticks,
        utcs(&["2023-10-28T00:00:00Z", "2023-10-29T00:00:00Z"])
    );
    let empty = between(
        &daily,
        &zone,
        utc("2023-10-28T00:00:00Z"),
        utc("2023-10-28T00:00:00Z"),
        9,
    );
    assert!(matches!(empty, Err(RangeError::Empty { .. })), "{empty:?}");
    let utc_zone = time_zone("UTC").expect("UTC");
    let many = between(
        &schedule(EVERY_MINUTE),
        &utc_zone,
        utc("2025-01-01T00:00:00Z"),
        utc("2025-01-02T00:00:00Z"),
        1000,
    );
    match many {
        Err(RangeError::TooMany { limit, at }) => {
            assert_eq!((limit, at), (1000, utc("2025-01-01T16:40:00Z")));
        }
        other => panic!("expected too many, got {other:?}"),
    }
}

/// The answer by listing every tick: the reference `due` must agree with.
fn listed(schedule: &Schedule, rule: Option<Catchup>, last: Timestamp, now: Timestamp) -> Due {
    let zone = time_zone("UTC").expect("UTC");
    let all: Vec<Timestamp> = schedule
        .fires_after(last, &zone)
        .take_while(|t| *t <= now)
        .collect();
    let (window, count) = match rule {
        Some(r) if r.max_runs > 0 => (r.window_ms.max(ON_TIME_MS), r.max_runs as usize),
        _ => (ON_TIME_MS, 1),
    };
    let oldest = now - SignedDuration::from_millis(window as i64);
    let eligible: Vec<Timestamp> = all.iter().copied().filter(|t| *t >= oldest).collect();
    let fire: Vec<Timestamp> = eligible[eligible.len().saturating_sub(count)..].to_vec();
    Due {
        passed_over: all.first().copied().filter(|f| fire.first() != Some(f)),
        last: all.last().copied().unwrap_or(last),
        fire,
    }
}

proptest! {
    #[test]
    fn due_agrees_with_listing_every_tick(
        expression in prop::sample::select(vec![
            "cron(* * * * ? *)", "cron(*/7 * * * ? *)", "cron(0 0-11 * * ? *)",
            "cron(15 3 ? * MON-FRI *)", "rate(5 minutes)", "rate(1 hour)",
        ]),
        last_minute in 0i64..20_000,
        down_seconds in 0i64..(3 * 86_400),
        window_minutes in prop::option::of(0u64..3_000),
        max_runs in 0u32..12,
    ) {
        let last = utc("2025-06-01T00:00:00Z") + SignedDuration::from_mins(last_minute);
        let now = last + SignedDuration::from_secs(down_seconds);
        let rule = window_minutes.map(|m| Catchup { window_ms: m * 60_000, max_runs });
        let parsed = schedule(expression);
        let zone = time_zone("UTC").expect("UTC");
        let found = due(&parsed, &zone, rule, last, now);
        prop_assert_eq!(&found, &listed(&parsed, rule, last, now));
        let most = rule.map_or(1, |r| r.max_runs.max(1)) as usize;
        prop_assert!(found.fire.len() <= most);
    }
}
