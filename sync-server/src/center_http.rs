//! The center's API over HTTP + JSON (`service/center.rs` does the work), and its OpenAPI
//! 3.1 document at `GET /openapi.json` (`center_openapi.json`, hand-written: the tests
//! check that every path in it answers and that every route here is in it).
//!
//! Every `/v1/center/…` request carries `Authorization: Bearer <center token>`. Answers are
//! JSON; a refusal is `{"code", "message"}` (plus `phase` when the incident's phase refused
//! an action) with the HTTP status of the refusal. Times are RFC 3339 in China time; the
//! timeline's actions keep their stored form (`device_time_ms`, ms since 1970).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat};
use serde::{Deserialize, Serialize};
use wangge_core::activity::WorkerMonth;
use wangge_core::calendar::DeadlineStatus;
use wangge_core::incident::analysis::{Hotspot, Repeat, RepeatLink, RepeatRule, Spot, SpotKey};
use wangge_core::incident::catalog::MatterClass;
use wangge_core::incident::roles::DepartmentCode;
use wangge_core::incident::{ActionKind, Mark, NotApplied, Phase, Verdict};
use wangge_core::model::Wgs84;
use wangge_core::{Due, IncidentStats, IncidentSummary, describe};

use crate::service::{
    CenterError, IncidentDetail, MAX_PAGE, Queue, QueueQuery, Selection, Service, ServiceError, StatsBy,
};
use crate::storage::Storage;

/// The OpenAPI document of these routes.
pub const OPENAPI: &str = include_str!("center_openapi.json");

/// The routes of the center's API and its document, for the public router.
pub fn routes<S: Storage>() -> Router<Service<S>> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/v1/center/incidents", get(queue::<S>))
        .route("/v1/center/incidents/{id}", get(incident::<S>))
        .route("/v1/center/incidents/{id}/actions", post(act::<S>))
        .route("/v1/center/stats", get(stats::<S>))
        .route("/v1/center/workers/{person}/month/{month}", get(worker_month::<S>))
        .route("/v1/center/analysis/hotspots", get(hotspots::<S>))
        .route("/v1/center/analysis/repeats", get(repeats::<S>))
}

/// The largest action body taken.
const MAX_ACTION_BYTES: usize = 16 * 1024;

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => refusal(CenterError::Internal("a response did not serialize".into())),
    }
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
    /// The incident's phase when that is why an action was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<&'static str>,
}

fn refusal(error: CenterError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match &error {
        CenterError::Internal(cause) => tracing::error!(cause = %cause, "center API failed"),
        CenterError::Service(ServiceError::Internal(cause)) => tracing::error!(cause = %cause, "storage error"),
        _ => {}
    }
    let phase = match &error {
        CenterError::NotApplied { why: NotApplied::WrongPhase { phase }, .. } => Some(phase.code()),
        _ => None,
    };
    let mut response =
        (status, json(&ErrorBody { code: error.code(), message: error.to_string(), phase })).into_response();
    if let CenterError::Service(ServiceError::RateLimited { retry_after_s }) = error {
        response.headers_mut().insert(header::RETRY_AFTER, retry_after_s.into());
    }
    response
}

fn bearer(headers: &HeaderMap) -> Result<String, CenterError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned)
        .ok_or(CenterError::Service(ServiceError::Unauthorized))
}

/// Runs the service's blocking work off the async workers and answers with its JSON.
async fn answer<S: Storage, T: Send + 'static, W: Serialize>(
    service: Service<S>,
    headers: &HeaderMap,
    work: impl FnOnce(&Service<S>, &str) -> Result<T, CenterError> + Send + 'static,
    wire: impl FnOnce(T) -> W,
) -> Response {
    let token = match bearer(headers) {
        Ok(token) => token,
        Err(error) => return refusal(error),
    };
    let done = tokio::task::spawn_blocking(move || work(&service, &token))
        .await
        .unwrap_or_else(|_| Err(CenterError::Service(ServiceError::Failed)));
    match done {
        Ok(value) => json(&wire(value)),
        Err(error) => refusal(error),
    }
}

