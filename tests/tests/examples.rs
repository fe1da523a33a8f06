//! The three shipped examples, run by the real binary, end as their README says.

use std::path::PathBuf;

use serde_json::{Value, json};

use aloft_tests::{Sandbox, examples_dir, table, task, task_table};

fn example(folder: &str) -> PathBuf {
    examples_dir().join(folder).join("workflow.yaml")
}

fn run_example(sandbox: &Sandbox, folder: &str) -> Value {
    let (done, run) = sandbox.run_json(&example(folder));
    done.assert_no_panic();
    run
}

fn count_rows(database: &str, table: &str) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("cannot open {database}: {e}"));
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("cannot count {table} in {database}: {e}"))
}

#[test]
fn timezone_etl_succeeds_and_loads_every_row() {
    let sandbox = Sandbox::new();
    let (done, run) = sandbox.run_json(&example("etl"));
    done.assert_code(0);
    done.assert_no_panic();

    assert_eq!(run["workflow"], "timezone-etl");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        task_table(&run),
        table(&[
            ("extract", "succeeded", 1),
            ("transform", "succeeded", 1),
            ("load", "succeeded", 1),
            ("report", "succeeded", 1),
        ])
    );

    let extract = &task(&run, "extract")["output"];
    assert_eq!(extract["countries"], 249);
    assert_eq!(extract["zones"], 312);
    assert_eq!(extract["zones_with_comment"], 201);
    let transform = &task(&run, "transform")["output"];
    assert_eq!(transform["zones"], 312);
    assert_eq!(transform["regions"], 9);
    assert_eq!(transform["countries_with_zones"], 247);
    let load = &task(&run, "load")["output"];
    assert_eq!(
        load["rows"],
        json!({"countries": 249, "zones": 312, "zone_countries": 423})
    );

    let report = &task(&run, "report")["output"];
    assert_eq!(report["regions"], 9);
    assert_eq!(report["northernmost"]["zone"], "America/Danmarkshavn");
    let north = report["northernmost"]["latitude"]
        .as_f64()
        .expect("a latitude");
    assert!(
        (north - 76.7667).abs() < 1e-3,
        "northernmost latitude {north}"
    );
    assert_eq!(report["southernmost"]["zone"], "Antarctica/Vostok");
    assert_eq!(report["southernmost"]["latitude"], -78.4);
    assert_eq!(report["most_zones"]["code"], "US");
    assert_eq!(report["most_zones"]["zones"], 29);
    assert_eq!(report["countries_without_zones"], json!(["BV", "HM"]));

    let database = load["database"].as_str().expect("load names its database");
    assert_eq!(count_rows(database, "countries"), 249);
    assert_eq!(count_rows(database, "zones"), 312);
    assert_eq!(count_rows(database, "zone_countries"), 423);
    let report_file = report["report"].as_str().expect("report names its file");
    let markdown = std::fs::read_to_string(report_file).expect("report.md was written");
    assert!(markdown.contains("America/Danmarkshavn"), "{markdown}");
}

