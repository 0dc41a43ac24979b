//! The server's audit trail: every change verified against its hash, author and document;
//! the trail of a worker, of a grid and of one record exported; an altered change detected.

use wangge_core::NewIncident;
use wangge_core::demo::{DemoOptions, generate_grid};
use wangge_core::incident::Actor;
use wangge_core::incident::roles::Role;
use wangge_core::model::*;
use wangge_server::service::AuditFilter;
use wangge_tests::{TestDevice, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn the_log_verifies_the_trail_is_exported_and_an_altered_change_is_detected() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let other = server.grid("440703001001002", "长堤社区第2网格");
    let w1 = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let w2 = TestDevice::enrolled(&server, &server.worker("w2", "full_time_worker", None, &[&other])).await;
    for (device, code) in [(&w1, &grid), (&w2, &other)] {
        let records =
            generate_grid(code, &DemoOptions { households: 3, organizations: 1, components: 1, ..Default::default() });
        device.store.import(code, &records).unwrap();
        device.sync().await;
    }

    let check = server.service.verify_log().unwrap();
    assert!(check.n_changes > 10, "{check:?}");
    assert_eq!(check.problems, Vec::<String>::new());

    let mine = server.service.audit_trail(&AuditFilter::Worker("w1".into())).unwrap();
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|line| line.person == "w1" && line.doc.ends_with(grid.as_str())));
    let of_grid = server.service.audit_trail(&AuditFilter::Grid(grid.as_str().into())).unwrap();
    assert_eq!(
        of_grid.iter().map(|line| line.seq).collect::<Vec<_>>(),
        mine.iter().map(|line| line.seq).collect::<Vec<_>>()
    );
    assert!(server.service.audit_trail(&AuditFilter::Worker("w9".into())).unwrap().is_empty());

    // Someone with the database file alters one byte of a stored change.
    let victim = mine[mine.len() / 2].seq;
    let db = rusqlite::Connection::open(server.database_path()).unwrap();
    let mut bytes: Vec<u8> =
        db.query_row("SELECT bytes FROM changes WHERE seq = ?1", [victim], |row| row.get(0)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    db.execute("UPDATE changes SET bytes = ?1 WHERE seq = ?2", rusqlite::params![bytes, victim]).unwrap();
    let check = server.service.verify_log().unwrap();
    assert_eq!(check.problems.len(), 1, "{:?}", check.problems);
    let expected = format!("change #{victim} of {}: ", mine[mine.len() / 2].doc);
    assert!(check.problems[0].starts_with(&expected), "{:?}", check.problems);
}

fn resident(name: &str, phone: Option<&str>) -> NewResident {
    NewResident {
        household: None,
        name: PersonName::parse(name).unwrap(),
        id_number: None,
        phone: phone.map(|phone| Phone::parse(phone).unwrap()),
        gender: None,
        birth_date: None,
        relation: Relation::Head,
        residence_type: ResidenceType::Registered,
        tags: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trail_of_one_record_has_exactly_its_changes_with_their_receive_time() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let w1 = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let w2 = TestDevice::enrolled(&server, &server.worker("w2", "full_time_worker", None, &[&grid])).await;
    let before = chrono::Utc::now().timestamp_millis();
    let a = w1.store.add_resident(&grid, resident("黄丽珍", Some("13900000009"))).unwrap();
    let b = w1.store.add_resident(&grid, resident("陈国强", None)).unwrap();
    w1.sync().await;
    w2.sync().await;
    let patch = ResidentPatch {
        name: Some(PersonName::parse("黄丽贞").unwrap()),
        phone: Some(Some(Phone::parse("13900000010").unwrap())),
        ..Default::default()
    };
    w2.store.update_resident(a, patch).unwrap();
    w2.sync().await;
    let me = Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None };
    let item = w1.store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
    let incident = w1
        .store
        .report_incident(
            NewIncident {
                grid: grid.clone(),
                catalog_item: item,
                title: "井盖缺失".into(),
                description: String::new(),
                location: None,
                residents: vec![a],
                households: vec![],
                organizations: vec![],
                photos: vec![],
                reported_by_resident: None,
            },
            me,
        )
        .unwrap();
    w1.sync().await;
    let after = chrono::Utc::now().timestamp_millis();

    let trail =
        |id: String| server.service.audit_trail(&AuditFilter::Record { grid: grid.as_str().into(), id }).unwrap();
    let of_a = trail(a.to_string());
    let people: Vec<(&str, &str)> =
        of_a.iter().map(|line| (line.person.as_str(), line.doc.split('/').next().unwrap())).collect();
    assert_eq!(
        people,
        [("w1", "register"), ("w1", "sensitive"), ("w2", "register"), ("w2", "sensitive")],
        "created with a phone on one device, renamed and a new phone on another"
    );
    assert!(of_a.windows(2).all(|pair| pair[0].seq < pair[1].seq), "in log order");
    assert!(of_a.iter().all(|line| line.received_ms.is_some_and(|ms| (before..=after).contains(&ms))));
    let of_b = trail(b.to_string());
    assert_eq!(of_b.len(), 1, "{of_b:?}");
    assert!(of_a.iter().all(|line| line.seq != of_b[0].seq));

    let of_incident = trail(incident.to_string());
    assert!(!of_incident.is_empty());
    assert!(of_incident.iter().all(|line| line.doc == format!("incident/{incident}") && line.person == "w1"));
    assert!(trail("0190a1b2-0000-7000-8000-000000000000".into()).is_empty(), "no such record");
    let elsewhere = server
        .service
        .audit_trail(&AuditFilter::Record { grid: "440703001001002".into(), id: incident.to_string() })
        .unwrap();
    assert!(elsewhere.is_empty(), "an incident is found in its own grid only");
}
