//! `aloft deploy` on the local stack (moto's server on 127.0.0.1, one per test): the
//! real binary makes the Scheduler schedules and EventBridge rules, and the tests read
//! them back with the SDKs. moto stores schedules but never fires them; it does deliver
//! events through rules, so an event reaches the trigger's handler through a queue the
//! deployed rule targets. moto's Lambda stores functions without running them, which is
//! all the event-invoke configs need.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use aloft_aws::trigger::{parse, start};
use aloft_aws::{Backend, Settings};
use aloft_tests::aws::{LocalAws, Resources};
use aloft_tests::{Finished, Sandbox, examples_dir};

const TRIGGER: &str = "arn:aws:lambda:us-east-1:123456789012:function:aloft-trigger";
const ROLE: &str = "arn:aws:iam::123456789012:role/aloft-scheduler";

/// Longest wait for a message moto has already sent. A guard, never a measurement.
const GUARD: Duration = Duration::from_secs(30);

const NIGHTLY: &str = "\
name: nightly
schedule:
  expression: cron(0 2 * * ? *)
  timezone: Europe/Berlin
tasks:
  report:
    run: {pass: {result: {ok: true}}}
";

const ORDERS: &str = "\
name: orders
events:
  - pattern:
      source: [shop.orders]
      detail-type: [Order Placed]
      detail:
        total: [{numeric: ['>', 0]}]
    input:
      order: $.detail.order-id
      total: $.detail.total
      currency: EUR
  - pattern:
      source: [shop.returns]
tasks:
  confirm:
    run: {pass: {result: {confirmed: true}}}
";

/// Two tasks of `payments` and one of `mailer`: two functions.
const CHARGE: &str = "\
name: charge
tasks:
  reserve:
    run: {lambda: payments}
  capture:
    depends_on: [reserve]
    run: {lambda: payments}
  notify:
    depends_on: [capture]
    run: {lambda: mailer}
";

/// `aloft deploy FILE... --backend aws ARGS` against the stack, with the trigger's and
/// the role's ARNs and the stack's bus, and no deploy setting from this machine.
fn deploy(sandbox: &Sandbox, resources: &Resources, files: &[&str], args: &[&str]) -> Finished {
    deploy_without(sandbox, resources, files, args, &[])
}

/// [`deploy`] without the stack's variables `removed`.
fn deploy_without(
    sandbox: &Sandbox,
    resources: &Resources,
    files: &[&str],
    args: &[&str],
    removed: &[&str],
) -> Finished {
    let mut all = vec!["deploy"];
    all.extend(files);
    all.extend(["--backend", "aws"]);
    all.extend(args);
    let mut command = sandbox.bare_command(&all);
    resources.apply(&mut command);
    for name in [
        "ALOFT_SCHEDULE_GROUP",
        "ALOFT_RULE_TARGET_ARN",
        "ALOFT_RULE_PREFIX",
        "ALOFT_BACKEND",
        "ALOFT_COMPLETE_QUEUE_ARN",
    ]
    .iter()
    .chain(removed)
    {
        command.env_remove(name);
    }
    command
        .env("ALOFT_TRIGGER_ARN", TRIGGER)
        .env("ALOFT_SCHEDULER_ROLE_ARN", ROLE)
        .env("ALOFT_TRIGGER_BUS", resources.get("ALOFT_EVENT_BUS"));
    let done = run(sandbox, command, all.join(" "));
    done.assert_no_panic();
    done
}

fn run(sandbox: &Sandbox, command: Command, what: String) -> Finished {
    sandbox.spawn(command, what).wait()
}

/// The schedule `name` of group `aloft`, if it exists.
async fn schedule(
    scheduler: &aws_sdk_scheduler::Client,
    name: &str,
) -> Option<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
    match scheduler
        .get_schedule()
        .group_name("aloft")
        .name(name)
        .send()
        .await
    {
        Ok(found) => Some(found),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("GetSchedule {name}: {e:?}"),
    }
}

