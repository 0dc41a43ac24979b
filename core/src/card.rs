//! The public grid card (网格公示牌): what the regulations require to be posted for each
//! grid where residents gather — its name, its area, the names and contacts of its grid
//! leader and grid workers, and the supervision phone (seed 001 第九条, seed 004
//! 第十四条) — built from the grid's metadata in the reference document, the one source
//! the server's public page and every device read.
//!
//! ```
//! use wangge_core::card::GridCard;
//! use wangge_core::model::GridCode;
//! use wangge_core::reference::{GridMeta, PostedContact};
//!
//! let meta = GridMeta {
//!     name: "长堤社区第1网格".into(),
//!     kind: "community".into(),
//!     supervision_phone: Some("0750-3123456".into()),
//!     staff: vec![PostedContact {
//!         role: "grid_leader".into(),
//!         name: "李建国".into(),
//!         phone: Some("13800000001".into()),
//!     }],
//!     ..GridMeta::default()
//! };
//! let card = GridCard::from_meta(GridCode::parse_default("440703001001001")?, &meta);
//! assert_eq!(card.kind_label, "城市社区网格");
//! assert_eq!(card.leaders[0].role_label(), "网格长");
//! assert!(card.workers.is_empty() && card.area_m2.is_none());
//! # Ok::<(), wangge_core::model::InvalidField>(())
//! ```
//!
//! Everything on the card is public by regulation. What is not on it — person ids,
//! workers of other roles, anything about residents — never reaches it, because the
//! card is built from the reference document alone, which holds none of that.

use geo::orient::{Direction, Orient};
use geo::{GeodesicArea, MultiPolygon};

use crate::incident::roles::Role;
use crate::model::{GridCode, GridKind, InvalidField, Phone};
use crate::reference::{GridMeta, PostedContact};

/// Whether holders of a role are posted on the card of the grids they are assigned to.
///
/// The grid leader (网格长) and the full-time and part-time grid workers (专职、兼职网格员)
/// everywhere: seed 001 第九条 requires "网格员、网格长姓名及联系方式" and defines
/// 网格员 (第三条) as 专职 and 兼职. Professional workers (专业网格员) too: seed 004
/// 第十四条 requires "网格员姓名、联系方式", and its 第二条 defines 网格员 as 网格长,
/// 专职, 兼职 *and* 专业网格员 — the department's person residents turn to for its
/// matters in that grid. Posting the union meets both regulations; seed 001 requires
/// less but forbids none of it. Centre staff and department handlers are not grid
/// staff (neither seed posts them), and residents are never on a card.
pub fn is_posted(role: Role) -> bool {
    matches!(role, Role::GridLeader | Role::FullTimeWorker | Role::PartTimeWorker | Role::ProfessionalWorker)
}

/// Where a posted role comes on the card: the leader first, then the workers in the
/// order the regulations name them.
fn rank(role: Role) -> u8 {
    match role {
        Role::GridLeader => 0,
        Role::FullTimeWorker => 1,
        Role::PartTimeWorker => 2,
        Role::ProfessionalWorker => 3,
        Role::CenterStaff(_) | Role::DepartmentHandler => 4,
    }
}

/// The staff list a grid's metadata carries: of the candidates, those of a posted role
/// with a name, in card order (role, then name, then phone, so that every server writes
/// the same list for the same workers).
pub fn posted_staff(candidates: impl IntoIterator<Item = PostedContact>) -> Vec<PostedContact> {
    let mut staff: Vec<(u8, PostedContact)> = candidates
        .into_iter()
        .filter(|contact| !contact.name.trim().is_empty())
        .filter_map(|contact| {
            let role = Role::from_code(&contact.role).filter(|role| is_posted(*role))?;
            Some((rank(role), contact))
        })
        .collect();
    staff.sort_by(|(a_rank, a), (b_rank, b)| {
        (a_rank, &a.name, &a.phone, &a.role).cmp(&(b_rank, &b.name, &b.phone, &b.role))
    });
    staff.into_iter().map(|(_, contact)| contact).collect()
}

