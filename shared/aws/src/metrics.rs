//! Counting AWS requests by service and operation, as an SDK interceptor: every HTTP
//! request the SDK sends (retries included) is one count. The benchmark reads these to
//! report API calls per task.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Requests sent, by (service, operation). Clones share one tally.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    tally: Arc<Mutex<BTreeMap<(String, String), u64>>>,
}

impl CallCounter {
    /// A new, empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.lock().clone()
    }

    /// Forget every count.
    pub fn reset(&self) {
        self.lock().clear();
    }

    /// Count one request.
    pub fn record(&self, service: &str, operation: &str) {
        *self
            .lock()
            .entry((service.to_owned(), operation.to_owned()))
            .or_default() += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), u64>> {
        // Counts stay meaningful even if a holder panicked mid-increment.
        self.tally
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "aloft-call-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            self.record(metadata.service(), metadata.name());
        }
        Ok(())
    }
}
