//! The matter catalog 事项清单: which matters grids take in, who handles them, and
//! how long the handler has.
//!
//! Seed 004 第九条 has the county compile an admission list (准入清单) from the city's
//! classification, and 第二十条 forbids departments to push their own statutory
//! duties into grids; seed 001 第十三条 lets a grid worker refuse what is not on the
//! list. So every item says whether it is admitted into grids, and a matter that is
//! not (for example the enforcement that only a department may carry out) is still
//! listed, so that a refusal can name it. Deadlines follow seed 001 第十六条: 5
//! working days, 10 for complex matters, or the period a law sets; enterprise
//! requests follow the "117" rule of seed 002.
//!
//! A catalog is data, not code: the default one is `data/catalog.json`, and a
//! county's own comes as JSON too. Both are checked on load:
//!
//! ```
//! use wangge_core::incident::catalog::{Catalog, CatalogError, MatterClass};
//!
//! let catalog = Catalog::default_catalog();
//! let item = catalog.item("MD-001").expect("邻里纠纷 is in the default catalog");
//! assert_eq!(item.class, MatterClass::Dispute);
//! assert!(item.admitted);
//!
//! let json = r#"{ "name": "测试清单", "version": 1, "departments": [],
//!   "items": [{ "code": "MD-001", "name": "邻里纠纷", "class": "dispute", "admitted": true,
//!               "departments": ["justice"], "deadline": { "kind": "working_days", "days": 5 } }] }"#;
//! let error = Catalog::from_json(json).unwrap_err();
//! assert!(matches!(error, CatalogError::UnknownDepartment { .. }));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::roles::{Department, DepartmentCode};
use crate::model::InvalidField;

/// The catalog shipped with the app, used until a county publishes its own.
const DEFAULT_CATALOG_JSON: &str = include_str!("data/catalog.json");

/// The longest period a deadline may name. Every real period is far shorter, so a
/// larger number is a typing error in the file.
const MAX_DEADLINE_DAYS: u32 = 365;

/// The class of a matter: the seeds' areas of grid work (seed 004 第二条, 第八条)
/// and the event classes of GB/T 30428.2 for city management.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatterClass {
    /// 矛盾纠纷 (seed 004 第八条(四)).
    Dispute,
    /// 安全隐患: buildings, gas, production, schools, water works (seed 004 第二条 安全隐患排查).
    SafetyHazard,
    /// 消防安全: fire hazards, for the fire and rescue service of seed 004 第五条.
    FireSafety,
    /// 社会治安 (seed 004 第八条(三)).
    PublicOrder,
    /// 特殊人群服务管理 (seed 004 第八条(五)): community corrections, mental health, …
    SpecialGroup,
    /// 市容环境 (GB/T 30428.2).
    CityAppearance,
    /// 宣传广告 (GB/T 30428.2).
    Advertising,
    /// 施工管理 (GB/T 30428.2).
    Construction,
    /// 街面秩序 (GB/T 30428.2).
    StreetOrder,
    /// 突发事件 (GB/T 30428.2; seed 004 第八条(三)).
    Emergency,
    /// 公用设施: the 部件 of GB/T 30428.2 — manholes, street lights, roads.
    PublicFacility,
    /// 生态环境 (seed 004 第八条(三) 环境保护).
    Ecology,
    /// 食品药品安全.
    FoodDrug,
    /// 民生服务 (seed 004 第八条(五)): social assistance, employment, the elderly.
    PublicService,
    /// 企业服务: requests of enterprises, answered under the "117" rule (seed 002).
    EnterpriseService,
}

impl MatterClass {
    pub const ALL: [MatterClass; 15] = [
        MatterClass::Dispute,
        MatterClass::SafetyHazard,
        MatterClass::FireSafety,
        MatterClass::PublicOrder,
        MatterClass::SpecialGroup,
        MatterClass::CityAppearance,
        MatterClass::Advertising,
        MatterClass::Construction,
        MatterClass::StreetOrder,
        MatterClass::Emergency,
        MatterClass::PublicFacility,
        MatterClass::Ecology,
        MatterClass::FoodDrug,
        MatterClass::PublicService,
        MatterClass::EnterpriseService,
    ];

