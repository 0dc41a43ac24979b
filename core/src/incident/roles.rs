//! Who takes part in an incident's loop: the roles of grid work, and the linked
//! departments (网格化联动部门) that handle what the centres dispatch.
//!
//! The seeds name four kinds of grid worker (网格长, 专职, 兼职 and 专业网格员), the
//! grid centres (网格化服务管理中心 / 综治中心) at city, county and township level,
//! and the departments that "按照各自职责" handle matters. The rules that depend on
//! the role alone are stated here once, so that no screen or sync rule restates them:
//!
//! ```
//! use wangge_core::incident::roles::{CenterLevel, Role};
//!
//! let role = Role::from_code("center_staff_county").expect("a known code");
//! assert_eq!(role, Role::CenterStaff(CenterLevel::County));
//! assert!(role.may_dispatch());
//! // Minimum necessary: a part-time worker reports matters but never sees ID numbers.
//! assert!(!Role::PartTimeWorker.may_see_sensitive_data());
//! ```

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Invalid, InvalidField};

/// The level of a grid centre. Seed 004 第四条: 市、县（市、区）、乡镇（街道）each have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CenterLevel {
    City,
    County,
    Township,
}

impl CenterLevel {
    pub const ALL: [CenterLevel; 3] = [CenterLevel::City, CenterLevel::County, CenterLevel::Township];

    /// The stable code stored in documents and tables.
    pub fn code(self) -> &'static str {
        match self {
            CenterLevel::City => "city",
            CenterLevel::County => "county",
            CenterLevel::Township => "township",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        CenterLevel::ALL.into_iter().find(|level| level.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            CenterLevel::City => "市级",
            CenterLevel::County => "县（市、区）级",
            CenterLevel::Township => "乡镇（街道）级",
        }
    }
}

/// A person's role in grid work.
///
/// Serialized as its [`code`](Role::code), e.g. `"center_staff_county"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Role {
    /// 兼职网格员: party members, group leaders, volunteers who help the full-time
    /// worker (seed 004 第十条, 第十一条).
    PartTimeWorker,
    /// 专职网格员: usually a community worker; visits, reports and handles the matters
    /// of the catalog.
    FullTimeWorker,
    /// 网格长: the person responsible for a grid, from the community's party
    /// organisation or committee; may lead several grids.
    GridLeader,
    /// 专业网格员: placed in grids by a linked department; may cover several grids
    /// and handles the matters of its own department.
    ProfessionalWorker,
    /// Staff of a grid centre, which receives, dispatches, supervises and closes.
    CenterStaff(CenterLevel),
    /// 联动部门承办人: the handler in a linked department who works the matters
    /// dispatched to it.
    DepartmentHandler,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::PartTimeWorker,
        Role::FullTimeWorker,
        Role::GridLeader,
        Role::ProfessionalWorker,
        Role::CenterStaff(CenterLevel::City),
        Role::CenterStaff(CenterLevel::County),
        Role::CenterStaff(CenterLevel::Township),
        Role::DepartmentHandler,
    ];

    /// The stable code stored in documents and tables.
    pub fn code(self) -> &'static str {
        match self {
            Role::PartTimeWorker => "part_time_worker",
            Role::FullTimeWorker => "full_time_worker",
            Role::GridLeader => "grid_leader",
            Role::ProfessionalWorker => "professional_worker",
            Role::CenterStaff(CenterLevel::City) => "center_staff_city",
            Role::CenterStaff(CenterLevel::County) => "center_staff_county",
            Role::CenterStaff(CenterLevel::Township) => "center_staff_township",
            Role::DepartmentHandler => "department_handler",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|role| role.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Role::PartTimeWorker => "兼职网格员",
            Role::FullTimeWorker => "专职网格员",
            Role::GridLeader => "网格长",
            Role::ProfessionalWorker => "专业网格员",
            Role::CenterStaff(CenterLevel::City) => "市级网格化服务管理中心工作人员",
            Role::CenterStaff(CenterLevel::County) => "县（市、区）网格化服务管理中心工作人员",
            Role::CenterStaff(CenterLevel::Township) => "乡镇（街道）网格化服务管理中心工作人员",
            Role::DepartmentHandler => "联动部门承办人",
        }
    }

    /// Whether the role may see residents' sensitive fields (ID numbers, phones,
    /// special-group markers).
    ///
    /// Minimum necessary (seed 004 第十三条, 第二十七条 数据分级准入): a part-time
    /// worker is a volunteer who helps and reports, and a department handler works
    /// one dispatched matter, which carries what the matter needs and no more. The
    /// others keep the register of their grids or supervise them.
    pub fn may_see_sensitive_data(self) -> bool {
        !matches!(self, Role::PartTimeWorker | Role::DepartmentHandler)
    }

    /// The four kinds of 网格员 of seed 004 第二条.
    pub fn is_grid_worker(self) -> bool {
        matches!(self, Role::PartTimeWorker | Role::FullTimeWorker | Role::GridLeader | Role::ProfessionalWorker)
    }

    pub fn is_center(self) -> bool {
        matches!(self, Role::CenterStaff(_))
    }

    pub fn center_level(self) -> Option<CenterLevel> {
        match self {
            Role::CenterStaff(level) => Some(level),
            _ => None,
        }
    }

    /// Whether one person in this role may be assigned to several grids: seed 004
    /// 第十条 says so of the grid leader (同一网格长可以对应多个网格) and of the
    /// professional worker (同一专业网格员可以对应多个网格).
    pub fn may_cover_several_grids(self) -> bool {
        matches!(self, Role::GridLeader | Role::ProfessionalWorker)
    }

    /// Whether a person in this role belongs to a linked department (and so must name it):
    /// the department handler, and the professional worker a department places in grids.
    pub fn belongs_to_department(self) -> bool {
        matches!(self, Role::DepartmentHandler | Role::ProfessionalWorker)
    }

    /// Whether the role may dispatch a matter to a department or a grid worker.
    ///
    /// Seed 004 第二十条 统一交办: matters of the catalog are dispatched by the grid
    /// centres only; a linked department may not assign work to grid workers directly.
    pub fn may_dispatch(self) -> bool {
        self.is_center()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for Role {
    type Error = InvalidField;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        Role::from_code(&code).ok_or(InvalidField::new("role", Invalid::Rule("not a known role code")))
    }
}

