//! The public grid card: the page a notice board's QR code points at shows exactly what
//! the regulations post (name, kind, area, grid leader and workers with their phones,
//! supervision phone) and nothing else, and every device holds the same card.

use std::collections::BTreeSet;

use wangge_core::model::{GridCode, NewResident, PersonName, Phone, Relation, ResidenceType};
use wangge_core::reference;
use wangge_tests::{TestDevice, TestServer};

const GRID: &str = "440703001001001";
const SUPERVISION_PHONE: &str = "0750-3123456";
/// About 1.03 km by 1.11 km at Jiangmen.
const BOUNDARY: &str = r#"{"type":"Polygon","coordinates":[[[113.08,22.58],[113.09,22.58],[113.09,22.59],[113.08,22.59],[113.08,22.58]]]}"#;

/// The grid of the issue: a supervision phone, a boundary, a leader and two workers with
/// names and phones, a worker without a name, a department handler (with a name and
/// phone: not grid staff), and a resident with a name and phone on a device, synced.
/// Returns the leader's device.
async fn published_grid(server: &TestServer) -> (GridCode, TestDevice) {
    let grid = server.grid(GRID, "长堤社区第1网格");
    server.service.set_supervision_phone(&grid, Some(SUPERVISION_PHONE)).unwrap();
    // The boundary as the boundary import writes it: into the grid's metadata.
    server
        .service
        .update_reference(|doc| {
            let mut meta = reference::grid(doc, GRID)?.unwrap();
            meta.boundary = Some(BOUNDARY.into());
            reference::set_grid(doc, GRID, &meta)
        })
        .unwrap();
    let staff = [
        ("person-leader-7f3a", "grid_leader", None, Some("李建国"), Some("13800000001")),
        ("person-full-81c2", "full_time_worker", None, Some("陈秀兰"), Some("138-0000-0002")),
        ("person-part-93d4", "part_time_worker", None, Some("王<b>明"), Some("(0750) 322 2333")),
        ("person-unnamed-a5e6", "part_time_worker", None, None, Some("13800000004")),
        ("person-handler-b7f8", "department_handler", Some("public_security"), Some("周承办"), Some("13800000005")),
    ];
    let mut leader_code = String::new();
    for (person, role, department, name, phone) in staff {
        let grids: &[&GridCode] = if department.is_some() { &[] } else { &[&grid] };
        let code = server.worker(person, role, department, grids);
        server.service.set_worker_contact(person, name, phone).unwrap();
        if role == "grid_leader" {
            leader_code = code;
        }
    }
    let device = TestDevice::enrolled(server, &leader_code).await;
    device.sync().await;
    device
        .store
        .add_resident(
            &grid,
            NewResident {
                household: None,
                name: PersonName::parse("黄丽珍").unwrap(),
                id_number: None,
                phone: Some(Phone::parse("13900000009").unwrap()),
                gender: None,
                birth_date: None,
                relation: Relation::Head,
                residence_type: ResidenceType::Registered,
                tags: BTreeSet::new(),
            },
        )
        .unwrap();
    device.sync().await;
    assert_eq!(device.store.pending_changes().unwrap(), 0, "the resident is on the server");
    (grid, device)
}

async fn get(server: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    // No token: the page is public.
    let response = reqwest::get(format!("{}{path}", server.url)).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// The page's text as a reader sees it, one entry per text run between tags (the
/// stylesheet and the title left out), entities as they are written.
fn texts(page: &str) -> Vec<String> {
    let body = &page[page.find("<body>").unwrap()..];
    body.split('<')
        .filter_map(|part| part.split_once('>').map(|(_, text)| text.trim()))
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every link on the page.
fn links(page: &str) -> Vec<&str> {
    page.split("href=\"").skip(1).filter_map(|part| part.split('"').next()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_public_page_shows_exactly_the_published_fields_and_no_other_personal_data() {
    let server = TestServer::start().await;
    let (grid, _device) = published_grid(&server).await;

    let (status, headers, page) = get(&server, &format!("/public/grids/{grid}")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"zh-CN\">"));
    assert!(page.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));

    assert_eq!(
        texts(&page),
        [
            "网格公示",
            "长堤社区第1网格",
            "城市社区网格 · 网格编码 440703001001001",
            "区域范围",
            "面积约 1.14 平方千米",
            "网格长",
            "李建国",
            "网格长",
            "13800000001",
            "网格员",
            "陈秀兰",
            "专职网格员",
            "13800000002",
            "王&lt;b&gt;明",
            "兼职网格员",
            "0750-3222333",
            "监督电话",
            "0750-3123456",
            "网格名称、区域范围、网格员姓名及联系方式、监督电话依规公示；内容变更时及时更新。",
        ]
    );
    assert_eq!(links(&page), ["tel:13800000001", "tel:13800000002", "tel:07503222333", "tel:07503123456"]);
    assert!(page.contains("<svg ") && page.contains("<path d=\"M"), "the boundary is drawn");
    for absent in [
        "person-",     // person ids
        "13800000004", // the worker without a name
        "周承办",      // the department handler
        "13800000005",
        "黄丽珍", // the resident
        "13900000009",
        "<b>",
        "<script",
        "http",
    ] {
        assert!(!page.contains(absent), "{absent} is on the page");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_holds_the_card_the_server_published_and_follows_its_changes() {
    let server = TestServer::start().await;
    let (grid, leader) = published_grid(&server).await;
    let published = server.service.grid_card(GRID).unwrap();
    assert_eq!(leader.store.grid_card(&grid).unwrap(), published);
    assert!((published.area_m2.unwrap() - 1_138_000.0).abs() < 5_000.0);

    // A part-time worker's device, which holds no sensitive data, has the same card.
    let part_time =
        TestDevice::enrolled(&server, &server.service.issue_enrollment_code("person-part-93d4").unwrap()).await;
    part_time.sync().await;
    assert_eq!(part_time.store.grid_card(&grid).unwrap(), published);

    // A changed phone is republished: on the page at once, on the devices at their next sync.
    server.service.set_worker_contact("person-full-81c2", Some("陈秀兰"), Some("13800000012")).unwrap();
    let (_, _, page) = get(&server, &format!("/public/grids/{grid}")).await;
    assert!(page.contains("13800000012") && !page.contains("13800000002"));
    leader.sync().await;
    let card = leader.store.grid_card(&grid).unwrap();
    assert_eq!(card, server.service.grid_card(GRID).unwrap());
    assert_eq!(card.workers[0].phone.as_deref(), Some("13800000012"));

    // A grid the server does not know is not on the device either.
    let unknown = GridCode::parse_default("440703001001099").unwrap();
    assert!(matches!(leader.store.grid_card(&unknown), Err(wangge_core::Error::UnknownGrid { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_grid_or_a_malformed_code_is_a_short_404_page() {
    let server = TestServer::start().await;
    server.grid(GRID, "长堤社区第1网格");
    for path in
        ["/public/grids/440703001001099", "/public/grids/not-a-code", "/public/grids/%3Cscript%3E", "/public/grids/%FF"]
    {
        let (status, headers, page) = get(&server, path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(headers["content-type"], "text/html; charset=utf-8", "{path}");
        assert!(page.contains("<html lang=\"zh-CN\">") && page.contains("未找到该网格"), "{path}");
        assert!(!page.contains("<script") && !page.contains("not-a-code"), "{path}: the request is not echoed");
    }
}