/// A query string's parameters, taken one by one; any left over is refused (a misspelt
/// filter would otherwise widen the answer silently).
struct Params(Vec<(String, String)>);

fn bad(message: impl Into<String>) -> CenterError {
    CenterError::Service(ServiceError::Malformed(message.into()))
}

impl Params {
    fn of(query: Option<&str>) -> Params {
        Params(form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
    }

    fn take(&mut self, name: &str) -> Result<Option<String>, CenterError> {
        let mut values: Vec<String> = Vec::new();
        self.0.retain(|(key, value)| {
            if key == name {
                values.push(value.clone());
                false
            } else {
                true
            }
        });
        match values.len() {
            0 => Ok(None),
            1 => Ok(values.pop().filter(|value| !value.is_empty())),
            _ => Err(bad(format!("parameter {name} is given more than once"))),
        }
    }

    fn parsed<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, CenterError> {
        match self.take(name)? {
            None => Ok(None),
            Some(value) => parse(&value).map(Some).ok_or_else(|| bad(format!("parameter {name}: {expected}"))),
        }
    }

    fn number(&mut self, name: &str, range: std::ops::RangeInclusive<u64>) -> Result<Option<u64>, CenterError> {
        let expected = format!("a whole number from {} to {}", range.start(), range.end());
        self.parsed(name, |value| value.parse().ok().filter(|n| range.contains(n)), &expected)
    }

    fn finish(self) -> Result<(), CenterError> {
        match self.0.first() {
            Some((name, _)) => Err(bad(format!("unknown parameter {name}"))),
            None => Ok(()),
        }
    }

    /// `grid`, `phase`, `department`, `class`, `from`, `to`.
    fn selection(&mut self) -> Result<Selection, CenterError> {
        let area = self.parsed(
            "grid",
            |value| (value.len() >= 2 && value.bytes().all(|byte| byte.is_ascii_digit())).then(|| value.to_owned()),
            "a grid code or an area's leading digits",
        )?;
        let phases = self
            .parsed(
                "phase",
                |value| value.split(',').map(|code| phase(code.trim())).collect::<Option<Vec<Phase>>>(),
                "phase codes, comma-separated (reported, accepted, dispatched, completed, verified, archived, resolved_on_spot, refused, withdrawn)",
            )?
            .unwrap_or_default();
        let department = self.parsed("department", |value| DepartmentCode::parse(value).ok(), "a department code")?;
        let class = self.parsed("class", MatterClass::from_code, "a matter class code")?;
        let day = |value: &str| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok();
        let reported_from = self.parsed("from", day, "a day, YYYY-MM-DD")?;
        let reported_until = self.parsed("to", day, "a day, YYYY-MM-DD")?;
        Ok(Selection { area, phases, department, class, reported_from, reported_until })
    }
}

fn phase(code: &str) -> Option<Phase> {
    [
        Phase::Reported,
        Phase::ResolvedOnSpot,
        Phase::Refused,
        Phase::Withdrawn,
        Phase::Accepted,
        Phase::Dispatched,
        Phase::Completed,
        Phase::Verified,
        Phase::Archived,
    ]
    .into_iter()
    .find(|phase| phase.code() == code)
}

async fn queue<S: Storage>(
    State(service): State<Service<S>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = (|| {
        let mut params = Params::of(query.as_deref());
        let selection = params.selection()?;
        let due = params.parsed(
            "due",
            |value| match value {
                "soon" => Some(Due::Soon),
                "overdue" => Some(Due::Overdue),
                _ => None,
            },
            "soon or overdue",
        )?;
        let limit = params.number("limit", 1..=MAX_PAGE as u64)?.unwrap_or(100);
        let offset = params.number("offset", 0..=u64::from(u32::MAX))?.unwrap_or(0);
        params.finish()?;
        Ok(QueueQuery {
            selection,
            due,
            offset: usize::try_from(offset).unwrap_or(usize::MAX),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        })
    })();
    let query = match query {
        Ok(query) => query,
        Err(error) => return refusal(error),
    };
    answer(service, &headers, move |service, token| service.center_queue(token, &query), wire_queue).await
}

async fn incident<S: Storage>(
    State(service): State<Service<S>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else { return refusal(bad("the incident id")) };
    answer(service, &headers, move |service, token| service.center_incident(token, &id), wire_detail).await
}

/// An action as the API takes it: the action's `kind` and whatever it carries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionRequest {
    kind: String,
    /// Dispatch and redispatch: the lead department first, then co-handlers.
    #[serde(default)]
    departments: Vec<String>,
    /// Urge, progress, verify: a note; refuse, withdraw, reject: the reason; complete: the
    /// feedback; evaluate: the comment.
    #[serde(default)]
    note: Option<String>,
    /// Verify: `pass` or `fail`.
    #[serde(default)]
    verdict: Option<String>,
    /// Refuse: the catalog item that is not admitted into grids.
    #[serde(default)]
    catalog_reference: Option<String>,
    /// Escalate: the responsible leader, person and deadline (YYYY-MM-DD).
    #[serde(default)]
    leader: Option<String>,
    #[serde(default)]
    person: Option<String>,
    #[serde(default)]
    deadline: Option<String>,
    /// Evaluate: 1 to 5.
    #[serde(default)]
    satisfaction: Option<u8>,
}

