//! Field work as the apps see it: visits, check-ins, patrols and their figures. Times are
//! milliseconds since 1970 (the device's clock); months are `YYYY-MM`.

pub use wangge_core::activity::VisitPurpose;
use wangge_core::activity::{self as core, track};
use wangge_core::model;

use crate::error::{Result, small_count};
use crate::register::LatLng;

#[uniffi::remote(Enum)]
pub enum VisitPurpose {
    Routine,
    Care,
    Verification,
    Mediation,
    SafetyCheck,
    Outreach,
    Other,
}

/// Whom a visit was to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum VisitTarget {
    Household { id: String },
    Organization { id: String },
}

impl TryFrom<VisitTarget> for core::VisitTarget {
    type Error = crate::ApiError;
    fn try_from(target: VisitTarget) -> Result<Self> {
        Ok(match target {
            VisitTarget::Household { id } => core::VisitTarget::Household(model::HouseholdId::parse(&id)?),
            VisitTarget::Organization { id } => core::VisitTarget::Organization(model::OrganizationId::parse(&id)?),
        })
    }
}

impl From<core::VisitTarget> for VisitTarget {
    fn from(target: core::VisitTarget) -> Self {
        match target {
            core::VisitTarget::Household(id) => VisitTarget::Household { id: id.to_string() },
            core::VisitTarget::Organization(id) => VisitTarget::Organization { id: id.to_string() },
        }
    }
}

/// A visit (走访) as the worker records it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewVisit {
    pub grid: String,
    pub target: VisitTarget,
    pub time_ms: i64,
    #[uniffi(default = None)]
    pub location: Option<LatLng>,
    pub purpose: VisitPurpose,
    /// What was found; at most 2,000 characters.
    #[uniffi(default = "")]
    pub findings: String,
    #[uniffi(default = None)]
    pub follow_up: Option<String>,
}

pub(crate) fn to_core_visit(visit: NewVisit) -> Result<core::NewVisit> {
    Ok(core::NewVisit {
        target: visit.target.try_into()?,
        time_ms: visit.time_ms,
        location: visit.location.map(model::Wgs84::try_from).transpose()?,
        purpose: visit.purpose,
        findings: visit.findings,
        follow_up: visit.follow_up,
    })
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Visit {
    pub id: String,
    pub grid: String,
    pub worker: String,
    pub target: VisitTarget,
    pub time_ms: i64,
    pub location: Option<LatLng>,
    pub purpose: VisitPurpose,
    pub findings: String,
    pub follow_up: Option<String>,
    /// The incident raised from this visit.
    pub incident: Option<String>,
}

impl From<core::Visit> for Visit {
    fn from(v: core::Visit) -> Self {
        Visit {
            id: v.id,
            grid: v.grid,
            worker: v.worker,
            target: v.target.into(),
            time_ms: v.time_ms,
            location: v.location.map(Into::into),
            purpose: v.purpose,
            findings: v.findings,
            follow_up: v.follow_up,
            incident: v.incident.map(|id| id.to_string()),
        }
    }
}

/// A visit recorded together with the incident it raised.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VisitWithIncident {
    pub visit: String,
    pub incident: String,
}

#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CheckIn {
    pub id: String,
    pub grid: String,
    pub worker: String,
    pub time_ms: i64,
    pub location: LatLng,
    /// Inside the grid by its boundary on this device; `None` when it has no boundary.
    pub inside_grid: Option<bool>,
    /// How far outside the grid, in metres, when outside.
    pub distance_to_grid_m: Option<f64>,
}

impl From<core::CheckIn> for CheckIn {
    fn from(c: core::CheckIn) -> Self {
        CheckIn {
            id: c.id,
            grid: c.grid,
            worker: c.worker,
            time_ms: c.time_ms,
            location: c.location.into(),
            inside_grid: c.inside_grid,
            distance_to_grid_m: c.distance_to_grid_m,
        }
    }
}

/// A GPS fix of a patrol.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct TrackPoint {
    pub time_ms: i64,
    pub lat: f64,
    pub lng: f64,
}

impl From<TrackPoint> for track::TrackPoint {
    fn from(p: TrackPoint) -> Self {
        track::TrackPoint { time_ms: p.time_ms, lat: p.lat, lng: p.lng }
    }
}

impl From<track::TrackPoint> for TrackPoint {
    fn from(p: track::TrackPoint) -> Self {
        TrackPoint { time_ms: p.time_ms, lat: p.lat, lng: p.lng }
    }
}

/// A patrol (巡查): its figures; the track itself is the blob `track`.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Patrol {
    pub id: String,
    pub grid: String,
    pub worker: String,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub distance_m: f64,
    pub n_points: i32,
    /// Segments too fast or too long to have been walked or ridden (GPS jumps).
    pub n_flagged: i32,
    pub buildings_passed: Vec<String>,
    pub track: String,
}

impl From<core::Patrol> for Patrol {
    fn from(p: core::Patrol) -> Self {
        Patrol {
            id: p.id,
            grid: p.grid,
            worker: p.worker,
            started_ms: p.summary.started_ms,
            ended_ms: p.summary.ended_ms,
            distance_m: p.summary.distance_m,
            n_points: small_count(p.summary.n_points),
            n_flagged: small_count(p.summary.n_flagged),
            buildings_passed: p.buildings_passed.iter().map(ToString::to_string).collect(),
            track: p.track,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, uniffi::Record)]
pub struct Coverage {
    pub n_buildings: i32,
    pub n_covered: i32,
    pub share: Option<f64>,
}

impl From<core::Coverage> for Coverage {
    fn from(c: core::Coverage) -> Self {
        Coverage { n_buildings: small_count(c.n_buildings), n_covered: small_count(c.n_covered), share: c.share }
    }
}

/// A worker's month in figures.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct WorkerMonth {
    pub n_visits: i32,
    pub n_check_in_days: i32,
    pub n_check_ins_outside: i32,
    pub n_patrols: i32,
    pub patrol_distance_m: f64,
    pub coverage: Option<f64>,
    pub n_incidents_reported: i32,
    pub n_resolved_on_spot: i32,
    pub n_completed: i32,
    pub n_completed_on_time: i32,
}

