//! Incidents as the apps see them: the report, the actions of the closed loop, the
//! timeline and the queries. Times are milliseconds since 1970; days are `YYYY-MM-DD`.

use wangge_core::calendar::DeadlineStatus;
use wangge_core::incident::catalog::MatterClass;
use wangge_core::incident::roles::{CenterLevel, DepartmentCode, Role as CoreRole};
use wangge_core::incident::{self as core, Mark};
pub use wangge_core::incident::{Phase, Verdict};
use wangge_core::model::{self as model, GridCode};

use crate::error::{Result, in_range, invalid, small_count};
use crate::register::{LatLng, parse_date};

#[uniffi::remote(Enum)]
pub enum Phase {
    NotReported,
    Reported,
    ResolvedOnSpot,
    Refused,
    Withdrawn,
    Accepted,
    Dispatched,
    Completed,
    Verified,
    Archived,
}

#[uniffi::remote(Enum)]
pub enum Verdict {
    Pass,
    Fail,
}

/// The six roles of grid work (center staff at three levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    PartTimeWorker,
    FullTimeWorker,
    GridLeader,
    ProfessionalWorker,
    CenterStaffCity,
    CenterStaffCounty,
    CenterStaffTownship,
    DepartmentHandler,
}

impl From<Role> for CoreRole {
    fn from(role: Role) -> Self {
        match role {
            Role::PartTimeWorker => CoreRole::PartTimeWorker,
            Role::FullTimeWorker => CoreRole::FullTimeWorker,
            Role::GridLeader => CoreRole::GridLeader,
            Role::ProfessionalWorker => CoreRole::ProfessionalWorker,
            Role::CenterStaffCity => CoreRole::CenterStaff(CenterLevel::City),
            Role::CenterStaffCounty => CoreRole::CenterStaff(CenterLevel::County),
            Role::CenterStaffTownship => CoreRole::CenterStaff(CenterLevel::Township),
            Role::DepartmentHandler => CoreRole::DepartmentHandler,
        }
    }
}

impl From<CoreRole> for Role {
    fn from(role: CoreRole) -> Self {
        match role {
            CoreRole::PartTimeWorker => Role::PartTimeWorker,
            CoreRole::FullTimeWorker => Role::FullTimeWorker,
            CoreRole::GridLeader => Role::GridLeader,
            CoreRole::ProfessionalWorker => Role::ProfessionalWorker,
            CoreRole::CenterStaff(CenterLevel::City) => Role::CenterStaffCity,
            CoreRole::CenterStaff(CenterLevel::County) => Role::CenterStaffCounty,
            CoreRole::CenterStaff(CenterLevel::Township) => Role::CenterStaffTownship,
            CoreRole::DepartmentHandler => Role::DepartmentHandler,
        }
    }
}

/// Who works on this device: every capture and action is theirs.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Worker {
    /// The person's id at the grid institution (not a name).
    pub person: String,
    pub role: Role,
    /// The department code, for a department handler or professional worker.
    #[uniffi(default = None)]
    pub department: Option<String>,
}

impl TryFrom<Worker> for core::Actor {
    type Error = crate::ApiError;
    fn try_from(worker: Worker) -> Result<Self> {
        if worker.person.trim().is_empty() {
            return Err(invalid("person", "must not be empty"));
        }
        Ok(core::Actor {
            person: worker.person,
            role: worker.role.into(),
            department: worker.department.map(|code| DepartmentCode::parse(&code)).transpose()?,
        })
    }
}

impl From<core::Actor> for Worker {
    fn from(actor: core::Actor) -> Self {
        Worker {
            person: actor.person,
            role: actor.role.into(),
            department: actor.department.map(|code| code.as_str().to_owned()),
        }
    }
}

/// A resident who brought the matter to the worker (their phone to call back).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ResidentContact {
    pub name: String,
    #[uniffi(default = None)]
    pub phone: Option<String>,
}

