//! A patrol's GPS track: recorded offline, kept as a compact blob, summarised.
//!
//! The blob: `WGT1`, the number of points, then per point the differences from the one
//! before (time in ms, latitude and longitude in 1e-6° ≈ 0.11 m), as zigzag LEB128
//! varints, the whole compressed with zstd. A 2-hour walk at one point per 5 s is about
//! 5 KB. Decoding checks everything: a blob that is not a track is an error, not a guess.

use std::io::Read;

use geo::{Distance, Haversine, Point};

use crate::model::{BuildingId, Wgs84};

const MAGIC: &[u8; 4] = b"WGT1";
/// More points than a week of one per second: a blob claiming more is refused.
pub const MAX_POINTS: u64 = 604_800;
const MICRODEGREES: f64 = 1e6;
/// Faster than this between two points (108 km/h) is not a patrol: the segment is flagged
/// and not counted (a GPS jump, or a ride in a car).
pub const MAX_PLAUSIBLE_SPEED_MPS: f64 = 30.0;
/// A single step longer than this is flagged whatever the time between (GPS drift after a
/// gap, a point from the last fix).
pub const MAX_PLAUSIBLE_STEP_M: f64 = 2_000.0;
/// A building is "passed" when the track comes this close to it.
pub const PASSED_WITHIN_M: f64 = 30.0;

/// A fix: when (device ms since 1970) and where (WGS-84).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackPoint {
    pub time_ms: i64,
    pub lat: f64,
    pub lng: f64,
}

/// Why a blob is not a track.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    #[error("not a track blob: {0}")]
    Malformed(&'static str),
    #[error("a track of {0} points is over the limit of {MAX_POINTS}")]
    TooLong(u64),
    #[error("a track needs at least 2 points in time order with valid coordinates")]
    Invalid,
}

/// A patrol in figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackSummary {
    pub started_ms: i64,
    pub ended_ms: i64,
    /// Along the plausible segments only.
    pub distance_m: f64,
    pub n_points: u32,
    /// Segments too fast or too long to have been walked or ridden on patrol.
    pub n_flagged: u32,
}

impl TrackSummary {
    pub fn duration_s(&self) -> i64 {
        (self.ended_ms - self.started_ms) / 1000
    }
}

fn micro(degrees: f64) -> i64 {
    (degrees * MICRODEGREES).round() as i64
}

/// Checks a track: at least 2 points, times not going back, valid coordinates.
pub fn check(points: &[TrackPoint]) -> Result<(), TrackError> {
    let valid = |p: &TrackPoint| Wgs84::new(p.lat, p.lng).is_ok();
    if points.len() < 2 || !points.iter().all(valid) || points.windows(2).any(|w| w[1].time_ms < w[0].time_ms) {
        return Err(TrackError::Invalid);
    }
    if points.len() as u64 > MAX_POINTS {
        return Err(TrackError::TooLong(points.len() as u64));
    }
    Ok(())
}

/// The blob of a track (see the module doc).
pub fn encode(points: &[TrackPoint]) -> Result<Vec<u8>, TrackError> {
    check(points)?;
    let mut raw = Vec::with_capacity(points.len() * 6 + 16);
    raw.extend_from_slice(MAGIC);
    put_varint(&mut raw, points.len() as u64);
    let mut previous = (0i64, 0i64, 0i64);
    for point in points {
        let now = (point.time_ms, micro(point.lat), micro(point.lng));
        for (value, before) in [(now.0, previous.0), (now.1, previous.1), (now.2, previous.2)] {
            put_varint(&mut raw, zigzag(value.wrapping_sub(before)));
        }
        previous = now;
    }
    // Compressing a Vec in memory fails only on allocation failure.
    zstd::bulk::compress(&raw, 19).map_err(|_| TrackError::Malformed("compression failed"))
}

