//! Place queries over the device's data: what is near a point (buildings, components
//! and open incidents of the grids on this device, nearest first), and which grid a
//! point is in (from the boundaries the server's reference document brought).
//!
//! Locations are stored as `'lat,lng'` text, so the first filter is a bounding box on
//! the numbers parsed in SQL, over every located row (no index can serve it); exact
//! great-circle distances follow in Rust. A grid's few hundred buildings and components
//! and a city's open incidents scan in about a millisecond.

use std::sync::{Arc, Mutex};

use automerge::ChangeHash;
use rusqlite::params;

use super::{Store, Writer, loaded};
use crate::crdt::{decode_location, encode_building_status};
use crate::incident::Phase;
use crate::model::*;
use crate::place::boundaries::{self, GridIndex, Located, NearbyItem, NearbyRecord};
use crate::{Error, Result};

/// The widest radius [`Store::nearby`] answers for, in metres.
pub const MAX_NEARBY_RADIUS_M: f64 = 50_000.0;

/// Phases of an incident still being worked on, as stored.
const OPEN_PHASES: [Phase; 4] = [Phase::Reported, Phase::Accepted, Phase::Dispatched, Phase::Completed];

/// Grid indexes built from reference documents, keyed by the document's heads (which name
/// its content, so an entry never goes stale) and the code format. Shared by the stores
/// of a process; a few entries, for tests that open several stores at once.
static INDEXES: Mutex<Vec<CachedIndex>> = Mutex::new(Vec::new());
const MAX_CACHED_INDEXES: usize = 4;

struct CachedIndex {
    heads: Vec<ChangeHash>,
    format: CodeFormat,
    index: Arc<GridIndex>,
}

fn nearby_sql() -> String {
    let open: Vec<String> = OPEN_PHASES.iter().map(|phase| format!("'{}'", phase.code())).collect();
    format!(
        "WITH located (kind, id, grid_code, label, location) AS (
             SELECT 'building', id, grid_code, name, location FROM buildings
              WHERE location IS NOT NULL AND status = ?5
             UNION ALL
             SELECT 'component', id, grid_code, name, location FROM components WHERE location IS NOT NULL
             UNION ALL
             SELECT 'incident', id, grid_code, title, location FROM incidents
              WHERE location IS NOT NULL AND phase IN ({})
         )
         SELECT kind, id, grid_code, label, location FROM located
          WHERE CAST(substr(location, 1, instr(location, ',') - 1) AS REAL) BETWEEN ?1 AND ?2
            AND CAST(substr(location, instr(location, ',') + 1) AS REAL) BETWEEN ?3 AND ?4",
        open.join(", ")
    )
}

