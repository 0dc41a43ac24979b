//! `wangge-server`: run the sync server and administer it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wangge_core::model::GridCode;
use wangge_server::{Service, Storage, Worker};

#[derive(Debug, Parser)]
#[command(name = "wangge-server", version, about = "The wangge sync server")]
struct Cli {
    /// A TOML config file (keys `database`, `listen`, `admin_listen`, `log_format`,
    /// `incident_retention_days`); flags and environment override it.
    /// Env: WANGGE_CONFIG. Default: `wangge-server.toml` when it exists.
    #[arg(long, env = "WANGGE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The server's database: the path of a SQLite file, or a PostgreSQL URL
    /// (`postgres://user@host:5432/wangge`) that several server nodes may share.
    /// Env: WANGGE_DB. Default: wangge-server.db.
    #[arg(long = "database", visible_alias = "db", env = "WANGGE_DB", global = true)]
    database: Option<String>,
    /// The log's lines: text or json. Env: WANGGE_LOG_FORMAT. The level is WANGGE_LOG
    /// (error, warn, info, debug; default info).
    #[arg(long, env = "WANGGE_LOG_FORMAT", global = true)]
    log_format: Option<wangge_server::logging::LogFormat>,
    /// How many days an archived incident stays on devices after it was archived (the server
    /// keeps it). Env: WANGGE_INCIDENT_RETENTION_DAYS. Default: 90.
    #[arg(long, env = "WANGGE_INCIDENT_RETENTION_DAYS", global = true)]
    incident_retention_days: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

/// The config file: every key optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(alias = "db")]
    database: Option<String>,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    log_format: Option<wangge_server::logging::LogFormat>,
    incident_retention_days: Option<u32>,
}