/// The points of a track blob.
pub fn decode(blob: &[u8]) -> Result<Vec<TrackPoint>, TrackError> {
    // The largest honest blob: MAX_POINTS points of 3 varints of at most 10 bytes.
    let limit = 16 + MAX_POINTS * 30;
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::with_buffer(blob)
        .map_err(|_| TrackError::Malformed("not zstd"))?
        .single_frame()
        .take(limit)
        .read_to_end(&mut raw)
        .map_err(|_| TrackError::Malformed("not zstd"))?;
    let rest = raw.strip_prefix(MAGIC.as_slice()).ok_or(TrackError::Malformed("no magic"))?;
    let mut cursor = rest;
    let n = get_varint(&mut cursor)?;
    if n > MAX_POINTS {
        return Err(TrackError::TooLong(n));
    }
    let mut points = Vec::with_capacity(n as usize);
    let mut previous = (0i64, 0i64, 0i64);
    for _ in 0..n {
        let mut next = [0i64; 3];
        for (value, before) in next.iter_mut().zip([previous.0, previous.1, previous.2]) {
            *value = before.wrapping_add(unzigzag(get_varint(&mut cursor)?));
        }
        previous = (next[0], next[1], next[2]);
        points.push(TrackPoint {
            time_ms: next[0],
            lat: next[1] as f64 / MICRODEGREES,
            lng: next[2] as f64 / MICRODEGREES,
        });
    }
    if !cursor.is_empty() {
        return Err(TrackError::Malformed("bytes after the last point"));
    }
    check(&points)?;
    Ok(points)
}

/// The patrol in figures: distance along plausible segments, implausible ones flagged.
pub fn summarize(points: &[TrackPoint]) -> Result<TrackSummary, TrackError> {
    check(points)?;
    let mut distance_m = 0.0;
    let mut n_flagged = 0;
    for pair in points.windows(2) {
        let step = metres(&pair[0], &pair[1]);
        let seconds = (pair[1].time_ms - pair[0].time_ms) as f64 / 1000.0;
        let too_fast = if seconds > 0.0 { step / seconds > MAX_PLAUSIBLE_SPEED_MPS } else { step > 1.0 };
        if too_fast || step > MAX_PLAUSIBLE_STEP_M {
            n_flagged += 1;
        } else {
            distance_m += step;
        }
    }
    Ok(TrackSummary {
        started_ms: points[0].time_ms,
        ended_ms: points[points.len() - 1].time_ms,
        distance_m,
        n_points: u32::try_from(points.len()).unwrap_or(u32::MAX),
        n_flagged,
    })
}

/// The buildings the track passes within `within_m`, in the order given.
pub fn buildings_passed(points: &[TrackPoint], buildings: &[(BuildingId, Wgs84)], within_m: f64) -> Vec<BuildingId> {
    buildings
        .iter()
        .filter(|(_, at)| {
            points.windows(2).any(|pair| distance_to_segment_m(at, &pair[0], &pair[1]) <= within_m)
                || points.first().is_some_and(|p| metres(p, &as_point(at)) <= within_m)
        })
        .map(|(id, _)| *id)
        .collect()
}

fn as_point(at: &Wgs84) -> TrackPoint {
    TrackPoint { time_ms: 0, lat: at.lat(), lng: at.lng() }
}

fn metres(a: &TrackPoint, b: &TrackPoint) -> f64 {
    Haversine.distance(Point::new(a.lng, a.lat), Point::new(b.lng, b.lat))
}

