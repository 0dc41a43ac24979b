//! A fault-injecting SQLite VFS for tests: power cuts and failing disks.
//!
//! [`install`] registers a shim over SQLite's default (unix) VFS as the new default, so
//! that code under test opens its databases the way it always does. Files outside every
//! attached directory pass straight through. For files in a directory attached as a
//! [`Disk`], the shim keeps a model of what a real disk holds durably, the way SQLite's own
//! crash test does (`src/test6.c`): every write and truncate still reaches the real file
//! (so SQLite reads what it wrote), and is also recorded as *pending* until an `xSync` of
//! that file makes it durable.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! wangge_fault_vfs::install();
//! let disk = wangge_fault_vfs::Disk::attach("/tmp/device", 42)?;
//! // … open the store in /tmp/device …
//! disk.cut_power_after(17); // the 17th write, truncate or sync from now never happens
//! // … capture until a call fails, then drop the store …
//! if let Some(image) = disk.image() {
//!     image.write_to(std::path::Path::new("/tmp/after-the-cut"))?;
//! }
//! # Ok(()) }
//! ```
//!
//! **Power cuts.** At the cut, [`Disk::image`] is made: per file, the durable content,
//! then each pending operation in order, each one kept, dropped, or torn (512-byte sectors
//! of it kept, dropped, or left holding garbage); a dropped write past the end may still
//! have grown the file with zeros (a file system that commits the size before the data).
//! A file never synced may not exist at all. The `-shm` file (shared memory, written
//! through `mmap`) is left out, zeroed or copied at random: SQLite rebuilds it on open.
//! From the cut on, every write, truncate, sync and delete on the disk fails with an I/O
//! error, so nothing done after it can be acknowledged.
//!
//! What the model assumes: a file's content at attach time is durable (attach before
//! opening anything in the directory); a synced file exists (SQLite syncs the directory
//! when it creates a journal or WAL); a delete is durable at once (SQLite deletes only
//! files whose content no longer matters: a checkpointed WAL, a committed journal). Bytes
//! outside a write are never damaged by it: SQLite's unix VFS claims
//! `SQLITE_IOCAP_POWERSAFE_OVERWRITE`, and the shim passes the base VFS's device
//! characteristics through unchanged.
//!
//! **Failing disks.** [`Disk::inject`] makes writes, syncs or truncates fail with
//! `SQLITE_FULL` or an I/O error, after a given number of them succeed, until
//! [`Disk::clear`] (space returns) or once.
//!
//! Memory-mapped I/O is not offered (the shim's files are version 2), so every page SQLite
//! writes goes through `xWrite`.

use std::collections::BTreeMap;
use std::ffi::{CStr, OsStr, c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rusqlite::ffi;

/// The sector a torn write is made of: the smallest unit a disk writes whole or not at all.
pub const SECTOR: usize = 512;

/// Registers the shim as SQLite's default VFS (once per process; later calls do nothing).
pub fn install() {
    BASE.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find initialises SQLite and returns the default VFS, which
        // lives as long as the process. The copy keeps the base's pAppData and methods (unix
        // functions read only fields that are copied); the copy is leaked, so the pointer
        // SQLite keeps after registering it stays valid.
        unsafe {
            let base = ffi::sqlite3_vfs_find(ptr::null());
            assert!(!base.is_null(), "SQLite has no default VFS");
            let mut shim = *base;
            shim.zName = c"wangge-fault".as_ptr();
            shim.szOsFile = c_int::try_from(REAL_OFFSET).unwrap_or(c_int::MAX) + (*base).szOsFile;
            shim.pNext = ptr::null_mut();
            shim.xOpen = Some(x_open);
            shim.xDelete = Some(x_delete);
            let rc = ffi::sqlite3_vfs_register(Box::into_raw(Box::new(shim)), 1);
            assert_eq!(rc, ffi::SQLITE_OK, "registering the fault VFS");
            BaseVfs(base)
        }
    });
}

/// The VFS the shim wraps.
struct BaseVfs(*mut ffi::sqlite3_vfs);

// SAFETY: the pointer is to SQLite's static unix VFS, which SQLite uses from any thread.
unsafe impl Send for BaseVfs {}
// SAFETY: as above; it is only read.
unsafe impl Sync for BaseVfs {}

static BASE: OnceLock<BaseVfs> = OnceLock::new();

/// The attached disks (weak: a disk detaches when its last owner drops it).
static DISKS: Mutex<Vec<Weak<Disk>>> = Mutex::new(Vec::new());

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding a lock must not abort SQLite's callbacks.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn disk_for(path: &Path) -> Option<Arc<Disk>> {
    let mut disks = lock(&DISKS);
    disks.retain(|disk| disk.strong_count() > 0);
    disks.iter().filter_map(Weak::upgrade).find(|disk| path.starts_with(&disk.dir))
}