impl Store {
    /// The standing buildings, the components and the open incidents (reported, accepted,
    /// dispatched, awaiting verification) of the grids on this device that lie within
    /// `radius_m` metres of `point` (0 to [`MAX_NEARBY_RADIUS_M`]), nearest first; records
    /// without a location are not found. Equal distances are ordered by kind and id.
    pub fn nearby(&self, point: Wgs84, radius_m: f64) -> Result<Vec<NearbyItem>> {
        if !(0.0..=MAX_NEARBY_RADIUS_M).contains(&radius_m) {
            return Err(InvalidField::new("radius_m", Invalid::Rule("a radius is 0 to 50,000 metres")).into());
        }
        let bounds = boundaries::bounding_box(point, radius_m);
        let rows: Vec<[String; 5]> = {
            let conn = self.reader();
            let mut statement = conn.prepare_cached(&nearby_sql())?;
            let rows = statement.query_map(
                params![
                    bounds.min_lat,
                    bounds.max_lat,
                    bounds.min_lng,
                    bounds.max_lng,
                    encode_building_status(&BuildingStatus::Active)
                ],
                |row| {
                    let label: Option<String> = row.get(3)?;
                    Ok([row.get(0)?, row.get(1)?, row.get(2)?, label.unwrap_or_default(), row.get(4)?])
                },
            )?;
            rows.collect::<Result<_, _>>()?
        };
        let mut items = Vec::with_capacity(rows.len());
        for [kind, id, grid, label, location] in rows {
            let unreadable = |field: &'static str| Error::StoredValue {
                record: id.clone(),
                field,
                reason: "not a valid value".into(),
            };
            let record = match kind.as_str() {
                "building" => NearbyRecord::Building(BuildingId::parse(&id)?),
                "component" => NearbyRecord::Component(ComponentId::parse(&id)?),
                _ => NearbyRecord::Incident(IncidentId::parse(&id)?),
            };
            let grid = GridCode::parse(&grid, self.code_format).map_err(|_| unreadable("grid_code"))?;
            let location = decode_location(&location).ok_or_else(|| unreadable("location"))?;
            items.push(((record, grid, label, location), location));
        }
        let mut near = boundaries::nearby(point, radius_m, items);
        // Stable: equal distances (the same spot) keep kind-then-id order.
        near.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then_with(|| a.item.0.cmp(&b.item.0)));
        Ok(near
            .into_iter()
            .map(|near| {
                let (record, grid, label, location) = near.item;
                NearbyItem { record, grid, label, location, distance_m: near.distance_m }
            })
            .collect())
    }

    /// Which grid the point is in, by the boundaries in the reference document this device
    /// holds (every grid of the city that has one): see [`Located`]. A device that has
    /// received no boundaries gets [`Located::NoBoundaries`].
    pub fn locate(&self, point: Wgs84) -> Result<Located> {
        Ok(self.grid_index()?.locate(point))
    }

    /// The grid boundaries this device holds, indexed. Built once per version of the
    /// reference document, then shared.
    pub fn grid_index(&self) -> Result<Arc<GridIndex>> {
        let grids = {
            let mut writer = self.writer();
            let Writer { conn, docs, .. } = &mut *writer;
            let Some(doc) = loaded(conn, docs, &crate::reference::doc_id(), &self.actor)? else {
                return Ok(Arc::new(GridIndex::new(Vec::new())));
            };
            let heads = doc.get_heads();
            if let Some(index) = cached(&heads, self.code_format) {
                return Ok(index);
            }
            (heads, crate::reference::read(doc)?.grids)
        };
        let (heads, grids) = grids;
        let (boundaries, _unreadable) = boundaries::from_reference(&grids, self.code_format);
        let index = Arc::new(GridIndex::new(boundaries));
        let mut cache = INDEXES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.len() >= MAX_CACHED_INDEXES {
            cache.remove(0);
        }
        cache.push(CachedIndex { heads, format: self.code_format, index: Arc::clone(&index) });
        Ok(index)
    }
}

