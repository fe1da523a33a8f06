//! `aloft backfill --backend aws` and `aloft start --overlap` on the local stack (moto's
//! server on 127.0.0.1, handlers run by `aloft dev`): one run per tick, keyed as
//! EventBridge Scheduler's invocation keys it, at most `--max-parallel` going, none twice;
//! a manual start under its own overlap policy.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use aloft_aws::{Backend, Settings};
use aloft_engine::record::RunRecord;
use aloft_tests::aws::{LocalAws, Resources};
use aloft_tests::{Finished, Running, Sandbox, max_overlap};

const HOURLY: &str = "name: hourly-sync\nschedule: {expression: \"cron(0 * * * ? *)\", \
                      overlap: skip}\ntasks:\n  work: {run: {command: [sh, -c, \"sleep 1; echo \
                      '{}'\"]}}\n";

const HOLD: &str = "name: hold\ntasks:\n  wait: {run: {command: [sh, -c, \"sleep 30; echo \
                    '{}'\"]}}\n";

fn aloft(sandbox: &Sandbox, resources: &Resources, args: &[&str]) -> Finished {
    let mut command = sandbox.bare_command(args);
    resources.apply(&mut command);
    sandbox.spawn(command, args.join(" ")).wait()
}

fn dev(sandbox: &Sandbox, resources: &Resources) -> Running {
    let mut command: Command = sandbox.bare_command(&["dev", "--wait-seconds", "1"]);
    resources.apply(&mut command);
    sandbox.spawn(command, "dev".into())
}

fn put(sandbox: &Sandbox, resources: &Resources, file: &Path) {
    let file = file.to_str().expect("a UTF-8 path");
    aloft(sandbox, resources, &["workflows", "put", file]).assert_code(0);
}

/// The workflow's runs as the table holds them, oldest first.
async fn stored_runs(stack: &LocalAws, resources: &Resources, workflow: &str) -> Vec<RunRecord> {
    let settings =
        Settings::from_lookup(|name| resources.vars.get(name).cloned()).expect("settings");
    let config = stack.sdk_config().await;
    let backend = Backend::from_config(settings, &config, None);
    let mut runs = backend
        .store()
        .list_runs(Some(workflow), 100)
        .await
        .expect("list the runs");
    runs.sort_by_key(|run| run.created_at);
    runs
}

