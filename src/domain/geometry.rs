//! A real city's map: its districts and roads as its GIS office or an
//! OpenStreetMap export gives them (GeoJSON), checked, simplified for the
//! screens, and shaped as the screens and the router read a scenario's map
//! (`districts: [{name, polygon}]`, `roads: [{name, class, polyline}]`,
//! points `[lat, lon]`). GeoJSON is read with serde_json: only
//! `FeatureCollection`s of `Polygon`/`MultiPolygon` (districts) and
//! `LineString`/`MultiLineString` (roads) with their `name` are needed.

use serde::Serialize;
use serde_json::Value;

/// Indonesia, with a margin: `[[south, west], [north, east]]`.
const INDONESIA: [[f64; 2]; 2] = [[-12.0, 94.0], [7.0, 142.0]];
/// Simplification tolerance in degrees (about 5 m): finer than a screen shows.
pub const TOLERANCE_DEG: f64 = 0.00005;
/// At most this many points are kept for the whole map.
const MAX_POINTS: usize = 200_000;

/// Why a file was refused: which feature, and what is wrong with it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GeometryError {
    #[error("{file}: not GeoJSON: {detail}")]
    NotGeoJson { file: String, detail: String },
    #[error("{file}: feature {index} ({name}): {detail}")]
    BadFeature {
        file: String,
        index: usize,
        name: String,
        detail: String,
    },
    #[error("{file}: no {what} in it")]
    Empty { file: String, what: &'static str },
    #[error("the map has {0} points after simplification, more than {MAX_POINTS}: simplify it first (e.g. mapshaper)")]
    TooLarge(usize),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct District {
    pub name: String,
    /// Outline `[[lat, lon], ...]`.
    pub polygon: Vec<[f64; 2]>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Road {
    pub name: String,
    /// `arteri`, `kolektor`, `tol`, `lokal` (from the feature's `class`, or
    /// OpenStreetMap's `highway`).
    pub class: Option<String>,
    pub polyline: Vec<[f64; 2]>,
}

/// A city's map, as imported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CityMap {
    pub city: String,
    pub city_name: String,
    pub title: String,
    pub center: [f64; 2],
    pub bounds: [[f64; 2]; 2],
    pub districts: Vec<District>,
    pub roads: Vec<Road>,
    /// The city's local time (its city file's; WIB by default).
    pub time_zone: super::Zone,
    /// Its service catalogue (its city file's), as a scenario's `services`.
    pub services: Vec<super::catalogue::CatalogueService>,
}

/// Counts of an import, for the person who ran it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImportSummary {
    pub districts: usize,
    pub roads: usize,
    pub points_read: usize,
    pub points_kept: usize,
}

fn features<'a>(file: &str, v: &'a Value) -> Result<Vec<&'a Value>, GeometryError> {
    match v["type"].as_str() {
        Some("FeatureCollection") => v["features"]
            .as_array()
            .map(|a| a.iter().collect())
            .ok_or_else(|| GeometryError::NotGeoJson {
                file: file.into(),
                detail: "a FeatureCollection without a `features` array".into(),
            }),
        Some("Feature") => Ok(vec![v]),
        other => Err(GeometryError::NotGeoJson {
            file: file.into(),
            detail: format!(
                "the top level is {:?}, not a FeatureCollection",
                other.unwrap_or("not an object")
            ),
        }),
    }
}