/// A grid's public card.
#[derive(Debug, Clone, PartialEq)]
pub struct GridCard {
    pub code: GridCode,
    pub name: String,
    /// The kind's code (`community`, `village`, …).
    pub kind: String,
    /// The kind's Chinese name (`城市社区网格`); the code itself for a kind this version
    /// does not know.
    pub kind_label: String,
    /// The boundary as a GeoJSON geometry (WGS-84), as imported.
    pub boundary: Option<String>,
    /// The geodesic area within the boundary (WGS-84 ellipsoid), in square metres; `None`
    /// without a boundary or when it is not a Polygon or MultiPolygon this version reads.
    pub area_m2: Option<f64>,
    /// The grid leader(s) (网格长).
    pub leaders: Vec<PostedContact>,
    /// The grid workers: full-time, part-time, then professional.
    pub workers: Vec<PostedContact>,
    /// 监督电话.
    pub supervision_phone: Option<String>,
}

impl GridCard {
    /// The card of a grid from its metadata. Staff of a role that is not posted (a
    /// newer server's, or a document written by hand) are left out.
    pub fn from_meta(code: GridCode, meta: &GridMeta) -> GridCard {
        let (leaders, workers) = posted_staff(meta.staff.iter().cloned())
            .into_iter()
            .partition(|contact| contact.role == Role::GridLeader.code());
        let kind_label =
            GridKind::from_code(&meta.kind).map_or_else(|| meta.kind.clone(), |kind| kind.label_zh().to_owned());
        GridCard {
            code,
            name: meta.name.clone(),
            kind: meta.kind.clone(),
            kind_label,
            boundary: meta.boundary.clone(),
            area_m2: meta.boundary.as_deref().and_then(boundary_polygons).and_then(|polygons| geodesic_area(&polygons)),
            leaders,
            workers,
            supervision_phone: meta.supervision_phone.clone(),
        }
    }

    /// The boundary's rings as (longitude, latitude) points, each polygon's exterior
    /// first, then its holes: what a map or a small drawing of the area needs. Empty
    /// without a boundary that reads.
    pub fn boundary_rings(&self) -> Vec<Vec<(f64, f64)>> {
        let Some(polygons) = self.boundary.as_deref().and_then(boundary_polygons) else { return Vec::new() };
        polygons
            .iter()
            .flat_map(|polygon| std::iter::once(polygon.exterior()).chain(polygon.interiors()))
            .map(|ring| ring.coords().map(|coord| (coord.x, coord.y)).collect())
            .collect()
    }

    /// The area as people read it: square metres below one hectare, else square
    /// kilometres with two decimals (`0.42 平方千米`).
    pub fn area_label(&self) -> Option<String> {
        let area = self.area_m2?;
        Some(if area < 10_000.0 { format!("{area:.0} 平方米") } else { format!("{:.2} 平方千米", area / 1e6) })
    }
}

impl PostedContact {
    /// The role's Chinese name (`网格长`, `专职网格员`, …); the code for an unknown role.
    pub fn role_label(&self) -> &str {
        match Role::from_code(&self.role) {
            Some(role) => role.label_zh(),
            None => &self.role,
        }
    }
}

/// A supervision phone (监督电话) as posted: a mainland phone number (normalized like
/// [`Phone`]) or a five-digit public service number starting with 12 — the 12345
/// government hotline and the 12388 discipline-inspection line are what many notices
/// post.
pub fn parse_supervision_phone(text: &str) -> Result<String, InvalidField> {
    let trimmed = text.trim();
    if trimmed.len() == 5 && trimmed.starts_with("12") && trimmed.bytes().all(|byte| byte.is_ascii_digit()) {
        return Ok(trimmed.to_owned());
    }
    Phone::parse(trimmed)
        .map(|phone| phone.as_str().to_owned())
        .map_err(|error| InvalidField::new("supervision_phone", error.reason))
}

/// A `tel:` URI for a posted phone: its digits, and an extension after a pause
/// (`010-62345678-801` → `tel:01062345678,801`).
pub fn dial_uri(phone: &str) -> String {
    let digits = |part: &str| part.chars().filter(char::is_ascii_digit).collect::<String>();
    match phone.split('-').collect::<Vec<_>>().as_slice() {
        [area, local, extension] => format!("tel:{}{},{}", digits(area), digits(local), digits(extension)),
        _ => format!("tel:{}", digits(phone)),
    }
}

