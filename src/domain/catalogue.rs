//! A real city, configured without the simulator: its city file (slug,
//! name, time zone, the GeoJSON of its districts and roads, and its service
//! catalogue). `kendali city import --file kota.toml` reads it; the
//! catalogue is what the screens group services by and judge their KPIs
//! against (the same shape as a scenario's `services`, without the
//! simulation's parameters).
//!
//! ```toml
//! slug = "tangerang"
//! name = "Kota Tangerang"
//! time_zone = "WIB"
//! districts = "kecamatan.geojson"   # relative to this file
//! roads = "jalan.geojson"
//!
//! [[services]]
//! id = "laksa"
//! title = "LAKSA"
//! opd = "diskominfo"
//! category = "e-government"
//! kpis = [{ metric = "resolved_on_time_pct", unit = "%", target = 90 }]
//! ```

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Zone;
use crate::contract::topic::{is_city_slug, is_identifier};

/// A city file, as written by the city's IT staff.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CityFile {
    /// The city's slug, as in its topics (`city/{slug}/...`).
    pub slug: String,
    /// Its name on the screens.
    pub name: String,
    /// WIB, WITA or WIT.
    #[serde(default)]
    pub time_zone: Zone,
    /// Districts (GeoJSON polygons with a `name`), relative to the city file.
    pub districts: PathBuf,
    /// Roads (GeoJSON lines), relative to the city file.
    pub roads: PathBuf,
    /// The service catalogue.
    #[serde(default)]
    pub services: Vec<CatalogueService>,
}

/// A service application as the screens show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueService {
    /// Service id, as in its topics (`city/{city}/apps/{id}/...`).
    pub id: String,
    pub title: String,
    /// The owning OPD (e.g. `dinkes`).
    #[serde(default)]
    pub opd: Option<String>,
    /// The group the screens show it in (`e-government`, `kesehatan`...).
    #[serde(default)]
    pub category: Option<String>,
    /// Its KPIs, the headline first.
    #[serde(default)]
    pub kpis: Vec<CatalogueKpi>,
}

/// A KPI of a service and the target it is judged against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueKpi {
    pub metric: String,
    pub unit: String,
    #[serde(default)]
    pub target: Option<f64>,
}

/// Why a city file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CityFileError {
    #[error("{file}: {detail}")]
    Parse { file: String, detail: String },
    #[error("{file}: {}", .problems.join("; "))]
    Invalid { file: String, problems: Vec<String> },
}

impl CityFile {
    /// Reads and checks a city file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<CityFile, CityFileError> {
        let city: CityFile = toml::from_str(text).map_err(|e| CityFileError::Parse {
            file: file.into(),
            detail: e.to_string(),
        })?;
        let mut problems = Vec::new();
        if !is_city_slug(&city.slug) {
            problems.push(format!(
                "slug {:?} is not a city slug (a-z, 0-9, '-')",
                city.slug
            ));
        }
        if city.name.trim().is_empty() {
            problems.push("name is empty".into());
        }
        problems.extend(check(&city.services));
        if problems.is_empty() {
            Ok(city)
        } else {
            Err(CityFileError::Invalid {
                file: file.into(),
                problems,
            })
        }
    }
}

/// Every problem of a catalogue, each naming its service.
pub fn check(services: &[CatalogueService]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for s in services {
        let what = format!("service {:?}", s.id);
        if !is_identifier(&s.id) {
            problems.push(format!(
                "{what}: the id is not an identifier (a-z, 0-9, '_', '-')"
            ));
        } else if !ids.insert(s.id.as_str()) {
            problems.push(format!("{what}: listed twice"));
        }
        if s.title.trim().is_empty() {
            problems.push(format!("{what}: the title is empty"));
        }
        if let Some(o) = s.opd.as_deref().filter(|o| !is_identifier(o)) {
            problems.push(format!("{what}: opd {o:?} is not an identifier"));
        }
        if let Some(c) = s.category.as_deref().filter(|c| !is_identifier(c)) {
            problems.push(format!("{what}: category {c:?} is not an identifier"));
        }
        let mut metrics = BTreeSet::new();
        for k in &s.kpis {
            if !crate::contract::validate::is_kpi_metric(&k.metric)
                || !metrics.insert(k.metric.as_str())
            {
                problems.push(format!(
                    "{what}: KPI {:?} is not a metric name ([a-z0-9_.]) or is listed twice",
                    k.metric
                ));
            }
            if k.unit.trim().is_empty() || k.unit.len() > 32 {
                problems.push(format!(
                    "{what}: KPI {:?}: the unit must be 1 to 32 bytes",
                    k.metric
                ));
            }
            if k.target.is_some_and(|t| !t.is_finite()) {
                problems.push(format!(
                    "{what}: KPI {:?}: the target is not a number",
                    k.metric
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
slug = "badung"
name = "Kabupaten Badung"
time_zone = "WITA"
districts = "kecamatan.geojson"
roads = "jalan.geojson"

[[services]]
id = "laksa"
title = "LAKSA"
opd = "diskominfo"
category = "e-government"
kpis = [{ metric = "resolved_on_time_pct", unit = "%", target = 90 }, { metric = "open_cases", unit = "count" }]

[[services]]
id = "pungutan-wisatawan"
title = "Pungutan Wisatawan Asing"
category = "pariwisata-budaya"
"#;

    #[test]
    fn a_city_file_reads_with_its_zone_and_catalogue() {
        let c = CityFile::parse("badung.toml", FILE).unwrap();
        assert_eq!(c.time_zone, Zone::Wita);
        assert_eq!(c.services.len(), 2);
        assert_eq!(c.services[0].kpis[0].target, Some(90.0));
        assert_eq!(c.services[1].kpis, vec![]);
    }

    #[test]
    fn every_problem_is_named_by_its_service() {
        let bad = FILE
            .replace("id = \"pungutan-wisatawan\"", "id = \"laksa\"")
            .replace("unit = \"count\"", "unit = \"\"")
            .replace("\"Kabupaten Badung\"", "\" \"");
        let e = CityFile::parse("badung.toml", &bad)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("badung.toml: "), "{e}");
        assert!(e.contains("name is empty"), "{e}");
        assert!(e.contains("service \"laksa\": listed twice"), "{e}");
        assert!(
            e.contains("KPI \"open_cases\": the unit must be 1 to 32 bytes"),
            "{e}"
        );
        let e = CityFile::parse(
            "x.toml",
            "slug = \"x\"\nname = \"X\"\ntime_zone = \"CET\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("CET") || e.contains("variant"), "{e}");
    }
}
