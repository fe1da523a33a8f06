//! The work of `zone-summary`: gather zone names from an aloft task document, check each
//! one and count the distinct zones per region.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// The areas of the tz database: the part of a zone name before its first `/`.
pub const REGIONS: [&str; 11] = [
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Etc",
    "Europe",
    "Indian",
    "Pacific",
];

/// Why a document cannot be summarised. Neither is transient: the same document fails
/// the same way on every attempt.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    /// No zone list at all, or a list or name of the wrong shape.
    #[error("{0}")]
    InvalidInput(String),
    /// A well-formed name whose first part is not a tz database area.
    #[error("{path} is {zone}, whose region is not one of {}", REGIONS.join(", "))]
    UnknownRegion {
        /// Where the name was found, e.g. `input.zones[3]`.
        path: String,
        /// The name itself.
        zone: String,
    },
}

impl ZoneError {
    /// The Lambda `errorType` of this error: the variant's name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "InvalidInput",
            Self::UnknownRegion { .. } => "UnknownRegion",
        }
    }
}

/// Summarise the zones listed under `zones` in the run input and in every upstream
/// output: how many distinct zones, how many per region, and the largest region (the
/// first by name on a tie). A name listed twice counts once.
pub fn summarise(document: &Value) -> Result<Value, ZoneError> {
    let mut zones = BTreeSet::new();
    let mut repeats = 0_u64;
    for (path, list) in zone_lists(document)? {
        for (index, item) in list.iter().enumerate() {
            let zone = checked_zone(&format!("{path}[{index}]"), item)?;
            if !zones.insert(zone) {
                repeats += 1;
            }
        }
    }

    let mut by_region: BTreeMap<&str, u64> = BTreeMap::new();
    for zone in &zones {
        let region = zone.split('/').next().unwrap_or(zone);
        *by_region.entry(region).or_default() += 1;
    }
    let largest = by_region
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(region, _)| *region);

    Ok(json!({
        "zones": zones.len(),
        "repeats_ignored": repeats,
        "regions": by_region.len(),
        "by_region": by_region,
        "largest_region": largest,
    }))
}

/// Every `zones` list of the document with the path it was found at: the run input's
/// first, then each upstream output's in the document's order.
fn zone_lists(document: &Value) -> Result<Vec<(String, &Vec<Value>)>, ZoneError> {
    let mut found = Vec::new();
    if let Some(list) = document.pointer("/input/zones") {
        found.push(("input.zones".to_owned(), list));
    }
    let upstream = document.get("upstream").and_then(Value::as_object);
    for (task, output) in upstream.into_iter().flatten() {
        if let Some(list) = output.get("zones") {
            found.push((format!("upstream.{task}.zones"), list));
        }
    }
    if found.is_empty() {
        let message = "no zones: expected a `zones` list in the run input or an upstream output";
        return Err(ZoneError::InvalidInput(message.to_owned()));
    }

    found
        .into_iter()
        .map(|(path, list)| match list.as_array() {
            Some(items) => Ok((path, items)),
            None => Err(ZoneError::InvalidInput(format!(
                "{path} is {list}, not a list"
            ))),
        })
        .collect()
}