/// The names of the rules on `bus` that start with `aloft-`.
async fn rule_names(events: &aws_sdk_eventbridge::Client, bus: &str) -> Vec<String> {
    let listed = events
        .list_rules()
        .event_bus_name(bus)
        .name_prefix("aloft-")
        .send()
        .await
        .expect("ListRules");
    let mut names: Vec<String> = listed
        .rules()
        .iter()
        .filter_map(|r| r.name().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_keeps_a_schedule_in_step_with_its_file() {
    let stack = LocalAws::start();
    let resources = stack.create("deploy", 5, 2);
    let sandbox = Sandbox::new();
    let config = stack.sdk_config().await;
    let scheduler = aws_sdk_scheduler::Client::new(&config);
    sandbox.write("nightly.yaml", NIGHTLY);

    // A dry run prints the plan and makes nothing, not even the group.
    let dry = deploy(&sandbox, &resources, &["nightly.yaml"], &["--dry-run"]);
    dry.assert_code(0);
    assert!(
        dry.stdout
            .contains("create     schedule aloft/nightly  (nightly.yaml)")
            && dry.stdout.contains("expression: cron(0 2 * * ? *)")
            && dry.stdout.contains("nothing was changed"),
        "{}",
        dry.stdout
    );
    let groups = scheduler.get_schedule_group().name("aloft").send().await;
    assert!(groups.is_err(), "a dry run made the schedule group");

    let first = deploy(&sandbox, &resources, &["nightly.yaml"], &[]);
    first.assert_code(0);
    assert!(
        first.stdout.contains("deployed: 3 created"),
        "{}",
        first.stdout
    );
    let made = schedule(&scheduler, "nightly").await.expect("the schedule");
    assert_eq!(made.schedule_expression(), Some("cron(0 2 * * ? *)"));
    assert_eq!(made.schedule_expression_timezone(), Some("Europe/Berlin"));
    assert_eq!(
        made.flexible_time_window().map(|w| w.mode().as_str()),
        Some("OFF")
    );
    let target = made.target().expect("a target");
    assert_eq!(target.arn(), TRIGGER);
    assert_eq!(target.role_arn(), ROLE);
    let input: Value = serde_json::from_str(target.input().expect("an input")).expect("JSON");
    assert_eq!(
        input,
        json!({"workflow": "nightly", "scheduled_time": "<aws.scheduler.scheduled-time>"})
    );
    let retry = target.retry_policy().expect("a retry policy");
    assert_eq!(retry.maximum_event_age_in_seconds(), Some(3600));
    assert_eq!(retry.maximum_retry_attempts(), Some(20));

    // The definition the schedule starts is stored, as `aloft workflows put` stores it.
    let settings =
        Settings::from_lookup(|name| resources.vars.get(name).cloned()).expect("settings");
    let backend = Backend::from_config(settings, &config, None);
    let (_, stored) = backend
        .store()
        .latest("nightly")
        .await
        .expect("read LATEST")
        .expect("nightly is stored");
    assert_eq!(
        stored.schedule.map(|s| s.expression).as_deref(),
        Some("cron(0 2 * * ? *)")
    );

    // The same files again: nothing to do, and nothing touched.
    let again = deploy(
        &sandbox,
        &resources,
        &["nightly.yaml"],
        &["--output", "json"],
    );
    again.assert_code(0);
    let report = again.json();
    assert_eq!(report["changed"], json!(false), "{report}");
    assert_eq!(report["unchanged"], json!(2), "{report}");
    let text = deploy(&sandbox, &resources, &["nightly.yaml"], &[]);
    assert!(text.stdout.contains("no changes"), "{}", text.stdout);
    let same = schedule(&scheduler, "nightly").await.expect("the schedule");
    assert_eq!(same.last_modification_date(), made.last_modification_date());

    // A new expression updates the schedule, and says from what to what.
    sandbox.write("nightly.yaml", NIGHTLY.replace("0 2 *", "30 3 *"));
    let changed = deploy(&sandbox, &resources, &["nightly.yaml"], &[]);
    changed.assert_code(0);
    assert!(
        changed
            .stdout
            .contains("expression: cron(0 2 * * ? *) -> cron(30 3 * * ? *)"),
        "{}",
        changed.stdout
    );
    let updated = schedule(&scheduler, "nightly").await.expect("the schedule");
    assert_eq!(updated.schedule_expression(), Some("cron(30 3 * * ? *)"));

    // Without `schedule:`, a dry run shows the deletion and keeps the schedule; a deploy
    // deletes it.
    let without = NIGHTLY.replace(
        "schedule:\n  expression: cron(0 2 * * ? *)\n  timezone: Europe/Berlin\n",
        "",
    );
    sandbox.write("nightly.yaml", without);
    let dry = deploy(&sandbox, &resources, &["nightly.yaml"], &["--dry-run"]);
    dry.assert_code(0);
    assert!(
        dry.stdout.contains("delete     schedule aloft/nightly"),
        "{}",
        dry.stdout
    );
    assert!(schedule(&scheduler, "nightly").await.is_some());
    deploy(&sandbox, &resources, &["nightly.yaml"], &[]).assert_code(0);
    assert!(schedule(&scheduler, "nightly").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_touches_other_workflows_only_when_pruning() {
    let stack = LocalAws::start();
    let resources = stack.create("prune", 5, 2);
    let sandbox = Sandbox::new();
    let config = stack.sdk_config().await;
    let scheduler = aws_sdk_scheduler::Client::new(&config);
    sandbox.write("nightly.yaml", NIGHTLY);
    // The shipped example of a schedule is the other workflow.
    let example = examples_dir().join("weekday-digest/workflow.yaml");
    let example = example.to_str().expect("a UTF-8 path");
    deploy(&sandbox, &resources, &["nightly.yaml", example], &[]).assert_code(0);
    let digest = schedule(&scheduler, "weekday-digest")
        .await
        .expect("the example's schedule");
    assert_eq!(
        digest.schedule_expression(),
        Some("cron(30 6 ? * MON-FRI *)")
    );
    assert_eq!(digest.schedule_expression_timezone(), Some("Europe/Berlin"));

    let only = deploy(&sandbox, &resources, &["nightly.yaml"], &[]);
    only.assert_code(0);
    assert!(!only.stdout.contains("weekday-digest"), "{}", only.stdout);
    assert!(schedule(&scheduler, "weekday-digest").await.is_some());

    let pruned = deploy(&sandbox, &resources, &["nightly.yaml"], &["--prune"]);
    pruned.assert_code(0);
    assert!(
        pruned
            .stdout
            .contains("delete     schedule aloft/weekday-digest  (workflow weekday-digest)"),
        "{}",
        pruned.stdout
    );
    assert!(schedule(&scheduler, "weekday-digest").await.is_none());
    assert!(schedule(&scheduler, "nightly").await.is_some());
}

/// Every message on the queue, waiting up to `wait_seconds` for the first.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, wait_seconds: i32) -> Vec<String> {
    let got = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait_seconds)
        .send()
        .await
        .expect("ReceiveMessage");
    got.messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_owned))
        .collect()
}