/// An incident as the worker reports it (发现上报).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NewIncident {
    pub grid: String,
    /// The matter catalog item's code (事项清单).
    pub catalog_item: String,
    pub title: String,
    #[uniffi(default = "")]
    pub description: String,
    #[uniffi(default = None)]
    pub location: Option<LatLng>,
    #[uniffi(default = [])]
    pub residents: Vec<String>,
    #[uniffi(default = [])]
    pub households: Vec<String>,
    #[uniffi(default = [])]
    pub organizations: Vec<String>,
    /// Photo blob hashes (`sha256:…`), from `put_blob`.
    #[uniffi(default = [])]
    pub photos: Vec<String>,
    #[uniffi(default = None)]
    pub reported_by_resident: Option<ResidentContact>,
}

fn ids<T>(ids: &[String], parse: fn(&str) -> std::result::Result<T, model::InvalidField>) -> Result<Vec<T>> {
    Ok(ids.iter().map(|id| parse(id)).collect::<std::result::Result<Vec<_>, _>>()?)
}

pub(crate) fn to_core_incident(incident: NewIncident, grid: GridCode) -> Result<wangge_core::NewIncident> {
    Ok(wangge_core::NewIncident {
        grid,
        catalog_item: incident.catalog_item,
        title: incident.title,
        description: incident.description,
        location: incident.location.map(model::Wgs84::try_from).transpose()?,
        residents: ids(&incident.residents, model::ResidentId::parse)?,
        households: ids(&incident.households, model::HouseholdId::parse)?,
        organizations: ids(&incident.organizations, model::OrganizationId::parse)?,
        photos: incident.photos,
        reported_by_resident: incident
            .reported_by_resident
            .map(|contact| -> Result<_> {
                Ok(wangge_core::ResidentContact {
                    name: model::PersonName::parse(&contact.name)?,
                    phone: contact.phone.map(|phone| model::Phone::parse(&phone)).transpose()?,
                })
            })
            .transpose()?,
    })
}

/// An action of the closed loop (上报 → 受理 → 派遣 → 处置 → 核查 → 归档 → 评价).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum IncidentAction {
    /// 就地解决, with evidence photo hashes.
    ResolveOnSpot { note: String, evidence: Vec<String> },
    /// 不予受理: not a matter for the grid.
    Refuse { catalog_reference: String, reason: String },
    /// 撤回, by the reporter before acceptance.
    Withdraw { reason: String },
    /// 受理.
    Accept,
    /// 派遣 to a lead department with co-handlers (department codes).
    Dispatch { lead: String, co_handlers: Vec<String> },
    /// 退回: not this department's duty.
    Reject { reasons: String },
    /// 重新派遣.
    Redispatch { lead: String, co_handlers: Vec<String> },
    /// 处置进展.
    Progress { note: String },
    /// 处置反馈, with evidence photo hashes.
    Complete { feedback: String, evidence: Vec<String> },
    /// 任务核查.
    Verify { verdict: Verdict, note: String },
    /// 督办.
    Urge { note: String },
    /// 提级办理, with a deadline `YYYY-MM-DD`.
    Escalate { leader: String, person: String, deadline: String },
    /// 事件归档.
    Archive,
    /// 考核评价: satisfaction 1 to 5.
    Evaluate { satisfaction: i32, comment: String },
}

impl TryFrom<IncidentAction> for core::ActionKind {
    type Error = crate::ApiError;
    fn try_from(action: IncidentAction) -> Result<Self> {
        let department = |code: &str| DepartmentCode::parse(code);
        let departments =
            |codes: &[String]| codes.iter().map(|code| department(code)).collect::<std::result::Result<Vec<_>, _>>();
        use core::ActionKind as K;
        Ok(match action {
            IncidentAction::ResolveOnSpot { note, evidence } => K::ResolveOnSpot { note, evidence },
            IncidentAction::Refuse { catalog_reference, reason } => K::Refuse { catalog_reference, reason },
            IncidentAction::Withdraw { reason } => K::Withdraw { reason },
            IncidentAction::Accept => K::Accept,
            IncidentAction::Dispatch { lead, co_handlers } => {
                K::Dispatch { lead: department(&lead)?, co_handlers: departments(&co_handlers)? }
            }
            IncidentAction::Reject { reasons } => K::Reject { reasons },
            IncidentAction::Redispatch { lead, co_handlers } => {
                K::Redispatch { lead: department(&lead)?, co_handlers: departments(&co_handlers)? }
            }
            IncidentAction::Progress { note } => K::Progress { note },
            IncidentAction::Complete { feedback, evidence } => K::Complete { feedback, evidence },
            IncidentAction::Verify { verdict, note } => K::Verify { verdict, note },
            IncidentAction::Urge { note } => K::Urge { note },
            IncidentAction::Escalate { leader, person, deadline } => {
                parse_date("deadline", &deadline)?;
                K::Escalate { leader, person, deadline }
            }
            IncidentAction::Archive => K::Archive,
            IncidentAction::Evaluate { satisfaction, comment } => {
                K::Evaluate { satisfaction: in_range("satisfaction", satisfaction)?, comment }
            }
        })
    }
}