/// The zone name at `path`, if it is a string of the form `AREA/LOCATION[/...]` whose
/// parts are letters, digits, `_`, `-` and `+`, and whose area is a known region.
fn checked_zone<'a>(path: &str, item: &'a Value) -> Result<&'a str, ZoneError> {
    let Some(zone) = item.as_str() else {
        let message = format!("{path} is {item}, not a zone name");
        return Err(ZoneError::InvalidInput(message));
    };
    let part_ok = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
    };
    if !zone.split('/').all(part_ok) {
        let message = format!("{path} is {item}, not a zone name like Europe/Berlin");
        return Err(ZoneError::InvalidInput(message));
    }

    match zone.split_once('/') {
        Some((region, _)) if REGIONS.contains(&region) => Ok(zone),
        _ => Err(ZoneError::UnknownRegion {
            path: path.to_owned(),
            zone: zone.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload aloft sent to this function in a run of `workflow.yaml`.
    const FIXTURE: &str = include_str!("../fixtures/task-document.json");

    fn document(input: Value, upstream: Value) -> Value {
        json!({
            "run": {"id": "r", "workflow": "w", "attempt": 1, "scheduled_time": null},
            "input": input,
            "upstream": upstream,
        })
    }

    fn invalid(document: &Value) -> String {
        match summarise(document) {
            Err(ZoneError::InvalidInput(message)) => message,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn example_run_payload_is_counted_per_region() {
        let payload: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
        let expected = json!({
            "zones": 12,
            "repeats_ignored": 1,
            "regions": 7,
            "by_region": {"Africa": 2, "America": 4, "Asia": 2, "Australia": 1,
                          "Europe": 1, "Indian": 1, "Pacific": 1},
            "largest_region": "America",
        });
        assert_eq!(summarise(&payload), Ok(expected));
    }

    #[test]
    fn zones_from_input_and_every_upstream_count_once() {
        let doc = document(
            json!({"zones": ["Europe/Berlin", "Asia/Tokyo"]}),
            json!({"a": {"zones": ["Asia/Tokyo", "Europe/Paris"]}, "b": null, "c": [1]}),
        );
        let summary = summarise(&doc).expect("valid zones");
        assert_eq!(summary["zones"], 3);
        assert_eq!(summary["repeats_ignored"], 1);
        assert_eq!(summary["by_region"], json!({"Asia": 1, "Europe": 2}));
        assert_eq!(summary["largest_region"], "Europe");
    }

    #[test]
    fn a_tie_names_the_first_region_by_name() {
        let doc = document(
            json!({"zones": ["Pacific/Fiji", "Africa/Lagos"]}),
            json!({}),
        );
        assert_eq!(summarise(&doc).expect("valid")["largest_region"], "Africa");
    }

    #[test]
    fn an_empty_list_has_no_largest_region() {
        let doc = document(json!({"zones": []}), json!({}));
        let expected = json!({"zones": 0, "repeats_ignored": 0, "regions": 0,
                              "by_region": {}, "largest_region": null});
        assert_eq!(summarise(&doc), Ok(expected));
    }

    #[test]
    fn a_document_without_zones_is_invalid_input() {
        let message = invalid(&document(json!({"other": 1}), json!({"a": {"rows": 3}})));
        assert!(message.starts_with("no zones"), "{message}");
        assert_eq!(invalid(&json!({})), message);
    }

    #[test]
    fn malformed_lists_and_names_are_invalid_input_naming_the_value() {
        let not_list = document(json!({"zones": "Europe/Berlin"}), json!({}));
        assert_eq!(
            invalid(&not_list),
            r#"input.zones is "Europe/Berlin", not a list"#
        );
        let not_string = document(json!({}), json!({"zones": {"zones": ["Asia/Tokyo", 7]}}));
        assert_eq!(
            invalid(&not_string),
            "upstream.zones.zones[1] is 7, not a zone name"
        );
        for bad in [
            "",
            "Europe/",
            "Europe//Berlin",
            "Europe/Ber lin",
            "../etc/passwd",
        ] {
            let doc = document(json!({"zones": [bad]}), json!({}));
            let message = invalid(&doc);
            assert!(message.contains("not a zone name like"), "{bad}: {message}");
        }
    }

    #[test]
    fn a_zone_outside_the_tz_regions_is_an_unknown_region() {
        for zone in ["Mars/Olympus_Mons", "UTC", "europe/Berlin"] {
            let doc = document(json!({"zones": ["Asia/Tokyo", zone]}), json!({}));
            let error = summarise(&doc).expect_err("an unknown region");
            assert_eq!(error.kind(), "UnknownRegion");
            assert_eq!(
                error,
                ZoneError::UnknownRegion {
                    path: "input.zones[1]".to_owned(),
                    zone: zone.to_owned()
                }
            );
        }
    }
}