    /// The stable code stored in documents and in catalog files.
    pub fn code(self) -> &'static str {
        match self {
            MatterClass::Dispute => "dispute",
            MatterClass::SafetyHazard => "safety_hazard",
            MatterClass::FireSafety => "fire_safety",
            MatterClass::PublicOrder => "public_order",
            MatterClass::SpecialGroup => "special_group",
            MatterClass::CityAppearance => "city_appearance",
            MatterClass::Advertising => "advertising",
            MatterClass::Construction => "construction",
            MatterClass::StreetOrder => "street_order",
            MatterClass::Emergency => "emergency",
            MatterClass::PublicFacility => "public_facility",
            MatterClass::Ecology => "ecology",
            MatterClass::FoodDrug => "food_drug",
            MatterClass::PublicService => "public_service",
            MatterClass::EnterpriseService => "enterprise_service",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        MatterClass::ALL.into_iter().find(|class| class.code() == code)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            MatterClass::Dispute => "矛盾纠纷",
            MatterClass::SafetyHazard => "安全隐患",
            MatterClass::FireSafety => "消防安全",
            MatterClass::PublicOrder => "社会治安",
            MatterClass::SpecialGroup => "特殊人群",
            MatterClass::CityAppearance => "市容环境",
            MatterClass::Advertising => "宣传广告",
            MatterClass::Construction => "施工管理",
            MatterClass::StreetOrder => "街面秩序",
            MatterClass::Emergency => "突发事件",
            MatterClass::PublicFacility => "公用设施",
            MatterClass::Ecology => "生态环境",
            MatterClass::FoodDrug => "食品药品",
            MatterClass::PublicService => "民生服务",
            MatterClass::EnterpriseService => "企业服务",
        }
    }

    /// The prefix of item codes of this class in the default catalog, e.g. `MD` in
    /// `MD-001`. Other catalogs may number their items as they like.
    pub fn code_prefix(self) -> &'static str {
        match self {
            MatterClass::Dispute => "MD",
            MatterClass::SafetyHazard => "AQ",
            MatterClass::FireSafety => "XF",
            MatterClass::PublicOrder => "ZA",
            MatterClass::SpecialGroup => "TS",
            MatterClass::CityAppearance => "SR",
            MatterClass::Advertising => "GG",
            MatterClass::Construction => "SG",
            MatterClass::StreetOrder => "JM",
            MatterClass::Emergency => "TF",
            MatterClass::PublicFacility => "SS",
            MatterClass::Ecology => "HJ",
            MatterClass::FoodDrug => "SP",
            MatterClass::PublicService => "MS",
            MatterClass::EnterpriseService => "QY",
        }
    }
}

impl fmt::Display for MatterClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How long the handling department has to close a matter (seed 001 第十六条).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadlineSpec {
    /// An ordinary matter: 原则上 5 working days.
    WorkingDays(u32),
    /// A complex or difficult matter: 10 working days.
    ComplexWorkingDays(u32),
    /// A period set by law (办理时限有法律法规规定的，从其规定), counted in working
    /// days or in calendar days as the law says; `basis` names the law and the rule.
    StatutoryDays { days: u32, working: bool, basis: String },
    /// An enterprise's request under the "117" rule of seed 002: answer within 1 hour,
    /// propose a solution within 1 day, close within 7 days.
    Enterprise117,
}

/// A period counted in working days or in calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayCount {
    WorkingDays(u32),
    CalendarDays(u32),
}

impl DeadlineSpec {
    /// "117": the request is taken and answered within 1 hour.
    pub const ENTERPRISE_ANSWER_HOURS: u32 = 1;
    /// "117": a solution is proposed within 1 day.
    pub const ENTERPRISE_PLAN_DAYS: u32 = 1;
    /// "117": the request is closed within 7 days at the latest.
    pub const ENTERPRISE_CLOSE_DAYS: u32 = 7;

    /// The period within which the matter must be closed.
    pub fn close_within(&self) -> DayCount {
        match *self {
            DeadlineSpec::WorkingDays(days) | DeadlineSpec::ComplexWorkingDays(days) => DayCount::WorkingDays(days),
            DeadlineSpec::StatutoryDays { days, working: true, .. } => DayCount::WorkingDays(days),
            DeadlineSpec::StatutoryDays { days, working: false, .. } => DayCount::CalendarDays(days),
            DeadlineSpec::Enterprise117 => DayCount::CalendarDays(Self::ENTERPRISE_CLOSE_DAYS),
        }
    }

