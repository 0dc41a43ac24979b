//! Finding residents by name fragment, address, phone tail and ID tail.

use wangge_core::model::*;

use super::*;

fn names(hits: &[wangge_core::ResidentHit]) -> Vec<&str> {
    hits.iter().map(|hit| hit.name.as_str()).collect()
}

fn populated() -> Device {
    let device = device();
    let store = &device.store;
    let building = store.add_building(&grid_code(), new_building("2栋")).unwrap();
    let household = store.add_household(&grid_code(), new_household(building, "1单元301")).unwrap();
    let people = [
        ("陈秀英", "1968-03-12", 123, "13812345678"),
        ("欧阳秀英", "1972-05-01", 224, "13987654321"),
        ("李明", "1990-01-20", 311, "15011112222"),
    ];
    for (name, birth, sequence, phone) in people {
        let mut resident = new_resident(household, name, Relation::Other);
        resident.id_number = Some(id_number(birth, sequence));
        resident.phone = Some(Phone::parse(phone).unwrap());
        store.add_resident(&grid_code(), resident).unwrap();
    }
    device
}

#[track_caller]
fn check(store: &wangge_core::Store, query: &str, expected: &[&str]) {
    let hits = store.search_residents(query, 20).unwrap();
    let mut found = names(&hits);
    found.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(found, expected, "query {query:?}");
}

#[test]
fn two_characters_of_a_name_find_it() {
    let device = populated();
    check(&device.store, "秀英", &["陈秀英", "欧阳秀英"]);
    check(&device.store, "欧阳", &["欧阳秀英"]);
    check(&device.store, "李明", &["李明"]);
    check(&device.store, "陈秀英", &["陈秀英"]);
    check(&device.store, "秀明", &[]);
}

#[test]
fn one_character_finds_nothing_rather_than_everything() {
    let device = populated();
    check(&device.store, "秀", &[]);
    check(&device.store, "", &[]);
}

#[test]
fn phone_tail_finds_it() {
    let device = populated();
    check(&device.store, "5678", &["陈秀英"]);
    check(&device.store, "2222", &["李明"]);
    check(&device.store, "12222", &["李明"]);
    check(&device.store, "13987654321", &["欧阳秀英"]);
    check(&device.store, "0000", &[]);
}

#[test]
fn id_number_tail_finds_it() {
    let device = populated();
    let id = id_number("1990-01-20", 311);
    check(&device.store, id.tail(4), &["李明"]);
    check(&device.store, id.as_str(), &["李明"]);
}

#[test]
fn address_fragment_finds_the_people_living_there() {
    let device = populated();
    check(&device.store, "港口路", &["陈秀英", "欧阳秀英", "李明"]);
    check(&device.store, "18号2栋", &["陈秀英", "欧阳秀英", "李明"]);
    check(&device.store, "1单元301", &["陈秀英", "欧阳秀英", "李明"]);
    check(&device.store, "人民路", &[]);
}

#[test]
fn renamed_resident_is_found_by_the_new_name_only() {
    let device = populated();
    let id = device.store.search_residents("李明", 1).unwrap()[0].id;
    device
        .store
        .update_resident(id, ResidentPatch { name: Some(PersonName::parse("李晓东").unwrap()), ..Default::default() })
        .unwrap();
    check(&device.store, "李明", &[]);
    check(&device.store, "晓东", &["李晓东"]);
}

#[test]
fn fts_syntax_in_a_query_is_just_text() {
    let device = populated();
    check(&device.store, "\"秀英 OR", &[]);
    check(&device.store, "NEAR(秀英)", &[]);
    check(&device.store, "秀英*", &["陈秀英", "欧阳秀英"]);
}

/// Regression: a landline with an extension was not found by the last digits of its number.
#[test]
fn landline_with_extension_is_found_by_its_number_not_its_extension() {
    let device = populated();
    let id = device.store.search_residents("李明", 1).unwrap()[0].id;
    let landline = Phone::parse("0755-62345678-801").unwrap();
    device.store.update_resident(id, ResidentPatch { phone: Some(Some(landline)), ..Default::default() }).unwrap();
    check(&device.store, "5678", &["陈秀英", "李明"]);
    check(&device.store, "62345678", &["李明"]);
    check(&device.store, "075562345678", &["李明"]);
    check(&device.store, "5678801", &[]);
}

/// Rare name characters (CJK Extension G, Unicode 13) are letters like any other.
#[test]
fn names_with_rare_characters_are_found() {
    let device = populated();
    let household = device.store.list_households(&grid_code()).unwrap()[0].id;
    let mut resident = new_resident(household, "王\u{30000}明", Relation::Other);
    resident.id_number = Some(id_number("1985-02-03", 411));
    device.store.add_resident(&grid_code(), resident).unwrap();
    check(&device.store, "\u{30000}明", &["王\u{30000}明"]);
    check(&device.store, "王\u{30000}", &["王\u{30000}明"]);
}

#[test]
fn a_phrase_does_not_match_across_address_and_building_name() {
    let device = device();
    let mut building = new_building("2栋");
    // The address ends in "2栋" and the name starts with "栋楼": "2栋楼" is in neither.
    building.address = Address::parse("江门市蓬江区港口路18号2栋").unwrap();
    building.name = Label::parse("栋楼A").unwrap();
    let building = device.store.add_building(&grid_code(), building).unwrap();
    let household = device.store.add_household(&grid_code(), new_household(building, "101")).unwrap();
    device.store.add_resident(&grid_code(), new_resident(household, "张三", Relation::Head)).unwrap();
    check(&device.store, "栋楼", &["张三"]);
    check(&device.store, "18号2栋", &["张三"]);
    check(&device.store, "2栋楼", &[]);
}
