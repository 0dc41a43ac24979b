//! 数据研判: where incidents gather (hot spots) and which matters come back (repeats), for
//! the centers' periodic analysis and risk warnings (seed 004 第二十六条: 问题梳理、关联分析、
//! 风险预警).
//!
//! Pure functions over what is known of each incident ([`Reported`]): no store, no clock.
//! The sync server's center API feeds them from its incident index; a device could feed
//! them from its projection.
//!
//! ```
//! use wangge_core::incident::analysis::{Reported, RepeatLink, RepeatRule, repeats};
//! use wangge_core::incident::catalog::MatterClass;
//! use wangge_core::model::{HouseholdId, RecordRef};
//!
//! let household = RecordRef::Household(HouseholdId::new());
//! let day = 24 * 3600 * 1000;
//! let report = |id: &str, reported_ms: i64| Reported {
//!     id: id.into(),
//!     grid: "440703001001001".into(),
//!     class: Some(MatterClass::Dispute),
//!     reported_ms,
//!     location: None,
//!     subjects: vec![household],
//! };
//! // The same dispute about the same household, 3 days apart, then again 40 days later.
//! let found = repeats(&[report("a", 0), report("b", 3 * day), report("c", 43 * day)], &RepeatRule::default());
//! assert_eq!(found.len(), 1);
//! assert_eq!(found[0].incidents, ["a", "b"]);
//! assert_eq!(found[0].link, RepeatLink::SameRecord(household));
//! ```

use std::collections::BTreeMap;

use super::catalog::MatterClass;
use crate::crdt::decode_location;
use crate::model::{HouseholdId, OrganizationId, RecordRef, ResidentId, Wgs84};
use crate::place::boundaries::distance_m;

/// What the analysis reads of one incident.
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    pub id: String,
    pub grid: String,
    /// The class of its catalog item; `None` for an item the catalog does not have.
    pub class: Option<MatterClass>,
    /// When it was reported (the report's device time, ms since 1970).
    pub reported_ms: i64,
    pub location: Option<Wgs84>,
    /// The residents, households and organizations the report is about.
    pub subjects: Vec<RecordRef>,
}

impl Reported {
    /// From an incident's report fields as its document stores them
    /// ([`super::doc::read_report`]): `grid`, `location` (`lat,lng`), and the comma-separated
    /// ids of `residents`, `households` and `organizations`. A field that does not read is
    /// left out.
    pub fn from_report(
        id: &str,
        report: &[(String, String)],
        class: Option<MatterClass>,
        reported_ms: i64,
    ) -> Reported {
        let field = |key: &str| report.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str());
        let ids = |key: &str| field(key).unwrap_or("").split(',').map(str::trim).filter(|id| !id.is_empty());
        let mut subjects: Vec<RecordRef> = Vec::new();
        subjects.extend(ids("residents").filter_map(|id| ResidentId::parse(id).ok()).map(RecordRef::Resident));
        subjects.extend(ids("households").filter_map(|id| HouseholdId::parse(id).ok()).map(RecordRef::Household));
        subjects
            .extend(ids("organizations").filter_map(|id| OrganizationId::parse(id).ok()).map(RecordRef::Organization));
        Reported {
            id: id.to_owned(),
            grid: field("grid").unwrap_or("").to_owned(),
            class,
            reported_ms,
            location: field("location").and_then(decode_location),
            subjects,
        }
    }
}

/// How incidents are gathered into spots.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spot {
    /// By the grid they were reported in.
    Grid,
    /// By square cells of about `size_m` metres a side, for incidents with a location
    /// (cells follow latitude bands, so a cell's width in degrees grows towards the poles).
    Cell { size_m: f64 },
}

/// Where a spot is.
#[derive(Debug, Clone, PartialEq)]
pub enum SpotKey {
    Grid(String),
    /// A cell by its corners (south-west, north-east) and centre.
    Cell {
        south_west: Wgs84,
        north_east: Wgs84,
        center: Wgs84,
    },
}

