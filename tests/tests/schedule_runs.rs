//! Schedules that make runs, end to end on the `aloft` binary: `aloft backfill` (one run
//! per tick, never twice, at most N at once, oldest first), `aloft serve` making up
//! missed ticks after a restart and stopping on SIGTERM, and a manual `aloft run` under
//! the workflow's overlap policy or its own `--overlap`.
//!
//! tzdata: the binary's bundled release (2026f), with the rules of 2025b for Europe/Berlin.

use rusqlite::Connection;
use serde_json::Value;

use aloft_tests::{GUARD, Sandbox, max_overlap, wait_for};

/// A daily 02:00 Berlin workflow whose one command takes a moment.
const NIGHTLY: &str = "name: nightly
schedule: {expression: \"cron(0 2 * * ? *)\", timezone: Europe/Berlin, overlap: skip}
tasks:
  work: {run: {command: [sh, -c, \"sleep 0.2; echo '{}'\"]}}
";

/// Every run: (scheduled time ms, key, status, started_at, ended_at), in creation order.
fn runs(sandbox: &Sandbox) -> Vec<(u64, String, String, u64, u64)> {
    let conn = Connection::open(sandbox.db()).expect("open the database");
    let mut select = conn
        .prepare(
            "SELECT scheduled_time, coalesce(run_key, ''), status, coalesce(started_at, 0), \
             coalesce(ended_at, 0) FROM runs ORDER BY rowid",
        )
        .expect("prepare");
    let rows = select
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("query");
    rows.collect::<Result<_, _>>().expect("read runs")
}

fn ticks(report: &Value) -> Vec<(String, String, String, bool)> {
    report["ticks"]
        .as_array()
        .unwrap_or_else(|| panic!("no ticks in {report}"))
        .iter()
        .map(|t| {
            (
                t["tick"].as_str().expect("tick").to_owned(),
                t["run_id"].as_str().expect("run id").to_owned(),
                t["status"].as_str().expect("status").to_owned(),
                t["created"].as_bool().expect("created"),
            )
        })
        .collect()
}

#[test]
fn backfill_runs_each_tick_once_oldest_first_at_most_n_at_once() {
    let sandbox = Sandbox::new();
    sandbox.write("nightly.yaml", NIGHTLY);

    // 02:00 Berlin repeats on 2023-10-29 (00:00Z and 01:00Z): one tick that day.
    let done = sandbox.aloft(&[
        "backfill",
        "nightly.yaml",
        "--from",
        "2023-10-27T00:00:00Z",
        "--to",
        "2023-10-31T00:00:00Z",
        "--max-parallel",
        "2",
        "--output",
        "json",
    ]);
    done.assert_code(0);
    let first = ticks(&done.json());
    let expected = [
        "2023-10-27T00:00:00Z",
        "2023-10-28T00:00:00Z",
        "2023-10-29T00:00:00Z",
        "2023-10-30T01:00:00Z",
    ];
    assert_eq!(
        first.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
        expected
    );
    assert!(first.iter().all(|t| t.2 == "succeeded" && t.3), "{first:?}");

    let stored = runs(&sandbox);
    let keys: Vec<String> = stored.iter().map(|r| r.1.clone()).collect();
    let expected_keys: Vec<String> = expected.iter().map(|t| format!("schedule:{t}")).collect();
    assert_eq!(keys, expected_keys, "created oldest first, keyed by tick");
    let spans: Vec<(u128, u128)> = stored
        .iter()
        .map(|r| (u128::from(r.3), u128::from(r.4)))
        .collect();
    // The workflow's overlap policy is skip: a backfill waits for each run before the
    // next, whatever --max-parallel says.
    assert_eq!(
        max_overlap(&spans),
        1,
        "one at a time under skip: {spans:?}"
    );

    // Again, over a longer range: the ticks that have runs keep them.
    let again = sandbox.aloft(&[
        "backfill",
        "nightly.yaml",
        "--from",
        "2023-10-27T00:00:00Z",
        "--to",
        "2023-11-01T00:00:00Z",
    ]);
    again.assert_code(0);
    let table: Vec<&str> = again.stdout.lines().collect();
    assert_eq!(table.len(), 6, "{}", again.stdout);
    assert!(table[0].starts_with("TICK"), "{}", again.stdout);
    for (line, old) in table[1..5].iter().zip(&first) {
        assert!(
            line.starts_with(&format!("{}  {}  succeeded", old.0, old.1)),
            "{line}"
        );
    }
    assert!(table[5].starts_with("2023-10-31T01:00:00Z"), "{}", table[5]);
    assert_eq!(runs(&sandbox).len(), 5, "one new run, no duplicates");
}

#[test]
fn backfill_refuses_what_has_no_ticks() {
    let sandbox = Sandbox::new();
    sandbox.write("plain.yaml", "name: plain\ntasks: {a: {run: {pass: {}}}}\n");
    sandbox.write("nightly.yaml", NIGHTLY);
    let plain = sandbox.aloft(&[
        "backfill",
        "plain.yaml",
        "--from",
        "2023-10-27T00:00:00Z",
        "--to",
        "2023-10-28T00:00:00Z",
    ]);
    plain.assert_code(1);
    assert!(plain.stderr.contains("has no schedule"), "{}", plain.stderr);
    let reversed = sandbox.aloft(&[
        "backfill",
        "nightly.yaml",
        "--from",
        "2023-10-28T00:00:00Z",
        "--to",
        "2023-10-27T00:00:00Z",
    ]);
    reversed.assert_code(1);
    assert!(
        reversed.stderr.contains("is not before"),
        "{}",
        reversed.stderr
    );
    assert!(!sandbox.db().exists() || runs(&sandbox).is_empty());
}

/// An `aloft serve` process, killed if a test fails before stopping it.
struct Serving(Option<aloft_tests::Running>);

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(running) = self.0.take() {
            running.kill();
        }
    }
}

#[test]
fn serve_makes_up_missed_ticks_after_a_restart_and_stops_on_sigterm() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "every.yaml",
        "name: every-minute\nschedule: {expression: \"rate(1 minute)\", overlap: allow, \
         catchup: {window: 1h, max_runs: 2}}\ntasks: {t: {run: {pass: {result: {}}}}}\n",
    );
    let stop = |mut serving: Serving| {
        let running = serving.0.take().expect("serving");
        let pid = rustix::process::Pid::from_raw(i32::try_from(running.id()).expect("pid"))
            .expect("a pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let done = running.wait();
        done.assert_code(0);
        done.assert_no_panic();
        done
    };

    // First start: the workflow's ticks count from now on.
    let serving = Serving(Some(sandbox.start(&["serve", "every.yaml"])));
    let conn = || Connection::open(sandbox.db()).expect("open");
    let first_tick: i64 = wait_for("the first tick record", GUARD, || {
        if !sandbox.db().exists() {
            return None;
        }
        conn()
            .query_row("SELECT last_tick FROM schedule_ticks", [], |r| r.get(0))
            .ok()
    });
    let done = stop(serving);
    assert!(
        done.stderr.contains("serving every-minute"),
        "{}",
        done.stderr
    );

    // As if it had been down for 10 minutes: two of the missed ticks are made up.
    let minute = 60_000;
    let earlier = (first_tick / minute - 10) * minute;
    conn()
        .execute("UPDATE schedule_ticks SET last_tick = ?1", [earlier])
        .expect("move the last tick back");
    let serving = Serving(Some(sandbox.start(&["serve", "every.yaml"])));
    let made_up = wait_for("two made-up runs to settle", GUARD, || {
        let runs = runs(&sandbox);
        (runs.len() >= 2 && runs.iter().all(|r| r.2 == "succeeded")).then_some(runs)
    });
    stop(serving);
    let ticks: Vec<u64> = made_up.iter().map(|r| r.0).collect();
    assert!(
        ticks[0] + 60_000 == ticks[1],
        "consecutive minutes: {ticks:?}"
    );
    assert!(
        ticks[1] as i64 >= first_tick - minute,
        "the most recent ones"
    );
}

#[test]
fn a_manual_run_follows_the_overlap_policy_unless_it_names_one() {
    let sandbox = Sandbox::new();
    let _go = GoOnDrop(sandbox.path().join("go"));
    sandbox.write(
        "hold.yaml",
        "name: hold\nschedule: {expression: \"rate(1 day)\", overlap: skip}\ntasks:\n  wait:\n    \
         run: {command: [sh, -c, \"while [ ! -e go ]; do sleep 0.05; done; echo '{}'\"]}\n",
    );
    let first = sandbox.start(&["run", "hold.yaml"]);
    let going = sandbox.wait_for_run();

    let skipped = sandbox.aloft(&["run", "hold.yaml", "--output", "json"]);
    skipped.assert_code(0);
    let report = skipped.json();
    assert_eq!(report["status"], "skipped");
    assert_eq!(report["active"], serde_json::json!([going]));
    assert!(
        skipped.stderr.contains("--overlap allow"),
        "{}",
        skipped.stderr
    );
    assert_eq!(runs(&sandbox).len(), 1);

    let second = sandbox.start(&["run", "hold.yaml", "--overlap", "allow"]);
    wait_for("the second run", GUARD, || {
        (runs(&sandbox).len() == 2).then_some(())
    });
    sandbox.write("go", "");
    first.wait().assert_code(0);
    second.wait().assert_code(0);
    let stored = runs(&sandbox);
    assert!(stored.iter().all(|r| r.2 == "succeeded"), "{stored:?}");
}

/// Writes the file `go` when dropped, so that tasks waiting for it end even when a test
/// fails half way.
struct GoOnDrop(std::path::PathBuf);

impl Drop for GoOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "");
    }
}