/// Whether an action took effect. One that does not apply (wrong role, wrong phase, lost a
/// race with another device) stays in the timeline with the reason.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ActionOutcome {
    pub applied: bool,
    pub reason: Option<String>,
}

impl From<Mark> for ActionOutcome {
    fn from(mark: Mark) -> Self {
        match mark {
            Mark::Applied => ActionOutcome { applied: true, reason: None },
            Mark::NotApplied(why) => ActionOutcome { applied: false, reason: Some(wangge_core::describe(&why)) },
        }
    }
}

/// A deadline in working days, as of the query.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Deadline {
    /// The end of the due day (23:59:59 China time), in ms since 1970.
    pub due_at_ms: i64,
    pub due_soon: bool,
    pub overdue: bool,
    pub working_days_used: i64,
    /// 0 on the due day, negative after it.
    pub working_days_left: i64,
    /// A day involved lies in a year whose official calendar the device does not have yet.
    pub estimated: bool,
}

impl From<DeadlineStatus> for Deadline {
    fn from(status: DeadlineStatus) -> Self {
        Deadline {
            due_at_ms: status.due_at.timestamp_millis(),
            due_soon: status.due_soon,
            overdue: status.overdue,
            working_days_used: status.working_days_used,
            working_days_left: status.working_days_left,
            estimated: status.estimated,
        }
    }
}

/// A line of an incident list, with its derived state.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IncidentSummary {
    pub id: String,
    pub grid: String,
    pub catalog_item: String,
    /// The matter class code, e.g. `dispute`.
    pub matter_class: Option<String>,
    pub title: String,
    pub phase: Phase,
    pub reporter: Option<String>,
    pub reported_at_ms: Option<i64>,
    pub lead_department: Option<String>,
    pub co_handlers: Vec<String>,
    pub resolved_on_spot: bool,
    pub n_urged: i32,
    pub escalated: bool,
    pub satisfaction: Option<i32>,
    pub deadline: Option<Deadline>,
}