/// A feature's name: `name`, or the usual names of a district's property
/// (`NAMOBJ` of Indonesia's RBI, `nama`, `kecamatan`, `WADMKC`).
fn name_of(f: &Value) -> Option<String> {
    let p = &f["properties"];
    ["name", "nama", "NAMOBJ", "kecamatan", "WADMKC", "ref"]
        .iter()
        .find_map(|k| p[*k].as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `[lon, lat]` pairs (GeoJSON's order) into `[lat, lon]`, each checked.
fn line(v: &Value) -> Result<Vec<[f64; 2]>, String> {
    let pts = v.as_array().ok_or("coordinates are not an array")?;
    pts.iter()
        .map(|p| {
            let (lon, lat) = (p[0].as_f64(), p[1].as_f64());
            match (lat, lon) {
                (Some(lat), Some(lon))
                    if (INDONESIA[0][0]..=INDONESIA[1][0]).contains(&lat)
                        && (INDONESIA[0][1]..=INDONESIA[1][1]).contains(&lon) =>
                {
                    Ok([lat, lon])
                }
                (Some(lat), Some(lon)) => Err(format!(
                    "point [{lon}, {lat}] is outside Indonesia (GeoJSON is [longitude, latitude], in WGS 84 degrees)"
                )),
                _ => Err(format!("{p} is not a [longitude, latitude] pair")),
            }
        })
        .collect()
}

/// Douglas-Peucker: the points that keep the line within `tol` degrees.
pub fn simplify(points: &[[f64; 2]], tol: f64) -> Vec<[f64; 2]> {
    if points.len() < 3 {
        return points.to_vec();
    }
    let mut keep = vec![false; points.len()];
    keep[0] = true;
    keep[points.len() - 1] = true;
    let mut stack = vec![(0, points.len() - 1)];
    while let Some((a, b)) = stack.pop() {
        let (pa, pb) = (points[a], points[b]);
        let (dy, dx) = (pb[0] - pa[0], pb[1] - pa[1]);
        let len = dx.hypot(dy);
        let mut far = (0.0, a);
        for (i, p) in points.iter().enumerate().take(b).skip(a + 1) {
            let d = if len == 0.0 {
                (p[0] - pa[0]).hypot(p[1] - pa[1])
            } else {
                ((p[1] - pa[1]) * dy - (p[0] - pa[0]) * dx).abs() / len
            };
            if d > far.0 {
                far = (d, i);
            }
        }
        if far.0 > tol {
            keep[far.1] = true;
            stack.push((a, far.1));
            stack.push((far.1, b));
        }
    }
    points
        .iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(*p))
        .collect()
}

/// Reads, checks and simplifies a city's districts and roads.
pub fn import(
    city: &str,
    city_name: &str,
    districts_file: (&str, &str),
    roads_file: (&str, &str),
) -> Result<(CityMap, ImportSummary), GeometryError> {
    let parse = |(file, text): (&str, &str)| {
        serde_json::from_str::<Value>(text).map_err(|e| GeometryError::NotGeoJson {
            file: file.into(),
            detail: e.to_string(),
        })
    };
    let (dfile, rfile) = (districts_file.0, roads_file.0);
    let (dv, rv) = (parse(districts_file)?, parse(roads_file)?);
    let (mut read, mut kept) = (0, 0);
    let mut districts = Vec::new();
    for (index, f) in features(dfile, &dv)?.into_iter().enumerate() {
        let bad = |detail: String| GeometryError::BadFeature {
            file: dfile.into(),
            index,
            name: name_of(f).unwrap_or_else(|| "no name".into()),
            detail,
        };
        let name = name_of(f).ok_or_else(|| bad("a district needs a `name` property".into()))?;
        let g = &f["geometry"];
        let rings: Vec<&Value> = match g["type"].as_str() {
            // The outer ring of each part (holes do not show at a wall's scale).
            Some("Polygon") => g["coordinates"].get(0).into_iter().collect(),
            Some("MultiPolygon") => g["coordinates"]
                .as_array()
                .map(|ps| ps.iter().filter_map(|p| p.get(0)).collect())
                .unwrap_or_default(),
            other => {
                return Err(bad(format!(
                    "a district is a Polygon or MultiPolygon, not {}",
                    other.unwrap_or("a feature without a geometry")
                )))
            }
        };
        if rings.is_empty() {
            return Err(bad("the polygon has no outer ring".into()));
        }
        for ring in rings {
            let pts = line(ring).map_err(bad)?;
            if pts.len() < 4 {
                return Err(bad(format!(
                    "a ring needs at least 4 points (closed), it has {}",
                    pts.len()
                )));
            }
            read += pts.len();
            let polygon = simplify(&pts, TOLERANCE_DEG);
            kept += polygon.len();
            districts.push(District {
                name: name.clone(),
                polygon,
            });
        }
    }
    if districts.is_empty() {
        return Err(GeometryError::Empty {
            file: dfile.into(),
            what: "district",
        });
    }
    let mut roads = Vec::new();
    for (index, f) in features(rfile, &rv)?.into_iter().enumerate() {
        let bad = |detail: String| GeometryError::BadFeature {
            file: rfile.into(),
            index,
            name: name_of(f).unwrap_or_else(|| "no name".into()),
            detail,
        };
        let g = &f["geometry"];
        let parts: Vec<&Value> = match g["type"].as_str() {
            Some("LineString") => vec![&g["coordinates"]],
            Some("MultiLineString") => g["coordinates"]
                .as_array()
                .map(|ls| ls.iter().collect())
                .unwrap_or_default(),
            other => {
                return Err(bad(format!(
                    "a road is a LineString or MultiLineString, not {}",
                    other.unwrap_or("a feature without a geometry")
                )))
            }
        };
        let p = &f["properties"];
        let class = p["class"]
            .as_str()
            .or(p["highway"].as_str().map(|h| match h {
                "motorway" | "motorway_link" => "tol",
                "trunk" | "primary" | "trunk_link" | "primary_link" => "arteri",
                "secondary" | "tertiary" => "kolektor",
                _ => "lokal",
            }))
            .map(str::to_owned);
        for part in parts {
            let pts = line(part).map_err(bad)?;
            if pts.len() < 2 {
                return Err(bad("a road needs at least 2 points".into()));
            }
            read += pts.len();
            let polyline = simplify(&pts, TOLERANCE_DEG);
            kept += polyline.len();
            roads.push(Road {
                name: name_of(f).unwrap_or_default(),
                class: class.clone(),
                polyline,
            });
        }
    }
    if kept > MAX_POINTS {
        return Err(GeometryError::TooLarge(kept));
    }
    let all = districts
        .iter()
        .flat_map(|d| d.polygon.iter())
        .chain(roads.iter().flat_map(|r| r.polyline.iter()));
    let mut b = [[f64::MAX, f64::MAX], [f64::MIN, f64::MIN]];
    for p in all {
        b[0][0] = b[0][0].min(p[0]);
        b[0][1] = b[0][1].min(p[1]);
        b[1][0] = b[1][0].max(p[0]);
        b[1][1] = b[1][1].max(p[1]);
    }
    let summary = ImportSummary {
        districts: districts.len(),
        roads: roads.len(),
        points_read: read,
        points_kept: kept,
    };
    Ok((
        CityMap {
            city: city.to_owned(),
            city_name: city_name.to_owned(),
            title: city_name.to_owned(),
            center: [(b[0][0] + b[1][0]) / 2.0, (b[0][1] + b[1][1]) / 2.0],
            bounds: b,
            districts,
            roads,
            time_zone: super::Zone::default(),
            services: Vec::new(),
        },
        summary,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISTRICTS: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"name":"Kuta"},"geometry":{"type":"Polygon","coordinates":[[[115.16,-8.72],[115.18,-8.72],[115.18,-8.70],[115.17,-8.70],[115.16,-8.70],[115.16,-8.72]]]}}]}"#;
    const ROADS: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"name":"Jl. Sunset Road","highway":"primary"},"geometry":{"type":"LineString","coordinates":[[115.16,-8.71],[115.17,-8.710001],[115.18,-8.71]]}}]}"#;

    #[test]
    fn a_city_imports_simplified_in_lat_lon_with_its_bounds() {
        let (map, summary) = import(
            "badung",
            "Kabupaten Badung",
            ("d.geojson", DISTRICTS),
            ("r.geojson", ROADS),
        )
        .unwrap();
        assert_eq!(map.districts[0].name, "Kuta");
        assert_eq!(map.districts[0].polygon[0], [-8.72, 115.16], "[lat, lon]");
        // The ring's collinear point and the road's near-straight one go.
        assert_eq!(map.districts[0].polygon.len(), 5);
        assert_eq!(map.roads[0].polyline.len(), 2);
        assert_eq!(map.roads[0].class.as_deref(), Some("arteri"));
        assert_eq!(map.bounds, [[-8.72, 115.16], [-8.70, 115.18]]);
        assert_eq!(
            (summary.points_read, summary.points_kept),
            (9, 7),
            "{summary:?}"
        );
    }

    #[test]
    fn a_bad_feature_is_named() {
        let swapped = DISTRICTS.replace("[115.16,-8.72]", "[-8.72,115.16]");
        let e = import(
            "badung",
            "Badung",
            ("d.geojson", &swapped),
            ("r.geojson", ROADS),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(
                "d.geojson: feature 0 (Kuta): point [-8.72, 115.16] is outside Indonesia"
            ),
            "{text}"
        );
        let unnamed = DISTRICTS.replace(r#""name":"Kuta""#, r#""luas":3"#);
        let e = import(
            "badung",
            "Badung",
            ("d.geojson", &unnamed),
            ("r.geojson", ROADS),
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs a `name` property"), "{e}");
        let e = import(
            "badung",
            "Badung",
            ("d.geojson", ROADS),
            ("r.geojson", ROADS),
        )
        .unwrap_err();
        assert!(e.to_string().contains("Jl. Sunset Road"), "{e}");
        assert!(e.to_string().contains("not LineString"), "{e}");
        let e = import("badung", "Badung", ("d.geojson", "{"), ("r.geojson", ROADS)).unwrap_err();
        assert!(matches!(e, GeometryError::NotGeoJson { .. }), "{e}");
    }
}
