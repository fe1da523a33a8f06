//! Reading what exists and carrying a plan out: the table, Lambda's event-invoke configs,
//! EventBridge Scheduler and EventBridge through their SDKs.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_eventbridge::types as eb;
use aws_sdk_lambda::operation::get_function_event_invoke_config::GetFunctionEventInvokeConfigOutput;
use aws_sdk_lambda::types as lambda;
use aws_sdk_scheduler::types as sch;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use aloft_engine::ports::PortError;

use super::plan::{Change, Op};
use super::{
    DeployError, DeploySettings, Desired, DesiredFunction, InvokeConfigSpec, Plan, RULE_TARGET_ID,
    Retry, RuleSpec, RuleTarget, ScheduleSpec,
};
use crate::error::{events_error, lambda_error, scheduler_error, sqs_error};
use crate::store::DynamoStore;

/// What exists of what deploy manages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Current {
    /// The LATEST version of each given workflow that has one.
    pub versions: BTreeMap<String, String>,
    /// The event-invoke configs of the functions the `lambda` tasks name, by
    /// [`InvokeConfigSpec::name`]; a function without one is absent.
    pub invoke_configs: BTreeMap<String, InvokeConfigSpec>,
    /// Whether the schedule group exists.
    pub group_exists: bool,
    /// The schedules of the group that were read: those named after a given workflow, or
    /// every one when pruning.
    pub schedules: Vec<ScheduleSpec>,
    /// The rules on the bus whose names start with the rule prefix; the target is read
    /// for those of the given workflows (of every workflow when pruning).
    pub rules: Vec<RuleSpec>,
}

/// The clients deploy uses.
#[derive(Clone, Debug)]
pub struct Clients {
    /// The table definitions are stored in.
    pub store: DynamoStore,
    /// EventBridge.
    pub events: aws_sdk_eventbridge::Client,
    /// EventBridge Scheduler.
    pub scheduler: aws_sdk_scheduler::Client,
    /// Lambda, for the task functions' event-invoke configs.
    pub lambda: aws_sdk_lambda::Client,
    /// SQS, to look up the complete queue's ARN.
    pub sqs: aws_sdk_sqs::Client,
}

impl Clients {
    /// Clients configured the usual aws-config way, with one endpoint for every service
    /// when given.
    pub async fn connect(table: &str, endpoint_url: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Self::from_config(table, &loader.load().await)
    }

