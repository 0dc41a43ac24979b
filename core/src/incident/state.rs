//! The state of an incident, derived: a deterministic fold over its timeline.
//!
//! Every replica folds the same timeline (automerge's list order, which is the same on
//! every replica after merging and puts every action after the actions its author had
//! seen) and so derives the same state. Each action is checked against the actor's role
//! and the phase it meets; an action that is not allowed, or that lost a race (two
//! departments completing, a verification after an archive), stays in the timeline with a
//! [`Mark`] that says why it did not apply. Nothing is decided by device clocks.
//!
//! ```text
//! report ─► accept ─► dispatch ─► complete ─► verify(pass) ─► archive ─► evaluate
//!   │ │                 ▲   │        │  ▲        │(fail)
//!   │ └─► withdraw      │   └─reject─┘  └────────┘
//!   ├─► refuse          └── redispatch
//!   └─► resolve on the spot ─► archive ─► evaluate
//! ```

use serde::{Deserialize, Serialize};

use super::action::{Action, ActionKind, Verdict};
use super::roles::{CenterLevel, DepartmentCode, Role};

/// Where an incident stands in the closed loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No report in the timeline yet (only while a document is being received).
    NotReported,
    /// 已上报: waiting for the grid institution.
    Reported,
    /// 已就地解决.
    ResolvedOnSpot,
    /// 不予受理.
    Refused,
    /// 已撤回.
    Withdrawn,
    /// 已受理: waiting to be dispatched (again, after a rejection).
    Accepted,
    /// 处置中: with the lead department.
    Dispatched,
    /// 待核查: the department reported it handled.
    Completed,
    /// 核查通过: waiting to be archived.
    Verified,
    /// 已归档.
    Archived,
}

impl Phase {
    pub fn code(self) -> &'static str {
        match self {
            Phase::NotReported => "not_reported",
            Phase::Reported => "reported",
            Phase::ResolvedOnSpot => "resolved_on_spot",
            Phase::Refused => "refused",
            Phase::Withdrawn => "withdrawn",
            Phase::Accepted => "accepted",
            Phase::Dispatched => "dispatched",
            Phase::Completed => "completed",
            Phase::Verified => "verified",
            Phase::Archived => "archived",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Phase::NotReported => "未上报",
            Phase::Reported => "已上报",
            Phase::ResolvedOnSpot => "已就地解决",
            Phase::Refused => "不予受理",
            Phase::Withdrawn => "已撤回",
            Phase::Accepted => "已受理",
            Phase::Dispatched => "处置中",
            Phase::Completed => "待核查",
            Phase::Verified => "核查通过",
            Phase::Archived => "已归档",
        }
    }

    /// Whether the matter is still being worked on (clocks may run, it can be urged).
    pub fn is_open(self) -> bool {
        matches!(self, Phase::Reported | Phase::Accepted | Phase::Dispatched | Phase::Completed)
    }
}

/// Why an action did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum NotApplied {
    /// The timeline entry could not be read (written by a newer version, or damaged).
    Unreadable,
    /// This role may not take this action at all.
    RoleNotAllowed { role: Role },
    /// The incident was not in a phase where this action applies (often: it lost a race).
    WrongPhase { phase: Phase },
    /// Only the reporter may do this.
    NotTheReporter,
    /// The acting department is not the one the incident is with.
    NotResponsible,
    /// The incident is already reported; a second report is kept but changes nothing.
    AlreadyReported,
    /// Already evaluated.
    AlreadyEvaluated,
    /// The action's content breaks a rule (stated in words).
    Invalid { rule: String },
}

/// What happened to each action of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mark {
    Applied,
    NotApplied(NotApplied),
}

/// Why a department's clock stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockStop {
    Completed,
    Rejected,
    Redispatched,
}

/// A department's handling time: from its dispatch until it completed, rejected, or the
/// incident was sent elsewhere. A failed verification restarts the lead's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentClock {
    pub department: DepartmentCode,
    pub lead: bool,
    pub started_ms: i64,
    pub stopped: Option<(i64, ClockStop)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub leader: String,
    pub person: String,
    pub deadline: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    pub satisfaction: u8,
    pub comment: String,
}