async fn put_event(events: &aws_sdk_eventbridge::Client, bus: &str, source: &str, detail: Value) {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(source)
        .detail_type("Order Placed")
        .detail(detail.to_string())
        .build();
    let put = events
        .put_events()
        .entries(entry)
        .send()
        .await
        .expect("PutEvents");
    assert_eq!(put.failed_entry_count(), 0, "{put:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_event_reaches_the_trigger_through_the_deployed_rule_once() {
    let stack = LocalAws::start();
    let resources = stack.create("events", 5, 2);
    let sandbox = Sandbox::new();
    let config = stack.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let events = aws_sdk_eventbridge::Client::new(&config);
    let bus = resources.get("ALOFT_EVENT_BUS").to_owned();
    let feed = sqs
        .create_queue()
        .queue_name("events-feed")
        .send()
        .await
        .expect("CreateQueue");
    let feed_url = feed.queue_url().expect("a queue URL").to_owned();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&feed_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    let feed_arn = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("the queue's ARN")
        .clone();

    sandbox.write("orders.yaml", ORDERS);
    let done = deploy(
        &sandbox,
        &resources,
        &["orders.yaml"],
        &["--rule-target-arn", &feed_arn],
    );
    done.assert_code(0);
    assert_eq!(
        rule_names(&events, &bus).await,
        ["aloft-orders-0", "aloft-orders-1"]
    );

    // An event the first pattern matches arrives wrapped, detail included.
    let detail = json!({"order-id": "o-42", "total": 19.5, "channel": "web"});
    put_event(&events, &bus, "shop.orders", detail.clone()).await;
    let start_wait = Instant::now();
    let mut bodies = Vec::new();
    while bodies.is_empty() {
        assert!(start_wait.elapsed() < GUARD, "no message on the feed queue");
        bodies = receive(&sqs, &feed_url, 1).await;
    }
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let message: Value = serde_json::from_str(&bodies[0]).expect("a JSON body");
    assert_eq!(message["workflow"], json!("orders"), "{message}");
    assert_eq!(message["event"]["detail"], detail, "{message}");

    // The trigger function's own two steps, on that body, twice: one run.
    let settings =
        Settings::from_lookup(|name| resources.vars.get(name).cloned()).expect("settings");
    let backend = Backend::from_config(settings, &config, None);
    let engine = backend.engine();
    let first = start(&engine, parse(&message).expect("a trigger"))
        .await
        .expect("a run");
    let second = start(&engine, parse(&message).expect("a trigger"))
        .await
        .expect("the same run");
    assert!(first.created && !second.created);
    assert_eq!(first.run_id, second.run_id);
    let runs = backend
        .store()
        .list_runs(Some("orders"), 10)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].input,
        json!({"order": "o-42", "total": 19.5, "currency": "EUR"})
    );

    // An event no rule matches goes nowhere.
    put_event(
        &events,
        &bus,
        "shop.orders",
        json!({"order-id": "o-0", "total": 0}),
    )
    .await;
    put_event(&events, &bus, "shop.other", detail).await;
    assert!(receive(&sqs, &feed_url, 1).await.is_empty());
    let runs = backend
        .store()
        .list_runs(Some("orders"), 10)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_event_trigger_deletes_its_rule_and_target() {
    let stack = LocalAws::start();
    let resources = stack.create("rules", 5, 2);
    let sandbox = Sandbox::new();
    let config = stack.sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let bus = resources.get("ALOFT_EVENT_BUS").to_owned();
    sandbox.write("orders.yaml", ORDERS);
    deploy(&sandbox, &resources, &["orders.yaml"], &[]).assert_code(0);
    let targets = |rule: &'static str| {
        let events = events.clone();
        let bus = bus.clone();
        async move {
            events
                .list_targets_by_rule()
                .event_bus_name(bus)
                .rule(rule)
                .send()
                .await
        }
    };
    let second = targets("aloft-orders-1").await.expect("its targets");
    assert_eq!(second.targets().len(), 1);
    assert_eq!(second.targets()[0].arn(), TRIGGER);
    let template = second.targets()[0]
        .input_transformer()
        .map(|t| t.input_template().to_owned());
    assert_eq!(
        template.as_deref(),
        Some(r#"{"workflow": "orders", "event": <aws.events.event.json>}"#)
    );

    sandbox.write(
        "orders.yaml",
        ORDERS.replace("  - pattern:\n      source: [shop.returns]\n", ""),
    );
    let done = deploy(&sandbox, &resources, &["orders.yaml"], &[]);
    done.assert_code(0);
    assert!(
        done.stdout
            .contains(&format!("delete     rule {bus}/aloft-orders-1")),
        "{}",
        done.stdout
    );
    assert_eq!(rule_names(&events, &bus).await, ["aloft-orders-0"]);
    assert!(
        targets("aloft-orders-1").await.is_err(),
        "its targets are gone with it"
    );
    let kept = targets("aloft-orders-0").await.expect("its targets");
    assert_eq!(kept.targets().len(), 1);

    // A rule deploy did not make is never taken over.
    let described = events
        .describe_rule()
        .event_bus_name(&bus)
        .name("aloft-orders-0")
        .send()
        .await
        .expect("DescribeRule");
    events
        .put_rule()
        .event_bus_name(&bus)
        .name("aloft-orders-0")
        .event_pattern(described.event_pattern().expect("a pattern"))
        .description("made by hand")
        .send()
        .await
        .expect("PutRule");
    let refused = deploy(&sandbox, &resources, &["orders.yaml"], &[]);
    refused.assert_code(1);
    assert!(
        refused.stderr.contains("\"aloft-orders-0\"")
            && refused.stderr.contains("is not managed by aloft deploy"),
        "{}",
        refused.stderr
    );
}

