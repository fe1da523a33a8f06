//! aloft-plan: plans runs: marks ready tasks and dispatches them, settles runs. Fed by the plan queue.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aloft_function::serve_queue("plan").await
}