impl ActionRequest {
    fn kind(self) -> Result<ActionKind, CenterError> {
        let note = self.note.unwrap_or_default();
        let departments = || -> Result<(DepartmentCode, Vec<DepartmentCode>), CenterError> {
            let mut codes = self
                .departments
                .iter()
                .map(|code| DepartmentCode::parse(code).map_err(|error| bad(error.to_string())))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter();
            let lead = codes.next().ok_or_else(|| bad("a dispatch names its departments, the lead first"))?;
            Ok((lead, codes.collect()))
        };
        let required =
            |value: Option<String>, name: &str| value.ok_or_else(|| bad(format!("{} needs {name}", self.kind)));
        Ok(match self.kind.as_str() {
            "accept" => ActionKind::Accept,
            "archive" => ActionKind::Archive,
            "report" => ActionKind::Report,
            "dispatch" => {
                let (lead, co_handlers) = departments()?;
                ActionKind::Dispatch { lead, co_handlers }
            }
            "redispatch" => {
                let (lead, co_handlers) = departments()?;
                ActionKind::Redispatch { lead, co_handlers }
            }
            "urge" => ActionKind::Urge { note },
            "progress" => ActionKind::Progress { note },
            "verify" => {
                let verdict = match required(self.verdict.clone(), "a verdict")?.as_str() {
                    "pass" => Verdict::Pass,
                    "fail" => Verdict::Fail,
                    _ => return Err(bad("a verdict is pass or fail")),
                };
                ActionKind::Verify { verdict, note }
            }
            "escalate" => ActionKind::Escalate {
                leader: required(self.leader.clone(), "a leader")?,
                person: required(self.person.clone(), "a person")?,
                deadline: required(self.deadline.clone(), "a deadline")?,
            },
            "refuse" => ActionKind::Refuse {
                catalog_reference: required(self.catalog_reference.clone(), "a catalog_reference")?,
                reason: note,
            },
            "evaluate" => ActionKind::Evaluate {
                satisfaction: self.satisfaction.ok_or_else(|| bad("evaluate needs a satisfaction, 1 to 5"))?,
                comment: note,
            },
            // Not the center's, but checked like any action: the fold refuses them by role.
            "withdraw" => ActionKind::Withdraw { reason: note },
            "reject" => ActionKind::Reject { reasons: note },
            "complete" => ActionKind::Complete { feedback: note, evidence: Vec::new() },
            "resolve_on_spot" => ActionKind::ResolveOnSpot { note, evidence: Vec::new() },
            other => return Err(bad(format!("unknown action kind {other}"))),
        })
    }
}

