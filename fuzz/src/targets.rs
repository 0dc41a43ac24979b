//! One function per fuzz target: the decoder, then what a server or a device does next
//! with what it decoded. A target may return an error (outside input is refused all the
//! time); it must never panic, hang or allocate without bound.

use automerge::{AutoCommit, ObjType, ROOT, ReadDoc};
use wangge_core::crdt::{self, DocId, DocKind};
use wangge_core::model::{GridCode, IdNumber, Phone, RecordKind, Uscc, Wgs84};
use wangge_core::place::boundaries;
use wangge_core::sync::wire::{
    self, BlobChunk, BlobDownloadRequest, BlobStatus, BlobStatusRequest, BlobUploadRequest, DEFAULT_PULL_BUDGET,
    DocChanges, DocPull, EnrollRequest, EnrollResponse, ErrorBody, SyncRequest, SyncResponse,
};
use wangge_core::{incident, reference};

use crate::{DeviceFixture, GRID, INCIDENT, MONTH, ServerFixture, fix_checksums, save_input, split_changes};

/// `POST /v1/sync` as the server receives it: decoded, then the whole round (pushes checked
/// and stored, the pull paged) for the enrolled device.
pub fn wire_sync_request(data: &[u8]) {
    let Ok(request) = wire::decode::<SyncRequest>(data) else { return };
    let fixture = ServerFixture::get();
    let _ = fixture.fresh().sync(&fixture.token, request);
}

/// A sync response as the device receives it: decoded, then taken by an enrolled device
/// (acknowledgements, snapshots, changes, removals, the cursor).
pub fn wire_sync_response(data: &[u8]) {
    let Ok(response) = wire::decode::<SyncResponse>(data) else { return };
    let _ = wire::decode::<ErrorBody>(data);
    let store = DeviceFixture::get().enrolled();
    let Ok(round) = store.begin_sync(DEFAULT_PULL_BUDGET) else { return };
    let _ = store.finish_sync(round, response);
}

/// `POST /v1/enroll` on the server (one code is waiting to be redeemed), and the answer as
/// a new device records it.
pub fn wire_enroll(data: &[u8]) {
    if let Ok(request) = wire::decode::<EnrollRequest>(data) {
        let _ = ServerFixture::get().fresh().enroll(request);
    }
    if let Ok(response) = wire::decode::<EnrollResponse>(data) {
        let store = DeviceFixture::get().new_device();
        if store.apply_enrollment(&response).is_ok() {
            // What the app does next: a first round.
            let _ = store.begin_sync(DEFAULT_PULL_BUDGET);
        }
    }
}

/// The blob endpoints on the server (upload, status, download) and the device's reading of
/// their answers.
pub fn wire_blob(data: &[u8]) {
    let fixture = ServerFixture::get();
    if let Ok(request) = wire::decode::<BlobUploadRequest>(data) {
        let _ = fixture.fresh().upload_blob(&fixture.token, request);
    }
    if let Ok(request) = wire::decode::<BlobStatusRequest>(data) {
        let _ = fixture.fresh().blob_status(&fixture.token, request);
    }
    if let Ok(request) = wire::decode::<BlobDownloadRequest>(data) {
        let _ = fixture.fresh().download_blob(&fixture.token, request);
    }
    let _ = wire::decode::<BlobChunk>(data);
    let _ = wire::decode::<BlobStatus>(data);
    let _ = wire::decode::<ErrorBody>(data);
}

/// An automerge document as a device receives it in a snapshot (or a server reads one it
/// stored): loaded, its layout checked as the kind it says it is, then read the way the
/// projection and the server read it. A document that loads is also given to an enrolled
/// device as a pulled snapshot.
pub fn document_load(data: &[u8]) {
    let mut bytes = data.to_vec();
    fix_checksums(&mut bytes);
    save_input(&bytes);
    let Ok(mut doc) = crdt::untrusted::load(&bytes) else { return };
    let id = doc_id_of(&doc);
    if crdt::check_layout(&doc, &id).is_err() {
        return;
    }
    read_document(&mut doc, &id);
    let store = DeviceFixture::get().enrolled();
    let Ok(round) = store.begin_sync(DEFAULT_PULL_BUDGET) else { return };
    let pull = DocPull { doc: id.to_string(), snapshot: Some(bytes.into()), changes: Vec::new() };
    let _ = store.finish_sync(round, SyncResponse { pulls: vec![pull], ..SyncResponse::default() });
}

/// The document id a loaded document says it has (its `kind`, and its `grid` or `id`).
fn doc_id_of(doc: &AutoCommit) -> DocId {
    let text = |key: &str| match doc.get(ROOT, key) {
        Ok(Some((automerge::Value::Scalar(value), _))) => value.as_str().map(str::to_owned),
        _ => None,
    };
    let kind = text("kind").and_then(|kind| DocKind::from_code(&kind)).unwrap_or(DocKind::Register);
    let key = match kind {
        DocKind::Incident => text("id").unwrap_or_else(|| INCIDENT.to_owned()),
        DocKind::Activity => text("key").unwrap_or_else(|| format!("{GRID}:{MONTH}")),
        DocKind::Reference => "city".to_owned(),
        DocKind::Register | DocKind::Sensitive => text("grid").unwrap_or_else(|| GRID.to_owned()),
    };
    DocId { kind, key }
}