/// One spot and what gathered there.
#[derive(Debug, Clone, PartialEq)]
pub struct Hotspot {
    pub key: SpotKey,
    pub n_incidents: u32,
    /// Counts by class code (`unknown` for items the catalog does not have).
    pub by_class: BTreeMap<String, u32>,
    /// The incidents, in report order.
    pub incidents: Vec<String>,
}

/// Metres along a meridian per degree, on the sphere [`distance_m`] measures on.
const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// The spots of these incidents, most incidents first (ties: by key). With
/// [`Spot::Cell`], incidents without a location are left out.
pub fn hotspots(incidents: &[Reported], spot: Spot) -> Vec<Hotspot> {
    let mut ordered: Vec<&Reported> = incidents.iter().collect();
    ordered.sort_by(|a, b| (a.reported_ms, &a.id).cmp(&(b.reported_ms, &b.id)));
    let mut spots: BTreeMap<SpotSort, Hotspot> = BTreeMap::new();
    for incident in ordered {
        let (sort, key) = match spot {
            Spot::Grid => (SpotSort::Grid(incident.grid.clone()), Some(SpotKey::Grid(incident.grid.clone()))),
            Spot::Cell { size_m } => {
                let Some(location) = incident.location else { continue };
                let (row, column) = cell_of(location, size_m);
                (SpotSort::Cell(row, column), cell_key(row, column, size_m))
            }
        };
        let Some(key) = key else { continue };
        let found = spots.entry(sort).or_insert_with(|| Hotspot {
            key,
            n_incidents: 0,
            by_class: BTreeMap::new(),
            incidents: Vec::new(),
        });
        found.n_incidents += 1;
        let class = incident.class.map_or("unknown", MatterClass::code);
        *found.by_class.entry(class.to_owned()).or_default() += 1;
        found.incidents.push(incident.id.clone());
    }
    let mut ranked: Vec<(SpotSort, Hotspot)> = spots.into_iter().collect();
    ranked.sort_by(|(a_key, a), (b_key, b)| b.n_incidents.cmp(&a.n_incidents).then_with(|| a_key.cmp(b_key)));
    ranked.into_iter().map(|(_, spot)| spot).collect()
}

/// A spot's key as it sorts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SpotSort {
    Grid(String),
    Cell(i64, i64),
}

/// A cell's side in degrees of latitude, never below a metre.
fn lat_step(size_m: f64) -> f64 {
    size_m.max(1.0) / METRES_PER_DEGREE
}

/// A cell's width in degrees of longitude in latitude band `row`.
fn lng_step(row: i64, size_m: f64) -> f64 {
    let middle = ((row as f64 + 0.5) * lat_step(size_m)).to_radians();
    size_m.max(1.0) / (METRES_PER_DEGREE * middle.cos().max(0.01))
}

fn cell_of(location: Wgs84, size_m: f64) -> (i64, i64) {
    let row = (location.lat() / lat_step(size_m)).floor() as i64;
    let column = (location.lng() / lng_step(row, size_m)).floor() as i64;
    (row, column)
}

/// A cell's corners and centre (`None` only for a cell off the globe, which no location
/// falls in).
fn cell_key(row: i64, column: i64, size_m: f64) -> Option<SpotKey> {
    let (dlat, dlng) = (lat_step(size_m), lng_step(row, size_m));
    let point = |lat: f64, lng: f64| Wgs84::new(lat.clamp(-90.0, 90.0), lng.clamp(-180.0, 180.0)).ok();
    let (south, west) = (row as f64 * dlat, column as f64 * dlng);
    Some(SpotKey::Cell {
        south_west: point(south, west)?,
        north_east: point(south + dlat, west + dlng)?,
        center: point(south + dlat / 2.0, west + dlng / 2.0)?,
    })
}

/// When two reports of the same class count as the matter coming back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepeatRule {
    /// At most this many days (24 hours each) between one report and the next.
    pub within_days: u32,
    /// The same place: reported within this many metres of each other.
    pub radius_m: f64,
}

impl Default for RepeatRule {
    /// 30 days, 50 metres: a month's rhythm of reports, a building's or a shopfront's extent.
    fn default() -> Self {
        RepeatRule { within_days: 30, radius_m: 50.0 }
    }
}