async fn act<S: Storage>(
    State(service): State<Service<S>>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(Path(id)) = id else { return refusal(bad("the incident id")) };
    let kind = (|| {
        let body = body.map_err(|_| bad("the body could not be read"))?;
        if body.len() > MAX_ACTION_BYTES {
            return Err(CenterError::Service(ServiceError::TooLarge(format!(
                "an action is at most {MAX_ACTION_BYTES} bytes of JSON"
            ))));
        }
        // serde_json's message names the field and position, never the content.
        let request: ActionRequest =
            serde_json::from_slice(&body).map_err(|error| bad(format!("the action is not valid JSON: {error}")))?;
        request.kind()
    })();
    let kind = match kind {
        Ok(kind) => kind,
        Err(error) => return refusal(error),
    };
    answer(service, &headers, move |service, token| service.center_act(token, &id, kind), wire_detail).await
}

async fn stats<S: Storage>(
    State(service): State<Service<S>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let parsed = (|| {
        let mut params = Params::of(query.as_deref());
        let selection = params.selection()?;
        let by = params
            .parsed(
                "by",
                |value| match value {
                    "class" => Some(StatsBy::Class),
                    "grid" => Some(StatsBy::Grid),
                    "department" => Some(StatsBy::Department),
                    "month" => Some(StatsBy::Month),
                    _ => None,
                },
                "class, grid, department or month",
            )?
            .unwrap_or(StatsBy::Class);
        params.finish()?;
        Ok((selection, by))
    })();
    let (selection, by) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return refusal(error),
    };
    let by_name = match by {
        StatsBy::Class => "class",
        StatsBy::Grid => "grid",
        StatsBy::Department => "department",
        StatsBy::Month => "month",
    };
    answer(
        service,
        &headers,
        move |service, token| service.center_stats(token, &selection, by),
        move |stats| WireStats {
            now: time(stats.now),
            by: by_name,
            groups: stats
                .groups
                .iter()
                .map(|(key, figures)| WireGroup { key: key.clone(), figures: figures.into() })
                .collect(),
            total: (&stats.total).into(),
        },
    )
    .await
}

async fn worker_month<S: Storage>(
    State(service): State<Service<S>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let Ok(Path((person, month))) = path else { return refusal(bad("the worker and the month")) };
    let answered_month = month.clone();
    answer(
        service,
        &headers,
        move |service, token| service.center_worker_month(token, &person, &month),
        move |figures| WireWorkerMonth::of(&answered_month, &figures),
    )
    .await
}

async fn hotspots<S: Storage>(
    State(service): State<Service<S>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let parsed = (|| {
        let mut params = Params::of(query.as_deref());
        let selection = params.selection()?;
        let by = params.take("by")?;
        let cell_m = params.number("cell_m", 50..=20_000)?;
        let limit = params.number("limit", 1..=1000)?.unwrap_or(20);
        params.finish()?;
        let spot = match by.as_deref() {
            None | Some("grid") if cell_m.is_none() => Spot::Grid,
            None | Some("cell") => Spot::Cell { size_m: cell_m.unwrap_or(500) as f64 },
            Some("grid") => return Err(bad("cell_m is for by=cell")),
            Some(_) => return Err(bad("parameter by: grid or cell")),
        };
        Ok((selection, spot, usize::try_from(limit).unwrap_or(usize::MAX)))
    })();
    let (selection, spot, limit) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return refusal(error),
    };
    answer(
        service,
        &headers,
        move |service, token| service.center_hotspots(token, &selection, spot, limit),
        |spots| WireHotspots { hotspots: spots.iter().map(WireHotspot::of).collect() },
    )
    .await
}