impl From<Role> for String {
    fn from(role: Role) -> String {
        role.code().to_owned()
    }
}

const DEPARTMENT_CODE_FIELD: &str = "department_code";

/// The stable code of a linked department, e.g. `"public_security"`: 2 to 32
/// lower-case ASCII letters, digits and `_`.
///
/// Codes are chosen by whoever writes the catalog and are what incidents store; the
/// department's name can change without touching them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DepartmentCode(String);

impl DepartmentCode {
    pub fn parse(s: &str) -> Result<Self, InvalidField> {
        let invalid = |reason| InvalidField::new(DEPARTMENT_CODE_FIELD, reason);
        let s = s.trim();
        if s.is_empty() {
            return Err(invalid(Invalid::Empty));
        }
        let n_chars = s.chars().count();
        if !(2..=32).contains(&n_chars) {
            return Err(invalid(Invalid::Length { expected: "2 to 32", found: n_chars }));
        }
        if let Some(position) = s.chars().position(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')) {
            return Err(invalid(Invalid::Character { position: position + 1 }));
        }
        Ok(DepartmentCode(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by `DepartmentCode` be searched with a `&str`; the derived
/// `Ord`, `Eq` and `Hash` are those of the inner string, as `Borrow` requires.
impl Borrow<str> for DepartmentCode {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DepartmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for DepartmentCode {
    type Err = InvalidField;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DepartmentCode::parse(s)
    }
}

impl TryFrom<String> for DepartmentCode {
    type Error = InvalidField;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        DepartmentCode::parse(&s)
    }
}

impl From<DepartmentCode> for String {
    fn from(code: DepartmentCode) -> String {
        code.0
    }
}

/// A linked department (网格化联动部门, seed 004 第五条) or a public utility that
/// handles matters (供水、供电、供气, seed 001 第六条).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub code: DepartmentCode,
    /// The full name, e.g. 城市管理和综合执法局.
    pub name: String,
    /// The name people use, e.g. 城管.
    pub short_name: Option<String>,
}

impl Department {
    /// The short name where there is one, else the full name.
    pub fn display_name(&self) -> &str {
        self.short_name.as_deref().unwrap_or(&self.name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn role_codes_round_trip_and_are_unique() {
        let mut codes = std::collections::HashSet::new();
        for role in Role::ALL {
            assert_eq!(Role::from_code(role.code()), Some(role));
            assert!(codes.insert(role.code()), "duplicate code {}", role.code());
            assert!(!role.label_zh().is_empty());
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.code()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
        assert_eq!(Role::from_code("center_staff"), None);
        assert!(serde_json::from_str::<Role>("\"mayor\"").is_err());
    }

    #[test]
    fn center_level_codes_round_trip() {
        for level in CenterLevel::ALL {
            assert_eq!(CenterLevel::from_code(level.code()), Some(level));
            assert_eq!(serde_json::to_string(&level).unwrap(), format!("\"{}\"", level.code()));
            assert_eq!(Role::CenterStaff(level).center_level(), Some(level));
        }
        assert_eq!(CenterLevel::from_code("province"), None);
    }

    #[test]
    fn sensitive_data_is_withheld_from_part_time_workers_and_department_handlers() {
        #[track_caller]
        fn check(role: Role, expected: bool) {
            assert_eq!(role.may_see_sensitive_data(), expected, "{role}");
        }
        check(Role::PartTimeWorker, false);
        check(Role::FullTimeWorker, true);
        check(Role::GridLeader, true);
        check(Role::ProfessionalWorker, true);
        check(Role::CenterStaff(CenterLevel::City), true);
        check(Role::CenterStaff(CenterLevel::County), true);
        check(Role::CenterStaff(CenterLevel::Township), true);
        check(Role::DepartmentHandler, false);
    }

    #[test]
    fn grid_workers_centres_and_handlers_are_disjoint() {
        for role in Role::ALL {
            let n_kinds = [role.is_grid_worker(), role.is_center(), role == Role::DepartmentHandler]
                .into_iter()
                .filter(|&is| is)
                .count();
            assert_eq!(n_kinds, 1, "{role}");
        }
        let grid_workers: Vec<Role> = Role::ALL.into_iter().filter(|role| role.is_grid_worker()).collect();
        assert_eq!(
            grid_workers,
            [Role::PartTimeWorker, Role::FullTimeWorker, Role::GridLeader, Role::ProfessionalWorker]
        );
    }

    #[test]
    fn only_centres_dispatch_and_only_leaders_and_professionals_cover_several_grids() {
        for role in Role::ALL {
            assert_eq!(role.may_dispatch(), role.is_center(), "{role}");
            assert_eq!(
                role.may_cover_several_grids(),
                matches!(role, Role::GridLeader | Role::ProfessionalWorker),
                "{role}"
            );
        }
    }

    #[test]
    fn department_codes_are_validated() {
        #[track_caller]
        fn check(input: &str, expected: Result<&str, Invalid>) {
            let got = DepartmentCode::parse(input);
            match expected {
                Ok(code) => assert_eq!(got.unwrap().as_str(), code),
                Err(reason) => {
                    assert_eq!(got, Err(InvalidField::new("department_code", reason)))
                }
            }
        }
        check("public_security", Ok("public_security"));
        check(" fire_119 ", Ok("fire_119"));
        check("", Err(Invalid::Empty));
        check("  ", Err(Invalid::Empty));
        check("a", Err(Invalid::Length { expected: "2 to 32", found: 1 }));
        check(&"a".repeat(33), Err(Invalid::Length { expected: "2 to 32", found: 33 }));
        check("Public", Err(Invalid::Character { position: 1 }));
        check("city-management", Err(Invalid::Character { position: 5 }));
        check("公安局", Err(Invalid::Character { position: 1 }));
    }

    #[test]
    fn department_code_serde_validates() {
        let code = DepartmentCode::parse("civil_affairs").unwrap();
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"civil_affairs\"");
        assert_eq!(serde_json::from_str::<DepartmentCode>("\"civil_affairs\"").unwrap(), code);
        assert!(serde_json::from_str::<DepartmentCode>("\"Civil Affairs\"").is_err());
    }

    #[test]
    fn department_display_name_prefers_the_short_name() {
        let code = DepartmentCode::parse("urban_management").unwrap();
        let mut department =
            Department {
                code, name: "城市管理和综合执法局".to_owned(), short_name: Some("城管".to_owned())
            };
        assert_eq!(department.display_name(), "城管");
        department.short_name = None;
        assert_eq!(department.display_name(), "城市管理和综合执法局");
    }
}
