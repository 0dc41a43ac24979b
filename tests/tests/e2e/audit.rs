//! The server's audit trail: every change verified against its hash, author and document;
//! the trail of a worker and of a grid exported; an altered change detected.

use wangge_core::demo::{DemoOptions, generate_grid};
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