/// The derived state of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentState {
    pub phase: Phase,
    pub reporter: Option<String>,
    pub reported_ms: Option<i64>,
    pub lead: Option<DepartmentCode>,
    pub co_handlers: Vec<DepartmentCode>,
    pub clocks: Vec<DepartmentClock>,
    /// Whether the matter was handled (on the spot, or verified), which evaluation needs.
    pub handled: bool,
    pub resolved_on_spot: bool,
    pub n_rejections: u32,
    pub n_urged: u32,
    pub escalation: Option<Escalation>,
    pub evaluation: Option<Evaluation>,
    pub closed_ms: Option<i64>,
    /// One mark per timeline entry, in timeline order.
    pub marks: Vec<Mark>,
}

impl Default for IncidentState {
    fn default() -> Self {
        IncidentState {
            phase: Phase::NotReported,
            reporter: None,
            reported_ms: None,
            lead: None,
            co_handlers: Vec::new(),
            clocks: Vec::new(),
            handled: false,
            resolved_on_spot: false,
            n_rejections: 0,
            n_urged: 0,
            escalation: None,
            evaluation: None,
            closed_ms: None,
            marks: Vec::new(),
        }
    }
}

/// Derives the state from the timeline; `None` entries could not be read.
pub fn derive<'a>(timeline: impl IntoIterator<Item = Option<&'a Action>>) -> IncidentState {
    let mut state = IncidentState::default();
    for entry in timeline {
        let mark = match entry {
            None => Mark::NotApplied(NotApplied::Unreadable),
            Some(action) => match state.apply(action) {
                Ok(()) => Mark::Applied,
                Err(reason) => Mark::NotApplied(reason),
            },
        };
        state.marks.push(mark);
    }
    state
}

fn is_center(role: Role) -> bool {
    role.is_center()
}

fn is_grid_worker(role: Role) -> bool {
    role.is_grid_worker()
}

/// Who may take each action, by role alone (the phase and the person are checked after).
fn role_may(kind: &ActionKind, role: Role) -> bool {
    match kind {
        // 发现上报: workers find matters; the center registers those that reach it directly.
        ActionKind::Report => is_grid_worker(role) || is_center(role),
        ActionKind::ResolveOnSpot { .. } | ActionKind::Withdraw { .. } => is_grid_worker(role),
        // The center declines to accept (不予受理); a reporting worker takes back a matter
        // outside the catalog (the reporter check follows).
        ActionKind::Refuse { .. } => is_grid_worker(role) || is_center(role),
        ActionKind::Accept
        | ActionKind::Dispatch { .. }
        | ActionKind::Redispatch { .. }
        | ActionKind::Urge { .. }
        | ActionKind::Archive => is_center(role),
        // 提级办理 is for the city and county levels (seed 004 第二十三条).
        ActionKind::Escalate { .. } => {
            matches!(role, Role::CenterStaff(CenterLevel::City) | Role::CenterStaff(CenterLevel::County))
        }
        ActionKind::Reject { .. } | ActionKind::Complete { .. } => role == Role::DepartmentHandler,
        ActionKind::Progress { .. } => role == Role::DepartmentHandler || is_center(role),
        // 任务核查 is done on site by grid workers or by the center; departments do not
        // verify their own work (checked again for a worker of the lead department).
        ActionKind::Verify { .. } => is_grid_worker(role) || is_center(role),
        ActionKind::Evaluate { .. } => is_grid_worker(role) || is_center(role),
    }
}

/// A dispatch names each department once, and the lead not also as a co-handler.
fn check_departments(lead: &DepartmentCode, co_handlers: &[DepartmentCode]) -> Result<(), NotApplied> {
    if co_handlers.contains(lead) {
        return Err(NotApplied::Invalid { rule: "the lead department is not also a co-handler".into() });
    }
    for (i, co) in co_handlers.iter().enumerate() {
        if co_handlers[..i].contains(co) {
            return Err(NotApplied::Invalid { rule: "a co-handler is named once".into() });
        }
    }
    Ok(())
}

