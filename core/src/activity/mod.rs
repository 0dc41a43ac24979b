//! Field work on foot: visits to households and organizations (走访), check-ins at set
//! times and places (定位、定时), and patrols (巡查) with their GPS tracks.
//!
//! A grid's activity of one month is one automerge document (DESIGN §3), key
//! `<grid>:<YYYY-MM>`, with four maps of immutable entries keyed by id: `visits`,
//! `checkins`, `patrols`, and `views` — the audit trail of full sensitive values seen. An entry is written once, by its worker, as JSON; nobody edits
//! or removes another's (the server checks). A patrol's track travels as a blob
//! ([`track`]), the document holds its summary.
//!
//! - [`doc`]: the document: genesis, entries in and out.
//! - [`track`]: the track blob (delta-encoded, compressed) and its summary.

pub mod doc;
pub mod track;

use serde::{Deserialize, Serialize};

use crate::model::{HouseholdId, IncidentId, OrganizationId, Wgs84};

code_enum!(
    /// Why a worker visits (走访的事由).
    VisitPurpose {
        /// 日常走访: the routine round of the grid's households.
        Routine = "routine", "日常走访";
        /// 关爱帮扶: a visit to someone in care (elderly alone, left-behind, disabled …).
        Care = "care", "关爱帮扶";
        /// 信息核实: checking the register's facts.
        Verification = "verification", "信息核实";
        /// 矛盾调解: mediating a dispute.
        Mediation = "mediation", "矛盾调解";
        /// 安全检查: a safety check (fire, gas, buildings).
        SafetyCheck = "safety_check", "安全检查";
        /// 政策宣传: explaining a policy.
        Outreach = "outreach", "政策宣传";
        Other = "other", "其他";
    }
);

/// Whom a visit was to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum VisitTarget {
    Household(HouseholdId),
    Organization(OrganizationId),
}

/// A visit as the worker records it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVisit {
    pub target: VisitTarget,
    /// When it took place, as the device says (ms since 1970).
    pub time_ms: i64,
    pub location: Option<Wgs84>,
    pub purpose: VisitPurpose,
    /// What was found (情况记录); at most 2,000 characters.
    pub findings: String,
    /// What is to follow (后续跟进), if anything; at most 500 characters.
    pub follow_up: Option<String>,
}

/// A visit, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    pub id: String,
    pub grid: String,
    pub worker: String,
    pub target: VisitTarget,
    pub time_ms: i64,
    pub location: Option<Wgs84>,
    pub purpose: VisitPurpose,
    pub findings: String,
    pub follow_up: Option<String>,
    /// The incident raised from this visit, if any.
    pub incident: Option<IncidentId>,
}

/// A check-in: the worker was here at this time. Whether that is inside the grid is
/// judged when read, against the grid's boundary as the device has it then.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckIn {
    pub id: String,
    pub grid: String,
    pub worker: String,
    pub time_ms: i64,
    pub location: Wgs84,
    /// Inside the grid's boundary; `None` when the device has no boundary for it.
    pub inside_grid: Option<bool>,
    /// How far outside the boundary, in metres, when outside.
    pub distance_to_grid_m: Option<f64>,
}

/// A patrol: its summary in the activity document, its track in a blob.
#[derive(Debug, Clone, PartialEq)]
pub struct Patrol {
    pub id: String,
    pub grid: String,
    pub worker: String,
    pub summary: track::TrackSummary,
    /// Buildings of the grid passed within [`track::PASSED_WITHIN_M`] of the track.
    pub buildings_passed: Vec<crate::model::BuildingId>,
    /// The track blob's hash (`sha256:…`).
    pub track: String,
}

/// A view of a resident's full sensitive values (shown masked otherwise): who, what, when
/// and why. It goes to the month's audit document (`<grid>:<YYYY-MM>:audit`), which syncs
/// to the roles that may see sensitive data and the center.
#[derive(Debug, Clone, PartialEq)]
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

/// How much of a grid's buildings were visited or passed in a period (走访覆盖率).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coverage {
    pub n_buildings: u32,
    /// Buildings with a visit to a household or organization in them, or passed on patrol.
    pub n_covered: u32,
    /// `n_covered / n_buildings`; `None` for a grid without buildings.
    pub share: Option<f64>,
}

/// A worker's month in figures (the 考核 of field work).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkerMonth {
    pub n_visits: u32,
    /// Days (China time) with at least one check-in.
    pub n_check_in_days: u32,
    /// Check-ins outside the grid checked into (judged by its boundary on this device).
    pub n_check_ins_outside: u32,
    pub n_patrols: u32,
    pub patrol_distance_m: f64,
    /// Coverage of the worker's grids' buildings by this worker's visits and patrols.
    pub coverage: Option<f64>,
    pub n_incidents_reported: u32,
    pub n_resolved_on_spot: u32,
    /// Of the incidents reported this month that a department completed, those on time.
    pub n_completed_on_time: u32,
    pub n_completed: u32,
}
