//! ISO 6709 coordinates as tzdb writes them: `±DDMM±DDDMM` or `±DDMMSS±DDDMMSS`,
//! latitude first (+ is north), then longitude (+ is east).

use serde::{Deserialize, Serialize};

/// A position in decimal degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatLon {
    /// Degrees north (negative: south), in [-90, 90].
    pub latitude: f64,
    /// Degrees east (negative: west), in [-180, 180].
    pub longitude: f64,
}

/// Parse a tzdb coordinate string into decimal degrees.
pub fn parse_iso6709(text: &str) -> Result<LatLon, String> {
    if !text.is_ascii() {
        return Err(format!("coordinates {text:?}: not ASCII"));
    }
    let split = text
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '+' || c == '-')
        .map(|(index, _)| index)
        .ok_or_else(|| format!("coordinates {text:?}: expected ±latitude±longitude"))?;
    let (lat_text, lon_text) = text.split_at(split);

    let seconds = match (lat_text.len(), lon_text.len()) {
        (5, 6) => false,
        (7, 8) => true,
        _ => {
            return Err(format!(
                "coordinates {text:?}: expected ±DDMM±DDDMM or ±DDMMSS±DDDMMSS"
            ));
        }
    };
    let latitude =
        parse_angle(lat_text, 2, seconds, 90).map_err(|e| format!("coordinates {text:?}: {e}"))?;
    let longitude =
        parse_angle(lon_text, 3, seconds, 180).map_err(|e| format!("coordinates {text:?}: {e}"))?;
    Ok(LatLon {
        latitude,
        longitude,
    })
}

/// One signed angle: sign, `degree_digits` digits of degrees, two of minutes and, when
/// `seconds`, two of seconds.
fn parse_angle(text: &str, degree_digits: usize, seconds: bool, limit: u32) -> Result<f64, String> {
    let (sign, digits) = match text.split_at(1) {
        ("+", digits) => (1.0, digits),
        ("-", digits) => (-1.0, digits),
        _ => return Err(format!("angle {text:?} has no sign")),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("angle {text:?} has a non-digit"));
    }

    let number = |range: std::ops::Range<usize>| digits[range].parse::<u32>().unwrap_or(0);
    let degrees = number(0..degree_digits);
    let minutes = number(degree_digits..degree_digits + 2);
    let secs = if seconds {
        number(degree_digits + 2..degree_digits + 4)
    } else {
        0
    };
    if minutes >= 60 || secs >= 60 {
        return Err(format!(
            "angle {text:?} has minutes or seconds of 60 or more"
        ));
    }

    let total_seconds = degrees * 3600 + minutes * 60 + secs;
    if total_seconds > limit * 3600 {
        return Err(format!("angle {text:?} is beyond {limit} degrees"));
    }
    Ok(sign * f64::from(total_seconds) / 3600.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn degrees_minutes_form_parses() {
        let at = parse_iso6709("+4230+00131").expect("Andorra parses");
        assert!(close(at.latitude, 42.5), "{at:?}");
        assert!(close(at.longitude, 1.0 + 31.0 / 60.0), "{at:?}");
    }

    #[test]
    fn degrees_minutes_seconds_form_parses() {
        let at = parse_iso6709("+393200-1050000").expect("Denver parses");
        assert!(close(at.latitude, 39.0 + 32.0 / 60.0), "{at:?}");
        assert!(close(at.longitude, -105.0), "{at:?}");
    }

    #[test]
    fn southern_and_western_signs_are_negative() {
        let at = parse_iso6709("-3352+15113").expect("Sydney parses");
        assert!(close(at.latitude, -(33.0 + 52.0 / 60.0)), "{at:?}");
        assert!(close(at.longitude, 151.0 + 13.0 / 60.0), "{at:?}");
        let at = parse_iso6709("-5448-06818").expect("Ushuaia parses");
        assert!(at.latitude < 0.0 && at.longitude < 0.0, "{at:?}");
    }

    #[test]
    fn malformed_coordinates_are_refused() {
        for bad in [
            "",
            "4230+00131",
            "+4230",
            "+423+00131",
            "+4230+0013",
            "+4230+0013100",
            "+4260+00131",
            "+4230+00131x",
            "+9100+00000",
            "+0000+18100",
            "+42a0+00131",
            "+4230+-0131",
            "±4230+00131",
        ] {
            assert!(parse_iso6709(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn poles_and_antimeridian_are_in_range() {
        let at = parse_iso6709("-9000+18000").expect("extremes parse");
        assert!(
            close(at.latitude, -90.0) && close(at.longitude, 180.0),
            "{at:?}"
        );
    }
}