    /// The rule in words, as a handler sees it, e.g. `5个工作日`.
    pub fn label_zh(&self) -> String {
        match self {
            DeadlineSpec::WorkingDays(days) => format!("{days}个工作日"),
            DeadlineSpec::ComplexWorkingDays(days) => format!("复杂事项{days}个工作日"),
            DeadlineSpec::StatutoryDays { days, working: true, basis } => format!("法定{days}个工作日（{basis}）"),
            DeadlineSpec::StatutoryDays { days, working: false, basis } => format!("法定{days}日（{basis}）"),
            DeadlineSpec::Enterprise117 => "“117”：1小时接单回复，1天内提出解决方案，7天内办结".to_owned(),
        }
    }

    fn check(&self) -> Result<(), &'static str> {
        let days = match self {
            DeadlineSpec::WorkingDays(days) | DeadlineSpec::ComplexWorkingDays(days) => *days,
            DeadlineSpec::StatutoryDays { days, basis, .. } => {
                if basis.trim().is_empty() {
                    return Err("a statutory period must name its legal basis in `basis`");
                }
                *days
            }
            DeadlineSpec::Enterprise117 => return Ok(()),
        };
        if days == 0 {
            Err("the number of days must be at least 1")
        } else if days > MAX_DEADLINE_DAYS {
            Err("the number of days must be at most 365")
        } else {
            Ok(())
        }
    }
}

/// One matter of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogItem {
    /// Stable code, e.g. `MD-001`: 2 to 16 upper-case ASCII letters, digits and `-`.
    pub code: String,
    pub name: String,
    pub class: MatterClass,
    /// 是否纳入网格: whether grid workers take this matter in. One that is not may
    /// be refused (seed 001 第十三条) and is listed so the refusal can name it.
    pub admitted: bool,
    /// The responsible departments; the first is the default lead (牵头部门,
    /// seed 004 第二十二条).
    pub departments: Vec<DepartmentCode>,
    pub deadline: DeadlineSpec,
    pub description: Option<String>,
}

impl CatalogItem {
    /// The department that leads unless the centre names another.
    pub fn lead_department(&self) -> Option<&DepartmentCode> {
        self.departments.first()
    }
}

/// Why a catalog was rejected. Each message names the offending code and what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("malformed catalog JSON at line {line}, column {column}: {message}; fix the file there")]
    Malformed { line: usize, column: usize, message: String },

    #[error("duplicate item code {code}: give each matter its own code")]
    DuplicateItem { code: String },

    #[error("duplicate department code {code}: list each department once")]
    DuplicateDepartment { code: String },

    #[error("invalid department code {code:?}: {source}; use 2 to 32 lower-case letters, digits and '_'")]
    InvalidDepartmentCode { code: String, source: InvalidField },

    #[error("invalid item code {code:?}: {reason}")]
    InvalidItemCode { code: String, reason: &'static str },

    #[error("department {code} has an empty name: give its full name")]
    EmptyDepartmentName { code: String },

    #[error("item {code} has an empty name: give the matter's name")]
    EmptyItemName { code: String },

    #[error("item {item} has unknown class {class:?}: use one of the MatterClass codes, e.g. \"dispute\"")]
    UnknownClass { item: String, class: String },

    #[error("item {item} has no responsible department: list at least one, the lead first")]
    NoDepartment { item: String },

    #[error("item {item} refers to unknown department {department:?}: add it to `departments` or correct the code")]
    UnknownDepartment { item: String, department: String },

    #[error("item {item} lists department {department} twice: list it once")]
    RepeatedDepartment { item: String, department: String },

    #[error("item {item} has an invalid deadline: {reason}")]
    InvalidDeadline { item: String, reason: &'static str },
}

/// A validated matter catalog: every item's departments exist, codes are unique,
/// names are not empty and deadlines are real periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    name: String,
    version: u32,
    departments: BTreeMap<DepartmentCode, Department>,
    items: BTreeMap<String, CatalogItem>,
}