fn cached(heads: &[ChangeHash], format: CodeFormat) -> Option<Arc<GridIndex>> {
    let cache = INDEXES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    cache.iter().find(|entry| entry.heads == heads && entry.format == format).map(|entry| Arc::clone(&entry.index))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use automerge::ActorId;

    use super::*;
    use crate::incident::roles::Role;
    use crate::incident::{ActionKind, Actor};
    use crate::place::boundaries::testdata::{self, at};
    use crate::reference::{self, GridMeta};
    use crate::store::NewIncident;

    fn store() -> (tempfile::TempDir, Store, GridCode) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("device.db")).unwrap();
        let code = GridCode::parse_default(testdata::L_GRID).unwrap();
        store.add_grid(&Grid::new(code.clone(), "长堤社区第一网格", GridKind::Community).unwrap(), true).unwrap();
        (dir, store, code)
    }

    fn building(store: &Store, grid: &GridCode, name: &str, location: Option<Wgs84>) -> BuildingId {
        let building = NewBuilding {
            name: Label::parse(name).unwrap(),
            address: Address::parse(&format!("江门市蓬江区港口路18号{name}")).unwrap(),
            location,
            floors: Some(7),
            units: Some(2),
            usage: BuildingUse::Residential,
        };
        store.add_building(grid, building).unwrap()
    }

    fn incident(store: &Store, grid: &GridCode, title: &str, location: Wgs84) -> IncidentId {
        let item = store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
        let new = NewIncident {
            grid: grid.clone(),
            catalog_item: item,
            title: title.into(),
            description: "路口井盖缺失".into(),
            location: Some(location),
            residents: vec![],
            households: vec![],
            organizations: vec![],
            photos: vec![],
            reported_by_resident: None,
        };
        store.report_incident(new, worker()).unwrap()
    }

    fn worker() -> Actor {
        Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None }
    }

    /// The server's reference document, as the server keeps it.
    fn server_reference() -> automerge::AutoCommit {
        reference::genesis().with_actor(ActorId::from(reference::SERVER_ACTOR))
    }

    /// Publishes these grids' boundaries: the changes a sync would bring.
    fn publish(doc: &mut automerge::AutoCommit, grids: &[boundaries::GridBoundary]) -> Vec<Vec<u8>> {
        let before = doc.get_heads();
        for grid in grids {
            let meta = GridMeta {
                name: grid.name.clone(),
                kind: grid.kind.code().into(),
                boundary: Some(grid.geometry_json()),
                ..GridMeta::default()
            };
            reference::set_grid(doc, grid.code.as_str(), &meta).unwrap();
        }
        doc.commit();
        doc.get_changes(&before).into_iter().map(|change| change.raw_bytes().to_vec()).collect()
    }

    #[test]
    fn nearby_finds_standing_buildings_components_and_open_incidents_nearest_first() {
        let (_dir, store, grid) = store();
        let near_building = building(&store, &grid, "2栋", Some(at(30.0, 40.0)));
        building(&store, &grid, "3栋", Some(at(0.0, 260.0)));
        building(&store, &grid, "4栋", None);
        let demolished = building(&store, &grid, "5栋", Some(at(10.0, 0.0)));
        store
            .archive(Archive::Building(
                demolished,
                BuildingStatus::Demolished { on: chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap() },
            ))
            .unwrap();
        let lamp = store
            .add_component(
                &grid,
                NewComponent {
                    subclass: ComponentSubclass::parse("0101").unwrap(),
                    name: Label::parse("上水井盖").unwrap(),
                    location: at(-100.0, 0.0),
                    state: ComponentState::Damaged,
                },
            )
            .unwrap();
        let open = incident(&store, &grid, "井盖缺失", at(0.0, 150.0));
        let closed = incident(&store, &grid, "路灯不亮", at(0.0, 20.0));
        store.act(closed, worker(), ActionKind::Withdraw { reason: "误报".into() }).unwrap();

        let found = store.nearby(at(0.0, 0.0), 200.0).unwrap();
        let records: Vec<NearbyRecord> = found.iter().map(|item| item.record).collect();
        assert_eq!(
            records,
            [NearbyRecord::Building(near_building), NearbyRecord::Component(lamp), NearbyRecord::Incident(open)]
        );
        assert!((found[0].distance_m - 50.0).abs() < 0.05, "{}", found[0].distance_m);
        assert!((found[1].distance_m - 100.0).abs() < 0.05);
        assert_eq!((found[1].label.as_str(), found[2].label.as_str()), ("上水井盖", "井盖缺失"));
        assert_eq!(found[0].grid, grid);
        assert_eq!(store.nearby(at(0.0, 0.0), 60.0).unwrap().len(), 1);
        assert_eq!(store.nearby(at(0.0, 0.0), 300.0).unwrap().len(), 4);
    }

    #[test]
    fn a_radius_out_of_range_is_refused() {
        let (_dir, store, _) = store();
        for radius in [-1.0, f64::NAN, 50_001.0] {
            let error = store.nearby(at(0.0, 0.0), radius).unwrap_err();
            assert!(matches!(error, Error::Invalid(InvalidField { field: "radius_m", .. })), "{error:?}");
        }
    }

    #[test]
    fn a_point_is_located_by_the_boundaries_the_reference_document_brought() {
        let (_dir, store, _) = store();
        assert_eq!(store.locate(at(100.0, 500.0)).unwrap(), Located::NoBoundaries);
        let mut server = server_reference();
        store.apply_changes(&reference::doc_id(), &publish(&mut server, &testdata::jiangmen())).unwrap();
        assert_eq!(
            store.locate(at(100.0, 500.0)).unwrap(),
            Located::Grid {
                grid: GridCode::parse_default(testdata::L_GRID).unwrap(),
                community: "440703001001".into(),
                township: "440703001".into(),
            }
        );
        assert!(matches!(store.locate(at(-200.0, 300.0)).unwrap(), Located::Outside { .. }));
        assert_eq!(store.grid_index().unwrap().len(), 7);
    }

    #[test]
    fn a_new_version_of_the_boundaries_is_used_at_once() {
        let (_dir, store, _) = store();
        let mut server = server_reference();
        store.apply_changes(&reference::doc_id(), &publish(&mut server, &testdata::jiangmen())).unwrap();
        let notch = at(300.0, 400.0);
        assert!(
            matches!(store.locate(notch).unwrap(), Located::Grid { grid, .. } if grid.as_str() == testdata::HOLED_GRID)
        );
        // The L is redrawn as a full rectangle (and 002 gives up its arm).
        let square = testdata::grid(
            testdata::L_GRID,
            "长堤社区第一网格",
            GridKind::Community,
            vec![testdata::rectangle(0.0, 0.0, 400.0, 600.0)],
        );
        store.apply_changes(&reference::doc_id(), &publish(&mut server, &[square])).unwrap();
        assert!(matches!(store.locate(notch).unwrap(), Located::Ambiguous { .. }));
    }
}