fn ticks(report: &Value) -> Vec<(String, String, String, bool)> {
    report["ticks"]
        .as_array()
        .expect("ticks")
        .iter()
        .map(|t| {
            let text = |field: &str| t[field].as_str().expect(field).to_owned();
            (
                text("tick"),
                text("run_id"),
                text("status"),
                t["created"].as_bool().expect("created"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_on_aws_runs_each_tick_once_at_most_max_parallel_at_a_time() {
    let stack = LocalAws::start();
    let resources = stack.create("backfill", 5, 2);
    let sandbox = Sandbox::new();
    let file = sandbox.write("hourly.yaml", HOURLY);
    let file_text = file.to_str().expect("a UTF-8 path");
    put(&sandbox, &resources, &file);
    let dev = dev(&sandbox, &resources);
    let backfill = [
        "backfill",
        file_text,
        "--from",
        "2026-03-01T00:00:00Z",
        "--to",
        "2026-03-01T04:00:00Z",
        "--max-parallel",
        "2",
        // The workflow's own policy (skip) would take one tick at a time.
        "--overlap",
        "allow",
        "--backend",
        "aws",
        "--output",
        "json",
    ];

    let first = aloft(&sandbox, &resources, &backfill);
    first.assert_code(0);
    let first = ticks(&first.json());
    let expected: Vec<String> = (0..4).map(|h| format!("2026-03-01T0{h}:00:00Z")).collect();
    let seen: Vec<&str> = first.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(seen, expected, "every tick, in order");
    assert!(first.iter().all(|t| t.2 == "succeeded" && t.3), "{first:?}");

    let runs = stored_runs(&stack, &resources, "hourly-sync").await;
    let keys: Vec<Option<&str>> = runs.iter().map(|r| r.key.as_deref()).collect();
    let expected_keys: Vec<String> = expected.iter().map(|t| format!("schedule:{t}")).collect();
    let expected_keys: Vec<Option<&str>> = expected_keys.iter().map(|k| Some(k.as_str())).collect();
    assert_eq!(
        keys, expected_keys,
        "one run per tick, created oldest first"
    );
    // 2026-03-01T00:00:00Z, then hourly.
    let scheduled: Vec<u64> = runs.iter().map(|r| r.scheduled_time).collect();
    let hours: Vec<u64> = (0..4).map(|h| 1_772_323_200_000 + h * 3_600_000).collect();
    assert_eq!(scheduled, hours, "each run's scheduled time is its tick");
    let spans: Vec<(u128, u128)> = runs
        .iter()
        .map(|r| {
            let ended = r.ended_at.expect("settled");
            assert!(
                r.started_at
                    .is_some_and(|s| s >= r.created_at && s <= ended)
            );
            (u128::from(r.created_at), u128::from(ended))
        })
        .collect();
    assert_eq!(max_overlap(&spans), 2, "at most two going: {spans:?}");

    // Again: the ticks keep their runs, and no run is made.
    let again = aloft(&sandbox, &resources, &backfill);
    again.assert_code(0);
    let again = ticks(&again.json());
    let same: Vec<_> = first
        .iter()
        .map(|t| (t.0.clone(), t.1.clone(), t.2.clone(), false))
        .collect();
    assert_eq!(again, same);
    assert_eq!(
        stored_runs(&stack, &resources, "hourly-sync").await.len(),
        4
    );
    dev.kill();

    // A file that is not the stored LATEST is refused, naming the way to store it.
    sandbox.write("hourly.yaml", HOURLY.replace("sleep 1", "sleep 2"));
    let refused = aloft(&sandbox, &resources, &backfill);
    refused.assert_failed();
    assert!(
        refused.stderr.contains("aloft workflows put"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        stored_runs(&stack, &resources, "hourly-sync").await.len(),
        4
    );
}

#[test]
fn a_start_skipped_by_its_overlap_policy_says_so_and_succeeds() {
    let stack = LocalAws::start();
    let resources = stack.create("overlap", 5, 2);
    let sandbox = Sandbox::new();
    let file = sandbox.write("hold.yaml", HOLD);
    put(&sandbox, &resources, &file);
    // Nothing polls the queues: the first run stays queued, which is going.
    let first = aloft(&sandbox, &resources, &["start", "hold", "--output", "json"]);
    first.assert_code(0);
    let first = first.json();
    assert_eq!(first["admission"], "started", "{first}");
    let run_id = first["run_id"].as_str().expect("run_id");

    let skipped = aloft(
        &sandbox,
        &resources,
        &[
            "start",
            "hold",
            "--overlap",
            "skip",
            "--wait",
            "--output",
            "json",
        ],
    );
    skipped.assert_code(0);
    let skipped = skipped.json();
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    assert_eq!(skipped["active"], serde_json::json!([run_id]));

    let text = aloft(
        &sandbox,
        &resources,
        &["start", "hold", "--overlap", "skip"],
    );
    text.assert_code(0);
    assert!(text.stderr.contains("skipped"), "{}", text.stderr);
    assert!(text.stdout.is_empty(), "{}", text.stdout);

    // The workflow has no schedule, so its own policy is allow.
    let allowed = aloft(&sandbox, &resources, &["start", "hold", "--output", "json"]);
    allowed.assert_code(0);
    assert_eq!(allowed.json()["created"], true);
}

#[test]
fn an_unknown_overlap_policy_is_refused_naming_it() {
    let sandbox = Sandbox::new();
    let done = sandbox
        .spawn(
            sandbox.bare_command(&["start", "hold", "--overlap", "queue_all"]),
            "start --overlap queue_all".into(),
        )
        .wait();
    done.assert_code(2);
    assert!(done.stderr.contains("queue_all"), "{}", done.stderr);
}