impl Catalog {
    /// Checks and assembles a catalog.
    pub fn new(
        name: String,
        version: u32,
        departments: Vec<Department>,
        items: Vec<CatalogItem>,
    ) -> Result<Catalog, CatalogError> {
        let mut department_map = BTreeMap::new();
        for department in departments {
            let department = Department {
                name: department.name.trim().to_owned(),
                short_name: non_empty(department.short_name),
                ..department
            };
            if department.name.is_empty() {
                return Err(CatalogError::EmptyDepartmentName { code: department.code.to_string() });
            }
            if department_map.contains_key(&department.code) {
                return Err(CatalogError::DuplicateDepartment { code: department.code.to_string() });
            }
            department_map.insert(department.code.clone(), department);
        }

        let mut item_map = BTreeMap::new();
        for item in items {
            let item = CatalogItem {
                code: item.code.trim().to_owned(),
                name: item.name.trim().to_owned(),
                description: non_empty(item.description),
                ..item
            };
            check_item_code(&item.code)?;
            if item.name.is_empty() {
                return Err(CatalogError::EmptyItemName { code: item.code });
            }
            if item.departments.is_empty() {
                return Err(CatalogError::NoDepartment { item: item.code });
            }
            for (i, department) in item.departments.iter().enumerate() {
                if !department_map.contains_key(department) {
                    return Err(CatalogError::UnknownDepartment {
                        item: item.code.clone(),
                        department: department.to_string(),
                    });
                }
                if item.departments[..i].contains(department) {
                    return Err(CatalogError::RepeatedDepartment {
                        item: item.code.clone(),
                        department: department.to_string(),
                    });
                }
            }
            if let Err(reason) = item.deadline.check() {
                return Err(CatalogError::InvalidDeadline { item: item.code, reason });
            }
            if item_map.contains_key(&item.code) {
                return Err(CatalogError::DuplicateItem { code: item.code });
            }
            item_map.insert(item.code.clone(), item);
        }

        Ok(Catalog { name: name.trim().to_owned(), version, departments: department_map, items: item_map })
    }

    /// The catalog shipped with the app (`data/catalog.json`).
    pub fn default_catalog() -> Catalog {
        // The embedded file is checked by the tests of this module, so it cannot fail
        // here in a build that passed them.
        Catalog::from_json(DEFAULT_CATALOG_JSON).expect("the embedded default catalog is valid")
    }

    /// Reads and checks a catalog file.
    ///
    /// The file is an object `{ name, version, departments: [...], items: [...] }`; see
    /// `data/catalog.json`. Unknown fields are rejected, so that a misspelt field is
    /// not silently ignored.
    pub fn from_json(json: &str) -> Result<Catalog, CatalogError> {
        let file: wire::CatalogFile = serde_json::from_str(json).map_err(|error| CatalogError::Malformed {
            line: error.line(),
            column: error.column(),
            message: error.to_string(),
        })?;
        file.into_catalog()
    }

    /// The catalog as a file that [`Catalog::from_json`] reads back unchanged.
    pub fn to_json(&self) -> String {
        let file = wire::CatalogFile::from_catalog(self);
        // The file holds strings, numbers, booleans, sequences and string-keyed
        // objects only, which serde_json always serializes.
        serde_json::to_string_pretty(&file).expect("a catalog file always serializes")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Raised by whoever publishes a new catalog; a device keeps the highest it has seen.
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn item(&self, code: &str) -> Option<&CatalogItem> {
        self.items.get(code)
    }

    pub fn department(&self, code: &str) -> Option<&Department> {
        self.departments.get(code)
    }

    /// All items, by code.
    pub fn items(&self) -> impl Iterator<Item = &CatalogItem> {
        self.items.values()
    }

    /// All departments, by code.
    pub fn departments(&self) -> impl Iterator<Item = &Department> {
        self.departments.values()
    }

    pub fn items_of_class(&self, class: MatterClass) -> impl Iterator<Item = &CatalogItem> {
        self.items.values().filter(move |item| item.class == class)
    }

    /// The items grid workers take in (纳入网格).
    pub fn admitted_items(&self) -> impl Iterator<Item = &CatalogItem> {
        self.items.values().filter(|item| item.admitted)
    }

    /// The items a department is responsible for, leading or not.
    pub fn items_of_department(&self, code: &str) -> impl Iterator<Item = &CatalogItem> {
        self.items.values().filter(move |item| item.departments.iter().any(|department| department.as_str() == code))
    }
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|text| text.trim().to_owned()).filter(|text| !text.is_empty())
}

fn check_item_code(code: &str) -> Result<(), CatalogError> {
    let invalid = |reason| Err(CatalogError::InvalidItemCode { code: code.to_owned(), reason });
    if code.is_empty() {
        return invalid("must not be empty");
    }
    if !(2..=16).contains(&code.chars().count()) {
        return invalid("must be 2 to 16 characters long");
    }
    if !code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-') {
        return invalid("use upper-case letters, digits and '-' only, e.g. MD-001");
    }
    Ok(())
}

/// The catalog file's own types, converted by hand so that the domain types do not
/// have to look like the file.
mod wire {
    use serde::{Deserialize, Serialize};