/// The operation a fault is injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Write,
    Sync,
    Truncate,
}

/// What a failing operation reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `SQLITE_FULL`: no space left.
    Full,
    /// `SQLITE_IOERR_WRITE`, `_FSYNC` or `_TRUNCATE`, as the operation is.
    Io,
}

/// A fault: `op` succeeds `skip` more times, then fails with `failure` (every time until
/// [`Disk::clear`], or only once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub op: Op,
    pub failure: Failure,
    pub skip: u32,
    pub once: bool,
}

/// What the power cuts met, summed over a disk's images: evidence that they cut into
/// unsynced work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutStats {
    pub n_pending_writes: u64,
    pub n_kept: u64,
    pub n_dropped: u64,
    pub n_torn: u64,
    pub n_files_lost: u64,
}

/// A directory whose SQLite files go through the shim's model of a disk.
#[derive(Debug)]
pub struct Disk {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rng: StdRng,
    files: BTreeMap<PathBuf, Model>,
    /// Writes, truncates and syncs so far.
    n_events: u64,
    cut_at: Option<u64>,
    /// `Some` once the power is cut.
    image: Option<Image>,
    fault: Option<Fault>,
    n_failed: u64,
}

/// What a disk holds of one file: the durable content and what is not synced yet.
#[derive(Debug, Default)]
struct Model {
    /// `None`: not durably there (created and never synced, or deleted).
    durable: Option<Vec<u8>>,
    pending: Vec<Pending>,
}

#[derive(Debug)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    Truncate(u64),
}

/// What a power cut left on the disk: each file by its name in the directory, or `None`
/// where the file is not there at all.
#[derive(Debug, Clone)]
pub struct Image {
    pub files: Vec<(String, Option<Vec<u8>>)>,
    pub stats: CutStats,
}

