//! Whether a device's request goes ahead now: its token has not expired (a device that
//! made no request for the token's lifetime enrolls again), and it stays within its
//! request rate.
//!
//! Expiry slides: every request moves it a lifetime ahead (written at most once a minute,
//! with the device's last request). Rates are counted per server node, in memory
//! (`governor`'s keyed limiter): a device spread over n nodes gets at most n times its rate.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::ServiceError;
use crate::storage::Device;

/// The server's access rules; [`Default`] is what `wangge-server serve` runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessPolicy {
    /// How long a token lives without being used.
    pub token_lifetime: Duration,
    /// A device's sustained request rate.
    pub requests_per_second: NonZeroU32,
    /// How many requests a device may make at once after a quiet spell: a first sync's
    /// pages and a day of photos' chunks fit.
    pub burst: NonZeroU32,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        Self {
            // Half a year: a part-time worker who stops for a season keeps their device.
            token_lifetime: Duration::from_secs(180 * 24 * 3600),
            requests_per_second: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// How often a device's last request is written (at most).
const SEEN_RESOLUTION_MS: i64 = 60_000;

/// The policy with its per-device counters.
#[derive(Debug)]
pub(crate) struct Access {
    policy: AccessPolicy,
    limiter: DefaultKeyedRateLimiter<String>,
}

/// What a request needs written after it was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewal {
    None,
    /// The device's last request and its token's new expiry.
    Renew {
        last_seen_ms: i64,
        token_expires_ms: i64,
    },
}

impl Access {
    pub(crate) fn new(policy: AccessPolicy) -> Self {
        let quota = Quota::per_second(policy.requests_per_second).allow_burst(policy.burst);
        Self { policy, limiter: RateLimiter::keyed(quota) }
    }

    /// When a token issued now expires.
    pub(crate) fn expiry_from(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(i64::try_from(self.policy.token_lifetime.as_millis()).unwrap_or(i64::MAX))
    }

    /// Lets a request of a (not revoked) device through, or says why not.
    pub(crate) fn admit(&self, device: &Device, now_ms: i64) -> Result<Renewal, ServiceError> {
        if device.token_expires_ms.is_some_and(|expires| expires <= now_ms) {
            return Err(ServiceError::TokenExpired { lifetime_days: self.policy.token_lifetime.as_secs() / 86_400 });
        }
        if let Err(not_until) = self.limiter.check_key(&device.id) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(ServiceError::RateLimited { retry_after_s: wait.as_secs() + 1 });
        }
        let stale = device.last_seen_ms.is_none_or(|seen| now_ms - seen >= SEEN_RESOLUTION_MS);
        Ok(if stale || device.token_expires_ms.is_none() {
            Renewal::Renew { last_seen_ms: now_ms, token_expires_ms: self.expiry_from(now_ms) }
        } else {
            Renewal::None
        })
    }

    /// Forgets the counters of devices that are back to a full burst (housekeeping).
    pub(crate) fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn device(token_expires_ms: Option<i64>, last_seen_ms: Option<i64>) -> Device {
        Device {
            id: "d1".into(),
            person: "w1".into(),
            actor: vec![0; 16],
            revoked: false,
            token_expires_ms,
            last_seen_ms,
            last_sync: None,
        }
    }

    fn policy(burst: u32) -> AccessPolicy {
        AccessPolicy {
            token_lifetime: Duration::from_secs(10),
            requests_per_second: NonZeroU32::new(1).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn an_expired_token_is_refused_and_a_used_one_slides_forward() {
        let access = Access::new(policy(100));
        let refused = access.admit(&device(Some(65_000), Some(0)), 65_000).unwrap_err();
        assert!(matches!(refused, ServiceError::TokenExpired { .. }), "{refused:?}");
        assert_eq!(refused.code(), "token_expired");
        assert_eq!(refused.status(), 401);
        assert_eq!(
            access.admit(&device(Some(65_000), Some(0)), 64_999).unwrap(),
            Renewal::Renew { last_seen_ms: 64_999, token_expires_ms: 74_999 }
        );
        // Seen within the minute: nothing to write.
        assert_eq!(access.admit(&device(Some(90_000), Some(50_000)), 60_000).unwrap(), Renewal::None);
        // Enrolled before tokens expired: given a lifetime on first use.
        assert_eq!(
            access.admit(&device(None, Some(60_000)), 60_001).unwrap(),
            Renewal::Renew { last_seen_ms: 60_001, token_expires_ms: 70_001 }
        );
    }

    #[test]
    fn a_device_past_its_burst_is_told_when_to_come_back_and_others_are_not_affected() {
        let access = Access::new(policy(3));
        let busy = device(None, None);
        for _ in 0..3 {
            access.admit(&busy, 0).unwrap();
        }
        let refused = access.admit(&busy, 0).unwrap_err();
        assert!(matches!(refused, ServiceError::RateLimited { retry_after_s: 1..=2 }), "{refused:?}");
        assert_eq!(refused.status(), 429);
        let other = Device { id: "d2".into(), ..busy };
        access.admit(&other, 0).unwrap();
    }
}