/// A workflow whose one task waits for the file `go` in the sandbox.
fn holding(overlap: &str) -> String {
    format!(
        "name: hold\nschedule: {{expression: \"rate(1 day)\", overlap: {overlap}}}\ntasks:\n  \
         wait:\n    run: {{command: [sh, -c, \"while [ ! -e go ]; do sleep 0.05; done; echo \
         '{{}}'\"]}}\n"
    )
}

#[test]
fn buffer_one_runs_the_waiting_run_when_the_running_one_settles() {
    let sandbox = Sandbox::new();
    let _go = GoOnDrop(sandbox.path().join("go"));
    sandbox.write("hold.yaml", holding("buffer_one"));
    let first = sandbox.start(&["run", "hold.yaml"]);
    sandbox.wait_for_run();

    let waiting = sandbox.start(&["run", "hold.yaml"]);
    wait_for("the waiting run", GUARD, || {
        (runs(&sandbox).len() == 2).then_some(())
    });
    let third = sandbox.aloft(&["run", "hold.yaml"]);
    third.assert_code(0);
    assert!(third.stderr.contains("skipped"), "{}", third.stderr);
    let stored = runs(&sandbox);
    assert_eq!(stored.len(), 2, "at most one run waits");
    assert_eq!(stored[1].2, "queued");

    sandbox.write("go", "");
    first.wait().assert_code(0);
    let second = waiting.wait();
    second.assert_code(0);
    assert!(second.stderr.contains("waits until"), "{}", second.stderr);
    let stored = runs(&sandbox);
    assert!(stored.iter().all(|r| r.2 == "succeeded"), "{stored:?}");
    assert!(
        stored[1].3 >= stored[0].4,
        "the second started after the first ended"
    );
}

#[test]
fn cancel_running_stops_the_run_going_and_starts_a_new_one() {
    let sandbox = Sandbox::new();
    let _go = GoOnDrop(sandbox.path().join("go"));
    sandbox.write("hold.yaml", holding("cancel_running"));
    let first = sandbox.start(&["run", "hold.yaml"]);
    let old = sandbox.wait_for_run();
    wait_for("the first task to start", GUARD, || {
        sandbox
            .attempt_file(&old, "wait", 1, "claim")
            .exists()
            .then_some(())
    });

    let second = sandbox.start(&["run", "hold.yaml"]);
    let cancelled = first.wait();
    cancelled.assert_code(1);
    sandbox.write("go", "");
    let done = second.wait();
    done.assert_code(0);
    assert!(done.stderr.contains("cancelled run(s)"), "{}", done.stderr);
    let stored = runs(&sandbox);
    let statuses: Vec<&str> = stored.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(statuses, ["cancelled", "succeeded"]);
}
