//! The dispatch area: 112/119 call takers and dispatchers act on calls
//! (`POST /api/calls/{city}/{call_id}/actions`). An action becomes one or
//! more call events published on the bus with the session's user as
//! `operator`; the console shows it done when those events come back
//! through ingest (the call's projection lists the `action_id`). The same
//! `action_id` sent again answers as the first time and publishes nothing;
//! one call taker per call and one call per unit are held here between a
//! publish and its return through ingest. Every action, done or refused,
//! is audited.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::routes::{get as get_route, page, post as post_route, Route, Rule};
use super::{assets, gate, ApiError, WebContext};
use crate::contract::topic::{is_city_slug, is_identifier};
use crate::contract::validate::validate_outgoing;
use crate::contract::{
    AssignmentAction, CallCategory, CallEvent, CallEventType, CallLine, Caller, Disposition,
    Message, Topic, Triage, UnitAssignment, UnitState,
};
use crate::identity::audit::Entry;
use crate::identity::{Permission, Person};
use crate::state::UpdateKind;
use crate::store::history::{HistoryAnswer, HistoryQuery};

/// How long a claim (an answer, a unit committed) holds here on its own
/// while its event travels back through ingest; the live state decides after.
const CLAIM_HELD: Duration = Duration::from_secs(30);
/// How long a done action's answer is kept for a retry with its `action_id`.
const DONE_KEPT: Duration = Duration::from_secs(15 * 60);
/// The most done actions kept for retries.
const DONE_MAX: usize = 20_000;
/// The most units one dispatch may send.
const UNITS_MAX: usize = 8;

/// An action as the console sends it, besides `action_id`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum Action {
    /// A struct variant, so that `deny_unknown_fields` holds for it too.
    Answer {},
    Classify {
        category: CallCategory,
        priority: u8,
        triage: Option<Triage>,
        protocol: Option<String>,
    },
    Locate {
        lat: f64,
        lon: f64,
        address: Option<String>,
    },
    Note {
        text: String,
    },
    Dispatch {
        units: Vec<String>,
    },
    Reassign {
        units: Vec<String>,
    },
    CancelUnit {
        unit: String,
        note: Option<String>,
    },
    Transfer {
        to: String,
        note: Option<String>,
    },
    Close {
        disposition: Disposition,
        note: Option<String>,
    },
    Callback {
        note: Option<String>,
    },
    Merge {
        into: String,
    },
    /// Looked at, and not the same emergency as `other`: the flag goes.
    KeepApart {
        other: String,
    },
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Answer {} => "answer",
            Action::Classify { .. } => "classify",
            Action::Locate { .. } => "locate",
            Action::Note { .. } => "note",
            Action::Dispatch { .. } => "dispatch",
            Action::Reassign { .. } => "reassign",
            Action::CancelUnit { .. } => "cancel_unit",
            Action::Transfer { .. } => "transfer",
            Action::Close { .. } => "close",
            Action::Callback { .. } => "callback",
            Action::Merge { .. } => "merge",
            Action::KeepApart { .. } => "keep_apart",
        }
    }
}

/// What a handler needs of a call's live projection.
#[derive(Deserialize)]
struct CallView {
    call_id: String,
    line: CallLine,
    stage: CallEventType,
    open: bool,
    operator: Option<String>,
    #[serde(default)]
    stages: HashMap<CallEventType, serde_json::Value>,
    #[serde(default)]
    units: Vec<UnitOnCall>,
    incident_id: Option<String>,
    callback: Option<String>,
    priority: Option<u8>,
    category: Option<CallCategory>,
    caller: Option<Caller>,
}

#[derive(Deserialize)]
struct UnitOnCall {
    unit: String,
}

/// What a handler needs of a unit's live status.
#[derive(Deserialize)]
struct UnitView {
    agency: String,
    status: UnitState,
    call_id: Option<String>,
}

/// A done action, kept so that a retry gets the same answer.
struct Done {
    user: String,
    request: serde_json::Value,
    answer: serde_json::Value,
    at: Instant,
}

/// The claims and done actions of this node.
#[derive(Default)]
struct Desk {
    done: HashMap<Uuid, Done>,
    done_order: VecDeque<Uuid>,
    in_flight: HashSet<Uuid>,
    /// `{city}/{call}` -> who answered it, until the state has it.
    answers: HashMap<String, (String, Instant)>,
    /// `{city}/{unit}` -> the call it was last sent to from this node; it
    /// counts while that call is open and holds the unit (a field unit may
    /// take long to report itself dispatched, or never).
    units: HashMap<String, (String, Instant)>,
}

/// Claims held between a publish and its return through ingest, and the
/// answers of done actions. One node's; a second node sees the other's
/// claims once their events are in its live state.
#[derive(Default)]
pub struct DispatchDesk {
    inner: Mutex<Desk>,
}