async fn repeats<S: Storage>(
    State(service): State<Service<S>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let parsed = (|| {
        let mut params = Params::of(query.as_deref());
        let selection = params.selection()?;
        let default = RepeatRule::default();
        let within_days = params.number("days", 1..=365)?.map_or(default.within_days, |days| days as u32);
        let radius_m = params.number("radius_m", 1..=5000)?.map_or(default.radius_m, |metres| metres as f64);
        params.finish()?;
        Ok((selection, RepeatRule { within_days, radius_m }))
    })();
    let (selection, rule) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return refusal(error),
    };
    answer(
        service,
        &headers,
        move |service, token| service.center_repeats(token, &selection, &rule),
        move |found| WireRepeats {
            days: rule.within_days,
            radius_m: rule.radius_m,
            repeats: found.iter().map(WireRepeat::of).collect(),
        },
    )
    .await
}

// The wire types: what the JSON says, converted by hand from the core's types.

fn time(at: DateTime<FixedOffset>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn codes(departments: &[DepartmentCode]) -> Vec<String> {
    departments.iter().map(ToString::to_string).collect()
}

#[derive(Debug, Serialize)]
struct WireDeadline {
    due_at: String,
    working_days_used: i64,
    working_days_left: i64,
    due_soon: bool,
    overdue: bool,
    /// A day involved lies in a year whose official schedule is not published yet.
    estimated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer_due_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan_due_at: Option<String>,
}

impl From<&DeadlineStatus> for WireDeadline {
    fn from(status: &DeadlineStatus) -> Self {
        WireDeadline {
            due_at: time(status.due_at),
            working_days_used: status.working_days_used,
            working_days_left: status.working_days_left,
            due_soon: status.due_soon,
            overdue: status.overdue,
            estimated: status.estimated,
            answer_due_at: status.answer_due_at.map(time),
            plan_due_at: status.plan_due_at.map(time),
        }
    }
}

#[derive(Debug, Serialize)]
struct WireIncident {
    id: String,
    grid: String,
    title: String,
    catalog_item: String,
    class: Option<&'static str>,
    phase: &'static str,
    phase_label: &'static str,
    reporter: Option<String>,
    reported_at: Option<String>,
    lead_department: Option<String>,
    co_handlers: Vec<String>,
    /// Every department it was dispatched to.
    departments: Vec<String>,
    deadline: Option<WireDeadline>,
    /// Still with the department, past its deadline (the queue's `due=overdue`).
    overdue: bool,
    /// The queue's `due=soon`.
    due_soon: bool,
    resolved_on_spot: bool,
    n_urged: u32,
    escalated: bool,
    satisfaction: Option<u8>,
}

impl WireIncident {
    fn of(summary: &IncidentSummary, departments: Vec<String>) -> Self {
        let deadline = summary.deadline.as_ref();
        WireIncident {
            id: summary.id.to_string(),
            grid: summary.grid.clone(),
            title: summary.title.clone(),
            catalog_item: summary.catalog_item.clone(),
            class: summary.class.map(MatterClass::code),
            phase: summary.phase.code(),
            phase_label: summary.phase.label_zh(),
            reporter: summary.reporter.clone(),
            reported_at: summary.reported_at.map(time),
            lead_department: summary.lead_department.as_ref().map(ToString::to_string),
            co_handlers: codes(&summary.co_handlers),
            departments,
            deadline: deadline.map(Into::into),
            overdue: Due::Overdue.selects(summary.phase, deadline),
            due_soon: Due::Soon.selects(summary.phase, deadline),
            resolved_on_spot: summary.resolved_on_spot,
            n_urged: summary.n_urged,
            escalated: summary.escalated,
            satisfaction: summary.satisfaction,
        }
    }
}

#[derive(Debug, Serialize)]
struct WireQueue {
    now: String,
    total: usize,
    incidents: Vec<WireIncident>,
}

fn wire_queue(queue: Queue) -> WireQueue {
    WireQueue {
        now: time(queue.now),
        total: queue.total,
        incidents: queue
            .entries
            .iter()
            .map(|entry| WireIncident::of(&entry.summary, codes(&entry.departments)))
            .collect(),
    }
}

#[derive(Debug, Serialize)]
struct WireClock {
    department: String,
    lead: bool,
    #[serde(flatten)]
    deadline: WireDeadline,
    /// Why the clock stopped: `completed`, `rejected`, `redispatched`; absent while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
}

#[derive(Debug, Serialize)]
struct WireTimelineEntry {
    position: u32,
    /// The action as the incident's document stores it; `null` for one this server
    /// version cannot read.
    action: Option<serde_json::Value>,
    label: Option<&'static str>,
    applied: bool,
    /// Why it did not apply, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_applied: Option<String>,
}

#[derive(Debug, Serialize)]
struct WireDetail {
    now: String,
    incident: WireIncident,
    /// The report's fields as recorded.
    report: BTreeMap<String, String>,
    handled: bool,
    closed_at: Option<String>,
    escalation: Option<serde_json::Value>,
    evaluation: Option<serde_json::Value>,
    clocks: Vec<WireClock>,
    timeline: Vec<WireTimelineEntry>,
}

fn wire_detail(detail: IncidentDetail) -> WireDetail {
    let departments = {
        let mut seen: Vec<String> = Vec::new();
        for clock in &detail.state.clocks {
            let code = clock.department.to_string();
            if !seen.contains(&code) {
                seen.push(code);
            }
        }
        seen
    };
    WireDetail {
        now: time(detail.now),
        incident: WireIncident::of(&detail.summary, departments),
        report: detail.report.into_iter().collect(),
        handled: detail.state.handled,
        closed_at: detail
            .state
            .closed_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|at| time(at.with_timezone(&wangge_core::calendar::CHINA_TIME))),
        escalation: detail.state.escalation.as_ref().and_then(|escalation| serde_json::to_value(escalation).ok()),
        evaluation: detail.state.evaluation.as_ref().and_then(|evaluation| serde_json::to_value(evaluation).ok()),
        clocks: detail
            .departments
            .iter()
            .map(|clock| WireClock {
                department: clock.department.to_string(),
                lead: clock.lead,
                deadline: (&clock.status).into(),
                stop: clock.stop.clone(),
            })
            .collect(),
        timeline: detail
            .timeline
            .iter()
            .map(|entry| WireTimelineEntry {
                position: entry.position,
                action: entry.action.as_ref().and_then(|action| serde_json::to_value(action).ok()),
                label: entry.action.as_ref().map(|action| action.kind.label_zh()),
                applied: entry.mark == Mark::Applied,
                not_applied: match &entry.mark {
                    Mark::Applied => None,
                    Mark::NotApplied(why) => Some(describe(why)),
                },
            })
            .collect(),
    }
}

