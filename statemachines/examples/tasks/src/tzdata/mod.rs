//! The two tzdb tables the examples use, as shipped in `etl/data/` (CSV with a header
//! row): `iso3166.csv` (country codes and names) and `zone1970.csv` (time zones with
//! their countries, coordinates and comments). Rows are validated as they are read.

pub mod coords;
pub mod placed;
pub mod zone_name;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::csv::{self, Record};
use crate::error::{Error, Result};

/// Header of `iso3166.csv`.
pub const COUNTRY_HEADER: [&str; 2] = ["code", "name"];
/// Header of `zone1970.csv`.
pub const ZONE_HEADER: [&str; 4] = ["country_codes", "coordinates", "tz", "comments"];

/// One row of `iso3166.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Country {
    /// ISO 3166-1 alpha-2 code.
    pub code: String,
    /// The usual English name, as tzdb spells it.
    pub name: String,
}

/// One row of `zone1970.csv`, checked but not yet interpreted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneRow {
    /// The zone name, e.g. `Europe/Andorra`.
    pub tz: String,
    /// Countries the zone covers, principal country first.
    pub countries: Vec<String>,
    /// ISO 6709 position of the principal location.
    pub coordinates: String,
    /// Which part of a country the zone covers; tzdb writes one only where a country has
    /// several zones.
    pub comment: Option<String>,
}

/// Read and validate `iso3166.csv`: two-letter codes, non-empty names, no duplicates.
pub fn read_countries(path: &Path) -> Result<Vec<Country>> {
    let records = csv::read_table(path, &COUNTRY_HEADER)?;
    let mut seen = BTreeSet::new();
    let mut countries = Vec::with_capacity(records.len());
    for Record { line, fields } in records {
        let at = || format!("{}:{line}", path.display());
        let [code, name] = <[String; 2]>::try_from(fields)
            .map_err(|_| Error::new(format!("{}: wrong field count", at())))?;
        check_country_code(&code).map_err(|e| Error::new(format!("{}: {e}", at())))?;
        if name.trim().is_empty() {
            return Err(Error::new(format!(
                "{}: country {code} has an empty name",
                at()
            )));
        }
        if !seen.insert(code.clone()) {
            return Err(Error::new(format!(
                "{}: duplicate country code {code:?}",
                at()
            )));
        }
        countries.push(Country { code, name });
    }
    Ok(countries)
}

/// Read and validate `zone1970.csv`: country codes, coordinates and zone names must be
/// well formed, and no zone may appear twice.
pub fn read_zones(path: &Path) -> Result<Vec<ZoneRow>> {
    let records = csv::read_table(path, &ZONE_HEADER)?;
    let mut seen = BTreeSet::new();
    let mut zones = Vec::with_capacity(records.len());
    for record in records {
        let line = record.line;
        let zone =
            zone_row(record).map_err(|e| Error::new(format!("{}:{line}: {e}", path.display())))?;
        if !seen.insert(zone.tz.clone()) {
            return Err(Error::new(format!(
                "{}:{line}: duplicate zone {:?}",
                path.display(),
                zone.tz
            )));
        }
        zones.push(zone);
    }
    Ok(zones)
}

fn zone_row(record: Record) -> std::result::Result<ZoneRow, String> {
    let [codes, coordinates, tz, comment] =
        <[String; 4]>::try_from(record.fields).map_err(|_| "wrong field count".to_owned())?;
    let countries: Vec<String> = codes.split(',').map(str::to_owned).collect();
    for code in &countries {
        check_country_code(code)?;
    }
    coords::parse_iso6709(&coordinates)?;
    zone_name::parse_zone_name(&tz)?;
    let comment = Some(comment).filter(|text| !text.trim().is_empty());
    Ok(ZoneRow {
        tz,
        countries,
        coordinates,
        comment,
    })
}

fn check_country_code(code: &str) -> std::result::Result<(), String> {
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!(
            "invalid country code {code:?}: expected two capital letters"
        ))
    }
}

/// Check that every country a zone names is in the country table.
pub fn check_zone_countries(zones: &[ZoneRow], countries: &[Country]) -> Result<()> {
    let known: BTreeSet<&str> = countries.iter().map(|c| c.code.as_str()).collect();
    for zone in zones {
        if let Some(code) = zone
            .countries
            .iter()
            .find(|code| !known.contains(code.as_str()))
        {
            return Err(Error::new(format!(
                "zone {} names country {code:?}, which is not in the country table",
                zone.tz
            )));
        }
    }
    Ok(())
}

/// How many zones name each country, for every country in `countries` (zero included).
pub fn zones_per_country<'a>(
    zones: &[ZoneRow],
    countries: &'a [Country],
) -> BTreeMap<&'a str, Vec<String>> {
    let mut per_country: BTreeMap<&str, Vec<String>> = countries
        .iter()
        .map(|c| (c.code.as_str(), Vec::new()))
        .collect();
    for zone in zones {
        for code in &zone.countries {
            if let Some(list) = per_country.get_mut(code.as_str()) {
                list.push(zone.tz.clone());
            }
        }
    }
    per_country
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> Record {
        Record {
            line: 2,
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    #[test]
    fn zone_row_splits_countries_and_drops_empty_comment() {
        let row = zone_row(record(&["AE,OM", "+2518+05518", "Asia/Dubai", ""])).expect("valid");
        assert_eq!(row.countries, vec!["AE", "OM"]);
        assert_eq!(row.comment, None);
    }

    #[test]
    fn zone_row_refuses_bad_values() {
        assert!(zone_row(record(&["ae", "+2518+05518", "Asia/Dubai", ""])).is_err());
        assert!(zone_row(record(&["AE,", "+2518+05518", "Asia/Dubai", ""])).is_err());
        assert!(zone_row(record(&["AE", "+2518", "Asia/Dubai", ""])).is_err());
        assert!(zone_row(record(&["AE", "+2518+05518", "Dubai", ""])).is_err());
    }

    #[test]
    fn unknown_zone_country_is_reported() {
        let countries = vec![Country {
            code: "AE".into(),
            name: "United Arab Emirates".into(),
        }];
        let zone = zone_row(record(&["AE,OM", "+2518+05518", "Asia/Dubai", ""])).expect("valid");
        let err = check_zone_countries(&[zone], &countries).expect_err("OM is unknown");
        assert!(err.to_string().contains("\"OM\""), "{err}");
    }
}