impl DispatchDesk {
    fn lock(&self) -> std::sync::MutexGuard<'_, Desk> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A claim an action made, with what it replaced.
enum Claim {
    Answer(String),
    Unit(String, Option<(String, Instant)>),
}

/// What starting an action found.
enum Begin {
    New,
    Repeat(serde_json::Value),
}

impl Desk {
    fn begin(
        &mut self,
        id: Uuid,
        user: &str,
        request: &serde_json::Value,
    ) -> Result<Begin, ApiError> {
        let now = Instant::now();
        while let Some(old) = self.done_order.front().copied() {
            let stale = self
                .done
                .get(&old)
                .is_none_or(|d| now.duration_since(d.at) > DONE_KEPT);
            if !stale && self.done_order.len() <= DONE_MAX {
                break;
            }
            self.done_order.pop_front();
            self.done.remove(&old);
        }
        self.answers
            .retain(|_, (_, at)| now.duration_since(*at) < CLAIM_HELD);
        if let Some(d) = self.done.get(&id) {
            if d.user != user || d.request != *request {
                return Err(ApiError::conflict(format!(
                    "action_id {id} was already used for another action: make a new one for each action"
                )));
            }
            let mut answer = d.answer.clone();
            answer["repeat"] = true.into();
            return Ok(Begin::Repeat(answer));
        }
        if !self.in_flight.insert(id) {
            return Err(ApiError::conflict(format!(
                "action {id} is still being carried out: retry it in a moment"
            )));
        }
        Ok(Begin::New)
    }

    /// Claims what the planned events take (the call's answer, each unit
    /// dispatched), atomically: of two racing requests that both passed
    /// the checks against the live state, the second is refused here.
    /// Returns the claims made, to be released if the action fails.
    fn claim(
        &mut self,
        city: &str,
        user: &str,
        planned: &[Planned],
    ) -> Result<Vec<Claim>, ApiError> {
        let now = Instant::now();
        let moving: HashSet<(&str, &str)> = planned
            .iter()
            .filter(|p| p.event.kind == CallEventType::UnitCancelled)
            .filter_map(|p| Some((p.event.unit.as_deref()?, p.event.call_id.as_str())))
            .collect();
        for p in planned {
            let e = &p.event;
            match (e.kind, &e.unit) {
                (CallEventType::Answered, _) => {
                    if let Some((by, _)) = self.answers.get(&format!("{city}/{}", e.call_id)) {
                        return Err(ApiError::conflict(format!(
                            "call {} was already answered by {by}",
                            e.call_id
                        )));
                    }
                }
                (CallEventType::Dispatched, Some(u)) => {
                    if let Some((other, _)) = self.units.get(&format!("{city}/{u}")) {
                        if *other != e.call_id && !moving.contains(&(u.as_str(), other.as_str())) {
                            return Err(ApiError::conflict(format!(
                                "unit {u} is on call {other}: reassign it to move it here"
                            )));
                        }
                    }
                }
                _ => {}
            }
        }
        let mut made = Vec::new();
        for p in planned {
            let e = &p.event;
            match (e.kind, &e.unit) {
                (CallEventType::Answered, _) => {
                    let key = format!("{city}/{}", e.call_id);
                    self.answers.insert(key.clone(), (user.to_owned(), now));
                    made.push(Claim::Answer(key));
                }
                (CallEventType::Dispatched, Some(u)) => {
                    let key = format!("{city}/{u}");
                    let before = self.units.insert(key.clone(), (e.call_id.clone(), now));
                    made.push(Claim::Unit(key, before));
                }
                (CallEventType::UnitCancelled, Some(u)) => {
                    let key = format!("{city}/{u}");
                    if self.units.get(&key).is_some_and(|(c, _)| *c == e.call_id) {
                        let before = self.units.remove(&key);
                        made.push(Claim::Unit(key, before));
                    }
                }
                _ => {}
            }
        }
        Ok(made)
    }

    /// Undoes the claims of an action that was not published, newest first.
    fn release(&mut self, claims: Vec<Claim>) {
        for c in claims.into_iter().rev() {
            match c {
                Claim::Answer(key) => {
                    self.answers.remove(&key);
                }
                Claim::Unit(key, Some(before)) => {
                    self.units.insert(key, before);
                }
                Claim::Unit(key, None) => {
                    self.units.remove(&key);
                }
            }
        }
    }

