//! `etl-load`: replace `$ALOFT_WORKDIR/zones.sqlite` with tables countries, zones and
//! zone_countries, all in one transaction so that a failed attempt leaves nothing half
//! written and a retry starts clean.

use std::path::Path;

use rusqlite::{Connection, Transaction, params};
use serde_json::{Value, json};

use super::TRANSFORM;
use crate::args::positional;
use crate::contract::{TaskInput, workdir};
use crate::error::{Context, Result};
use crate::files::{path_text, read_jsonl};
use crate::tzdata::Country;
use crate::tzdata::placed::PlacedZone;

const SCHEMA: &str = "
    DROP TABLE IF EXISTS zone_countries;
    DROP TABLE IF EXISTS zones;
    DROP TABLE IF EXISTS countries;
    CREATE TABLE countries (
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL
    );
    CREATE TABLE zones (
        name TEXT PRIMARY KEY,
        region TEXT NOT NULL,
        subregion TEXT,
        city TEXT NOT NULL,
        latitude REAL NOT NULL,
        longitude REAL NOT NULL,
        coordinates TEXT NOT NULL,
        comment TEXT
    );
    CREATE TABLE zone_countries (
        zone TEXT NOT NULL REFERENCES zones (name),
        country TEXT NOT NULL REFERENCES countries (code),
        position INTEGER NOT NULL,
        PRIMARY KEY (zone, country)
    );
";

/// Run the load task on the files named by the transform task's output.
pub fn load(args: &[String], input: &TaskInput) -> Result<Value> {
    let [] = positional(args, "etl-load")?;
    let countries_file = input.upstream_str(TRANSFORM, "/files/countries")?;
    let zones_file = input.upstream_str(TRANSFORM, "/files/zones")?;
    let countries: Vec<Country> = read_jsonl(Path::new(countries_file))?;
    let zones: Vec<PlacedZone> = read_jsonl(Path::new(zones_file))?;

    let database = workdir()?.join("zones.sqlite");
    let db_error = || format!("database {}", database.display());
    let mut conn = Connection::open(&database).context(db_error)?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")
        .context(db_error)?;
    let tx = conn.transaction().context(db_error)?;
    tx.execute_batch(SCHEMA)
        .context(|| format!("{}: cannot create the tables", db_error()))?;
    insert_countries(&tx, &countries)?;
    insert_zones(&tx, &zones)?;
    tx.commit()
        .context(|| format!("{}: cannot commit", db_error()))?;

    let rows = json!({
        "countries": count(&conn, "countries").context(db_error)?,
        "zones": count(&conn, "zones").context(db_error)?,
        "zone_countries": count(&conn, "zone_countries").context(db_error)?,
    });
    eprintln!("loaded {rows} into {}", database.display());
    Ok(json!({"database": path_text(&database)?, "rows": rows}))
}

fn insert_countries(tx: &Transaction<'_>, countries: &[Country]) -> Result<()> {
    let mut insert = tx
        .prepare("INSERT INTO countries (code, name) VALUES (?1, ?2)")
        .context(|| "cannot prepare the country insert".into())?;
    for country in countries {
        insert
            .execute(params![country.code, country.name])
            .context(|| format!("cannot insert country {:?}", country.code))?;
    }
    Ok(())
}

fn insert_zones(tx: &Transaction<'_>, zones: &[PlacedZone]) -> Result<()> {
    let mut zone_insert = tx
        .prepare(
            "INSERT INTO zones (name, region, subregion, city, latitude, longitude,
                 coordinates, comment) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .context(|| "cannot prepare the zone insert".into())?;
    let mut link_insert = tx
        .prepare("INSERT INTO zone_countries (zone, country, position) VALUES (?1, ?2, ?3)")
        .context(|| "cannot prepare the zone_countries insert".into())?;
    for zone in zones {
        zone_insert
            .execute(params![
                zone.name,
                zone.region,
                zone.subregion,
                zone.city,
                zone.latitude,
                zone.longitude,
                zone.coordinates,
                zone.comment,
            ])
            .context(|| format!("cannot insert zone {:?}", zone.name))?;
        for (country, position) in zone.countries.iter().zip(0_i64..) {
            link_insert
                .execute(params![zone.name, country.code, position])
                .context(|| format!("cannot link zone {:?} to {:?}", zone.name, country.code))?;
        }
    }
    Ok(())
}

/// Row count of `table`, one of the names in [`SCHEMA`].
fn count(conn: &Connection, table: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
        row.get(0)
    })
}