/// An empty zip archive: moto stores a function's code without unpacking it.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Create IAM role `name` on the stack, which moto's Lambda wants to exist before a
/// function may use it. A bare IAM query request: moto checks no signature, and finds the
/// service in the credential scope.
fn create_role(stack: &LocalAws, name: &str) -> String {
    let body = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%7D"
    );
    let endpoint = stack.endpoint();
    let address = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect to moto");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20261205/us-east-1/iam/aws4_request, \
         SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send CreateRole");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read CreateRole");
    assert!(answer.starts_with("HTTP/1.1 200"), "CreateRole: {answer}");
    format!("arn:aws:iam::123456789012:role/{name}")
}

/// Create function `name` (never run) with `role`.
async fn create_function(lambda: &aws_sdk_lambda::Client, name: &str, role: &str) {
    let code = aws_sdk_lambda::types::FunctionCode::builder()
        .zip_file(aws_sdk_lambda::primitives::Blob::new(EMPTY_ZIP.to_vec()))
        .build();
    lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(code)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateFunction {name}: {e:?}"));
}

/// The function's event-invoke config: retries, oldest event, on-success and
/// on-failure destinations; `None` when it has none.
async fn invoke_config(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
) -> Option<(Option<i32>, Option<i32>, Option<String>, Option<String>)> {
    match lambda
        .get_function_event_invoke_config()
        .function_name(name)
        .send()
        .await
    {
        Ok(found) => {
            let destinations = found.destination_config();
            let on_success = destinations
                .and_then(|d| d.on_success())
                .and_then(|d| d.destination());
            let on_failure = destinations
                .and_then(|d| d.on_failure())
                .and_then(|d| d.destination());
            Some((
                found.maximum_retry_attempts(),
                found.maximum_event_age_in_seconds(),
                on_success.map(str::to_owned),
                on_failure.map(str::to_owned),
            ))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(e) => panic!("GetFunctionEventInvokeConfig {name}: {e:?}"),
    }
}

/// The ARN of the queue at `url`.
async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes");
    attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("the queue's ARN")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_sends_the_results_of_task_functions_to_the_complete_queue() {
    let stack = LocalAws::start();
    let resources = stack.create("invoke", 5, 2);
    let sandbox = Sandbox::new();
    let config = stack.sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let complete = queue_arn(&sqs, resources.get("ALOFT_COMPLETE_QUEUE_URL")).await;
    let role = create_role(&stack, "aloft-task");
    create_function(&lambda, "payments", &role).await;
    create_function(&lambda, "mailer", &role).await;
    sandbox.write("charge.yaml", CHARGE);

    // A dry run shows both configs to create and makes neither.
    let dry = deploy(&sandbox, &resources, &["charge.yaml"], &["--dry-run"]);
    dry.assert_code(0);
    assert!(
        dry.stdout
            .contains("create     event-invoke config payments  (charge.yaml)")
            && dry
                .stdout
                .contains("create     event-invoke config mailer  (charge.yaml)")
            && dry.stdout.contains("maximum_retry_attempts: 0")
            && dry.stdout.contains(&format!("on_failure: {complete}")),
        "{}",
        dry.stdout
    );
    assert_eq!(invoke_config(&lambda, "payments").await, None);

    // The queue's ARN is looked up from ALOFT_COMPLETE_QUEUE_URL; one config per
    // function, after the definition.
    let first = deploy(&sandbox, &resources, &["charge.yaml"], &[]);
    first.assert_code(0);
    assert_eq!(
        first.stdout.matches("event-invoke config payments").count(),
        1,
        "{}",
        first.stdout
    );
    let definition = first.stdout.find("workflow charge").expect("the workflow");
    let payments = first.stdout.find("config payments").expect("its config");
    assert!(definition < payments, "{}", first.stdout);
    assert!(
        first.stdout.contains("deployed: 3 created"),
        "{}",
        first.stdout
    );
    let wanted = Some((
        Some(0),
        Some(21_600),
        Some(complete.clone()),
        Some(complete.clone()),
    ));
    assert_eq!(invoke_config(&lambda, "payments").await, wanted);
    assert_eq!(invoke_config(&lambda, "mailer").await, wanted);

    // Again, with the ARN given: nothing to do.
    let again = deploy(
        &sandbox,
        &resources,
        &["charge.yaml"],
        &["--complete-queue-arn", &complete],
    );
    again.assert_code(0);
    assert!(
        again
            .stdout
            .contains("unchanged  event-invoke config payments  (charge.yaml)")
            && again
                .stdout
                .contains("no changes: AWS matches the files (3 unchanged)"),
        "{}",
        again.stdout
    );

    // A config changed by hand is an update of what differs. moto adds a config to the
    // ones a function has and reads back the first, so the hand-made one replaces the
    // deployed one only after a delete.
    lambda
        .delete_function_event_invoke_config()
        .function_name("payments")
        .send()
        .await
        .expect("DeleteFunctionEventInvokeConfig");
    let destinations = aws_sdk_lambda::types::DestinationConfig::builder()
        .on_success(
            aws_sdk_lambda::types::OnSuccess::builder()
                .destination(&complete)
                .build(),
        )
        .on_failure(
            aws_sdk_lambda::types::OnFailure::builder()
                .destination(&complete)
                .build(),
        )
        .build();
    lambda
        .put_function_event_invoke_config()
        .function_name("payments")
        .maximum_retry_attempts(2)
        .maximum_event_age_in_seconds(21_600)
        .destination_config(destinations)
        .send()
        .await
        .expect("PutFunctionEventInvokeConfig");
    let by_hand = Some((
        Some(2),
        Some(21_600),
        Some(complete.clone()),
        Some(complete.clone()),
    ));
    let dry = deploy(&sandbox, &resources, &["charge.yaml"], &["--dry-run"]);
    dry.assert_code(0);
    assert!(
        dry.stdout.contains(
            "update     event-invoke config payments  (charge.yaml)\n             \
             maximum_retry_attempts: 2 -> 0\n"
        ) && dry
            .stdout
            .contains("dry run: would create 0, update 1, delete 0 (2 unchanged)"),
        "{}",
        dry.stdout
    );
    assert_eq!(invoke_config(&lambda, "payments").await, by_hand);

    // Deploy puts the fix. moto 5.2.5 would still read back the hand-made config (the
    // first it holds), so what was put is checked in the plan, field by field.
    let fixed = deploy(
        &sandbox,
        &resources,
        &["charge.yaml"],
        &["--output", "json"],
    );
    fixed.assert_code(0);
    let report = fixed.json();
    assert_eq!(report["changed"], json!(true), "{report}");
    let change = report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["action"] == json!("update"))
        .expect("an update")
        .clone();
    assert_eq!(
        change,
        json!({"kind": "event_invoke_config", "name": "payments", "place": null,
            "workflow": "charge", "file": "charge.yaml", "action": "update",
            "fields": [{"field": "maximum_retry_attempts", "old": "2", "new": "0"}]}),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_refuses_a_missing_task_function_or_complete_queue() {
    let stack = LocalAws::start();
    let resources = stack.create("missing", 5, 2);
    let sandbox = Sandbox::new();
    let config = stack.sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let role = create_role(&stack, "aloft-task");
    create_function(&lambda, "payments", &role).await;
    sandbox.write("charge.yaml", CHARGE);

    // `mailer` does not exist: nothing is changed, not even `payments`.
    let missing = deploy(&sandbox, &resources, &["charge.yaml"], &[]);
    missing.assert_code(1);
    assert!(
        missing.stderr.contains(
            "charge.yaml: lambda function \"mailer\", which task \"notify\" of workflow \
             \"charge\" runs, does not exist"
        ),
        "{}",
        missing.stderr
    );
    assert_eq!(invoke_config(&lambda, "payments").await, None);

    // Neither the queue's ARN nor its URL: the error names the flag and the task.
    let no_queue = deploy_without(
        &sandbox,
        &resources,
        &["charge.yaml"],
        &[],
        &["ALOFT_COMPLETE_QUEUE_URL"],
    );
    no_queue.assert_code(2);
    assert!(
        no_queue.stderr.contains(
            "charge.yaml: task \"reserve\" of workflow \"charge\" runs lambda function payments"
        ) && no_queue.stderr.contains("--complete-queue-arn"),
        "{}",
        no_queue.stderr
    );
}