    fn finish(&mut self, id: Uuid, done: Option<Done>) {
        self.in_flight.remove(&id);
        if let Some(d) = done {
            self.done.insert(id, d);
            self.done_order.push_back(id);
        }
    }
}

/// The event ids of an action: derived from its `action_id`, so that the
/// same action published again (after a restart lost this node's memory)
/// carries the same ids, which the state and the store drop as repeats.
fn event_id(action_id: Uuid, n: usize) -> Uuid {
    Uuid::new_v5(&action_id, &(n as u64).to_be_bytes())
}

/// One call event to publish: the call, its line, and the event.
struct Planned {
    topic: Topic,
    event: CallEvent,
}

/// The request, with the fields every action shares taken out.
struct Request {
    action_id: Uuid,
    action: Action,
    raw: serde_json::Value,
}

fn parse_request(body: &[u8]) -> Result<Request, ApiError> {
    let raw: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let serde_json::Value::Object(mut map) = raw.clone() else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object with \"action\" and \"action_id\"",
        ));
    };
    for field in ["operator", "issued_by"] {
        if map.contains_key(field) {
            return Err(ApiError::bad_request(format!(
                "{field} is not accepted: who acted is taken from your session; remove the field"
            )));
        }
    }
    let action_id = match map.remove("action_id") {
        None => {
            return Err(ApiError::bad_request(
                "action_id is missing: send a uuid made for this action, and the same one when you retry it",
            ))
        }
        Some(v) => serde_json::from_value::<Uuid>(v)
            .map_err(|_| ApiError::bad_request("action_id is not a uuid"))?,
    };
    if !map.contains_key("action") {
        return Err(ApiError::bad_request(
            "action is missing: one of answer, classify, locate, note, dispatch, reassign, cancel_unit, transfer, close, callback, merge, keep_apart",
        ));
    }
    let action: Action = serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Request {
        action_id,
        action,
        raw,
    })
}

/// Decodes a live entity the hub holds.
async fn live<T: for<'de> Deserialize<'de>>(
    ctx: &WebContext,
    kind: UpdateKind,
    key: &str,
) -> Result<Option<T>, ApiError> {
    let Some(u) = ctx
        .hub
        .get(kind, key)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
    else {
        return Ok(None);
    };
    if u.is_removal() {
        return Ok(None);
    }
    serde_json::from_str(u.value_json()).map(Some).map_err(|e| {
        ApiError::unavailable(format!(
            "the live {} {key} could not be read: {e}",
            kind.as_str()
        ))
    })
}

async fn call_of(ctx: &WebContext, city: &str, call_id: &str) -> Result<CallView, ApiError> {
    live(ctx, UpdateKind::Call, &format!("{city}/{call_id}"))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no call {call_id:?} in city {city:?}: no event of it has come through ingest"
            ))
        })
}

fn ident(field: &str, v: &str) -> Result<(), ApiError> {
    if is_identifier(v) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} {v:?} is not an identifier (1-64 of a-z A-Z 0-9 _ -)"
        )))
    }
}

/// Everything an action needs to be planned.
struct Scene<'a> {
    ctx: &'a WebContext,
    city: &'a str,
    call_id: &'a str,
    call: CallView,
    user: &'a str,
    action_id: Uuid,
    now: crate::contract::Ts,
}

