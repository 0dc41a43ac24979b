//! The projection equals a rebuild from the documents, whatever path the changes took.

use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::model::*;

use super::*;

fn small_demo() -> GridRecords {
    generate_grid(&grid_code(), &DemoOptions { households: 60, organizations: 8, components: 10, ..Default::default() })
}

#[test]
fn rebuild_equals_incremental_after_captures_and_edits() {
    let device = device();
    let store = &device.store;
    store.import(&grid_code(), &small_demo()).unwrap();
    let (building, household, resident) = family(store);
    store.update_resident(resident, ResidentPatch { phone: Some(None), ..Default::default() }).unwrap();
    store.update_building(building, BuildingPatch { floors: Some(None), ..Default::default() }).unwrap();
    store.archive(Archive::Household(household, HouseholdStatus::MovedOut { on: date("2026-01-02") })).unwrap();
    let incremental = projection_dump(store);
    let hits = store.search_residents("陈秀", 50).unwrap();
    store.rebuild_projection().unwrap();
    assert_eq!(projection_dump(store), incremental);
    assert_eq!(store.search_residents("陈秀", 50).unwrap(), hits);
}

#[test]
fn rebuild_equals_incremental_after_merges() {
    let a = device();
    let b = device();
    a.store.import(&grid_code(), &small_demo()).unwrap();
    family(&b.store);
    exchange(&a.store, &b.store);
    let merged = projection_dump(&b.store);
    assert_eq!(merged, projection_dump(&a.store));
    b.store.rebuild_projection().unwrap();
    assert_eq!(projection_dump(&b.store), merged);
}

#[test]
fn import_is_many_changes_and_projects_every_record() {
    let device = device();
    let records = small_demo();
    let summary = device.store.import(&grid_code(), &records).unwrap();
    let n_records = records.buildings.len()
        + records.households.len()
        + records.residents.len()
        + records.organizations.len()
        + records.components.len();
    assert_eq!(summary.n_records, n_records);
    // At least one change per building, household, organization and component.
    assert!(summary.n_changes >= records.buildings.len() + records.households.len(), "{summary:?}");
    assert_eq!(device.store.list_households(&grid_code()).unwrap().len(), records.households.len());
    assert_eq!(device.store.list_buildings(&grid_code()).unwrap().len(), records.buildings.len());
    for (id, _) in &records.residents {
        device.store.resident(*id).unwrap();
    }
}

#[test]
fn documents_compact_and_reload_after_many_captures() {
    let device = device();
    let (_, _, resident) = family(&device.store);
    for i in 0..1100u32 {
        let phone = Phone::parse(&format!("1390000{i:04}")).unwrap();
        device
            .store
            .update_resident(resident, ResidentPatch { phone: Some(Some(phone)), ..Default::default() })
            .unwrap();
    }
    let path = device.store.path().to_path_buf();
    let dump = projection_dump(&device.store);
    drop(device.store);
    let store = wangge_core::Store::open(&path).unwrap();
    assert_eq!(projection_dump(&store), dump);
    store.rebuild_projection().unwrap();
    assert_eq!(projection_dump(&store), dump);
    assert_eq!(store.resident(resident).unwrap().sensitive.unwrap().phone.unwrap().as_str(), "13900001099");
}

/// Updates are projected straight from their edits; a rebuild rereads the documents.
/// Every kind of update must give the same rows either way.
#[test]
fn rebuild_equals_incremental_after_every_kind_of_update() {
    let device = device();
    let store = &device.store;
    let (building, household, resident) = family(store);
    let organization = store
        .add_organization(
            &grid_code(),
            NewOrganization {
                name: Label::parse("惠民超市").unwrap(),
                uscc: None,
                kind: OrganizationKind::IndividualBusiness,
                address: Address::parse("江门市蓬江区港口路20号").unwrap(),
                location: None,
                building: Some(building),
                contact_name: None,
                contact_phone: None,
            },
        )
        .unwrap();
    let updates: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| {
            store
                .update_resident(resident, ResidentPatch { relation: Some(Relation::Other), ..Default::default() })
                .unwrap()
        }),
        Box::new(|| {
            store
                .update_resident(
                    resident,
                    ResidentPatch { id_number: Some(Some(id_number("1970-07-01", 124))), ..Default::default() },
                )
                .unwrap()
        }),
        Box::new(|| {
            store.update_resident(resident, ResidentPatch { id_number: Some(None), ..Default::default() }).unwrap()
        }),
        Box::new(|| {
            store
                .update_resident(
                    resident,
                    ResidentPatch {
                        add_tags: [PersonTag::Veteran, PersonTag::LowIncome].into(),
                        remove_tags: [PersonTag::Disabled].into(),
                        ..Default::default()
                    },
                )
                .unwrap()
        }),
        Box::new(|| {
            store
                .update_resident(
                    resident,
                    ResidentPatch { name: Some(PersonName::parse("陈晓").unwrap()), ..Default::default() },
                )
                .unwrap()
        }),
        Box::new(|| {
            store
                .update_household(
                    household,
                    HouseholdPatch { residence_type: Some(ResidenceType::Migrant), ..Default::default() },
                )
                .unwrap()
        }),
        Box::new(|| {
            store.update_household(household, HouseholdPatch { room: Some(None), ..Default::default() }).unwrap()
        }),
        Box::new(|| {
            store
                .update_building(
                    building,
                    BuildingPatch {
                        address: Some(Address::parse("江门市蓬江区建设路1号").unwrap()),
                        ..Default::default()
                    },
                )
                .unwrap()
        }),
        Box::new(|| {
            store
                .update_organization(
                    organization,
                    OrganizationPatch {
                        contact_phone: Some(Some(Phone::parse("13512345678").unwrap())),
                        ..Default::default()
                    },
                )
                .unwrap()
        }),
        Box::new(|| {
            store.archive(Archive::Resident(resident, ResidentStatus::MovedOut { on: date("2026-03-01") })).unwrap()
        }),
    ];
    for (i, update) in updates.iter().enumerate() {
        update();
        let incremental = projection_dump(store);
        store.rebuild_projection().unwrap();
        assert_eq!(projection_dump(store), incremental, "after update {i}");
    }
    assert_eq!(store.search_residents("陈晓", 5).unwrap().len(), 1);
    assert_eq!(store.search_residents("建设路", 5).unwrap().len(), 1);
}
