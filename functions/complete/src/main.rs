//! aloft-complete: records results (Lambda destination records) and timeout checks, then retries or settles. Fed by the complete queue.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aloft_function::serve_queue("complete").await
}
