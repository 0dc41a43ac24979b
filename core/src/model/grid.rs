//! The grid hierarchy 市 → 区县 → 乡镇街道 → 村社区 → 网格, and grid codes.
//!
//! A grid code is the 6-digit GB/T 2260 county code followed by the township,
//! community and grid serial segments, whose widths a [`CodeFormat`] fixes per
//! deployment (3, 3, 3 by default). Every level's code is a prefix of it:
//!
//! ```
//! use wangge_core::model::{AdminLevel, GridCode};
//!
//! // 440305 南山区 · 001 街道 · 002 社区 · 017 网格
//! let code = GridCode::parse_default("440305001002017")?;
//! assert_eq!(code.city_code(), "440300");
//! assert_eq!(code.prefix(AdminLevel::Community), "440305001002");
//! assert!(code.is_within("440300")); // 深圳市
//! # Ok::<(), wangge_core::model::InvalidField>(())
//! ```
//!
//! Codes are never reused. When a grid is split or merged the old grids are
//! retired with links to their successors ([`split`], [`merge`]), so records
//! that name an old code can still be followed to the grids of today.

use std::collections::HashSet;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::id_number::is_province_code;
use super::{Invalid, InvalidField};

const FIELD: &str = "grid_code";
const COUNTY_LEN: usize = 6;
/// Segments are at most 6 digits, so a code is 9 to 24 digits long.
const SEGMENT_LENGTHS: std::ops::RangeInclusive<u8> = 1..=6;
const CODE_LENGTHS: [&str; 16] =
    ["9", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20", "21", "22", "23", "24"];
const NAME_MAX_CHARS: usize = 50;

/// Widths of the segments after the county code. Deployments differ: the
/// national statistical codes use 3 + 3, and the grid serial is local practice.
///
/// The fields are public for reading; build one with [`CodeFormat::new`], which
/// checks each width is 1 to 6. [`GridCode::parse`] checks again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "[u8; 3]", into = "[u8; 3]")]
pub struct CodeFormat {
    pub township: u8,
    pub community: u8,
    pub grid: u8,
}

impl Default for CodeFormat {
    fn default() -> Self {
        CodeFormat { township: 3, community: 3, grid: 3 }
    }
}

impl CodeFormat {
    pub fn new(township: u8, community: u8, grid: u8) -> Result<Self, InvalidField> {
        let format = CodeFormat { township, community, grid };
        format.validate()?;
        Ok(format)
    }

    fn validate(&self) -> Result<(), InvalidField> {
        let widths = [self.township, self.community, self.grid];
        if widths.iter().all(|width| SEGMENT_LENGTHS.contains(width)) {
            Ok(())
        } else {
            Err(InvalidField::new("code_format", Invalid::Rule("each segment is 1 to 6 digits wide")))
        }
    }

    /// The length of a whole grid code: 6 + township + community + grid.
    pub fn grid_code_len(&self) -> usize {
        COUNTY_LEN + usize::from(self.township) + usize::from(self.community) + usize::from(self.grid)
    }

    fn township_end(&self) -> usize {
        COUNTY_LEN + usize::from(self.township)
    }

    fn community_end(&self) -> usize {
        self.township_end() + usize::from(self.community)
    }
}

impl TryFrom<[u8; 3]> for CodeFormat {
    type Error = InvalidField;

    fn try_from([township, community, grid]: [u8; 3]) -> Result<Self, Self::Error> {
        CodeFormat::new(township, community, grid)
    }
}

impl From<CodeFormat> for [u8; 3] {
    fn from(format: CodeFormat) -> [u8; 3] {
        [format.township, format.community, format.grid]
    }
}

/// The levels of the hierarchy, from the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminLevel {
    City,
    County,
    Township,
    Community,
    Grid,
}