impl Scene<'_> {
    fn event(&self, kind: CallEventType) -> CallEvent {
        CallEvent {
            operator: Some(self.user.to_owned()),
            action_id: Some(self.action_id),
            // The id is set when the action's events are numbered.
            ..CallEvent::new(
                Uuid::nil(),
                self.call_id.to_owned(),
                self.now,
                self.call.line,
                kind,
            )
        }
    }

    fn on(&self, line: CallLine, call_id: &str, event: CallEvent) -> Planned {
        Planned {
            topic: Topic::Call {
                city: self.city.to_owned(),
                line,
            },
            event: CallEvent {
                call_id: call_id.to_owned(),
                line,
                ..event
            },
        }
    }

    fn here(&self, event: CallEvent) -> Planned {
        self.on(self.call.line, self.call_id, event)
    }

    fn answered(&self) -> bool {
        self.call.stages.contains_key(&CallEventType::Answered)
    }

    fn open(&self) -> Result<(), ApiError> {
        if self.call.open {
            Ok(())
        } else {
            Err(ApiError::conflict(format!(
                "call {} is over ({}): reopen is not possible, start a new call",
                self.call_id,
                self.call.stage.as_str()
            )))
        }
    }

    fn must_be_answered(&self, what: &str) -> Result<(), ApiError> {
        self.open()?;
        if self.answered() {
            Ok(())
        } else {
            Err(ApiError::conflict(format!(
                "call {} is not answered yet: answer it before you {what}",
                self.call_id
            )))
        }
    }

    /// A unit's live status, when it is in the city and not on this call yet.
    async fn unit_not_here(&self, unit: &str) -> Result<UnitView, ApiError> {
        ident("unit", unit)?;
        let key = format!("{}/{unit}", self.city);
        let view: UnitView = live(self.ctx, UpdateKind::Unit, &key)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no unit {unit:?} in city {:?}: no status has come from it",
                    self.city
                ))
            })?;
        if self.call.units.iter().any(|u| u.unit == unit) {
            return Err(ApiError::conflict(format!(
                "unit {unit} is already on call {}",
                self.call_id
            )));
        }
        Ok(view)
    }

    /// A unit that may be sent to this call: live in the city, in service,
    /// and not working (or just sent to) another open call.
    async fn free_unit(&self, desk: &DispatchDesk, unit: &str) -> Result<UnitView, ApiError> {
        let view = self.unit_not_here(unit).await?;
        if view.status == UnitState::OutOfService {
            return Err(ApiError::conflict(format!("unit {unit} is out of service")));
        }
        if let Some(other) = self.current_call(desk, unit, &view).await? {
            return Err(ApiError::conflict(format!(
                "unit {unit} is on call {other}: reassign it to move it here"
            )));
        }
        Ok(view)
    }

    /// The other open call a unit works, if any: from its status, from a
    /// dispatch this node published that its status does not show yet, or
    /// from the live calls that list it.
    async fn current_call(
        &self,
        desk: &DispatchDesk,
        unit: &str,
        view: &UnitView,
    ) -> Result<Option<String>, ApiError> {
        let busy = matches!(
            view.status,
            UnitState::Dispatched | UnitState::EnRoute | UnitState::OnScene
        );
        let claimed = desk
            .lock()
            .units
            .get(&format!("{}/{unit}", self.city))
            .map(|(call, at)| (call.clone(), at.elapsed() < CLAIM_HELD));
        let reported = view.call_id.clone().filter(|_| busy).map(|c| (c, false));
        for (other, fresh) in [reported, claimed].into_iter().flatten() {
            if other == self.call_id {
                continue;
            }
            // The unit is on the other call while that call is open and
            // holds it (or was just sent there: its event may not be back yet).
            let held = live::<CallView>(
                self.ctx,
                UpdateKind::Call,
                &format!("{}/{other}", self.city),
            )
            .await?
            .is_none_or(|c| c.open && (fresh || busy || c.units.iter().any(|u| u.unit == unit)));
            if held {
                return Ok(Some(other));
            }
            // A claim whose call let the unit go (closed, or cancelled elsewhere).
            let key = format!("{}/{unit}", self.city);
            let mut d = desk.lock();
            if d.units.get(&key).is_some_and(|(c, _)| *c == other) {
                d.units.remove(&key);
            }
        }
        // Neither its status nor this node knows (a field unit slow to
        // report, or a node restarted since the dispatch): the calls do.
        let needle = format!("\"unit\":\"{unit}\"");
        let calls = self
            .ctx
            .hub
            .all_of(UpdateKind::Call, self.city)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        for u in calls {
            let json = u.value_json();
            if !json.contains(&needle) {
                continue;
            }
            let Ok(c) = serde_json::from_str::<CallView>(json) else {
                continue;
            };
            if c.open && c.call_id != self.call_id && c.units.iter().any(|x| x.unit == unit) {
                return Ok(Some(c.call_id));
            }
        }
        Ok(None)
    }

    /// The orders to field units that go with an action's call events: go
    /// for each unit dispatched, stand down for each unit taken off (a unit
    /// moved elsewhere gets only its new order), and for every unit still
    /// on a call that is closed or handed over.
    fn orders(&self, planned: &[Planned]) -> Vec<(Topic, UnitAssignment)> {
        use CallEventType as E;
        let assigned: HashSet<&str> = planned
            .iter()
            .filter(|p| p.event.kind == E::Dispatched)
            .filter_map(|p| p.event.unit.as_deref())
            .collect();
        let mut out = Vec::new();
        let order = |unit: &str, call_id: &str, action: AssignmentAction| {
            let here = call_id == self.call_id;
            (
                Topic::Assignment {
                    city: self.city.to_owned(),
                    unit: unit.to_owned(),
                },
                UnitAssignment {
                    assignment_id: Uuid::nil(),
                    ts: self.now,
                    unit: unit.to_owned(),
                    action,
                    call_id: call_id.to_owned(),
                    line: self.call.line,
                    priority: self.call.priority.filter(|_| here),
                    category: self.call.category.filter(|_| here),
                    destination: self.call.caller.clone().filter(|_| here),
                    note: None,
                    issued_by: self.user.to_owned(),
                },
            )
        };
        for p in planned {
            let e = &p.event;
            match (e.kind, e.unit.as_deref()) {
                (E::Dispatched, Some(u)) => {
                    out.push(order(u, &e.call_id, AssignmentAction::Assign))
                }
                (E::UnitCancelled, Some(u)) if !assigned.contains(u) => {
                    out.push(order(u, &e.call_id, AssignmentAction::Cancel))
                }
                (E::Closed | E::Transferred, _) => {
                    for u in &self.call.units {
                        out.push(order(&u.unit, &e.call_id, AssignmentAction::Cancel));
                    }
                }
                _ => {}
            }
        }
        // A reassigned unit's order names the line of the call it goes to.
        for (_, a) in &mut out {
            if let Some(p) = planned.iter().find(|p| p.event.call_id == a.call_id) {
                a.line = p.event.line;
            }
        }
        out
    }

    /// The call events an action publishes, after its rules are checked.
    async fn plan(&self, desk: &DispatchDesk, action: &Action) -> Result<Vec<Planned>, ApiError> {
        use CallEventType as E;
        let note = |n: &Option<String>| n.clone().filter(|s| !s.trim().is_empty());
        Ok(match action {
            // An answer this node published that the state does not show
            // yet is refused when the action claims the call (`Desk::claim`).
            Action::Answer {} => {
                self.open()?;
                if self.answered() {
                    return Err(ApiError::conflict(format!(
                        "call {} was already answered{}",
                        self.call_id,
                        self.call
                            .operator
                            .as_ref()
                            .map(|b| format!(" by {b}"))
                            .unwrap_or_default()
                    )));
                }
                vec![self.here(self.event(E::Answered))]
            }
            Action::Classify {
                category,
                priority,
                triage,
                protocol,
            } => {
                self.must_be_answered("classify it")?;
                if !(1..=4).contains(priority) {
                    return Err(ApiError::bad_request(format!(
                        "priority {priority} is not 1 (life-threatening) to 4 (no urgency)"
                    )));
                }
                vec![self.here(CallEvent {
                    category: Some(*category),
                    priority: Some(*priority),
                    triage: Some(triage.unwrap_or(Triage::Normal)),
                    protocol: protocol.clone().filter(|p| !p.is_empty()),
                    ..self.event(E::Classified)
                })]
            }
            Action::Locate { lat, lon, address } => {
                self.open()?;
                vec![self.here(CallEvent {
                    caller: Some(Caller {
                        lat: *lat,
                        lon: *lon,
                        address: note(address),
                    }),
                    ..self.event(E::Located)
                })]
            }
            Action::Note { text } => {
                if text.trim().is_empty() {
                    return Err(ApiError::bad_request("text is empty: write the note"));
                }
                vec![self.here(CallEvent {
                    note: Some(text.clone()),
                    ..self.event(E::Noted)
                })]
            }
            Action::Dispatch { units } | Action::Reassign { units } => {
                self.must_be_answered("dispatch units")?;
                let reassign = matches!(action, Action::Reassign { .. });
                if units.is_empty() || units.len() > UNITS_MAX {
                    return Err(ApiError::bad_request(format!(
                        "units must list 1 to {UNITS_MAX} unit ids"
                    )));
                }
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                for unit in units {
                    if !seen.insert(unit) {
                        return Err(ApiError::bad_request(format!(
                            "unit {unit} is listed twice"
                        )));
                    }
                    let view = if reassign {
                        self.moved_unit(desk, unit, &mut out).await?
                    } else {
                        self.free_unit(desk, unit).await?
                    };
                    out.push(self.here(CallEvent {
                        unit: Some(unit.clone()),
                        agency: Some(view.agency),
                        ..self.event(E::Dispatched)
                    }));
                }
                out
            }
            Action::CancelUnit { unit, note: n } => {
                self.open()?;
                ident("unit", unit)?;
                if !self.call.units.iter().any(|u| &u.unit == unit) {
                    return Err(ApiError::conflict(format!(
                        "unit {unit} is not on call {}",
                        self.call_id
                    )));
                }
                vec![self.here(CallEvent {
                    unit: Some(unit.clone()),
                    note: note(n),
                    ..self.event(E::UnitCancelled)
                })]
            }
            Action::Transfer { to, note: n } => {
                self.must_be_answered("transfer it")?;
                ident("to", to)?;
                vec![self.here(CallEvent {
                    agency: Some(to.clone()),
                    note: note(n),
                    ..self.event(E::Transferred)
                })]
            }
            Action::Close {
                disposition,
                note: n,
            } => {
                self.must_be_answered("close it")?;
                vec![self.here(CallEvent {
                    disposition: Some(*disposition),
                    note: note(n),
                    ..self.event(E::Closed)
                })]
            }
            Action::Callback { note: n } => {
                if self.call.stage != E::Abandoned {
                    return Err(ApiError::conflict(format!(
                        "call {} was not abandoned ({}): only an abandoned caller is called back",
                        self.call_id,
                        self.call.stage.as_str()
                    )));
                }
                vec![self.here(CallEvent {
                    note: note(n),
                    callback: self.call.callback.clone(),
                    ..self.event(E::CalledBack)
                })]
            }
            Action::Merge { into } => {
                ident("into", into)?;
                if into == self.call_id {
                    return Err(ApiError::bad_request("a call cannot be merged into itself"));
                }
                let other = call_of(self.ctx, self.city, into).await?;
                let incident = other
                    .incident_id
                    .clone()
                    .or_else(|| self.call.incident_id.clone())
                    .unwrap_or_else(|| format!("inc-{into}"));
                let merged = |related: &str| CallEvent {
                    incident_id: Some(incident.clone()),
                    related_call: Some(related.to_owned()),
                    ..self.event(E::Merged)
                };
                let mut out = vec![self.here(merged(into))];
                if other.incident_id.as_deref() != Some(incident.as_str()) {
                    out.push(self.on(other.line, into, merged(self.call_id)));
                }
                out
            }
            Action::KeepApart { other } => {
                ident("other", other)?;
                if other == self.call_id {
                    return Err(ApiError::bad_request(
                        "a call cannot be kept apart from itself",
                    ));
                }
                call_of(self.ctx, self.city, other).await?;
                vec![self.here(CallEvent {
                    related_call: Some(other.clone()),
                    ..self.event(E::Merged)
                })]
            }
        })
    }

    /// A unit to be moved from the call it works to this one: its
    /// cancellation there is planned into `out`.
    async fn moved_unit(
        &self,
        desk: &DispatchDesk,
        unit: &str,
        out: &mut Vec<Planned>,
    ) -> Result<UnitView, ApiError> {
        let view = self.unit_not_here(unit).await?;
        let Some(from) = self.current_call(desk, unit, &view).await? else {
            return Err(ApiError::conflict(format!(
                "unit {unit} is on no other call: dispatch it instead"
            )));
        };
        if let Some(old) =
            live::<CallView>(self.ctx, UpdateKind::Call, &format!("{}/{from}", self.city)).await?
        {
            if old.units.iter().any(|u| u.unit == unit) {
                out.push(self.on(
                    old.line,
                    &from,
                    CallEvent {
                        unit: Some(unit.to_owned()),
                        note: Some(format!("reassigned to call {}", self.call_id)),
                        ..self.event(CallEventType::UnitCancelled)
                    },
                ));
            }
        }
        Ok(view)
    }
}

