//! The operator's status page, in a real browser: headless Chromium loads `/status` from
//! the admin listener of a server with devices in every state, and both what it rendered
//! (the DOM) and what it drew (a screenshot) are checked.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use wangge_core::sync::wire::SyncRequest;
use wangge_tests::{TestDevice, TestServer};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;

/// Runs headless Chromium with these arguments (after the usual ones for a closed
/// network) and returns what it printed on stdout.
fn chromium(profile: &Path, args: &[String]) -> String {
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("chromium could not run ({error}): scripts/setup-chromium installs it"));
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The screenshot's pixels as RGB triples, with its size.
fn pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = info.color_type.samples();
    let rgb = buffer[..info.buffer_size()].chunks(channels).map(|pixel| [pixel[0], pixel[1], pixel[2]]).collect();
    (info.width, info.height, rgb)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_shows_devices_lag_and_refusals_in_a_browser() {
    let server = TestServer::start().await;
    let grid = server.grid("440703001001001", "长堤社区第1网格");
    let synced = TestDevice::enrolled(&server, &server.worker("w1", "full_time_worker", None, &[&grid])).await;
    synced.sync().await;
    let quiet = TestDevice::enrolled(&server, &server.worker("w2", "part_time_worker", None, &[&grid])).await;
    let lost = TestDevice::enrolled(&server, &server.worker("w3", "grid_leader", None, &[&grid])).await;
    server.service.revoke(&lost.store.device_id().unwrap().unwrap()).unwrap();
    for _ in 0..2 {
        assert_eq!(server.post_sync("not-a-token", &SyncRequest::default()).await.status().as_u16(), 401);
    }
    let url = format!("{}/status", server.admin_url);
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    let shot = dir.path().join("status.png");

    let (dom, ()) = tokio::task::spawn_blocking({
        let (profile, shot, url) = (profile.clone(), shot.clone(), url.clone());
        move || {
            let dom = chromium(&profile, &["--dump-dom".into(), url.clone()]);
            chromium(
                &profile,
                &[format!("--window-size={WIDTH},{HEIGHT}"), format!("--screenshot={}", shot.display()), url],
            );
            (dom, ())
        }
    })
    .await
    .unwrap();

    // What it rendered: every device, its state and lag, the tiles, the refusals.
    let row_of = |device: &TestDevice| {
        let id = device.store.device_id().unwrap().unwrap();
        dom.lines().find(|line| line.contains(&format!("<td>{id}</td>"))).unwrap_or_default().to_owned()
    };
    let recent_row = row_of(&synced);
    assert!(
        recent_row.contains("<td>active</td><td>just now</td>")
            || recent_row.contains("<td>active</td><td>1 min ago</td>"),
        "{recent_row}"
    );
    assert!(row_of(&quiet).contains("<td>part_time_worker</td><td>active</td><td>never</td>"), "{}", row_of(&quiet));
    assert!(row_of(&lost).contains("<td>revoked</td>"), "{}", row_of(&lost));
    assert!(dom.contains("<b>2</b>active devices"), "{dom}");
    assert!(dom.contains("<div class=\"tile warn\"><b>1</b>no sync for 24 h</div>"), "the one never synced: {dom}");
    assert!(dom.contains("<tr><td>unauthorized</td><td class=\"n\">2</td></tr>"), "{dom}");
    assert!(dom.contains("<div class=\"tile\"><b>0</b>incidents overdue</div>"), "{dom}");
    let never = dom.find(&format!("<td>{}</td>", quiet.store.device_id().unwrap().unwrap())).unwrap();
    let recent = dom.find(&format!("<td>{}</td>", synced.store.device_id().unwrap().unwrap())).unwrap();
    assert!(never < recent, "the device that never synced comes first");

    // What it drew: the whole window, mostly white page with dark text, and the warning
    // tile's red figure (the stylesheet applied).
    let (width, height, rgb) = pixels(&shot);
    assert_eq!((width, height), (WIDTH, HEIGHT));
    let dark = rgb.iter().filter(|[r, g, b]| u32::from(*r) + u32::from(*g) + u32::from(*b) < 200).count();
    let white = rgb.iter().filter(|[r, g, b]| *r > 245 && *g > 245 && *b > 245).count();
    let red = rgb.iter().filter(|[r, g, b]| *r > 150 && *g < 80 && *b < 80).count();
    let all = rgb.len();
    assert!(white > all / 2, "a light page: {white} of {all} pixels white");
    assert!(dark > 2_000, "text was drawn: {dark} dark pixels");
    assert!(red > 20, "the warning figure is red: {red} red pixels");
}
