//! Two devices, concurrent edits: values are kept, listed with their authors, resolved
//! by writing one. Nothing is decided by device clocks.

use wangge_core::Error;
use wangge_core::crdt::ScalarValue;
use wangge_core::model::*;

use super::*;

/// Device A creates a family; device B receives it.
fn two_devices() -> (Device, Device, ResidentId) {
    let a = device();
    let b = device();
    let (_, _, resident) = family(&a.store);
    exchange(&a.store, &b.store);
    (a, b, resident)
}

#[test]
fn records_from_both_devices_survive_a_merge() {
    let a = device();
    let b = device();
    let from_a = a.store.add_building(&grid_code(), new_building("1栋")).unwrap();
    let from_b = b.store.add_building(&grid_code(), new_building("2栋")).unwrap();
    exchange(&a.store, &b.store);
    for store in [&a.store, &b.store] {
        let ids: Vec<BuildingId> = store.list_buildings(&grid_code()).unwrap().into_iter().map(|b| b.id).collect();
        assert!(ids.contains(&from_a) && ids.contains(&from_b), "{ids:?}");
    }
    assert_eq!(projection_dump(&a.store), projection_dump(&b.store));
}

#[test]
fn concurrent_edits_of_one_field_are_both_kept_with_their_authors() {
    let (a, b, resident) = two_devices();
    let phone = |s: &str| ResidentPatch { phone: Some(Some(Phone::parse(s).unwrap())), ..Default::default() };
    a.store.update_resident(resident, phone("13900000001")).unwrap();
    b.store.update_resident(resident, phone("13900000002")).unwrap();
    exchange(&a.store, &b.store);

    for store in [&a.store, &b.store] {
        let conflicts = store.conflicts(RecordRef::Resident(resident)).unwrap();
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(conflicts[0].field, "phone");
        let mut values: Vec<(String, String)> =
            conflicts[0].values.iter().map(|value| (value.value.to_string(), value.author.clone())).collect();
        values.sort();
        assert_eq!(
            values,
            vec![
                ("\"13900000001\"".to_owned(), a.store.device_actor()),
                ("\"13900000002\"".to_owned(), b.store.device_actor())
            ]
        );
        assert!(conflicts[0].values.iter().all(|value| value.time_ms > 0));
    }
    // Both replicas show the same winner.
    assert_eq!(projection_dump(&a.store), projection_dump(&b.store));
}

#[test]
fn concurrent_edits_of_different_fields_merge_without_conflict() {
    let (a, b, resident) = two_devices();
    a.store.update_resident(resident, ResidentPatch { relation: Some(Relation::Other), ..Default::default() }).unwrap();
    b.store
        .update_resident(
            resident,
            ResidentPatch { name: Some(PersonName::parse("陈秀兰").unwrap()), ..Default::default() },
        )
        .unwrap();
    exchange(&a.store, &b.store);
    for store in [&a.store, &b.store] {
        let merged = store.resident(resident).unwrap();
        assert_eq!(merged.relation, Relation::Other);
        assert_eq!(merged.name.as_str(), "陈秀兰");
        assert!(store.conflicts(RecordRef::Resident(resident)).unwrap().is_empty());
    }
}

#[test]
fn concurrent_tag_additions_merge() {
    let (a, b, resident) = two_devices();
    let add = |tag| ResidentPatch { add_tags: [tag].into(), ..Default::default() };
    a.store.update_resident(resident, add(PersonTag::ElderlyAlone)).unwrap();
    b.store.update_resident(resident, add(PersonTag::LowIncome)).unwrap();
    exchange(&a.store, &b.store);
    let tags = a.store.resident(resident).unwrap().sensitive.unwrap().tags;
    assert_eq!(tags, [PersonTag::ElderlyAlone, PersonTag::Disabled, PersonTag::LowIncome].into());
    assert_eq!(projection_dump(&a.store), projection_dump(&b.store));
}

#[test]
fn writing_a_value_resolves_the_conflict_on_every_replica() {
    let (a, b, resident) = two_devices();
    let name = |s: &str| ResidentPatch { name: Some(PersonName::parse(s).unwrap()), ..Default::default() };
    a.store.update_resident(resident, name("陈秀芳")).unwrap();
    b.store.update_resident(resident, name("陈秀瑛")).unwrap();
    exchange(&a.store, &b.store);
    let record = RecordRef::Resident(resident);
    assert_eq!(a.store.conflicts(record).unwrap().len(), 1);

    a.store.resolve_conflict(record, "name", ScalarValue::Str("陈秀瑛".into())).unwrap();
    assert!(a.store.conflicts(record).unwrap().is_empty());
    exchange(&a.store, &b.store);
    for store in [&a.store, &b.store] {
        assert!(store.conflicts(record).unwrap().is_empty());
        assert_eq!(store.resident(resident).unwrap().name.as_str(), "陈秀瑛");
    }
}