impl Disk {
    /// Puts the SQLite files in `dir` (an existing directory, its files at rest) under the
    /// model, with choices drawn from `seed`. [`install`] must have run.
    pub fn attach(dir: impl AsRef<Path>, seed: u64) -> std::io::Result<Arc<Disk>> {
        assert!(BASE.get().is_some(), "wangge_fault_vfs::install() first");
        let dir = dir.as_ref().canonicalize()?;
        let disk = Arc::new(Disk {
            dir,
            state: Mutex::new(State {
                rng: StdRng::seed_from_u64(seed),
                files: BTreeMap::new(),
                n_events: 0,
                cut_at: None,
                image: None,
                fault: None,
                n_failed: 0,
            }),
        });
        lock(&DISKS).push(Arc::downgrade(&disk));
        Ok(disk)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes, truncates and syncs on this disk so far.
    pub fn n_events(&self) -> u64 {
        lock(&self.state).n_events
    }

    /// Cuts the power just before the `n`-th write, truncate or sync from now (0: the next).
    pub fn cut_power_after(&self, n: u64) {
        let mut state = lock(&self.state);
        state.cut_at = Some(state.n_events + n);
    }

    /// Cuts the power now (if it is still on).
    pub fn cut_power_now(&self) {
        let mut state = lock(&self.state);
        if state.image.is_none() {
            let image = state.cut(&self.dir);
            state.image = Some(image);
        }
    }

    pub fn is_powered_off(&self) -> bool {
        lock(&self.state).image.is_some()
    }

    /// What the power cut left (`None` while the power is on).
    pub fn image(&self) -> Option<Image> {
        lock(&self.state).image.clone()
    }

    /// Makes operations fail as `fault` says, until [`Disk::clear`].
    pub fn inject(&self, fault: Fault) {
        lock(&self.state).fault = Some(fault);
    }

    /// Space returns, the disk recovers: operations succeed again.
    pub fn clear(&self) {
        lock(&self.state).fault = None;
    }

    /// Operations failed by injected faults so far.
    pub fn n_failed(&self) -> u64 {
        lock(&self.state).n_failed
    }

    /// A file under this disk is being opened: its model starts from what is on disk.
    fn opening(&self, path: &Path) {
        let mut state = lock(&self.state);
        state
            .files
            .entry(path.to_path_buf())
            .or_insert_with(|| Model { durable: std::fs::read(path).ok(), pending: Vec::new() });
    }

    /// Runs `real` (the base VFS's operation) unless the power is off or a fault fails it;
    /// `record` updates the model after it succeeded.
    fn operate(&self, op: Op, path: &Path, real: impl FnOnce() -> c_int, record: impl FnOnce(&mut Model)) -> c_int {
        let mut state = lock(&self.state);
        if state.image.is_none() && state.cut_at.is_some_and(|at| state.n_events >= at) {
            let image = state.cut(&self.dir);
            state.image = Some(image);
        }
        if state.image.is_some() {
            return io_error(op);
        }
        if let Some(fault) = &mut state.fault
            && fault.op == op
        {
            if fault.skip > 0 {
                fault.skip -= 1;
            } else {
                let failure = fault.failure;
                if fault.once {
                    state.fault = None;
                }
                state.n_failed += 1;
                return match failure {
                    Failure::Full => ffi::SQLITE_FULL,
                    Failure::Io => io_error(op),
                };
            }
        }
        state.n_events += 1;
        let rc = real();
        if rc == ffi::SQLITE_OK {
            record(state.files.entry(path.to_path_buf()).or_default());
        }
        rc
    }

    fn delete(&self, path: &Path, real: impl FnOnce() -> c_int) -> c_int {
        let mut state = lock(&self.state);
        if state.image.is_some() {
            return ffi::SQLITE_IOERR_DELETE;
        }
        let rc = real();
        if rc == ffi::SQLITE_OK {
            state.files.remove(path);
        }
        rc
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        lock(&DISKS).retain(|disk| disk.strong_count() > 0);
    }
}

fn io_error(op: Op) -> c_int {
    match op {
        Op::Write => ffi::SQLITE_IOERR_WRITE,
        Op::Sync => ffi::SQLITE_IOERR_FSYNC,
        Op::Truncate => ffi::SQLITE_IOERR_TRUNCATE,
    }
}

impl Model {
    fn sync(&mut self) {
        let mut content = self.durable.take().unwrap_or_default();
        for pending in self.pending.drain(..) {
            match pending {
                Pending::Write { offset, data } => write_at(&mut content, offset, &data),
                Pending::Truncate(len) => content.truncate(len as usize),
            }
        }
        self.durable = Some(content);
    }
}

fn write_at(content: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = offset as usize;
    if content.len() < start + data.len() {
        content.resize(start + data.len(), 0);
    }
    content[start..start + data.len()].copy_from_slice(data);
}

impl State {
    /// What a power cut now leaves on the disk.
    fn cut(&mut self, dir: &Path) -> Image {
        let mut stats = CutStats::default();
        let mut files = Vec::new();
        let rng = &mut self.rng;
        for (path, model) in &self.files {
            let Ok(name) = path.strip_prefix(dir) else { continue };
            let name = name.to_string_lossy().into_owned();
            let mut content = match &model.durable {
                Some(content) => content.clone(),
                // Never synced: the file itself may be gone.
                None if model.pending.is_empty() || rng.random_bool(0.3) => {
                    stats.n_files_lost += 1;
                    files.push((name, None));
                    continue;
                }
                None => Vec::new(),
            };
            for pending in &model.pending {
                match pending {
                    Pending::Write { offset, data } => {
                        stats.n_pending_writes += 1;
                        let end = *offset as usize + data.len();
                        match rng.random_range(0..10) {
                            0..4 => {
                                stats.n_kept += 1;
                                write_at(&mut content, *offset, data);
                            }
                            4..7 => {
                                stats.n_dropped += 1;
                                // The size may be committed before the data.
                                if content.len() < end && rng.random_bool(0.5) {
                                    content.resize(end, 0);
                                }
                            }
                            _ => {
                                stats.n_torn += 1;
                                tear(rng, &mut content, *offset, data);
                            }
                        }
                    }
                    Pending::Truncate(len) => {
                        if rng.random_bool(0.5) {
                            content.truncate(*len as usize);
                        }
                    }
                }
            }
            files.push((name, Some(content)));
        }
        // Shared memory: whatever the kernel had written back of the mapping, or nothing.
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.ends_with("-shm") || self.files.contains_key(&entry.path()) {
                    continue;
                }
                let content = match rng.random_range(0..3) {
                    0 => None,
                    1 => std::fs::read(entry.path()).ok().map(|bytes| vec![0; bytes.len()]),
                    _ => std::fs::read(entry.path()).ok(),
                };
                files.push((name, content));
            }
        }
        Image { files, stats }
    }
}

/// A write cut off by the power: each sector of it written, not written, or garbage.
fn tear(rng: &mut StdRng, content: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = offset as usize;
    let mut at = 0;
    while at < data.len() {
        // Sectors are aligned on the disk, not in the write.
        let sector_end = ((start + at) / SECTOR + 1) * SECTOR - start;
        let end = sector_end.min(data.len());
        match rng.random_range(0..10) {
            0..5 => write_at(content, (start + at) as u64, &data[at..end]),
            5..9 => {}
            _ => {
                let mut garbage = vec![0u8; end - at];
                rng.fill(&mut garbage[..]);
                write_at(content, (start + at) as u64, &garbage);
            }
        }
        at = end;
    }
}

