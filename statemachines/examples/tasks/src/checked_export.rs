//! Tasks of the `checked-export` example: prepare an export in a scratch folder, check it
//! against a data-quality rule, publish it only if the rule holds, and always clean up.
//!
//! The rule is "every country in the export has at least one time zone". It fails on the
//! shipped tzdb data, on purpose: `iso3166.tab` lists Bouvet Island (BV) and Heard Island
//! & McDonald Islands (HM), uninhabited territories that no row of `zone1970.tab` names.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::args::positional;
use crate::contract::{TaskInput, workdir, workdir_subdir};
use crate::csv;
use crate::error::{Context, Error, Result};
use crate::files::path_text;
use crate::tzdata::{self, Country, ZoneRow};

/// The scratch folder under the workdir that `prepare` fills and `cleanup` removes.
const SCRATCH: &str = "export-scratch";
/// Header of the export file.
const EXPORT_HEADER: [&str; 4] = ["code", "name", "zone_count", "zones"];
/// Upstream task names, as in `cleanup/workflow.yaml`.
const PREPARE: &str = "prepare";
const CHECK: &str = "check";
/// The rule `check` applies, in words.
const RULE: &str = "every country in the export has at least one time zone";

/// One row of the export: a country and the zones that cover it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExportRow {
    code: String,
    name: String,
    zones: Vec<String>,
}

/// `export-prepare ZONE1970_CSV ISO3166_CSV`: write `countries.csv` (each country with its
/// zones) into `$ALOFT_WORKDIR/export-scratch/`.
pub fn prepare(args: &[String], _input: &TaskInput) -> Result<Value> {
    let [zones_csv, countries_csv] = positional(args, "export-prepare ZONE1970_CSV ISO3166_CSV")?;
    let countries = tzdata::read_countries(Path::new(countries_csv))?;
    let zones = tzdata::read_zones(Path::new(zones_csv))?;
    let rows = export_rows(&countries, &zones);

    let scratch = workdir_subdir(SCRATCH)?;
    let export = scratch.join("countries.csv");
    let mut text = csv::format_line(&EXPORT_HEADER) + "\n";
    for row in &rows {
        let count = row.zones.len().to_string();
        text += &(csv::format_line(&[&row.code, &row.name, &count, &row.zones.join(" ")]) + "\n");
    }
    fs::write(&export, text).context(|| format!("cannot write {}", export.display()))?;
    eprintln!("wrote {} countries to {}", rows.len(), export.display());
    Ok(json!({"scratch": path_text(&scratch)?, "export": path_text(&export)?, "rows": rows.len()}))
}

fn export_rows(countries: &[Country], zones: &[ZoneRow]) -> Vec<ExportRow> {
    let per_country = tzdata::zones_per_country(zones, countries);
    countries
        .iter()
        .map(|country| ExportRow {
            code: country.code.clone(),
            name: country.name.clone(),
            zones: per_country
                .get(country.code.as_str())
                .cloned()
                .unwrap_or_default(),
        })
        .collect()
}

/// `export-check`: apply the rule to the export `prepare` wrote; fail if any row breaks it.
pub fn check(args: &[String], input: &TaskInput) -> Result<Value> {
    let [] = positional(args, "export-check")?;
    let export = input.upstream_str(PREPARE, "/export")?;
    let rows = read_export(Path::new(export))?;
    let offenders = countries_without_zones(&rows);
    if !offenders.is_empty() {
        for row in &offenders {
            eprintln!("rule broken: {} ({}) has no time zone", row.code, row.name);
        }
        let list: Vec<String> = offenders
            .iter()
            .map(|r| format!("{} ({})", r.code, r.name))
            .collect();
        return Err(Error::new(format!(
            "quality rule failed on {export}: {RULE}; {} of {} countries have none: {}",
            offenders.len(),
            rows.len(),
            list.join(", ")
        )));
    }
    eprintln!("rule holds for all {} countries", rows.len());
    Ok(json!({"rule": RULE, "rows": rows.len(), "passed": true, "export": export}))
}

fn read_export(path: &Path) -> Result<Vec<ExportRow>> {
    let mut rows = Vec::new();
    for record in csv::read_table(path, &EXPORT_HEADER)? {
        let [code, name, count, zones] = <[String; 4]>::try_from(record.fields).map_err(|_| {
            Error::new(format!(
                "{}:{}: wrong field count",
                path.display(),
                record.line
            ))
        })?;
        let zones: Vec<String> = zones.split_whitespace().map(str::to_owned).collect();
        if count.parse::<usize>().ok() != Some(zones.len()) {
            return Err(Error::new(format!(
                "{}:{}: zone_count {count:?} does not match {} listed zones",
                path.display(),
                record.line,
                zones.len()
            )));
        }
        rows.push(ExportRow { code, name, zones });
    }
    Ok(rows)
}

/// The quality rule: the rows of countries that no zone covers.
fn countries_without_zones(rows: &[ExportRow]) -> Vec<&ExportRow> {
    rows.iter().filter(|row| row.zones.is_empty()).collect()
}