    /// Clients from a configuration built by the caller.
    pub fn from_config(table: &str, shared: &aws_config::SdkConfig) -> Self {
        Self {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(shared), table),
            events: aws_sdk_eventbridge::Client::new(shared),
            scheduler: aws_sdk_scheduler::Client::new(shared),
            lambda: aws_sdk_lambda::Client::new(shared),
            sqs: aws_sdk_sqs::Client::new(shared),
        }
    }

    /// The ARN of the queue at `url`, which SQS tells.
    pub async fn queue_arn(&self, url: &str) -> Result<String, DeployError> {
        let doing = || format!("read the ARN of queue {url}");
        let found = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| DeployError::aws(doing(), sqs_error("GetQueueAttributes", &e)))?;
        found
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .filter(|arn| !arn.is_empty())
            .cloned()
            .ok_or_else(|| {
                let message = "SQS GetQueueAttributes: no QueueArn in the answer".to_owned();
                DeployError::aws(doing(), PortError::terminal(message))
            })
    }

    /// What exists of what `desired` asks for; with `prune`, of every workflow deploy
    /// manages.
    pub async fn read(&self, desired: &Desired, prune: bool) -> Result<Current, DeployError> {
        let given: BTreeSet<&str> = desired
            .workflows
            .iter()
            .map(|w| w.definition.name.as_str())
            .collect();
        let mut versions = BTreeMap::new();
        for name in &given {
            let version = self.store.latest_version(name).await.map_err(|e| {
                DeployError::aws(format!("read the LATEST version of workflow {name}"), e)
            })?;
            if let Some(version) = version {
                versions.insert((*name).to_owned(), version);
            }
        }
        let mut invoke_configs = BTreeMap::new();
        for function in &desired.functions {
            if let Some(found) = self.invoke_config(function).await? {
                invoke_configs.insert(function.config.name(), found);
            }
        }
        let settings = &desired.settings;
        let (group_exists, schedules) = self.read_schedules(settings, &given, prune).await?;
        let rules = self.read_rules(settings, &given, prune).await?;
        Ok(Current {
            versions,
            invoke_configs,
            group_exists,
            schedules,
            rules,
        })
    }

    /// The function's event-invoke config, `None` when it has none; an error when the
    /// function does not exist.
    async fn invoke_config(
        &self,
        function: &DesiredFunction,
    ) -> Result<Option<InvokeConfigSpec>, DeployError> {
        let wanted = &function.config;
        let sent = self
            .lambda
            .get_function_event_invoke_config()
            .function_name(&wanted.function)
            .set_qualifier(wanted.qualifier.clone())
            .send()
            .await;
        match sent {
            Ok(found) => Ok(Some(invoke_config_from(wanted, &found))),
            // Lambda says so for a function without a config and for no function alike.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.check_function(function).await.map(|()| None)
            }
            Err(e) => Err(DeployError::aws(
                format!(
                    "read the event-invoke config of function {} ({})",
                    wanted.name(),
                    function_origin(function)
                ),
                lambda_error("GetFunctionEventInvokeConfig", &e),
            )),
        }
    }

    /// The function (its version or alias, when the task names one) exists.
    async fn check_function(&self, function: &DesiredFunction) -> Result<(), DeployError> {
        let wanted = &function.config;
        let sent = self
            .lambda
            .get_function_configuration()
            .function_name(&wanted.function)
            .set_qualifier(wanted.qualifier.clone())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                let message = format!(
                    "lambda function {:?}, which task {:?} of workflow {:?} runs, does not \
                     exist: create it (deploy configures task functions, it does not create \
                     them), or name another function",
                    wanted.name(),
                    function.task,
                    function.workflow
                );
                Err(DeployError::file(&function.file, message))
            }
            Err(e) => Err(DeployError::aws(
                format!(
                    "read function {} ({})",
                    wanted.name(),
                    function_origin(function)
                ),
                lambda_error("GetFunctionConfiguration", &e),
            )),
        }
    }

    async fn read_schedules(
        &self,
        settings: &DeploySettings,
        given: &BTreeSet<&str>,
        prune: bool,
    ) -> Result<(bool, Vec<ScheduleSpec>), DeployError> {
        let group = &settings.schedule_group;
        let doing = || format!("read schedule group {group}");
        match self.scheduler.get_schedule_group().name(group).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok((false, Vec::new()));
            }
            Err(e) => {
                return Err(DeployError::aws(
                    doing(),
                    scheduler_error("GetScheduleGroup", &e),
                ));
            }
        }
        let names: Vec<String> = self
            .scheduler
            .list_schedules()
            .group_name(group)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| DeployError::aws(doing(), scheduler_error("ListSchedules", &e)))?
            .into_iter()
            .filter_map(|s| s.name)
            .collect();
        let mut schedules = Vec::new();
        for name in names.iter().filter(|n| prune || given.contains(n.as_str())) {
            let found = self
                .scheduler
                .get_schedule()
                .group_name(group)
                .name(name)
                .send()
                .await
                .map_err(|e| {
                    let doing = format!("read schedule {group}/{name}");
                    DeployError::aws(doing, scheduler_error("GetSchedule", &e))
                })?;
            schedules.push(schedule_from(&found));
        }
        Ok((true, schedules))
    }

    async fn read_rules(
        &self,
        settings: &DeploySettings,
        given: &BTreeSet<&str>,
        prune: bool,
    ) -> Result<Vec<RuleSpec>, DeployError> {
        let bus = &settings.event_bus;
        let prefix = format!("{}-", settings.rule_prefix);
        let mut rules = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .events
                .list_rules()
                .event_bus_name(bus)
                .name_prefix(&prefix)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    DeployError::aws(
                        format!("list the rules on bus {bus}"),
                        events_error("ListRules", &e),
                    )
                })?;
            rules.extend(page.rules().iter().map(rule_from));
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        for rule in &mut rules {
            let wanted = rule.owner().is_some_and(|o| prune || given.contains(o));
            if wanted {
                rule.target = self.rule_target(bus, &rule.name).await?;
            }
        }
        Ok(rules)
    }

    /// The rule's target deploy put there, if it has it.
    async fn rule_target(&self, bus: &str, rule: &str) -> Result<Option<RuleTarget>, DeployError> {
        let targets = self.rule_targets(bus, rule).await?;
        Ok(targets
            .iter()
            .find(|t| t.id() == RULE_TARGET_ID)
            .map(target_from))
    }

    async fn rule_targets(&self, bus: &str, rule: &str) -> Result<Vec<eb::Target>, DeployError> {
        let mut targets = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .events
                .list_targets_by_rule()
                .event_bus_name(bus)
                .rule(rule)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    let doing = format!("read the targets of rule {bus}/{rule}");
                    DeployError::aws(doing, events_error("ListTargetsByRule", &e))
                })?;
            targets.extend(page.targets().iter().cloned());
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(targets);
            }
        }
    }

    /// Carry a plan out. Deletions go first, while the stored definitions still have the
    /// triggers being removed; then the definitions, so that a new schedule or rule finds
    /// its workflow stored; then the task functions' event-invoke configs, so that the
    /// results of the runs the triggers start come back; then the schedules and rules.
    /// Each request is safe to repeat: after a failure, deploying again finishes the job.
    pub async fn apply(&self, settings: &DeploySettings, plan: &Plan) -> Result<(), DeployError> {
        for change in &plan.changes {
            match change.op {
                Op::DeleteRule => self.delete_rule(settings, change).await?,
                Op::DeleteSchedule => self.delete_schedule(settings, change).await?,
                _ => {}
            }
        }
        for change in &plan.changes {
            if let Op::PutWorkflow(definition) = &change.op {
                self.store.put_workflow(definition).await.map_err(|e| {
                    DeployError::aws(format!("store workflow {}", definition.name), e)
                })?;
            }
        }
        for change in &plan.changes {
            if let Op::PutInvokeConfig(spec) = &change.op {
                self.put_invoke_config(change, spec).await?;
            }
        }
        for change in &plan.changes {
            match &change.op {
                Op::CreateGroup => self.create_group(settings).await?,
                Op::CreateSchedule(spec) => self.put_schedule(settings, change, spec, true).await?,
                Op::UpdateSchedule(spec) => {
                    self.put_schedule(settings, change, spec, false).await?
                }
                Op::PutRule(spec) => self.put_rule(settings, change, spec).await?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Put replaces the whole config, so that nothing of an old one is left behind.
    async fn put_invoke_config(
        &self,
        change: &Change,
        spec: &InvokeConfigSpec,
    ) -> Result<(), DeployError> {
        let destinations = lambda::DestinationConfig::builder()
            .set_on_success(
                spec.on_success
                    .as_ref()
                    .map(|arn| lambda::OnSuccess::builder().destination(arn).build()),
            )
            .set_on_failure(
                spec.on_failure
                    .as_ref()
                    .map(|arn| lambda::OnFailure::builder().destination(arn).build()),
            )
            .build();
        self.lambda
            .put_function_event_invoke_config()
            .function_name(&spec.function)
            .set_qualifier(spec.qualifier.clone())
            .maximum_retry_attempts(spec.retry_attempts)
            .maximum_event_age_in_seconds(spec.max_event_age_seconds)
            .destination_config(destinations)
            .send()
            .await
            .map_err(|e| {
                DeployError::aws(
                    format!(
                        "put the event-invoke config of function {} ({})",
                        spec.name(),
                        origin(change)
                    ),
                    lambda_error("PutFunctionEventInvokeConfig", &e),
                )
            })?;
        Ok(())
    }

    async fn create_group(&self, settings: &DeploySettings) -> Result<(), DeployError> {
        let group = &settings.schedule_group;
        match self
            .scheduler
            .create_schedule_group()
            .name(group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Made by a deploy running at the same time: it is there, as wanted.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conflict_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(DeployError::aws(
                format!("create schedule group {group}"),
                scheduler_error("CreateScheduleGroup", &e),
            )),
        }
    }

    async fn put_schedule(
        &self,
        settings: &DeploySettings,
        change: &Change,
        spec: &ScheduleSpec,
        create: bool,
    ) -> Result<(), DeployError> {
        let group = &settings.schedule_group;
        let verb = if create { "create" } else { "update" };
        let doing = || format!("{verb} schedule {group}/{} ({})", spec.name, origin(change));
        let target = schedule_target(spec).map_err(|e| DeployError::aws(doing(), e))?;
        let window = sch::FlexibleTimeWindow::builder()
            .mode(sch::FlexibleTimeWindowMode::from(
                spec.flexible_window.as_str(),
            ))
            .build()
            .map_err(|e| DeployError::aws(doing(), PortError::terminal(e.to_string())))?;
        let state = sch::ScheduleState::from(spec.state.as_str());
        // CreateSchedule and UpdateSchedule take the same fields: every one is given, so
        // an update leaves nothing of the old schedule behind.
        macro_rules! fields {
            ($request:expr) => {
                $request
                    .group_name(group)
                    .name(&spec.name)
                    .schedule_expression(&spec.expression)
                    .schedule_expression_timezone(&spec.timezone)
                    .flexible_time_window(window)
                    .target(target)
                    .state(state)
                    .description(&spec.description)
            };
        }
        let result = if create {
            let sent = fields!(self.scheduler.create_schedule()).send().await;
            sent.map(drop)
                .map_err(|e| scheduler_error("CreateSchedule", &e))
        } else {
            let sent = fields!(self.scheduler.update_schedule()).send().await;
            sent.map(drop)
                .map_err(|e| scheduler_error("UpdateSchedule", &e))
        };
        result.map_err(|e| DeployError::aws(doing(), e))
    }

    async fn delete_schedule(
        &self,
        settings: &DeploySettings,
        change: &Change,
    ) -> Result<(), DeployError> {
        let group = &settings.schedule_group;
        let name = &change.name;
        match self
            .scheduler
            .delete_schedule()
            .group_name(group)
            .name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(DeployError::aws(
                format!("delete schedule {group}/{name} ({})", origin(change)),
                scheduler_error("DeleteSchedule", &e),
            )),
        }
    }

    async fn put_rule(
        &self,
        settings: &DeploySettings,
        change: &Change,
        spec: &RuleSpec,
    ) -> Result<(), DeployError> {
        let bus = &settings.event_bus;
        let doing = || format!("put rule {bus}/{} ({})", spec.name, origin(change));
        self.events
            .put_rule()
            .event_bus_name(bus)
            .name(&spec.name)
            .event_pattern(spec.pattern.to_string())
            .state(eb::RuleState::from(spec.state.as_str()))
            .description(&spec.description)
            .send()
            .await
            .map_err(|e| DeployError::aws(doing(), events_error("PutRule", &e)))?;
        let Some(target) = &spec.target else {
            return Ok(());
        };
        let target = rule_target(target).map_err(|e| DeployError::aws(doing(), e))?;
        let put = self
            .events
            .put_targets()
            .event_bus_name(bus)
            .rule(&spec.name)
            .targets(target)
            .send()
            .await
            .map_err(|e| DeployError::aws(doing(), events_error("PutTargets", &e)))?;
        if let Some(failed) = put.failed_entries().first() {
            let message = format!(
                "EventBridge PutTargets: {}: {}",
                failed.error_code().unwrap_or("error"),
                failed.error_message().unwrap_or("no message")
            );
            return Err(DeployError::aws(doing(), PortError::terminal(message)));
        }
        Ok(())
    }

    /// Remove every target of the rule (EventBridge refuses to delete a rule that has
    /// one), then the rule.
    async fn delete_rule(
        &self,
        settings: &DeploySettings,
        change: &Change,
    ) -> Result<(), DeployError> {
        let bus = &settings.event_bus;
        let name = &change.name;
        let doing = || format!("delete rule {bus}/{name} ({})", origin(change));
        let ids: Vec<String> = self
            .rule_targets(bus, name)
            .await?
            .iter()
            .map(|t| t.id().to_owned())
            .collect();
        if !ids.is_empty() {
            let removed = self
                .events
                .remove_targets()
                .event_bus_name(bus)
                .rule(name)
                .set_ids(Some(ids))
                .send()
                .await
                .map_err(|e| DeployError::aws(doing(), events_error("RemoveTargets", &e)))?;
            if let Some(failed) = removed.failed_entries().first() {
                let message = format!(
                    "EventBridge RemoveTargets: {}: {}",
                    failed.error_code().unwrap_or("error"),
                    failed.error_message().unwrap_or("no message")
                );
                return Err(DeployError::aws(doing(), PortError::terminal(message)));
            }
        }
        self.events
            .delete_rule()
            .event_bus_name(bus)
            .name(name)
            .send()
            .await
            .map_err(|e| DeployError::aws(doing(), events_error("DeleteRule", &e)))?;
        Ok(())
    }
}

/// Which workflow and file a change serves, for messages.
fn origin(change: &Change) -> String {
    let workflow = change.workflow.as_deref().unwrap_or("?");
    match &change.file {
        Some(file) => format!("workflow {workflow}, {file}"),
        None => format!("workflow {workflow}"),
    }
}

/// The task that names a function, for messages.
fn function_origin(function: &DesiredFunction) -> String {
    format!(
        "task {} of workflow {}, {}",
        function.task, function.workflow, function.file
    )
}

/// Lambda's retries of a failed asynchronous invoke when the config does not say.
const LAMBDA_DEFAULT_RETRIES: i32 = 2;

/// Lambda's oldest asynchronous invoke, in seconds, when the config does not say.
const LAMBDA_DEFAULT_EVENT_AGE: i32 = 21_600;

/// A config as read, Lambda's defaults filling what it leaves out; a destination that is
/// empty is none.
fn invoke_config_from(
    wanted: &InvokeConfigSpec,
    found: &GetFunctionEventInvokeConfigOutput,
) -> InvokeConfigSpec {
    let destinations = found.destination_config();
    let arn = |arn: Option<&str>| arn.filter(|a| !a.is_empty()).map(str::to_owned);
    InvokeConfigSpec {
        function: wanted.function.clone(),
        qualifier: wanted.qualifier.clone(),
        retry_attempts: found
            .maximum_retry_attempts()
            .unwrap_or(LAMBDA_DEFAULT_RETRIES),
        max_event_age_seconds: found
            .maximum_event_age_in_seconds()
            .unwrap_or(LAMBDA_DEFAULT_EVENT_AGE),
        on_success: arn(destinations
            .and_then(|d| d.on_success())
            .and_then(|d| d.destination())),
        on_failure: arn(destinations
            .and_then(|d| d.on_failure())
            .and_then(|d| d.destination())),
    }
}

fn schedule_target(spec: &ScheduleSpec) -> Result<sch::Target, PortError> {
    let mut target = sch::Target::builder()
        .arn(&spec.target_arn)
        .role_arn(&spec.role_arn)
        .input(spec.input.to_string());
    if let Some(retry) = spec.retry {
        target = target.retry_policy(
            sch::RetryPolicy::builder()
                .maximum_retry_attempts(retry.attempts)
                .maximum_event_age_in_seconds(retry.max_age_seconds)
                .build(),
        );
    }
    target
        .build()
        .map_err(|e| PortError::terminal(e.to_string()))
}

fn rule_target(target: &RuleTarget) -> Result<eb::Target, PortError> {
    let transformer = eb::InputTransformer::builder()
        .input_template(&target.input_template)
        .build()
        .map_err(|e| PortError::terminal(e.to_string()))?;
    let mut built = eb::Target::builder()
        .id(RULE_TARGET_ID)
        .arn(&target.arn)
        .input_transformer(transformer);
    if let Some(retry) = target.retry {
        built = built.retry_policy(
            eb::RetryPolicy::builder()
                .maximum_retry_attempts(retry.attempts)
                .maximum_event_age_in_seconds(retry.max_age_seconds)
                .build(),
        );
    }
    built
        .build()
        .map_err(|e| PortError::terminal(e.to_string()))
}

/// JSON text as a value; text that is not JSON as a JSON string.
fn json_or_text(text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned())),
    }
}