impl Image {
    /// Writes the image's files into `dir` (files the cut left missing are not written).
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        for (name, content) in &self.files {
            if let Some(content) = content {
                std::fs::write(dir.join(name), content)?;
            }
        }
        Ok(())
    }
}

// ---- The C side: the file object and its methods. ----

/// The shim's file object: SQLite allocates `szOsFile` bytes, this header and then the
/// base VFS's own file object at [`REAL_OFFSET`].
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    /// Owned (a `Box`), freed by `xClose`.
    info: *mut FileInfo,
}

struct FileInfo {
    path: PathBuf,
    disk: Option<Arc<Disk>>,
}

const REAL_OFFSET: usize = std::mem::size_of::<ShimFile>().next_multiple_of(16);

fn base_vfs() -> *mut ffi::sqlite3_vfs {
    BASE.get().map_or(ptr::null_mut(), |base| base.0)
}

/// The base VFS's file object inside ours.
///
/// # Safety
/// `file` is a file object allocated by SQLite for this VFS (`szOsFile` bytes).
unsafe fn real(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: the allocation is REAL_OFFSET + the base's szOsFile bytes long.
    unsafe { file.cast::<u8>().add(REAL_OFFSET).cast() }
}

/// The base's methods for its file object.
///
/// # Safety
/// `real` was opened successfully by the base VFS and not closed.
unsafe fn methods<'a>(real: *mut ffi::sqlite3_file) -> &'a ffi::sqlite3_io_methods {
    // SAFETY: an open base file has its methods set, static in SQLite.
    unsafe { &*(*real).pMethods }
}

/// The path and disk of an open shim file.
///
/// # Safety
/// `file` was opened successfully by `x_open` and not closed.
unsafe fn info<'a>(file: *mut ffi::sqlite3_file) -> &'a FileInfo {
    // SAFETY: x_open sets `info` to a live Box before it sets the methods.
    unsafe { &*(*file.cast::<ShimFile>()).info }
}

fn path_of(name: *const c_char) -> Option<PathBuf> {
    if name.is_null() {
        return None;
    }
    // SAFETY: SQLite passes a NUL-terminated name (URI parameters follow the NUL).
    let bytes = unsafe { CStr::from_ptr(name) }.to_bytes();
    Some(PathBuf::from(OsStr::from_bytes(bytes)))
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let _ = vfs;
    let base = base_vfs();
    let shim = file.cast::<ShimFile>();
    // SAFETY: SQLite gives us szOsFile writable bytes for the file object.
    unsafe {
        (*shim).base.pMethods = ptr::null();
        (*shim).info = ptr::null_mut();
    }
    let path = path_of(name);
    let disk = path.as_deref().and_then(disk_for);
    if let (Some(disk), Some(path)) = (&disk, &path) {
        disk.opening(path);
    }
    // SAFETY: the base's xOpen gets its own file object, inside ours, and the arguments
    // SQLite gave us.
    let rc = unsafe {
        match (*base).xOpen {
            Some(open) => open(base, name, real(file), flags, out_flags),
            None => ffi::SQLITE_CANTOPEN,
        }
    };
    if rc == ffi::SQLITE_OK {
        let info = Box::new(FileInfo { path: path.unwrap_or_default(), disk });
        // SAFETY: as above; the methods are set last, so SQLite closes only a whole object.
        unsafe {
            (*shim).info = Box::into_raw(info);
            (*shim).base.pMethods = &METHODS;
        }
    }
    rc
}