#[post("/api/calls/{city}/{call_id}/actions")]
async fn act(
    ctx: web::Data<WebContext>,
    req: HttpRequest,
    person: Person,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (city, call_id) = path.into_inner();
    let request = parse_request(&body)?;
    if !is_city_slug(&city) {
        return Err(ApiError::bad_request(format!(
            "city {city:?} is not a city slug (1-64 of a-z 0-9 -)"
        )));
    }
    ident("call_id", &call_id)?;
    let desk = &ctx.desk;
    let begun = desk
        .lock()
        .begin(request.action_id, person.name(), &request.raw)?;
    if let Begin::Repeat(answer) = begun {
        return Ok(HttpResponse::Accepted().json(answer));
    }
    let outcome = carry_out(&ctx, &req, &person, &city, &call_id, &request).await;
    let done = outcome.as_ref().ok().map(|answer| Done {
        user: person.name().to_owned(),
        request: request.raw.clone(),
        answer: answer.clone(),
        at: Instant::now(),
    });
    desk.lock().finish(request.action_id, done);
    outcome.map(|answer| HttpResponse::Accepted().json(answer))
}

async fn carry_out(
    ctx: &WebContext,
    req: &HttpRequest,
    person: &Person,
    city: &str,
    call_id: &str,
    request: &Request,
) -> Result<serde_json::Value, ApiError> {
    let action = &request.action;
    let addr = gate::client_addr(ctx, req);
    let entity = format!("call:{city}/{call_id}");
    let audit = |outcome: &str, detail: serde_json::Value| {
        Entry::new(
            person.name(),
            &person.roles_text(),
            &addr,
            &format!("call_{}", action.name()),
        )
        .entity(entity.clone())
        .outcome(outcome)
        .detail(detail)
    };
    let detail = serde_json::json!({ "action_id": request.action_id, "request": request.raw });
    if !person.in_city(city) {
        ctx.record(audit("refused_scope", detail)).await;
        return Err(ApiError::forbidden(format!(
            "city {city:?} is outside your cities"
        )));
    }
    let call = call_of(ctx, city, call_id).await?;
    let scene = Scene {
        ctx,
        city,
        call_id,
        call,
        user: person.name(),
        action_id: request.action_id,
        now: Utc::now().with_timezone(&crate::domain::wib()),
    };
    let planned = match scene.plan(&ctx.desk, action).await {
        Ok(p) => p,
        Err(e) => {
            if e.status == actix_web::http::StatusCode::CONFLICT {
                let detail = serde_json::json!({ "action_id": request.action_id, "request": request.raw, "reason": e.message });
                ctx.record(audit("refused_conflict", detail)).await;
            }
            return Err(e);
        }
    };
    let claimed = ctx.desk.lock().claim(city, person.name(), &planned);
    let claims = match claimed {
        Ok(c) => c,
        Err(e) => {
            let detail = serde_json::json!({ "action_id": request.action_id, "request": request.raw, "reason": e.message });
            ctx.record(audit("refused_conflict", detail)).await;
            return Err(e);
        }
    };
    let orders = scene.orders(&planned);
    let published = publish(
        ctx,
        person.name(),
        request,
        planned,
        orders,
        &audit,
        &detail,
    )
    .await;
    if published.is_err() {
        ctx.desk.lock().release(claims);
    }
    let (events, assignments) = published?;
    tracing::info!(city, call_id, action = action.name(), action_id = %request.action_id, operator = person.name(), "call action published");
    Ok(serde_json::json!({
        "action_id": request.action_id,
        "call_id": call_id,
        "events": events,
        "assignments": assignments,
        "repeat": false,
    }))
}