impl From<wangge_core::IncidentSummary> for IncidentSummary {
    fn from(s: wangge_core::IncidentSummary) -> Self {
        IncidentSummary {
            id: s.id.to_string(),
            grid: s.grid,
            catalog_item: s.catalog_item,
            matter_class: s.class.map(|class| class.code().to_owned()),
            title: s.title,
            phase: s.phase,
            reporter: s.reporter,
            reported_at_ms: s.reported_at.map(|at| at.timestamp_millis()),
            lead_department: s.lead_department.map(|code| code.as_str().to_owned()),
            co_handlers: s.co_handlers.iter().map(|code| code.as_str().to_owned()).collect(),
            resolved_on_spot: s.resolved_on_spot,
            n_urged: small_count(s.n_urged),
            escalated: s.escalated,
            satisfaction: s.satisfaction.map(i32::from),
            deadline: s.deadline.map(Into::into),
        }
    }
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TimelineEntry {
    pub position: i32,
    /// The action's stable name (`report`, `dispatch`, …); `None` for an entry this version
    /// cannot read.
    pub action: Option<String>,
    pub actor: Option<Worker>,
    /// When the acting device says it acted (informational).
    pub time_ms: Option<i64>,
    pub applied: bool,
    pub not_applied_reason: Option<String>,
    /// The entry in one line of Chinese, for a simple timeline view.
    pub text: String,
}

impl From<wangge_core::TimelineEntry> for TimelineEntry {
    fn from(entry: wangge_core::TimelineEntry) -> Self {
        let text = entry.to_string();
        let outcome = ActionOutcome::from(entry.mark);
        TimelineEntry {
            position: small_count(entry.position),
            action: entry.action.as_ref().map(|action| action.kind.name().to_owned()),
            time_ms: entry.action.as_ref().map(|action| action.device_time_ms),
            actor: entry.action.map(|action| action.actor.into()),
            applied: outcome.applied,
            not_applied_reason: outcome.reason,
            text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Due {
    /// Still running, at most one working day left.
    Soon,
    /// Still with the department, past the deadline.
    Overdue,
}

/// Which incidents a query is about; every field narrows it, the default takes all.
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
pub struct IncidentFilter {
    #[uniffi(default = [])]
    pub grids: Vec<String>,
    #[uniffi(default = [])]
    pub phases: Vec<Phase>,
    #[uniffi(default = None)]
    pub department: Option<String>,
    /// A matter class code, e.g. `dispute`.
    #[uniffi(default = None)]
    pub matter_class: Option<String>,
    #[uniffi(default = None)]
    pub reporter: Option<String>,
    #[uniffi(default = None)]
    pub reported_from: Option<String>,
    #[uniffi(default = None)]
    pub reported_until: Option<String>,
    #[uniffi(default = None)]
    pub due: Option<Due>,
}

pub(crate) fn to_core_filter(
    filter: IncidentFilter,
    parse_grid: impl Fn(&str) -> Result<GridCode>,
) -> Result<wangge_core::IncidentFilter> {
    Ok(wangge_core::IncidentFilter {
        grids: filter.grids.iter().map(|grid| parse_grid(grid)).collect::<Result<_>>()?,
        phases: filter.phases,
        department: filter.department.map(|code| DepartmentCode::parse(&code)).transpose()?,
        class: filter
            .matter_class
            .map(|code| MatterClass::from_code(&code).ok_or_else(|| invalid("matter_class", "not a matter class code")))
            .transpose()?,
        reporter: filter.reporter,
        reported_from: filter.reported_from.map(|day| parse_date("reported_from", &day)).transpose()?,
        reported_until: filter.reported_until.map(|day| parse_date("reported_until", &day)).transpose()?,
        due: filter.due.map(|due| match due {
            Due::Soon => wangge_core::Due::Soon,
            Due::Overdue => wangge_core::Due::Overdue,
        }),
    })
}

/// Counts over the incidents a filter selects (the figures of 考核).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct IncidentStats {
    pub total: i32,
    pub by_class: std::collections::HashMap<String, i32>,
    pub by_phase: std::collections::HashMap<String, i32>,
    /// By month reported, `YYYY-MM`.
    pub by_month: std::collections::HashMap<String, i32>,
    pub n_resolved_on_spot: i32,
    pub on_the_spot_rate: Option<f64>,
    pub n_completed: i32,
    pub n_completed_on_time: i32,
    pub on_time_rate: Option<f64>,
    pub n_overdue_open: i32,
}

impl From<wangge_core::IncidentStats> for IncidentStats {
    fn from(s: wangge_core::IncidentStats) -> Self {
        IncidentStats {
            total: small_count(s.total),
            by_class: counts(s.by_class),
            by_phase: counts(s.by_phase),
            by_month: counts(s.by_month),
            n_resolved_on_spot: small_count(s.n_resolved_on_spot),
            on_the_spot_rate: s.on_the_spot_rate,
            n_completed: small_count(s.n_completed),
            n_completed_on_time: small_count(s.n_completed_on_time),
            on_time_rate: s.on_time_rate,
            n_overdue_open: small_count(s.n_overdue_open),
        }
    }
}

fn counts(map: std::collections::BTreeMap<String, u32>) -> std::collections::HashMap<String, i32> {
    map.into_iter().map(|(key, n)| (key, small_count(n))).collect()
}

/// A matter of the catalog a worker can pick when reporting.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CatalogItem {
    pub code: String,
    pub matter_class: String,
    pub name: String,
    /// Whether the item is admitted into grids (others are refused with a reason).
    pub admitted: bool,
    pub lead_department: Option<String>,
}