unsafe extern "C" fn x_delete(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, sync_dir: c_int) -> c_int {
    let _ = vfs;
    let base = base_vfs();
    // SAFETY: the base's xDelete with SQLite's own arguments.
    let real = || unsafe {
        match (*base).xDelete {
            Some(delete) => delete(base, name, sync_dir),
            None => ffi::SQLITE_IOERR_DELETE,
        }
    };
    match path_of(name).and_then(|path| disk_for(&path).map(|disk| (disk, path))) {
        Some((disk, path)) => disk.delete(&path, real),
        None => real(),
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// Calls the base file's method `$method` with the file's own object and `$args`.
macro_rules! delegate {
    ($file:expr, $method:ident, $missing:expr $(, $arg:expr)*) => {{
        // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed;
        // the base method gets the base's own file object and SQLite's arguments.
        unsafe {
            let real = real($file);
            match methods(real).$method {
                Some(method) => method(real $(, $arg)*),
                None => $missing,
            }
        }
    }};
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let rc = delegate!(file, xClose, ffi::SQLITE_OK);
    // SAFETY: `info` was made by Box::into_raw in x_open and is freed only here.
    unsafe {
        let shim = file.cast::<ShimFile>();
        if !(*shim).info.is_null() {
            drop(Box::from_raw((*shim).info));
            (*shim).info = ptr::null_mut();
        }
    }
    rc
}

unsafe extern "C" fn x_read(file: *mut ffi::sqlite3_file, buf: *mut c_void, amount: c_int, offset: i64) -> c_int {
    delegate!(file, xRead, ffi::SQLITE_IOERR_READ, buf, amount, offset)
}

unsafe extern "C" fn x_write(file: *mut ffi::sqlite3_file, buf: *const c_void, amount: c_int, offset: i64) -> c_int {
    // SAFETY: the file is open (see `delegate!`).
    let info = unsafe { info(file) };
    let Some(disk) = &info.disk else {
        return delegate!(file, xWrite, ffi::SQLITE_IOERR_WRITE, buf, amount, offset);
    };
    let real = || delegate!(file, xWrite, ffi::SQLITE_IOERR_WRITE, buf, amount, offset);
    disk.operate(Op::Write, &info.path, real, |model| {
        // SAFETY: SQLite's buffer holds `amount` bytes for the duration of the call.
        let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), amount.max(0) as usize) };
        model.pending.push(Pending::Write { offset: offset as u64, data: data.to_vec() });
    })
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: the file is open (see `delegate!`).
    let info = unsafe { info(file) };
    let Some(disk) = &info.disk else {
        return delegate!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size);
    };
    let real = || delegate!(file, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, size);
    disk.operate(Op::Truncate, &info.path, real, |model| model.pending.push(Pending::Truncate(size as u64)))
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: the file is open (see `delegate!`).
    let info = unsafe { info(file) };
    let Some(disk) = &info.disk else {
        return delegate!(file, xSync, ffi::SQLITE_IOERR_FSYNC, flags);
    };
    let real = || delegate!(file, xSync, ffi::SQLITE_IOERR_FSYNC, flags);
    disk.operate(Op::Sync, &info.path, real, Model::sync)
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    delegate!(file, xFileSize, ffi::SQLITE_IOERR_FSTAT, size)
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    delegate!(file, xLock, ffi::SQLITE_IOERR_LOCK, level)
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    delegate!(file, xUnlock, ffi::SQLITE_IOERR_UNLOCK, level)
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    delegate!(file, xCheckReservedLock, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, out)
}

unsafe extern "C" fn x_file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    delegate!(file, xFileControl, ffi::SQLITE_NOTFOUND, op, arg)
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    delegate!(file, xSectorSize, 4096)
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    delegate!(file, xDeviceCharacteristics, 0)
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    page_size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    delegate!(file, xShmMap, ffi::SQLITE_IOERR_SHMMAP, page, page_size, extend, out)
}

unsafe extern "C" fn x_shm_lock(file: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    delegate!(file, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, offset, n, flags)
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    delegate!(file, xShmBarrier, ())
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    delegate!(file, xShmUnmap, ffi::SQLITE_OK, delete)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_torn_write_changes_only_the_sectors_it_covers_each_old_new_or_garbage() {
        let mut rng = StdRng::seed_from_u64(7);
        let (mut n_old, mut n_new, mut n_garbage) = (0, 0, 0);
        for _ in 0..200 {
            let mut content = vec![1u8; 4096];
            let offset = rng.random_range(0..3000u64);
            let data = vec![2u8; rng.random_range(1..1096)];
            tear(&mut rng, &mut content, offset, &data);
            let (start, end) = (offset as usize, offset as usize + data.len());
            assert!(content[..start].iter().all(|&byte| byte == 1), "bytes before the write changed");
            assert!(content[end..].iter().all(|&byte| byte == 1), "bytes after the write changed");
            let mut at = start;
            while at < end {
                let sector_end = ((at / SECTOR + 1) * SECTOR).min(end);
                let sector = &content[at..sector_end];
                if sector.iter().all(|&byte| byte == 1) {
                    n_old += 1;
                } else if sector.iter().all(|&byte| byte == 2) {
                    n_new += 1;
                } else {
                    n_garbage += 1;
                }
                at = sector_end;
            }
        }
        assert!(n_old > 0 && n_new > 0 && n_garbage > 0, "{n_old} old, {n_new} new, {n_garbage} garbage sectors");
    }
}
