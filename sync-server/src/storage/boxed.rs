//! A storage chosen at run time: `Box<dyn Storage>` is a [`Storage`], so the binary opens
//! SQLite or PostgreSQL from `--database` and runs one `Service<Box<dyn Storage>>` with the
//! same command code. Every method forwards; a method added to the trait gets its line here.

use super::*;

macro_rules! forward {
    ($($name:ident($($arg:ident: $type:ty),*) -> $output:ty;)*) => {
        impl<S: Storage + ?Sized> Storage for Box<S> {
            $(
                fn $name(&self, $($arg: $type),*) -> Result<$output> {
                    (**self).$name($($arg),*)
                }
            )*
        }
    };
}

forward! {
    create_grid(grid: &GridRecord) -> ();
    grid(code: &str) -> Option<GridRecord>;
    grids_within(prefix: &str) -> Vec<GridRecord>;
    create_worker(worker: &Worker) -> ();
    worker(person: &str) -> Option<Worker>;
    set_worker_contact(person: &str, contact: &WorkerContact) -> bool;
    worker_contact(person: &str) -> Option<WorkerContact>;
    grid_staff(grid: &str) -> Vec<(Worker, WorkerContact)>;
    create_enrollment_code(person: &str, code_hash: &str, now_ms: i64) -> ();
    redeem_enrollment_code(
        code_hash: &str, device: &Device, token_hash: &str, now_ms: i64, issued_after_ms: i64
    ) -> Option<(String, String)>;
    device_by_token(token_hash: &str) -> Option<(Device, Worker)>;
    revoke_device(device_id: &str) -> bool;
    renew_device(device_id: &str, last_seen_ms: i64, token_expires_ms: i64) -> ();
    record_sync(device_id: &str, report: &SyncReport) -> ();
    snapshot(doc: &str) -> Option<Vec<u8>>;
    document(doc: &str) -> Option<StoredDocument>;
    documents(docs: &[String]) -> Vec<(String, StoredDocument)>;
    commit(updates: &[DocUpdate], received_ms: i64) -> ();
    visible_documents(scopes: &[String]) -> HashSet<String>;
    pull_view(device: &str, scopes: &[String]) -> PullView;
    held_documents(device: &str) -> HashMap<String, (i64, HeldState)>;
    set_held_many(device: &str, held: &[(String, i64, HeldState)]) -> ();
    forget_held(device: &str, doc: &str) -> ();
    log_after(cursor: i64, device: &str, limit: usize) -> Vec<LogEntry>;
    log_after_in(cursor: i64, docs: &[String], limit: usize) -> Vec<LogEntry>;
    max_seq() -> i64;
    changes_after(after_seq: i64, limit: usize) -> Vec<LogEntry>;
    changes_of(doc: &str) -> Vec<LogEntry>;
    documents_changed(after_seq: i64, up_to_seq: i64) -> Vec<String>;
    devices() -> Vec<Device>;
    blob(hash: &str) -> Option<BlobRecord>;
    blob_upload(device: &str, hash: &str) -> Option<BlobRecord>;
    append_blob_chunk(
        device: &str, hash: &str, size: u64, offset: u64, chunk: &[u8], now_ms: i64
    ) -> BlobAppend;
    read_blob(id: i64, offset: u64, max: usize) -> Vec<u8>;
    finish_blob_upload(id: i64) -> ();
    discard_blob_upload(id: i64) -> ();
    discard_stale_blob_uploads(updated_before_ms: i64) -> usize;
    blob_referenced(hash: &str, scopes: &[String]) -> bool;
}
