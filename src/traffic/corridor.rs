//! Green corridors: a time-limited green wave along a dispatched unit's
//! route to its call. The route is the city's roads (slowed by the live DS
//! of the junctions on the way, as the dispatcher's recommendations are);
//! each junction within reach of it gets one leased `priority` command,
//! held for the approach the unit comes on. The desk releases each hold
//! once the unit has passed, or when its lease ends. An officer gives one
//! (`POST /api/traffic/{city}/corridor`), or the desk by policy
//! (`traffic.corridor_priority`).

use std::sync::Arc;

use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::{Outbox, TrafficDesk};
use crate::contract::{Caller, Command, CommandAction, IntersectionInfo};
use crate::domain::route::{CityRoads, Junction, RoadNet};
use crate::domain::traffic::{corridor, CorridorJunction, CorridorStop};
use crate::hub::{HubGone, HubHandle};
use crate::identity::audit::Entry;
use crate::identity::Person;
use crate::state::{Update, UpdateKind};

/// A junction this close to a route is on it (a junction's box and the
/// route's snapping to the road graph).
const WITHIN_M: f64 = 60.0;

/// Why no corridor could be given.
#[derive(Debug, thiserror::Error)]
pub enum CorridorError {
    #[error("no unit {0:?} in city {1:?}")]
    NoUnit(String, String),
    #[error("{0} reports no position: no route to follow")]
    NoPosition(String),
    #[error("{0} has no destination: dispatch it to a located call first")]
    NoDestination(String),
    #[error("the live state could not be read: {0}")]
    Unreadable(String),
    #[error(transparent)]
    Hub(#[from] HubGone),
}

/// Who gives the corridor: a person (the junctions of their districts
/// only), or a rule (every junction).
pub struct Issuer<'a> {
    pub name: &'a str,
    pub roles: String,
    pub addr: &'a str,
    pub person: Option<&'a Person>,
}

/// What was held, and what was not and why.
#[derive(Debug, Default)]
pub struct Given {
    pub call_id: String,
    pub commands: Vec<serde_json::Value>,
    pub skipped: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct UnitView {
    lat: Option<f64>,
    lon: Option<f64>,
    assignment: Option<AssignmentView>,
}

#[derive(Deserialize)]
struct AssignmentView {
    call_id: String,
    destination: Option<Caller>,
}

/// Holds a green for `unit` at every junction on its way, each for `lease_s`.
#[allow(clippy::too_many_arguments)]
pub async fn give(
    hub: &HubHandle,
    desk: &TrafficDesk,
    out: &Outbox,
    roads: &CityRoads,
    city: &str,
    unit: &str,
    issuer: &Issuer<'_>,
    reason: &str,
    lease_s: f64,
) -> Result<Given, CorridorError> {
    let Some(u) = hub.get(UpdateKind::Unit, &format!("{city}/{unit}")).await? else {
        return Err(CorridorError::NoUnit(unit.to_owned(), city.to_owned()));
    };
    let view: UnitView = serde_json::from_str(u.value_json_for(true))
        .map_err(|e| CorridorError::Unreadable(e.to_string()))?;
    let (Some(lat), Some(lon)) = (view.lat, view.lon) else {
        return Err(CorridorError::NoPosition(unit.to_owned()));
    };
    let Some((call_id, to)) = view
        .assignment
        .and_then(|a| Some((a.call_id, a.destination?)))
    else {
        return Err(CorridorError::NoDestination(unit.to_owned()));
    };
    let junctions = hub.all_of(UpdateKind::Intersection, city).await?;
    let net = roads.of(city);
    let plan =
        tokio::task::spawn_blocking(move || plan(&net, (lat, lon), (to.lat, to.lon), &junctions))
            .await
            .map_err(|e| CorridorError::Unreadable(e.to_string()))?;
    let mut given = Given {
        call_id: call_id.clone(),
        ..Default::default()
    };
    for (stop, district) in plan {
        let skip = |why: &str| serde_json::json!({ "intersection": stop.intersection, "why": why });
        let Some(approach) = stop.approach.clone() else {
            given.skipped.push(skip("no approach faces the unit's way"));
            continue;
        };
        if issuer
            .person
            .is_some_and(|p| !p.in_scope(city, district.as_deref()))
        {
            given.skipped.push(skip("outside your districts"));
            continue;
        }
        let key = format!("{city}/{}", stop.intersection);
        if desk.take(&key).is_err() {
            given.skipped.push(skip(
                "too many commands at this junction in the last minute",
            ));
            continue;
        }
        let mut cmd = Command::new(
            Uuid::new_v4(),
            Utc::now().with_timezone(&crate::domain::wib()),
            CommandAction::Priority,
            issuer.name.to_owned(),
        );
        cmd.approach = Some(approach.clone());
        cmd.expires_in_s = Some(lease_s.round());
        cmd.unit = Some(unit.to_owned());
        cmd.reason = Some(format!("koridor hijau {unit} ({call_id}): {reason}"));
        let entry = Entry::new(issuer.name, &issuer.roles, issuer.addr, "traffic_command")
            .entity(format!("atcs:{key}"))
            .detail(serde_json::json!({ "command_id": cmd.command_id, "action": cmd.action, "approach": cmd.approach, "unit": cmd.unit, "expires_in_s": cmd.expires_in_s, "reason": cmd.reason }));
        match out.publish(city, &stop.intersection, &cmd, entry).await {
            Ok(_) => given.commands.push(serde_json::json!({ "intersection": stop.intersection, "approach": approach, "command_id": cmd.command_id, "along_m": stop.along_m.round() })),
            Err(e) => given.skipped.push(skip(&e.to_string())),
        }
    }
    Ok(given)
}

/// The junctions on the way from `from` to `to` over the city's roads, in
/// order, each with its district.
fn plan(
    net: &RoadNet,
    from: (f64, f64),
    to: (f64, f64),
    junctions: &[Arc<Update>],
) -> Vec<(CorridorStop, Option<String>)> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        info: Option<IntersectionInfo>,
        worst_saturation: Option<f64>,
    }
    /// A junction with a known place, and its arms as (id, name).
    struct Placed {
        id: String,
        info: IntersectionInfo,
        ds: f64,
        arms: Vec<(String, String)>,
    }
    let placed: Vec<Placed> = junctions
        .iter()
        .filter_map(|u| serde_json::from_str::<Row>(u.value_json_for(false)).ok())
        .filter_map(|r| {
            let info = r.info?;
            let arms = info
                .approaches
                .iter()
                .map(|a| (a.id.clone(), a.name.clone()))
                .collect();
            Some(Placed {
                id: r.id,
                info,
                ds: r.worst_saturation.unwrap_or(0.0),
                arms,
            })
        })
        .collect();
    let lights: Vec<Junction> = placed
        .iter()
        .map(|p| Junction {
            at: (p.info.lat, p.info.lon),
            ds: p.ds,
        })
        .collect();
    let route = net.route(from, to, &lights);
    let candidates: Vec<CorridorJunction<'_>> = placed
        .iter()
        .map(|p| CorridorJunction {
            key: &p.id,
            at: (p.info.lat, p.info.lon),
            approaches: &p.arms,
        })
        .collect();
    corridor(&route.path, &candidates, WITHIN_M)
        .into_iter()
        .map(|s| {
            let district = placed
                .iter()
                .find(|p| p.id == s.intersection)
                .and_then(|p| p.info.district.clone());
            (s, district)
        })
        .collect()
}