/// Validates, audits and publishes an action's events; their summaries.
async fn publish(
    ctx: &WebContext,
    user: &str,
    request: &Request,
    planned: Vec<Planned>,
    orders: Vec<(Topic, UnitAssignment)>,
    audit: &impl Fn(&str, serde_json::Value) -> Entry,
    detail: &serde_json::Value,
) -> Result<(Vec<serde_json::Value>, Vec<serde_json::Value>), ApiError> {
    let mut wire = Vec::with_capacity(planned.len() + orders.len());
    let calls = planned
        .into_iter()
        .map(|p| (p.topic, Message::CallEvent(Box::new(p.event))));
    let units = orders
        .into_iter()
        .map(|(t, a)| (t, Message::UnitAssignment(Box::new(a))));
    for (n, (topic, mut msg)) in calls.chain(units).enumerate() {
        let id = event_id(request.action_id, n);
        match &mut msg {
            Message::CallEvent(e) => e.event_id = id,
            Message::UnitAssignment(a) => a.assignment_id = id,
            _ => {}
        }
        let bytes = validate_outgoing(&topic, &msg, &ctx.limits)
            .map_err(|r| ApiError::bad_request(r.to_string()))?;
        wire.push((topic, msg, bytes));
    }
    if let Err(wait) = ctx.actions.take(user) {
        ctx.record(audit("throttled", detail.clone())).await;
        return Err(ApiError::too_many(
            "too many actions in a short time: wait, then try again",
            wait,
        ));
    }
    if !ctx.ingest.main_connected() {
        ctx.record(audit("broker_unreachable", detail.clone()))
            .await;
        return Err(ApiError::unavailable(
            "could not publish the action: the broker is unreachable; retry with the same action_id",
        ));
    }
    let (mut events, mut assignments) = (Vec::new(), Vec::new());
    for (topic, msg, _) in &wire {
        match msg {
            Message::CallEvent(e) => events.push(serde_json::json!({ "event_id": e.event_id, "type": e.kind, "call_id": e.call_id, "unit": e.unit, "topic": topic.to_string() })),
            Message::UnitAssignment(a) => assignments.push(serde_json::json!({ "assignment_id": a.assignment_id, "action": a.action, "unit": a.unit, "call_id": a.call_id, "topic": topic.to_string() })),
            _ => {}
        }
    }
    // Recorded before it leaves: an action the audit cannot hold does not happen.
    let published = serde_json::json!({ "action_id": request.action_id, "request": request.raw, "events": events, "assignments": assignments });
    if !ctx.record(audit("published", published)).await {
        return Err(ApiError::unavailable(
            "could not record the action in the audit: it was not published",
        ));
    }
    for (topic, _, bytes) in wire {
        let Err(failure) = ctx.outbox.send(&topic, bytes).await else {
            continue;
        };
        ctx.record(audit("publish_failed", detail.clone())).await;
        return Err(ApiError::unavailable(format!(
            "could not publish the action: {failure}; retry with the same action_id"
        )));
    }
    Ok((events, assignments))
}