impl IncidentState {
    fn apply(&mut self, action: &Action) -> Result<(), NotApplied> {
        let role = action.actor.role;
        if self.phase == Phase::NotReported && !matches!(action.kind, ActionKind::Report) {
            return Err(NotApplied::WrongPhase { phase: self.phase });
        }
        if !role_may(&action.kind, role) {
            return Err(NotApplied::RoleNotAllowed { role });
        }
        let phase = self.phase;
        let wrong_phase = || NotApplied::WrongPhase { phase };
        let now = action.device_time_ms;
        match &action.kind {
            ActionKind::Report => {
                if phase != Phase::NotReported {
                    return Err(NotApplied::AlreadyReported);
                }
                self.phase = Phase::Reported;
                self.reporter = Some(action.actor.person.clone());
                self.reported_ms = Some(now);
            }
            ActionKind::ResolveOnSpot { evidence, .. } => {
                self.require(phase == Phase::Reported, wrong_phase)?;
                self.require_reporter(action)?;
                if evidence.is_empty() {
                    return Err(NotApplied::Invalid { rule: "resolving on the spot needs evidence (a photo)".into() });
                }
                self.phase = Phase::ResolvedOnSpot;
                self.handled = true;
                self.resolved_on_spot = true;
                self.closed_ms = Some(now);
            }
            ActionKind::Refuse { catalog_reference, .. } => {
                self.require(phase == Phase::Reported, wrong_phase)?;
                if is_grid_worker(role) {
                    self.require_reporter(action)?;
                }
                if catalog_reference.trim().is_empty() {
                    return Err(NotApplied::Invalid { rule: "a refusal names the catalog reference".into() });
                }
                self.phase = Phase::Refused;
                self.closed_ms = Some(now);
            }
            ActionKind::Withdraw { .. } => {
                self.require(phase == Phase::Reported, wrong_phase)?;
                self.require_reporter(action)?;
                self.phase = Phase::Withdrawn;
                self.closed_ms = Some(now);
            }
            ActionKind::Accept => {
                self.require(phase == Phase::Reported, wrong_phase)?;
                self.phase = Phase::Accepted;
            }
            ActionKind::Dispatch { lead, co_handlers } => {
                // A first dispatch; later ones are redispatches.
                self.require(phase == Phase::Accepted && self.clocks.is_empty(), wrong_phase)?;
                self.send_to(lead, co_handlers, now)?;
            }
            ActionKind::Redispatch { lead, co_handlers } => {
                let after_dispatch = !self.clocks.is_empty();
                self.require(after_dispatch && matches!(phase, Phase::Accepted | Phase::Dispatched), wrong_phase)?;
                check_departments(lead, co_handlers)?;
                if self.lead.as_ref() == Some(lead) {
                    // Sending it to the department it is with would only restart its clock.
                    return Err(NotApplied::Invalid { rule: "the incident is already with this department".into() });
                }
                self.stop_running(now, ClockStop::Redispatched);
                self.send_to(lead, co_handlers, now)?;
            }
            ActionKind::Reject { .. } => {
                self.require(phase == Phase::Dispatched, wrong_phase)?;
                let department = action.actor.department.as_ref().ok_or(NotApplied::NotResponsible)?;
                if self.lead.as_ref() == Some(department) {
                    self.stop(department, now, ClockStop::Rejected);
                    self.lead = None;
                    self.phase = Phase::Accepted;
                    self.n_rejections += 1;
                } else if let Some(position) = self.co_handlers.iter().position(|co| co == department) {
                    self.stop(department, now, ClockStop::Rejected);
                    self.co_handlers.remove(position);
                    self.n_rejections += 1;
                } else {
                    return Err(NotApplied::NotResponsible);
                }
            }
            ActionKind::Progress { .. } => {
                self.require(phase == Phase::Dispatched, wrong_phase)?;
                if role == Role::DepartmentHandler && !self.is_handling(action.actor.department.as_ref()) {
                    return Err(NotApplied::NotResponsible);
                }
            }
            ActionKind::Complete { .. } => {
                self.require(phase == Phase::Dispatched, wrong_phase)?;
                let department = action.actor.department.as_ref();
                if department.is_none() || self.lead.as_ref() != department {
                    return Err(NotApplied::NotResponsible);
                }
                // The co-handlers' part ends with the lead's completion.
                self.stop_running(now, ClockStop::Completed);
                self.phase = Phase::Completed;
            }
            ActionKind::Verify { verdict, .. } => {
                self.require(phase == Phase::Completed, wrong_phase)?;
                if action.actor.department.is_some() && action.actor.department == self.lead {
                    return Err(NotApplied::NotResponsible);
                }
                match verdict {
                    Verdict::Pass => {
                        self.phase = Phase::Verified;
                        self.handled = true;
                        self.closed_ms = Some(now);
                    }
                    Verdict::Fail => {
                        // Back to the department under its original deadline: the work it
                        // reported done was not, and the time since counts against it.
                        if let Some(lead) = self.lead.clone()
                            && let Some(clock) = self.clock_mut(&lead)
                        {
                            clock.stopped = None;
                        }
                        self.phase = Phase::Dispatched;
                    }
                }
            }
            ActionKind::Urge { .. } => {
                // 督办 urges the department the incident is with.
                self.require(phase == Phase::Dispatched, wrong_phase)?;
                self.n_urged += 1;
            }
            ActionKind::Escalate { leader, person, deadline } => {
                self.require(matches!(phase, Phase::Accepted | Phase::Dispatched | Phase::Completed), wrong_phase)?;
                if chrono::NaiveDate::parse_from_str(deadline, "%Y-%m-%d").is_err() {
                    return Err(NotApplied::Invalid { rule: "an escalation's deadline is a date, YYYY-MM-DD".into() });
                }
                self.escalation =
                    Some(Escalation { leader: leader.clone(), person: person.clone(), deadline: deadline.clone() });
            }
            ActionKind::Archive => {
                let closed =
                    matches!(phase, Phase::Verified | Phase::ResolvedOnSpot | Phase::Refused | Phase::Withdrawn);
                self.require(closed, wrong_phase)?;
                self.phase = Phase::Archived;
            }
            ActionKind::Evaluate { satisfaction, comment } => {
                self.require(phase == Phase::Archived && self.handled, wrong_phase)?;
                if self.evaluation.is_some() {
                    return Err(NotApplied::AlreadyEvaluated);
                }
                if !(1..=5).contains(satisfaction) {
                    return Err(NotApplied::Invalid { rule: "satisfaction is 1 to 5".into() });
                }
                self.evaluation = Some(Evaluation { satisfaction: *satisfaction, comment: comment.clone() });
            }
        }
        Ok(())
    }

