//! A task past its timeout is stopped with its whole process tree.

use std::time::{Duration, Instant};

use aloft_tests::{Sandbox, processes_with_arg, table, task, task_table};

/// A `sleep` argument no other process on the machine has: 30 s and a unique fraction.
fn unique_sleep() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("30.{}{:09}", std::process::id() % 1000, nanos)
}

/// Wait (bounded) until no process has `marker` as an argument; kill leftovers and fail
/// if some remain.
fn assert_no_process_left(marker: &str) {
    let start = Instant::now();
    let mut left = processes_with_arg(marker);
    while !left.is_empty() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        left = processes_with_arg(marker);
    }
    for &pid in &left {
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            // Cleanup of our own leftovers before failing; one may have exited already.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    assert!(left.is_empty(), "processes {left:?} running `sleep {marker}` outlived the timeout");
}

#[test]
fn timeout_kills_the_task_and_its_children() {
    let sandbox = Sandbox::new();
    let marker = unique_sleep();
    let file = sandbox.write(
        "timeout.yaml",
        format!(
            "name: timeout-tree\ntasks:\n  slow:\n    timeout: 1s\n    retry: {{max_attempts: 1}}\n    \
             run: {{command: [sh, -c, 'sleep {marker} & sleep {marker}; wait']}}\n  \
             after:\n    depends_on: [slow]\n    run: {{pass: {{result: {{}}}}}}\n"
        ),
    );

    let (done, run) = sandbox.run_json(&file);

    done.assert_code(1);
    assert_eq!(run["status"], "failed");
    assert_eq!(
        task_table(&run),
        table(&[("slow", "timed_out", 1), ("after", "upstream_failed", 0)])
    );
    let error = &task(&run, "slow")["error"];
    assert_eq!(error["kind"], "timeout");
    assert!(
        error["message"].as_str().is_some_and(|m| m.contains("1s")),
        "{error}"
    );
    assert_no_process_left(&marker);
}

#[test]
fn timeout_is_retried_when_the_policy_says_so_and_each_attempt_is_killed() {
    let sandbox = Sandbox::new();
    let marker = unique_sleep();
    let file = sandbox.write(
        "timeout.yaml",
        format!(
            "name: timeout-retry\ntasks:\n  w:\n    timeout: 1s\n    \
             retry: {{max_attempts: 2, backoff: fixed, initial_delay: 1s, on: [timeout]}}\n    \
             run: {{command: [sh, -c, 'sleep {marker} & sleep {marker}; wait']}}\n"
        ),
    );

    let (done, run) = sandbox.run_json(&file);

    done.assert_code(1);
    assert_eq!(run["status"], "failed");
    assert_eq!(task_table(&run), table(&[("w", "timed_out", 2)]));
    assert_eq!(task(&run, "w")["error"]["kind"], "timeout");
    assert_no_process_left(&marker);
}