impl AdminLevel {
    pub fn label_zh(self) -> &'static str {
        match self {
            AdminLevel::City => "市",
            AdminLevel::County => "区县",
            AdminLevel::Township => "乡镇街道",
            AdminLevel::Community => "村社区",
            AdminLevel::Grid => "网格",
        }
    }
}

/// A validated grid code, together with the format it was read with.
///
/// Serialized as `{ "code": "440305001002017", "format": [3, 3, 3] }`, since the
/// digits alone do not say where the segments end.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "GridCodeRepr", into = "GridCodeRepr")]
pub struct GridCode {
    code: String,
    format: CodeFormat,
}

#[derive(Serialize, Deserialize)]
struct GridCodeRepr {
    code: String,
    format: CodeFormat,
}

impl TryFrom<GridCodeRepr> for GridCode {
    type Error = InvalidField;

    fn try_from(repr: GridCodeRepr) -> Result<Self, Self::Error> {
        GridCode::parse(&repr.code, repr.format)
    }
}

impl From<GridCode> for GridCodeRepr {
    fn from(code: GridCode) -> Self {
        GridCodeRepr { code: code.code, format: code.format }
    }
}

fn invalid(reason: Invalid) -> InvalidField {
    InvalidField::new(FIELD, reason)
}

impl GridCode {
    pub fn parse(s: &str, format: CodeFormat) -> Result<GridCode, InvalidField> {
        format.validate()?;
        let s = s.trim();
        if s.is_empty() {
            return Err(invalid(Invalid::Empty));
        }
        let expected_len = format.grid_code_len();
        let n_chars = s.chars().count();
        if n_chars != expected_len {
            let expected = CODE_LENGTHS.get(expected_len - 9).copied().unwrap_or("9 to 24");
            return Err(invalid(Invalid::Length { expected, found: n_chars }));
        }
        if let Some(position) = s.chars().position(|c| !c.is_ascii_digit()) {
            return Err(invalid(Invalid::Character { position: position + 1 }));
        }
        // All characters are ASCII digits from here on, so byte slicing is safe.
        if !is_province_code(&s[..2]) {
            return Err(invalid(Invalid::UnknownRegion));
        }
        // xx0000 is a province; xxxx00 stays allowed, as cities without
        // districts (东莞 441900, 中山 442000) hold their towns directly.
        if &s[2..COUNTY_LEN] == "0000" {
            return Err(invalid(Invalid::UnknownRegion));
        }
        if s[format.community_end()..].bytes().all(|b| b == b'0') {
            return Err(invalid(Invalid::Rule("the grid serial must not be all zeros")));
        }
        Ok(GridCode { code: s.to_owned(), format })
    }

    /// Parses with the default 3 + 3 + 3 format: 15 digits.
    pub fn parse_default(s: &str) -> Result<GridCode, InvalidField> {
        GridCode::parse(s, CodeFormat::default())
    }

    pub fn as_str(&self) -> &str {
        &self.code
    }

    pub fn format(&self) -> CodeFormat {
        self.format
    }

    /// The 6-digit GB/T 2260 county-level code.
    pub fn county_code(&self) -> &str {
        &self.code[..COUNTY_LEN]
    }

    /// The prefecture-level code: the first 4 digits and `00`.
    pub fn city_code(&self) -> String {
        format!("{}00", &self.code[..4])
    }

    /// The county code and the township segment.
    pub fn township_code(&self) -> &str {
        &self.code[..self.format.township_end()]
    }

    /// The township code and the community segment.
    pub fn community_code(&self) -> &str {
        &self.code[..self.format.community_end()]
    }

    /// The grid's own segment within its community.
    pub fn serial(&self) -> &str {
        &self.code[self.format.community_end()..]
    }

    /// The code of the unit at `level` that holds this grid.
    pub fn prefix(&self, level: AdminLevel) -> String {
        match level {
            AdminLevel::City => self.city_code(),
            AdminLevel::County => self.county_code().to_owned(),
            AdminLevel::Township => self.township_code().to_owned(),
            AdminLevel::Community => self.community_code().to_owned(),
            AdminLevel::Grid => self.code.clone(),
        }
    }

