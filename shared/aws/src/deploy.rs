//! `aloft deploy`: make AWS match workflow files. Each workflow's definition becomes its
//! LATEST version, a `schedule` becomes an EventBridge Scheduler schedule, and each entry
//! of `events` an EventBridge rule, all of them invoking the trigger function.
//!
//! Three steps, the first two pure:
//! 1. [`desired`]: what the files ask for, from the definitions and [`DeploySettings`]
//!    alone;
//! 2. [`plan`]: that, compared with what [`Clients::read`] found, as a [`Plan`] of
//!    changes: create, update (field by field, old and new), delete, or unchanged;
//! 3. [`Clients::apply`] makes the changes (a dry run stops before it).
//!
//! **Ownership.** Every schedule and rule deploy writes carries a description that starts
//! with [`MANAGED`] and names its workflow. Deploy changes only resources so marked, and
//! of those only the ones of the workflows it was given, unless asked to prune: then it
//! also deletes marked resources of workflows it was not given. A resource that has a
//! name deploy needs but not the mark is someone else's: deploy stops and says so, it
//! never takes it over.
//!
//! **Names.** A schedule is named after its workflow (workflow names, like schedule
//! names, have at most 64 characters) in a schedule group of aloft's own. A rule is
//! named `<prefix>-<workflow>-<index>` on the bus event producers publish to; a name
//! over EventBridge's 64 characters keeps the start of the workflow name and adds 8 hex
//! digits of its hash, so that it stays unique.
//!
//! **What the trigger receives** is the shape [`crate::trigger::parse`] reads: a
//! schedule's input is `{"workflow", "scheduled_time": "<aws.scheduler.scheduled-time>"}`,
//! and a rule's input transformer wraps the whole event (EventBridge's predefined
//! `<aws.events.event.json>`; `<aws.events.event>` would leave out its `detail`) as
//! `{"workflow", "event"}`.
//!
//! **Retries.** A delivery that fails (the function throttled, a permission missing) is
//! tried again, which is always safe: the trigger keys a schedule's run by its tick and
//! an event's run by the event id, so a repeated delivery starts no second run. A tick is
//! given up after [`SCHEDULE_RETRY`] (an hour): a run that late is no longer the run the
//! schedule meant. An event is kept as long as EventBridge allows, [`RULE_RETRY`] (a
//! day): an event is data that nothing else would deliver again. Neither has a
//! dead-letter queue yet.

mod plan;
mod remote;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};

use aloft_core::Definition;
use aloft_core::definition::{EventTrigger, Schedule};
use aloft_engine::ports::PortError;

pub use plan::{Action, Change, FieldChange, Kind, Plan, plan};
pub use remote::{Clients, Current};

/// How every description of a resource deploy manages starts; the workflow follows.
pub const MANAGED: &str = "managed by aloft deploy: workflow ";

/// Scheduler's placeholder for the tick, replaced in a schedule's input at each fire.
pub const SCHEDULED_TIME: &str = "<aws.scheduler.scheduled-time>";

/// EventBridge's placeholder for the whole event, `detail` included.
pub const WHOLE_EVENT: &str = "<aws.events.event.json>";

/// The id of the target deploy puts on each rule.
pub const RULE_TARGET_ID: &str = "aloft-trigger";

/// Longest schedule and rule name, as AWS allows.
pub const NAME_LIMIT: usize = 64;

/// Longest rule prefix, leaving room for the workflow name in a rule name.
pub const PREFIX_LIMIT: usize = 20;

/// Delivery retries of a schedule tick: up to an hour late.
pub const SCHEDULE_RETRY: Retry = Retry {
    attempts: 20,
    max_age_seconds: 3600,
};

/// Delivery retries of an event: EventBridge's most, a day.
pub const RULE_RETRY: Retry = Retry {
    attempts: 185,
    max_age_seconds: 86_400,
};

