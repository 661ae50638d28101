//! Travel time on the city's roads, for recommending units: a graph of the
//! road polylines (vertices closer than [`SNAP_M`] are one node), each road
//! driven at its class's speed, slowed at every signalised junction on the
//! way by the junction's live degree of saturation (DS). An estimate for
//! ranking units, not a navigation system: the access to the network at
//! both ends is a straight line at street speed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::Serialize;

/// Vertices closer than this are one node (roads meet at shared points).
const SNAP_M: f64 = 15.0;
/// A node within this distance of a signalised junction passes through it.
const JUNCTION_M: f64 = 80.0;
/// Road distance over straight-line distance off the network.
const DETOUR: f64 = 1.3;
/// Speed on streets off the network (to and from the nearest road), km/h.
const STREET_KMH: f64 = 20.0;

/// A position, `(lat, lon)` in degrees.
pub type LatLon = (f64, f64);

/// Great-circle distance, metres.
pub fn metres(a: LatLon, b: LatLon) -> f64 {
    const EARTH_M: f64 = 6_371_000.0;
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let (dla, dlo) = ((b.0 - a.0).to_radians(), (b.1 - a.1).to_radians());
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_M * h.sqrt().min(1.0).asin()
}

/// An emergency vehicle's speed on a road of this class, km/h.
pub fn class_kmh(class: Option<&str>) -> f64 {
    match class {
        Some("tol") => 70.0,
        Some("arteri") => 45.0,
        Some("kolektor") => 35.0,
        _ => 25.0,
    }
}

/// The time a vehicle loses crossing a signalised junction at degree of
/// saturation `ds`, seconds: a few seconds when it flows, about a minute at
/// saturation (the queue must clear, even for a siren), more beyond.
pub fn junction_delay_s(ds: f64) -> f64 {
    let ds = if ds.is_finite() { ds } else { 0.0 };
    5.0 + 60.0 * ((ds - 0.6) / 0.4).clamp(0.0, 2.0)
}

/// A signalised junction and its live worst DS.
#[derive(Clone, Debug)]
pub struct Junction {
    pub at: LatLon,
    pub ds: f64,
}

/// One road to put in the network.
pub struct RoadLine<'a> {
    pub class: Option<&'a str>,
    pub points: &'a [LatLon],
}

/// A route's estimate.
#[derive(Clone, Debug, Serialize)]
pub struct Route {
    /// Estimated time of arrival from now, seconds.
    pub eta_s: f64,
    pub distance_m: f64,
    /// Of `eta_s`, the time lost at signalised junctions.
    pub junction_delay_s: f64,
    /// Signalised junctions crossed.
    pub junctions: usize,
    /// The way, `[lat, lon]` points from the unit to the scene.
    pub path: Vec<[f64; 2]>,
    /// `roads`, or `straight_line` when no road network is known.
    pub basis: &'static str,
}

/// The road graph.
#[derive(Clone, Debug, Default)]
pub struct RoadNet {
    nodes: Vec<LatLon>,
    /// Per node: `(neighbour, metres, seconds)`.
    edges: Vec<Vec<(usize, f64, f64)>>,
}