/// `export-publish`: copy the checked export to `$ALOFT_WORKDIR/published/`. In the shipped
/// example it never runs, because `check` fails.
pub fn publish(args: &[String], input: &TaskInput) -> Result<Value> {
    let [] = positional(args, "export-publish")?;
    let export = input.upstream_str(CHECK, "/export")?;
    let target = workdir_subdir("published")?.join("countries.csv");
    let bytes = fs::copy(export, &target)
        .context(|| format!("cannot copy {export} to {}", target.display()))?;
    eprintln!("published {}", target.display());
    Ok(json!({"published": path_text(&target)?, "bytes": bytes}))
}

/// `export-cleanup`: remove the scratch folder, whatever happened upstream, and say what
/// was removed. A missing folder (prepare failed early) is not an error.
pub fn cleanup(args: &[String], input: &TaskInput) -> Result<Value> {
    let [] = positional(args, "export-cleanup")?;
    let scratch = workdir()?.join(SCRATCH);
    let seen: Vec<&String> = input.upstream.keys().collect();
    if !scratch.exists() {
        eprintln!("nothing to remove: {} does not exist", scratch.display());
        return Ok(
            json!({"scratch": path_text(&scratch)?, "removed": false, "files": [],
                         "bytes": 0, "upstream_outputs": seen}),
        );
    }

    let mut files = Vec::new();
    list_files(&scratch, &mut files)?;
    let bytes: u64 = files.iter().map(|(_, size)| size).sum();
    fs::remove_dir_all(&scratch).context(|| format!("cannot remove {}", scratch.display()))?;
    eprintln!(
        "removed {} ({} files, {bytes} bytes)",
        scratch.display(),
        files.len()
    );

    let names = files
        .iter()
        .map(|(path, _)| {
            path.strip_prefix(&scratch)
                .map_or_else(|_| path_text(path), path_text)
        })
        .collect::<Result<Vec<String>>>()?;
    Ok(
        json!({"scratch": path_text(&scratch)?, "removed": true, "files": names,
              "bytes": bytes, "upstream_outputs": seen}),
    )
}

/// Every file under `dir` with its size, depth first, sorted by path.
fn list_files(dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> Result<()> {
    let entries = fs::read_dir(dir).context(|| format!("cannot list {}", dir.display()))?;
    let mut paths = entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .context(|| format!("cannot list {}", dir.display()))?;
    paths.sort();
    for path in paths {
        let meta =
            fs::symlink_metadata(&path).context(|| format!("cannot stat {}", path.display()))?;
        if meta.is_dir() {
            list_files(&path, out)?;
        } else {
            out.push((path, meta.len()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(code: &str, zones: &[&str]) -> ExportRow {
        ExportRow {
            code: code.into(),
            name: format!("country {code}"),
            zones: zones.iter().map(|z| (*z).to_owned()).collect(),
        }
    }

    #[test]
    fn rule_holds_when_every_country_has_a_zone() {
        let rows = [row("AD", &["Europe/Andorra"]), row("OM", &["Asia/Dubai"])];
        assert!(countries_without_zones(&rows).is_empty());
    }

    #[test]
    fn rule_names_the_countries_without_zones() {
        let rows = [
            row("AD", &["Europe/Andorra"]),
            row("BV", &[]),
            row("HM", &[]),
        ];
        let codes: Vec<&str> = countries_without_zones(&rows)
            .iter()
            .map(|r| r.code.as_str())
            .collect();
        assert_eq!(codes, ["BV", "HM"]);
    }

    #[test]
    fn export_counts_secondary_countries_of_shared_zones() {
        let countries = [
            Country {
                code: "AE".into(),
                name: "United Arab Emirates".into(),
            },
            Country {
                code: "OM".into(),
                name: "Oman".into(),
            },
            Country {
                code: "BV".into(),
                name: "Bouvet Island".into(),
            },
        ];
        let zones = [ZoneRow {
            tz: "Asia/Dubai".into(),
            countries: vec!["AE".into(), "OM".into()],
            coordinates: "+2518+05518".into(),
            comment: None,
        }];
        let rows = export_rows(&countries, &zones);
        assert_eq!(rows[1].zones, ["Asia/Dubai"]);
        assert_eq!(countries_without_zones(&rows), [&rows[2]]);
    }

    #[test]
    fn rule_fails_on_the_shipped_data_for_bouvet_and_heard_islands() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etl/data");
        let countries = tzdata::read_countries(&data.join("iso3166.csv")).expect("shipped data");
        let zones = tzdata::read_zones(&data.join("zone1970.csv")).expect("shipped data");
        let rows = export_rows(&countries, &zones);
        let codes: Vec<&str> = countries_without_zones(&rows)
            .iter()
            .map(|r| r.code.as_str())
            .collect();
        assert_eq!(codes, ["BV", "HM"]);
    }
}