impl Config {
    fn load(path: Option<&PathBuf>) -> Result<Config, Box<dyn std::error::Error>> {
        let default = PathBuf::from("wangge-server.toml");
        let path = match path {
            Some(path) => path.clone(),
            None if default.exists() => default,
            None => return Ok(Config::default()),
        };
        let text = std::fs::read_to_string(&path).map_err(|error| format!("config {}: {error}", path.display()))?;
        Ok(toml::from_str(&text).map_err(|error| format!("config {}: {error}", path.display()))?)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve sync protocol v1 until interrupted (Ctrl-C: finishes requests in flight).
    Serve {
        /// Env: WANGGE_LISTEN. Default: 127.0.0.1:7878.
        #[arg(long, env = "WANGGE_LISTEN")]
        listen: Option<SocketAddr>,
        /// The operator's listener: `/status` (a page of devices, sync lag, refusals) and
        /// `/metrics` (Prometheus). Keep it off the public network. Env: WANGGE_ADMIN_LISTEN.
        /// Default: 127.0.0.1:7879 with the default --listen; with another --listen, any
        /// free loopback port (printed at start).
        #[arg(long, env = "WANGGE_ADMIN_LISTEN")]
        admin_listen: Option<SocketAddr>,
    },
    /// Create (or update) a grid with its documents.
    AddGrid {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "community")]
        kind: String,
        /// The supervision phone (监督电话) posted on the grid's public card: a mainland
        /// number or a 12xxx service line. Empty: none. Omitted: unchanged.
        #[arg(long)]
        supervision_phone: Option<String>,
    },
    /// Create (or update) a worker and print a one-time enrollment code for a device.
    AddWorker {
        #[arg(long)]
        person: String,
        /// A role code: part_time_worker, full_time_worker, grid_leader, professional_worker,
        /// center_staff_city|county|township, department_handler.
        #[arg(long)]
        role: String,
        #[arg(long)]
        department: Option<String>,
        #[arg(long = "grid")]
        grids: Vec<String>,
        /// The name posted on the public card of the worker's grids (grid leaders, full-time,
        /// part-time and professional workers; a worker without one is not posted).
        /// Empty: none. Omitted: unchanged.
        #[arg(long)]
        name: Option<String>,
        /// The work phone posted with the name. Empty: none. Omitted: unchanged.
        #[arg(long)]
        phone: Option<String>,
        #[command(flatten)]
        enrollment: EnrollmentOutput,
    },
    /// Print a new one-time enrollment code for an existing worker (a new or replaced
    /// device, or one whose token expired).
    EnrollCode {
        #[arg(long)]
        person: String,
        #[command(flatten)]
        enrollment: EnrollmentOutput,
    },
    /// List devices, one a line: id, person, role, state (active, expired, revoked), last
    /// sync (UTC), edits waiting on the device at its last sync, wangge-core version.
    Devices {
        /// Only this worker's devices.
        #[arg(long)]
        worker: Option<String>,
    },
    /// Copy the SQLite database, consistent, into a new file while the server runs (for
    /// PostgreSQL use pg_dump: see the README).
    Backup {
        #[arg(long)]
        to: PathBuf,
    },
    /// Replace the SQLite database by a backup (stop the server first); the log's numbering
    /// moves past the backup's so that no device skips a change.
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
    /// Import grid boundaries from a GeoJSON FeatureCollection (one feature per grid:
    /// properties `code`, `name`, `kind`; a Polygon or MultiPolygon in WGS-84), creating or
    /// updating each grid and publishing its boundary to every device. Overlaps and gaps
    /// are printed with their areas, and a file with any is refused unless --accept-issues.
    ImportGrids {
        #[arg(long)]
        file: PathBuf,
        /// Import even if grids overlap or leave gaps (each is printed).
        #[arg(long)]
        accept_issues: bool,
    },
    /// Print the boundaries of every grid that has one, as a GeoJSON FeatureCollection (the
    /// format import-grids reads).
    ExportGrids,
    /// Publish a matter catalog (its JSON file) to every device.
    SetCatalog {
        #[arg(long)]
        file: PathBuf,
    },
    /// Publish a working-day calendar (its JSON file, e.g. with a newly published year).
    SetCalendar {
        #[arg(long)]
        file: PathBuf,
    },
    /// The demo: a server with a demo city, devices of every role syncing with it.
    Demo {
        /// Where the server's and the devices' files go (emptied first).
        #[arg(long, default_value = "target/demo")]
        dir: PathBuf,
    },
    /// Issue a center token for a center staff member: the Bearer token of the center API
    /// (`/v1/center/…`), acting as that person in their areas. Printed once; the server keeps
    /// its hash. Revoke it with `revoke --device <the console id printed with it>`.
    CenterToken {
        #[arg(long)]
        person: String,
    },
    /// Revoke a device: its next request is refused and told to wipe.
    Revoke {
        #[arg(long)]
        device: String,
    },
    /// Verify every stored change: it decodes, matches its hash, has an enrolled author and
    /// is in its document. Exits with an error when anything was altered.
    VerifyLog,
    /// Compact a grid's register and sensitive documents: each becomes a new generation with
    /// the same content and none of its history (kept in the log). Devices move to it at
    /// their next sync, their unsynced edits replayed onto it.
    Compact {
        #[arg(long)]
        grid: String,
    },
    /// Recompute the scopes of every incident on devices: incidents archived before this
    /// server version kept retention leave devices once past it. Run once after upgrading;
    /// the server does the rest hourly.
    RetireIncidents,
    /// Print the audit trail (one change a line: seq, device time, server receive time,
    /// device, person, document, hash) of a grid, of a worker, or of one record of a grid.
    Audit {
        #[arg(long, conflicts_with = "worker", required_unless_present = "worker")]
        grid: Option<String>,
        #[arg(long)]
        worker: Option<String>,
        /// With --grid: only the changes of this record (an incident, a resident, a
        /// household, a building, …), by its id.
        #[arg(long, requires = "grid")]
        record: Option<String>,
    },
}

/// How an enrollment code is handed over.
#[derive(Debug, clap::Args)]
struct EnrollmentOutput {
    /// The sync server's address as devices reach it (`https://…`): then the enrollment
    /// link (`wangge:enroll?server=…&code=…`) is printed too, for a QR code.
    #[arg(long, env = "WANGGE_PUBLIC_URL")]
    server_url: Option<String>,
    /// Write the enrollment link's QR code to this PNG file (needs --server-url).
    #[arg(long, requires = "server_url")]
    qr: Option<PathBuf>,
}

impl EnrollmentOutput {
    /// Prints a new code for `person` (and its link), and writes the QR code if asked.
    fn issue(&self, service: &Service<Box<dyn Storage>>, person: &str) -> Result<(), Box<dyn std::error::Error>> {
        let code = service.issue_enrollment_code(person)?;
        println!("enrollment code for {person}: {code}");
        if let Some(server) = &self.server_url {
            let link = wangge_core::sync::link::enrollment_link(server, &code);
            println!("enrollment link: {link}");
            if let Some(path) = &self.qr {
                std::fs::write(path, wangge_server::qr::png(&link)?)
                    .map_err(|error| format!("{}: {error}", path.display()))?;
                println!("QR code written to {}", path.display());
            }
        }
        Ok(())
    }
}