#[test]
fn resolving_an_unknown_field_is_refused() {
    let (a, _b, resident) = two_devices();
    let error = a.store.resolve_conflict(RecordRef::Resident(resident), "salary", ScalarValue::Int(1)).unwrap_err();
    assert!(matches!(&error, wangge_core::Error::UnknownField { field, .. } if field == "salary"), "{error}");
}

#[test]
fn erase_concurrent_with_an_edit_erases() {
    let (a, b, resident) = two_devices();
    a.store.erase(RecordRef::Resident(resident)).unwrap();
    b.store.update_resident(resident, ResidentPatch { relation: Some(Relation::Other), ..Default::default() }).unwrap();
    exchange(&a.store, &b.store);
    for store in [&a.store, &b.store] {
        assert!(matches!(store.resident(resident), Err(wangge_core::Error::NotFound { .. })));
    }
    assert_eq!(projection_dump(&a.store), projection_dump(&b.store));
}

#[test]
fn reapplying_changes_is_harmless() {
    let (a, b, _) = two_devices();
    let [register, _] = doc_ids();
    let all = a.store.changes_since(&register, &[]).unwrap();
    let before = projection_dump(&b.store);
    assert_eq!(b.store.apply_changes(&register, &all).unwrap(), 0);
    assert_eq!(projection_dump(&b.store), before);
}

#[test]
fn a_malformed_change_is_refused_and_nothing_changes() {
    let (a, _b, _) = two_devices();
    let [register, _] = doc_ids();
    let before = projection_dump(&a.store);
    let heads = a.store.heads(&register).unwrap();
    let error = a.store.apply_changes(&register, &[b"not an automerge change".to_vec()]).unwrap_err();
    assert!(matches!(error, wangge_core::Error::Document { .. }), "{error}");
    assert_eq!(a.store.heads(&register).unwrap(), heads);
    assert_eq!(projection_dump(&a.store), before);
}

/// A peer's current heads include its own new change, unknown here: changes after the
/// heads both sides last shared are just the new edit; after the peer's current heads,
/// everything this device cannot prove the peer has (still correct, only larger).
#[test]
fn changes_since_the_last_common_heads_are_only_the_new_ones() {
    let (a, b, resident) = two_devices();
    let [_, sensitive] = doc_ids();
    let common = a.store.heads(&sensitive).unwrap();
    assert_eq!(common, b.store.heads(&sensitive).unwrap());
    let phone = |s: &str| ResidentPatch { phone: Some(Some(Phone::parse(s).unwrap())), ..Default::default() };
    a.store.update_resident(resident, phone("13900000001")).unwrap();
    b.store.update_resident(resident, phone("13900000002")).unwrap();

    let to_b = a.store.changes_since(&sensitive, &common).unwrap();
    assert_eq!(to_b.len(), 1);
    assert!(to_b[0].len() < 300, "{} bytes", to_b[0].len());

    let unproven = a.store.changes_since(&sensitive, &b.store.heads(&sensitive).unwrap()).unwrap();
    assert!(unproven.contains(&to_b[0]));
}

/// Regression: changes received before their dependencies were held only in memory and
/// lost on restart, taking later edits that depended on them along.
#[test]
fn changes_received_before_their_dependencies_survive_a_restart() {
    let a = device();
    let b = device();
    let (_, _, resident) = family(&a.store);
    let [register, sensitive] = doc_ids();
    for doc in [&register, &sensitive] {
        let changes = a.store.changes_since(doc, &[]).unwrap();
        // The last changes first: automerge queues them until the first ones arrive.
        let (first, last) = changes.split_at(changes.len() / 2);
        b.store.apply_changes(doc, last).unwrap();
        b.store.apply_changes(doc, first).unwrap();
    }
    assert_eq!(b.store.resident(resident).unwrap().name.as_str(), "陈秀英");
    b.store.update_resident(resident, ResidentPatch { relation: Some(Relation::Other), ..Default::default() }).unwrap();
    let heads = doc_ids().map(|doc| b.store.heads(&doc).unwrap());
    let dump = projection_dump(&b.store);

    let path = b.store.path().to_path_buf();
    drop(b.store);
    let reopened = wangge_core::Store::open(&path).unwrap();
    assert_eq!(doc_ids().map(|doc| reopened.heads(&doc).unwrap()), heads);
    assert_eq!(projection_dump(&reopened), dump);
    reopened.rebuild_projection().unwrap();
    assert_eq!(projection_dump(&reopened), dump);
    assert_eq!(reopened.resident(resident).unwrap().relation, Relation::Other);
}