    /// Whether this grid lies within the unit whose code is `prefix`.
    ///
    /// A 6-digit region code pads with zeros: `440000` (a province) and `440300`
    /// (a city) hold every code starting `44` and `4403`. Longer prefixes match
    /// literally; the empty prefix holds everything.
    pub fn is_within(&self, prefix: &str) -> bool {
        let mut prefix = prefix;
        if prefix.len() == COUNTY_LEN {
            prefix = prefix.strip_suffix("00").unwrap_or(prefix);
            prefix = prefix.strip_suffix("00").unwrap_or(prefix);
        }
        self.code.starts_with(prefix)
    }
}

impl fmt::Display for GridCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

code_enum!(
    /// The kind of grid. Basic grids (基础网格) cover all land; dedicated grids
    /// (专属网格) are drawn inside them around a unit, compound, park or sea area.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    GridKind {
        /// 城市社区网格, a basic grid of an urban community: usually 300 to 500 households.
        Community = "community", "城市社区网格";
        /// 农村网格, a basic grid of a village: about 200 households or 500 people.
        Village = "village", "农村网格";
        /// 单位型专属网格 around a school, hospital, company or agency: at least
        /// 200 households or 700 people.
        Unit = "unit", "单位型专属网格";
        /// 小区型专属网格, a residential compound.
        Compound = "compound", "小区型专属网格";
        /// 园区专属网格, an industrial or business park.
        IndustrialPark = "industrial_park", "园区专属网格";
        /// 海上专属网格, fishing boats and sea areas.
        Sea = "sea", "海上专属网格";
    }
);

impl GridKind {
    /// Whether this is a basic grid (基础网格) rather than a dedicated one (专属网格).
    pub fn is_basic(self) -> bool {
        matches!(self, GridKind::Community | GridKind::Village)
    }
}