    use super::{Catalog, CatalogError, CatalogItem, DeadlineSpec, MatterClass};
    use crate::incident::roles::{Department, DepartmentCode};

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct CatalogFile {
        name: String,
        version: u32,
        departments: Vec<DepartmentEntry>,
        items: Vec<ItemEntry>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DepartmentEntry {
        code: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        short_name: Option<String>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ItemEntry {
        code: String,
        name: String,
        class: String,
        admitted: bool,
        departments: Vec<String>,
        deadline: DeadlineEntry,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    enum DeadlineEntry {
        WorkingDays {
            days: u32,
        },
        ComplexWorkingDays {
            days: u32,
        },
        StatutoryDays {
            days: u32,
            working: bool,
            basis: String,
        },
        #[serde(rename = "enterprise_117")]
        Enterprise117,
    }

    impl CatalogFile {
        pub(super) fn into_catalog(self) -> Result<Catalog, CatalogError> {
            let mut departments = Vec::with_capacity(self.departments.len());
            for entry in self.departments {
                let code = DepartmentCode::parse(&entry.code)
                    .map_err(|source| CatalogError::InvalidDepartmentCode { code: entry.code.clone(), source })?;
                departments.push(Department { code, name: entry.name, short_name: entry.short_name });
            }

            let mut items = Vec::with_capacity(self.items.len());
            for entry in self.items {
                let Some(class) = MatterClass::from_code(entry.class.trim()) else {
                    return Err(CatalogError::UnknownClass { item: entry.code, class: entry.class });
                };
                let mut item_departments = Vec::with_capacity(entry.departments.len());
                for department in entry.departments {
                    // A code that is not even well formed cannot name a listed
                    // department; saying it is unknown points at the right fix.
                    match DepartmentCode::parse(&department) {
                        Ok(code) => item_departments.push(code),
                        Err(_) => return Err(CatalogError::UnknownDepartment { item: entry.code, department }),
                    }
                }
                let deadline = match entry.deadline {
                    DeadlineEntry::WorkingDays { days } => DeadlineSpec::WorkingDays(days),
                    DeadlineEntry::ComplexWorkingDays { days } => DeadlineSpec::ComplexWorkingDays(days),
                    DeadlineEntry::StatutoryDays { days, working, basis } => {
                        DeadlineSpec::StatutoryDays { days, working, basis }
                    }
                    DeadlineEntry::Enterprise117 => DeadlineSpec::Enterprise117,
                };
                items.push(CatalogItem {
                    code: entry.code,
                    name: entry.name,
                    class,
                    admitted: entry.admitted,
                    departments: item_departments,
                    deadline,
                    description: entry.description,
                });
            }

            Catalog::new(self.name, self.version, departments, items)
        }

        pub(super) fn from_catalog(catalog: &Catalog) -> CatalogFile {
            let departments = catalog
                .departments()
                .map(|department| DepartmentEntry {
                    code: department.code.to_string(),
                    name: department.name.clone(),
                    short_name: department.short_name.clone(),
                })
                .collect();
            let items = catalog
                .items()
                .map(|item| ItemEntry {
                    code: item.code.clone(),
                    name: item.name.clone(),
                    class: item.class.code().to_owned(),
                    admitted: item.admitted,
                    departments: item.departments.iter().map(DepartmentCode::to_string).collect(),
                    deadline: match &item.deadline {
                        DeadlineSpec::WorkingDays(days) => DeadlineEntry::WorkingDays { days: *days },
                        DeadlineSpec::ComplexWorkingDays(days) => DeadlineEntry::ComplexWorkingDays { days: *days },
                        DeadlineSpec::StatutoryDays { days, working, basis } => {
                            DeadlineEntry::StatutoryDays { days: *days, working: *working, basis: basis.clone() }
                        }
                        DeadlineSpec::Enterprise117 => DeadlineEntry::Enterprise117,
                    },
                    description: item.description.clone(),
                })
                .collect();
            CatalogFile { name: catalog.name.clone(), version: catalog.version, departments, items }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::model::Invalid;

    #[test]
    fn the_default_catalog_loads() {
        let catalog = Catalog::from_json(DEFAULT_CATALOG_JSON).unwrap();
        assert_eq!(catalog, Catalog::default_catalog());
        assert!(!catalog.name().is_empty());
        assert!(catalog.version() >= 1);
    }

    #[test]
    fn the_default_catalog_has_at_least_45_items_and_15_departments() {
        let catalog = Catalog::default_catalog();
        assert!(catalog.items().count() >= 45, "{} items", catalog.items().count());
        assert!(catalog.departments().count() >= 15, "{} departments", catalog.departments().count());
    }

    #[test]
    fn every_default_item_names_existing_departments() {
        let catalog = Catalog::default_catalog();
        for item in catalog.items() {
            assert!(!item.departments.is_empty(), "{}", item.code);
            for department in &item.departments {
                assert!(catalog.department(department.as_str()).is_some(), "{} → {department}", item.code);
            }
        }
    }

    #[test]
    fn every_class_is_used_and_admitted_in_the_default_catalog() {
        let catalog = Catalog::default_catalog();
        for class in MatterClass::ALL {
            assert!(catalog.items_of_class(class).any(|item| item.admitted), "no admitted item of class {class}");
        }
    }

    #[test]
    fn the_default_catalog_refuses_some_matters() {
        let catalog = Catalog::default_catalog();
        let n_refused = catalog.items().filter(|item| !item.admitted).count();
        assert!(n_refused >= 3, "{n_refused} items not admitted");
        assert!(catalog.admitted_items().all(|item| item.admitted));
        assert_eq!(catalog.admitted_items().count() + n_refused, catalog.items().count());
    }

    #[test]
    fn default_codes_are_unique_and_follow_the_class_prefix() {
        // The map would hide a duplicate, so count the file's entries.
        let file: serde_json::Value = serde_json::from_str(DEFAULT_CATALOG_JSON).unwrap();
        let n_items = file["items"].as_array().unwrap().len();
        let n_departments = file["departments"].as_array().unwrap().len();
        let catalog = Catalog::default_catalog();
        assert_eq!(catalog.items().count(), n_items);
        assert_eq!(catalog.departments().count(), n_departments);
        let codes: HashSet<&str> = catalog.items().map(|item| item.code.as_str()).collect();
        assert_eq!(codes.len(), n_items);
        for item in catalog.items() {
            let prefix = format!("{}-", item.class.code_prefix());
            assert!(item.code.starts_with(&prefix), "{} is not {prefix}…", item.code);
        }
    }

    #[test]
    fn default_deadlines_follow_the_seeds() {
        let catalog = Catalog::default_catalog();
        for item in catalog.items() {
            match &item.deadline {
                DeadlineSpec::WorkingDays(days) => assert_eq!(*days, 5, "{}", item.code),
                DeadlineSpec::ComplexWorkingDays(days) => assert_eq!(*days, 10, "{}", item.code),
                DeadlineSpec::StatutoryDays { basis, .. } => assert!(basis.contains('《'), "{}", item.code),
                DeadlineSpec::Enterprise117 => assert_eq!(item.class, MatterClass::EnterpriseService),
            }
        }
        let n_statutory =
            catalog.items().filter(|item| matches!(item.deadline, DeadlineSpec::StatutoryDays { .. })).count();
        assert!(n_statutory >= 3);
    }

    #[test]
    fn the_default_catalog_round_trips_through_json() {
        let catalog = Catalog::default_catalog();
        let json = catalog.to_json();
        assert_eq!(Catalog::from_json(&json).unwrap(), catalog);
        // And the written file is the embedded one, up to formatting and order.
        let written: serde_json::Value = serde_json::from_str(&json).unwrap();
        let embedded: serde_json::Value = serde_json::from_str(DEFAULT_CATALOG_JSON).unwrap();
        assert_eq!(written["name"], embedded["name"]);
        assert_eq!(written["items"].as_array().unwrap().len(), embedded["items"].as_array().unwrap().len());
    }

    #[test]
    fn lookups() {
        let catalog = Catalog::default_catalog();
        let item = catalog.item("MD-001").unwrap();
        assert_eq!(item.name, "邻里纠纷");
        assert_eq!(item.lead_department().unwrap().as_str(), "justice");
        assert_eq!(catalog.department("justice").unwrap().display_name(), "司法");
        assert!(catalog.item("XX-999").is_none());
        assert!(catalog.department("ministry_of_magic").is_none());
        assert!(catalog.items_of_class(MatterClass::Dispute).all(|item| item.class == MatterClass::Dispute));
        assert!(catalog.items_of_department("market_regulation").any(|item| item.code == "SP-001"));
        let enterprise = catalog.items_of_class(MatterClass::EnterpriseService).next().unwrap();
        assert_eq!(enterprise.deadline, DeadlineSpec::Enterprise117);
        assert_eq!(enterprise.deadline.close_within(), DayCount::CalendarDays(7));
    }

    #[test]
    fn class_codes_round_trip() {
        let mut codes = HashSet::new();
        for class in MatterClass::ALL {
            assert_eq!(MatterClass::from_code(class.code()), Some(class));
            assert_eq!(serde_json::to_string(&class).unwrap(), format!("\"{}\"", class.code()));
            assert!(codes.insert(class.code()));
            assert!(!class.label_zh().is_empty());
        }
        assert_eq!(MatterClass::from_code("矛盾纠纷"), None);
    }

    #[test]
    fn deadline_labels_and_periods() {
        #[track_caller]
        fn check(deadline: DeadlineSpec, label: &str, period: DayCount) {
            assert_eq!(deadline.label_zh(), label);
            assert_eq!(deadline.close_within(), period);
        }
        check(DeadlineSpec::WorkingDays(5), "5个工作日", DayCount::WorkingDays(5));
        check(DeadlineSpec::ComplexWorkingDays(10), "复杂事项10个工作日", DayCount::WorkingDays(10));
        check(
            DeadlineSpec::StatutoryDays { days: 60, working: false, basis: "《信访工作条例》".to_owned() },
            "法定60日（《信访工作条例》）",
            DayCount::CalendarDays(60),
        );
        check(
            DeadlineSpec::StatutoryDays { days: 7, working: true, basis: "《办法》".to_owned() },
            "法定7个工作日（《办法》）",
            DayCount::WorkingDays(7),
        );
        check(
            DeadlineSpec::Enterprise117,
            "“117”：1小时接单回复，1天内提出解决方案，7天内办结",
            DayCount::CalendarDays(7),
        );
    }

    /// A small catalog with one department and one item, whose parts a test replaces.
    fn small(departments: &str, items: &str) -> Result<Catalog, CatalogError> {
        Catalog::from_json(&format!(
            r#"{{ "name": "测试清单", "version": 1, "departments": [{departments}], "items": [{items}] }}"#
        ))
    }

    const JUSTICE: &str = r#"{ "code": "justice", "name": "司法局", "short_name": "司法" }"#;

    fn item(code: &str, departments: &str, deadline: &str) -> String {
        format!(
            r#"{{ "code": "{code}", "name": "邻里纠纷", "class": "dispute", "admitted": true,
                  "departments": [{departments}], "deadline": {deadline} }}"#
        )
    }

    const FIVE_DAYS: &str = r#"{ "kind": "working_days", "days": 5 }"#;

    #[test]
    fn a_small_catalog_loads() {
        let catalog = small(JUSTICE, &item("MD-001", r#""justice""#, FIVE_DAYS)).unwrap();
        assert_eq!(catalog.item("MD-001").unwrap().deadline, DeadlineSpec::WorkingDays(5));
        assert_eq!(catalog.item("MD-001").unwrap().description, None);
    }

    #[test]
    fn malformed_json_is_reported_with_its_position() {
        let error = Catalog::from_json("{\n  \"name\": \"清单\",\n  \"version\": \"one\"\n}").unwrap_err();
        match error {
            CatalogError::Malformed { line, column, .. } => {
                assert_eq!(line, 3);
                assert!(column > 0);
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
        assert!(matches!(Catalog::from_json("not json"), Err(CatalogError::Malformed { line: 1, .. })));
    }

    #[test]
    fn unknown_fields_are_malformed() {
        let misspelt = item("MD-001", r#""justice""#, FIVE_DAYS).replace("\"departments\"", "\"deparments\"");
        assert!(matches!(small(JUSTICE, &misspelt), Err(CatalogError::Malformed { .. })));
        let unknown_kind = item("MD-001", r#""justice""#, r#"{ "kind": "fortnight" }"#);
        assert!(matches!(small(JUSTICE, &unknown_kind), Err(CatalogError::Malformed { .. })));
    }

    #[test]
    fn a_duplicate_item_code_is_rejected() {
        let items =
            format!("{}, {}", item("MD-001", r#""justice""#, FIVE_DAYS), item("MD-001", r#""justice""#, FIVE_DAYS));
        assert_eq!(small(JUSTICE, &items), Err(CatalogError::DuplicateItem { code: "MD-001".to_owned() }));
    }

    #[test]
    fn a_duplicate_department_code_is_rejected() {
        let departments = format!("{JUSTICE}, {JUSTICE}");
        assert_eq!(
            small(&departments, &item("MD-001", r#""justice""#, FIVE_DAYS)),
            Err(CatalogError::DuplicateDepartment { code: "justice".to_owned() })
        );
    }

    #[test]
    fn an_unknown_department_is_rejected() {
        assert_eq!(
            small(JUSTICE, &item("MD-001", r#""justice", "police""#, FIVE_DAYS)),
            Err(CatalogError::UnknownDepartment { item: "MD-001".to_owned(), department: "police".to_owned() })
        );
        assert_eq!(
            small(JUSTICE, &item("MD-001", r#""Justice Bureau""#, FIVE_DAYS)),
            Err(CatalogError::UnknownDepartment { item: "MD-001".to_owned(), department: "Justice Bureau".to_owned() })
        );
    }

    #[test]
    fn a_department_listed_twice_is_rejected() {
        assert_eq!(
            small(JUSTICE, &item("MD-001", r#""justice", "justice""#, FIVE_DAYS)),
            Err(CatalogError::RepeatedDepartment { item: "MD-001".to_owned(), department: "justice".to_owned() })
        );
    }

    #[test]
    fn an_item_without_department_is_rejected() {
        assert_eq!(
            small(JUSTICE, &item("MD-001", "", FIVE_DAYS)),
            Err(CatalogError::NoDepartment { item: "MD-001".to_owned() })
        );
    }

    #[test]
    fn empty_names_are_rejected() {
        let nameless_item = item("MD-001", r#""justice""#, FIVE_DAYS).replace("邻里纠纷", "  ");
        assert_eq!(small(JUSTICE, &nameless_item), Err(CatalogError::EmptyItemName { code: "MD-001".to_owned() }));
        let nameless_department = JUSTICE.replace("司法局", "");
        assert_eq!(
            small(&nameless_department, &item("MD-001", r#""justice""#, FIVE_DAYS)),
            Err(CatalogError::EmptyDepartmentName { code: "justice".to_owned() })
        );
    }

    #[test]
    fn invalid_deadlines_are_rejected() {
        #[track_caller]
        fn check(deadline: &str) {
            let got = small(JUSTICE, &item("MD-001", r#""justice""#, deadline));
            assert!(
                matches!(&got, Err(CatalogError::InvalidDeadline { item, .. }) if item == "MD-001"),
                "{deadline}: {got:?}"
            );
        }
        check(r#"{ "kind": "working_days", "days": 0 }"#);
        check(r#"{ "kind": "complex_working_days", "days": 0 }"#);
        check(r#"{ "kind": "statutory_days", "days": 0, "working": true, "basis": "《某条例》" }"#);
        check(r#"{ "kind": "statutory_days", "days": 60, "working": false, "basis": " " }"#);
        check(r#"{ "kind": "working_days", "days": 500 }"#);
        let enterprise = small(JUSTICE, &item("QY-001", r#""justice""#, r#"{ "kind": "enterprise_117" }"#)).unwrap();
        assert_eq!(enterprise.item("QY-001").unwrap().deadline, DeadlineSpec::Enterprise117);
    }

    #[test]
    fn an_invalid_department_code_is_rejected() {
        let departments = r#"{ "code": "Public-Security", "name": "公安局" }"#;
        match small(departments, "") {
            Err(CatalogError::InvalidDepartmentCode { code, source }) => {
                assert_eq!(code, "Public-Security");
                assert_eq!(source, InvalidField::new("department_code", Invalid::Character { position: 1 }));
            }
            other => panic!("expected InvalidDepartmentCode, got {other:?}"),
        }
    }

    #[test]
    fn an_invalid_item_code_is_rejected() {
        for code in ["", "md-001", "MD 001", "MD-0000000000000001"] {
            let got = small(JUSTICE, &item(code, r#""justice""#, FIVE_DAYS));
            assert!(
                matches!(&got, Err(CatalogError::InvalidItemCode { code: got_code, .. }) if got_code == code.trim()),
                "{code:?}: {got:?}"
            );
        }
    }

    #[test]
    fn an_unknown_class_is_rejected() {
        let items = item("MD-001", r#""justice""#, FIVE_DAYS).replace("\"dispute\"", "\"quarrel\"");
        assert_eq!(
            small(JUSTICE, &items),
            Err(CatalogError::UnknownClass { item: "MD-001".to_owned(), class: "quarrel".to_owned() })
        );
    }

    #[test]
    fn error_messages_name_the_code_and_the_fix() {
        let error = CatalogError::UnknownDepartment { item: "MD-001".to_owned(), department: "police".to_owned() };
        assert_eq!(
            error.to_string(),
            "item MD-001 refers to unknown department \"police\": add it to `departments` or correct the code"
        );
        let error = CatalogError::DuplicateItem { code: "MD-001".to_owned() };
        assert_eq!(error.to_string(), "duplicate item code MD-001: give each matter its own code");
    }
}
