//! Where aloft's AWS resources are: from flags, or from the environment the SAM template
//! gives the functions.

use crate::invoker::Destinations;

/// The queue URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrls {
    /// Planning requests and deadline checks.
    pub plan: String,
    /// Task starts.
    pub dispatch: String,
    /// Results, destination records and timeout checks.
    pub complete: String,
}

/// Names and knobs of the AWS backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The DynamoDB table.
    pub table: String,
    /// The three queues.
    pub queues: QueueUrls,
    /// The EventBridge bus lifecycle events go to.
    pub event_bus: String,
    /// Receives after which a failing message is given up (the queues' redrive
    /// `maxReceiveCount`).
    pub max_receives: u32,
    /// How results of `lambda` tasks come back.
    pub destinations: Destinations,
    /// Days a run's history is kept after it is written (`ALOFT_RUN_RETENTION_DAYS`,
    /// the SAM template's `RunRetentionDays`); 0, the default, keeps it.
    pub run_retention_days: u32,
    /// An endpoint for every service, given explicitly (a flag). Without it aws-config
    /// reads `AWS_ENDPOINT_URL` and the service-specific `AWS_ENDPOINT_URL_<SERVICE>`
    /// (e.g. `AWS_ENDPOINT_URL_LAMBDA` for a Lambda emulator beside a local stack).
    pub endpoint_url: Option<String>,
}

/// A setting that is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// Settings from the environment: `ALOFT_TABLE`, `ALOFT_PLAN_QUEUE_URL`,
    /// `ALOFT_DISPATCH_QUEUE_URL`, `ALOFT_COMPLETE_QUEUE_URL`, `ALOFT_EVENT_BUS`
    /// (default `default`), `ALOFT_MAX_RECEIVES` (default 5),
    /// `ALOFT_RUN_RETENTION_DAYS` (default 0: kept) and `ALOFT_LAMBDA_DESTINATIONS`
    /// (`aws` or `emulate`, default `aws`).
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Settings from any lookup of names to values.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let required = |name: &str| {
            lookup(name).ok_or_else(|| {
                SettingsError(format!(
                    "{name} is not set: the AWS backend needs the table and the three queue \
                     URLs (see `scripts/aws-stack` for a local stack)"
                ))
            })
        };
        let max_receives = match lookup("ALOFT_MAX_RECEIVES") {
            None => 5,
            Some(text) => text.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                SettingsError(format!(
                    "ALOFT_MAX_RECEIVES must be a whole number above 0, not {text:?}"
                ))
            })?,
        };
        let run_retention_days = match lookup("ALOFT_RUN_RETENTION_DAYS") {
            None => 0,
            Some(text) => text.parse().map_err(|_| {
                SettingsError(format!(
                    "ALOFT_RUN_RETENTION_DAYS must be a whole number of days (0 keeps runs), \
                     not {text:?}"
                ))
            })?,
        };
        let destinations = match lookup("ALOFT_LAMBDA_DESTINATIONS").as_deref() {
            None | Some("aws") => Destinations::Aws,
            Some("emulate") => Destinations::Emulate,
            Some(other) => {
                return Err(SettingsError(format!(
                    "ALOFT_LAMBDA_DESTINATIONS must be aws or emulate, not {other:?}"
                )));
            }
        };
        Ok(Self {
            table: required("ALOFT_TABLE")?,
            queues: QueueUrls {
                plan: required("ALOFT_PLAN_QUEUE_URL")?,
                dispatch: required("ALOFT_DISPATCH_QUEUE_URL")?,
                complete: required("ALOFT_COMPLETE_QUEUE_URL")?,
            },
            event_bus: lookup("ALOFT_EVENT_BUS").unwrap_or_else(|| "default".to_owned()),
            max_receives,
            destinations,
            run_retention_days,
            endpoint_url: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const BASE: [(&str, &str); 4] = [
        ("ALOFT_TABLE", "t"),
        ("ALOFT_PLAN_QUEUE_URL", "http://q/plan"),
        ("ALOFT_DISPATCH_QUEUE_URL", "http://q/dispatch"),
        ("ALOFT_COMPLETE_QUEUE_URL", "http://q/complete"),
    ];

    #[test]
    fn defaults_fill_what_is_optional() {
        let settings = Settings::from_lookup(lookup(&BASE)).expect("settings");
        assert_eq!(settings.table, "t");
        assert_eq!(settings.queues.complete, "http://q/complete");
        assert_eq!(settings.event_bus, "default");
        assert_eq!(settings.max_receives, 5);
        assert_eq!(settings.destinations, Destinations::Aws);
        assert_eq!(settings.run_retention_days, 0);
        assert_eq!(settings.endpoint_url, None);
    }

    #[test]
    fn a_missing_queue_is_named() {
        let error = Settings::from_lookup(lookup(&BASE[..3])).expect_err("no complete queue");
        assert!(
            error.0.starts_with("ALOFT_COMPLETE_QUEUE_URL is not set"),
            "{error}"
        );
    }

    #[test]
    fn malformed_values_are_refused_with_the_value() {
        let mut pairs = BASE.to_vec();
        pairs.push(("ALOFT_MAX_RECEIVES", "0"));
        let error = Settings::from_lookup(lookup(&pairs)).expect_err("zero receives");
        assert!(error.0.contains("\"0\""), "{error}");
        let mut pairs = BASE.to_vec();
        pairs.push(("ALOFT_LAMBDA_DESTINATIONS", "sqs"));
        let error = Settings::from_lookup(lookup(&pairs)).expect_err("unknown mode");
        assert!(error.0.contains("\"sqs\""), "{error}");
        let mut pairs = BASE.to_vec();
        pairs.push(("ALOFT_RUN_RETENTION_DAYS", "90d"));
        let error = Settings::from_lookup(lookup(&pairs)).expect_err("a unit");
        assert!(error.0.contains("\"90d\""), "{error}");
    }
}
