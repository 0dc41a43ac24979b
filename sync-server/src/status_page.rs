//! The operator's status page (`GET /status` on the admin listener): server-rendered
//! HTML, no script, every value escaped. Devices by state and how long since each last
//! synced (the longest first: those are the ones to call), what waits on them, their
//! versions; incidents due soon and overdue; refusals and server errors since the node
//! started; the change log's length.
//!
//! It names devices and workers by id, never residents; it is served only on the admin
//! listener (loopback by default), never through the public proxy.

use std::fmt::Write;

use html_escape::encode_text as text;

use crate::service::{IncidentsDue, Service, ServiceError};
use crate::storage::{Device, Storage};

/// The figures the page shows, read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub now_ms: i64,
    pub version: &'static str,
    pub logged_changes: i64,
    /// Each device with its worker's role (`-` when the worker is gone).
    pub devices: Vec<(Device, String)>,
    /// Refusals since this node started, by protocol code.
    pub refusals: Vec<(&'static str, u64)>,
    /// Answers with a 5xx status since this node started.
    pub server_errors: u64,
    pub incidents: IncidentsDue,
}

/// How many devices the table lists (the longest without a sync first).
const LISTED: usize = 200;
const DAY_MS: i64 = 24 * 3600 * 1000;

impl Status {
    pub fn read<S: Storage>(
        service: &Service<S>,
        now_ms: i64,
        refusals: Vec<(&'static str, u64)>,
        server_errors: u64,
    ) -> Result<Self, ServiceError> {
        let storage = service.storage();
        let mut devices = Vec::new();
        for device in storage.devices()? {
            let role = storage.worker(&device.person)?.map_or_else(|| "-".to_owned(), |worker| worker.role);
            devices.push((device, role));
        }
        Ok(Self {
            now_ms,
            version: env!("CARGO_PKG_VERSION"),
            logged_changes: storage.max_seq()?,
            devices,
            refusals,
            server_errors,
            incidents: service.incidents_due()?,
        })
    }

    fn state(&self, device: &Device) -> &'static str {
        if device.revoked {
            "revoked"
        } else if device.token_expires_ms.is_some_and(|expires| expires <= self.now_ms) {
            "expired"
        } else {
            "active"
        }
    }

    /// Milliseconds since the device's last sync; `None`: never synced.
    fn lag_ms(&self, device: &Device) -> Option<i64> {
        device.last_sync.as_ref().map(|sync| (self.now_ms - sync.at_ms).max(0))
    }
}

const STYLE: &str = "\
body{margin:1.5rem;font:14px/1.5 system-ui,sans-serif;color:#1b1b1b}\
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}\
.note{color:#555;margin:0}\
.tiles{display:flex;flex-wrap:wrap;gap:.6rem;margin-top:.8rem}\
.tile{border:1px solid #ccc;border-radius:6px;padding:.5rem .9rem;min-width:8rem}\
.tile b{display:block;font-size:1.5rem}\
.warn b{color:#b3261e}\
table{border-collapse:collapse}th,td{border-bottom:1px solid #ddd;padding:.25rem .7rem;text-align:left}\
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}";

/// "40 min ago", "3 h ago", "2 d ago": how long ago, roughly.
fn ago(ms: i64) -> String {
    let minutes = ms / 60_000;
    match minutes {
        0 => "just now".to_owned(),
        1..=119 => format!("{minutes} min ago"),
        120..=2879 => format!("{} h ago", minutes / 60),
        _ => format!("{} d ago", minutes / 1440),
    }
}

