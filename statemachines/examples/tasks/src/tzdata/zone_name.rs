//! What a tzdb zone name says about its place: `Area/[Subarea/]Location`, e.g.
//! `America/Argentina/Buenos_Aires`. The area is the continent or ocean, which the examples
//! call the region.

use serde::{Deserialize, Serialize};

/// The areas tzdb uses as the first part of a geographic zone name.
pub const REGIONS: [&str; 10] = [
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
];

/// The parts of a zone name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneName {
    /// Continent or ocean, one of [`REGIONS`].
    pub region: String,
    /// The middle part of three-part names (`Argentina`, `Indiana`), with spaces.
    pub subregion: Option<String>,
    /// The principal location, with spaces instead of underscores.
    pub city: String,
}

/// Split a zone name into region, optional subregion and city.
pub fn parse_zone_name(name: &str) -> Result<ZoneName, String> {
    let parts: Vec<&str> = name.split('/').collect();
    let (region, middle, city) = match parts.as_slice() {
        [region, city] => (*region, None, *city),
        [region, middle, city] => (*region, Some(*middle), *city),
        _ => {
            return Err(format!(
                "zone name {name:?}: expected Area/Location or Area/Sub/Location"
            ));
        }
    };
    if !REGIONS.contains(&region) {
        return Err(format!("zone name {name:?}: unknown region {region:?}"));
    }
    for part in [Some(city), middle].into_iter().flatten() {
        check_part(name, part)?;
    }
    Ok(ZoneName {
        region: region.to_owned(),
        subregion: middle.map(readable),
        city: readable(city),
    })
}

/// tzdb name parts are ASCII letters, digits, `_`, `-` and `+`, and start with a letter.
fn check_part(name: &str, part: &str) -> Result<(), String> {
    let starts_with_letter = part.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let allowed = part
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c));
    if starts_with_letter && allowed {
        Ok(())
    } else {
        Err(format!("zone name {name:?}: invalid part {part:?}"))
    }
}

fn readable(part: &str) -> String {
    part.replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_part_name_gives_region_and_city() {
        let parsed = parse_zone_name("Europe/Andorra").expect("valid");
        assert_eq!(parsed.region, "Europe");
        assert_eq!(parsed.subregion, None);
        assert_eq!(parsed.city, "Andorra");
    }

    #[test]
    fn three_part_name_gives_subregion_with_spaces() {
        let parsed = parse_zone_name("America/North_Dakota/New_Salem").expect("valid");
        assert_eq!(parsed.region, "America");
        assert_eq!(parsed.subregion.as_deref(), Some("North Dakota"));
        assert_eq!(parsed.city, "New Salem");
        let parsed = parse_zone_name("America/Argentina/Buenos_Aires").expect("valid");
        assert_eq!(parsed.subregion.as_deref(), Some("Argentina"));
        assert_eq!(parsed.city, "Buenos Aires");
    }

    #[test]
    fn oceans_and_poles_are_regions() {
        for name in [
            "Indian/Maldives",
            "Antarctica/Casey",
            "Pacific/Port_Moresby",
        ] {
            assert!(parse_zone_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn non_geographic_or_malformed_names_are_refused() {
        for bad in [
            "UTC",
            "Etc/GMT+5",
            "Mars/Olympus",
            "Europe/",
            "Europe//Paris",
            "a/b/c/d",
        ] {
            assert!(parse_zone_name(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