    fn require(&self, holds: bool, otherwise: impl FnOnce() -> NotApplied) -> Result<(), NotApplied> {
        if holds { Ok(()) } else { Err(otherwise()) }
    }

    fn require_reporter(&self, action: &Action) -> Result<(), NotApplied> {
        if self.reporter.as_deref() == Some(action.actor.person.as_str()) {
            Ok(())
        } else {
            Err(NotApplied::NotTheReporter)
        }
    }

    fn send_to(&mut self, lead: &DepartmentCode, co_handlers: &[DepartmentCode], now: i64) -> Result<(), NotApplied> {
        check_departments(lead, co_handlers)?;
        self.lead = Some(lead.clone());
        self.co_handlers = co_handlers.to_vec();
        self.clocks.push(DepartmentClock { department: lead.clone(), lead: true, started_ms: now, stopped: None });
        for co in co_handlers {
            self.clocks.push(DepartmentClock { department: co.clone(), lead: false, started_ms: now, stopped: None });
        }
        self.phase = Phase::Dispatched;
        Ok(())
    }

    fn is_handling(&self, department: Option<&DepartmentCode>) -> bool {
        department
            .is_some_and(|department| self.lead.as_ref() == Some(department) || self.co_handlers.contains(department))
    }

    /// The department's current clock (the latest one: a department may be dispatched twice).
    fn clock_mut(&mut self, department: &DepartmentCode) -> Option<&mut DepartmentClock> {
        self.clocks.iter_mut().rev().find(|clock| &clock.department == department)
    }

    fn stop(&mut self, department: &DepartmentCode, now: i64, why: ClockStop) {
        if let Some(clock) = self.clock_mut(department)
            && clock.stopped.is_none()
        {
            clock.stopped = Some((now, why));
        }
    }

    fn stop_running(&mut self, now: i64, why: ClockStop) {
        for clock in self.clocks.iter_mut().filter(|clock| clock.stopped.is_none()) {
            clock.stopped = Some((now, why));
        }
    }

