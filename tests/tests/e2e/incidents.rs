//! An incident through the whole loop, every step on a different device, all through sync.

use wangge_core::incident::roles::{CenterLevel, DepartmentCode, Role};
use wangge_core::incident::{ActionKind, Actor, Mark, Phase, Verdict};
use wangge_core::{IncidentFilter, NewIncident};
use wangge_tests::{TestDevice, TestServer};

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_incident_runs_the_closed_loop_through_sync() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let center = TestDevice::enrolled(&server, &server.worker("c1", "center_staff_township", None, &[&grid])).await;
    let police =
        TestDevice::enrolled(&server, &server.worker("h-police", "department_handler", Some("public_security"), &[]))
            .await;
    let urban =
        TestDevice::enrolled(&server, &server.worker("h-urban", "department_handler", Some("urban_management"), &[]))
            .await;
    let justice =
        TestDevice::enrolled(&server, &server.worker("h-justice", "department_handler", Some("justice"), &[])).await;
    let me = Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None };
    let staff = Actor { person: "c1".into(), role: Role::CenterStaff(CenterLevel::Township), department: None };
    let police_handler =
        Actor { person: "h-police".into(), role: Role::DepartmentHandler, department: Some(dept("public_security")) };
    let urban_handler =
        Actor { person: "h-urban".into(), role: Role::DepartmentHandler, department: Some(dept("urban_management")) };

    let item = worker.store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
    let id = worker
        .store
        .report_incident(
            NewIncident {
                grid: grid.clone(),
                catalog_item: item,
                title: "占道经营".into(),
                description: "早市摊位占用人行道".into(),
                location: None,
                residents: vec![],
                households: vec![],
                organizations: vec![],
                photos: vec![],
                reported_by_resident: None,
            },
            me.clone(),
        )
        .unwrap();
    worker.sync().await;
    center.sync().await;
    // Before dispatch, no department sees it.
    police.sync().await;
    assert!(police.store.incidents(&IncidentFilter::default(), now()).unwrap().is_empty());

    assert_eq!(center.store.act(id, staff.clone(), ActionKind::Accept).unwrap(), Mark::Applied);
    let dispatch = ActionKind::Dispatch { lead: dept("public_security"), co_handlers: vec![] };
    assert_eq!(center.store.act(id, staff.clone(), dispatch).unwrap(), Mark::Applied);
    center.sync().await;
    police.sync().await;
    assert_eq!(police.store.incident(id, now()).unwrap().phase, Phase::Dispatched);
    let reject = ActionKind::Reject { reasons: "不属于公安职责".into() };
    assert_eq!(police.store.act(id, police_handler, reject).unwrap(), Mark::Applied);
    police.sync().await;
    center.sync().await;
    let redispatch = ActionKind::Redispatch { lead: dept("urban_management"), co_handlers: vec![] };
    assert_eq!(center.store.act(id, staff.clone(), redispatch).unwrap(), Mark::Applied);
    center.sync().await;
    urban.sync().await;
    let complete = ActionKind::Complete { feedback: "已清理".into(), evidence: vec![] };
    assert_eq!(urban.store.act(id, urban_handler, complete).unwrap(), Mark::Applied);
    urban.sync().await;
    worker.sync().await;
    let verify = ActionKind::Verify { verdict: Verdict::Pass, note: "现场核实".into() };
    assert_eq!(worker.store.act(id, me, verify).unwrap(), Mark::Applied);
    worker.sync().await;
    center.sync().await;
    assert_eq!(center.store.act(id, staff, ActionKind::Archive).unwrap(), Mark::Applied);
    center.sync().await;
    for device in [&worker, &police, &urban, &justice] {
        device.sync().await;
    }
    // A department the incident never went to holds nothing: no incident, no register.
    assert!(justice.store.incidents(&IncidentFilter::default(), now()).unwrap().is_empty());
    assert!(justice.store.grids().unwrap().is_empty());
    let archived = center.store.incident(id, now()).unwrap();
    assert_eq!(archived.phase, Phase::Archived);
    assert_eq!(worker.store.incident(id, now()).unwrap(), archived);
    assert_eq!(worker.store.incident_timeline(id).unwrap(), center.store.incident_timeline(id).unwrap());
    // The department that rejected it still holds it (it was dispatched to it), and the other one too.
    assert_eq!(urban.store.incident(id, now()).unwrap().phase, Phase::Archived);
}

fn now() -> chrono::DateTime<chrono::FixedOffset> {
    chrono::Utc::now().with_timezone(&wangge_core::calendar::CHINA_TIME)
}