/// Regression: two devices giving sensitive fields to a resident that a device without
/// sensitive access created each created its sensitive map; one map hid the other's fields.
#[test]
fn sensitive_fields_written_concurrently_by_two_devices_both_survive() {
    let part_time = device_with(false);
    let b = device();
    let c = device();
    let building = part_time.store.add_building(&grid_code(), new_building("5栋")).unwrap();
    let household = part_time.store.add_household(&grid_code(), new_household(building, "101")).unwrap();
    let mut resident = new_resident(household, "黄丽", Relation::Head);
    resident.id_number = None;
    resident.phone = None;
    resident.tags.clear();
    resident.gender = Some(Gender::Female);
    let resident = part_time.store.add_resident(&grid_code(), resident).unwrap();
    exchange(&part_time.store, &b.store);
    exchange(&part_time.store, &c.store);

    let phone = Phone::parse("13711112222").unwrap();
    b.store
        .update_resident(resident, ResidentPatch { phone: Some(Some(phone.clone())), ..Default::default() })
        .unwrap();
    c.store
        .update_resident(resident, ResidentPatch { add_tags: [PersonTag::Veteran].into(), ..Default::default() })
        .unwrap();
    exchange(&b.store, &c.store);
    for store in [&b.store, &c.store] {
        let sensitive = store.resident(resident).unwrap().sensitive.unwrap();
        assert_eq!(sensitive.phone.as_ref(), Some(&phone));
        assert_eq!(sensitive.tags, [PersonTag::Veteran].into());
    }
    assert_eq!(projection_dump(&b.store), projection_dump(&c.store));
}

/// Regression: a resident erased by a device without the sensitive document kept its ID
/// number and phone in every sensitive replica.
#[test]
fn erase_by_a_device_without_sensitive_data_removes_the_sensitive_fields_too() {
    let part_time = device_with(false);
    let b = device();
    let c = device();
    let (_, _, resident) = family(&b.store);
    exchange(&b.store, &part_time.store);
    part_time.store.erase(RecordRef::Resident(resident)).unwrap();
    exchange(&part_time.store, &b.store);
    exchange(&b.store, &c.store);
    for store in [&b.store, &c.store] {
        assert_eq!(sensitive_keys_of(store, &resident.to_string()), Vec::<String>::new());
        assert!(matches!(store.resident(resident), Err(Error::NotFound { .. })));
    }
}

#[test]
fn sensitive_edit_concurrent_with_an_erase_is_purged() {
    let (a, b, resident) = two_devices();
    a.store.erase(RecordRef::Resident(resident)).unwrap();
    b.store.update_resident(resident, ResidentPatch { phone: Some(None), ..Default::default() }).unwrap();
    b.store
        .update_resident(resident, ResidentPatch { add_tags: [PersonTag::Veteran].into(), ..Default::default() })
        .unwrap();
    exchange(&a.store, &b.store);
    exchange(&a.store, &b.store);
    for store in [&a.store, &b.store] {
        assert_eq!(sensitive_keys_of(store, &resident.to_string()), Vec::<String>::new());
    }
    assert_eq!(projection_dump(&a.store), projection_dump(&b.store));
}

/// Regression: resolving with a value the field cannot hold made the record unreadable
/// on every replica.
#[test]
fn resolving_with_an_invalid_value_is_refused_and_the_record_stays_readable() {
    let (a, _b, resident) = two_devices();
    let record = RecordRef::Resident(resident);
    for (field, value) in [
        ("status", ScalarValue::Str("bogus".into())),
        ("relation", ScalarValue::Str("boss".into())),
        ("id_number", ScalarValue::Str("440703196803121230".into())),
        ("phone", ScalarValue::Int(13800000000)),
    ] {
        let error = a.store.resolve_conflict(record, field, value).unwrap_err();
        assert!(matches!(&error, Error::Invalid(invalid) if invalid.field == field), "{field}: {error}");
    }
    assert!(a.store.resident(resident).is_ok());
}

#[test]
fn resolving_an_id_number_conflict_derives_gender_and_birth_date() {
    let (a, _b, resident) = two_devices();
    let female = id_number("1970-07-01", 124);
    a.store
        .resolve_conflict(RecordRef::Resident(resident), "id_number", ScalarValue::Str(female.as_str().into()))
        .unwrap();
    let resolved = a.store.resident(resident).unwrap();
    assert_eq!(resolved.gender, Some(Gender::Female));
    assert_eq!(resolved.sensitive.unwrap().birth_date, Some(date("1970-07-01")));
}

/// A capture is committed as a pending capture and made into an automerge change later;
/// a merge arriving in between must still see the local edit as concurrent, not as later.
#[test]
fn a_merge_arriving_while_a_capture_is_pending_keeps_the_edits_concurrent() {
    let (a, b, resident) = two_devices();
    let [_, sensitive] = doc_ids();
    let common = b.store.heads(&sensitive).unwrap();
    let phone = |s: &str| ResidentPatch { phone: Some(Some(Phone::parse(s).unwrap())), ..Default::default() };
    a.store.update_resident(resident, phone("13900000001")).unwrap(); // pending on A
    b.store.update_resident(resident, phone("13900000002")).unwrap();
    let from_b = b.store.changes_since(&sensitive, &common).unwrap();
    a.store.apply_changes(&sensitive, &from_b).unwrap();
    let conflicts = a.store.conflicts(RecordRef::Resident(resident)).unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].values.len(), 2);
}