    /// The lead department's current clock, which the incident's deadline follows.
    pub fn lead_clock(&self) -> Option<&DepartmentClock> {
        self.clocks.iter().rev().find(|clock| clock.lead)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::incident::action::Actor;
    use crate::incident::roles::CenterLevel;

    fn dept(code: &str) -> DepartmentCode {
        DepartmentCode::parse(code).unwrap()
    }

    fn actor(person: &str, role: Role) -> Actor {
        Actor { person: person.into(), role, department: None }
    }

    fn worker() -> Actor {
        actor("w1", Role::FullTimeWorker)
    }

    fn center() -> Actor {
        actor("c1", Role::CenterStaff(CenterLevel::Township))
    }

    fn handler(department: &str) -> Actor {
        Actor { person: format!("h-{department}"), role: Role::DepartmentHandler, department: Some(dept(department)) }
    }

    fn act(by: Actor, kind: ActionKind) -> Action {
        act_at(by, kind, 0)
    }

    fn act_at(by: Actor, kind: ActionKind, device_time_ms: i64) -> Action {
        Action { id: "a".into(), actor: by, device_time_ms, kind }
    }

    fn dispatch(lead: &str, co: &[&str]) -> ActionKind {
        ActionKind::Dispatch { lead: dept(lead), co_handlers: co.iter().map(|code| dept(code)).collect() }
    }

    fn complete() -> ActionKind {
        ActionKind::Complete { feedback: "已处理".into(), evidence: vec![] }
    }

    fn verify(verdict: Verdict) -> ActionKind {
        ActionKind::Verify { verdict, note: String::new() }
    }

    fn fold(actions: &[Action]) -> IncidentState {
        derive(actions.iter().map(Some))
    }

    /// The loop up to dispatch to `police` with `urban` co-handling.
    fn dispatched() -> Vec<Action> {
        vec![
            act_at(worker(), ActionKind::Report, 1_000),
            act_at(center(), ActionKind::Accept, 2_000),
            act_at(center(), dispatch("police", &["urban"]), 3_000),
        ]
    }

    #[track_caller]
    fn check_marks(state: &IncidentState, expected: &[Mark]) {
        assert_eq!(state.marks, expected);
    }

    #[test]
    fn the_whole_loop_applies_every_step() {
        let mut actions = dispatched();
        actions.extend([
            act(handler("police"), ActionKind::Progress { note: "已联系当事人".into() }),
            act_at(handler("police"), complete(), 5_000),
            act(worker(), verify(Verdict::Pass)),
            act(center(), ActionKind::Archive),
            act(worker(), ActionKind::Evaluate { satisfaction: 5, comment: "满意".into() }),
        ]);
        let state = fold(&actions);
        assert!(state.marks.iter().all(|mark| *mark == Mark::Applied), "{:?}", state.marks);
        assert_eq!(state.phase, Phase::Archived);
        assert!(state.handled);
        assert_eq!(state.evaluation.as_ref().unwrap().satisfaction, 5);
        let lead = state.lead_clock().unwrap();
        assert_eq!((lead.started_ms, lead.stopped), (3_000, Some((5_000, ClockStop::Completed))));
    }

    #[test]
    fn resolving_on_the_spot_is_for_the_reporter() {
        let resolve = ActionKind::ResolveOnSpot { note: "已调解".into(), evidence: vec!["sha256:ab".into()] };
        let state = fold(&[
            act(worker(), ActionKind::Report),
            act(actor("w2", Role::FullTimeWorker), resolve.clone()),
            act(worker(), resolve),
            act(center(), ActionKind::Archive),
            act(center(), ActionKind::Evaluate { satisfaction: 4, comment: String::new() }),
        ]);
        check_marks(
            &state,
            &[Mark::Applied, Mark::NotApplied(NotApplied::NotTheReporter), Mark::Applied, Mark::Applied, Mark::Applied],
        );
        assert!(state.resolved_on_spot);
    }

    #[test]
    fn withdraw_only_before_acceptance_and_only_by_the_reporter() {
        let withdraw = ActionKind::Withdraw { reason: "误报".into() };
        let state = fold(&[
            act(worker(), ActionKind::Report),
            act(actor("w2", Role::PartTimeWorker), withdraw.clone()),
            act(center(), ActionKind::Accept),
            act(worker(), withdraw),
        ]);
        check_marks(
            &state,
            &[
                Mark::Applied,
                Mark::NotApplied(NotApplied::NotTheReporter),
                Mark::Applied,
                Mark::NotApplied(NotApplied::WrongPhase { phase: Phase::Accepted }),
            ],
        );
    }

    #[test]
    fn refusal_names_the_catalog_reference() {
        let state = fold(&[
            act(worker(), ActionKind::Report),
            act(worker(), ActionKind::Refuse { catalog_reference: " ".into(), reason: "不属于网格事项".into() }),
            act(
                worker(),
                ActionKind::Refuse {
                    catalog_reference: "事项清单第3条".into(), reason: "不属于网格事项".into()
                },
            ),
        ]);
        assert!(matches!(state.marks[1], Mark::NotApplied(NotApplied::Invalid { .. })));
        assert_eq!(state.phase, Phase::Refused);
    }

    #[test]
    fn roles_are_checked_for_every_action() {
        // A department cannot hand work to itself, a worker cannot dispatch, a part-time
        // worker cannot accept, a department cannot verify its own work.
        let cases: Vec<(Actor, ActionKind, Vec<Action>)> = vec![
            (worker(), ActionKind::Accept, vec![act(worker(), ActionKind::Report)]),
            (handler("police"), ActionKind::Report, vec![]),
            (
                worker(),
                dispatch("police", &[]),
                vec![act(worker(), ActionKind::Report), act(center(), ActionKind::Accept)],
            ),
            (center(), complete(), dispatched()),
            (handler("police"), verify(Verdict::Pass), {
                let mut actions = dispatched();
                actions.push(act(handler("police"), complete()));
                actions
            }),
            (handler("police"), ActionKind::Urge { note: String::new() }, dispatched()),
            (worker(), ActionKind::Archive, dispatched()),
        ];
        for (by, kind, mut before) in cases {
            let role = by.role;
            let name = kind.name();
            before.push(act(by, kind));
            let state = fold(&before);
            assert_eq!(
                state.marks.last().unwrap(),
                &Mark::NotApplied(NotApplied::RoleNotAllowed { role }),
                "{name} by {role:?}"
            );
        }
    }

    #[test]
    fn nothing_applies_before_the_report() {
        let state = fold(&[act(center(), ActionKind::Accept), act(worker(), ActionKind::Report)]);
        check_marks(&state, &[Mark::NotApplied(NotApplied::WrongPhase { phase: Phase::NotReported }), Mark::Applied]);
    }

    #[test]
    fn a_second_report_changes_nothing() {
        let state = fold(&[act(worker(), ActionKind::Report), act(center(), ActionKind::Report)]);
        check_marks(&state, &[Mark::Applied, Mark::NotApplied(NotApplied::AlreadyReported)]);
        assert_eq!(state.reporter.as_deref(), Some("w1"));
    }

    #[test]
    fn rejection_by_the_lead_stops_its_clock_and_waits_for_redispatch() {
        let mut actions = dispatched();
        actions.extend([
            act_at(handler("police"), ActionKind::Reject { reasons: "非本部门职责".into() }, 4_000),
            act(handler("urban"), complete()),
            act_at(center(), ActionKind::Redispatch { lead: dept("urban"), co_handlers: vec![] }, 6_000),
            act(handler("urban"), complete()),
        ]);
        let state = fold(&actions);
        assert_eq!(state.marks[3], Mark::Applied);
        // The co-handler cannot complete: only the lead does, and there is none.
        assert_eq!(state.marks[4], Mark::NotApplied(NotApplied::WrongPhase { phase: Phase::Accepted }));
        assert_eq!(state.marks[5], Mark::Applied);
        assert_eq!(state.marks[6], Mark::Applied);
        assert_eq!(state.phase, Phase::Completed);
        assert_eq!(state.n_rejections, 1);
        let police = state.clocks.iter().find(|clock| clock.department == dept("police")).unwrap();
        assert_eq!(police.stopped, Some((4_000, ClockStop::Rejected)));
        assert_eq!(state.lead_clock().unwrap().started_ms, 6_000);
    }

    #[test]
    fn a_co_handler_rejecting_leaves_the_lead_working() {
        let mut actions = dispatched();
        actions.push(act(handler("urban"), ActionKind::Reject { reasons: "无职责".into() }));
        actions.push(act(handler("water"), ActionKind::Reject { reasons: "?".into() }));
        let state = fold(&actions);
        assert_eq!(state.marks[3], Mark::Applied);
        assert_eq!(state.marks[4], Mark::NotApplied(NotApplied::NotResponsible));
        assert_eq!(state.phase, Phase::Dispatched);
        assert!(state.co_handlers.is_empty());
    }

    #[test]
    fn two_departments_completing_the_second_loses_the_race() {
        let mut actions = dispatched();
        actions.push(act(handler("police"), complete()));
        actions.push(act(handler("police"), complete()));
        actions.push(act(handler("urban"), complete()));
        let state = fold(&actions);
        assert_eq!(state.marks[4], Mark::NotApplied(NotApplied::WrongPhase { phase: Phase::Completed }));
        assert_eq!(state.marks[5], Mark::NotApplied(NotApplied::WrongPhase { phase: Phase::Completed }));
    }

    #[test]
    fn a_failed_verification_sends_it_back_and_the_clock_runs_on() {
        let mut actions = dispatched();
        actions.push(act_at(handler("police"), complete(), 5_000));
        actions.push(act(worker(), verify(Verdict::Fail)));
        let state = fold(&actions);
        assert_eq!(state.phase, Phase::Dispatched);
        assert_eq!(state.lead_clock().unwrap().stopped, None);
        assert_eq!(state.lead_clock().unwrap().started_ms, 3_000);
    }

    #[test]
    fn verification_after_archive_is_marked() {
        let mut actions = dispatched();
        actions.push(act(handler("police"), complete()));
        actions.push(act(center(), verify(Verdict::Pass)));
        actions.push(act(center(), ActionKind::Archive));
        actions.push(act(worker(), verify(Verdict::Fail)));
        let state = fold(&actions);
        assert_eq!(state.marks[6], Mark::NotApplied(NotApplied::WrongPhase { phase: Phase::Archived }));
        assert_eq!(state.phase, Phase::Archived);
    }

    #[test]
    fn evaluation_once_with_satisfaction_one_to_five_and_only_when_handled() {
        let mut actions = dispatched();
        actions.extend([
            act(handler("police"), complete()),
            act(center(), verify(Verdict::Pass)),
            act(center(), ActionKind::Archive),
            act(center(), ActionKind::Evaluate { satisfaction: 6, comment: String::new() }),
            act(center(), ActionKind::Evaluate { satisfaction: 3, comment: String::new() }),
            act(center(), ActionKind::Evaluate { satisfaction: 4, comment: String::new() }),
        ]);
        let state = fold(&actions);
        assert!(matches!(state.marks[6], Mark::NotApplied(NotApplied::Invalid { .. })));
        assert_eq!(state.marks[7], Mark::Applied);
        assert_eq!(state.marks[8], Mark::NotApplied(NotApplied::AlreadyEvaluated));

        let withdrawn = fold(&[
            act(worker(), ActionKind::Report),
            act(worker(), ActionKind::Withdraw { reason: String::new() }),
            act(center(), ActionKind::Archive),
            act(center(), ActionKind::Evaluate { satisfaction: 3, comment: String::new() }),
        ]);
        assert_eq!(withdrawn.marks[3], Mark::NotApplied(NotApplied::WrongPhase { phase: Phase::Archived }));
    }

    #[test]
    fn urge_the_department_and_escalate_at_county_or_city_level() {
        let county = actor("c2", Role::CenterStaff(CenterLevel::County));
        let mut actions = dispatched();
        actions.extend([
            act(center(), ActionKind::Urge { note: "请加快".into() }),
            act(
                county.clone(),
                ActionKind::Escalate {
                    leader: "王局长".into(),
                    person: "李科长".into(),
                    deadline: "2026-11-30".into(),
                },
            ),
            act(county, ActionKind::Escalate { leader: "x".into(), person: "y".into(), deadline: "soon".into() }),
            act(
                center(),
                ActionKind::Escalate { leader: "x".into(), person: "y".into(), deadline: "2026-12-01".into() },
            ),
        ]);
        let state = fold(&actions);
        assert_eq!(state.n_urged, 1);
        assert_eq!(state.escalation.as_ref().unwrap().deadline, "2026-11-30");
        assert!(matches!(state.marks[5], Mark::NotApplied(NotApplied::Invalid { .. })));
        // A township center does not escalate (seed 004 第二十三条).
        assert_eq!(
            state.marks[6],
            Mark::NotApplied(NotApplied::RoleNotAllowed { role: Role::CenterStaff(CenterLevel::Township) })
        );
        // Urging is for the department the incident is with.
        let early = fold(&[act(worker(), ActionKind::Report), act(center(), ActionKind::Urge { note: String::new() })]);
        assert_eq!(early.marks[1], Mark::NotApplied(NotApplied::WrongPhase { phase: Phase::Reported }));
    }

    /// Regression: an invalid redispatch stopped the lead's clock although it did not apply;
    /// a redispatch to the lead itself restarted its deadline.
    #[test]
    fn a_redispatch_that_does_not_apply_changes_nothing() {
        let mut actions = dispatched();
        actions.push(act_at(
            center(),
            ActionKind::Redispatch { lead: dept("justice"), co_handlers: vec![dept("justice")] },
            9_000,
        ));
        actions.push(act_at(center(), ActionKind::Redispatch { lead: dept("police"), co_handlers: vec![] }, 9_500));
        let state = fold(&actions);
        assert!(matches!(state.marks[3], Mark::NotApplied(NotApplied::Invalid { .. })));
        assert!(matches!(state.marks[4], Mark::NotApplied(NotApplied::Invalid { .. })));
        assert_eq!(state.lead_clock().unwrap().stopped, None);
        assert_eq!(state.lead_clock().unwrap().started_ms, 3_000);
    }

    /// Regression: co-handlers' clocks ran on after the lead completed.
    #[test]
    fn the_lead_completing_stops_every_clock() {
        let mut actions = dispatched();
        actions.push(act_at(handler("police"), complete(), 5_000));
        let state = fold(&actions);
        assert!(state.clocks.iter().all(|clock| clock.stopped == Some((5_000, ClockStop::Completed))));
    }

    #[test]
    fn a_worker_refuses_only_their_own_report_and_resolving_needs_evidence() {
        let refuse = ActionKind::Refuse { catalog_reference: "AQ-010".into(), reason: "专业执法事项".into() };
        let state = fold(&[act(worker(), ActionKind::Report), act(actor("w2", Role::PartTimeWorker), refuse.clone())]);
        assert_eq!(state.marks[1], Mark::NotApplied(NotApplied::NotTheReporter));
        let state = fold(&[act(worker(), ActionKind::Report), act(center(), refuse)]);
        assert_eq!(state.phase, Phase::Refused);
        let bare = ActionKind::ResolveOnSpot { note: "已处理".into(), evidence: vec![] };
        let state = fold(&[act(worker(), ActionKind::Report), act(worker(), bare)]);
        assert!(matches!(state.marks[1], Mark::NotApplied(NotApplied::Invalid { .. })));
    }

    #[test]
    fn a_department_does_not_verify_its_own_work() {
        let mut actions = dispatched();
        actions.push(act(handler("police"), complete()));
        let own = Actor { person: "p1".into(), role: Role::ProfessionalWorker, department: Some(dept("police")) };
        actions.push(act(own, verify(Verdict::Pass)));
        let state = fold(&actions);
        assert_eq!(state.marks[4], Mark::NotApplied(NotApplied::NotResponsible));
    }

    #[test]
    fn dispatch_twice_is_a_redispatch_and_the_lead_is_not_a_co_handler() {
        let mut actions = dispatched();
        actions.push(act(center(), dispatch("urban", &[])));
        let state = fold(&actions);
        assert_eq!(state.marks[3], Mark::NotApplied(NotApplied::WrongPhase { phase: Phase::Dispatched }));
        let state = fold(&[
            act(worker(), ActionKind::Report),
            act(center(), ActionKind::Accept),
            act(center(), dispatch("police", &["police"])),
        ]);
        assert!(matches!(state.marks[2], Mark::NotApplied(NotApplied::Invalid { .. })));
    }

    #[test]
    fn unreadable_entries_are_marked_not_dropped() {
        let report = act(worker(), ActionKind::Report);
        let state = derive([Some(&report), None]);
        check_marks(&state, &[Mark::Applied, Mark::NotApplied(NotApplied::Unreadable)]);
    }
}