/// How a retired grid was succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Succession {
    Split,
    Merged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GridStatus {
    Active,
    /// Retired `on` a date; its area now belongs to `successors`.
    Retired {
        on: NaiveDate,
        reason: Succession,
        successors: Vec<GridCode>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grid {
    pub code: GridCode,
    pub name: String,
    pub kind: GridKind,
    /// The grids this one was split from or merged from; empty for an original grid.
    pub predecessors: Vec<GridCode>,
    pub status: GridStatus,
}

impl Grid {
    /// An active grid without predecessors. The name is trimmed and must be 1 to 50 characters.
    pub fn new(code: GridCode, name: &str, kind: GridKind) -> Result<Grid, InvalidField> {
        let name = name.trim();
        if name.is_empty() {
            return Err(InvalidField::new("grid_name", Invalid::Empty));
        }
        if let Some(position) = name.chars().position(char::is_control) {
            return Err(InvalidField::new("grid_name", Invalid::Character { position: position + 1 }));
        }
        let n_chars = name.chars().count();
        if n_chars > NAME_MAX_CHARS {
            return Err(InvalidField::new("grid_name", Invalid::Length { expected: "1 to 50", found: n_chars }));
        }
        Ok(Grid { code, name: name.to_owned(), kind, predecessors: Vec::new(), status: GridStatus::Active })
    }

    pub fn is_active(&self) -> bool {
        self.status == GridStatus::Active
    }
}

const SUCCESSION: &str = "grid_succession";
const ONLY_ACTIVE: &str = "only an active grid can be split or merged";
const SPLIT_INTO_TWO: &str = "a split makes at least two grids";
const MERGE_OF_TWO: &str = "a merge takes at least two grids";
const NEW_MUST_BE_ACTIVE: &str = "a grid made by a split or merge starts active";
const NO_REUSE: &str = "a new grid never reuses the code of an old one";
const NO_REPEAT: &str = "each grid appears once in a split or merge";
const SAME_TOWNSHIP: &str = "grids split or merged stay within one township";

fn succession_error(rule: &'static str) -> InvalidField {
    InvalidField::new(SUCCESSION, Invalid::Rule(rule))
}

/// Checks the rules shared by [`split`] and [`merge`].
fn check_succession(old: &[&Grid], new: &[&Grid]) -> Result<(), InvalidField> {
    if !old.iter().all(|grid| grid.is_active()) {
        return Err(succession_error(ONLY_ACTIVE));
    }
    if !new.iter().all(|grid| grid.is_active()) {
        return Err(succession_error(NEW_MUST_BE_ACTIVE));
    }
    let old_codes: HashSet<&str> = old.iter().map(|grid| grid.code.as_str()).collect();
    if new.iter().any(|grid| old_codes.contains(grid.code.as_str())) {
        return Err(succession_error(NO_REUSE));
    }
    let new_codes: HashSet<&str> = new.iter().map(|grid| grid.code.as_str()).collect();
    if old_codes.len() != old.len() || new_codes.len() != new.len() {
        return Err(succession_error(NO_REPEAT));
    }
    // Comparing formats too: the same digits read with another format name another township.
    let township = |grid: &&Grid| (grid.code.format(), grid.code.township_code().to_owned());
    let townships: HashSet<_> = old.iter().chain(new).map(township).collect();
    if townships.len() > 1 {
        return Err(succession_error(SAME_TOWNSHIP));
    }
    Ok(())
}

/// Splits `grid` into the grids `into`, effective `on`.
///
/// Returns the old grid retired with links to its successors, and the new grids
/// with the old one as their predecessor.
pub fn split(grid: &Grid, into: Vec<Grid>, on: NaiveDate) -> Result<(Grid, Vec<Grid>), InvalidField> {
    if into.len() < 2 {
        return Err(succession_error(SPLIT_INTO_TWO));
    }
    check_succession(&[grid], &into.iter().collect::<Vec<_>>())?;
    let successors = into.iter().map(|new| new.code.clone()).collect();
    let retired = Grid { status: GridStatus::Retired { on, reason: Succession::Split, successors }, ..grid.clone() };
    let new_grids = into.into_iter().map(|new| Grid { predecessors: vec![grid.code.clone()], ..new }).collect();
    Ok((retired, new_grids))
}

/// Merges `grids` into the grid `into`, effective `on`.
///
/// Returns the old grids retired with a link to the new one, and the new grid
/// with the old ones as its predecessors.
pub fn merge(grids: &[Grid], into: Grid, on: NaiveDate) -> Result<(Vec<Grid>, Grid), InvalidField> {
    if grids.len() < 2 {
        return Err(succession_error(MERGE_OF_TWO));
    }
    check_succession(&grids.iter().collect::<Vec<_>>(), &[&into])?;
    let retired = grids
        .iter()
        .map(|old| Grid {
            status: GridStatus::Retired { on, reason: Succession::Merged, successors: vec![into.code.clone()] },
            ..old.clone()
        })
        .collect();
    let merged = Grid { predecessors: grids.iter().map(|old| old.code.clone()).collect(), ..into };
    Ok((retired, merged))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, format: CodeFormat, expected: Result<&str, Invalid>) {
        let actual = GridCode::parse(input, format);
        match expected {
            Ok(normalized) => assert_eq!(actual.unwrap().as_str(), normalized, "input {input:?}"),
            Err(reason) => {
                let err = actual.unwrap_err();
                assert_eq!(err.field, "grid_code");
                assert_eq!(err.reason, reason, "input {input:?}");
            }
        }
    }

    fn default() -> CodeFormat {
        CodeFormat::default()
    }

    fn code(s: &str) -> GridCode {
        GridCode::parse_default(s).unwrap()
    }

    fn grid(s: &str) -> Grid {
        Grid::new(code(s), &format!("网格{}", &s[12..]), GridKind::Community).unwrap()
    }

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, 1).unwrap()
    }

    #[test]
    fn code_format_checks_widths() {
        assert_eq!(default(), CodeFormat::new(3, 3, 3).unwrap());
        assert_eq!(default().grid_code_len(), 15);
        assert_eq!(CodeFormat::new(1, 1, 1).unwrap().grid_code_len(), 9);
        assert_eq!(CodeFormat::new(6, 6, 6).unwrap().grid_code_len(), 24);
        for (township, community, grid) in [(0, 3, 3), (3, 0, 3), (3, 3, 0), (7, 3, 3), (3, 3, 255)] {
            let err = CodeFormat::new(township, community, grid).unwrap_err();
            assert_eq!(err.field, "code_format");
            assert_eq!(err.reason, Invalid::Rule("each segment is 1 to 6 digits wide"));
        }
    }

    #[test]
    fn code_format_serde_is_an_array_and_validates() {
        assert_eq!(serde_json::to_string(&default()).unwrap(), "[3,3,3]");
        assert_eq!(serde_json::from_str::<CodeFormat>("[3,2,4]").unwrap(), CodeFormat::new(3, 2, 4).unwrap());
        assert!(serde_json::from_str::<CodeFormat>("[0,3,3]").is_err());
    }

    #[test]
    fn accepts_valid_codes() {
        check("440305001002017", default(), Ok("440305001002017"));
        check(" 110105003004001 ", default(), Ok("110105003004001"));
        // 东莞 has no districts: its towns sit directly under the city code.
        check("441900101001001", default(), Ok("441900101001001"));
        check("44030501020304", CodeFormat::new(2, 2, 4).unwrap(), Ok("44030501020304"));
    }

    #[test]
    fn rejects_empty() {
        check("", default(), Err(Invalid::Empty));
        check("  ", default(), Err(Invalid::Empty));
    }

    #[test]
    fn rejects_wrong_length_for_the_format() {
        check("44030500100201", default(), Err(Invalid::Length { expected: "15", found: 14 }));
        check("4403050010020170", default(), Err(Invalid::Length { expected: "15", found: 16 }));
        let format = CodeFormat::new(6, 6, 6).unwrap();
        check("440305001002017", format, Err(Invalid::Length { expected: "24", found: 15 }));
        let format = CodeFormat::new(1, 1, 1).unwrap();
        check("440305001002017", format, Err(Invalid::Length { expected: "9", found: 15 }));
    }

    #[test]
    fn rejects_non_digits() {
        check("44030500100201A", default(), Err(Invalid::Character { position: 15 }));
        check("440305-01002017", default(), Err(Invalid::Character { position: 7 }));
        check("４40305001002017", default(), Err(Invalid::Character { position: 1 }));
    }

    #[test]
    fn rejects_unknown_regions() {
        check("990305001002017", default(), Err(Invalid::UnknownRegion));
        check("000305001002017", default(), Err(Invalid::UnknownRegion));
        check("440000001002017", default(), Err(Invalid::UnknownRegion));
    }

    #[test]
    fn rejects_a_zero_serial() {
        check("440305001002000", default(), Err(Invalid::Rule("the grid serial must not be all zeros")));
    }

    #[test]
    fn rejects_an_unchecked_format() {
        let format = CodeFormat { township: 0, community: 3, grid: 3 };
        let err = GridCode::parse("440305001002", format).unwrap_err();
        assert_eq!(err.field, "code_format");
    }

    #[test]
    fn splits_into_levels() {
        let code = code("440305001002017");
        assert_eq!(code.format(), default());
        assert_eq!(code.county_code(), "440305");
        assert_eq!(code.city_code(), "440300");
        assert_eq!(code.township_code(), "440305001");
        assert_eq!(code.community_code(), "440305001002");
        assert_eq!(code.serial(), "017");
        assert_eq!(code.prefix(AdminLevel::City), "440300");
        assert_eq!(code.prefix(AdminLevel::County), "440305");
        assert_eq!(code.prefix(AdminLevel::Township), "440305001");
        assert_eq!(code.prefix(AdminLevel::Community), "440305001002");
        assert_eq!(code.prefix(AdminLevel::Grid), "440305001002017");
        assert_eq!(code.to_string(), "440305001002017");

        let code = GridCode::parse("4403050102030405", CodeFormat::new(2, 4, 4).unwrap()).unwrap();
        assert_eq!(code.township_code(), "44030501");
        assert_eq!(code.community_code(), "440305010203");
        assert_eq!(code.serial(), "0405");
    }

    #[test]
    fn is_within_pads_region_codes() {
        let code = code("440305001002017");
        for prefix in ["", "44", "440000", "440300", "440305", "440305001", "440305001002", "440305001002017"] {
            assert!(code.is_within(prefix), "{prefix}");
        }
        for prefix in ["45", "450000", "440100", "440306", "440305002", "4403050010020170"] {
            assert!(!code.is_within(prefix), "{prefix}");
        }
        let dongguan = self::code("441900101001001");
        assert!(dongguan.is_within("441900"));
        assert!(!code.is_within("441900"));
    }

    #[test]
    fn grid_code_serde_keeps_the_format() {
        let code = GridCode::parse("44030501020304", CodeFormat::new(2, 2, 4).unwrap()).unwrap();
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(json, r#"{"code":"44030501020304","format":[2,2,4]}"#);
        assert_eq!(serde_json::from_str::<GridCode>(&json).unwrap(), code);
        assert!(serde_json::from_str::<GridCode>(r#"{"code":"44030501020304","format":[3,3,3]}"#).is_err());
    }

    #[test]
    fn admin_level_labels() {
        let labels: Vec<_> =
            [AdminLevel::City, AdminLevel::County, AdminLevel::Township, AdminLevel::Community, AdminLevel::Grid]
                .into_iter()
                .map(AdminLevel::label_zh)
                .collect();
        assert_eq!(labels, ["市", "区县", "乡镇街道", "村社区", "网格"]);
    }

    #[test]
    fn grid_kind_codes_are_stable() {
        let codes: Vec<_> = GridKind::ALL.iter().copied().map(GridKind::code).collect();
        assert_eq!(codes, ["community", "village", "unit", "compound", "industrial_park", "sea"]);
        for &kind in GridKind::ALL {
            assert_eq!(GridKind::from_code(kind.code()), Some(kind));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.code()));
        }
        assert_eq!(GridKind::from_code("Community"), None);
        let basic: Vec<_> = GridKind::ALL.iter().copied().filter(|kind| kind.is_basic()).collect();
        assert_eq!(basic, [GridKind::Community, GridKind::Village]);
        assert_eq!(GridKind::IndustrialPark.label_zh(), "园区专属网格");
    }

    #[test]
    fn grid_new_checks_the_name() {
        let grid = Grid::new(code("440305001002017"), "  桃源第三网格 ", GridKind::Village).unwrap();
        assert_eq!(grid.name, "桃源第三网格");
        assert!(grid.is_active());
        assert!(grid.predecessors.is_empty());

        let err = Grid::new(code("440305001002017"), " ", GridKind::Village).unwrap_err();
        assert_eq!((err.field, err.reason), ("grid_name", Invalid::Empty));
        let err = Grid::new(code("440305001002017"), "桃源\n网格", GridKind::Village).unwrap_err();
        assert_eq!(err.reason, Invalid::Character { position: 3 });
        assert!(Grid::new(code("440305001002017"), &"网".repeat(50), GridKind::Village).is_ok());
        let err = Grid::new(code("440305001002017"), &"网".repeat(51), GridKind::Village).unwrap_err();
        assert_eq!(err.reason, Invalid::Length { expected: "1 to 50", found: 51 });
    }

    #[track_caller]
    fn assert_rule<T: fmt::Debug>(result: Result<T, InvalidField>, rule: &'static str) {
        let err = result.unwrap_err();
        assert_eq!(err.field, "grid_succession");
        assert_eq!(err.reason, Invalid::Rule(rule));
    }

    #[test]
    fn split_retires_the_grid_and_links_both_ways() {
        let old = grid("440305001002001");
        let (retired, new) = split(&old, vec![grid("440305001002011"), grid("440305001003012")], date()).unwrap();
        assert_eq!(retired.code, old.code);
        assert_eq!(
            retired.status,
            GridStatus::Retired {
                on: date(),
                reason: Succession::Split,
                successors: vec![code("440305001002011"), code("440305001003012")],
            }
        );
        assert_eq!(new.len(), 2);
        for grid in &new {
            assert!(grid.is_active());
            assert_eq!(grid.predecessors, vec![old.code.clone()]);
        }
    }

    #[test]
    fn split_rules() {
        let old = grid("440305001002001");
        assert_rule(split(&old, vec![grid("440305001002011")], date()), SPLIT_INTO_TWO);
        let (retired, _) = split(&old, vec![grid("440305001002011"), grid("440305001002012")], date()).unwrap();
        assert_rule(split(&retired, vec![grid("440305001002021"), grid("440305001002022")], date()), ONLY_ACTIVE);
        assert_rule(split(&old, vec![grid("440305001002001"), grid("440305001002012")], date()), NO_REUSE);
        assert_rule(split(&old, vec![grid("440305001002011"), grid("440305001002011")], date()), NO_REPEAT);
        assert_rule(split(&old, vec![grid("440305001002011"), grid("440305002002012")], date()), SAME_TOWNSHIP);
        let mut inactive = grid("440305001002013");
        inactive.status = GridStatus::Retired { on: date(), reason: Succession::Merged, successors: vec![] };
        assert_rule(split(&old, vec![inactive, grid("440305001002014")], date()), NEW_MUST_BE_ACTIVE);
        let other_format = Grid::new(
            GridCode::parse("44030500100201", CodeFormat::new(3, 3, 2).unwrap()).unwrap(),
            "格式不同",
            GridKind::Unit,
        )
        .unwrap();
        assert_rule(split(&old, vec![grid("440305001002011"), other_format], date()), SAME_TOWNSHIP);
    }

    #[test]
    fn merge_retires_the_grids_and_links_both_ways() {
        let old = [grid("440305001002001"), grid("440305001003002")];
        let (retired, merged) = merge(&old, grid("440305001002021"), date()).unwrap();
        assert_eq!(retired.len(), 2);
        for (retired, old) in retired.iter().zip(&old) {
            assert_eq!(retired.code, old.code);
            assert_eq!(
                retired.status,
                GridStatus::Retired { on: date(), reason: Succession::Merged, successors: vec![merged.code.clone()] }
            );
        }
        assert!(merged.is_active());
        assert_eq!(merged.predecessors, [old[0].code.clone(), old[1].code.clone()]);
    }

    #[test]
    fn merge_rules() {
        let a = grid("440305001002001");
        let b = grid("440305001002002");
        assert_rule(merge(std::slice::from_ref(&a), grid("440305001002021"), date()), MERGE_OF_TWO);
        let (retired, _) = split(&a, vec![grid("440305001002011"), grid("440305001002012")], date()).unwrap();
        assert_rule(merge(&[retired, b.clone()], grid("440305001002021"), date()), ONLY_ACTIVE);
        assert_rule(merge(&[a.clone(), b.clone()], grid("440305001002002"), date()), NO_REUSE);
        assert_rule(merge(&[a.clone(), a.clone()], grid("440305001002021"), date()), NO_REPEAT);
        assert_rule(merge(&[a.clone(), grid("440305002002002")], grid("440305001002021"), date()), SAME_TOWNSHIP);
        assert_rule(merge(&[a, b], grid("440305002002021"), date()), SAME_TOWNSHIP);
    }
}