/// The whole page.
pub fn page(status: &Status) -> String {
    let mut page = String::with_capacity(16 * 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>wangge-server status</title><style>{STYLE}</style></head><body>\n"
    );
    let generated = chrono::DateTime::from_timestamp_millis(status.now_ms)
        .map_or_else(String::new, |at| at.format("%Y-%m-%d %H:%M UTC").to_string());
    let _ = writeln!(
        page,
        "<h1>wangge-server {}</h1><p class=\"note\">{} · {} changes in the log</p>",
        text(status.version),
        text(&generated),
        status.logged_changes
    );

    let count = |keep: &dyn Fn(&Device) -> bool| status.devices.iter().filter(|(device, _)| keep(device)).count();
    let active = count(&|device| status.state(device) == "active");
    let behind_day =
        count(&|device| status.state(device) == "active" && status.lag_ms(device).is_none_or(|lag| lag > DAY_MS));
    let behind_week =
        count(&|device| status.state(device) == "active" && status.lag_ms(device).is_none_or(|lag| lag > 7 * DAY_MS));
    let waiting: i64 =
        status.devices.iter().filter_map(|(device, _)| device.last_sync.as_ref().map(|sync| sync.pending)).sum();
    let refused: u64 = status.refusals.iter().map(|(_, n)| n).sum();
    page.push_str("<div class=\"tiles\">\n");
    let mut tile = |label: &str, value: String, warn: bool| {
        let class = if warn { "tile warn" } else { "tile" };
        let _ = writeln!(page, "<div class=\"{class}\"><b>{}</b>{}</div>", text(&value), text(label));
    };
    tile("active devices", active.to_string(), false);
    tile("no sync for 24 h", behind_day.to_string(), behind_day > 0);
    tile("no sync for 7 days", behind_week.to_string(), behind_week > 0);
    tile("edits waiting on devices", waiting.to_string(), waiting > 0);
    tile("incidents due within a working day", status.incidents.soon.to_string(), false);
    tile("incidents overdue", status.incidents.overdue.to_string(), status.incidents.overdue > 0);
    tile("refused requests", refused.to_string(), false);
    tile("server errors", status.server_errors.to_string(), status.server_errors > 0);
    page.push_str("</div>\n");

    page.push_str("<h2>Devices, longest without a sync first</h2>\n");
    let mut devices: Vec<&(Device, String)> = status.devices.iter().collect();
    devices.sort_by_key(|(device, _)| {
        (status.state(device) != "active", std::cmp::Reverse(status.lag_ms(device).unwrap_or(i64::MAX)))
    });
    page.push_str(
        "<table><thead><tr><th>device</th><th>worker</th><th>role</th><th>state</th><th>last sync</th>\
         <th>waiting</th><th>version</th></tr></thead><tbody>\n",
    );
    for (device, role) in devices.iter().take(LISTED) {
        let (synced, pending, version) = match &device.last_sync {
            Some(sync) => (ago(status.lag_ms(device).unwrap_or(0)), sync.pending.to_string(), sync.version.as_str()),
            None => ("never".to_owned(), "-".to_owned(), "-"),
        };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            text(&device.id),
            text(&device.person),
            text(role),
            status.state(device),
            text(&synced),
            text(&pending),
            text(version),
        );
    }
    page.push_str("</tbody></table>\n");
    if devices.len() > LISTED {
        let _ = writeln!(
            page,
            "<p class=\"note\">and {} more (`wangge-server devices` lists all)</p>",
            devices.len() - LISTED
        );
    }

    page.push_str("<h2>Refusals since this node started</h2>\n");
    if status.refusals.is_empty() {
        page.push_str("<p class=\"note\">none</p>\n");
    } else {
        page.push_str("<table><thead><tr><th>code</th><th>requests</th></tr></thead><tbody>\n");
        for (code, n) in &status.refusals {
            let _ = writeln!(page, "<tr><td>{}</td><td class=\"n\">{n}</td></tr>", text(code));
        }
        page.push_str("</tbody></table>\n");
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::SyncReport;

    fn device(id: &str, revoked: bool, last_sync_ms: Option<i64>) -> Device {
        Device {
            id: id.into(),
            person: format!("<{id}>"),
            actor: vec![0; 16],
            revoked,
            token_expires_ms: Some(10 * DAY_MS),
            last_sync: last_sync_ms.map(|at_ms| SyncReport { at_ms, version: "0.1.0".into(), pending: 2 }),
            last_seen_ms: None,
        }
    }

    #[test]
    fn devices_are_listed_longest_without_a_sync_first_and_values_are_escaped() {
        let now = 9 * DAY_MS;
        let status = Status {
            now_ms: now,
            version: "0.1.0",
            logged_changes: 42,
            devices: vec![
                (device("recent", false, Some(now - 5 * 60_000)), "full_time_worker".into()),
                (device("gone", true, None), "part_time_worker".into()),
                (device("stale", false, Some(now - 8 * DAY_MS)), "part_time_worker".into()),
            ],
            refusals: vec![("unauthorized", 3)],
            server_errors: 0,
            incidents: IncidentsDue { soon: 1, overdue: 2 },
        };
        let html = page(&status);
        let stale = html.find("<td>stale</td>").unwrap_or(usize::MAX);
        let recent = html.find("<td>recent</td>").unwrap_or(usize::MAX);
        let gone = html.find("<td>gone</td>").unwrap_or(usize::MAX);
        assert!(stale < recent && recent < gone, "{html}");
        assert!(html.contains("<td>8 d ago</td>") && html.contains("<td>5 min ago</td>"));
        assert!(html.contains("&lt;stale&gt;") && !html.contains("<stale>"), "escaped");
        assert!(html.contains("<div class=\"tile warn\"><b>1</b>no sync for 7 days</div>"), "{html}");
        assert!(html.contains("<div class=\"tile warn\"><b>4</b>edits waiting on devices</div>"));
        assert!(html.contains("<tr><td>unauthorized</td><td class=\"n\">3</td></tr>"));
        assert!(html.contains("<div class=\"tile warn\"><b>2</b>incidents overdue</div>"), "{html}");
    }
}
