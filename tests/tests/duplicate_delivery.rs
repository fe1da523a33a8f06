//! Messages delivered more than once, late, or replayed from the past change nothing: a
//! paused run's queue is filled with copies of every message it ever held, and the
//! resumed run still starts each task exactly once.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde_json::json;

use aloft_tests::{GUARD, Sandbox, sh_task, table, task, task_table, wait_for};

const STEP: &str = r#"echo "$ALOFT_TASK" >> marks
sleep 0.2
printf '{"task": "%s", "attempt": %s}' "$ALOFT_TASK" "$ALOFT_ATTEMPT""#;

const TASKS: [(&str, &str); 6] = [
    ("a", ""),
    ("b", "depends_on: [a]"),
    ("c", "depends_on: [a]"),
    ("d", "depends_on: [a]"),
    ("e", "depends_on: [b, c]"),
    ("f", "depends_on: [d, e]"),
];

fn workflow() -> String {
    let mut yaml = "name: duplicates\nconcurrency: {max_tasks: 2}\n\
                    defaults: {timeout: 5m, retry: {max_attempts: 1}}\ntasks:\n"
        .to_owned();
    for (name, depends_on) in TASKS {
        let settings: Vec<&str> = [depends_on].into_iter().filter(|s| !s.is_empty()).collect();
        yaml += &sh_task(name, &settings, STEP);
    }
    yaml
}

type Row = (String, String, String);

/// Every message row in the database now: (run, queue, body). Empty while the database
/// or its tables do not exist yet.
fn messages(db: &Path) -> Vec<Row> {
    if !db.exists() {
        return Vec::new();
    }
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Vec::new();
    };
    let Ok(mut select) = conn.prepare("SELECT run_id, queue, body FROM messages") else {
        return Vec::new();
    };
    let rows = select.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
    rows.map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// Insert each row `copies` times, due now.
fn deliver_again(db: &Path, rows: &BTreeSet<Row>, copies: usize) {
    let mut conn = Connection::open(db).expect("open the paused run's database");
    let tx = conn.transaction().expect("a transaction");
    for (run_id, queue, body) in rows {
        for _ in 0..copies {
            tx.execute(
                "INSERT INTO messages (run_id, queue, body, visible_at, receives) \
                 VALUES (?1, ?2, ?3, 0, 0)",
                (run_id, queue, body),
            )
            .expect("insert a copy");
        }
    }
    tx.commit().expect("commit the copies");
}

fn marks(sandbox: &Sandbox) -> Vec<String> {
    let mut marks: Vec<String> = sandbox.read("marks").lines().map(str::to_owned).collect();
    marks.sort();
    marks
}

/// Run until `task` has started, watching the queue all along; kill the runner. Returns
/// every message seen in the queue and the run id.
fn run_watching_queue(sandbox: &Sandbox, until: &str) -> (BTreeSet<Row>, String) {
    let running = sandbox.start(&["run", "workflow.yaml", "--output", "json"]);
    let mut seen = BTreeSet::new();
    wait_for(&format!("task {until} to start"), GUARD, || {
        seen.extend(messages(&sandbox.db()));
        sandbox
            .read("marks")
            .lines()
            .any(|m| m == until)
            .then_some(())
    });
    running.kill().assert_no_panic();
    let now = messages(&sandbox.db());
    assert!(
        !now.is_empty(),
        "the paused run's queue is empty; at least {until}'s timeout check should wait there"
    );
    seen.extend(now);
    let run_id = sandbox.wait_for_run();
    (seen, run_id)
}

fn assert_each_task_ran_once(sandbox: &Sandbox, run: &serde_json::Value) {
    assert_eq!(run["status"], "succeeded", "{run}");
    let expected: Vec<(&str, &str, u64)> = TASKS
        .iter()
        .map(|&(name, _)| (name, "succeeded", 1))
        .collect();
    assert_eq!(task_table(run), table(&expected));
    for (name, _) in TASKS {
        assert_eq!(
            task(run, name)["output"],
            json!({"task": name, "attempt": 1})
        );
    }
    let all: Vec<&str> = TASKS.iter().map(|&(name, _)| name).collect();
    assert_eq!(marks(sandbox), all, "each task must start exactly once");
}

#[test]
fn replayed_and_duplicated_messages_start_no_task_twice() {
    let sandbox = Sandbox::new();
    sandbox.write("workflow.yaml", workflow());
    let (seen, run_id) = run_watching_queue(&sandbox, "e");

    deliver_again(&sandbox.db(), &seen, 2);
    let done = sandbox.aloft(&["resume", &run_id, "--output", "json"]);

    done.assert_no_panic();
    done.assert_code(0);
    assert_each_task_ran_once(&sandbox, &done.json());
}