/// Where deploy puts things and what they invoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploySettings {
    /// The Scheduler schedule group of aloft's schedules (created when missing).
    pub schedule_group: String,
    /// The EventBridge bus that event producers publish to, where the rules go.
    pub event_bus: String,
    /// Rule names start with this and a dash.
    pub rule_prefix: String,
    /// The trigger function, the target of schedules and (by default) of rules.
    pub trigger_arn: Option<String>,
    /// The IAM role Scheduler assumes to invoke the trigger function.
    pub scheduler_role_arn: Option<String>,
    /// Another target for the rules (a queue that feeds the trigger), instead of the
    /// trigger function.
    pub rule_target_arn: Option<String>,
}

impl Default for DeploySettings {
    fn default() -> Self {
        Self {
            schedule_group: "aloft".into(),
            event_bus: "default".into(),
            rule_prefix: "aloft".into(),
            trigger_arn: None,
            scheduler_role_arn: None,
            rule_target_arn: None,
        }
    }
}

impl DeploySettings {
    /// Refuses a malformed setting, naming its flag, variable and value.
    pub fn check(&self) -> Result<(), DeployError> {
        check_name(
            "--schedule-group (ALOFT_SCHEDULE_GROUP)",
            &self.schedule_group,
            NAME_LIMIT,
        )?;
        check_name(
            "--rule-prefix (ALOFT_RULE_PREFIX)",
            &self.rule_prefix,
            PREFIX_LIMIT,
        )?;
        if self.event_bus.is_empty() {
            return Err(DeployError::Setting(
                "--event-bus (ALOFT_TRIGGER_BUS) cannot be empty".into(),
            ));
        }
        check_arn(
            "--trigger-arn (ALOFT_TRIGGER_ARN)",
            self.trigger_arn.as_deref(),
            ":lambda:",
        )?;
        check_arn(
            "--scheduler-role-arn (ALOFT_SCHEDULER_ROLE_ARN)",
            self.scheduler_role_arn.as_deref(),
            ":iam::",
        )?;
        check_arn(
            "--rule-target-arn (ALOFT_RULE_TARGET_ARN)",
            self.rule_target_arn.as_deref(),
            ":",
        )
    }
}

fn check_name(what: &str, name: &str, limit: usize) -> Result<(), DeployError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if (1..=limit).contains(&name.len()) && name.bytes().all(allowed) {
        return Ok(());
    }
    Err(DeployError::Setting(format!(
        "{what} {name:?} must be 1 to {limit} of A-Z a-z 0-9 - _ ."
    )))
}

fn check_arn(what: &str, arn: Option<&str>, service: &str) -> Result<(), DeployError> {
    let Some(arn) = arn else {
        return Ok(());
    };
    if arn.starts_with("arn:") && arn.split(':').count() >= 6 && arn.contains(service) {
        return Ok(());
    }
    let expected = match service {
        ":lambda:" => "arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME",
        ":iam::" => "arn:PARTITION:iam::ACCOUNT:role/NAME",
        _ => "arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE",
    };
    Err(DeployError::Setting(format!(
        "{what} {arn:?} is not an ARN of the form {expected}"
    )))
}

/// Why deploy cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A setting is missing or malformed.
    #[error("{0}")]
    Setting(String),
    /// A workflow file asks for something deploy cannot do.
    #[error("{file}: {message}")]
    Workflow {
        /// The file.
        file: String,
        /// What is wrong, naming the value.
        message: String,
    },
    /// A resource deploy needs to write exists and is not aloft's.
    #[error(
        "{kind} {name:?} in {place} exists and is not managed by aloft deploy (its description \
         is {description:?}); deploy does not take it over: delete or rename it, or deploy \
         with another --schedule-group or --rule-prefix"
    )]
    NotManaged {
        /// `schedule` or `rule`.
        kind: Kind,
        /// Its name.
        name: String,
        /// Its schedule group or bus.
        place: String,
        /// What it says it is.
        description: String,
    },
    /// An AWS request failed.
    #[error("cannot {doing}: {error}")]
    Aws {
        /// What deploy was doing.
        doing: String,
        /// The request's error.
        error: PortError,
    },
}

