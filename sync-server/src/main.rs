//! `wangge-server`: run the sync server and administer it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wangge_core::model::GridCode;
use wangge_server::{Service, SqliteStorage, Worker};

#[derive(Debug, Parser)]
#[command(name = "wangge-server", version, about = "The wangge sync server")]
struct Cli {
    /// A TOML config file (keys `db`, `listen`); flags and environment override it.
    /// Env: WANGGE_CONFIG. Default: `wangge-server.toml` when it exists.
    #[arg(long, env = "WANGGE_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The server's database (one SQLite file). Env: WANGGE_DB. Default: wangge-server.db.
    #[arg(long, env = "WANGGE_DB", global = true)]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The config file: every key optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    db: Option<PathBuf>,
    listen: Option<SocketAddr>,
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
    },
    /// Create (or update) a grid with its documents.
    AddGrid {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "community")]
        kind: String,
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
    },
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
    /// Revoke a device: its next request is refused and told to wipe.
    Revoke {
        #[arg(long)]
        device: String,
    },
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
        return wangge_server::demo::run(dir);
    }
    let config = Config::load(cli.config.as_ref())?;
    let db = cli.db.or(config.db).unwrap_or_else(|| PathBuf::from("wangge-server.db"));
    let service = Service::new(SqliteStorage::open(&db)?);
    match cli.command {
        Command::Serve { listen } => {
            let listen = listen.or(config.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7878)));
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let (listener, addr) = wangge_server::bind(listen).await?;
                println!("wangge-server: serving sync protocol v1 on http://{addr} (database {})", db.display());
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                wangge_server::serve(listener, service, shutdown).await
            })?;
        }
        Command::AddGrid { code, name, kind } => {
            service.create_grid(&GridCode::parse_default(&code)?, &name, &kind)?;
            println!("grid {code} ready");
        }
        Command::AddWorker { person, role, department, grids } => {
            service.create_worker(&Worker { person: person.clone(), role, department, grids })?;
            println!("enrollment code for {person}: {}", service.issue_enrollment_code(&person)?);
        }
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
        Command::Revoke { device } => {
            let revoked = service.revoke(&device)?;
            println!("{}", if revoked { "revoked" } else { "no such device" });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_config_file_is_read_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "db = \"x.db\"\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        let config = Config::load(Some(&good)).unwrap();
        assert_eq!(config.db, Some(PathBuf::from("x.db")));
        assert_eq!(config.listen, Some(SocketAddr::from(([127, 0, 0, 1], 9000))));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "dbx = 1\n").unwrap();
        let error = Config::load(Some(&bad)).unwrap_err().to_string();
        assert!(error.contains("bad.toml") && error.contains("dbx"), "{error}");
    }
}