/// A retry policy as read, AWS's defaults filling what it leaves out.
fn retry_from(attempts: Option<i32>, max_age_seconds: Option<i32>) -> Retry {
    Retry {
        attempts: attempts.unwrap_or(185),
        max_age_seconds: max_age_seconds.unwrap_or(86_400),
    }
}

fn schedule_from(
    found: &aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput,
) -> ScheduleSpec {
    let target = found.target();
    ScheduleSpec {
        name: found.name().unwrap_or_default().to_owned(),
        expression: found.schedule_expression().unwrap_or_default().to_owned(),
        timezone: found
            .schedule_expression_timezone()
            .unwrap_or("UTC")
            .to_owned(),
        flexible_window: found
            .flexible_time_window()
            .map(|w| w.mode().as_str().to_owned())
            .unwrap_or_default(),
        target_arn: target.map(|t| t.arn().to_owned()).unwrap_or_default(),
        role_arn: target.map(|t| t.role_arn().to_owned()).unwrap_or_default(),
        input: json_or_text(target.and_then(|t| t.input())),
        retry: target
            .and_then(|t| t.retry_policy())
            .map(|r| retry_from(r.maximum_retry_attempts(), r.maximum_event_age_in_seconds())),
        state: found.state().map_or("ENABLED", |s| s.as_str()).to_owned(),
        description: found.description().unwrap_or_default().to_owned(),
    }
}

