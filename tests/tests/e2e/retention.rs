//! Archived incidents leave devices a retention period after the server received their
//! archive (the server keeps them); recently archived ones stay.

use wangge_core::blobs::{BlobHash, BlobStore};
use wangge_core::incident::roles::{CenterLevel, DepartmentCode, Role};
use wangge_core::incident::{ActionKind, Actor, Mark, Phase, Verdict};
use wangge_core::model::{GridCode, IncidentId};
use wangge_core::{Error, IncidentFilter};
use wangge_server::service::{AuditFilter, DEFAULT_INCIDENT_RETENTION_MS};
use wangge_server::storage::Storage;
use wangge_tests::{TestDevice, TestServer, report_naming};

fn now() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::Utc::now().with_timezone(&wangge_core::calendar::CHINA_TIME)
}

struct Loop<'a> {
    worker: &'a TestDevice,
    center: &'a TestDevice,
    police: &'a TestDevice,
}

impl Loop<'_> {
    /// Runs an incident with a photo through the closed loop to its archive, every step
    /// synced: reported by the worker, dispatched to the police, completed, verified,
    /// archived by the center.
    async fn to_archive(&self, grid: &GridCode, photo: &BlobHash) -> IncidentId {
        let me = Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None };
        let staff = Actor { person: "c1".into(), role: Role::CenterStaff(CenterLevel::Township), department: None };
        let police = DepartmentCode::parse("public_security").unwrap();
        let handler = Actor { person: "h1".into(), role: Role::DepartmentHandler, department: Some(police.clone()) };
        let item = self.worker.store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
        let id = self.worker.store.report_incident(report_naming(grid, &item, photo), me.clone()).unwrap();
        self.worker.sync().await;
        self.center.sync().await;
        let dispatch = ActionKind::Dispatch { lead: police, co_handlers: vec![] };
        for kind in [ActionKind::Accept, dispatch] {
            assert_eq!(self.center.store.act(id, staff.clone(), kind).unwrap(), Mark::Applied);
        }
        self.center.sync().await;
        self.police.sync().await;
        let complete = ActionKind::Complete { feedback: "已清理".into(), evidence: vec![] };
        assert_eq!(self.police.store.act(id, handler, complete).unwrap(), Mark::Applied);
        self.police.sync().await;
        self.worker.sync().await;
        let verify = ActionKind::Verify { verdict: Verdict::Pass, note: String::new() };
        assert_eq!(self.worker.store.act(id, me, verify).unwrap(), Mark::Applied);
        self.worker.sync().await;
        self.center.sync().await;
        assert_eq!(self.center.store.act(id, staff, ActionKind::Archive).unwrap(), Mark::Applied);
        self.center.sync().await;
        for device in [self.worker, self.police] {
            device.sync().await;
            assert_eq!(device.store.incident(id, now()).unwrap().phase, Phase::Archived);
        }
        id
    }
}

/// The documents and projection rows a device holds of an incident.
fn held(device: &TestDevice, id: IncidentId) -> (bool, bool, u32) {
    let doc = device.store.documents().unwrap().contains(&wangge_core::crdt::DocId::incident(id));
    let row = match device.store.incident(id, now()) {
        Ok(_) => true,
        Err(Error::UnknownIncident { incident }) if incident == id => false,
        Err(error) => panic!("{error}"),
    };
    (doc, row, device.store.incident_stats(&IncidentFilter::default(), now()).unwrap().total)
}

fn exports_beside(device: &TestDevice) -> Vec<String> {
    let dir = device.store.path().parent().unwrap();
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.contains(".removed-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archived_incident_leaves_devices_after_the_retention_and_the_server_keeps_it() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let center = TestDevice::enrolled(&server, &server.worker("c1", "center_staff_township", None, &[&grid])).await;
    let police =
        TestDevice::enrolled(&server, &server.worker("h1", "department_handler", Some("public_security"), &[])).await;
    let devices = Loop { worker: &worker, center: &center, police: &police };
    let worker_blobs = BlobStore::beside(&worker.store, 64 << 20).unwrap();
    let police_blobs = BlobStore::beside(&police.store, 64 << 20).unwrap();

    // An incident with a photo, archived "long ago": the server's clock is moved past the
    // retention for the housekeeping pass.
    let old_photo = worker_blobs.put(b"old photo: a market stall on the pavement").unwrap();
    let old = devices.to_archive(&grid, &old_photo).await;
    worker.client.upload_pending_blobs(&worker.store, &worker_blobs).await.unwrap();
    police.client.download_blob(&police.store, &police_blobs, &old_photo).await.unwrap();
    assert!(worker_blobs.contains(&old_photo) && police_blobs.contains(&old_photo));
    let later = chrono::Utc::now().timestamp_millis() + DEFAULT_INCIDENT_RETENTION_MS + 3600 * 1000;
    assert_eq!(server.service.retire_archived_incidents_at(later).unwrap(), 1);
    // Nothing more is due at that time, nor now.
    assert_eq!(server.service.retire_archived_incidents_at(later).unwrap(), 0);

    // One archived just now stays.
    let recent_photo = worker_blobs.put(b"recent photo: a broken manhole cover").unwrap();
    let recent = devices.to_archive(&grid, &recent_photo).await;
    assert_eq!(server.service.retire_archived_incidents().unwrap(), 0);

    for (name, device) in [("worker", &worker), ("center", &center), ("police", &police)] {
        device.sync().await;
        assert_eq!(held(device, old), (false, false, 1), "{name} still holds the old incident");
        assert!(held(device, recent).0, "{name} lost the recent incident");
        assert_eq!(device.store.incident(recent, now()).unwrap().phase, Phase::Archived);
        assert!(exports_beside(device).is_empty(), "{name} exported edits it did not have");
    }
    // Their cached photos went with it; the recent incident's stays.
    assert!(!worker_blobs.contains(&old_photo) && !police_blobs.contains(&old_photo));
    assert!(worker_blobs.contains(&recent_photo));

    // The server keeps it: its document, its log, its trail, in the grid's archive scope.
    let doc = wangge_core::crdt::DocId::incident(old).to_string();
    let storage = server.service.storage();
    assert!(storage.snapshot(&doc).unwrap().is_some());
    assert!(storage.visible_documents(&[format!("grid:{grid}:archive")]).unwrap().contains(&doc));
    assert!(!storage.visible_documents(&[format!("grid:{grid}:incidents")]).unwrap().contains(&doc));
    let trail = server.service.audit_trail(&AuditFilter::Record { grid: grid.to_string(), id: old.to_string() });
    assert!(trail.unwrap().len() >= 6);
    assert_eq!(server.service.verify_log().unwrap().problems, Vec::<String>::new());

    // A device enrolled afterwards never receives it.
    let newcomer = TestDevice::enrolled(&server, &server.worker("w2", "full_time_worker", None, &[&grid])).await;
    newcomer.sync().await;
    assert_eq!(held(&newcomer, old), (false, false, 1));
    assert!(held(&newcomer, recent).0);
}
