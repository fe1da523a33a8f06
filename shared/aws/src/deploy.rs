//! `aloft deploy`: make AWS match workflow files. Each workflow's definition becomes its
//! LATEST version, each function a `lambda` task names gets the event-invoke config that
//! sends its results to the complete queue, a `schedule` becomes an EventBridge Scheduler
//! schedule, and each entry of `events` an EventBridge rule, all of them invoking the
//! trigger function.
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
//! **Task functions.** A `lambda` task is invoked asynchronously, and its result comes
//! back only through the function's event-invoke config (for the version or alias the
//! task names, or the unqualified function). Deploy makes that config
//! [`InvokeConfigSpec`]: no retries by Lambda, since aloft retries by the task's own
//! policy and a retry by Lambda would run the same attempt twice; events kept for
//! [`INVOKE_MAX_EVENT_AGE`]; success and failure both to the complete queue. The
//! function is the user's: deploy creates or updates its config only, never deletes the
//! config (not even with `--prune`) nor creates the function; a function that does not
//! exist is an error.
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
use aloft_core::definition::{EventTrigger, RunSpec, Schedule};
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

/// Retries Lambda makes of a failed asynchronous invoke of a task function: none, since
/// aloft retries by the task's own policy.
pub const INVOKE_RETRY_ATTEMPTS: i32 = 0;

/// Oldest an asynchronous invoke of a task function may be when Lambda runs it, in
/// seconds: Lambda's own default and its most, six hours. An invoke held back by
/// throttling still runs, however long the task's timeout; one held longer still reaches
/// the complete queue as a failure (`EventAgeExceeded`). Whether a late result still
/// counts is for the attempt's timeout to decide, not for Lambda.
pub const INVOKE_MAX_EVENT_AGE: i32 = 21_600;

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
    /// The complete queue, where task functions send their results.
    pub complete_queue_arn: Option<String>,
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
            complete_queue_arn: None,
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
        )?;
        check_arn(
            "--complete-queue-arn (ALOFT_COMPLETE_QUEUE_ARN)",
            self.complete_queue_arn.as_deref(),
            ":sqs:",
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
        ":sqs:" => "arn:PARTITION:sqs:REGION:ACCOUNT:NAME",
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

/// A task function's event-invoke config, as deploy writes it or as it was read. Deploy
/// creates and updates it but never deletes it: the function, and what else it is used
/// for, are the user's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvokeConfigSpec {
    /// The function as the task names it, without a qualifier: its name, or its full or
    /// partial ARN.
    pub function: String,
    /// The version or alias the task names, if it names one.
    pub qualifier: Option<String>,
    /// Retries Lambda makes of an invoke whose function failed.
    pub retry_attempts: i32,
    /// Oldest an invoke may be when Lambda runs it, in seconds.
    pub max_event_age_seconds: i32,
    /// Where Lambda sends the record of an invoke that succeeded.
    pub on_success: Option<String>,
    /// Where Lambda sends the record of an invoke that failed.
    pub on_failure: Option<String>,
}

impl InvokeConfigSpec {
    /// The function and its qualifier as Lambda reads them: `NAME` or `NAME:QUALIFIER`.
    pub fn name(&self) -> String {
        match &self.qualifier {
            Some(qualifier) => format!("{}:{qualifier}", self.function),
            None => self.function.clone(),
        }
    }

    /// Its fields, named and shown as a plan shows them.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("maximum_retry_attempts", self.retry_attempts.to_string()),
            (
                "maximum_event_age_seconds",
                self.max_event_age_seconds.to_string(),
            ),
            ("on_success", self.on_success.clone().unwrap_or_else(none)),
            ("on_failure", self.on_failure.clone().unwrap_or_else(none)),
        ]
    }
}

/// A function reference split into the function and its qualifier (a version or an
/// alias): `NAME[:QUALIFIER]`, `ACCOUNT:function:NAME[:QUALIFIER]` or
/// `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`, as Lambda takes
/// them. `None` for any other shape.
pub fn split_function(reference: &str) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = reference.split(':').collect();
    // How many parts name the function before an optional qualifier.
    let base = match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", _, ..] => 7,
        [_, "function", _, ..] => 3,
        [_, ..] => 1,
        [] => return None,
    };
    if parts.len() < base || parts.len() > base + 1 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let qualifier = parts.get(base).map(|q| (*q).to_owned());
    Some((parts[..base].join(":"), qualifier))
}

