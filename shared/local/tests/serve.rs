//! The embedded scheduler (`aloft serve`) in process, on a paused tokio clock: its loop
//! sleeps with tokio's timers and reads a [`TokioClock`], so minutes and years of fake
//! time pass in milliseconds and every tick is checked to the millisecond. Case S09 with
//! its exact values, restarts, first start, and two schedulers on one database.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::Connection;

use aloft_core::source::load_str;
use aloft_engine::ports::Store;
use aloft_engine::{Admission, StartRequest};
use aloft_local::serve::{Daemon, Event, Scheduled};
use aloft_local::{Runner, TokioClock};

fn ms(text: &str) -> u64 {
    let at: Timestamp = text
        .parse()
        .unwrap_or_else(|e| panic!("{text} is not an instant: {e}"));
    u64::try_from(at.as_millisecond()).expect("after 1970")
}

fn show(ms: u64) -> String {
    Timestamp::from_millisecond(i64::try_from(ms).expect("in range"))
        .expect("in range")
        .to_string()
}

/// The workflow of case S09 with a catch-up and overlap setting.
fn every_minute(schedule_extra: &str) -> String {
    format!(
        "name: every-minute\nschedule: {{expression: \"cron(* * * * ? *)\", timezone: UTC, \
         {schedule_extra}}}\ntasks: {{t: {{run: {{pass: {{result: {{}}}}}}}}}}\n"
    )
}

const S09: &str = "overlap: skip, catchup: {window: 3d, max_runs: 1}";

fn runner(db: &Path, now: &str) -> Runner {
    Runner::open(db, Arc::new(TokioClock::starting_at(ms(now)))).expect("open the database")
}

fn daemon(db: &Path, now: &str, yaml: &str) -> Daemon {
    let definition = load_str("wf.yaml", yaml).unwrap_or_else(|p| panic!("bad workflow:\n{p}"));
    let served = Scheduled::new(definition, None)
        .expect("a valid schedule")
        .expect("a schedule");
    Daemon::new(runner(db, now), vec![served])
}

/// Serve for `span` of fake time; what the daemon reported.
async fn serve_for(daemon: &mut Daemon, span: Duration) -> Vec<Event> {
    let mut events = Vec::new();
    daemon
        .run(tokio::time::sleep(span), &mut |e| events.push(e.clone()))
        .await
        .expect("serve");
    assert!(daemon.driving().is_empty(), "pass tasks settle at once");
    events
}

/// Every run: (scheduled time, key, status, creation time), in creation order.
fn runs(db: &Path) -> Vec<(String, String, String, String)> {
    let conn = Connection::open(db).expect("open");
    let mut select = conn
        .prepare("SELECT scheduled_time, run_key, status, created_at FROM runs ORDER BY rowid")
        .expect("prepare");
    let rows = select
        .query_map([], |r| {
            Ok((
                show(r.get(0)?),
                r.get(1)?,
                r.get(2)?,
                show(r.get::<_, u64>(3)?),
            ))
        })
        .expect("query");
    rows.collect::<Result<_, _>>().expect("read")
}

fn scheduled(db: &Path) -> Vec<String> {
    runs(db).into_iter().map(|r| r.0).collect()
}

async fn last_tick(daemon: &Daemon) -> Option<String> {
    let db = daemon.runner().db();
    db.last_tick("every-minute").await.expect("read").map(show)
}

#[tokio::test(start_paused = true)]
async fn s09_after_downtime_one_run_for_the_latest_tick_then_every_tick_on_time() {
    let dir = tempfile::tempdir().expect("temp folder");
    let db = dir.path().join("aloft.db");
    let mut daemon = daemon(&db, "2025-06-10T10:21:30Z", &every_minute(S09));
    let store = daemon.runner().db();
    store
        .record_tick("every-minute", ms("2025-06-10T08:29:00Z"))
        .await
        .expect("seed the last run's tick");

    let events = serve_for(&mut daemon, Duration::from_secs(120)).await;

    assert_eq!(
        runs(&db),
        [
            ("10:21:00", "10:21:30"),
            ("10:22:00", "10:22:00"),
            ("10:23:00", "10:23:00"),
        ]
        .map(|(tick, created)| (
            format!("2025-06-10T{tick}Z"),
            format!("schedule:2025-06-10T{tick}Z"),
            "succeeded".to_owned(),
            format!("2025-06-10T{created}Z"),
        ))
    );
    let passed: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::PassedOver { .. }))
        .collect();
    assert_eq!(
        passed,
        [&Event::PassedOver {
            workflow: "every-minute".into(),
            first: ms("2025-06-10T08:30:00Z"),
            made_up: 1,
        }]
    );
    assert_eq!(
        last_tick(&daemon).await.as_deref(),
        Some("2025-06-10T10:23:00Z")
    );
}

#[tokio::test(start_paused = true)]
async fn s09_variants_make_up_the_recent_ticks_in_order() {
    let cases = [
        (
            "overlap: allow, catchup: {window: 200s, max_runs: 5}",
            "2025-06-10T10:21:30Z",
            &["10:19", "10:20", "10:21"][..],
        ),
        (
            "overlap: allow, catchup: {window: 3d, max_runs: 5}",
            "2025-06-10T10:21:30Z",
            &["10:17", "10:18", "10:19", "10:20", "10:21"][..],
        ),
    ];
    for (setting, now, expected) in cases {
        let dir = tempfile::tempdir().expect("temp folder");
        let db = dir.path().join("aloft.db");
        let mut daemon = daemon(&db, now, &every_minute(setting));
        let store = daemon.runner().db();
        store
            .record_tick("every-minute", ms("2025-06-10T08:29:00Z"))
            .await
            .expect("seed");
        serve_for(&mut daemon, Duration::from_secs(20)).await;
        let expected: Vec<String> = expected
            .iter()
            .map(|t| format!("2025-06-10T{t}:00Z"))
            .collect();
        assert_eq!(scheduled(&db), expected, "{setting}");
    }
}

