//! The one place the core learns what time it is: the device's wall clock, corrected by
//! the sync server's.
//!
//! A grid worker's phone may say anything: a year off, 1970 after a flat battery, 2040 set
//! by hand. Deadlines are the city's (a department has five working days by the server's
//! calendar, not by a phone's), so every answer of the sync server carries its time
//! ([`crate::sync::wire::SERVER_TIME_HEADER`]) and the store keeps the offset between the
//! server's time and the device's, persisted. [`Clock::now_ms`] is the device's clock plus
//! that offset: the server's time as this device best knows it.
//!
//! Everything in the core that needs "now" asks the store's clock: the time stamped on an
//! incident action (which starts and stops deadline clocks), on a capture's change and on
//! a patrol's activity change (informational), record ids (UUIDv7, time-ordered), the
//! day a birth date may not pass, and the "now" of deadline queries
//! ([`crate::Store::now`]). Before the device has heard from a server (a store used
//! without one), the offset is 0 and the clock is the device's own.
//!
//! The device's clock itself is a [`WallClock`]: the system's unless
//! [`crate::OpenOptions::clock`] gives another (a host with a better time source, or a
//! test that sets a device a year ahead):
//!
//! ```
//! use std::sync::Arc;
//! use wangge_core::clock::{Clock, WallClock};
//!
//! let year_ms = 365 * 24 * 3600 * 1000;
//! let ahead: Arc<dyn WallClock> = Arc::new(move || chrono::Utc::now().timestamp_millis() + year_ms);
//! let clock = Clock::new(ahead);
//! // Until a server answers, the device's own clock is all there is.
//! assert!(clock.now_ms() > chrono::Utc::now().timestamp_millis() + year_ms - 60_000);
//! // An answer stamped 1,000 by the server, to a request sent at the device's 0 and
//! // received at its 2,000: the two clocks agree.
//! assert_eq!(Clock::offset_from(1_000, 0, 2_000), 0);
//! ```
//!
//! A device whose clock is changed after its last sync is off by that change until its
//! next sync (the offset is measured against the clock as it was).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};

use crate::calendar::CHINA_TIME;

/// A device's wall clock: milliseconds since 1970-01-01 UTC, as the device believes.
pub trait WallClock: Send + Sync {
    fn now_ms(&self) -> i64;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

impl<F: Fn() -> i64 + Send + Sync> WallClock for F {
    fn now_ms(&self) -> i64 {
        self()
    }
}

/// The device's wall clock and the offset that takes it to the server's time. Clones
/// share the offset.
#[derive(Clone)]
pub struct Clock {
    wall: Arc<dyn WallClock>,
    offset_ms: Arc<AtomicI64>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock").field("offset_ms", &self.offset_ms()).finish_non_exhaustive()
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new(Arc::new(SystemClock))
    }
}

impl Clock {
    /// A clock on `wall`, not yet corrected (offset 0).
    pub fn new(wall: Arc<dyn WallClock>) -> Clock {
        Clock { wall, offset_ms: Arc::new(AtomicI64::new(0)) }
    }

    /// The device's own clock, uncorrected: only for measuring against the server's.
    pub fn device_ms(&self) -> i64 {
        self.wall.now_ms()
    }

    /// What to add to the device's clock to get the server's time.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }

    /// The offset measured from one exchange: the server stamped `server_ms` on an answer to
    /// a request sent at device time `sent_ms` and received at `received_ms` (the server's
    /// stamp taken as the middle of the round trip: off by at most half of it).
    pub fn offset_from(server_ms: i64, sent_ms: i64, received_ms: i64) -> i64 {
        server_ms.saturating_sub(sent_ms / 2 + received_ms / 2)
    }

    /// The server's time as this device best knows it (ms since 1970-01-01 UTC).
    pub fn now_ms(&self) -> i64 {
        self.device_ms().saturating_add(self.offset_ms())
    }

    /// [`Clock::now_ms`] in China's time zone (UTC+8), as deadline queries take it.
    pub fn now(&self) -> DateTime<FixedOffset> {
        CHINA_TIME.timestamp_millis_opt(self.now_ms()).single().unwrap_or_else(|| {
            // Out of chrono's range only with an absurd offset: the device's own clock then.
            chrono::Utc::now().with_timezone(&CHINA_TIME)
        })
    }

    /// Today's date in China: a child born this morning in Beijing is not born in the
    /// future for a device whose clock says UTC.
    pub fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    /// A new time-ordered id (UUIDv7) stamped with [`Clock::now_ms`]. Ids made in the same
    /// millisecond are still in the order they were made (one counter for the process,
    /// as `Uuid::now_v7` has).
    pub fn uuid_v7(&self) -> uuid::Uuid {
        static SEQUENCE: std::sync::Mutex<uuid::ContextV7> = std::sync::Mutex::new(uuid::ContextV7::new());
        let ms = u64::try_from(self.now_ms()).unwrap_or(0);
        let sequence = SEQUENCE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let timestamp = uuid::Timestamp::from_unix(&*sequence, ms / 1000, (ms % 1000) as u32 * 1_000_000);
        uuid::Uuid::new_v7(timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;

    #[test]
    fn ids_made_in_one_millisecond_are_in_the_order_they_were_made() {
        let clock = Clock::new(Arc::new(|| 1_793_840_400_000));
        let ids: Vec<uuid::Uuid> = (0..1000).map(|_| clock.uuid_v7()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(ids[0].get_timestamp().map(|at| at.to_unix().0), Some(1_793_840_400));
    }

    #[test]
    fn a_corrected_clock_tells_the_servers_time_whatever_the_devices_says() {
        let set_to_1970: Arc<dyn WallClock> = Arc::new(|| 5_000);
        let clock = Clock::new(set_to_1970);
        assert_eq!(clock.now_ms(), 5_000);
        let server_ms = 1_750_000_000_000;
        clock.set_offset_ms(Clock::offset_from(server_ms, 4_000, 6_000));
        assert_eq!(clock.now_ms(), server_ms);
        assert_eq!(clock.today(), NaiveDate::from_ymd_opt(2025, 6, 15).expect("a date"));
        let id = clock.uuid_v7();
        let (secs, _) = id.get_timestamp().expect("a UUIDv7 has a time").to_unix();
        assert_eq!(secs as i64, server_ms / 1000);
    }

    #[test]
    fn the_offset_is_measured_from_the_middle_of_the_round_trip() {
        assert_eq!(Clock::offset_from(10_000, 0, 2_000), 9_000);
        assert_eq!(Clock::offset_from(0, YEAR_MS, YEAR_MS + 100), -YEAR_MS - 50);
    }

    #[test]
    fn clones_share_the_offset() {
        let clock = Clock::default();
        let other = clock.clone();
        clock.set_offset_ms(-YEAR_MS);
        assert_eq!(other.offset_ms(), -YEAR_MS);
    }
}