/// The event-invoke config deploy wants for the function `reference` names: no retries
/// by Lambda, events kept [`INVOKE_MAX_EVENT_AGE`], both destinations the complete queue.
pub fn invoke_config_spec(reference: &str, complete_queue_arn: &str) -> Option<InvokeConfigSpec> {
    let (function, qualifier) = split_function(reference)?;
    Some(InvokeConfigSpec {
        function,
        qualifier,
        retry_attempts: INVOKE_RETRY_ATTEMPTS,
        max_event_age_seconds: INVOKE_MAX_EVENT_AGE,
        on_success: Some(complete_queue_arn.to_owned()),
        on_failure: Some(complete_queue_arn.to_owned()),
    })
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

/// A task function and the event-invoke config it needs, with the first task that names
/// it, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredFunction {
    /// The config.
    pub config: InvokeConfigSpec,
    /// The file of the first task that names the function.
    pub file: String,
    /// That task's workflow.
    pub workflow: String,
    /// That task.
    pub task: String,
}

/// What the files ask AWS to hold, and where.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// Where things go.
    pub settings: DeploySettings,
    /// One per file, in the order given.
    pub workflows: Vec<DesiredWorkflow>,
    /// One per function and qualifier the `lambda` tasks name, in the order first named.
    pub functions: Vec<DesiredFunction>,
}

/// Whether any task of the files is a `lambda` task, whose function deploy configures.
pub fn has_lambda_tasks(files: &[WorkflowFile]) -> bool {
    lambda_tasks(files).next().is_some()
}

/// Every `lambda` task: its file, workflow, task name and function reference.
fn lambda_tasks(files: &[WorkflowFile]) -> impl Iterator<Item = (&str, &str, &str, &str)> {
    files.iter().flat_map(|WorkflowFile { file, definition }| {
        definition
            .tasks
            .iter()
            .filter_map(move |(task, spec)| match &spec.run {
                RunSpec::Lambda(function) => Some((
                    file.as_str(),
                    definition.name.as_str(),
                    task.as_str(),
                    function.trim(),
                )),
                _ => None,
            })
    })
}