/// A push the server will always refuse (here: an action claiming the center's role on a
/// worker's device) must not block the device: the document is set aside — its unsynced
/// changes exported to a file — and fetched anew, and sync goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_push_is_set_aside_and_sync_goes_on() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let me = Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None };
    let item = worker.store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
    let id = worker
        .store
        .report_incident(
            NewIncident {
                grid: grid.clone(),
                catalog_item: item,
                title: "井盖缺失".into(),
                description: String::new(),
                location: None,
                residents: vec![],
                households: vec![],
                organizations: vec![],
                photos: vec![],
                reported_by_resident: None,
            },
            me,
        )
        .unwrap();
    worker.sync().await;
    // The worker's device records an acceptance claiming to be the center.
    let pretending = Actor { person: "w1".into(), role: Role::CenterStaff(CenterLevel::Township), department: None };
    assert_eq!(worker.store.act(id, pretending, ActionKind::Accept).unwrap(), Mark::Applied);
    worker.sync().await;
    worker.sync().await;
    assert_eq!(worker.store.pending_changes().unwrap(), 0);
    assert_eq!(worker.store.incident(id, now()).unwrap().phase, Phase::Reported, "the server's version came back");
    let exported = std::fs::read_dir(worker.store.path().parent().unwrap())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .any(|entry| entry.file_name().to_string_lossy().contains(".removed-incident-"));
    assert!(exported, "the refused change was exported");
}

/// Regression: only new action ids were checked, so a worker could rewrite (or delete)
/// the center's dispatch in place. The timeline is append-only.
#[tokio::test(flavor = "multi_thread")]
async fn rewriting_someone_elses_action_is_refused() {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    use wangge_core::crdt::DocId;
    use wangge_core::sync::wire::{DocChanges, SyncRequest};

    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let worker = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    let center = TestDevice::enrolled(&server, &server.worker("c1", "center_staff_township", None, &[&grid])).await;
    let me = Actor { person: "w1".into(), role: Role::FullTimeWorker, department: None };
    let staff = Actor { person: "c1".into(), role: Role::CenterStaff(CenterLevel::Township), department: None };
    let item = worker.store.catalog().items().find(|item| item.admitted).unwrap().code.clone();
    let incident = NewIncident {
        grid: grid.clone(),
        catalog_item: item,
        title: "占道经营".into(),
        description: String::new(),
        location: None,
        residents: vec![],
        households: vec![],
        organizations: vec![],
        photos: vec![],
        reported_by_resident: None,
    };
    let id = worker.store.report_incident(incident, me).unwrap();
    worker.sync().await;
    center.sync().await;
    center.store.act(id, staff.clone(), ActionKind::Accept).unwrap();
    center.store.act(id, staff, ActionKind::Dispatch { lead: dept("public_security"), co_handlers: vec![] }).unwrap();
    center.sync().await;
    worker.sync().await;

    // The worker's device rewrites the dispatch entry, as itself, and pushes it.
    let doc_id = DocId::incident(id);
    let bytes = worker.store.document_bytes(&doc_id).unwrap();
    let actor: Vec<u8> =
        (0..16).map(|i| u8::from_str_radix(&worker.store.device_actor()[2 * i..2 * i + 2], 16).unwrap()).collect();
    let mut doc = automerge::AutoCommit::load(&bytes).unwrap().with_actor(automerge::ActorId::from(actor));
    let heads = doc.get_heads();
    let (_, actions) = doc.get(automerge::ROOT, "actions").unwrap().unwrap();
    let (value, _) = doc.get(&actions, 2).unwrap().unwrap();
    let forged = value.as_str().unwrap().replace("public_security", "justice");
    doc.put(&actions, 2, forged).unwrap();
    doc.commit();
    let changes: Vec<_> =
        doc.get_changes(&heads).into_iter().map(|change| change.raw_bytes().to_vec().into()).collect();
    let request = SyncRequest {
        cursor: 0,
        pushes: vec![DocChanges { doc: doc_id.to_string(), changes }],
        pull_budget: 0,
        received: vec![],
        reset: vec![],
        status: None,
        generations: None,
    };
    let response = server.post_sync(&worker.store.sync_token().unwrap().unwrap(), &request).await;
    assert_eq!(response.status().as_u16(), 403);
    center.sync().await;
    let timeline = center.store.incident_timeline(id).unwrap();
    assert!(timeline[2].to_string().contains("public_security"), "{}", timeline[2]);
}
