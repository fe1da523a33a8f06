//! `aloft deploy FILE... --backend aws`: store the workflows' definitions, and make the
//! event-invoke configs of their task functions, their EventBridge Scheduler schedules
//! and their EventBridge rules match the files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use aloft_aws::deploy::{
    Action, Change, Clients, DeployError, DeploySettings, Plan, WorkflowFile, desired,
    has_lambda_tasks, plan,
};
use aloft_core::source::load_path;

use crate::Output;
use crate::aws::BackendKind;
use crate::out::{errln, outln};

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Workflow files (YAML or JSON).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where to deploy: only `aws` has anything to deploy to (the embedded backend's
    /// schedules are fired by `aloft serve`).
    #[arg(long, value_enum, default_value_t, env = "ALOFT_BACKEND")]
    backend: BackendKind,
    /// Print what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also delete the schedules and rules deploy made for workflows not given here.
    #[arg(long)]
    prune: bool,
    /// Print JSON on stdout.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    /// The DynamoDB table the definitions are stored in.
    #[arg(long, env = "ALOFT_TABLE")]
    table: Option<String>,
    /// The trigger function's ARN: the target of every schedule, and of every rule
    /// unless --rule-target-arn is given.
    #[arg(long, env = "ALOFT_TRIGGER_ARN")]
    trigger_arn: Option<String>,
    /// The IAM role EventBridge Scheduler assumes to invoke the trigger function.
    #[arg(long, env = "ALOFT_SCHEDULER_ROLE_ARN")]
    scheduler_role_arn: Option<String>,
    /// The Scheduler schedule group of aloft's schedules (created when missing).
    #[arg(long, env = "ALOFT_SCHEDULE_GROUP", default_value = "aloft")]
    schedule_group: String,
    /// The EventBridge bus event producers publish to, where the rules go.
    #[arg(long, env = "ALOFT_TRIGGER_BUS", default_value = "default")]
    event_bus: String,
    /// The rules' target instead of the trigger function (e.g. a queue that feeds it).
    #[arg(long, env = "ALOFT_RULE_TARGET_ARN")]
    rule_target_arn: Option<String>,
    /// Rule names start with this and a dash.
    #[arg(long, env = "ALOFT_RULE_PREFIX", default_value = "aloft")]
    rule_prefix: String,
    /// The complete queue's ARN (the stack's output CompleteQueueArn): both destinations
    /// of the event-invoke config of every function a `lambda` task names.
    #[arg(long, env = "ALOFT_COMPLETE_QUEUE_ARN")]
    complete_queue_arn: Option<String>,
    /// The complete queue's URL, whose ARN SQS tells when --complete-queue-arn is not
    /// given.
    #[arg(long, env = "ALOFT_COMPLETE_QUEUE_URL")]
    complete_queue_url: Option<String>,
    /// One endpoint for every AWS service (a local stack). Without it the SDK reads
    /// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>.
    #[arg(long)]
    endpoint_url: Option<String>,
}

/// Usage errors exit 2, like an invalid file; failures on AWS exit 1.
const USAGE: u8 = 2;

