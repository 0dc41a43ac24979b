//! The operator's commands on a real database, run as the binary: enrollment codes with
//! their link and QR code, the list of devices after a device synced, backup and restore.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use wangge_core::Store;
use wangge_core::sync::http::SyncClient;
use wangge_core::sync::link::parse_enrollment_link;
use wangge_server::{Service, SqliteStorage};

fn admin(db: &Path, args: &[&str]) -> String {
    let output =
        Command::new(env!("CARGO_BIN_EXE_wangge-server")).arg("--database").arg(db).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{args:?}: {text}");
    text
}

fn admin_fails(db: &Path, args: &[&str]) -> String {
    let output =
        Command::new(env!("CARGO_BIN_EXE_wangge-server")).arg("--database").arg(db).args(args).output().unwrap();
    assert!(!output.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The QR code in a PNG file, read back.
fn read_qr(path: &Path) -> String {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let width = info.width as usize;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, info.height as usize, |x, y| pixels[y * width + x]);
    image.detect_grids()[0].decode().unwrap().1
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_with_qr_the_device_list_and_backup_and_restore_work_on_a_live_database() {
    wangge_core::sync::http::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    admin(&db, &["add-grid", "--code", "440703001001001", "--name", "长堤社区第1网格"]);

    // The server runs on the same file while the commands work on it.
    let service = Service::new(SqliteStorage::open(&db).unwrap());
    let (listener, addr) = wangge_server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(wangge_server::serve(listener, service, async {
        let _ = stopped.await;
    }));
    let url = format!("http://{addr}");

    let qr = dir.path().join("w1.png");
    let printed = admin(
        &db,
        &[
            "add-worker",
            "--person",
            "w1",
            "--role",
            "full_time_worker",
            "--grid",
            "440703001001001",
            "--server-url",
            &url,
            "--qr",
            qr.to_str().unwrap(),
        ],
    );
    let link_text = printed.lines().find_map(|line| line.strip_prefix("enrollment link: ")).unwrap();
    assert_eq!(read_qr(&qr), link_text, "the PNG holds the printed link");
    let link = parse_enrollment_link(link_text).unwrap();
    assert_eq!(link.server.as_deref(), Some(url.as_str()));
    assert!(printed.contains(&format!("enrollment code for w1: {}", link.code)));
    assert!(admin_fails(&db, &["enroll-code", "--person", "w1", "--qr", "x.png"]).contains("--server-url"));

    // The device configures itself from the scanned link, enrolls and syncs.
    let device_dir = tempfile::tempdir().unwrap();
    let store = Store::open(device_dir.path().join("device.db")).unwrap();
    let client = SyncClient::new(link.server.as_deref().unwrap()).unwrap();
    client.enroll(&store, &link.code, "handheld").await.unwrap();
    client.sync(&store, None).await.unwrap();
    let device_id = store.device_id().unwrap().unwrap();
    let listed = admin(&db, &["devices", "--worker", "w1"]);
    let fields: Vec<&str> = listed.trim_end().split('\t').collect();
    assert_eq!(fields.len(), 7, "{listed}");
    assert_eq!(&fields[..4], [device_id.as_str(), "w1", "full_time_worker", "active"]);
    assert!(fields[4].starts_with("20") && fields[4].ends_with('Z'), "a UTC time: {listed}");
    assert_eq!(&fields[5..], ["0", env!("CARGO_PKG_VERSION")]);
    assert_eq!(admin(&db, &["devices", "--worker", "nobody"]), "");

    // A backup while the server runs; later changes; the restore brings the backup back
    // and moves the numbering on.
    let backup = dir.path().join("backup.db");
    assert!(admin(&db, &["backup", "--to", backup.to_str().unwrap()]).contains("backed up"));
    assert!(admin_fails(&db, &["backup", "--to", backup.to_str().unwrap()]).contains("exists"));
    admin(&db, &["add-grid", "--code", "440703001001002", "--name", "长堤社区第2网格"]);
    let _ = stop.send(());
    let before: i64 = rusqlite::Connection::open(&backup)
        .unwrap()
        .query_row("SELECT coalesce(max(seq), 0) FROM changes", [], |row| row.get(0))
        .unwrap();
    assert!(admin(&db, &["restore", "--from", backup.to_str().unwrap()]).contains("restored"));
    let restored = rusqlite::Connection::open(&db).unwrap();
    let grids: i64 = restored.query_row("SELECT count(*) FROM grids", [], |row| row.get(0)).unwrap();
    assert_eq!(grids, 1, "the grid added after the backup is gone");
    let next: i64 =
        restored.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'changes'", [], |row| row.get(0)).unwrap();
    assert_eq!(next, before + wangge_server::storage::RESTORE_SEQ_GAP);
    assert!(admin(&db, &["verify-log"]).contains("0 problem(s)"));

    let not_a_backup = dir.path().join("other.db");
    rusqlite::Connection::open(&not_a_backup).unwrap().execute_batch("CREATE TABLE t (x);").unwrap();
    assert!(admin_fails(&db, &["restore", "--from", not_a_backup.to_str().unwrap()]).contains("not a wangge-server"));
    let postgres = admin_fails(Path::new("postgres://nobody@127.0.0.1:1/none"), &["backup", "--to", "x.db"]);
    assert!(postgres.contains("pg_dump"), "{postgres}");
}
