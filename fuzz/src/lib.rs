//! What the fuzz targets share: a server and a device set up the way the real ones are, a
//! fresh copy of each for every input (so an input's outcome never depends on the inputs
//! before it and a crash replays from its file alone), and the harness's own transformations
//! of an input (automerge checksums fixed up, changes split at their magic bytes).
//!
//! Each target in `fuzz_targets/` calls one function of [`targets`]; `examples/seeds.rs`
//! writes the seed corpora (`fuzz/corpus/<target>/`) from a real enrollment and sync.
//!
//! When a target transforms its input before the code under test sees it, the bytes the
//! code saw are what a regression fixture must hold: with `WANGGE_FUZZ_SAVE=<file>` set, a
//! target writes them there (`scripts/fuzz` does this for every crash it finds).

pub mod targets;

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};

use sha2::{Digest, Sha256};
use wangge_core::Store;
use wangge_core::sync::wire::{EnrollRequest, EnrollResponse, GridInfo, WorkerInfo};
use wangge_server::{Service, SqliteStorage, Storage, Worker};

/// The grid every fixture holds.
pub const GRID: &str = "440703001001001";
/// The enrolled device's automerge actor: the author every pushed change must name.
pub const ACTOR: [u8; 16] = *b"wangge-fuzz-dev1";
/// The code the fixture's device enrolled with (used up).
pub const CODE_USED: &str = "0f0f0f0f0f0f0f0f0f01";
/// A code waiting to be redeemed, for the enrollment target.
pub const CODE_FREE: &str = "0f0f0f0f0f0f0f0f0f02";
/// An incident id a device may create (a UUID).
pub const INCIDENT: &str = "01934b1e-0000-7000-8000-000000000001";
/// The month of the activity document the fuzzers push to.
pub const MONTH: &str = "2026-01";

thread_local! {
    /// The last panic's message, place and (with RUST_BACKTRACE=1) backtrace.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs a target on one input. libFuzzer's panic hook would abort on every panic, even one
/// the code under test catches and turns into an error (as `wangge_core::crdt::untrusted`
/// does with automerge's); here only a panic that escapes the code under test aborts, and
/// libFuzzer reports that as the crash it is.
pub fn run(target: impl FnOnce()) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let report = format!("{info}\n{}", std::backtrace::Backtrace::capture());
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(report));
        }));
    });
    if catch_unwind(AssertUnwindSafe(target)).is_err() {
        if let Some(report) = LAST_PANIC.with(|last| last.borrow_mut().take()) {
            eprintln!("panic escaped the code under test: {report}");
        }
        std::process::abort();
    }
}

/// automerge's magic bytes, at the start of every chunk (document or change).
pub const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Sets every chunk's checksum to the one its bytes have, so that mutations reach the
/// parser behind the checksum instead of failing at it (automerge refuses a chunk whose
/// checksum is wrong). Stops at the first chunk that is not whole; compressed change
/// chunks (whose checksum is the decompressed change's) are left as they are.
pub fn fix_checksums(bytes: &mut [u8]) {
    let mut at = 0;
    while bytes.len() >= at + 9 && bytes[at..at + 4] == MAGIC {
        let chunk_type = bytes[at + 8];
        let Some((len, len_bytes)) = read_uleb(&bytes[at + 9..]) else { return };
        let data_start = at + 9 + len_bytes;
        let Some(data_end) = usize::try_from(len).ok().and_then(|len| data_start.checked_add(len)) else { return };
        if data_end > bytes.len() {
            return;
        }
        if chunk_type != 2 {
            let mut hasher = Sha256::new();
            hasher.update([chunk_type]);
            hasher.update(uleb(len));
            hasher.update(&bytes[data_start..data_end]);
            let hash = hasher.finalize();
            bytes[at + 4..at + 8].copy_from_slice(&hash[..4]);
        }
        at = data_end;
    }
}