#[derive(Debug, Serialize)]
struct WireFigures {
    total: u32,
    by_phase: BTreeMap<String, u32>,
    n_resolved_on_spot: u32,
    /// Resolved on the spot, of those neither refused nor withdrawn.
    on_the_spot_rate: Option<f64>,
    n_completed: u32,
    n_completed_on_time: u32,
    /// Completed within the deadline, of those completed.
    on_time_rate: Option<f64>,
    n_overdue_open: u32,
}

impl From<&IncidentStats> for WireFigures {
    fn from(stats: &IncidentStats) -> Self {
        WireFigures {
            total: stats.total,
            by_phase: stats.by_phase.clone(),
            n_resolved_on_spot: stats.n_resolved_on_spot,
            on_the_spot_rate: stats.on_the_spot_rate,
            n_completed: stats.n_completed,
            n_completed_on_time: stats.n_completed_on_time,
            on_time_rate: stats.on_time_rate,
            n_overdue_open: stats.n_overdue_open,
        }
    }
}

#[derive(Debug, Serialize)]
struct WireGroup {
    key: String,
    #[serde(flatten)]
    figures: WireFigures,
}

#[derive(Debug, Serialize)]
struct WireStats {
    now: String,
    by: &'static str,
    groups: Vec<WireGroup>,
    total: WireFigures,
}

