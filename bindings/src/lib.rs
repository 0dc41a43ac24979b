//! wangge-ffi: the uniffi surface of wangge-core for Kotlin, Swift and Python.
//!
//! Thin by design: objects wrap core objects, records mirror core types, errors are
//! mapped in one place. No SQL and no business rules live here. The full surface
//! (`FieldStore`, sync, validators) is built by the bindings issue; this crate already
//! builds as a cdylib so that the toolchain is exercised from the start.

uniffi::setup_scaffolding!("wangge");

/// The version of the wangge core inside this library, e.g. `0.1.0`.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// The store schema version this library reads and writes.
#[uniffi::export]
pub fn store_schema_version() -> u32 {
    wangge_core::SCHEMA_VERSION
}