impl From<core::WorkerMonth> for WorkerMonth {
    fn from(m: core::WorkerMonth) -> Self {
        WorkerMonth {
            n_visits: small_count(m.n_visits),
            n_check_in_days: small_count(m.n_check_in_days),
            n_check_ins_outside: small_count(m.n_check_ins_outside),
            n_patrols: small_count(m.n_patrols),
            patrol_distance_m: m.patrol_distance_m,
            coverage: m.coverage,
            n_incidents_reported: small_count(m.n_incidents_reported),
            n_resolved_on_spot: small_count(m.n_resolved_on_spot),
            n_completed: small_count(m.n_completed),
            n_completed_on_time: small_count(m.n_completed_on_time),
        }
    }
}

/// A recorded view of a resident's full values: who, what, when, why.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FullView {
    pub id: String,
    pub grid: String,
    pub worker: String,
    pub time_ms: i64,
    /// `resident/<id>`.
    pub record: String,
    pub fields: Vec<String>,
    pub reason: String,
}

impl From<core::FullView> for FullView {
    fn from(v: core::FullView) -> Self {
        FullView {
            id: v.id,
            grid: v.grid,
            worker: v.worker,
            time_ms: v.time_ms,
            record: v.record,
            fields: v.fields,
            reason: v.reason,
        }
    }
}

/// Which grid a point is in, by the boundaries on this device.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum Located {
    /// In this grid (its community's 12-digit and township's 9-digit codes with it).
    Grid { grid: String, community: String, township: String },
    /// Inside overlapping grids: none is picked.
    Ambiguous { grids: Vec<String> },
    /// In no grid; the nearest one and the distance to its edge.
    Outside { nearest_grid: String, distance_m: f64 },
    /// The device has no boundaries (none were published).
    NoBoundaries,
}

impl From<wangge_core::place::boundaries::Located> for Located {
    fn from(located: wangge_core::place::boundaries::Located) -> Self {
        use wangge_core::place::boundaries::Located as L;
        match located {
            L::Grid { grid, community, township } => Located::Grid { grid: grid.to_string(), community, township },
            L::Ambiguous { grids } => Located::Ambiguous { grids: grids.iter().map(ToString::to_string).collect() },
            L::Outside { nearest_grid, distance_m } => {
                Located::Outside { nearest_grid: nearest_grid.to_string(), distance_m }
            }
            L::NoBoundaries => Located::NoBoundaries,
        }
    }
}

/// A building, component or open incident near a point.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NearbyItem {
    /// `building`, `component` or `incident`.
    pub kind: String,
    pub id: String,
    pub grid: String,
    pub label: String,
    pub location: LatLng,
    pub distance_m: f64,
}

impl From<wangge_core::place::boundaries::NearbyItem> for NearbyItem {
    fn from(item: wangge_core::place::boundaries::NearbyItem) -> Self {
        use wangge_core::place::boundaries::NearbyRecord as R;
        let (kind, id) = match item.record {
            R::Building(id) => ("building", id.to_string()),
            R::Component(id) => ("component", id.to_string()),
            R::Incident(id) => ("incident", id.to_string()),
        };
        NearbyItem {
            kind: kind.to_owned(),
            id,
            grid: item.grid.to_string(),
            label: item.label,
            location: item.location.into(),
            distance_m: item.distance_m,
        }
    }
}

/// A grid's public card (网格公示): what the regulations require to be posted for it.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct GridCard {
    pub code: String,
    pub name: String,
    pub kind: String,
    /// The kind in Chinese, e.g. `城市社区网格`.
    pub kind_label: String,
    /// The boundary as a GeoJSON geometry (WGS-84), if published.
    pub boundary: Option<String>,
    pub area_m2: Option<f64>,
    /// The grid leader(s) (网格长).
    pub leaders: Vec<PostedContact>,
    /// The grid workers posted with their contact.
    pub workers: Vec<PostedContact>,
    /// The supervision phone (监督电话).
    pub supervision_phone: Option<String>,
}

/// A posted name and work phone, with the role's Chinese name.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PostedContact {
    pub role: String,
    pub role_label: String,
    pub name: String,
    pub phone: Option<String>,
}

impl From<wangge_core::card::GridCard> for GridCard {
    fn from(card: wangge_core::card::GridCard) -> Self {
        let contacts = |list: Vec<wangge_core::reference::PostedContact>| {
            list.into_iter()
                .map(|contact| PostedContact {
                    role_label: contact.role_label().to_owned(),
                    role: contact.role,
                    name: contact.name,
                    phone: contact.phone,
                })
                .collect()
        };
        GridCard {
            code: card.code.to_string(),
            name: card.name,
            kind: card.kind,
            kind_label: card.kind_label,
            boundary: card.boundary,
            area_m2: card.area_m2,
            leaders: contacts(card.leaders),
            workers: contacts(card.workers),
            supervision_phone: card.supervision_phone,
        }
    }
}