impl DeployError {
    fn file(file: &str, message: String) -> Self {
        Self::Workflow {
            file: file.to_owned(),
            message,
        }
    }

    fn aws(doing: impl Into<String>, error: PortError) -> Self {
        Self::Aws {
            doing: doing.into(),
            error,
        }
    }
}

/// How many times, and for how long, a failed delivery is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first attempt.
    pub attempts: i32,
    /// Oldest a delivery may be when tried, in seconds.
    pub max_age_seconds: i32,
}

impl fmt::Display for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} retries within {}s",
            self.attempts, self.max_age_seconds
        )
    }
}

/// An EventBridge Scheduler schedule, as deploy writes it or as it was read.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleSpec {
    /// Its name in the group.
    pub name: String,
    /// `cron(...)`, `rate(...)` or `at(...)`, as written.
    pub expression: String,
    /// The IANA zone the expression is read in.
    pub timezone: String,
    /// `OFF`: fire on the tick.
    pub flexible_window: String,
    /// The trigger function.
    pub target_arn: String,
    /// The role Scheduler assumes to invoke it.
    pub role_arn: String,
    /// The target's input (text that is not JSON is kept as a JSON string).
    pub input: Value,
    /// Delivery retries; `None` when the schedule has no retry policy.
    pub retry: Option<Retry>,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    /// Its description; [`MANAGED`] and the workflow for a schedule of aloft's.
    pub description: String,
}

impl ScheduleSpec {
    /// The workflow whose schedule this is, if deploy manages it.
    pub fn owner(&self) -> Option<&str> {
        owner(&self.description)
    }

    /// Its fields, named and shown as a plan shows them.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("expression", self.expression.clone()),
            ("timezone", self.timezone.clone()),
            ("flexible_time_window", self.flexible_window.clone()),
            ("target", self.target_arn.clone()),
            ("role", self.role_arn.clone()),
            ("input", compact(&self.input)),
            ("retry", show_retry(self.retry)),
            ("state", self.state.clone()),
            ("description", self.description.clone()),
        ]
    }
}

/// An EventBridge rule with deploy's target, as deploy writes it or as it was read.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    /// Its name on the bus.
    pub name: String,
    /// Its event pattern (text that is not JSON is kept as a JSON string).
    pub pattern: Value,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    /// Its description; [`MANAGED`], the workflow and the trigger's index for a rule of
    /// aloft's.
    pub description: String,
    /// The target with id [`RULE_TARGET_ID`], if the rule has it.
    pub target: Option<RuleTarget>,
}

/// The target deploy puts on a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleTarget {
    /// The trigger function, or the queue that feeds it.
    pub arn: String,
    /// The input transformer's template.
    pub input_template: String,
    /// Delivery retries; `None` when the target has no retry policy.
    pub retry: Option<Retry>,
}

impl RuleSpec {
    /// The workflow whose rule this is, if deploy manages it.
    pub fn owner(&self) -> Option<&str> {
        owner(&self.description)
    }

    /// Its fields, named and shown as a plan shows them.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let target = self.target.as_ref();
        vec![
            ("pattern", compact(&self.pattern)),
            ("state", self.state.clone()),
            ("description", self.description.clone()),
            ("target", target.map_or_else(none, |t| t.arn.clone())),
            (
                "input_template",
                target.map_or_else(none, |t| t.input_template.clone()),
            ),
            ("retry", show_retry(target.and_then(|t| t.retry))),
        ]
    }
}

fn none() -> String {
    "(none)".into()
}

fn show_retry(retry: Option<Retry>) -> String {
    retry.map_or_else(none, |r| r.to_string())
}

/// Canonical JSON text (keys sorted, so that equal documents read the same); a JSON
/// string, which holds text that was not JSON, as it was.
fn compact(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => aloft_core::canonical::canonical_json(other),
    }
}