/// `aloft deploy`.
pub async fn deploy(args: DeployArgs) -> anyhow::Result<ExitCode> {
    crate::progress::init_plain_logging();
    if args.backend != BackendKind::Aws {
        errln!(
            "error: deploy works on the AWS backend: pass --backend aws (on this machine, \
             `aloft serve FILE...` fires schedules)"
        );
        return Ok(ExitCode::from(USAGE));
    }
    let Some(files) = load(&args.files) else {
        return Ok(ExitCode::from(USAGE));
    };
    let Some(table) = args.table.as_deref().filter(|t| !t.is_empty()) else {
        errln!(
            "error: ALOFT_TABLE is not set: deploy stores the definitions in aloft's table (--table)"
        );
        return Ok(ExitCode::from(USAGE));
    };
    let clients = Clients::connect(table, args.endpoint_url.as_deref()).await;
    let mut settings = settings(&args);
    match complete_queue_arn(&args, &files, &clients).await {
        Ok(arn) => settings.complete_queue_arn = arn,
        Err(error) => {
            errln!(
                "error: {error} (the complete queue of --complete-queue-url or \
                 ALOFT_COMPLETE_QUEUE_URL; --complete-queue-arn gives its ARN instead)"
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    let wanted = match desired(&files, &settings) {
        Ok(wanted) => wanted,
        Err(error) => {
            errln!("error: {error}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let planned = match clients.read(&wanted, args.prune).await {
        Ok(current) => plan(&wanted, &current, args.prune),
        Err(error) => Err(error),
    };
    let plan = match planned {
        Ok(plan) => plan,
        Err(error) => {
            errln!("error: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if !args.dry_run
        && let Err(error) = clients.apply(&wanted.settings, &plan).await
    {
        errln!("error: {error}");
        errln!(
            "the changes before that one were made; deploy again to make the rest (what is \
             already done shows as unchanged)"
        );
        return Ok(ExitCode::FAILURE);
    }
    print(&plan, args.dry_run, args.output);
    Ok(ExitCode::SUCCESS)
}

/// `--complete-queue-arn`; without it, the ARN SQS tells for `--complete-queue-url`,
/// asked only when a `lambda` task needs it.
async fn complete_queue_arn(
    args: &DeployArgs,
    files: &[WorkflowFile],
    clients: &Clients,
) -> Result<Option<String>, DeployError> {
    if let Some(arn) = given(&args.complete_queue_arn) {
        return Ok(Some(arn));
    }
    match given(&args.complete_queue_url) {
        Some(url) if has_lambda_tasks(files) => clients.queue_arn(&url).await.map(Some),
        _ => Ok(None),
    }
}

/// A setting that was given and is not empty.
fn given(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}

fn settings(args: &DeployArgs) -> DeploySettings {
    DeploySettings {
        schedule_group: args.schedule_group.clone(),
        event_bus: args.event_bus.clone(),
        rule_prefix: args.rule_prefix.clone(),
        trigger_arn: given(&args.trigger_arn),
        scheduler_role_arn: given(&args.scheduler_role_arn),
        rule_target_arn: given(&args.rule_target_arn),
        complete_queue_arn: given(&args.complete_queue_arn),
    }
}

/// Every file loaded and valid, or `None` once each problem is printed.
fn load(paths: &[PathBuf]) -> Option<Vec<WorkflowFile>> {
    let mut files = Vec::with_capacity(paths.len());
    let mut invalid = false;
    for path in paths {
        match load_path(path) {
            Ok(definition) => files.push(WorkflowFile {
                file: path.display().to_string(),
                definition,
            }),
            Err(problems) => {
                errln!("{problems}");
                invalid = true;
            }
        }
    }
    (!invalid).then_some(files)
}

fn print(plan: &Plan, dry_run: bool, output: Output) {
    match output {
        Output::Json => outln!("{}", to_json(plan, dry_run)),
        Output::Text => {
            for change in &plan.changes {
                print_change(change);
            }
            outln!("{}", summary(plan, dry_run));
        }
    }
}

fn to_json(plan: &Plan, dry_run: bool) -> serde_json::Value {
    json!({
        "dry_run": dry_run,
        "changed": plan.changes_anything() && !dry_run,
        "create": plan.count(Action::Create),
        "update": plan.count(Action::Update),
        "delete": plan.count(Action::Delete),
        "unchanged": plan.count(Action::Unchanged),
        "changes": plan.changes,
    })
}

/// `update     schedule aloft/nightly  (nightly.yaml)` or
/// `update     event-invoke config payments  (charge.yaml)`, then one line per field.
fn print_change(change: &Change) {
    let name = match &change.place {
        Some(place) => format!("{place}/{}", change.name),
        None => change.name.clone(),
    };
    let source = match (&change.file, &change.workflow) {
        (Some(file), _) => format!("  ({file})"),
        (None, Some(workflow)) => format!("  (workflow {workflow})"),
        (None, None) => String::new(),
    };
    outln!("{:<10} {} {name}{source}", change.action, change.kind);
    for field in &change.fields {
        match (&field.old, &field.new) {
            (Some(old), Some(new)) => outln!("             {}: {old} -> {new}", field.field),
            (None, Some(new)) => outln!("             {}: {new}", field.field),
            (Some(old), None) => outln!("             {}: {old} -> (none)", field.field),
            (None, None) => {}
        }
    }
}

fn summary(plan: &Plan, dry_run: bool) -> String {
    let unchanged = plan.count(Action::Unchanged);
    if !plan.changes_anything() {
        let what = if dry_run {
            "dry run: no changes"
        } else {
            "no changes"
        };
        return format!("{what}: AWS matches the files ({unchanged} unchanged)");
    }
    let (create, update, delete) = (
        plan.count(Action::Create),
        plan.count(Action::Update),
        plan.count(Action::Delete),
    );
    if dry_run {
        format!(
            "dry run: would create {create}, update {update}, delete {delete} ({unchanged} \
             unchanged); nothing was changed"
        )
    } else {
        format!(
            "deployed: {create} created, {update} updated, {delete} deleted ({unchanged} unchanged)"
        )
    }
}