/// One device a line (see `Command::Devices`).
fn print_devices(service: &Service<Box<dyn Storage>>, worker: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
    let now = wangge_server::service::now_ms();
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map_or_else(|| "-".to_owned(), |at| at.format("%Y-%m-%dT%H:%MZ").to_string())
    };
    let mut out = std::io::stdout().lock();
    for device in service.storage().devices()? {
        if worker.is_some_and(|worker| worker != device.person) {
            continue;
        }
        let role = service.storage().worker(&device.person)?.map_or_else(|| "-".to_owned(), |worker| worker.role);
        let state = if device.revoked {
            "revoked"
        } else if device.token_expires_ms.is_some_and(|expires| expires <= now) {
            "expired"
        } else {
            "active"
        };
        let (synced, pending, version) = match &device.last_sync {
            Some(sync) => (time(sync.at_ms), sync.pending.to_string(), sync.version.as_str()),
            None => ("never".to_owned(), "-".to_owned(), "-"),
        };
        let line = format!("{}\t{}\t{role}\t{state}\t{synced}\t{pending}\t{version}\n", device.id, device.person);
        if std::io::Write::write_all(&mut out, line.as_bytes()).is_err() {
            break;
        }
    }
    Ok(())
}

/// Ctrl-C or SIGTERM (what a service manager or container runtime sends).
async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wangge-server: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    if let Command::Demo { dir } = &cli.command {
        // The demo tells its own story; the request log only when asked for (WANGGE_LOG).
        wangge_server::logging::init(cli.log_format.unwrap_or_default(), wangge_server::logging::LevelFilter::WARN);
        return wangge_server::demo::run(dir);
    }
    let config = Config::load(cli.config.as_ref())?;
    let log_format = cli.log_format.or(config.log_format).unwrap_or_default();
    wangge_server::logging::init(log_format, wangge_server::logging::LevelFilter::INFO);
    let database = cli.database.or(config.database).unwrap_or_else(|| "wangge-server.db".to_owned());
    if let Command::Backup { to } | Command::Restore { from: to } = &cli.command {
        if wangge_server::storage::is_postgres_url(&database) {
            return Err(
                "on PostgreSQL, back up with pg_dump and restore with pg_restore (README: backup and restore)".into()
            );
        }
        let storage = wangge_server::SqliteStorage::open(std::path::Path::new(&database))?;
        if matches!(cli.command, Command::Backup { .. }) {
            storage.backup_to(to)?;
            println!("backed up to {}", to.display());
        } else {
            storage.restore_from(to)?;
            println!(
                "restored from {}; the log continues {} past the backup",
                to.display(),
                wangge_server::storage::RESTORE_SEQ_GAP
            );
        }
        return Ok(());
    }
    let retention_days = cli.incident_retention_days.or(config.incident_retention_days).unwrap_or(90);
    let service = Service::new(wangge_server::storage::open(&database)?)
        .with_incident_retention_ms(i64::from(retention_days) * 24 * 3600 * 1000);
    match cli.command {
        Command::Serve { listen, admin_listen } => {
            let default_listen = SocketAddr::from(([127, 0, 0, 1], 7878));
            let listen = listen.or(config.listen).unwrap_or(default_listen);
            // Beside the default address, the next port; beside another, any free loopback
            // port (printed): two servers on one host never collide by default.
            let default_admin = if listen == default_listen { 7879 } else { 0 };
            let admin_listen = admin_listen
                .or(config.admin_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], default_admin)));
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let (listener, addr) = wangge_server::bind(listen).await?;
                let (admin, admin_addr) = wangge_server::bind(admin_listen).await?;
                println!(
                    "wangge-server: serving sync protocol v1 on http://{addr} (database {})",
                    without_password(&database)
                );
                println!("wangge-server: status and metrics on http://{admin_addr}");
                wangge_server::serve_with_admin(listener, Some(admin), service, stop_signal()).await
            })?;
        }
        Command::AddGrid { code, name, kind, supervision_phone } => {
            let code = GridCode::parse_default(&code)?;
            // Checked before anything changes.
            if let Some(phone) = supervision_phone.as_deref().and_then(non_empty) {
                wangge_core::card::parse_supervision_phone(phone)?;
            }
            service.create_grid(&code, &name, &kind)?;
            if let Some(phone) = supervision_phone {
                service.set_supervision_phone(&code, non_empty(&phone))?;
            }
            println!("grid {code} ready");
        }
        Command::AddWorker { person, role, department, grids, name, phone, enrollment } => {
            // Checked before anything changes.
            Service::<Box<dyn Storage>>::check_worker_contact(
                name.as_deref().and_then(non_empty),
                phone.as_deref().and_then(non_empty),
            )?;
            service.create_worker(&Worker { person: person.clone(), role, department, grids })?;
            if name.is_some() || phone.is_some() {
                let current = service.storage().worker_contact(&person)?.unwrap_or_default();
                let name = name.as_deref().map_or(current.name.as_deref(), non_empty);
                let phone = phone.as_deref().map_or(current.phone.as_deref(), non_empty);
                service.set_worker_contact(&person, name, phone)?;
            }
            enrollment.issue(&service, &person)?;
        }
        Command::EnrollCode { person, enrollment } => enrollment.issue(&service, &person)?,
        Command::Devices { worker } => print_devices(&service, worker.as_deref())?,
        Command::Backup { .. } | Command::Restore { .. } => unreachable!("handled before the service is opened"),
        Command::ImportGrids { file, accept_issues } => {
            let text = std::fs::read_to_string(&file).map_err(|error| format!("{}: {error}", file.display()))?;
            import_grids(&service, &text, accept_issues)?;
        }
        Command::ExportGrids => print!("{}", export_grids(&service)?),
        Command::SetCatalog { file } => {
            let catalog = wangge_core::incident::catalog::Catalog::from_json(&std::fs::read_to_string(file)?)?;
            service.set_catalog(&catalog)?;
            println!("catalog {} version {} published", catalog.name(), catalog.version());
        }
        Command::SetCalendar { file } => {
            service.set_calendar(&std::fs::read_to_string(file)?)?;
            println!("calendar published");
        }
        Command::Demo { .. } => {}
        Command::CenterToken { person } => {
            let issued = service.issue_center_token(&person)?;
            println!("center token for {person} (console {}): {}", issued.device, issued.token);
        }
        Command::Revoke { device } => {
            let revoked = service.revoke(&device)?;
            println!("{}", if revoked { "revoked" } else { "no such device" });
        }
        Command::Compact { grid } => {
            let code = GridCode::parse_default(&grid)?;
            for doc in service.compact_grid(&code)? {
                println!(
                    "{}: generation {}, {} change(s) of history, snapshot {} → {} bytes{}",
                    doc.doc,
                    doc.generation,
                    doc.n_changes_before,
                    doc.bytes_before,
                    doc.bytes_after,
                    match doc.n_conflicts {
                        0 => String::new(),
                        n => format!(", {n} field(s) with concurrent values kept"),
                    }
                );
            }
        }
        Command::RetireIncidents => {
            println!("{} archived incident(s) rescoped", service.rescope_all_incidents()?);
        }
        Command::VerifyLog => {
            let check = service.verify_log()?;
            for problem in &check.problems {
                println!("{problem}");
            }
            println!("{} change(s) verified, {} problem(s)", check.n_changes, check.problems.len());
            if !check.problems.is_empty() {
                return Err("the change log was altered".into());
            }
        }
        Command::Audit { grid, worker, record } => {
            let filter = match (grid, worker, record) {
                (Some(grid), _, Some(id)) => wangge_server::service::AuditFilter::Record { grid, id },
                (Some(grid), _, None) => wangge_server::service::AuditFilter::Grid(grid),
                (None, Some(worker), _) => wangge_server::service::AuditFilter::Worker(worker),
                (None, None, _) => return Err("--grid or --worker".into()),
            };
            // Written, not printed: a reader that stops early (`| head`) ends the output.
            let mut out = std::io::stdout().lock();
            for line in service.audit_trail(&filter)? {
                let (seq, time, device, person, doc, hash) =
                    (line.seq, line.time_ms, line.device, line.person, line.doc, line.hash);
                let received = line.received_ms.map_or_else(|| "-".to_owned(), |ms| ms.to_string());
                if std::io::Write::write_fmt(
                    &mut out,
                    format_args!("{seq}\t{time}\t{received}\t{device}\t{person}\t{doc}\t{hash}\n"),
                )
                .is_err()
                {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// The database as it may be printed: a PostgreSQL URL's password masked.
fn without_password(database: &str) -> String {
    let Some((scheme, rest)) = database.split_once("://") else { return database.to_owned() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(authority, path)| (authority, Some(path)));
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:…@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    match path {
        Some(path) => format!("{scheme}://{authority}/{path}"),
        None => format!("{scheme}://{authority}"),
    }
}

/// A flag's value, where an empty one means "none".
fn non_empty(value: &str) -> Option<&str> {
    Some(value).filter(|value| !value.trim().is_empty())
}

/// Imports a boundary file, printing each grid and each partition issue with its area.
fn import_grids<S: Storage>(
    service: &Service<S>,
    geojson: &str,
    accept_issues: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let report = service.import_boundaries(geojson, accept_issues)?;
    for grid in &report.grids {
        let status = if grid.new { "new" } else { "updated" };
        println!("grid {} {} ({}), {:.0} m², {status}", grid.code, grid.name, grid.kind.code(), grid.area_m2);
    }
    for issue in &report.issues {
        println!("issue: {issue}");
    }
    if !report.written {
        return Err(format!(
            "{} partition issue(s): nothing imported. Correct the file, or import it as it is with --accept-issues",
            report.issues.len()
        )
        .into());
    }
    match report.issues.len() {
        0 => println!("{} grid(s) imported", report.grids.len()),
        n => println!("{} grid(s) imported, {n} partition issue(s) accepted", report.grids.len()),
    }
    Ok(())
}

/// The boundaries the server publishes, as GeoJSON; grids whose boundary this version
/// cannot read are named on stderr.
fn export_grids<S: Storage>(service: &Service<S>) -> Result<String, Box<dyn std::error::Error>> {
    use wangge_core::place::boundaries;
    let id = wangge_core::reference::doc_id().to_string();
    let snapshot =
        wangge_server::Storage::snapshot(service.storage(), &id)?.ok_or("the server has no reference document")?;
    let reference = wangge_core::reference::read(&automerge::AutoCommit::load(&snapshot)?)?;
    let (grids, unreadable) = boundaries::from_reference(&reference.grids, wangge_core::model::CodeFormat::default());
    for code in unreadable {
        eprintln!("wangge-server: grid {code}: its boundary cannot be read by this version, left out");
    }
    Ok(boundaries::export_geojson(&grids))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use wangge_server::SqliteStorage;

    #[test]
    fn a_postgres_url_is_printed_without_its_password() {
        #[track_caller]
        fn check(database: &str, printed: &str) {
            assert_eq!(without_password(database), printed);
        }
        check("postgres://wangge:s3cr:et@db.example:5432/wangge", "postgres://wangge:…@db.example:5432/wangge");
        check("postgresql://wangge@127.0.0.1/wangge", "postgresql://wangge@127.0.0.1/wangge");
        check("postgres://u:p@host", "postgres://u:…@host");
        check("/var/lib/wangge/server.db", "/var/lib/wangge/server.db");
    }

    #[test]
    fn the_config_file_is_read_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "db = \"x.db\"\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        let config = Config::load(Some(&good)).unwrap();
        assert_eq!(config.database.as_deref(), Some("x.db"));
        assert_eq!(config.listen, Some(SocketAddr::from(([127, 0, 0, 1], 9000))));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "dbx = 1\n").unwrap();
        let error = Config::load(Some(&bad)).unwrap_err().to_string();
        assert!(error.contains("bad.toml") && error.contains("dbx"), "{error}");
    }

    #[test]
    fn a_boundary_file_with_an_overlap_is_refused_unless_accepted_and_exports_as_imported() {
        let dir = tempfile::tempdir().unwrap();
        let service = Service::new(SqliteStorage::open(&dir.path().join("server.db")).unwrap());
        let square = |code: &str, west: f64| {
            let (east, south, north) = (west + 0.004, 22.580, 22.583);
            serde_json::json!({ "type": "Feature",
                "properties": { "code": code, "name": format!("长堤社区{}号网格", &code[12..]), "kind": "community" },
                "geometry": { "type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]] } })
        };
        // The second grid starts 0.001° (about 103 m) inside the first.
        let file = serde_json::json!({ "type": "FeatureCollection",
            "features": [square("440703001001001", 113.080), square("440703001001002", 113.083)] })
        .to_string();
        let error = import_grids(&service, &file, false).unwrap_err().to_string();
        assert!(error.contains("1 partition issue(s): nothing imported"), "{error}");
        assert!(wangge_server::Storage::grid(service.storage(), "440703001001001").unwrap().is_none());

        import_grids(&service, &file, true).unwrap();
        let exported = export_grids(&service).unwrap();
        let imported = wangge_core::place::boundaries::import_geojson(&file).unwrap();
        assert_eq!(wangge_core::place::boundaries::import_geojson(&exported).unwrap(), imported);
        assert!(
            import_grids(&service, "{\"type\": \"Feature\"}", true)
                .unwrap_err()
                .to_string()
                .contains("not a GeoJSON FeatureCollection")
        );
    }
}