/// Everything the core and the server read from a document of this kind.
fn read_document(doc: &mut AutoCommit, id: &DocId) {
    match id.kind {
        DocKind::Register | DocKind::Sensitive => {
            for kind in id.kind.record_kinds() {
                let Some(container) = (match doc.get(ROOT, kind.plural()) {
                    Ok(Some((automerge::Value::Object(ObjType::Map), container))) => Some(container),
                    _ => None,
                }) else {
                    continue;
                };
                let keys: Vec<String> = doc.keys(&container).take(64).collect();
                for key in keys {
                    let record_id = key.split('/').next().unwrap_or_default().to_owned();
                    let _ = crdt::read_record(doc, id.kind, *kind, &record_id);
                    let _ = crdt::record_exists(doc, id.kind, *kind, &record_id);
                    let _ = crdt::conflicts(doc, id.kind, *kind, &record_id);
                }
            }
            let _ = crdt::generation::generation(doc);
            // The server's compaction of a grid document into its next generation.
            let _ = crdt::generation::compact(id, doc, 0);
        }
        DocKind::Incident => {
            let _ = incident::doc::read_report(doc);
            let _ = incident::doc::report_grid(doc);
            let timeline = incident::doc::read_timeline(doc).unwrap_or_default();
            let _ = incident::derive(timeline.iter().map(Option::as_ref));
            let _ = incident::doc::blob_refs(doc);
        }
        DocKind::Activity => {
            for container in wangge_core::activity::doc::CONTAINERS {
                let _ = wangge_core::activity::doc::entries(doc, container);
            }
            let _ = wangge_core::activity::doc::authors(doc);
            let _ = wangge_core::activity::doc::blob_refs(doc);
        }
        DocKind::Reference => {
            if let Ok(reference) = reference::read(doc) {
                let (boundaries, _) =
                    boundaries::from_reference(&reference.grids, wangge_core::model::CodeFormat::default());
                let _ = boundaries::GridIndex::new(boundaries);
            }
        }
    }
}

/// The documents [`changes_apply`] pushes to, chosen by an input's first byte.
pub fn push_target(selector: u8) -> String {
    match selector % 5 {
        0 => format!("register/{GRID}"),
        1 => format!("sensitive/{GRID}"),
        2 => format!("incident/{INCIDENT}"),
        3 => format!("activity/{GRID}:{MONTH}"),
        _ => format!("activity/{GRID}:{MONTH}:audit"),
    }
}

/// Changes a device pushes, through the server's whole push path (decode, author, apply,
/// missing dependencies, layout, scopes, incident and activity rules, store); changes the
/// server takes then reach another device, which applies them to its store and projection.
/// The input: a byte choosing the document, then changes (split at automerge's magic).
/// The request body the server saw is what `WANGGE_FUZZ_SAVE` receives.
pub fn changes_apply(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else { return };
    let doc = push_target(*selector);
    let changes = split_changes(rest);
    let request = SyncRequest {
        pushes: vec![DocChanges { doc: doc.clone(), changes: changes.iter().cloned().map(Into::into).collect() }],
        ..SyncRequest::default()
    };
    save_input(&wire::encode(&request));
    let fixture = ServerFixture::get();
    let Ok(response) = fixture.fresh().sync(&fixture.token, request) else { return };
    if !response.acks.contains(&doc) {
        return;
    }
    let store = DeviceFixture::get().enrolled();
    let Some(doc_id) = DocId::parse(&doc) else { return };
    if doc_id.kind == DocKind::Incident || doc_id.kind == DocKind::Activity {
        // New to the device: it gets the server's snapshot and applies that.
        let Ok(round) = store.begin_sync(DEFAULT_PULL_BUDGET) else { return };
        let _ = store.finish_sync(round, response);
    } else {
        let _ = store.apply_changes(&doc_id, &changes);
    }
}

/// A grid boundary file as the server imports it, checked as a partition and indexed as a
/// device indexes the reference document's boundaries; the input is also read as one
/// grid's geometry, as a device reads it from the reference document.
pub fn geojson_import(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = boundaries::parse_geometry_json(text);
    let Ok(grids) = boundaries::import_geojson(text) else { return };
    let _ = boundaries::check_partition(&grids);
    for grid in grids.iter().take(8) {
        let _ = grid.area_m2();
        let json = grid.geometry_json();
        let _ = boundaries::parse_geometry_json(&json);
    }
    let _ = boundaries::export_geojson(&grids);
    let index = boundaries::GridIndex::new(grids);
    for (lat, lng) in [(23.0, 113.0), (39.9, 116.4), (0.0, 0.0)] {
        if let Ok(point) = Wgs84::new(lat, lng) {
            let _ = index.locate(point);
            let _ = index.nearest(point);
        }
    }
}

/// A scanned or typed enrollment QR code.
pub fn enrollment_link(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = wangge_core::sync::link::parse_enrollment_link(text);
}

/// The validated fields a worker types or an import carries: ID numbers, phones, USCCs,
/// grid codes, blob names and document ids.
pub fn field_parsers(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(id) = IdNumber::parse(text) {
        let _ = format!("{id:?}");
    }
    if let Ok(phone) = Phone::parse(text) {
        let _ = format!("{phone:?}");
    }
    let _ = Uscc::parse(text);
    let _ = GridCode::parse_default(text);
    let _ = wangge_core::blobs::BlobHash::parse(text);
    let _ = DocId::parse(text);
    let _ = RecordKind::from_plural(text);
}

/// A `.changes` export of a removed document read back by a plain store, then applied to
/// it as the export's documentation says.
pub fn removed_changes(data: &[u8]) {
    let mut bytes = data.to_vec();
    fix_checksums(&mut bytes);
    save_input(&bytes);
    let fixture = DeviceFixture::get();
    let store = fixture.enrolled();
    let path = fixture.dir().join(format!("device.db.removed-register-{GRID}-1767225600000.changes"));
    if std::fs::write(&path, &bytes).is_err() {
        return;
    }
    if let Ok(removed) = store.read_removed_changes(&path) {
        let _ = store.apply_changes(&removed.doc, &removed.changes);
    }
}