#[tokio::test(start_paused = true)]
async fn s09_a_year_down_makes_one_run() {
    let dir = tempfile::tempdir().expect("temp folder");
    let db = dir.path().join("aloft.db");
    let mut daemon = daemon(&db, "2026-06-10T08:29:30Z", &every_minute(S09));
    let store = daemon.runner().db();
    store
        .record_tick("every-minute", ms("2025-06-10T08:29:00Z"))
        .await
        .expect("seed");
    serve_for(&mut daemon, Duration::from_secs(20)).await;
    assert_eq!(scheduled(&db), ["2026-06-10T08:29:00Z"]);
}

#[tokio::test(start_paused = true)]
async fn without_catchup_missed_ticks_are_not_made_up() {
    let dir = tempfile::tempdir().expect("temp folder");
    let db = dir.path().join("aloft.db");
    let hourly = "name: every-minute\nschedule: {expression: \"cron(0 * * * ? *)\"}\n\
                  tasks: {t: {run: {pass: {}}}}\n";
    let mut daemon = daemon(&db, "2025-06-10T10:20:00Z", hourly);
    let store = daemon.runner().db();
    store
        .record_tick("every-minute", ms("2025-06-10T06:00:00Z"))
        .await
        .expect("seed");
    let events = serve_for(&mut daemon, Duration::from_secs(45 * 60)).await;
    assert_eq!(scheduled(&db), ["2025-06-10T11:00:00Z"]);
    assert!(events.contains(&Event::PassedOver {
        workflow: "every-minute".into(),
        first: ms("2025-06-10T07:00:00Z"),
        made_up: 0,
    }));
}

#[tokio::test(start_paused = true)]
async fn a_workflow_served_for_the_first_time_owes_nothing_before() {
    let dir = tempfile::tempdir().expect("temp folder");
    let db = dir.path().join("aloft.db");
    let mut daemon = daemon(&db, "2025-06-10T10:21:30Z", &every_minute(S09));
    let events = serve_for(&mut daemon, Duration::from_secs(60)).await;
    assert_eq!(
        events.first(),
        Some(&Event::FirstServed {
            workflow: "every-minute".into(),
            since: ms("2025-06-10T10:21:30Z"),
        })
    );
    assert_eq!(scheduled(&db), ["2025-06-10T10:22:00Z"]);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_scheduler_resumes_from_its_recorded_tick() {
    let dir = tempfile::tempdir().expect("temp folder");
    let db = dir.path().join("aloft.db");
    let yaml = every_minute(S09);
    let mut first = daemon(&db, "2025-06-10T10:21:30Z", &yaml);
    serve_for(&mut first, Duration::from_secs(120)).await;
    assert_eq!(
        last_tick(&first).await.as_deref(),
        Some("2025-06-10T10:23:00Z")
    );
    drop(first);

    // Down from 10:23:30 to 10:30:30.
    let mut second = daemon(&db, "2025-06-10T10:30:30Z", &yaml);
    let events = serve_for(&mut second, Duration::from_secs(60)).await;
    assert_eq!(
        scheduled(&db),
        [
            "2025-06-10T10:22:00Z",
            "2025-06-10T10:23:00Z",
            "2025-06-10T10:30:00Z",
            "2025-06-10T10:31:00Z",
        ]
    );
    assert!(events.contains(&Event::PassedOver {
        workflow: "every-minute".into(),
        first: ms("2025-06-10T10:24:00Z"),
        made_up: 1,
    }));
}

#[tokio::test(start_paused = true)]
async fn a_tick_fired_twice_is_one_run() {
    let dir = tempfile::tempdir().expect("temp folder");
    let db = dir.path().join("aloft.db");
    let yaml = every_minute("overlap: allow");

    // The 10:22 tick already has a run (another scheduler fired it).
    let other = runner(&db, "2025-06-10T10:21:40Z");
    let definition = load_str("wf.yaml", &yaml).expect("loads");
    let earlier = other
        .start(StartRequest {
            definition,
            input: serde_json::json!({}),
            idempotency_key: Some("schedule:2025-06-10T10:22:00Z".into()),
            scheduled_time: Some(ms("2025-06-10T10:22:00Z")),
            workdir: None,
        })
        .await
        .expect("started");
    other
        .db()
        .record_tick("every-minute", ms("2025-06-10T10:21:00Z"))
        .await
        .expect("seed");

    // Two schedulers on one database, firing the same ticks.
    let mut one = daemon(&db, "2025-06-10T10:21:50Z", &yaml);
    let mut two = daemon(&db, "2025-06-10T10:21:50Z", &yaml);
    let (events_one, events_two) = tokio::join!(
        serve_for(&mut one, Duration::from_secs(100)),
        serve_for(&mut two, Duration::from_secs(100)),
    );

    assert_eq!(
        scheduled(&db),
        ["2025-06-10T10:22:00Z", "2025-06-10T10:23:00Z"],
        "one run per tick"
    );
    let fired_1022 = events_one
        .iter()
        .chain(&events_two)
        .filter(|e| match e {
            Event::Fired { tick, started, .. } => {
                *tick == ms("2025-06-10T10:22:00Z")
                    && started.run_id == earlier.run_id
                    && !started.created
                    && started.admission == Admission::Started
            }
            Event::AlreadyFired { tick, run_id, .. } => {
                *tick == ms("2025-06-10T10:22:00Z") && *run_id == earlier.run_id
            }
            _ => false,
        })
        .count();
    assert_eq!(fired_1022, 2, "both schedulers found the tick's run");
}