#[test]
fn zone_stats_succeeds_with_hemispheres_retried_once() {
    let sandbox = Sandbox::new();
    let (done, run) = sandbox.run_json(&example("fan-in"));
    done.assert_code(0);
    done.assert_no_panic();

    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        task_table(&run),
        table(&[
            ("extract", "succeeded", 1),
            ("regions", "succeeded", 1),
            ("countries", "succeeded", 1),
            ("bbox", "succeeded", 1),
            ("hemispheres", "succeeded", 2),
            ("summary", "succeeded", 1),
        ])
    );
    // Each ended attempt is in the history: the retried task's failure, then success.
    let history = |name: &str| -> Vec<(u64, String, Value)> {
        task(&run, name)["history"]
            .as_array()
            .expect("a history list")
            .iter()
            .map(|a| {
                (
                    a["attempt"].as_u64().unwrap_or(0),
                    a["status"].to_string(),
                    a["error"]["kind"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        history("hemispheres"),
        [
            (1, "\"failed\"".to_owned(), json!("error")),
            (2, "\"succeeded\"".to_owned(), Value::Null),
        ]
    );
    assert_eq!(
        history("regions"),
        [(1, "\"succeeded\"".to_owned(), Value::Null)]
    );
    let by_region = json!({"America": 121, "Asia": 74, "Europe": 38, "Pacific": 30,
        "Africa": 19, "Australia": 11, "Antarctica": 8, "Atlantic": 8, "Indian": 3});
    assert_eq!(task(&run, "regions")["output"]["by_region"], by_region);
    let countries = &task(&run, "countries")["output"];
    assert_eq!(countries["countries"], 247);
    assert_eq!(countries["countries_with_several_zones"], 33);
    assert_eq!(countries["top"]["US"], 29);
    assert_eq!(countries["top"]["RU"], 27);
    assert_eq!(countries["top"]["CA"], 23);
    let bbox = &task(&run, "bbox")["output"];
    assert_eq!(bbox["east"]["zone"], "Pacific/Fiji");
    assert_eq!(bbox["west"]["zone"], "America/Adak");
    let hemispheres = &task(&run, "hemispheres")["output"];
    assert_eq!(
        [
            &hemispheres["north"],
            &hemispheres["south"],
            &hemispheres["east"],
            &hemispheres["west"],
            &hemispheres["on_equator"],
            &hemispheres["on_prime_meridian"],
        ],
        [
            &json!(222),
            &json!(90),
            &json!(154),
            &json!(158),
            &json!(0),
            &json!(0)
        ]
    );
    let summary = &task(&run, "summary")["output"];
    assert_eq!(summary["zones"], 312);
    assert_eq!(
        summary["merged_from"],
        json!(["regions", "countries", "bbox", "hemispheres"])
    );
    assert_eq!(summary["regions"]["by_region"], by_region);
}

#[test]
fn logs_show_both_attempts_of_the_flaky_task() {
    let sandbox = Sandbox::new();
    let run = run_example(&sandbox, "fan-in");
    let run_id = run["id"].as_str().expect("a run id");

    let logs = sandbox.aloft(&["logs", run_id, "hemispheres"]);
    logs.assert_code(0);
    let lines: Vec<&str> = logs.stdout.lines().collect();
    let first = lines
        .iter()
        .position(|l| *l == "== hemispheres attempt 1 ==")
        .unwrap_or_else(|| panic!("no header for attempt 1:\n{}", logs.stdout));
    let second = lines
        .iter()
        .position(|l| *l == "== hemispheres attempt 2 ==")
        .unwrap_or_else(|| panic!("no header for attempt 2:\n{}", logs.stdout));
    assert!(first < second, "attempts out of order:\n{}", logs.stdout);
    let failure_line = lines
        .iter()
        .position(|l| *l == "simulated transient failure on attempt 1")
        .unwrap_or_else(|| panic!("no failure line:\n{}", logs.stdout));
    assert!(
        first < failure_line && failure_line < second,
        "the failure line is not in attempt 1's log:\n{}",
        logs.stdout
    );

    let only_second = sandbox.aloft(&["logs", run_id, "hemispheres", "--attempt", "2"]);
    only_second.assert_code(0);
    assert!(
        only_second
            .stdout
            .starts_with("== hemispheres attempt 2 ==\n")
    );
    assert!(!only_second.stdout.contains("simulated transient failure"));
}

#[test]
fn checked_export_fails_its_gate_and_still_cleans_up() {
    let sandbox = Sandbox::new();
    let (done, run) = sandbox.run_json(&example("cleanup"));
    done.assert_code(1);
    done.assert_no_panic();

    assert_eq!(run["status"], "failed");
    assert_eq!(
        task_table(&run),
        table(&[
            ("prepare", "succeeded", 1),
            ("check", "failed", 1),
            ("publish", "upstream_failed", 0),
            ("cleanup", "succeeded", 1),
        ])
    );
    assert_eq!(task(&run, "prepare")["output"]["rows"], 249);
    let check_error = &task(&run, "check")["error"];
    assert_eq!(check_error["kind"], "error");
    let message = check_error["message"].as_str().expect("an error message");
    assert!(
        message.contains("BV (Bouvet Island), HM (Heard Island & McDonald Islands)"),
        "{message}"
    );
    assert_eq!(task(&run, "publish")["output"], Value::Null);
    let cleanup = &task(&run, "cleanup")["output"];
    assert_eq!(cleanup["removed"], true);
    assert_eq!(cleanup["files"], json!(["countries.csv"]));
    assert_eq!(cleanup["bytes"], 10800);
    let scratch = cleanup["scratch"]
        .as_str()
        .expect("cleanup names the scratch folder");
    assert!(
        !std::path::Path::new(scratch).exists(),
        "{scratch} was not removed"
    );

    let run_id = run["id"].as_str().expect("a run id");
    let never_started = sandbox.aloft(&["logs", run_id, "publish"]);
    never_started.assert_no_panic();
    never_started.assert_code(1);
    assert!(
        never_started.stderr.contains("publish") && never_started.stderr.contains("not started"),
        "{}",
        never_started.stderr
    );
    let logs = sandbox.aloft(&["logs", run_id, "check"]);
    logs.assert_code(0);
    assert!(
        logs.stdout
            .contains("rule broken: BV (Bouvet Island) has no time zone"),
        "{}",
        logs.stdout
    );
}

#[test]
fn runs_list_and_runs_show_agree_with_what_run_printed() {
    let sandbox = Sandbox::new();
    let printed: Vec<Value> = ["etl", "fan-in", "cleanup"]
        .iter()
        .map(|folder| run_example(&sandbox, folder))
        .collect();

    let listed = sandbox.runs_list();
    assert_eq!(listed.len(), 3, "{listed:?}");
    // Newest first.
    let listed_ids: Vec<&Value> = listed.iter().map(|r| &r["id"]).collect();
    let printed_ids: Vec<&Value> = printed.iter().rev().map(|r| &r["id"]).collect();
    assert_eq!(listed_ids, printed_ids);

    for run in &printed {
        let id = run["id"].as_str().expect("a run id");
        let row = listed
            .iter()
            .find(|r| r["id"] == id)
            .expect("the run is listed");
        assert_eq!(row["workflow"], run["workflow"]);
        assert_eq!(row["status"], run["status"]);
        assert_eq!(row["created_at"], run["created_at"]);
        assert_eq!(row["duration_ms"], run["duration_ms"]);

        let shown = sandbox.aloft(&["runs", "show", id, "--output", "json"]);
        shown.assert_code(0);
        assert_eq!(
            &shown.json(),
            run,
            "runs show differs from what run printed"
        );
    }

    let statuses: Vec<&Value> = listed.iter().map(|r| &r["status"]).collect();
    assert_eq!(
        statuses,
        [&json!("failed"), &json!("succeeded"), &json!("succeeded")]
    );
}

#[test]
fn aloft_db_environment_variable_selects_the_database() {
    let sandbox = Sandbox::new();
    let run = run_example(&sandbox, "etl");

    let mut command = sandbox.bare_command(&["runs", "list", "--output", "json"]);
    command.env("ALOFT_DB", sandbox.db());
    let listed = sandbox.spawn(command, "runs list (ALOFT_DB)".into()).wait();
    listed.assert_code(0);
    assert_eq!(listed.json()[0]["id"], run["id"]);

    let run_id = run["id"].as_str().expect("a run id");
    let prefix = &run_id[..run_id.len() - 2];
    let shown = sandbox.aloft(&["runs", "show", prefix, "--output", "json"]);
    shown.assert_code(0);
    assert_eq!(
        shown.json()["id"],
        run["id"],
        "a unique prefix names the run"
    );
}