/// What ties a repeat's incidents together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatLink {
    /// About the same household, resident or organization.
    SameRecord(RecordRef),
    /// At the same place (within the rule's radius, one report to the next).
    SamePlace,
}

impl RepeatLink {
    /// `same_household`, `same_resident`, `same_organization` (or `same_record` for another
    /// kind of record), `same_place`.
    pub fn code(&self) -> &'static str {
        match self {
            RepeatLink::SameRecord(RecordRef::Household(_)) => "same_household",
            RepeatLink::SameRecord(RecordRef::Resident(_)) => "same_resident",
            RepeatLink::SameRecord(RecordRef::Organization(_)) => "same_organization",
            RepeatLink::SameRecord(_) => "same_record",
            RepeatLink::SamePlace => "same_place",
        }
    }
}

/// A matter that came back: incidents of one class, each reported within the rule's days
/// of another one of them, tied by the same record or the same place.
#[derive(Debug, Clone, PartialEq)]
pub struct Repeat {
    pub class: MatterClass,
    pub link: RepeatLink,
    /// In report order.
    pub incidents: Vec<String>,
    /// The grids they were reported in, each once, in order of first report.
    pub grids: Vec<String>,
    pub first_reported_ms: i64,
    pub last_reported_ms: i64,
}

/// The repeats among these incidents, largest first (ties: the latest first). Incidents of
/// an item the catalog does not have are left out. A run about one record is split where
/// more than `within_days` pass between two reports; a place's reports chain (each within
/// `radius_m` and `within_days` of another), so a run may span longer than `within_days`.
/// The same incidents may form a repeat both by record and by place.
pub fn repeats(incidents: &[Reported], rule: &RepeatRule) -> Vec<Repeat> {
    let window_ms = i64::from(rule.within_days) * 24 * 3600 * 1000;
    let mut ordered: Vec<&Reported> = incidents.iter().filter(|incident| incident.class.is_some()).collect();
    ordered.sort_by(|a, b| (a.reported_ms, &a.id).cmp(&(b.reported_ms, &b.id)));
    let mut found = Vec::new();

    // The same record: runs of reports with gaps of at most the window.
    let mut by_record: BTreeMap<(MatterClass, RecordRef), Vec<&Reported>> = BTreeMap::new();
    for incident in &ordered {
        let mut subjects = incident.subjects.clone();
        subjects.sort();
        subjects.dedup();
        for subject in subjects {
            if let Some(class) = incident.class {
                by_record.entry((class, subject)).or_default().push(incident);
            }
        }
    }
    for ((class, record), reports) in by_record {
        let mut run: Vec<&Reported> = Vec::new();
        for incident in reports {
            if run.last().is_some_and(|last| incident.reported_ms - last.reported_ms > window_ms) {
                found.extend(repeat_of(class, RepeatLink::SameRecord(record), &run));
                run.clear();
            }
            run.push(incident);
        }
        found.extend(repeat_of(class, RepeatLink::SameRecord(record), &run));
    }

    // The same place: reports linked within the window and the radius, chained.
    let mut by_class: BTreeMap<MatterClass, Vec<(&Reported, Wgs84)>> = BTreeMap::new();
    for incident in &ordered {
        if let (Some(class), Some(location)) = (incident.class, incident.location) {
            by_class.entry(class).or_default().push((incident, location));
        }
    }
    for (class, located) in by_class {
        let mut sets = DisjointSets::new(located.len());
        for (i, (first, at)) in located.iter().enumerate() {
            for (j, (later, other)) in located.iter().enumerate().skip(i + 1) {
                if later.reported_ms - first.reported_ms > window_ms {
                    break;
                }
                if distance_m(*at, *other) <= rule.radius_m {
                    sets.join(i, j);
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<&Reported>> = BTreeMap::new();
        for (i, (incident, _)) in located.iter().enumerate() {
            groups.entry(sets.root(i)).or_default().push(incident);
        }
        for group in groups.into_values() {
            found.extend(repeat_of(class, RepeatLink::SamePlace, &group));
        }
    }
    found.sort_by(|a, b| {
        b.incidents.len().cmp(&a.incidents.len()).then_with(|| b.last_reported_ms.cmp(&a.last_reported_ms))
    });
    found
}

/// A repeat of these reports (in report order), if there are two or more.
fn repeat_of(class: MatterClass, link: RepeatLink, reports: &[&Reported]) -> Option<Repeat> {
    let (first, last) = (reports.first()?, reports.last()?);
    if reports.len() < 2 {
        return None;
    }
    let mut grids: Vec<String> = Vec::new();
    for incident in reports {
        if !grids.contains(&incident.grid) {
            grids.push(incident.grid.clone());
        }
    }
    Some(Repeat {
        class,
        link,
        incidents: reports.iter().map(|incident| incident.id.clone()).collect(),
        grids,
        first_reported_ms: first.reported_ms,
        last_reported_ms: last.reported_ms,
    })
}

/// Union-find over `0..n`, with path halving.
#[derive(Debug)]
struct DisjointSets {
    parent: Vec<usize>,
}

impl DisjointSets {
    fn new(n: usize) -> Self {
        DisjointSets { parent: (0..n).collect() }
    }

    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        // The smaller index stays the root: groups keep the order of their first report.
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        self.parent[high] = low;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const DAY: i64 = 24 * 3600 * 1000;

    fn at(lat: f64, lng: f64) -> Wgs84 {
        Wgs84::new(lat, lng).unwrap()
    }

    fn reported(id: &str, grid: &str, class: MatterClass, day: i64, location: Option<Wgs84>) -> Reported {
        Reported {
            id: id.into(),
            grid: grid.into(),
            class: Some(class),
            reported_ms: day * DAY,
            location,
            subjects: Vec::new(),
        }
    }

    #[test]
    fn grids_rank_by_their_number_of_incidents_then_by_code() {
        let incidents = [
            reported("a", "g2", MatterClass::Dispute, 0, None),
            reported("b", "g1", MatterClass::Dispute, 1, None),
            reported("c", "g2", MatterClass::SafetyHazard, 2, None),
            reported("d", "g3", MatterClass::SafetyHazard, 3, None),
        ];
        let spots = hotspots(&incidents, Spot::Grid);
        let keys: Vec<(SpotKey, u32)> = spots.iter().map(|spot| (spot.key.clone(), spot.n_incidents)).collect();
        assert_eq!(
            keys,
            [(SpotKey::Grid("g2".into()), 2), (SpotKey::Grid("g1".into()), 1), (SpotKey::Grid("g3".into()), 1)]
        );
        assert_eq!(spots[0].incidents, ["a", "c"]);
        assert_eq!(spots[0].by_class.get("dispute"), Some(&1));
        assert_eq!(spots[0].by_class.get("safety_hazard"), Some(&1));
    }

    #[test]
    fn cells_gather_nearby_incidents_and_leave_out_those_without_a_location() {
        let incidents = [
            // Two within a few metres, one 2 km away, one without a location.
            reported("a", "g1", MatterClass::Dispute, 0, Some(at(22.58001, 113.08001))),
            reported("b", "g1", MatterClass::Dispute, 1, Some(at(22.58003, 113.08002))),
            reported("c", "g1", MatterClass::Dispute, 2, Some(at(22.598, 113.08))),
            reported("d", "g1", MatterClass::Dispute, 3, None),
        ];
        let spots = hotspots(&incidents, Spot::Cell { size_m: 200.0 });
        assert_eq!(spots.iter().map(|spot| spot.n_incidents).collect::<Vec<_>>(), [2, 1]);
        let SpotKey::Cell { south_west, north_east, center } = &spots[0].key else { panic!("a cell") };
        // About 200 m a side, and the incidents inside.
        let side = distance_m(*south_west, at(north_east.lat(), south_west.lng()));
        assert!((side - 200.0).abs() < 1.0, "{side}");
        let width = distance_m(*south_west, at(south_west.lat(), north_east.lng()));
        assert!((width - 200.0).abs() < 1.0, "{width}");
        assert!(south_west.lat() <= 22.58001 && 22.58003 < north_east.lat());
        assert!(distance_m(*center, at(22.58002, 113.08002)) < 142.0);
    }

    #[test]
    fn a_record_reported_again_within_the_window_is_a_repeat_and_a_longer_gap_starts_anew() {
        let household = RecordRef::Household(HouseholdId::new());
        let resident = RecordRef::Resident(ResidentId::new());
        let with = |mut incident: Reported, subjects: &[RecordRef]| {
            incident.subjects = subjects.to_vec();
            incident
        };
        let incidents = [
            with(reported("a", "g1", MatterClass::Dispute, 0, None), &[household, resident]),
            with(reported("b", "g1", MatterClass::Dispute, 10, None), &[household]),
            // Another class about the same household: not the same matter.
            with(reported("c", "g1", MatterClass::SafetyHazard, 11, None), &[household]),
            // 31 days after b: a new run, alone.
            with(reported("d", "g1", MatterClass::Dispute, 41, None), &[household, resident]),
            with(reported("e", "g2", MatterClass::Dispute, 60, None), &[resident]),
        ];
        let found = repeats(&incidents, &RepeatRule::default());
        let summary: Vec<(RepeatLink, Vec<String>)> =
            found.iter().map(|repeat| (repeat.link, repeat.incidents.clone())).collect();
        assert_eq!(
            summary,
            [
                (RepeatLink::SameRecord(resident), vec!["d".to_owned(), "e".to_owned()]),
                (RepeatLink::SameRecord(household), vec!["a".to_owned(), "b".to_owned()]),
            ]
        );
        assert_eq!(found[0].grids, ["g1", "g2"]);
        assert_eq!((found[1].first_reported_ms, found[1].last_reported_ms), (0, 10 * DAY));
        assert_eq!(found[0].link.code(), "same_resident");
    }

    #[test]
    fn reports_at_one_place_chain_within_the_radius_and_the_window() {
        let here = at(22.58, 113.08);
        // About 30 m north, then 30 m further: each within 50 m of the one before.
        let north = |metres: f64| at(22.58 + metres / METRES_PER_DEGREE, 113.08);
        let incidents = [
            reported("a", "g1", MatterClass::PublicFacility, 0, Some(here)),
            reported("b", "g1", MatterClass::PublicFacility, 20, Some(north(30.0))),
            reported("c", "g1", MatterClass::PublicFacility, 35, Some(north(60.0))),
            // Far away, and at the same place but too late.
            reported("d", "g1", MatterClass::PublicFacility, 36, Some(north(500.0))),
            reported("e", "g1", MatterClass::PublicFacility, 90, Some(here)),
            // The same place and time, another class.
            reported("f", "g1", MatterClass::Dispute, 1, Some(here)),
        ];
        let found = repeats(&incidents, &RepeatRule::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].link, RepeatLink::SamePlace);
        assert_eq!(found[0].class, MatterClass::PublicFacility);
        assert_eq!(found[0].incidents, ["a", "b", "c"]);
        let tight = repeats(&incidents, &RepeatRule { within_days: 30, radius_m: 20.0 });
        assert!(tight.is_empty(), "{tight:?}");
    }

    #[test]
    fn reports_read_their_location_and_subjects_from_the_stored_fields() {
        let household = HouseholdId::new();
        let report = vec![
            ("grid".to_owned(), "440703001001001".to_owned()),
            ("location".to_owned(), "22.5800000,113.0800000".to_owned()),
            ("households".to_owned(), format!("{household},not-an-id")),
            ("residents".to_owned(), String::new()),
        ];
        let read = Reported::from_report("x", &report, Some(MatterClass::Dispute), 5);
        assert_eq!(read.grid, "440703001001001");
        assert_eq!(read.location, Some(at(22.58, 113.08)));
        assert_eq!(read.subjects, [RecordRef::Household(household)]);
        assert_eq!(Reported::from_report("y", &[], None, 0).location, None);
    }
}