#[derive(Debug, Serialize)]
struct WireWorkerMonth {
    month: String,
    n_visits: u32,
    n_check_in_days: u32,
    n_check_ins_outside: u32,
    n_patrols: u32,
    patrol_distance_m: f64,
    coverage: Option<f64>,
    n_incidents_reported: u32,
    n_resolved_on_spot: u32,
    n_completed: u32,
    n_completed_on_time: u32,
}

impl WireWorkerMonth {
    fn of(month: &str, figures: &WorkerMonth) -> Self {
        WireWorkerMonth {
            month: month.to_owned(),
            n_visits: figures.n_visits,
            n_check_in_days: figures.n_check_in_days,
            n_check_ins_outside: figures.n_check_ins_outside,
            n_patrols: figures.n_patrols,
            patrol_distance_m: figures.patrol_distance_m,
            coverage: figures.coverage,
            n_incidents_reported: figures.n_incidents_reported,
            n_resolved_on_spot: figures.n_resolved_on_spot,
            n_completed: figures.n_completed,
            n_completed_on_time: figures.n_completed_on_time,
        }
    }
}

fn point(at: &Wgs84) -> [f64; 2] {
    [at.lat(), at.lng()]
}

#[derive(Debug, Serialize)]
struct WireHotspot {
    #[serde(skip_serializing_if = "Option::is_none")]
    grid: Option<String>,
    /// A cell's corners and centre as `[lat, lng]` (WGS-84).
    #[serde(skip_serializing_if = "Option::is_none")]
    south_west: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    north_east: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    center: Option<[f64; 2]>,
    n_incidents: u32,
    by_class: BTreeMap<String, u32>,
    incidents: Vec<String>,
}

impl WireHotspot {
    fn of(spot: &Hotspot) -> Self {
        let (grid, south_west, north_east, center) = match &spot.key {
            SpotKey::Grid(grid) => (Some(grid.clone()), None, None, None),
            SpotKey::Cell { south_west, north_east, center } => {
                (None, Some(point(south_west)), Some(point(north_east)), Some(point(center)))
            }
        };
        WireHotspot {
            grid,
            south_west,
            north_east,
            center,
            n_incidents: spot.n_incidents,
            by_class: spot.by_class.clone(),
            incidents: spot.incidents.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct WireHotspots {
    hotspots: Vec<WireHotspot>,
}

#[derive(Debug, Serialize)]
struct WireRepeat {
    class: &'static str,
    /// `same_household`, `same_resident`, `same_organization`, `same_place`.
    link: &'static str,
    /// The household, resident or organization's id, for those links.
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<String>,
    incidents: Vec<String>,
    grids: Vec<String>,
    first_reported_at: Option<String>,
    last_reported_at: Option<String>,
}

impl WireRepeat {
    fn of(repeat: &Repeat) -> Self {
        let at = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|at| time(at.with_timezone(&wangge_core::calendar::CHINA_TIME)))
        };
        WireRepeat {
            class: repeat.class.code(),
            link: repeat.link.code(),
            record: match repeat.link {
                RepeatLink::SameRecord(record) => Some(record.uuid().hyphenated().to_string()),
                RepeatLink::SamePlace => None,
            },
            incidents: repeat.incidents.clone(),
            grids: repeat.grids.clone(),
            first_reported_at: at(repeat.first_reported_ms),
            last_reported_at: at(repeat.last_reported_ms),
        }
    }
}

#[derive(Debug, Serialize)]
struct WireRepeats {
    days: u32,
    radius_m: f64,
    repeats: Vec<WireRepeat>,
}
