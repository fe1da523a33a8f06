//! aloft-trigger: starts runs. Invoked directly, by EventBridge Scheduler for time
//! triggers, and by EventBridge rules for event triggers.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aloft_function::serve_trigger().await
}
