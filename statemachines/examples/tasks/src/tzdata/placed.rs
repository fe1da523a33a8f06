//! Zones interpreted: decimal coordinates, region and city from the name, and country
//! names joined in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::coords::parse_iso6709;
use super::zone_name::parse_zone_name;
use super::{Country, ZoneRow};

/// A country named by a zone, with its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountryRef {
    /// ISO 3166-1 alpha-2 code.
    pub code: String,
    /// English name from `iso3166`.
    pub name: String,
}

/// A zone with everything the examples derive from its row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacedZone {
    /// Zone name, e.g. `America/Argentina/Salta`.
    pub name: String,
    /// Continent or ocean from the name.
    pub region: String,
    /// Middle part of a three-part name.
    pub subregion: Option<String>,
    /// Principal location, readable.
    pub city: String,
    /// Decimal degrees north.
    pub latitude: f64,
    /// Decimal degrees east.
    pub longitude: f64,
    /// The ISO 6709 text it came from.
    pub coordinates: String,
    /// tzdb's comment, if any.
    pub comment: Option<String>,
    /// Countries, principal first.
    pub countries: Vec<CountryRef>,
}

/// Interpret one zone row; `names` maps country codes to names.
pub fn place_zone(row: &ZoneRow, names: &BTreeMap<&str, &str>) -> Result<PlacedZone, String> {
    let position = parse_iso6709(&row.coordinates).map_err(|e| format!("zone {}: {e}", row.tz))?;
    let parsed = parse_zone_name(&row.tz)?;
    let countries = row
        .countries
        .iter()
        .map(|code| match names.get(code.as_str()) {
            Some(name) => Ok(CountryRef {
                code: code.clone(),
                name: (*name).to_owned(),
            }),
            None => Err(format!("zone {}: unknown country code {code:?}", row.tz)),
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(PlacedZone {
        name: row.tz.clone(),
        region: parsed.region,
        subregion: parsed.subregion,
        city: parsed.city,
        latitude: position.latitude,
        longitude: position.longitude,
        coordinates: row.coordinates.clone(),
        comment: row.comment.clone(),
        countries,
    })
}

/// Interpret every zone row, joining names from `countries`.
pub fn place_zones(rows: &[ZoneRow], countries: &[Country]) -> Result<Vec<PlacedZone>, String> {
    let names: BTreeMap<&str, &str> = countries
        .iter()
        .map(|c| (c.code.as_str(), c.name.as_str()))
        .collect();
    rows.iter().map(|row| place_zone(row, &names)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placed_zone_joins_country_names_in_order() {
        let row = ZoneRow {
            tz: "Asia/Dubai".into(),
            countries: vec!["AE".into(), "OM".into()],
            coordinates: "+2518+05518".into(),
            comment: Some("Crozet".into()),
        };
        let names = BTreeMap::from([("AE", "United Arab Emirates"), ("OM", "Oman")]);
        let zone = place_zone(&row, &names).expect("valid");
        assert_eq!(zone.region, "Asia");
        assert_eq!(zone.city, "Dubai");
        assert_eq!(
            zone.countries[1],
            CountryRef {
                code: "OM".into(),
                name: "Oman".into()
            }
        );
        assert!((zone.latitude - (25.0 + 18.0 / 60.0)).abs() < 1e-9);
    }

    #[test]
    fn unknown_country_code_is_an_error() {
        let row = ZoneRow {
            tz: "Asia/Dubai".into(),
            countries: vec!["ZZ".into()],
            coordinates: "+2518+05518".into(),
            comment: None,
        };
        let err = place_zone(&row, &BTreeMap::new()).expect_err("ZZ unknown");
        assert!(err.contains("\"ZZ\""), "{err}");
    }
}
