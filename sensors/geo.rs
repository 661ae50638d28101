//! Small geometry on WGS 84 coordinates, good enough for a city a few tens of
//! kilometres across: distances, straight-line travel, offsets in metres and
//! point-in-polygon for district outlines.

/// `(lat, lon)` in degrees.
pub type LatLon = (f64, f64);

const EARTH_RADIUS_KM: f64 = 6371.0;
const M_PER_DEG_LAT: f64 = 111_320.0;

/// Great-circle distance in kilometres.
pub fn distance_km(a: LatLon, b: LatLon) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// The point a fraction `t` (clamped to 0..=1) of the way from `a` to `b`.
pub fn lerp(a: LatLon, b: LatLon, t: f64) -> LatLon {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        1.0
    };
    (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
}

/// `p` moved `north_m` metres north and `east_m` metres east.
pub fn offset(p: LatLon, north_m: f64, east_m: f64) -> LatLon {
    let m_per_deg_lon = M_PER_DEG_LAT * p.0.to_radians().cos().max(0.01);
    (p.0 + north_m / M_PER_DEG_LAT, p.1 + east_m / m_per_deg_lon)
}

/// Whether `p` lies inside the polygon (ray casting; the outline need not be closed).
pub fn inside(p: LatLon, polygon: &[[f64; 2]]) -> bool {
    let n = polygon.len();
    if n < 3 {
        return false;
    }
    let mut odd = false;
    let mut j = n - 1;
    for i in 0..n {
        let (yi, xi) = (polygon[i][0], polygon[i][1]);
        let (yj, xj) = (polygon[j][0], polygon[j][1]);
        if (yi > p.0) != (yj > p.0) && p.1 < (xj - xi) * (p.0 - yi) / (yj - yi) + xi {
            odd = !odd;
        }
        j = i;
    }
    odd
}

/// Whether `(lat, lon)` are finite WGS 84 degrees.
pub fn valid(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_offsets_agree() {
        let pci = (-6.0165, 106.0710);
        let moved = offset(pci, 300.0, 400.0);
        let d = distance_km(pci, moved);
        assert!((d - 0.5).abs() < 0.005, "{d}");
        assert_eq!(lerp(pci, moved, 0.0), pci);
        assert_eq!(lerp(pci, moved, 2.0), moved);
    }

    #[test]
    fn point_in_polygon() {
        let square = [[0.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]];
        assert!(inside((0.5, 0.5), &square));
        assert!(!inside((1.5, 0.5), &square));
        assert!(!inside((0.5, 0.5), &square[..2]));
    }
}
