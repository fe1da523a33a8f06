//! aloft-dispatch: starts task attempts within their concurrency limits. Fed by the dispatch queue.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aloft_function::serve_queue("dispatch").await
}