fn rule_from(rule: &eb::Rule) -> RuleSpec {
    RuleSpec {
        name: rule.name().unwrap_or_default().to_owned(),
        pattern: json_or_text(rule.event_pattern()),
        state: rule.state().map_or("ENABLED", |s| s.as_str()).to_owned(),
        description: rule.description().unwrap_or_default().to_owned(),
        target: None,
    }
}

fn target_from(target: &eb::Target) -> RuleTarget {
    RuleTarget {
        arn: target.arn().to_owned(),
        input_template: target
            .input_transformer()
            .map(|t| t.input_template().to_owned())
            .unwrap_or_default(),
        retry: target
            .retry_policy()
            .map(|r| retry_from(r.maximum_retry_attempts(), r.maximum_event_age_in_seconds())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_is_not_json_is_kept() {
        assert_eq!(
            json_or_text(Some(r#"{"a": 1}"#)),
            serde_json::json!({"a": 1})
        );
        assert_eq!(
            json_or_text(Some("not json")),
            Value::String("not json".into())
        );
        assert_eq!(json_or_text(None), Value::Null);
    }

    #[test]
    fn a_retry_policy_without_values_has_aws_defaults() {
        assert_eq!(
            retry_from(None, Some(60)),
            Retry {
                attempts: 185,
                max_age_seconds: 60
            }
        );
    }

    #[test]
    fn a_config_read_without_values_has_lambdas_defaults() {
        let wanted = super::super::invoke_config_spec(
            "charge:live",
            "arn:aws:sqs:eu-west-1:123456789012:complete",
        )
        .expect("a function");
        let bare = GetFunctionEventInvokeConfigOutput::builder().build();
        let read = invoke_config_from(&wanted, &bare);
        assert_eq!(read.name(), "charge:live");
        assert_eq!(read.retry_attempts, 2);
        assert_eq!(read.max_event_age_seconds, 21_600);
        assert_eq!((read.on_success, read.on_failure), (None, None));

        let only_failure = GetFunctionEventInvokeConfigOutput::builder()
            .maximum_retry_attempts(1)
            .destination_config(
                lambda::DestinationConfig::builder()
                    .on_success(lambda::OnSuccess::builder().destination("").build())
                    .on_failure(lambda::OnFailure::builder().destination("arn:q").build())
                    .build(),
            )
            .build();
        let read = invoke_config_from(&wanted, &only_failure);
        assert_eq!(read.retry_attempts, 1);
        assert_eq!(read.on_success, None);
        assert_eq!(read.on_failure.as_deref(), Some("arn:q"));
    }

    #[test]
    fn a_schedule_target_carries_the_input_and_the_retry_policy() {
        let spec = ScheduleSpec {
            name: "n".into(),
            expression: "rate(1 hour)".into(),
            timezone: "UTC".into(),
            flexible_window: "OFF".into(),
            target_arn: "arn:aws:lambda:eu-west-1:1:function:t".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            input: serde_json::json!({"workflow": "n"}),
            retry: Some(super::super::SCHEDULE_RETRY),
            state: "ENABLED".into(),
            description: "d".into(),
        };
        let target = schedule_target(&spec).expect("a target");
        assert_eq!(target.input(), Some(r#"{"workflow":"n"}"#));
        assert_eq!(
            target
                .retry_policy()
                .and_then(|r| r.maximum_event_age_in_seconds()),
            Some(3600)
        );
    }
}
