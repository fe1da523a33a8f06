//! Schedule expressions end to end: `aloft validate` reports a bad `schedule.expression`
//! or `schedule.timezone` at its line and column (cases S05-S08), and
//! `aloft schedule next` previews fire times.
//!
//! tzdata: the binary's bundled release (2026f), with the rules of 2025b for every zone
//! used here.

use aloft_tests::Sandbox;

/// A workflow file with this schedule block; the expression is on line 3, column 15.
fn workflow(expression: &str, timezone: &str) -> String {
    format!(
        "name: timed\nschedule:\n  expression: \"{expression}\"\n  timezone: {timezone}\n\
         tasks:\n  a: {{run: {{pass: {{result: {{}}}}}}}}\n"
    )
}

#[test]
fn validate_refuses_both_day_fields_at_the_expression() {
    let sandbox = Sandbox::new();
    sandbox.write("wf.yaml", workflow("cron(0 11 1-7 * FRI *)", "UTC"));

    let done = sandbox.aloft(&["validate", "wf.yaml"]);
    done.assert_code(1);
    done.assert_no_panic();
    assert_eq!(
        done.stderr.trim_end(),
        "wf.yaml:3:15: `cron(0 11 1-7 * FRI *)` sets both day-of-month `1-7` and \
         day-of-week `FRI`: exactly one of them must be `?`"
    );
}

#[test]
fn validate_reports_each_bad_expression_and_zone_at_its_place() {
    let sandbox = Sandbox::new();
    let files = [
        (
            "dow.yaml",
            "cron(0 0 ? * 0 *)",
            "UTC",
            "3:15",
            "day-of-week value 0",
        ),
        (
            "never.yaml",
            "cron(0 9 29 2 ? 2100)",
            "UTC",
            "3:15",
            "never fires",
        ),
        (
            "step.yaml",
            "cron(*/60 * * * ? *)",
            "UTC",
            "3:15",
            "minutes step 60",
        ),
        (
            "rate.yaml",
            "rate(5 minute)",
            "UTC",
            "3:15",
            "unit `minute`",
        ),
        (
            "zone.yaml",
            "cron(0 2 * * ? *)",
            "Europe/Berln",
            "4:13",
            "`Europe/Berln`",
        ),
        (
            "gap.yaml",
            "at(2026-03-08T02:30:00)",
            "America/New_York",
            "3:15",
            "gap",
        ),
    ];
    for (file, expression, timezone, _, _) in files {
        sandbox.write(file, workflow(expression, timezone));
    }
    sandbox.write(
        "good.yaml",
        workflow("cron(0 11 ? * FRI#1 *)", "Asia/Taipei"),
    );

    let mut args = vec!["validate", "good.yaml"];
    args.extend(files.iter().map(|(file, ..)| *file));
    let done = sandbox.aloft(&args);
    done.assert_code(1);
    done.assert_no_panic();
    for (file, _, _, position, needle) in files {
        let prefix = format!("{file}:{position}: ");
        assert!(
            done.stderr
                .lines()
                .any(|line| line.starts_with(&prefix) && line.contains(needle)),
            "no line starting {prefix:?} naming {needle:?}:\n{}",
            done.stderr
        );
    }
    assert!(
        done.stderr.contains("good.yaml: ok (1 task)"),
        "{}",
        done.stderr
    );
}

#[test]
fn schedule_next_prints_each_fire_in_utc_and_local_time() {
    let sandbox = Sandbox::new();

    let done = sandbox.aloft(&[
        "schedule",
        "next",
        "cron(0 2 * * ? *)",
        "--timezone",
        "Europe/Berlin",
        "--from",
        "2023-10-27T12:00:00Z",
        "--count",
        "4",
    ]);
    done.assert_code(0);
    assert_eq!(
        done.stdout,
        "2023-10-28T00:00:00Z  2023-10-28T02:00:00+02:00\n\
         2023-10-29T00:00:00Z  2023-10-29T02:00:00+02:00\n\
         2023-10-30T01:00:00Z  2023-10-30T02:00:00+01:00\n\
         2023-10-31T01:00:00Z  2023-10-31T02:00:00+01:00\n"
    );
}

#[test]
fn schedule_next_json_lists_the_fires() {
    let sandbox = Sandbox::new();

    let done = sandbox.aloft(&[
        "schedule",
        "next",
        "cron(30 2 * * ? *)",
        "--timezone",
        "America/New_York",
        "--from",
        "2026-03-08T06:30:00Z",
        "--count",
        "2",
        "--output",
        "json",
    ]);
    done.assert_code(0);
    assert_eq!(
        done.json(),
        serde_json::json!({
            "expression": "cron(30 2 * * ? *)",
            "timezone": "America/New_York",
            "tzdata": "2026f",
            "from": "2026-03-08T06:30:00Z",
            "fires": [
                {"utc": "2026-03-09T06:30:00Z", "local": "2026-03-09T02:30:00-04:00"},
                {"utc": "2026-03-10T06:30:00Z", "local": "2026-03-10T02:30:00-04:00"},
            ],
        })
    );
}

#[test]
fn schedule_next_refuses_bad_input_with_exit_2() {
    let sandbox = Sandbox::new();
    let cases: [(&[&str], &str); 4] = [
        (&["cron(0 0 ? * 8 *)"], "day-of-week value 8"),
        (&["rate(1 minutes)"], "unit `minutes`"),
        (
            &["cron(0 2 * * ? *)", "--timezone", "Nowhere/City"],
            "`Nowhere/City`",
        ),
        (
            &["cron(0 2 * * ? *)", "--from", "tomorrow"],
            "--from \"tomorrow\"",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["schedule", "next"];
        all.extend_from_slice(args);
        let done = sandbox.aloft(&all);
        done.assert_code(2);
        done.assert_no_panic();
        assert!(done.stdout.is_empty(), "{args:?} printed {}", done.stdout);
        assert!(done.stderr.contains(needle), "{args:?}: {}", done.stderr);
    }
}