/// The path's city and call, for a person who may act in that city.
fn city_and_call(
    person: &Person,
    path: web::Path<(String, String)>,
) -> Result<(String, String), ApiError> {
    let (city, call_id) = path.into_inner();
    if !person.in_city(&city) {
        return Err(ApiError::forbidden(format!(
            "city {city:?} is outside your cities"
        )));
    }
    ident("call_id", &call_id)?;
    Ok((city, call_id))
}

/// What a recommendation needs of a unit's live value.
#[derive(Deserialize)]
struct UnitRow {
    unit: String,
    agency: String,
    status: UnitState,
    lat: Option<f64>,
    lon: Option<f64>,
    kind: Option<String>,
    call_id: Option<String>,
}

/// What a recommendation needs of an intersection's live value.
#[derive(Deserialize)]
struct JunctionRow {
    info: Option<JunctionInfo>,
    worst_saturation: Option<f64>,
}

#[derive(Deserialize)]
struct JunctionInfo {
    lat: f64,
    lon: f64,
}

/// How many units a recommendation proposes.
const RECOMMENDED: usize = 3;

/// The best free units of the right agency for a located call, by
/// estimated travel time on the city's roads slowed by the live DS of the
/// signalised junctions on the way (`domain::route`), with each route.
#[get("/api/calls/{city}/{call_id}/recommend")]
async fn recommend(
    ctx: web::Data<WebContext>,
    person: Person,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (city, call_id) = city_and_call(&person, path)?;
    let call = call_of(&ctx, &city, &call_id).await?;
    let Some(scene) = call.caller.as_ref().map(|c| (c.lat, c.lon)) else {
        return Err(ApiError::conflict(format!(
            "call {call_id} has no position yet: locate the caller first"
        )));
    };
    let agency = call
        .category
        .and_then(|c| crate::domain::agency_for(c, call.priority.unwrap_or(2)));
    let decode = |u: &std::sync::Arc<crate::state::Update>| u.value_json().to_owned();
    let gone = |e: crate::hub::HubGone| ApiError::unavailable(e.to_string());
    let units: Vec<String> = ctx
        .hub
        .all_of(UpdateKind::Unit, &city)
        .await
        .map_err(gone)?
        .iter()
        .map(decode)
        .collect();
    let junctions: Vec<String> = ctx
        .hub
        .all_of(UpdateKind::Intersection, &city)
        .await
        .map_err(gone)?
        .iter()
        .map(decode)
        .collect();
    let claimed: HashSet<String> = ctx
        .desk
        .lock()
        .units
        .iter()
        .filter(|(k, (c, at))| {
            k.starts_with(&format!("{city}/")) && *c != call_id && at.elapsed() < CLAIM_HELD
        })
        .map(|(k, _)| k[city.len() + 1..].to_owned())
        .collect();
    let net = ctx.roads(&city);
    // Off the executor: a route per candidate over the city's graph.
    let answer = web::block(move || {
        let junctions: Vec<crate::domain::route::Junction> = junctions
            .iter()
            .filter_map(|j| serde_json::from_str::<JunctionRow>(j).ok())
            .filter_map(|j| {
                let i = j.info?;
                Some(crate::domain::route::Junction {
                    at: (i.lat, i.lon),
                    ds: j.worst_saturation.unwrap_or(0.0),
                })
            })
            .collect();
        let mut ranked: Vec<(UnitRow, crate::domain::route::Route)> = units
            .iter()
            .filter_map(|u| serde_json::from_str::<UnitRow>(u).ok())
            .filter(|u| {
                matches!(u.status, UnitState::Available | UnitState::Returning)
                    && agency.is_none_or(|a| u.agency == a)
                    && !claimed.contains(&u.unit)
                    && !call.units.iter().any(|x| x.unit == u.unit)
            })
            .filter_map(|u| {
                let at = (u.lat?, u.lon?);
                let route = net.route(at, scene, &junctions);
                Some((u, route))
            })
            .collect();
        ranked.sort_by(|a, b| a.1.eta_s.total_cmp(&b.1.eta_s));
        ranked.truncate(RECOMMENDED);
        let units: Vec<serde_json::Value> = ranked
            .into_iter()
            .map(|(u, r)| serde_json::json!({ "unit": u.unit, "agency": u.agency, "kind": u.kind, "status": u.status, "last_call": u.call_id, "eta_s": r.eta_s.round(), "distance_m": r.distance_m.round(), "junction_delay_s": r.junction_delay_s.round(), "junctions": r.junctions, "basis": r.basis, "route": r.path }))
            .collect();
        serde_json::json!({ "call_id": call_id, "agency": agency, "destination": { "lat": scene.0, "lon": scene.1 }, "units": units })
    })
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(answer))
}