fn read_uleb(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn uleb(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Splits a run of changes at automerge's magic bytes (each change starts with them), and
/// fixes each one's checksum.
pub fn split_changes(data: &[u8]) -> Vec<Vec<u8>> {
    let mut starts: Vec<usize> = data.windows(4).enumerate().filter(|(_, w)| *w == MAGIC).map(|(i, _)| i).collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let mut changes = Vec::new();
    for (i, start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(data.len());
        let mut change = data[*start..end].to_vec();
        fix_checksums(&mut change);
        changes.push(change);
    }
    changes
}

/// Writes the bytes the code under test saw to `$WANGGE_FUZZ_SAVE`, when set.
pub fn save_input(bytes: &[u8]) {
    if let Some(path) = std::env::var_os("WANGGE_FUZZ_SAVE") {
        std::fs::write(&path, bytes).expect("WANGGE_FUZZ_SAVE names a writable file");
    }
}

/// A directory for this process's files: in memory when the machine has /dev/shm. A static
/// is never dropped, so a fuzzing process leaves its directory behind when it exits: each
/// process first removes those of processes that are gone (their names carry the pid).
fn scratch() -> &'static Path {
    static SCRATCH: OnceLock<tempfile::TempDir> = OnceLock::new();
    SCRATCH
        .get_or_init(|| {
            let shm = Path::new("/dev/shm");
            let prefix = format!("{SCRATCH_PREFIX}{}-", std::process::id());
            let mut builder = tempfile::Builder::new();
            builder.prefix(&prefix);
            match builder.tempdir_in(shm) {
                Ok(dir) => {
                    remove_abandoned_scratch(shm);
                    dir
                }
                Err(_) => builder.tempdir().expect("a scratch directory"),
            }
        })
        .path()
}

const SCRATCH_PREFIX: &str = "wangge-fuzz-";

/// Removes the scratch directories in `parent` whose process no longer runs.
fn remove_abandoned_scratch(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|name| name.strip_prefix(SCRATCH_PREFIX)) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|pid| pid.parse::<u32>().ok()) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// The server as a test or an operator sets it up: one grid, a grid worker whose device
/// (actor [`ACTOR`]) is enrolled, and a second worker with an unused code ([`CODE_FREE`]).
/// Returns the service and the device's token.
pub fn set_up_server(path: &Path) -> (Service<SqliteStorage>, String) {
    let storage = SqliteStorage::open(path).expect("the server database");
    let service = Service::new(storage);
    let grid = wangge_core::model::GridCode::parse_default(GRID).expect("a grid code");
    service.create_grid(&grid, "fuzz grid", "community").expect("the grid");
    let now = chrono::Utc::now().timestamp_millis();
    for (person, code) in [("w1", CODE_USED), ("w2", CODE_FREE)] {
        let worker = Worker {
            person: person.into(),
            role: "full_time_worker".into(),
            department: None,
            grids: vec![GRID.into()],
        };
        service.create_worker(&worker).expect("the worker");
        service
            .storage()
            .create_enrollment_code(person, &wangge_server::service::hash_secret(code), now)
            .expect("an enrollment code");
    }
    let enrolled = service
        .enroll(EnrollRequest {
            code: CODE_USED.into(),
            actor: ACTOR.to_vec(),
            device_name: "fuzz device".into(),
            app_version: "0".into(),
        })
        .expect("the device enrolls");
    (service, enrolled.token)
}

/// A server database set up once per process, copied afresh for each input.
#[derive(Debug)]
pub struct ServerFixture {
    template: PathBuf,
    work: PathBuf,
    /// The enrolled device's bearer token.
    pub token: String,
}

impl ServerFixture {
    pub fn get() -> &'static ServerFixture {
        static FIXTURE: OnceLock<ServerFixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let template = scratch().join("server-template.db");
            let (service, token) = set_up_server(&template);
            // Closing the last connection folds the WAL into the file, which is then whole.
            drop(service);
            ServerFixture { template, work: scratch().join("server.db"), token }
        })
    }

    /// A fresh copy of the server.
    pub fn fresh(&self) -> Service<SqliteStorage> {
        remove_database(&self.work);
        std::fs::copy(&self.template, &self.work).expect("a copy of the server database");
        Service::new(SqliteStorage::open(&self.work).expect("the server database"))
    }
}

/// What the device stores at enrollment: the fixture server's grid, with sensitive data.
pub fn enrollment() -> EnrollResponse {
    EnrollResponse {
        token: "fuzz-token".into(),
        device_id: "fuzz-device".into(),
        worker: WorkerInfo {
            person: "w1".into(),
            role: "full_time_worker".into(),
            department: None,
            grids: vec![GridInfo {
                code: GRID.into(),
                name: "fuzz grid".into(),
                kind: "community".into(),
                sensitive: true,
            }],
        },
    }
}

/// Device stores set up once per process (one enrolled, one new), copied afresh for each
/// input.
#[derive(Debug)]
pub struct DeviceFixture {
    enrolled: PathBuf,
    new: PathBuf,
    dir: PathBuf,
}

impl DeviceFixture {
    pub fn get() -> &'static DeviceFixture {
        static FIXTURE: OnceLock<DeviceFixture> = OnceLock::new();
        FIXTURE.get_or_init(|| {
            let enrolled = scratch().join("device-enrolled-template.db");
            let store = Store::open(&enrolled).expect("the device store");
            store.apply_enrollment(&enrollment()).expect("the enrollment");
            drop(store);
            let new = scratch().join("device-new-template.db");
            drop(Store::open(&new).expect("the device store"));
            let dir = scratch().join("device");
            std::fs::create_dir_all(&dir).expect("the device directory");
            DeviceFixture { enrolled, new, dir }
        })
    }

    fn fresh_from(&self, template: &Path) -> Store {
        // Exports and blobs a previous input left beside the store go too.
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).expect("the device directory");
        let path = self.dir.join("device.db");
        std::fs::copy(template, &path).expect("a copy of the device store");
        Store::open(&path).expect("the device store")
    }

    /// A fresh copy of an enrolled device holding [`GRID`].
    pub fn enrolled(&self) -> Store {
        self.fresh_from(&self.enrolled)
    }

    /// A fresh copy of a device not enrolled yet.
    pub fn new_device(&self) -> Store {
        self.fresh_from(&self.new)
    }

    /// Where the fresh store lives (exports of removed documents go beside it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
