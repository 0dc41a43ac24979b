//! The actions of an incident's timeline 全过程记录: who did what, in which role, when.
//!
//! Actions are immutable once appended. They carry what their author claims (role,
//! department); the fold in [`super::state`] checks each against the rules, and the sync
//! server checks the claims against enrollment.

use serde::{Deserialize, Serialize};

use super::roles::{DepartmentCode, Role};

/// Who acted: a person (worker or staff id as issued by the server), the role they acted
/// in, and their department when the role is a department handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub person: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<DepartmentCode>,
}

/// Whether the verifier found the matter handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

/// What was done. The closed loop 发现上报 → 受理派遣 → 处置反馈 → 任务核查 → 事件归档 →
/// 考核评价, with its side paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActionKind {
    /// 发现上报: the incident is reported (always the first action, by its reporter).
    Report,
    /// 就地解决: the reporting worker resolved it on the spot; evidence by photo hashes.
    ResolveOnSpot { note: String, evidence: Vec<String> },
    /// Not a matter for the grid: not in the catalog 事项清单, or not admitted into grids.
    Refuse { catalog_reference: String, reason: String },
    /// The reporter withdraws it, before acceptance.
    Withdraw { reason: String },
    /// 受理: the grid institution accepts it.
    Accept,
    /// 派遣: to a lead department 主办 with co-handlers 协办.
    Dispatch { lead: DepartmentCode, co_handlers: Vec<DepartmentCode> },
    /// 退回: a department says it is not its duty, with reasons. Stops its clock.
    Reject { reasons: String },
    /// 重新派遣 after a rejection or a failed verification.
    Redispatch { lead: DepartmentCode, co_handlers: Vec<DepartmentCode> },
    /// 处置进展: a note on progress.
    Progress { note: String },
    /// 处置反馈: the lead department reports it handled.
    Complete { feedback: String, evidence: Vec<String> },
    /// 任务核查: pass closes the handling; fail sends it back to the department.
    Verify { verdict: Verdict, note: String },
    /// 督办: the institution urges the department.
    Urge { note: String },
    /// 提级办理: escalated with a responsible leader, person and deadline (YYYY-MM-DD).
    Escalate { leader: String, person: String, deadline: String },
    /// 事件归档.
    Archive,
    /// 考核评价: the resident's satisfaction, 1 to 5.
    Evaluate { satisfaction: u8, comment: String },
}

impl ActionKind {
    /// The stable name of the action, as stored.
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::Report => "report",
            ActionKind::ResolveOnSpot { .. } => "resolve_on_spot",
            ActionKind::Refuse { .. } => "refuse",
            ActionKind::Withdraw { .. } => "withdraw",
            ActionKind::Accept => "accept",
            ActionKind::Dispatch { .. } => "dispatch",
            ActionKind::Reject { .. } => "reject",
            ActionKind::Redispatch { .. } => "redispatch",
            ActionKind::Progress { .. } => "progress",
            ActionKind::Complete { .. } => "complete",
            ActionKind::Verify { .. } => "verify",
            ActionKind::Urge { .. } => "urge",
            ActionKind::Escalate { .. } => "escalate",
            ActionKind::Archive => "archive",
            ActionKind::Evaluate { .. } => "evaluate",
        }
    }

    pub fn label_zh(&self) -> &'static str {
        match self {
            ActionKind::Report => "上报",
            ActionKind::ResolveOnSpot { .. } => "就地解决",
            ActionKind::Refuse { .. } => "不予受理",
            ActionKind::Withdraw { .. } => "撤回",
            ActionKind::Accept => "受理",
            ActionKind::Dispatch { .. } => "派遣",
            ActionKind::Reject { .. } => "退回",
            ActionKind::Redispatch { .. } => "重新派遣",
            ActionKind::Progress { .. } => "处置进展",
            ActionKind::Complete { .. } => "处置反馈",
            ActionKind::Verify { .. } => "核查",
            ActionKind::Urge { .. } => "督办",
            ActionKind::Escalate { .. } => "提级办理",
            ActionKind::Archive => "归档",
            ActionKind::Evaluate { .. } => "评价",
        }
    }
}

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// UUIDv7, made by the acting device.
    pub id: String,
    pub actor: Actor,
    /// The acting device's clock corrected by the server's time (`crate::clock`), in
    /// milliseconds since 1970: shown, and used as the start of a dispatch's clock; never
    /// used to order actions (the timeline's order is causal).
    pub device_time_ms: i64,
    #[serde(flatten)]
    pub kind: ActionKind,
}