/// One call's projection and every stored event of it: the console's detail.
#[get("/api/calls/{city}/{call_id}")]
async fn call_detail(
    ctx: web::Data<WebContext>,
    person: Person,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (city, call_id) = city_and_call(&person, path)?;
    let q = HistoryQuery::CallTimeline {
        city: city.clone(),
        call_id: call_id.clone(),
    };
    q.check()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let live = ctx
        .hub
        .get(UpdateKind::Call, &format!("{city}/{call_id}"))
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .filter(|u| !u.is_removal());
    let events = match ctx.store.query(&q).await {
        Ok(HistoryAnswer::CallEvents(e)) => e,
        Ok(_) => Vec::new(),
        Err(e) => {
            return Err(ApiError::unavailable(format!(
                "the store could not answer: {e}"
            )))
        }
    };
    if live.is_none() && events.is_empty() {
        return Err(ApiError::not_found(format!(
            "no call {call_id:?} in city {city:?}"
        )));
    }
    let call = live.as_ref().map_or("null", |u| u.value_json());
    let events =
        serde_json::to_string(&events).map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(format!(r#"{{"call":{call},"events":{events}}}"#)))
}

/// The targets the console's and the wall's timers and indicators follow.
#[get("/api/dispatch/targets")]
async fn targets(ctx: web::Data<WebContext>) -> HttpResponse {
    let d = &ctx.settings.dispatch;
    let answer: Vec<serde_json::Value> = d
        .answer_standard
        .targets()
        .iter()
        .map(|(within_s, share)| serde_json::json!({ "within_s": within_s, "share": share }))
        .collect();
    HttpResponse::Ok().json(serde_json::json!({
        "answer_standard": d.answer_standard,
        "answer": answer,
        "dispatch_s": { "1": d.dispatch_target_s[0], "2": d.dispatch_target_s[1], "3": d.dispatch_target_s[2], "4": d.dispatch_target_s[3] },
        "unit_stage_s": { "dispatched": d.unit_dispatched_s, "en_route": d.unit_en_route_s, "on_scene": d.unit_on_scene_s },
    }))
}

#[get("/dispatch")]
async fn dispatch_page() -> HttpResponse {
    assets::serve("dispatch.html")
}

/// Dispatchers (within their cities) and supervisors.
pub const ROUTES: &[Route] = &[
    page("/dispatch", Rule::May(Permission::Dispatch)),
    post_route(
        "/api/calls/{city}/{call_id}/actions",
        Rule::May(Permission::Dispatch),
    ),
    get_route(
        "/api/calls/{city}/{call_id}",
        Rule::May(Permission::Dispatch),
    ),
    get_route("/api/dispatch/targets", Rule::Wall),
    get_route(
        "/api/calls/{city}/{call_id}/recommend",
        Rule::May(Permission::Dispatch),
    ),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(act)
        .service(call_detail)
        .service(recommend)
        .service(targets)
        .service(dispatch_page);
}