impl RoadNet {
    pub fn build(roads: &[RoadLine<'_>]) -> RoadNet {
        let mut net = RoadNet::default();
        for road in roads {
            let kmh = class_kmh(road.class);
            let mut prev: Option<usize> = None;
            for &p in road.points {
                if !(p.0.is_finite() && p.1.is_finite()) {
                    continue;
                }
                let n = net.node(p);
                if let Some(a) = prev.filter(|a| *a != n) {
                    let m = metres(net.nodes[a], net.nodes[n]);
                    let s = m / (kmh / 3.6);
                    net.edges[a].push((n, m, s));
                    net.edges[n].push((a, m, s));
                }
                prev = Some(n);
            }
        }
        net
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn node(&mut self, p: LatLon) -> usize {
        if let Some(i) = self.nodes.iter().position(|q| metres(*q, p) < SNAP_M) {
            return i;
        }
        self.nodes.push(p);
        self.edges.push(Vec::new());
        self.nodes.len() - 1
    }

    fn nearest(&self, p: LatLon) -> Option<(usize, f64)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, q)| (i, metres(*q, p)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The quickest way from `from` to `to`, crossing `junctions`.
    pub fn route(&self, from: LatLon, to: LatLon, junctions: &[Junction]) -> Route {
        let street = |a: LatLon, b: LatLon| {
            let m = metres(a, b) * DETOUR;
            (m, m / (STREET_KMH / 3.6))
        };
        let straight = || {
            let (m, _) = street(from, to);
            Route {
                eta_s: m / (class_kmh(Some("kolektor")) / 3.6),
                distance_m: m,
                junction_delay_s: 0.0,
                junctions: 0,
                path: vec![[from.0, from.1], [to.0, to.1]],
                basis: "straight_line",
            }
        };
        let Some((b, _)) = self.nearest(to) else {
            return straight();
        };
        // The start: the nearest node from which the destination's node can
        // be reached (a road whose ends do not meet the others' forms a
        // component of its own; a unit standing by it would find no way).
        let reach = self.reachable(b);
        let Some(a) = (0..self.nodes.len())
            .filter(|i| reach[*i])
            .min_by(|x, y| metres(self.nodes[*x], from).total_cmp(&metres(self.nodes[*y], from)))
        else {
            return straight();
        };
        // The delay of passing each node: its nearest signalised junction's.
        let delay: Vec<f64> = self
            .nodes
            .iter()
            .map(|n| {
                junctions
                    .iter()
                    .filter(|j| metres(j.at, *n) <= JUNCTION_M)
                    .map(|j| junction_delay_s(j.ds))
                    .fold(0.0, f64::max)
            })
            .collect();
        let Some(nodes) = self.quickest(a, b, &delay) else {
            return straight();
        };
        let (m0, s0) = street(from, self.nodes[a]);
        let (m1, s1) = street(self.nodes[b], to);
        let (mut m, mut s, mut lost, mut crossed) = (m0 + m1, s0 + s1, 0.0, 0);
        for w in nodes.windows(2) {
            let (x, y) = (w[0], w[1]);
            if let Some((_, em, es)) = self.edges[x].iter().find(|e| e.0 == y) {
                m += em;
                s += es;
            }
            if delay[y] > 0.0 {
                lost += delay[y];
                crossed += 1;
            }
        }
        let mut path = vec![[from.0, from.1]];
        path.extend(nodes.iter().map(|&n| [self.nodes[n].0, self.nodes[n].1]));
        path.push([to.0, to.1]);
        Route {
            eta_s: s + lost,
            distance_m: m,
            junction_delay_s: lost,
            junctions: crossed,
            path,
            basis: "roads",
        }
    }

    /// Dijkstra over travel time plus the delay of entering each node.
    /// The nodes connected to `n`.
    fn reachable(&self, n: usize) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![n];
        seen[n] = true;
        while let Some(x) = stack.pop() {
            for &(m, _, _) in &self.edges[x] {
                if !seen[m] {
                    seen[m] = true;
                    stack.push(m);
                }
            }
        }
        seen
    }

    fn quickest(&self, from: usize, to: usize, delay: &[f64]) -> Option<Vec<usize>> {
        #[derive(PartialEq)]
        struct Open(f64, usize);
        impl Eq for Open {}
        impl Ord for Open {
            fn cmp(&self, o: &Self) -> Ordering {
                o.0.total_cmp(&self.0).then(o.1.cmp(&self.1))
            }
        }
        impl PartialOrd for Open {
            fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
                Some(self.cmp(o))
            }
        }
        let mut best = vec![f64::INFINITY; self.nodes.len()];
        let mut back = vec![usize::MAX; self.nodes.len()];
        let mut open = BinaryHeap::new();
        best[from] = 0.0;
        open.push(Open(0.0, from));
        while let Some(Open(t, n)) = open.pop() {
            if n == to {
                break;
            }
            if t > best[n] {
                continue;
            }
            for &(m, _, s) in &self.edges[n] {
                let tm = t + s + delay[m];
                if tm < best[m] {
                    best[m] = tm;
                    back[m] = n;
                    open.push(Open(tm, m));
                }
            }
        }
        if !best[to].is_finite() {
            return None;
        }
        let mut path = vec![to];
        while let Some(&n) = path.last().filter(|n| **n != from) {
            path.push(back[n]);
        }
        path.reverse();
        Some(path)
    }
}

/// The roads of the cities whose geometry is known (the scenario's, the
/// imported cities'), as their JSON gives them (`city`, `roads[].class`,
/// `roads[].polyline`), each built into a [`RoadNet`] on first use. Any
/// other city has none.
#[derive(Debug, Default)]
pub struct CityRoads {
    cities: std::collections::HashMap<String, CityLines>,
}

#[derive(Debug, Default)]
struct CityLines {
    lines: Vec<(Option<String>, Vec<LatLon>)>,
    net: std::sync::OnceLock<std::sync::Arc<RoadNet>>,
}