#[test]
fn duplicates_injected_at_two_pauses_start_no_task_twice() {
    let sandbox = Sandbox::new();
    sandbox.write("workflow.yaml", workflow());
    let (mut seen, run_id) = run_watching_queue(&sandbox, "b");
    deliver_again(&sandbox.db(), &seen, 2);

    let resuming = sandbox.start(&["resume", &run_id, "--output", "json"]);
    wait_for("task e to start", GUARD, || {
        seen.extend(messages(&sandbox.db()));
        sandbox
            .read("marks")
            .lines()
            .any(|m| m == "e")
            .then_some(())
    });
    resuming.kill().assert_no_panic();
    seen.extend(messages(&sandbox.db()));
    deliver_again(&sandbox.db(), &seen, 2);
    let done = sandbox.aloft(&["resume", &run_id, "--output", "json"]);

    done.assert_no_panic();
    done.assert_code(0);
    assert_each_task_ran_once(&sandbox, &done.json());
}

#[test]
fn replaying_every_message_after_the_run_settled_changes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.write("workflow.yaml", workflow());
    let running = sandbox.start(&["run", "workflow.yaml", "--output", "json"]);
    let mut seen = BTreeSet::new();
    let mut running = Some(running);
    let finished = wait_for("the run to finish", GUARD, || {
        seen.extend(messages(&sandbox.db()));
        let exited = running.as_mut().is_some_and(|r| r.has_exited());
        exited.then(|| running.take().expect("still held").wait())
    });
    finished.assert_code(0);
    let printed = finished.json();
    let run_id = printed["id"].as_str().expect("a run id").to_owned();

    deliver_again(&sandbox.db(), &seen, 2);
    let done = sandbox.aloft(&["resume", &run_id, "--output", "json"]);

    done.assert_code(0);
    assert_eq!(done.json(), printed);
    assert_each_task_ran_once(&sandbox, &printed);
    let shown = sandbox.aloft(&["runs", "show", &run_id, "--output", "json"]);
    assert_eq!(shown.json(), printed);
}

/// Forged late and duplicate messages, in the queue's stored form (the same JSON as the
/// SQS message bodies): starts of every task, including settled, running, waiting and
/// never-reached attempts, completions that contradict how settled attempts ended or
/// report attempts that never ran, and extra planning.
fn forged_messages(run_id: &str, succeeded: &[String]) -> BTreeSet<Row> {
    let mut bodies = Vec::new();
    for (name, _) in TASKS {
        for attempt in [1, 2] {
            bodies.push(json!({"type": "dispatch", "run_id": run_id,
                "key": {"task": name}, "attempt": attempt}));
        }
        let bogus = json!({"status": "succeeded", "output": {"forged": true}});
        bodies.push(json!({"type": "complete", "run_id": run_id,
            "key": {"task": name}, "attempt": 2, "outcome": bogus}));
    }
    for name in succeeded {
        let failed = json!({"status": "failed",
            "failure": {"kind": "error", "message": "forged late failure"}});
        bodies.push(json!({"type": "complete", "run_id": run_id,
            "key": {"task": name}, "attempt": 1, "outcome": failed}));
    }
    let waiting = json!({"status": "succeeded", "output": {"forged": true}});
    bodies.push(json!({"type": "complete", "run_id": run_id,
        "key": {"task": "f"}, "attempt": 1, "outcome": waiting}));
    bodies.push(json!({"type": "plan", "run_id": run_id}));
    bodies
        .into_iter()
        .map(|body| (run_id.to_owned(), queue_of(&body), body.to_string()))
        .collect()
}

/// The queue a message kind travels on.
fn queue_of(body: &serde_json::Value) -> String {
    match body["type"].as_str() {
        Some("dispatch") => "dispatch",
        Some("complete") => "complete",
        _ => "plan",
    }
    .to_owned()
}

#[test]
fn forged_late_starts_and_contradicting_completions_change_nothing() {
    let sandbox = Sandbox::new();
    sandbox.write("workflow.yaml", workflow());
    let (_, run_id) = run_watching_queue(&sandbox, "e");
    let paused = sandbox.aloft(&["runs", "show", &run_id, "--output", "json"]);
    paused.assert_code(0);
    let succeeded: Vec<String> = task_table(&paused.json())
        .into_iter()
        .filter(|(_, (status, _))| status == "succeeded")
        .map(|(name, _)| name)
        .collect();
    assert!(
        ["a", "b", "c"]
            .iter()
            .all(|t| succeeded.iter().any(|s| s == t)),
        "a, b and c end before e starts: {succeeded:?}"
    );

    deliver_again(&sandbox.db(), &forged_messages(&run_id, &succeeded), 2);
    let done = sandbox.aloft(&["resume", &run_id, "--output", "json"]);

    done.assert_no_panic();
    assert!(
        !done.stderr.contains("unreadable message"),
        "a forged message was not understood:\n{}",
        done.stderr
    );
    done.assert_code(0);
    assert_each_task_ran_once(&sandbox, &done.json());
}
