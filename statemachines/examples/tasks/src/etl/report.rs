//! `etl-report`: query the loaded database and write `$ALOFT_WORKDIR/report.md`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use serde_json::{Value, json};

use super::LOAD;
use crate::args::positional;
use crate::contract::{TaskInput, workdir};
use crate::error::{Context, Result};
use crate::files::path_text;

/// How many countries the report lists by zone count.
const TOP_COUNTRIES: usize = 5;

/// Everything the report shows, as read from the database.
#[derive(Debug, Serialize)]
struct Findings {
    zones: i64,
    per_region: Vec<(String, i64)>,
    northernmost: Place,
    southernmost: Place,
    top_countries: Vec<CountryCount>,
    countries_without_zones: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Place {
    zone: String,
    latitude: f64,
    longitude: f64,
}

#[derive(Debug, Serialize)]
struct CountryCount {
    code: String,
    name: String,
    zones: i64,
}

/// Run the report task on the database named by the load task's output.
pub fn report(args: &[String], input: &TaskInput) -> Result<Value> {
    let [] = positional(args, "etl-report")?;
    let database = input.upstream_str(LOAD, "/database")?;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(database, flags)
        .context(|| format!("cannot open database {database}"))?;
    let findings = query(&conn).context(|| format!("cannot query database {database}"))?;

    let path = workdir()?.join("report.md");
    fs::write(&path, markdown(&findings, database))
        .context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());

    Ok(json!({
        "report": path_text(&path)?,
        "zones": findings.zones,
        "regions": findings.per_region.len(),
        "northernmost": findings.northernmost,
        "southernmost": findings.southernmost,
        "most_zones": findings.top_countries.first(),
        "countries_without_zones": findings.countries_without_zones,
    }))
}

fn query(conn: &Connection) -> rusqlite::Result<Findings> {
    Ok(Findings {
        zones: conn.query_row("SELECT COUNT(*) FROM zones", [], |row| row.get(0))?,
        per_region: per_region(conn)?,
        northernmost: extreme(conn, "DESC")?,
        southernmost: extreme(conn, "ASC")?,
        top_countries: top_countries(conn)?,
        countries_without_zones: countries_without_zones(conn)?,
    })
}

fn per_region(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT region, COUNT(*) AS n FROM zones GROUP BY region ORDER BY n DESC, region",
    )?;
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect()
}

/// The zone with the highest (`DESC`) or lowest (`ASC`) latitude; ties go by name.
fn extreme(conn: &Connection, order: &str) -> rusqlite::Result<Place> {
    let sql = format!(
        "SELECT name, latitude, longitude FROM zones ORDER BY latitude {order}, name LIMIT 1"
    );
    conn.query_row(&sql, [], |row| {
        Ok(Place {
            zone: row.get(0)?,
            latitude: row.get(1)?,
            longitude: row.get(2)?,
        })
    })
}

fn top_countries(conn: &Connection) -> rusqlite::Result<Vec<CountryCount>> {
    let mut stmt = conn.prepare(
        "SELECT c.code, c.name, COUNT(*) AS n FROM zone_countries zc
         JOIN countries c ON c.code = zc.country
         GROUP BY c.code ORDER BY n DESC, c.code LIMIT ?1",
    )?;
    let limit = i64::try_from(TOP_COUNTRIES).unwrap_or(i64::MAX);
    stmt.query_map([limit], |row| {
        Ok(CountryCount {
            code: row.get(0)?,
            name: row.get(1)?,
            zones: row.get(2)?,
        })
    })?
    .collect()
}

fn countries_without_zones(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT code FROM countries WHERE code NOT IN (SELECT country FROM zone_countries)
         ORDER BY code",
    )?;
    stmt.query_map([], |row| row.get(0))?.collect()
}

/// The report as Markdown. Writing into a String cannot fail, so results are ignored.
fn markdown(findings: &Findings, database: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Time zone report\n");
    let _ = writeln!(
        out,
        "From `{}`: {} zones.\n",
        file_name(database),
        findings.zones
    );
    let _ = writeln!(out, "## Zones per region\n\n| region | zones |\n|---|---:|");
    for (region, count) in &findings.per_region {
        let _ = writeln!(out, "| {region} | {count} |");
    }
    let _ = writeln!(
        out,
        "\n## Extremes\n\n| | zone | latitude | longitude |\n|---|---|---:|---:|"
    );
    for (label, place) in [
        ("northernmost", &findings.northernmost),
        ("southernmost", &findings.southernmost),
    ] {
        let _ = writeln!(
            out,
            "| {label} | {} | {:.4} | {:.4} |",
            place.zone, place.latitude, place.longitude
        );
    }
    let _ = writeln!(
        out,
        "\n## Countries with the most zones\n\n| country | zones |\n|---|---:|"
    );
    for country in &findings.top_countries {
        let _ = writeln!(
            out,
            "| {} ({}) | {} |",
            country.name, country.code, country.zones
        );
    }
    let missing = match findings.countries_without_zones.as_slice() {
        [] => "none".to_owned(),
        codes => codes.join(", "),
    };
    let _ = writeln!(
        out,
        "\nCountries in iso3166 with no zone in zone1970: {missing}."
    );
    out
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into())
}