impl CityRoads {
    /// The roads of every map given (the first of a city counts).
    pub fn from_maps<'a>(maps: impl IntoIterator<Item = &'a serde_json::Value>) -> CityRoads {
        let mut cities = std::collections::HashMap::new();
        for s in maps {
            let Some(city) = s["city"].as_str() else {
                continue;
            };
            let lines = s["roads"]
                .as_array()
                .map(|roads| {
                    roads
                        .iter()
                        .map(|r| {
                            let points = r["polyline"]
                                .as_array()
                                .map(|ps| {
                                    ps.iter()
                                        .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
                                        .collect()
                                })
                                .unwrap_or_default();
                            (r["class"].as_str().map(str::to_owned), points)
                        })
                        .collect()
                })
                .unwrap_or_default();
            cities.entry(city.to_owned()).or_insert(CityLines {
                lines,
                net: Default::default(),
            });
        }
        CityRoads { cities }
    }

    /// The network of `city` (empty for a city without known roads).
    pub fn of(&self, city: &str) -> std::sync::Arc<RoadNet> {
        let Some(c) = self.cities.get(city) else {
            return Default::default();
        };
        c.net
            .get_or_init(|| {
                let lines: Vec<RoadLine<'_>> = c
                    .lines
                    .iter()
                    .map(|(class, points)| RoadLine {
                        class: class.as_deref(),
                        points,
                    })
                    .collect();
                std::sync::Arc::new(RoadNet::build(&lines))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two arterials from west to east: a straight one through a junction,
    /// and one 170 m longer around it.
    fn net() -> RoadNet {
        let direct = [(-6.0, 106.00), (-6.0, 106.02), (-6.0, 106.04)];
        let around = [
            (-6.0, 106.00),
            (-6.004, 106.01),
            (-6.004, 106.03),
            (-6.0, 106.04),
        ];
        RoadNet::build(&[
            RoadLine {
                class: Some("arteri"),
                points: &direct,
            },
            RoadLine {
                class: Some("arteri"),
                points: &around,
            },
        ])
    }

    #[test]
    fn a_saturated_junction_sends_the_route_around_it() {
        let net = net();
        let (from, to) = ((-6.0, 106.0), (-6.0, 106.04));
        let free = net.route(
            from,
            to,
            &[Junction {
                at: (-6.0, 106.02),
                ds: 0.3,
            }],
        );
        assert_eq!(free.basis, "roads");
        assert_eq!(free.junctions, 1);
        assert!((free.distance_m - 4_424.0).abs() < 50.0, "{free:?}");
        let jammed = net.route(
            from,
            to,
            &[Junction {
                at: (-6.0, 106.02),
                ds: 1.3,
            }],
        );
        assert_eq!(jammed.junctions, 0, "around the jam: {jammed:?}");
        assert!(jammed.distance_m > free.distance_m);
        assert!(jammed.eta_s > free.eta_s);
        assert!(jammed.eta_s < free.eta_s + junction_delay_s(1.3));
    }

    #[test]
    fn a_unit_by_a_road_that_meets_no_other_starts_from_the_nearest_road_that_does() {
        let main = [(-6.0, 106.0), (-6.0, 106.02), (-6.0, 106.04)];
        let apart = [(-6.01, 106.0), (-6.01, 106.005)];
        let net = RoadNet::build(&[
            RoadLine {
                class: Some("arteri"),
                points: &main,
            },
            RoadLine {
                class: Some("lokal"),
                points: &apart,
            },
        ]);
        let r = net.route((-6.0101, 106.0001), (-6.0, 106.04), &[]);
        assert_eq!(r.basis, "roads", "{r:?}");
        assert!(r.path.len() >= 3, "{r:?}");
    }

    /// Several cities' maps: each city routes on its own roads.
    #[test]
    fn each_city_has_its_own_roads() {
        let map = |city: &str, lon: f64| {
            serde_json::json!({ "city": city, "roads": [
                { "class": "arteri", "polyline": [[-8.70, lon], [-8.70, lon + 0.02]] },
            ]})
        };
        let (a, b) = (map("badung", 115.16), map("gianyar", 115.30));
        let roads = CityRoads::from_maps([&a, &b]);
        assert!(!roads.of("badung").is_empty());
        assert!(!roads.of("gianyar").is_empty());
        assert!(roads.of("tabanan").is_empty());
    }

    #[test]
    fn without_roads_the_estimate_is_a_straight_line() {
        let r = RoadNet::default().route((-6.0, 106.0), (-6.0, 106.01), &[]);
        assert_eq!(r.basis, "straight_line");
        assert_eq!(r.path.len(), 2);
        assert!(r.eta_s > 0.0);
    }

    #[test]
    fn junction_delay_grows_with_saturation_and_is_bounded() {
        assert_eq!(junction_delay_s(0.2), 5.0);
        assert!(junction_delay_s(0.9) > junction_delay_s(0.8));
        assert_eq!(junction_delay_s(9.0), 125.0);
        assert_eq!(junction_delay_s(f64::NAN), 5.0);
    }
}
