//! Reads from the projection over a district-sized store (20 grids: 10,000 households,
//! about 30,000 residents): the household list of a grid, and resident search by a
//! two-character name fragment and by phone tail. Target (DESIGN §5): each under 10 ms.
//! Baselines: the plainest SQL that answers the same question without our indexes.

#![allow(clippy::unwrap_used)]

mod support;

use wangge_core::Store;
use wangge_core::demo::generate_city;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("device.db")).unwrap();
    let city = generate_city(20, 500, 7);
    for (grid, records) in &city {
        store.add_grid(grid, true).unwrap();
        store.import(&grid.code, records).unwrap();
    }
    let n_residents: i64 =
        store.with_reader(|conn| conn.query_row("SELECT count(*) FROM residents", [], |row| row.get(0))).unwrap();
    let n_households: i64 =
        store.with_reader(|conn| conn.query_row("SELECT count(*) FROM households", [], |row| row.get(0))).unwrap();
    println!("store: {} grids, {n_households} households, {n_residents} residents", city.len());

    let grid = &city[3].0.code;
    let list = support::compare(
        15,
        20,
        || {
            let rows: Vec<String> = store
                .with_reader(|conn| {
                    let mut statement = conn.prepare_cached("SELECT id FROM households WHERE grid_code = ?1")?;
                    statement.query_map([grid.as_str()], |row| row.get(0))?.collect()
                })
                .unwrap();
            assert_eq!(rows.len(), 500);
        },
        || assert_eq!(store.list_households(grid).unwrap().len(), 500),
    );
    support::report("household list of a grid", "bare SELECT", &list, "target < 10 ms");

    // A given name's two characters, as a worker types them.
    let fragment: String = {
        let (_, records) = &city[5];
        let name = records.residents[17].1.name.as_str().to_owned();
        name.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect()
    };
    let by_name = support::compare(
        15,
        20,
        || {
            store
                .with_reader(|conn| {
                    let mut statement =
                        conn.prepare_cached("SELECT id FROM residents WHERE name LIKE '%' || ?1 || '%' LIMIT 50")?;
                    statement.query_map([&fragment], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()
                })
                .unwrap();
        },
        || assert!(!store.search_residents(&fragment, 50).unwrap().is_empty()),
    );
    support::report("search: 2-character name fragment", "LIKE scan", &by_name, "target < 10 ms");

    let tail = {
        let (_, records) = &city[9];
        let phone = records.residents.iter().find_map(|(_, r)| r.phone.clone()).unwrap();
        phone.tail(4).to_owned()
    };
    let by_phone = support::compare(
        15,
        20,
        || {
            store
                .with_reader(|conn| {
                    let mut statement = conn.prepare_cached(
                        "SELECT resident_id FROM resident_details WHERE phone LIKE '%' || ?1 LIMIT 50",
                    )?;
                    statement.query_map([&tail], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()
                })
                .unwrap();
        },
        || assert!(!store.search_residents(&tail, 50).unwrap().is_empty()),
    );
    support::report("search: phone tail (4 digits)", "LIKE scan", &by_phone, "target < 10 ms");
}
