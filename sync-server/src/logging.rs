//! The server's log: one event per request (method, route, status, microseconds, the
//! refusal's code) and one per housekeeping result, as text or JSON lines on stdout.
//!
//! What is logged is chosen so that no personal data can reach it: routes as declared
//! (`/public/grids/{code}`), never the path a client sent; refusal codes and messages,
//! which name documents and fields but never their values; never bodies or tokens.

use std::str::FromStr;

pub use tracing_subscriber::filter::LevelFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// The environment variable with the level: `error`, `warn`, `info`, `debug`, `trace` or
/// `off`.
pub const LEVEL_VAR: &str = "WANGGE_LOG";

/// Installs the process's logger at the level [`LEVEL_VAR`] says, else `default`; a second
/// call changes nothing.
pub fn init(format: LogFormat, default: LevelFilter) {
    let level = std::env::var(LEVEL_VAR).ok().and_then(|level| LevelFilter::from_str(&level).ok());
    let builder = tracing_subscriber::fmt().with_max_level(level.unwrap_or(default)).with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
