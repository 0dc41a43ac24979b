//! wangge-ffi: the uniffi surface of wangge-core for Kotlin, Swift and Python.
//!
//! Thin by design: [`FieldStore`] wraps the core's `Store`; records mirror core types and
//! convert with `From`/`TryFrom` (ids and dates as strings, checked on the way in); the
//! core's code enums are exported as they are; one [`ApiError`] is mapped in one place. No
//! SQL and no business rules live here.
//!
//! - `register.rs`: buildings, households, residents, organizations, components, conflicts.
//! - `incidents.rs`: reports, the actions of the closed loop, timelines, queries.
//! - `activity.rs`: visits, check-ins, patrols and their figures.
//! - `store.rs`: `FieldStore`, sync, and the listeners.

uniffi::setup_scaffolding!("wangge");

mod activity;
mod error;
mod incidents;
mod register;
mod store;

pub use activity::*;
pub use error::ApiError;
pub use incidents::*;
pub use register::*;
pub use store::*;

use error::Result;
use register::parse_date;
use wangge_core::calendar::Calendar;
use wangge_core::place::coords;

/// The version of the wangge core inside this library, e.g. `0.1.0`.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// The store schema version this library reads and writes.
#[uniffi::export]
pub fn store_schema_version() -> i32 {
    error::small_count(wangge_core::SCHEMA_VERSION)
}

/// Whether the file at `path` is a plain (unencrypted) store, from its first bytes: one
/// written by an app version that did not encrypt it. Convert it with
/// `encrypt_plain_store` before opening it with a key. `false` for an encrypted store and
/// for no file at all.
#[uniffi::export]
pub fn is_plain_store(path: String) -> Result<bool> {
    Ok(wangge_core::Store::is_plain_file(path)?)
}

/// Encrypts the plain store at `path` in place with `key` (32 bytes, kept by the app in
/// Android Keystore or iOS Keychain), with its photos, tracks and exports; records,
/// unsynced changes and enrollment stay. Then open it with `FieldStore.open(path, worker,
/// key)`. Close every `FieldStore` on the file first. Safe to interrupt: the plain store
/// stays usable until the encrypted copy replaces it, and a second run finishes the job.
/// Raises `Storage`, changing nothing, when the store is open, already encrypted, or
/// missing; `InvalidInput` for a key that is not 32 bytes.
#[uniffi::export]
pub fn encrypt_plain_store(path: String, key: Vec<u8>) -> Result<()> {
    Ok(wangge_core::Store::encrypt_plain(path, store::store_key(key)?)?)
}

/// `start` plus `days` working days on China's official calendar (adjusted working
/// weekends and holidays included), as `YYYY-MM-DD`. `start` itself does not count.
#[uniffi::export]
pub fn add_working_days(start: String, days: i32) -> Result<String> {
    let start = parse_date("start", &start)?;
    let days = error::in_range("days", days)?;
    Ok(Calendar::china().add_working_days(start, days).value.to_string())
}

/// Whether `date` (`YYYY-MM-DD`) is a working day on China's official calendar.
#[uniffi::export]
pub fn is_working_day(date: String) -> Result<bool> {
    Ok(Calendar::china().is_working_day(parse_date("date", &date)?).value)
}

/// What a valid resident ID number (居民身份证号码) says.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct IdNumberInfo {
    /// 18 characters, a final `x` upper-cased.
    pub normalized: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    pub gender: Gender,
    /// The 6-digit administrative division code of the first registration.
    pub region_code: String,
}

/// Checks an ID number (length, region, birth date, check character); raises
/// `InvalidInput` saying what is wrong.
#[uniffi::export]
pub fn validate_id_number(s: String) -> Result<IdNumberInfo> {
    let id = wangge_core::model::IdNumber::parse(&s)?;
    Ok(IdNumberInfo {
        normalized: id.as_str().to_owned(),
        birth_date: id.birth_date().to_string(),
        gender: id.gender(),
        region_code: id.region_code().to_owned(),
    })
}

/// Checks a unified social credit code (统一社会信用代码) and returns it normalized;
/// raises `InvalidInput` saying what is wrong.
#[uniffi::export]
pub fn validate_uscc(s: String) -> Result<String> {
    Ok(wangge_core::model::Uscc::parse(&s)?.as_str().to_owned())
}

/// Checks a mainland phone number (mobile or fixed line) and returns it normalized.
#[uniffi::export]
pub fn validate_phone(s: String) -> Result<String> {
    Ok(wangge_core::model::Phone::parse(&s)?.as_str().to_owned())
}

