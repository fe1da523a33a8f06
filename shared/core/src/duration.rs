//! Durations as written in workflow files: `<n>ms|s|m|h|d`.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest duration a workflow may state: 366 days. Larger values are refused at
/// validation so that no later arithmetic on them can overflow.
pub const MAX_DURATION_MS: u64 = 366 * 24 * 3600 * 1000;

/// A span of time with millisecond resolution, parsed from `<n>ms|s|m|h|d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    millis: u64,
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not of the form `<n><unit>`.
    #[error("invalid duration {0:?}: expected <number><unit> with unit ms, s, m, h or d")]
    Syntax(String),
    /// Larger than [`MAX_DURATION_MS`].
    #[error("duration {0:?} is longer than the limit of 366d")]
    TooLong(String),
}

impl Duration {
    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self { millis }
    }

    /// A duration of `secs` seconds, saturating.
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Length in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// True for a zero-length duration.
    pub const fn is_zero(self) -> bool {
        self.millis == 0
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || DurationError::Syntax(text.to_owned());
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(syntax)?;
        let (digits, unit) = text.split_at(split);
        if digits.is_empty() {
            return Err(syntax());
        }
        let factor: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(syntax()),
        };
        let too_long = || DurationError::TooLong(text.to_owned());
        let n: u64 = digits.parse().map_err(|_| too_long())?;
        let millis = n.checked_mul(factor).ok_or_else(too_long)?;
        if millis > MAX_DURATION_MS {
            return Err(too_long());
        }
        Ok(Self { millis })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ];
        for (size, unit) in units {
            if self.millis != 0 && self.millis.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.millis / size);
            }
        }
        write!(f, "{}ms", self.millis)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(ms|s|m|h|d)$",
            "description": "A duration: a whole number and a unit, ms, s, m, h or d (at most 366d)."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("250ms", 250),
            ("10s", 10_000),
            ("5m", 300_000),
            ("3h", 10_800_000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                text.parse::<Duration>().unwrap().as_millis(),
                millis,
                "{text}"
            );
        }
        assert_eq!("2d".parse::<Duration>().unwrap().as_millis(), 172_800_000);
    }

    #[test]
    fn refuses_bad_syntax_naming_the_value() {
        for text in ["", "10", "s", "1.5s", "-1s", "10 s", "10sec", "1w"] {
            let err = text.parse::<Duration>().unwrap_err();
            assert_eq!(err, DurationError::Syntax(text.to_owned()), "{text}");
        }
    }

    #[test]
    fn huge_values_are_refused_not_wrapped() {
        for text in ["367d", "99999999999999999999999s", "18446744073709551615d"] {
            assert!(
                matches!(text.parse::<Duration>(), Err(DurationError::TooLong(_))),
                "{text}"
            );
        }
        assert_eq!(
            "366d".parse::<Duration>().unwrap().as_millis(),
            MAX_DURATION_MS
        );
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        for (text, shown) in [
            ("90s", "90s"),
            ("120s", "2m"),
            ("1500ms", "1500ms"),
            ("0s", "0ms"),
        ] {
            assert_eq!(text.parse::<Duration>().unwrap().to_string(), shown);
        }
    }
}