/// The polygons of the boundary's GeoJSON geometry, read as boundaries are everywhere.
fn boundary_polygons(geojson: &str) -> Option<MultiPolygon<f64>> {
    crate::place::boundaries::parse_geometry_json(geojson).ok()
}

/// The area on the WGS-84 ellipsoid. Rings are oriented first (exterior
/// counter-clockwise, holes clockwise): GeoJSON written before RFC 7946 often winds
/// the other way, which the signed geodesic area would read as the rest of the earth.
fn geodesic_area(polygons: &MultiPolygon<f64>) -> Option<f64> {
    let area: f64 =
        polygons.iter().map(|polygon| polygon.orient(Direction::Default).geodesic_area_signed().abs()).sum();
    area.is_finite().then_some(area)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn contact(role: &str, name: &str, phone: Option<&str>) -> PostedContact {
        PostedContact { role: role.into(), name: name.into(), phone: phone.map(str::to_owned) }
    }

    fn code() -> GridCode {
        GridCode::parse_default("440703001001001").unwrap()
    }

    /// A square of 0.01° × 0.01° at Jiangmen (22.58° N): about 1.1 km by 1.03 km.
    const SQUARE: &str = r#"{"type":"Polygon","coordinates":[[[113.08,22.58],[113.09,22.58],[113.09,22.59],[113.08,22.59],[113.08,22.58]]]}"#;

    #[test]
    fn the_card_posts_leaders_and_workers_of_posted_roles_in_card_order() {
        let meta = GridMeta {
            name: "长堤社区第1网格".into(),
            kind: "community".into(),
            supervision_phone: Some("12345".into()),
            staff: vec![
                contact("part_time_worker", "王兼职", Some("13800000003")),
                contact("professional_worker", "赵专业", None),
                contact("full_time_worker", "陈专职", Some("13800000002")),
                contact("grid_leader", "李网格长", Some("0750-3123456")),
                contact("department_handler", "周承办", Some("13800000005")),
                contact("center_staff_county", "吴中心", Some("13800000006")),
                contact("full_time_worker", "  ", Some("13800000007")),
                contact("no_such_role", "郑未知", Some("13800000008")),
            ],
            ..GridMeta::default()
        };
        let card = GridCard::from_meta(code(), &meta);
        assert_eq!(card.name, "长堤社区第1网格");
        assert_eq!((card.kind.as_str(), card.kind_label.as_str()), ("community", "城市社区网格"));
        assert_eq!(card.leaders, vec![contact("grid_leader", "李网格长", Some("0750-3123456"))]);
        assert_eq!(
            card.workers,
            vec![
                contact("full_time_worker", "陈专职", Some("13800000002")),
                contact("part_time_worker", "王兼职", Some("13800000003")),
                contact("professional_worker", "赵专业", None),
            ]
        );
        let labels: Vec<&str> = card.workers.iter().map(PostedContact::role_label).collect();
        assert_eq!(labels, ["专职网格员", "兼职网格员", "专业网格员"]);
        assert_eq!(card.supervision_phone.as_deref(), Some("12345"));
        assert_eq!((card.boundary, card.area_m2), (None, None));
    }

    #[test]
    fn an_unknown_kind_is_shown_by_its_code() {
        let meta = GridMeta { name: "x".into(), kind: "lunar_base".into(), ..GridMeta::default() };
        assert_eq!(GridCard::from_meta(code(), &meta).kind_label, "lunar_base");
    }

    #[test]
    fn the_area_is_geodesic_and_does_not_depend_on_winding() {
        let meta = GridMeta {
            name: "x".into(),
            kind: "community".into(),
            boundary: Some(SQUARE.into()),
            ..GridMeta::default()
        };
        let card = GridCard::from_meta(code(), &meta);
        let area = card.area_m2.unwrap();
        // 0.01° of longitude at 22.585° N is 1027.8 m, 0.01° of latitude 1107.3 m.
        assert!((area - 1_138_100.0).abs() < 2_000.0, "{area}");
        assert_eq!(card.area_label().unwrap(), "1.14 平方千米");

        let clockwise = r#"{"type":"MultiPolygon","coordinates":[[[[113.08,22.58],[113.08,22.59],[113.09,22.59],[113.09,22.58],[113.08,22.58]]]]}"#;
        let meta = GridMeta { boundary: Some(clockwise.into()), ..meta };
        let other = GridCard::from_meta(code(), &meta).area_m2.unwrap();
        assert!((other - area).abs() < 1.0, "{other} vs {area}");
        assert_eq!(GridCard::from_meta(code(), &meta).boundary_rings()[0].len(), 5);
    }

    #[test]
    fn a_hole_is_taken_out_of_the_area_and_kept_in_the_rings() {
        let with_hole = r#"{"type":"Polygon","coordinates":[[[113.08,22.58],[113.09,22.58],[113.09,22.59],[113.08,22.59],[113.08,22.58]],[[113.082,22.582],[113.082,22.588],[113.088,22.588],[113.088,22.582],[113.082,22.582]]]}"#;
        let meta = GridMeta { name: "x".into(), kind: "community".into(), ..GridMeta::default() };
        let square = GridCard::from_meta(code(), &GridMeta { boundary: Some(SQUARE.into()), ..meta.clone() });
        let holed = GridCard::from_meta(code(), &GridMeta { boundary: Some(with_hole.into()), ..meta });
        let hole = square.area_m2.unwrap() - holed.area_m2.unwrap();
        assert!((hole - 0.36 * 1_138_100.0).abs() < 2_000.0, "{hole}");
        assert_eq!(holed.boundary_rings().len(), 2);
    }

    #[test]
    fn a_boundary_that_does_not_read_has_no_area() {
        for boundary in [
            "not json",
            r#"{"type":"Point","coordinates":[113.08,22.58]}"#,
            r#"{"type":"Polygon","coordinates":[[[113.08,22.58],[113.09,22.58],[113.08,22.58]]]}"#,
            r#"{"type":"Polygon","coordinates":[[[213.08,22.58],[113.09,22.58],[113.09,22.59],[213.08,22.58]]]}"#,
            r#"{"type":"MultiPolygon","coordinates":[]}"#,
        ] {
            let meta = GridMeta { boundary: Some(boundary.into()), ..GridMeta::default() };
            let card = GridCard::from_meta(code(), &meta);
            assert_eq!(card.area_m2, None, "{boundary}");
            assert!(card.boundary_rings().is_empty(), "{boundary}");
            assert_eq!(card.boundary.as_deref(), Some(boundary), "kept as it came");
        }
    }

    #[test]
    fn a_small_area_is_labelled_in_square_metres() {
        let card = GridCard { area_m2: Some(8_765.4), ..GridCard::from_meta(code(), &GridMeta::default()) };
        assert_eq!(card.area_label().unwrap(), "8765 平方米");
    }

    #[track_caller]
    fn check_supervision(input: &str, expected: Option<&str>) {
        assert_eq!(parse_supervision_phone(input).ok().as_deref(), expected, "{input}");
    }

    #[test]
    fn supervision_phones_are_numbers_or_twelve_service_lines() {
        check_supervision("12345", Some("12345"));
        check_supervision(" 12388 ", Some("12388"));
        check_supervision("0750-3123456", Some("0750-3123456"));
        check_supervision("(0750) 312 3456", Some("0750-3123456"));
        check_supervision("13812345678", Some("13812345678"));
        check_supervision("110", None);
        check_supervision("99999", None);
        check_supervision("", None);
        assert_eq!(parse_supervision_phone("abc").unwrap_err().field, "supervision_phone");
    }

    #[test]
    fn dial_uris_carry_digits_and_an_extension_after_a_pause() {
        assert_eq!(dial_uri("13812345678"), "tel:13812345678");
        assert_eq!(dial_uri("0750-3123456"), "tel:07503123456");
        assert_eq!(dial_uri("010-62345678-801"), "tel:01062345678,801");
        assert_eq!(dial_uri("12345"), "tel:12345");
    }

    #[test]
    fn debug_output_leaves_names_and_phones_out() {
        let shown = format!("{:?}", contact("grid_leader", "李网格长", Some("13800000001")));
        assert!(!shown.contains("李网格长") && !shown.contains("13800000001"), "{shown}");
    }
}