/// Distance from a point to a segment, on a local plane around the point (exact enough
/// for segments of a patrol: metres to hundreds of metres).
fn distance_to_segment_m(at: &Wgs84, a: &TrackPoint, b: &TrackPoint) -> f64 {
    const METRES_PER_DEGREE: f64 = 111_320.0;
    let scale_x = METRES_PER_DEGREE * at.lat().to_radians().cos();
    let to_plane = |p: &TrackPoint| ((p.lng - at.lng()) * scale_x, (p.lat - at.lat()) * METRES_PER_DEGREE);
    let (ax, ay) = to_plane(a);
    let (bx, by) = to_plane(b);
    let (dx, dy) = (bx - ax, by - ay);
    let length2 = dx * dx + dy * dy;
    let t = if length2 == 0.0 { 0.0 } else { (-(ax * dx + ay * dy) / length2).clamp(0.0, 1.0) };
    let (px, py) = (ax + t * dx, ay + t * dy);
    (px * px + py * py).sqrt()
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn get_varint(input: &mut &[u8]) -> Result<u64, TrackError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first().ok_or(TrackError::Malformed("truncated"))?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(TrackError::Malformed("a number is too long"))
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A walk of `n` points one per 5 s at about 1.3 m/s, weaving through the streets
    /// around (22.58, 113.08), with GPS noise of a few metres (deterministic).
    pub(crate) fn walk(n: usize) -> Vec<TrackPoint> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut noise = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 1000) as f64 / 1000.0 - 0.5
        };
        let (mut lat, mut lng) = (22.58, 113.08);
        let mut heading: f64 = 0.3;
        (0..n)
            .map(|i| {
                heading += noise() * 0.4;
                if i % 120 == 0 {
                    heading += std::f64::consts::FRAC_PI_2; // a street corner
                }
                lat += 6.5 * heading.cos() / 111_320.0;
                lng += 6.5 * heading.sin() / (111_320.0 * lat.to_radians().cos());
                TrackPoint {
                    time_ms: 1_795_000_000_000 + i as i64 * 5_000 + (noise() * 200.0) as i64,
                    lat: lat + noise() * 4e-5,
                    lng: lng + noise() * 4e-5,
                }
            })
            .collect()
    }

    #[test]
    fn a_two_hour_walk_encodes_under_20_kb_and_round_trips_to_a_tenth_of_a_metre() {
        let points = walk(2 * 3600 / 5);
        let blob = encode(&points).unwrap();
        assert!(blob.len() < 20 * 1024, "{} bytes", blob.len());
        let back = decode(&blob).unwrap();
        assert_eq!(back.len(), points.len());
        for (a, b) in points.iter().zip(&back) {
            assert_eq!(a.time_ms, b.time_ms);
            assert!(metres(a, b) < 0.1);
        }
    }

    #[test]
    fn the_summary_counts_plausible_distance_and_flags_jumps() {
        let mut points = walk(720);
        let honest = summarize(&points).unwrap();
        assert_eq!(honest.n_flagged, 0);
        assert_eq!(honest.duration_s() / 60, 59);
        // About 1.3 m/s plus noise for an hour.
        assert!((4_000.0..9_000.0).contains(&honest.distance_m), "{}", honest.distance_m);
        // A GPS jump of ~5 km for one point: both segments to and from it are flagged, and
        // the distance barely changes.
        points[300].lat += 0.045;
        let jumped = summarize(&points).unwrap();
        assert_eq!(jumped.n_flagged, 2);
        assert!((jumped.distance_m - honest.distance_m).abs() < 20.0);
    }

    #[test]
    fn buildings_near_the_track_are_passed_and_others_not() {
        let points = walk(100);
        let near = points[50];
        let beside = Wgs84::new(near.lat + 15.0 / 111_320.0, near.lng).unwrap();
        let far = Wgs84::new(near.lat + 0.01, near.lng + 0.01).unwrap();
        let (a, b) = (BuildingId::new(), BuildingId::new());
        assert_eq!(buildings_passed(&points, &[(a, beside), (b, far)], PASSED_WITHIN_M), vec![a]);
    }

    #[test]
    fn bad_tracks_and_bad_blobs_are_refused() {
        assert_eq!(encode(&walk(1)), Err(TrackError::Invalid));
        let mut backwards = walk(10);
        backwards.swap(3, 4);
        backwards[4].time_ms = backwards[3].time_ms - 1;
        assert_eq!(encode(&backwards), Err(TrackError::Invalid));
        assert!(matches!(decode(b"not a track"), Err(TrackError::Malformed(_))));
        let blob = encode(&walk(50)).unwrap();
        assert!(decode(&blob[..blob.len() / 2]).is_err());
        let mut raw = MAGIC.to_vec();
        put_varint(&mut raw, MAX_POINTS + 1);
        assert_eq!(decode(&zstd::bulk::compress(&raw, 3).unwrap()), Err(TrackError::TooLong(MAX_POINTS + 1)));
        let mut short = MAGIC.to_vec();
        put_varint(&mut short, 5);
        assert_eq!(decode(&zstd::bulk::compress(&short, 3).unwrap()), Err(TrackError::Malformed("truncated")));
    }
}