/// What an enrollment QR code carries: the server's address (when the link names one)
/// and the one-time code, for `FieldStore.enroll`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrollmentLink {
    pub server: Option<String>,
    pub code: String,
}

/// Reads a scanned enrollment QR code (`wangge:enroll?server=…&code=…`) or a code typed by
/// hand; anything else is `InvalidInput` with the reason.
#[uniffi::export]
pub fn parse_enrollment_link(text: String) -> Result<EnrollmentLink> {
    let link = wangge_core::sync::link::parse_enrollment_link(&text)?;
    Ok(EnrollmentLink { server: link.server, code: link.code })
}

/// WGS-84 (GPS; what the store keeps) → GCJ-02, what Amap (高德) and Tencent maps draw.
/// Outside mainland China (Hong Kong, Macau, Taiwan, abroad) the position comes back
/// unchanged. Raises `InvalidInput` for a latitude outside ±90, a longitude outside ±180,
/// or NaN.
#[uniffi::export]
pub fn wgs84_to_gcj02(lat: f64, lng: f64) -> Result<LatLng> {
    Ok(coords::wgs84_to_gcj02(checked_position(lat, lng)?).into())
}

/// GCJ-02 (a position picked on an Amap or Tencent map) → WGS-84, to store; within
/// 0.5 m of the exact inverse. Outside mainland China the position comes back unchanged.
#[uniffi::export]
pub fn gcj02_to_wgs84(lat: f64, lng: f64) -> Result<LatLng> {
    Ok(coords::gcj02_to_wgs84(checked_position(lat, lng)?).into())
}

/// WGS-84 (GPS; what the store keeps) → BD-09, what Baidu maps draw. Outside mainland
/// China the position comes back unchanged.
#[uniffi::export]
pub fn wgs84_to_bd09(lat: f64, lng: f64) -> Result<LatLng> {
    Ok(coords::wgs84_to_bd09(checked_position(lat, lng)?).into())
}

/// BD-09 (a position picked on a Baidu map) → WGS-84, to store; within 0.5 m of the
/// exact inverse. Outside mainland China the position comes back unchanged.
#[uniffi::export]
pub fn bd09_to_wgs84(lat: f64, lng: f64) -> Result<LatLng> {
    Ok(coords::bd09_to_wgs84(checked_position(lat, lng)?).into())
}

impl From<coords::LatLng> for LatLng {
    fn from(position: coords::LatLng) -> Self {
        LatLng { lat: position.lat, lng: position.lng }
    }
}

/// A position from the app: latitude within ±90, longitude within ±180 (NaN is neither).
fn checked_position(lat: f64, lng: f64) -> Result<coords::LatLng> {
    if !(-90.0..=90.0).contains(&lat) {
        return Err(error::invalid("lat", "must be a number from -90 to 90"));
    }
    if !(-180.0..=180.0).contains(&lng) {
        return Err(error::invalid("lng", "must be a number from -180 to 180"));
    }
    Ok(coords::LatLng { lat, lng })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn working_days_follow_the_official_calendar() {
        // 2025-09-30 (Tue) + 1 working day: the National Day holiday runs to 10-08, and
        // 10-11 (Sat) is an adjusted working day.
        assert_eq!(add_working_days("2025-09-30".into(), 1).unwrap(), "2025-10-09");
        assert!(is_working_day("2025-10-11".into()).unwrap());
        assert!(!is_working_day("2025-10-01".into()).unwrap());
        assert!(matches!(add_working_days("2025-13-01".into(), 1), Err(ApiError::InvalidInput { .. })));
    }

    #[test]
    fn id_numbers_and_credit_codes_are_checked() {
        let info = validate_id_number("11010519491231002x".into()).unwrap();
        assert_eq!(info.normalized, "11010519491231002X");
        assert_eq!(info.birth_date, "1949-12-31");
        assert_eq!(info.gender, Gender::Female);
        assert_eq!(info.region_code, "110105");
        let error = validate_id_number("110105194912310021".into()).unwrap_err();
        assert!(matches!(error, ApiError::InvalidInput { field: Some(ref field), .. } if field == "id_number"));
        assert!(validate_uscc("91350100M000100Y43".into()).is_ok());
        assert!(validate_uscc("91350100M000100Y44".into()).is_err());
    }

    #[test]
    fn errors_keep_the_cores_message_without_personal_data() {
        let error = validate_id_number("110105194912310021".into()).unwrap_err();
        assert!(!error.to_string().contains("110105194912310021"));
    }
}
