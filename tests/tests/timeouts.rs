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

/// A command that marks its task's start, then runs one `sleep` in the background and
/// one in the foreground, and waits: a process tree of three.
fn sleeper_tree(marker: &str) -> String {
    format!("[sh, -c, 'echo \"$ALOFT_TASK\" >> marks; sleep {marker} & sleep {marker}; wait']")
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
    assert!(
        left.is_empty(),
        "processes {left:?} running `sleep {marker}` outlived the timeout"
    );
}

#[test]
fn timeout_kills_the_task_and_its_children() {
    let sandbox = Sandbox::new();
    let marker = unique_sleep();
    let file = sandbox.write(
        "timeout.yaml",
        [
            "name: timeout-tree",
            "tasks:",
            "  slow:",
            "    timeout: 1s",
            "    retry: {max_attempts: 1}",
            &format!("    run: {{command: {}}}", sleeper_tree(&marker)),
            "  after:",
            "    depends_on: [slow]",
            "    run: {pass: {result: {}}}\n",
        ]
        .join("\n"),
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
    let tree = sleeper_tree(&marker);
    let file = sandbox.write(
        "timeout.yaml",
        format!(
            "name: timeout-retry\ntasks:\n  w:\n    timeout: 1s\n    \
             retry: {{max_attempts: 2, backoff: fixed, initial_delay: 1s, on: [timeout]}}\n    \
             run: {{command: {tree}}}\n"
        ),
    );

    let (done, run) = sandbox.run_json(&file);

    done.assert_code(1);
    assert_eq!(run["status"], "failed");
    assert_eq!(task_table(&run), table(&[("w", "timed_out", 2)]));
    assert_eq!(task(&run, "w")["error"]["kind"], "timeout");
    assert_no_process_left(&marker);
}

#[test]
fn deadline_with_on_deadline_fail_stops_the_run_and_its_processes() {
    let sandbox = Sandbox::new();
    let marker = unique_sleep();
    let tree = sleeper_tree(&marker);
    let file = sandbox.write(
        "deadline.yaml",
        format!(
            "name: deadline-stop\ndeadline: 1s\non_deadline: fail\ntasks:\n  w:\n    \
             timeout: 1m\n    run: {{command: {tree}}}\n"
        ),
    );

    let (done, run) = sandbox.run_json(&file);

    done.assert_code(1);
    assert_eq!(run["status"], "timed_out");
    assert_eq!(run["sla_missed"], true);
    assert_eq!(task_table(&run), table(&[("w", "timed_out", 1)]));
    assert_eq!(task(&run, "w")["error"]["kind"], "timeout");
    assert_no_process_left(&marker);
}

#[test]
fn timeout_is_enforced_by_the_resumed_runner_after_a_crash() {
    let sandbox = Sandbox::new();
    let marker = unique_sleep();
    sandbox.write(
        "timeout.yaml",
        [
            "name: timeout-crash",
            "tasks:",
            "  w:",
            "    timeout: 2s",
            "    retry: {max_attempts: 1}",
            &format!("    run: {{command: {}}}\n", sleeper_tree(&marker)),
        ]
        .join("\n"),
    );
    let running = sandbox.start(&["run", "timeout.yaml", "--output", "json"]);
    let run_id = sandbox.wait_for_run();
    aloft_tests::wait_for("w to start", aloft_tests::GUARD, || {
        (sandbox.read("marks") == "w\n").then_some(())
    });
    running.kill().assert_no_panic();
    // Let the timeout pass while no runner is alive; the check waits in the database.
    std::thread::sleep(Duration::from_millis(2500));

    let done = sandbox.aloft(&["resume", &run_id, "--output", "json"]);

    done.assert_no_panic();
    done.assert_code(1);
    let run = done.json();
    assert_eq!(run["status"], "failed");
    assert_eq!(task_table(&run), table(&[("w", "timed_out", 1)]));
    assert_eq!(task(&run, "w")["error"]["kind"], "timeout");
    assert_eq!(sandbox.read("marks"), "w\n");
    assert_no_process_left(&marker);
}