/// One [`DesiredFunction`] per function and qualifier, in the order first named.
fn desired_functions(
    files: &[WorkflowFile],
    settings: &DeploySettings,
) -> Result<Vec<DesiredFunction>, DeployError> {
    let mut functions: Vec<DesiredFunction> = Vec::new();
    for (file, workflow, task, reference) in lambda_tasks(files) {
        let Some(queue) = settings.complete_queue_arn.as_deref() else {
            let message = format!(
                "task {task:?} of workflow {workflow:?} runs lambda function {reference}: its \
                 results come back through the function's event-invoke config, and deploying \
                 that needs the complete queue's ARN (--complete-queue-arn or \
                 ALOFT_COMPLETE_QUEUE_ARN: the stack's output CompleteQueueArn; or \
                 ALOFT_COMPLETE_QUEUE_URL, to look it up)"
            );
            return Err(DeployError::file(file, message));
        };
        let config = invoke_config_spec(reference, queue).ok_or_else(|| {
            let message = format!(
                "task {task:?} of workflow {workflow:?} runs lambda {reference:?}, which is \
                 not a function name or ARN (NAME[:QUALIFIER] or \
                 arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER])"
            );
            DeployError::file(file, message)
        })?;
        if functions.iter().all(|f| f.config.name() != config.name()) {
            functions.push(DesiredFunction {
                config,
                file: file.to_owned(),
                workflow: workflow.to_owned(),
                task: task.to_owned(),
            });
        }
    }
    Ok(functions)
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
        functions: desired_functions(files, settings)?,
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
            complete_queue_arn: Some(COMPLETE.into()),
            ..DeploySettings::default()
        }
    }

    pub(super) const COMPLETE: &str = "arn:aws:sqs:eu-west-1:123456789012:aloft-complete";

    /// Two tasks of one function, one of an alias of another by its ARN, and a pass task.
    pub(super) const CHARGE: &str = "name: charge\ntasks:\n  reserve:\n    run: {lambda: \
        payments}\n  capture:\n    depends_on: [reserve]\n    run: {lambda: payments}\n  \
        notify:\n    depends_on: [capture]\n    run: {lambda: \
        'arn:aws:lambda:eu-west-1:123456789012:function:mailer:live'}\n  done:\n    \
        depends_on: [notify]\n    run: {pass: {result: 1}}\n";

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
    fn each_function_of_lambda_tasks_gets_one_config_sending_results_to_the_queue() {
        let refund = "name: refund\ntasks:\n  pay:\n    run: {lambda: payments}\n";
        let files = [file("charge", CHARGE), file("refund", refund)];
        let desired = desired(&files, &settings()).expect("desired");
        let named: Vec<(String, &str, &str, &str)> = desired
            .functions
            .iter()
            .map(|f| {
                let origin = (f.file.as_str(), f.workflow.as_str(), f.task.as_str());
                (f.config.name(), origin.0, origin.1, origin.2)
            })
            .collect();
        assert_eq!(
            named,
            [
                ("payments".into(), "charge.yaml", "charge", "reserve"),
                (
                    "arn:aws:lambda:eu-west-1:123456789012:function:mailer:live".into(),
                    "charge.yaml",
                    "charge",
                    "notify"
                ),
            ]
        );
        assert_eq!(
            desired.functions[0].config,
            InvokeConfigSpec {
                function: "payments".into(),
                qualifier: None,
                retry_attempts: 0,
                max_event_age_seconds: 21_600,
                on_success: Some(COMPLETE.into()),
                on_failure: Some(COMPLETE.into()),
            }
        );
        let mailer = &desired.functions[1].config;
        assert_eq!(
            mailer.function,
            "arn:aws:lambda:eu-west-1:123456789012:function:mailer"
        );
        assert_eq!(mailer.qualifier.as_deref(), Some("live"));
        assert_eq!(
            mailer.fields(),
            [
                ("maximum_retry_attempts", "0".to_owned()),
                ("maximum_event_age_seconds", "21600".to_owned()),
                ("on_success", COMPLETE.to_owned()),
                ("on_failure", COMPLETE.to_owned()),
            ]
        );
        // Workflows without lambda tasks name no function.
        let none = desired_functions(&[file("nightly", NIGHTLY)], &settings()).expect("none");
        assert!(none.is_empty());
        assert!(has_lambda_tasks(&files) && !has_lambda_tasks(&[file("orders", ORDERS)]));
    }

    #[test]
    fn function_references_split_into_function_and_qualifier() {
        let split = |r: &str| split_function(r);
        let pair = |f: &str, q: Option<&str>| Some((f.to_owned(), q.map(str::to_owned)));
        assert_eq!(split("payments"), pair("payments", None));
        assert_eq!(split("payments:7"), pair("payments", Some("7")));
        assert_eq!(
            split("123456789012:function:payments:live"),
            pair("123456789012:function:payments", Some("live"))
        );
        assert_eq!(
            split("arn:aws:lambda:eu-west-1:123456789012:function:payments"),
            pair(
                "arn:aws:lambda:eu-west-1:123456789012:function:payments",
                None
            )
        );
        assert_eq!(
            split("arn:aws:lambda:eu-west-1:123456789012:function:payments:$LATEST"),
            pair(
                "arn:aws:lambda:eu-west-1:123456789012:function:payments",
                Some("$LATEST")
            )
        );
        assert_eq!(split("mailer:function"), pair("mailer", Some("function")));
        assert_eq!(split("a:b:c"), None);
        assert_eq!(split("payments:"), None);
        assert_eq!(
            split("arn:aws:lambda:eu-west-1:123456789012:function:payments:live:extra"),
            None
        );
    }

    #[test]
    fn lambda_tasks_without_the_queue_name_the_flag_and_the_task() {
        let no_queue = DeploySettings {
            complete_queue_arn: None,
            ..settings()
        };
        let error = desired(&[file("charge", CHARGE)], &no_queue)
            .expect_err("no queue")
            .to_string();
        assert!(
            error.starts_with(
                "charge.yaml: task \"reserve\" of workflow \"charge\" runs lambda function \
                 payments:"
            ),
            "{error}"
        );
        assert!(
            error.contains("--complete-queue-arn") && error.contains("ALOFT_COMPLETE_QUEUE_URL"),
            "{error}"
        );
        // Without lambda tasks no queue is needed.
        desired(&[file("nightly", NIGHTLY)], &no_queue).expect("no lambda tasks");

        let bad = "name: bad\ntasks:\n  a:\n    run: {lambda: 'a:b:c'}\n";
        let error = desired(&[file("bad", bad)], &settings())
            .expect_err("not a function")
            .to_string();
        assert!(
            error.starts_with("bad.yaml: task \"a\" of workflow \"bad\" runs lambda \"a:b:c\""),
            "{error}"
        );

        let not_a_queue = DeploySettings {
            complete_queue_arn: Some("https://sqs.eu-west-1.amazonaws.com/1/q".into()),
            ..settings()
        };
        let error = not_a_queue.check().expect_err("a URL").to_string();
        assert!(error.contains("--complete-queue-arn"), "{error}");
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