/// The workflow a description marks as its owner.
fn owner(description: &str) -> Option<&str> {
    let rest = description.strip_prefix(MANAGED)?;
    let name = rest.split(',').next().unwrap_or_default().trim();
    (!name.is_empty()).then_some(name)
}

/// A workflow file, loaded and valid.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowFile {
    /// Its path, for messages.
    pub file: String,
    /// What it defines.
    pub definition: Definition,
}

/// What one workflow file asks AWS to hold.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredWorkflow {
    /// The file, for messages.
    pub file: String,
    /// The definition to store.
    pub definition: Definition,
    /// Its version: the content hash `aloft workflows put` stores it under.
    pub version: String,
    /// Its schedule, if it has a `schedule`.
    pub schedule: Option<ScheduleSpec>,
    /// One rule per entry of `events`, in order.
    pub rules: Vec<RuleSpec>,
}

/// What the files ask AWS to hold, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// Where things go.
    pub settings: DeploySettings,
    /// One per file, in the order given.
    pub workflows: Vec<DesiredWorkflow>,
}

/// What the files ask for: a pure function of the definitions and the settings.
pub fn desired(files: &[WorkflowFile], settings: &DeploySettings) -> Result<Desired, DeployError> {
    settings.check()?;
    let mut workflows: Vec<DesiredWorkflow> = Vec::with_capacity(files.len());
    let mut rule_owners: BTreeMap<String, String> = BTreeMap::new();
    for WorkflowFile { file, definition } in files {
        let name = &definition.name;
        if let Some(earlier) = workflows.iter().find(|w| &w.definition.name == name) {
            let message = format!(
                "workflow {name:?} is also defined by {}: one file per workflow",
                earlier.file
            );
            return Err(DeployError::file(file, message));
        }
        let wanted = desired_workflow(file, definition, settings)?;
        for rule in &wanted.rules {
            if let Some(other) = rule_owners.insert(rule.name.clone(), name.clone()) {
                let message = format!(
                    "rule name {:?} of workflow {name:?} is also the name of a rule of \
                     workflow {other:?}: rename one of the workflows",
                    rule.name
                );
                return Err(DeployError::file(file, message));
            }
        }
        workflows.push(wanted);
    }
    Ok(Desired {
        settings: settings.clone(),
        workflows,
    })
}

fn desired_workflow(
    file: &str,
    definition: &Definition,
    settings: &DeploySettings,
) -> Result<DesiredWorkflow, DeployError> {
    let name = &definition.name;
    let (_, version) =
        crate::read::version_of(definition).map_err(|e| DeployError::file(file, e.message))?;
    let schedule = match &definition.schedule {
        Some(schedule) => Some(schedule_spec(file, name, schedule, settings)?),
        None => None,
    };
    let rules = definition
        .events
        .iter()
        .enumerate()
        .map(|(index, trigger)| rule_spec(file, name, index, trigger, settings))
        .collect::<Result<_, _>>()?;
    Ok(DesiredWorkflow {
        file: file.to_owned(),
        definition: definition.clone(),
        version,
        schedule,
        rules,
    })
}

/// The input a schedule gives the trigger: the workflow and the tick.
pub fn schedule_input(workflow: &str) -> Value {
    json!({"workflow": workflow, "scheduled_time": SCHEDULED_TIME})
}

/// The input transformer template of a rule: the workflow and the whole event. Workflow
/// names need no escaping in JSON text (`[a-z0-9-]`).
pub fn rule_input_template(workflow: &str) -> String {
    format!(r#"{{"workflow": "{workflow}", "event": {WHOLE_EVENT}}}"#)
}

/// The name of rule `index` of `workflow`: `<prefix>-<workflow>-<index>`, or, when that
/// is longer than AWS allows, the workflow name cut short and 8 hex digits of its hash.
pub fn rule_name(prefix: &str, workflow: &str, index: usize) -> String {
    let plain = format!("{prefix}-{workflow}-{index}");
    if plain.len() <= NAME_LIMIT {
        return plain;
    }
    let hash = aloft_core::canonical::content_hash(&Value::String(workflow.to_owned()));
    let hash = &hash[..8];
    let index = index.to_string();
    // Names are ASCII, so any byte count is a character count.
    let fixed = prefix.len() + hash.len() + index.len() + 3;
    let room = NAME_LIMIT.saturating_sub(fixed).min(workflow.len());
    format!("{prefix}-{}-{hash}-{index}", &workflow[..room])
}

fn schedule_spec(
    file: &str,
    workflow: &str,
    schedule: &Schedule,
    settings: &DeploySettings,
) -> Result<ScheduleSpec, DeployError> {
    let needs = |what: &str| {
        DeployError::file(
            file,
            format!(
                "workflow {workflow:?} has a schedule ({}): deploying it needs {what}",
                schedule.expression
            ),
        )
    };
    let target_arn = settings
        .trigger_arn
        .clone()
        .ok_or_else(|| needs("the trigger function's ARN (--trigger-arn or ALOFT_TRIGGER_ARN)"))?;
    let role_arn = settings.scheduler_role_arn.clone().ok_or_else(|| {
        needs(
            "the role EventBridge Scheduler assumes to invoke it (--scheduler-role-arn or \
             ALOFT_SCHEDULER_ROLE_ARN)",
        )
    })?;
    Ok(ScheduleSpec {
        name: workflow.to_owned(),
        expression: schedule.expression.clone(),
        timezone: schedule.timezone.clone().unwrap_or_else(|| "UTC".into()),
        flexible_window: "OFF".into(),
        target_arn,
        role_arn,
        input: schedule_input(workflow),
        retry: Some(SCHEDULE_RETRY),
        state: "ENABLED".into(),
        description: format!("{MANAGED}{workflow}"),
    })
}

fn rule_spec(
    file: &str,
    workflow: &str,
    index: usize,
    trigger: &EventTrigger,
    settings: &DeploySettings,
) -> Result<RuleSpec, DeployError> {
    let arn = settings
        .rule_target_arn
        .clone()
        .or_else(|| settings.trigger_arn.clone())
        .ok_or_else(|| {
            DeployError::file(
                file,
                format!(
                    "workflow {workflow:?} has event triggers (events): deploying them needs \
                     the trigger function's ARN (--trigger-arn or ALOFT_TRIGGER_ARN), or \
                     another target (--rule-target-arn or ALOFT_RULE_TARGET_ARN)"
                ),
            )
        })?;
    Ok(RuleSpec {
        name: rule_name(&settings.rule_prefix, workflow, index),
        pattern: trigger.pattern.clone(),
        state: "ENABLED".into(),
        description: format!("{MANAGED}{workflow}, events[{index}]"),
        target: Some(RuleTarget {
            arn,
            input_template: rule_input_template(workflow),
            retry: Some(RULE_RETRY),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aloft_core::source::load_str;

    pub(super) fn file(name: &str, yaml: &str) -> WorkflowFile {
        WorkflowFile {
            file: format!("{name}.yaml"),
            definition: load_str(&format!("{name}.yaml"), yaml)
                .unwrap_or_else(|problems| panic!("{problems}")),
        }
    }

    pub(super) fn settings() -> DeploySettings {
        DeploySettings {
            trigger_arn: Some("arn:aws:lambda:eu-west-1:123456789012:function:trigger".into()),
            scheduler_role_arn: Some("arn:aws:iam::123456789012:role/scheduler".into()),
            ..DeploySettings::default()
        }
    }

    pub(super) const NIGHTLY: &str = "name: nightly\nschedule:\n  expression: cron(0 2 * * ? *)\n  \
        timezone: Europe/Berlin\ntasks:\n  a:\n    run: {pass: {result: 1}}\n";

    pub(super) const ORDERS: &str = "name: orders\nevents:\n  - pattern: {source: [shop]}\n  \
        - pattern: {detail-type: [Order Placed]}\n    input: {id: $.id}\ntasks:\n  a:\n    \
        run: {pass: {result: 1}}\n";

    #[test]
    fn a_schedule_becomes_one_schedule_named_after_its_workflow() {
        let desired = desired(&[file("nightly", NIGHTLY)], &settings()).expect("desired");
        let workflow = &desired.workflows[0];
        let schedule = workflow.schedule.as_ref().expect("a schedule");
        assert_eq!(schedule.name, "nightly");
        assert_eq!(schedule.expression, "cron(0 2 * * ? *)");
        assert_eq!(schedule.timezone, "Europe/Berlin");
        assert_eq!(schedule.flexible_window, "OFF");
        assert_eq!(
            schedule.target_arn,
            "arn:aws:lambda:eu-west-1:123456789012:function:trigger"
        );
        assert_eq!(
            schedule.role_arn,
            "arn:aws:iam::123456789012:role/scheduler"
        );
        assert_eq!(
            schedule.input,
            json!({"workflow": "nightly", "scheduled_time": "<aws.scheduler.scheduled-time>"})
        );
        assert_eq!(schedule.retry, Some(SCHEDULE_RETRY));
        assert_eq!(schedule.owner(), Some("nightly"));
        assert!(workflow.rules.is_empty());
        assert_eq!(workflow.version.len(), 16);
    }

    #[test]
    fn a_schedule_without_a_zone_is_read_in_utc() {
        let yaml = NIGHTLY.replace("  timezone: Europe/Berlin\n", "");
        let desired = desired(&[file("nightly", &yaml)], &settings()).expect("desired");
        let schedule = desired.workflows[0].schedule.as_ref().expect("a schedule");
        assert_eq!(schedule.timezone, "UTC");
    }

    #[test]
    fn each_event_trigger_becomes_a_rule_wrapping_the_whole_event() {
        let desired = desired(&[file("orders", ORDERS)], &settings()).expect("desired");
        let rules = &desired.workflows[0].rules;
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["aloft-orders-0", "aloft-orders-1"]);
        assert_eq!(rules[1].pattern, json!({"detail-type": ["Order Placed"]}));
        assert_eq!(rules[1].owner(), Some("orders"));
        let target = rules[1].target.as_ref().expect("a target");
        assert_eq!(
            target.input_template,
            r#"{"workflow": "orders", "event": <aws.events.event.json>}"#
        );
        assert_eq!(target.arn, settings().trigger_arn.expect("an arn"));
        assert_eq!(target.retry, Some(RULE_RETRY));
    }

    #[test]
    fn a_rule_target_replaces_the_trigger_as_the_rules_target_only() {
        let settings = DeploySettings {
            rule_target_arn: Some("arn:aws:sqs:eu-west-1:123456789012:feed".into()),
            ..settings()
        };
        let files = [file("orders", ORDERS), file("nightly", NIGHTLY)];
        let desired = desired(&files, &settings).expect("desired");
        let rule = &desired.workflows[0].rules[0];
        assert_eq!(
            rule.target.as_ref().map(|t| t.arn.as_str()),
            Some("arn:aws:sqs:eu-west-1:123456789012:feed")
        );
        let schedule = desired.workflows[1].schedule.as_ref().expect("a schedule");
        assert_eq!(schedule.target_arn, settings.trigger_arn.expect("an arn"));
    }

    #[test]
    fn the_inputs_are_what_the_trigger_reads() {
        // Scheduler replaces the placeholder with the tick; EventBridge the whole event.
        let input = schedule_input("nightly")
            .to_string()
            .replace(SCHEDULED_TIME, "2026-12-04T02:00:00Z");
        let trigger = crate::trigger::parse(&serde_json::from_str(&input).expect("json"))
            .expect("a schedule invocation");
        assert_eq!(trigger.workflow, "nightly");
        assert_eq!(
            trigger.idempotency_key.as_deref(),
            Some("schedule:2026-12-04T02:00:00Z")
        );

        let event = json!({"version": "0", "id": "e-7", "detail-type": "Order Placed",
            "source": "shop", "account": "123456789012", "time": "2026-12-04T02:00:00Z",
            "region": "eu-west-1", "resources": [], "detail": {"order": 7}});
        let wrapped = rule_input_template("orders").replace(WHOLE_EVENT, &event.to_string());
        let trigger = crate::trigger::parse(&serde_json::from_str(&wrapped).expect("json"))
            .expect("a wrapped event");
        assert_eq!(trigger.workflow, "orders");
        assert_eq!(trigger.event, Some(event));
        assert_eq!(trigger.idempotency_key.as_deref(), Some("event:e-7"));
    }

    #[test]
    fn long_rule_names_are_cut_and_stay_distinct() {
        let long = "a".repeat(64);
        let other = format!("{}b", "a".repeat(63));
        let one = rule_name("aloft", &long, 12);
        let two = rule_name("aloft", &other, 12);
        assert_eq!(one.len(), NAME_LIMIT, "{one}");
        assert!(
            one.starts_with("aloft-aaaa") && one.ends_with("-12"),
            "{one}"
        );
        assert_ne!(one, two);
        assert_eq!(rule_name("aloft", "short", 3), "aloft-short-3");
        let longest_prefix = "p".repeat(PREFIX_LIMIT);
        assert!(rule_name(&longest_prefix, &long, 999).len() <= NAME_LIMIT);
    }

    #[test]
    fn a_missing_arn_names_the_file_the_workflow_and_the_flag() {
        let no_role = DeploySettings {
            scheduler_role_arn: None,
            ..settings()
        };
        let error = desired(&[file("nightly", NIGHTLY)], &no_role).expect_err("no role");
        let text = error.to_string();
        assert!(
            text.starts_with("nightly.yaml: workflow \"nightly\""),
            "{text}"
        );
        assert!(text.contains("--scheduler-role-arn"), "{text}");

        let nothing = DeploySettings::default();
        let error = desired(&[file("orders", ORDERS)], &nothing).expect_err("no target");
        assert!(error.to_string().contains("--rule-target-arn"), "{error}");
        // A workflow without triggers needs no ARN at all.
        let plain = "name: plain\ntasks:\n  a:\n    run: {pass: {result: 1}}\n";
        desired(&[file("plain", plain)], &nothing).expect("no triggers");
    }

    #[test]
    fn malformed_settings_are_refused_with_their_value() {
        let bad = DeploySettings {
            trigger_arn: Some("trigger".into()),
            ..settings()
        };
        let error = bad.check().expect_err("not an arn").to_string();
        assert!(
            error.contains("--trigger-arn") && error.contains("\"trigger\""),
            "{error}"
        );
        let bad = DeploySettings {
            rule_prefix: "has space".into(),
            ..settings()
        };
        assert!(
            bad.check()
                .expect_err("a space")
                .to_string()
                .contains("\"has space\"")
        );
        let bad = DeploySettings {
            schedule_group: String::new(),
            ..settings()
        };
        bad.check().expect_err("empty");
    }

    #[test]
    fn one_file_per_workflow() {
        let files = [file("nightly", NIGHTLY), file("again", NIGHTLY)];
        let error = desired(&files, &settings()).expect_err("twice").to_string();
        assert!(
            error.starts_with("again.yaml: workflow \"nightly\" is also defined by nightly.yaml"),
            "{error}"
        );
    }

    #[test]
    fn owners_are_read_from_descriptions() {
        assert_eq!(
            owner("managed by aloft deploy: workflow w, events[2]"),
            Some("w")
        );
        assert_eq!(owner("managed by aloft deploy: workflow w"), Some("w"));
        assert_eq!(owner("managed by aloft deploy: workflow "), None);
        assert_eq!(owner("somebody's rule"), None);
    }
}
