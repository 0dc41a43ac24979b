//! Demo grids: seeded, deterministic registers that look like real ones.
//!
//! Tests, benchmarks and the demo app need grids of realistic size and shape —
//! 300 to 500 households in some 150 to 250 buildings, about three people per
//! household, shops, a school, manholes and street lamps — whose values pass
//! every validation. The generator builds them from word lists and code tables
//! (in `demo/data.rs`) with a ChaCha8 generator seeded from the options' seed
//! and the grid code, so the same seed and code always give the same records,
//! ids included:
//!
//! ```
//! use wangge_core::demo::{generate_grid, DemoOptions};
//! use wangge_core::model::GridCode;
//!
//! let code = GridCode::parse_default("440703001001001")?;
//! let options = DemoOptions { households: 40, ..DemoOptions::default() };
//! let records = generate_grid(&code, &options);
//! assert_eq!(records.households.len(), 40);
//! assert_eq!(records, generate_grid(&code, &options));
//! # Ok::<(), wangge_core::model::InvalidField>(())
//! ```
//!
//! Place names (township, community, roads) and the grid's position depend on
//! the grid code only, so a grid looks the same whatever the seed; people,
//! buildings and ids depend on both. Counties other than Jiangmen's three
//! districts get generic township names, no city or district in their
//! addresses, and a position near their provincial capital.
//!
//! Nothing here reads the clock or the environment: "today" is an option.

mod data;

use std::collections::{BTreeSet, HashSet};

use chacha20::ChaCha8Rng;
use chrono::{Datelike, Days, Months, NaiveDate};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{RngExt, SeedableRng};

use crate::model::{
    Address, BuildingId, BuildingUse, ComponentId, ComponentState, ComponentSubclass, Gender, Grid, GridCode, GridKind,
    GridRecords, HouseholdId, IdNumber, Label, NewBuilding, NewComponent, NewHousehold, NewOrganization, NewResident,
    OrganizationId, OrganizationKind, PersonName, PersonTag, Phone, Relation, ResidenceType, ResidentId, Room, Uscc,
    Wgs84,
};

use data::SurnamePool;

/// What to generate for one grid.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// The same seed (and grid code) gives the same records, ids included.
    pub seed: u64,
    pub households: usize,
    pub organizations: usize,
    pub components: usize,
    /// Share of households that are migrants 流动人口 (0 to 1); about 1% more are foreign.
    pub migrant_share: f64,
    /// The day ages are counted to; no one is born after it.
    pub today: NaiveDate,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: 1,
            households: 500,
            organizations: 50,
            components: 100,
            migrant_share: 0.2,
            // A fixed day, so that the default output never changes.
            today: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or(NaiveDate::MIN),
        }
    }
}

/// Generates the register of the grid `code`: buildings, households, residents,
/// organizations and components, every value valid by construction.
pub fn generate_grid(code: &GridCode, options: &DemoOptions) -> GridRecords {
    let place = Place::of(code);
    let seed = mix(options.seed ^ fnv1a(code.as_str().as_bytes()));
    let mut generator = Generator::new(ChaCha8Rng::seed_from_u64(seed), options, place);
    let mut slots = generator.buildings();
    generator.households(&mut slots);
    generator.organizations();
    generator.components();
    generator.records
}

/// The most grids [`generate_city`] numbers in one county: six townships of
/// 999 communities of four grids.
const MAX_CITY_GRIDS: usize = 6 * 999 * GRIDS_PER_COMMUNITY;
const GRIDS_PER_COMMUNITY: usize = 4;

/// Generates `n_grids` community grids of 江门市蓬江区 (440703) named like
/// `长堤社区第3网格`: four to a community and at least three communities to a
/// township, filling the district's six townships in code order. Each grid has
/// `households_per_grid` households, a tenth as many organizations and a fifth
/// as many components; grid `i` is the same whatever `n_grids` is as long as
/// the number of communities per township does not change. At most 23,976
/// grids are generated.
pub fn generate_city(n_grids: usize, households_per_grid: usize, seed: u64) -> Vec<(Grid, GridRecords)> {
    let n_grids = n_grids.min(MAX_CITY_GRIDS);
    let communities_per_township = n_grids.div_ceil(6 * GRIDS_PER_COMMUNITY).max(3);
    let options = DemoOptions {
        seed,
        households: households_per_grid,
        organizations: households_per_grid / 10,
        components: households_per_grid / 5,
        ..DemoOptions::default()
    };
    (0..n_grids)
        .map(|index| {
            let serial = index % GRIDS_PER_COMMUNITY + 1;
            let community = index / GRIDS_PER_COMMUNITY % communities_per_township + 1;
            let township = index / (GRIDS_PER_COMMUNITY * communities_per_township) + 1;
            let code = GridCode::parse_default(&format!("440703{township:03}{community:03}{serial:03}"))
                .expect("city grid codes are 15 digits under a real county by construction");
            let name = format!("{}第{serial}网格", Place::of(&code).community);
            let grid = Grid::new(code.clone(), &name, GridKind::Community)
                .expect("grid names are short and plain by construction");
            let records = generate_grid(&code, &options);
            (grid, records)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Place: names and geometry that depend on the grid code only.

/// A point in metres east (`x`) and north (`y`) of the grid's centre.
#[derive(Debug, Clone, Copy)]
struct Xy {
    x: f64,
    y: f64,
}

impl Xy {
    fn plus(self, other: Xy) -> Xy {
        Xy { x: self.x + other.x, y: self.y + other.y }
    }

    fn scaled(self, factor: f64) -> Xy {
        Xy { x: self.x * factor, y: self.y * factor }
    }

    /// Pulls the point back inside a circle of `radius` metres around the centre.
    fn within(self, radius: f64) -> Xy {
        let distance = self.x.hypot(self.y);
        if distance > radius { self.scaled(radius / distance) } else { self }
    }
}

/// A uniformly random point within `radius` metres of the origin.
fn scatter(rng: &mut ChaCha8Rng, radius: f64) -> Xy {
    let angle = rng.random_range(0.0..std::f64::consts::TAU);
    let distance = radius * rng.random::<f64>().sqrt();
    Xy { x: distance * angle.cos(), y: distance * angle.sin() }
}

/// A road, street or lane: numbers run along a straight line, odd on one side.
#[derive(Debug, Clone)]
struct Road {
    name: &'static str,
    origin: Xy,
    /// Unit vector along the road.
    direction: Xy,
    next_number: u32,
}

/// Metres between consecutive house numbers on the same side.
const METRES_PER_NUMBER: f64 = 6.0;
/// How far buildings and components may lie from the grid's centre.
const GRID_RADIUS: f64 = 400.0;

impl Road {
    fn new(rng: &mut ChaCha8Rng, name: &'static str) -> Road {
        let angle = rng.random_range(0.0..std::f64::consts::PI);
        let direction = Xy { x: angle.cos(), y: angle.sin() };
        // Start behind the centre so that the numbers used cross the grid.
        let origin = scatter(rng, 150.0).plus(direction.scaled(-180.0));
        Road { name, origin, direction, next_number: rng.random_range(1..=12) }
    }

    /// The next free number, skipping some as real numbering does.
    fn take_number(&mut self, rng: &mut ChaCha8Rng) -> u32 {
        let number = self.next_number;
        self.next_number += if rng.random_bool(0.8) { 2 } else { 4 };
        number
    }

    /// Where number `number` stands: odd numbers on the left, even on the right.
    fn point(&self, number: u32) -> Xy {
        let side = if number % 2 == 1 { 12.0 } else { -12.0 };
        let normal = Xy { x: -self.direction.y, y: self.direction.x };
        self.origin
            .plus(self.direction.scaled(f64::from(number) * METRES_PER_NUMBER / 2.0))
            .plus(normal.scaled(side))
            .within(GRID_RADIUS)
    }
}

/// Names and position of a grid, from its code alone.
#[derive(Debug, Clone)]
struct Place {
    county_code: String,
    /// `江门市`, empty for counties the tables do not know.
    city: &'static str,
    /// `蓬江区`, empty for counties the tables do not know.
    district: &'static str,
    township: &'static str,
    /// `长堤社区`.
    community: String,
    /// `长堤`, for names such as 长堤小学.
    community_short: &'static str,
    area_code: Option<&'static str>,
    lat: f64,
    lng: f64,
    roads: Vec<Road>,
    lanes: Vec<Road>,
}

/// Metres per degree of latitude.
const METRES_PER_DEGREE: f64 = 111_320.0;

impl Place {
    fn of(code: &GridCode) -> Place {
        let county_code = code.county_code();
        let county = data::COUNTIES.iter().find(|county| county.code == county_code);
        let township_no = segment_number(&code.township_code()[county_code.len()..]);
        let community_no = segment_number(&code.community_code()[code.township_code().len()..]);

        let township = county
            .and_then(|county| county.townships.get(township_no.wrapping_sub(1)))
            .copied()
            .unwrap_or_else(|| pick_by_hash(data::GENERIC_TOWNSHIPS, code.township_code()));
        // Consecutive community codes of one township get different names.
        let index = township_no.wrapping_sub(1).wrapping_mul(11).wrapping_add(community_no.wrapping_sub(1));
        let community_short = data::COMMUNITIES[index % data::COMMUNITIES.len()];

        let (mut lat, mut lng) = match county {
            Some(county) => (county.lat, county.lng),
            None => {
                let (lat, lng) = province_centre(&county_code[..2]);
                let offset = scatter(&mut rng_for(county_code), 15_000.0);
                offset_degrees(lat, lng, offset)
            }
        };
        // Townships lie within 4 km of the county centre, communities within
        // 1.2 km of their township's, grids within 500 m of their community's.
        for (prefix, radius) in
            [(code.township_code(), 4_000.0), (code.community_code(), 1_200.0), (code.as_str(), 500.0)]
        {
            (lat, lng) = offset_degrees(lat, lng, scatter(&mut rng_for(prefix), radius));
        }

        let mut rng = rng_for(code.as_str());
        let mut roads: Vec<Road> = Vec::new();
        for name in pick_distinct(&mut rng, data::ROADS, 2) {
            roads.push(Road::new(&mut rng, name));
        }
        for name in pick_distinct(&mut rng, data::STREETS, 1) {
            roads.push(Road::new(&mut rng, name));
        }
        let lanes = pick_distinct(&mut rng, data::LANES, 5).into_iter().map(|name| Road::new(&mut rng, name)).collect();

        Place {
            county_code: county_code.to_owned(),
            city: county.map_or("", |county| county.city),
            district: county.map_or("", |county| county.district),
            township,
            community: format!("{community_short}社区"),
            community_short,
            area_code: county.map(|county| county.area_code),
            lat,
            lng,
            roads,
            lanes,
        }
    }

    /// `江门市蓬江区白沙街道长堤社区`: where every standard address of the grid starts.
    fn address_prefix(&self) -> String {
        format!("{}{}{}{}", self.city, self.district, self.township, self.community)
    }

    /// `江门市蓬江区` or, for unknown counties, nothing: how local names begin.
    fn local_name_prefix(&self) -> String {
        format!("{}{}", self.city, self.district)
    }

    fn to_wgs84(&self, point: Xy) -> Wgs84 {
        let (lat, lng) = offset_degrees(self.lat, self.lng, point);
        Wgs84::new(lat, lng).expect("points lie within a few kilometres of a real place by construction")
    }
}

fn offset_degrees(lat: f64, lng: f64, offset: Xy) -> (f64, f64) {
    let lat_new = lat + offset.y / METRES_PER_DEGREE;
    let lng_new = lng + offset.x / (METRES_PER_DEGREE * lat.to_radians().cos());
    (lat_new, lng_new)
}

/// Provincial capitals, the centre of grids in counties the tables do not know.
fn province_centre(province: &str) -> (f64, f64) {
    match province {
        "11" => (39.904, 116.407),
        "12" => (39.125, 117.190),
        "13" => (38.042, 114.514),
        "14" => (37.870, 112.549),
        "15" => (40.842, 111.749),
        "21" => (41.805, 123.431),
        "22" => (43.817, 125.324),
        "23" => (45.803, 126.535),
        "31" => (31.230, 121.474),
        "32" => (32.060, 118.797),
        "33" => (30.274, 120.155),
        "34" => (31.821, 117.227),
        "35" => (26.074, 119.296),
        "36" => (28.683, 115.858),
        "37" => (36.651, 117.120),
        "41" => (34.747, 113.625),
        "42" => (30.593, 114.305),
        "43" => (28.228, 112.939),
        "45" => (22.817, 108.366),
        "46" => (20.044, 110.199),
        "50" => (29.563, 106.551),
        "51" => (30.572, 104.066),
        "52" => (26.647, 106.630),
        "53" => (25.038, 102.718),
        "54" => (29.652, 91.172),
        "61" => (34.341, 108.940),
        "62" => (36.061, 103.834),
        "63" => (36.617, 101.778),
        "64" => (38.487, 106.231),
        "65" => (43.825, 87.617),
        "71" | "83" => (25.033, 121.565),
        "81" => (22.320, 114.170),
        "82" => (22.199, 113.544),
        // 44 and anything else: Guangzhou.
        _ => (23.129, 113.264),
    }
}

/// A code segment as a number; segments are all digits by [`GridCode`]'s checks.
fn segment_number(segment: &str) -> usize {
    segment.parse().unwrap_or(0)
}

/// FNV-1a: a hash that, unlike std's, is stable across Rust versions.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64's finaliser, so that nearby seeds give unrelated streams.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn rng_for(key: &str) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(fnv1a(key.as_bytes())))
}

fn pick_by_hash(items: &'static [&'static str], key: &str) -> &'static str {
    items[(fnv1a(key.as_bytes()) % items.len() as u64) as usize]
}

fn pick_distinct(rng: &mut ChaCha8Rng, items: &'static [&'static str], n: usize) -> Vec<&'static str> {
    let mut shuffled = items.to_vec();
    shuffled.shuffle(rng);
    shuffled.truncate(n);
    shuffled
}

fn pick_weighted<'t, T>(rng: &mut ChaCha8Rng, items: &'t [(T, u32)]) -> &'t T {
    let total: u32 = items.iter().map(|(_, weight)| weight).sum();
    let mut ticket = rng.random_range(0..total.max(1));
    for (item, weight) in items {
        if ticket < *weight {
            return item;
        }
        ticket -= weight;
    }
    &items[items.len() - 1].0
}

// ---------------------------------------------------------------------------
// Generator: everything that depends on the seed.

/// Where a household can live: a whole house, a floor of one, or a flat.
#[derive(Debug, Clone)]
struct Slot {
    building: BuildingId,
    room: Option<String>,
}

/// A building where an organization can have its premises.
#[derive(Debug, Clone)]
struct Site {
    building: BuildingId,
    address: String,
    at: Xy,
    floors: u16,
    /// Shops already on the ground floor, to number them.
    n_shops: usize,
}

/// Household slots by the kind of building, which decides who tends to live there.
#[derive(Debug, Default)]
struct Slots {
    /// Self-built houses and floors above shops, often let to migrants.
    houses: Vec<Slot>,
    /// Flats in apartment buildings.
    flats: Vec<Slot>,
}

#[derive(Debug, Default)]
struct Sites {
    shops: Vec<Site>,
    offices: Vec<Site>,
    school: Option<Site>,
    clinic: Option<Site>,
    service_centre: Option<Site>,
}

struct Generator<'a> {
    rng: ChaCha8Rng,
    options: &'a DemoOptions,
    place: Place,
    /// Unix milliseconds of the next record id; increases with every id.
    clock_millis: u64,
    id_numbers: HashSet<IdNumber>,
    phones: HashSet<String>,
    organization_names: HashSet<String>,
    sites: Sites,
    records: GridRecords,
}

/// The kinds of household and how often each occurs among registered and
/// migrant households (a migrant's parents and children mostly stay at home).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    ElderlyAlone,
    ElderlyCouple,
    Single,
    Couple,
    OneChild,
    TwoChildren,
    WithParents,
    ThreeGenerations,
    SingleParent,
    SkipGeneration,
}

const REGISTERED_FAMILIES: &[(Family, u32)] = &[
    (Family::ElderlyAlone, 5),
    (Family::ElderlyCouple, 9),
    (Family::Single, 7),
    (Family::Couple, 7),
    (Family::OneChild, 25),
    (Family::TwoChildren, 17),
    (Family::WithParents, 13),
    (Family::ThreeGenerations, 10),
    (Family::SingleParent, 4),
    // Left-behind children are mostly a village matter; a few live in town too.
    (Family::SkipGeneration, 1),
];

const MIGRANT_FAMILIES: &[(Family, u32)] = &[
    (Family::ElderlyCouple, 1),
    (Family::Single, 24),
    (Family::Couple, 18),
    (Family::OneChild, 30),
    (Family::TwoChildren, 16),
    (Family::WithParents, 3),
    (Family::SingleParent, 4),
];

/// One person of a household being built.
#[derive(Debug, Clone)]
struct Member {
    surname: &'static str,
    name: String,
    gender: Gender,
    age: u32,
    relation: Relation,
    residence: ResidenceType,
    /// Region code of first registration; `None` for foreigners.
    region: Option<String>,
    tags: BTreeSet<PersonTag>,
}

/// Where a household comes from: who its members are likely to be.
#[derive(Debug, Clone)]
struct Origin {
    residence: ResidenceType,
    /// The region code most members' ID numbers carry.
    region: String,
    pool: SurnamePool,
}

impl<'a> Generator<'a> {
    fn new(rng: ChaCha8Rng, options: &'a DemoOptions, place: Place) -> Generator<'a> {
        // Records were entered over the months before `today`.
        let today_millis = options
            .today
            .and_hms_opt(1, 0, 0)
            .map_or(0, |time| u64::try_from(time.and_utc().timestamp_millis()).unwrap_or(0));
        Generator {
            rng,
            options,
            place,
            clock_millis: today_millis.saturating_sub(120 * 24 * 3600 * 1000),
            id_numbers: HashSet::new(),
            phones: HashSet::new(),
            organization_names: HashSet::new(),
            sites: Sites::default(),
            records: GridRecords::default(),
        }
    }

    /// A UUIDv7 whose time increases by 1 to 30 seconds per record.
    fn next_uuid(&mut self) -> uuid::Uuid {
        self.clock_millis += self.rng.random_range(1_000..=30_000);
        let mut random_bytes = [0u8; 10];
        self.rng.fill(&mut random_bytes[..]);
        uuid::Builder::from_unix_timestamp_millis(self.clock_millis, &random_bytes).into_uuid()
    }

    // -- Buildings --------------------------------------------------------------

    /// Builds apartment blocks, self-built houses, shophouses, commercial and
    /// public buildings, and returns a slot for every household.
    fn buildings(&mut self) -> Slots {
        let n = self.options.households;
        let n_house_slots = (n as f64 * 0.38).round() as usize;
        let n_shophouse_slots = ((n as f64 * 0.06).round() as usize).min(n - n_house_slots);
        let n_flat_slots = n - n_house_slots - n_shophouse_slots;

        let mut slots = Slots { flats: self.apartment_blocks(n_flat_slots), ..Slots::default() };
        self.houses(n_house_slots, &mut slots.houses);
        self.shophouses(n_shophouse_slots, &mut slots.houses);
        let n_commercial = if n == 0 { 0 } else { (n / 50).max(1) };
        for _ in 0..n_commercial {
            self.commercial_building();
        }
        self.public_buildings();
        slots
    }

    /// Apartment blocks 住宅楼 in compounds off the main roads, with about 70% of
    /// their flats holding a household of the grid.
    fn apartment_blocks(&mut self, n_slots: usize) -> Vec<Slot> {
        struct Block {
            id: BuildingId,
            floors: u16,
            units: u16,
            flats_per_floor: u16,
        }
        let wanted_capacity = (n_slots as f64 / 0.7).ceil() as usize;
        let mut blocks: Vec<Block> = Vec::new();
        let mut capacity = 0;
        while capacity < wanted_capacity {
            let road_index = self.rng.random_range(0..self.place.roads.len());
            let number = self.place.roads[road_index].take_number(&mut self.rng);
            let road = &self.place.roads[road_index];
            let compound_at = road.point(number).plus(scatter(&mut self.rng, 40.0));
            let road_name = road.name;
            let n_blocks = self.rng.random_range(1..=6);
            for block_no in 1..=n_blocks {
                if capacity >= wanted_capacity {
                    break;
                }
                let (floors, units, flats_per_floor) = match self.rng.random_range(0..100) {
                    0..70 => (*[6u16, 7, 7, 8, 9].choose(&mut self.rng).unwrap_or(&7), self.rng.random_range(1..=4), 2),
                    70..90 => (
                        *[11u16, 12, 15, 16, 18].choose(&mut self.rng).unwrap_or(&11),
                        self.rng.random_range(1..=2),
                        self.rng.random_range(2..=4),
                    ),
                    _ => (
                        *[24u16, 26, 28, 30, 32, 33].choose(&mut self.rng).unwrap_or(&28),
                        self.rng.random_range(1..=2),
                        self.rng.random_range(2..=4),
                    ),
                };
                let address = format!("{}{road_name}{number}号{block_no}栋", self.place.address_prefix());
                let at = compound_at.plus(scatter(&mut self.rng, 45.0)).within(GRID_RADIUS);
                let id =
                    self.building(&format!("{block_no}栋"), address, at, floors, Some(units), BuildingUse::Residential);
                capacity += usize::from(floors) * usize::from(units) * usize::from(flats_per_floor);
                blocks.push(Block { id, floors, units, flats_per_floor });
            }
        }

        // Share the households out by capacity (largest remainders first), then
        // pick that many flats at random in each block.
        let total_capacity = capacity.max(1);
        let mut quotas: Vec<(usize, usize, usize)> = blocks
            .iter()
            .enumerate()
            .map(|(index, block)| {
                let block_capacity =
                    usize::from(block.floors) * usize::from(block.units) * usize::from(block.flats_per_floor);
                let exact = n_slots * block_capacity;
                (index, exact / total_capacity, exact % total_capacity)
            })
            .collect();
        let mut left = n_slots - quotas.iter().map(|(_, quota, _)| quota).sum::<usize>();
        quotas.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        for quota in &mut quotas {
            if left == 0 {
                break;
            }
            quota.1 += 1;
            left -= 1;
        }
        quotas.sort_by_key(|quota| quota.0);

        let mut slots = Vec::with_capacity(n_slots);
        for (index, quota, _) in quotas {
            let block = &blocks[index];
            let mut rooms = Vec::new();
            for unit in 1..=block.units {
                for floor in 1..=block.floors {
                    for flat in 1..=block.flats_per_floor {
                        let room = if block.units > 1 {
                            format!("{unit}单元{floor}{flat:02}")
                        } else {
                            format!("{floor}{flat:02}")
                        };
                        rooms.push(room);
                    }
                }
            }
            rooms.shuffle(&mut self.rng);
            rooms.truncate(quota);
            slots.extend(rooms.into_iter().map(|room| Slot { building: block.id, room: Some(room) }));
        }
        slots
    }

    /// Self-built houses 自建房 along the lanes: one household, or one per floor.
    fn houses(&mut self, n_slots: usize, slots: &mut Vec<Slot>) {
        let mut left = n_slots;
        while left > 0 {
            let lane_index = self.rng.random_range(0..self.place.lanes.len());
            let number = self.place.lanes[lane_index].take_number(&mut self.rng);
            let lane = &self.place.lanes[lane_index];
            let lane_name = lane.name;
            let at = lane.point(number).plus(scatter(&mut self.rng, 4.0)).within(GRID_RADIUS);
            let floors: u16 = *pick_weighted(&mut self.rng, &[(1u16, 5), (2, 20), (3, 35), (4, 30), (5, 10)]);
            let n_households =
                (*pick_weighted(&mut self.rng, &[(1usize, 72), (2, 22), (3, 6)])).min(usize::from(floors)).min(left);
            let address = format!("{}{lane_name}{number}号", self.place.address_prefix());
            let id =
                self.building(&format!("{lane_name}{number}号"), address, at, floors, None, BuildingUse::Residential);
            if n_households == 1 {
                slots.push(Slot { building: id, room: None });
            } else {
                let mut storeys: Vec<u16> = (1..=floors).collect();
                storeys.shuffle(&mut self.rng);
                storeys.truncate(n_households);
                storeys.sort_unstable();
                slots
                    .extend(storeys.into_iter().map(|storey| Slot { building: id, room: Some(format!("{storey}楼")) }));
            }
            left -= n_households;
        }
    }

    /// Shophouses 骑楼 on the main roads: shops below, one to three households above.
    fn shophouses(&mut self, n_slots: usize, slots: &mut Vec<Slot>) {
        let mut left = n_slots;
        while left > 0 {
            let road_index = self.rng.random_range(0..self.place.roads.len());
            let number = self.place.roads[road_index].take_number(&mut self.rng);
            let road = &self.place.roads[road_index];
            let road_name = road.name;
            let at = road.point(number);
            let floors: u16 = self.rng.random_range(3..=6);
            let n_households = self.rng.random_range(1..=3usize).min(usize::from(floors) - 1).min(left);
            let address = format!("{}{road_name}{number}号", self.place.address_prefix());
            let id =
                self.building(&format!("{road_name}{number}号"), address.clone(), at, floors, None, BuildingUse::Mixed);
            let mut storeys: Vec<u16> = (2..=floors).collect();
            storeys.shuffle(&mut self.rng);
            storeys.truncate(n_households);
            storeys.sort_unstable();
            slots.extend(storeys.into_iter().map(|storey| Slot { building: id, room: Some(format!("{storey}01")) }));
            self.sites.shops.push(Site { building: id, address, at, floors, n_shops: 0 });
            left -= n_households;
        }
    }

    fn commercial_building(&mut self) {
        let road_index = self.rng.random_range(0..self.place.roads.len());
        let number = self.place.roads[road_index].take_number(&mut self.rng);
        let road = &self.place.roads[road_index];
        let road_name = road.name;
        let at = road.point(number);
        let floors: u16 = self.rng.random_range(2..=9);
        let address = format!("{}{road_name}{number}号", self.place.address_prefix());
        let name = if floors >= 5 && self.rng.random_bool(0.5) {
            format!("{}大厦", data::COMPANY_WORDS.choose(&mut self.rng).unwrap_or(&"华盛"))
        } else {
            format!("{road_name}{number}号")
        };
        let id = self.building(&name, address.clone(), at, floors, None, BuildingUse::Commercial);
        let site = Site { building: id, address, at, floors, n_shops: 0 };
        self.sites.shops.push(site.clone());
        if floors >= 2 {
            self.sites.offices.push(site);
        }
    }

    /// The community's service centre, and a school and a clinic if the grid
    /// has organizations to put in them.
    fn public_buildings(&mut self) {
        let short = self.place.community_short;
        let mut public = vec![(format!("{}党群服务中心", self.place.community), 3u16)];
        if self.options.organizations >= 1 {
            public.push((format!("{short}小学"), 5));
        }
        if self.options.organizations >= 2 {
            public.push((format!("{short}社区卫生服务站"), 2));
        }
        for (index, (name, floors)) in public.into_iter().enumerate() {
            let road_index = self.rng.random_range(0..self.place.roads.len());
            let number = self.place.roads[road_index].take_number(&mut self.rng);
            let road = &self.place.roads[road_index];
            let address = format!("{}{}{number}号", self.place.address_prefix(), road.name);
            let at = road.point(number);
            let id = self.building(&name, address.clone(), at, floors, None, BuildingUse::Public);
            let site = Some(Site { building: id, address, at, floors, n_shops: 0 });
            match index {
                0 => self.sites.service_centre = site,
                1 => self.sites.school = site,
                _ => self.sites.clinic = site,
            }
        }
    }

    fn building(
        &mut self,
        name: &str,
        address: String,
        at: Xy,
        floors: u16,
        units: Option<u16>,
        usage: BuildingUse,
    ) -> BuildingId {
        let id = BuildingId::from_uuid(self.next_uuid());
        let building = NewBuilding {
            name: label(name),
            address: address_of(&address),
            location: Some(self.place.to_wgs84(at)),
            floors: Some(floors),
            units,
            usage,
        };
        self.records.buildings.push((id, building));
        id
    }

    // -- Households and residents ------------------------------------------------

    fn households(&mut self, slots: &mut Slots) {
        let n = self.options.households;
        let share = self.options.migrant_share.clamp(0.0, 1.0);
        let n_migrant = ((n as f64 * share).round() as usize).min(n);
        let n_foreign = ((n as f64 * 0.01).round() as usize).min(n - n_migrant);
        let mut kinds: Vec<ResidenceType> = std::iter::repeat_n(ResidenceType::Migrant, n_migrant)
            .chain(std::iter::repeat_n(ResidenceType::Foreign, n_foreign))
            .chain(std::iter::repeat_n(ResidenceType::Registered, n - n_migrant - n_foreign))
            .collect();
        kinds.shuffle(&mut self.rng);
        slots.houses.shuffle(&mut self.rng);
        slots.flats.shuffle(&mut self.rng);

        for residence in kinds {
            // Migrants rent rooms in self-built houses; foreigners rent flats.
            let prefer_house = match residence {
                ResidenceType::Migrant => 0.6,
                ResidenceType::Registered => 0.3,
                ResidenceType::Foreign => 0.1,
            };
            let slot = if self.rng.random_bool(prefer_house) {
                slots.houses.pop().or_else(|| slots.flats.pop())
            } else {
                slots.flats.pop().or_else(|| slots.houses.pop())
            };
            let Some(slot) = slot else { break };
            let household = HouseholdId::from_uuid(self.next_uuid());
            self.records.households.push((
                household,
                NewHousehold {
                    building: Some(slot.building),
                    room: slot.room.as_deref().map(room_of),
                    address: None,
                    residence_type: residence,
                },
            ));
            let members = match residence {
                ResidenceType::Foreign => self.foreign_family(),
                _ => self.family(residence),
            };
            for member in members {
                let resident = self.resident(household, member);
                let id = ResidentId::from_uuid(self.next_uuid());
                self.records.residents.push((id, resident));
            }
        }
    }

    fn origin(&mut self, residence: ResidenceType) -> Origin {
        let region = match residence {
            ResidenceType::Registered => self.place.county_code.clone(),
            _ => (*pick_weighted(&mut self.rng, data::MIGRANT_ORIGINS)).to_owned(),
        };
        let pool = SurnamePool::for_region(&region);
        Origin { residence, region, pool }
    }

    /// Where a member of a household from `origin` was first registered: migrant
    /// families share their home county, while some registered residents were
    /// born elsewhere in the province.
    fn birthplace(&mut self, origin: &Origin, age: u32) -> String {
        match origin.residence {
            ResidenceType::Registered if age >= 18 && self.rng.random_bool(0.2) => {
                if self.place.county_code.starts_with("44") {
                    (*pick_weighted(&mut self.rng, data::GUANGDONG_BIRTHPLACES)).to_owned()
                } else {
                    self.place.county_code.clone()
                }
            }
            _ => origin.region.clone(),
        }
    }

    fn surname(&mut self, pool: SurnamePool) -> &'static str {
        pick_weighted::<&'static str>(&mut self.rng, pool.surnames())
    }

    /// A surname of `pool` other than `other` (couples rarely share one).
    fn other_surname(&mut self, pool: SurnamePool, other: &str) -> &'static str {
        for _ in 0..8 {
            let surname = self.surname(pool);
            if surname != other {
                return surname;
            }
        }
        self.surname(pool)
    }

    fn given_name(&mut self, gender: Gender, age: u32) -> &'static str {
        let birth_year = self.options.today.year() - i32::try_from(age).unwrap_or(0);
        let era = match birth_year {
            ..1960 => 0,
            1960..1980 => 1,
            1980..2000 => 2,
            _ => 3,
        };
        let names = data::GIVEN_NAMES[era][usize::from(gender == Gender::Female)];
        names.choose(&mut self.rng).copied().unwrap_or("明")
    }

    fn random_gender(&mut self, p_male: f64) -> Gender {
        if self.rng.random_bool(p_male) { Gender::Male } else { Gender::Female }
    }

    fn member(
        &mut self,
        origin: &Origin,
        surname: &'static str,
        gender: Gender,
        age: u32,
        relation: Relation,
    ) -> Member {
        let given = self.given_name(gender, age);
        let region = self.birthplace(origin, age);
        Member {
            surname,
            name: format!("{surname}{given}"),
            gender,
            age,
            relation,
            residence: origin.residence,
            region: Some(region),
            tags: BTreeSet::new(),
        }
    }

    /// A married couple; returns `(head, spouse)` and which of them is the wife.
    fn couple(
        &mut self,
        origin: &Origin,
        husband_ages: std::ops::RangeInclusive<u32>,
        p_husband_head: f64,
    ) -> (Member, Member, bool) {
        let husband_age = self.rng.random_range(husband_ages);
        let wife_age = husband_age.saturating_sub(self.rng.random_range(0..=8)).saturating_add(2).max(21);
        let husband_surname = self.surname(origin.pool);
        let wife_surname = self.other_surname(origin.pool, husband_surname);
        let husband_is_head = self.rng.random_bool(p_husband_head);
        let (head_relation, spouse_relation) = (Relation::Head, Relation::Spouse);
        let husband = self.member(
            origin,
            husband_surname,
            Gender::Male,
            husband_age,
            if husband_is_head { head_relation } else { spouse_relation },
        );
        let wife = self.member(
            origin,
            wife_surname,
            Gender::Female,
            wife_age,
            if husband_is_head { spouse_relation } else { head_relation },
        );
        if husband_is_head { (husband, wife, false) } else { (wife, husband, true) }
    }

    /// Up to `n` children of a mother aged `mother_age`, born when she was 22
    /// to 38 and two to seven years apart.
    fn children(
        &mut self,
        origin: &Origin,
        mother_age: u32,
        n: usize,
        surname: &'static str,
        relation: Relation,
    ) -> Vec<Member> {
        let mut children = Vec::new();
        if mother_age < 22 {
            return children;
        }
        let mut age = self.rng.random_range(mother_age.saturating_sub(38)..=mother_age - 22);
        for index in 0..n {
            if index > 0 {
                let gap = self.rng.random_range(2..=7);
                if age < gap {
                    break;
                }
                age -= gap;
            }
            let gender = self.random_gender(0.515);
            let mut child = self.member(origin, surname, gender, age, relation);
            // Siblings do not share a given name.
            for _ in 0..4 {
                if children.iter().all(|sibling: &Member| sibling.name != child.name) {
                    break;
                }
                child = self.member(origin, surname, gender, age, relation);
            }
            children.push(child);
        }
        children
    }

    fn family(&mut self, residence: ResidenceType) -> Vec<Member> {
        let origin = self.origin(residence);
        let families = if residence == ResidenceType::Registered { REGISTERED_FAMILIES } else { MIGRANT_FAMILIES };
        let family = *pick_weighted(&mut self.rng, families);
        let mut members = Vec::new();
        match family {
            Family::ElderlyAlone => {
                let gender = self.random_gender(0.35);
                let age = self.rng.random_range(70..=94);
                let surname = self.surname(origin.pool);
                let mut head = self.member(&origin, surname, gender, age, Relation::Head);
                head.tags.insert(PersonTag::ElderlyAlone);
                members.push(head);
            }
            Family::ElderlyCouple => {
                let (head, spouse, _) = self.couple(&origin, 64..=88, 0.9);
                members.extend([head, spouse]);
                for member in &mut members {
                    if member.age >= 60 {
                        member.tags.insert(PersonTag::EmptyNestElderly);
                    }
                }
            }
            Family::Single => {
                let ages = if residence == ResidenceType::Migrant { 18..=50 } else { 22..=64 };
                let gender = self.random_gender(0.58);
                let age = self.rng.random_range(ages);
                let surname = self.surname(origin.pool);
                members.push(self.member(&origin, surname, gender, age, Relation::Head));
            }
            Family::Couple => {
                let (head, spouse, _) = self.couple(&origin, 24..=40, 0.85);
                members.extend([head, spouse]);
            }
            Family::OneChild | Family::TwoChildren | Family::WithParents => {
                let (head, spouse, head_is_wife) = self.couple(&origin, 26..=56, 0.82);
                let (husband, wife) = if head_is_wife { (&spouse, &head) } else { (&head, &spouse) };
                let surname = if self.rng.random_bool(0.93) { husband.surname } else { wife.surname };
                let wife_age = wife.age;
                let n_children = match family {
                    Family::OneChild => 1,
                    Family::TwoChildren if self.rng.random_bool(0.12) => 3,
                    Family::TwoChildren => 2,
                    _ => self.rng.random_range(1..=2),
                };
                let children = self.children(&origin, wife_age, n_children, surname, Relation::Child);
                if family == Family::WithParents {
                    let parents = self.parents_of(&origin, &head);
                    members.push(head);
                    members.push(spouse);
                    members.extend(children);
                    members.extend(parents);
                } else {
                    members.push(head);
                    members.push(spouse);
                    members.extend(children);
                }
            }
            Family::ThreeGenerations => members = self.three_generations(&origin),
            Family::SingleParent => {
                let gender = self.random_gender(0.25);
                let age = self.rng.random_range(28..=50);
                let surname = self.surname(origin.pool);
                let head = self.member(&origin, surname, gender, age, Relation::Head);
                let children_surname = if gender == Gender::Female && self.rng.random_bool(0.65) {
                    self.other_surname(origin.pool, surname)
                } else {
                    surname
                };
                let mother_age = if gender == Gender::Female { age } else { age.saturating_sub(2) };
                let n_children = self.rng.random_range(1..=2);
                let children = self.children(&origin, mother_age, n_children, children_surname, Relation::Child);
                members.push(head);
                members.extend(children);
            }
            Family::SkipGeneration => members = self.skip_generation(&origin),
        }

        // Some households take in a lodger, nearly always a migrant worker.
        let p_lodger = if residence == ResidenceType::Migrant { 0.08 } else { 0.04 };
        if family != Family::ElderlyAlone && self.rng.random_bool(p_lodger) {
            let lodger_origin = self.origin(ResidenceType::Migrant);
            let gender = self.random_gender(0.6);
            let age = self.rng.random_range(18..=45);
            let surname = self.surname(lodger_origin.pool);
            members.push(self.member(&lodger_origin, surname, gender, age, Relation::Lodger));
        }
        if residence == ResidenceType::Registered {
            self.household_tags(family, &mut members);
        }
        for member in &mut members {
            self.person_tags(member);
        }
        members
    }

    /// One or both parents of `head`, 23 to 35 years older; the father shares
    /// the head's surname.
    fn parents_of(&mut self, origin: &Origin, head: &Member) -> Vec<Member> {
        let father_age = head.age + self.rng.random_range(23..=35);
        let mother_age = father_age.saturating_sub(self.rng.random_range(0..=5)).max(head.age + 20);
        let mother_surname = self.other_surname(origin.pool, head.surname);
        let mut parents = Vec::new();
        let (with_father, with_mother) = match self.rng.random_range(0..100) {
            0..50 => (true, true),
            50..65 => (true, false),
            _ => (false, true),
        };
        let with_father = with_father && father_age <= 96;
        if with_father {
            parents.push(self.member(origin, head.surname, Gender::Male, father_age, Relation::Parent));
        }
        if (with_mother || !with_father) && mother_age <= 98 {
            parents.push(self.member(origin, mother_surname, Gender::Female, mother_age, Relation::Parent));
        }
        parents
    }

    /// An older couple (or widow(er)) heading the household, a married child,
    /// the child's spouse and one or two grandchildren.
    fn three_generations(&mut self, origin: &Origin) -> Vec<Member> {
        let (head, spouse, head_is_wife) = self.couple(origin, 58..=80, 0.85);
        let wife_age = if head_is_wife { head.age } else { spouse.age };
        let husband_surname = if head_is_wife { spouse.surname } else { head.surname };
        let widowed = self.rng.random_bool(0.2);

        let child_age = wife_age.saturating_sub(self.rng.random_range(22..=32)).max(24);
        let child_gender = self.random_gender(0.75);
        let child = self.member(origin, husband_surname, child_gender, child_age, Relation::Child);
        let in_law_gender = if child_gender == Gender::Male { Gender::Female } else { Gender::Male };
        let in_law_age = (child_age + self.rng.random_range(0..=6)).saturating_sub(3).max(22);
        let in_law_surname = self.other_surname(origin.pool, child.surname);
        let in_law = self.member(origin, in_law_surname, in_law_gender, in_law_age, Relation::ChildInLaw);

        let (father, mother) = if child_gender == Gender::Male { (&child, &in_law) } else { (&in_law, &child) };
        let surname = father.surname;
        let mother_age = mother.age;
        let n_grandchildren = self.rng.random_range(1..=2);
        let grandchildren = self.children(origin, mother_age, n_grandchildren, surname, Relation::Grandchild);

        let mut members = vec![head];
        if !widowed {
            members.push(spouse);
        }
        members.extend([child, in_law]);
        members.extend(grandchildren);
        members
    }

    /// Grandparents raising grandchildren whose parents work elsewhere: the
    /// children are 留守儿童, the grandparents over 60 留守老人.
    fn skip_generation(&mut self, origin: &Origin) -> Vec<Member> {
        let (head, spouse, head_is_wife) = self.couple(origin, 56..=75, 0.6);
        // Through a son the grandchildren carry the grandfather's surname.
        let grandfather_surname = if head_is_wife { spouse.surname } else { head.surname };
        let mut members = vec![head];
        if self.rng.random_bool(0.7) {
            members.push(spouse);
        }
        let surname = if self.rng.random_bool(0.8) {
            grandfather_surname
        } else {
            self.other_surname(origin.pool, grandfather_surname)
        };
        let n_grandchildren = self.rng.random_range(1..=2);
        let mut age: u32 = self.rng.random_range(5..=15);
        for index in 0..n_grandchildren {
            if index > 0 {
                age = age.saturating_sub(self.rng.random_range(2..=5)).max(3);
                if members.iter().any(|m| m.relation == Relation::Grandchild && m.age == age) {
                    break;
                }
            }
            let gender = self.random_gender(0.515);
            let mut grandchild = self.member(origin, surname, gender, age, Relation::Grandchild);
            grandchild.tags.insert(PersonTag::LeftBehindChild);
            members.push(grandchild);
        }
        for member in &mut members {
            if member.relation != Relation::Grandchild && member.age >= 60 {
                member.tags.insert(PersonTag::LeftBehindElderly);
            }
        }
        members
    }

    /// A foreign household: one or two adults, sometimes with a child.
    fn foreign_family(&mut self) -> Vec<Member> {
        let (male_names, female_names) = *data::FOREIGN_NAMES.choose(&mut self.rng).unwrap_or(&data::FOREIGN_NAMES[0]);
        let mut members: Vec<Member> = Vec::new();
        let person = |generator: &mut Generator<'_>, gender: Gender, age: u32, relation: Relation, taken: &[Member]| {
            let names = if gender == Gender::Male { male_names } else { female_names };
            let free: Vec<&str> = names.iter().copied().filter(|name| taken.iter().all(|m| m.name != *name)).collect();
            let name = free.choose(&mut generator.rng).copied().unwrap_or(names[0]);
            Member {
                surname: "",
                name: name.to_owned(),
                gender,
                age,
                relation,
                residence: ResidenceType::Foreign,
                region: None,
                tags: BTreeSet::new(),
            }
        };
        let head_gender = self.random_gender(0.55);
        let head_age = self.rng.random_range(25..=58);
        let head = person(self, head_gender, head_age, Relation::Head, &members);
        members.push(head);
        if self.rng.random_bool(0.4) {
            let gender = if head_gender == Gender::Male { Gender::Female } else { Gender::Male };
            let age = head_age.saturating_sub(self.rng.random_range(0..=4)).max(23);
            let spouse = person(self, gender, age, Relation::Spouse, &members);
            members.push(spouse);
            if self.rng.random_bool(0.3) {
                let gender = self.random_gender(0.5);
                let age = self.rng.random_range(0..=(head_age.min(age) - 22).min(12));
                let child = person(self, gender, age, Relation::Child, &members);
                members.push(child);
            }
        }
        members
    }

    /// Tags that go with the household: 低保 and 特困 are granted per household.
    fn household_tags(&mut self, family: Family, members: &mut [Member]) {
        let (p_extreme, p_low) = match family {
            Family::ElderlyAlone => (0.03, 0.05),
            Family::SingleParent => (0.0, 0.08),
            _ => (0.0, 0.02),
        };
        let tag = if self.rng.random_bool(p_extreme) {
            Some(PersonTag::ExtremePoverty)
        } else if self.rng.random_bool(p_low) {
            Some(PersonTag::LowIncome)
        } else {
            None
        };
        if let Some(tag) = tag {
            for member in members.iter_mut().filter(|m| m.relation != Relation::Lodger) {
                member.tags.insert(tag);
            }
        }
    }

    /// Tags of single people: disability, veterans, and the rare special groups.
    fn person_tags(&mut self, member: &mut Member) {
        let age = member.age;
        let p_disabled = if age >= 60 { 0.045 } else { 0.012 };
        if self.rng.random_bool(p_disabled) {
            member.tags.insert(PersonTag::Disabled);
        }
        if member.residence == ResidenceType::Registered && (22..=85).contains(&age) {
            let p_veteran = if member.gender == Gender::Male { 0.03 } else { 0.002 };
            if self.rng.random_bool(p_veteran) {
                member.tags.insert(PersonTag::Veteran);
            }
        }
        if member.residence == ResidenceType::Foreign {
            return;
        }
        let special = [
            (PersonTag::SeriousMentalIllness, 18..=75, 0.002),
            (PersonTag::ReleasedPrisoner, 25..=65, if member.gender == Gender::Male { 0.002 } else { 0.0002 }),
            (PersonTag::CommunityCorrection, 18..=60, 0.0008),
            (PersonTag::DrugRehabilitation, 20..=55, 0.0008),
            (PersonTag::KeyYouth, 6..=25, 0.003),
        ];
        for (tag, ages, p) in special {
            if ages.contains(&age) && self.rng.random_bool(p) {
                member.tags.insert(tag);
            }
        }
    }

    fn birth_date(&mut self, age: u32) -> NaiveDate {
        let today = self.options.today;
        let last_birthday = today.checked_sub_months(Months::new(12 * age)).unwrap_or(today);
        let days_since = self.rng.random_range(0..365);
        last_birthday.checked_sub_days(Days::new(days_since)).unwrap_or(last_birthday)
    }

    fn resident(&mut self, household: HouseholdId, member: Member) -> NewResident {
        let birth_date = self.birth_date(member.age);
        let id_number = member.region.as_deref().map(|region| self.id_number(region, birth_date, member.gender));
        let has_phone = match member.age {
            0..12 => false,
            12..18 => self.rng.random_bool(0.4),
            18..80 => true,
            _ => self.rng.random_bool(0.5),
        };
        let phone = if has_phone { Some(self.mobile()) } else { None };
        let (gender, birth_date) =
            if id_number.is_some() { (None, None) } else { (Some(member.gender), Some(birth_date)) };
        NewResident {
            household: Some(household),
            name: person_name(&member.name),
            id_number,
            phone,
            gender,
            birth_date,
            relation: member.relation,
            residence_type: member.residence,
            tags: member.tags,
        }
    }

    /// An ID number not yet given to anyone in the grid.
    fn id_number(&mut self, region: &str, birth_date: NaiveDate, gender: Gender) -> IdNumber {
        loop {
            // Odd order codes are men's.
            let pair = self.rng.random_range(0..500u16);
            let sequence = if gender == Gender::Male { pair * 2 + 1 } else { pair * 2 };
            let id_number = IdNumber::from_parts(region, birth_date, sequence)
                .expect("region codes come from GridCode or the tables, dates are past: valid by construction");
            if self.id_numbers.insert(id_number.clone()) {
                return id_number;
            }
        }
    }

    /// A mobile number not yet given to anyone in the grid.
    fn mobile(&mut self) -> Phone {
        loop {
            let prefix = data::MOBILE_PREFIXES.choose(&mut self.rng).copied().unwrap_or("138");
            let number = format!("{prefix}{:08}", self.rng.random_range(0..100_000_000u32));
            if self.phones.insert(number.clone()) {
                return Phone::parse(&number).expect("1[3-9] and 9 more digits is a valid mobile number");
            }
        }
    }

    /// A landline in the grid's area code, or a mobile where the area code is unknown.
    fn office_phone(&mut self) -> Phone {
        let Some(area_code) = self.place.area_code else { return self.mobile() };
        loop {
            let first = *[3u32, 6, 8].choose(&mut self.rng).unwrap_or(&3);
            let number = format!("{area_code}-{first}{:06}", self.rng.random_range(0..1_000_000u32));
            if self.phones.insert(number.clone()) {
                return Phone::parse(&number).expect("an area code and 7 digits from 3 is a valid landline");
            }
        }
    }

    fn full_name(&mut self, pool: SurnamePool, ages: std::ops::RangeInclusive<u32>) -> (String, &'static str, Gender) {
        let surname = self.surname(pool);
        let gender = self.random_gender(0.55);
        let age = self.rng.random_range(ages);
        let given = self.given_name(gender, age);
        (format!("{surname}{given}"), surname, gender)
    }

    // -- Organizations -----------------------------------------------------------

    fn organizations(&mut self) {
        let n = self.options.organizations;
        let local_pool = SurnamePool::for_region(&self.place.county_code);
        for index in 0..n {
            let organization = match index {
                0 => self.school(local_pool),
                1 => self.clinic(local_pool),
                2 => self.kindergarten(local_pool),
                3 => self.social_work_centre(local_pool),
                _ if self.rng.random_bool(0.62) => self.shop(local_pool),
                _ => self.company(local_pool),
            };
            let id = OrganizationId::from_uuid(self.next_uuid());
            self.records.organizations.push((id, organization));
        }
    }

    fn school(&mut self, pool: SurnamePool) -> NewOrganization {
        let name = format!("{}{}小学", self.place.local_name_prefix(), self.place.community_short);
        let site = self.sites.school.clone();
        self.public_institution(pool, name, OrganizationKind::School, site)
    }

    fn clinic(&mut self, pool: SurnamePool) -> NewOrganization {
        let name = format!(
            "{}{}{}社区卫生服务站",
            self.place.local_name_prefix(),
            self.place.township,
            self.place.community_short
        );
        let site = self.sites.clinic.clone();
        self.public_institution(pool, name, OrganizationKind::Hospital, site)
    }

    /// 事业单位: registered by the staffing office (`1`, `2`), with a landline.
    fn public_institution(
        &mut self,
        pool: SurnamePool,
        name: String,
        kind: OrganizationKind,
        site: Option<Site>,
    ) -> NewOrganization {
        let (address, location, building) = self.premises(site, "");
        let code = self.organization_code(OrganizationCodeStyle::PublicInstitution);
        let (contact, _, _) = self.full_name(pool, 35..=58);
        let phone = self.office_phone();
        self.organization(name, ('1', '2'), &code, kind, address, location, building, contact, phone)
    }

    fn kindergarten(&mut self, pool: SurnamePool) -> NewOrganization {
        let word = self.unique_word(data::SHOP_WORDS);
        let name = format!("{}{word}幼儿园", self.place.local_name_prefix());
        self.private_non_enterprise(pool, name, OrganizationKind::School, None)
    }

    fn social_work_centre(&mut self, pool: SurnamePool) -> NewOrganization {
        let word = self.unique_word(data::SHOP_WORDS);
        let name = format!("{}{word}社会工作服务中心", self.place.local_name_prefix());
        let site = self.sites.service_centre.clone();
        self.private_non_enterprise(pool, name, OrganizationKind::SocialOrganization, site)
    }

    /// 民办非企业单位: registered by civil affairs (`5`, `2`), codes starting `MJ`.
    fn private_non_enterprise(
        &mut self,
        pool: SurnamePool,
        name: String,
        kind: OrganizationKind,
        site: Option<Site>,
    ) -> NewOrganization {
        let (address, location, building) = self.premises(site, "2楼");
        let code = self.organization_code(OrganizationCodeStyle::CivilAffairs);
        let (contact, _, _) = self.full_name(pool, 30..=60);
        let phone = self.mobile();
        self.organization(name, ('5', '2'), &code, kind, address, location, building, contact, phone)
    }

    /// 个体工商户 (`9`, `2`): a shop named after its owner or a lucky word.
    fn shop(&mut self, pool: SurnamePool) -> NewOrganization {
        let (owner, surname, _) = self.full_name(pool, 25..=62);
        let mut name = String::new();
        for attempt in 0..10 {
            name = match self.rng.random_range(0..100) {
                0..25 => format!("{surname}记{}", data::EATERY_TRADES.choose(&mut self.rng).unwrap_or(&"烧腊")),
                25..45 => format!("老{surname}{}", data::SHOP_TRADES.choose(&mut self.rng).unwrap_or(&"五金店")),
                _ => format!(
                    "{}{}",
                    data::SHOP_WORDS.choose(&mut self.rng).unwrap_or(&"惠民"),
                    data::SHOP_TRADES.choose(&mut self.rng).unwrap_or(&"超市")
                ),
            };
            if attempt == 9 {
                name = format!("{name}（{}分店）", self.place.community_short);
            }
            if self.organization_names.insert(name.clone()) {
                break;
            }
        }
        let site = self.next_site(false);
        let (address, location, building) = self.premises(site, "首层");
        let code = self.organization_code(OrganizationCodeStyle::Recent);
        let phone = self.mobile();
        self.organization(
            name,
            ('9', '2'),
            &code,
            OrganizationKind::IndividualBusiness,
            address,
            location,
            building,
            owner,
            phone,
        )
    }

    /// 企业 (`9`, `1`): 江门市鸿达贸易有限公司.
    fn company(&mut self, pool: SurnamePool) -> NewOrganization {
        let mut name = String::new();
        for _ in 0..20 {
            let word = data::COMPANY_WORDS.choose(&mut self.rng).unwrap_or(&"鸿达");
            let trade = data::COMPANY_TRADES.choose(&mut self.rng).unwrap_or(&"贸易");
            let prefix =
                if self.rng.random_bool(0.7) { self.place.city.to_owned() } else { self.place.local_name_prefix() };
            name = format!("{prefix}{word}{trade}有限公司");
            if self.organization_names.insert(name.clone()) {
                break;
            }
        }
        let site = self.next_site(true);
        let floor_room = match &site {
            Some(site) if site.floors >= 2 => {
                let floor = self.rng.random_range(2..=site.floors);
                format!("{floor}{:02}室", self.rng.random_range(1..=12))
            }
            _ => "首层".to_owned(),
        };
        let (address, location, building) = self.premises(site, &floor_room);
        let style =
            if self.rng.random_bool(0.6) { OrganizationCodeStyle::Recent } else { OrganizationCodeStyle::Legacy };
        let code = self.organization_code(style);
        let (contact, _, _) = self.full_name(pool, 28..=60);
        let phone = if self.rng.random_bool(0.3) { self.office_phone() } else { self.mobile() };
        self.organization(
            name,
            ('9', '1'),
            &code,
            OrganizationKind::Enterprise,
            address,
            location,
            building,
            contact,
            phone,
        )
    }

    fn unique_word(&mut self, words: &'static [&'static str]) -> &'static str {
        for _ in 0..10 {
            let word = words.choose(&mut self.rng).copied().unwrap_or("惠民");
            if self.organization_names.insert(word.to_owned()) {
                return word;
            }
        }
        words.choose(&mut self.rng).copied().unwrap_or("惠民")
    }

    /// A building for a shop (`office == false`) or an office, shared round-robin.
    fn next_site(&mut self, office: bool) -> Option<Site> {
        let sites =
            if office && !self.sites.offices.is_empty() { &mut self.sites.offices } else { &mut self.sites.shops };
        if sites.is_empty() {
            return None;
        }
        let index = self.rng.random_range(0..sites.len());
        Some(sites[index].clone())
    }

    /// Address, location and building of premises at `site` (`where_` says which
    /// floor or room), or a street address when there is no site.
    fn premises(&mut self, site: Option<Site>, where_: &str) -> (String, Xy, Option<BuildingId>) {
        match site {
            Some(site) => {
                // Shops sharing a ground floor are numbered 首层之二, 首层之三, …
                let suffix = match where_ {
                    "首层" => match self.count_shop(site.building) {
                        1 => where_.to_owned(),
                        n_shops => format!("首层之{}", chinese_number(n_shops)),
                    },
                    _ => where_.to_owned(),
                };
                (format!("{}{suffix}", site.address), site.at.plus(scatter(&mut self.rng, 5.0)), Some(site.building))
            }
            None => {
                let road_index = self.rng.random_range(0..self.place.roads.len());
                let number = self.place.roads[road_index].take_number(&mut self.rng);
                let road = &self.place.roads[road_index];
                (format!("{}{}{number}号{where_}", self.place.address_prefix(), road.name), road.point(number), None)
            }
        }
    }

    /// Counts one more shop in `building` and returns how many it now has.
    fn count_shop(&mut self, building: BuildingId) -> usize {
        let mut count = 0;
        for site in self.sites.shops.iter_mut().chain(self.sites.offices.iter_mut()) {
            if site.building == building {
                site.n_shops += 1;
                count = count.max(site.n_shops);
            }
        }
        count.max(1)
    }

    /// The nine-character organization code inside a USCC, with its own
    /// GB 11714 check character.
    fn organization_code(&mut self, style: OrganizationCodeStyle) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
        const DIGITS: &[u8] = b"0123456789";
        let body: String = match style {
            // Codes issued since 2015: MA (market regulation) or MJ (civil affairs),
            // then the province's series digit and random characters.
            OrganizationCodeStyle::Recent | OrganizationCodeStyle::CivilAffairs => {
                let head = if style == OrganizationCodeStyle::Recent { "MA4" } else { "MJ" };
                let mut body = head.to_owned();
                while body.len() < 8 {
                    body.push(char::from(*ALPHABET.choose(&mut self.rng).unwrap_or(&b'0')));
                }
                body
            }
            // Older enterprises keep the numeric code they had before 2015.
            OrganizationCodeStyle::Legacy | OrganizationCodeStyle::PublicInstitution => {
                let mut body = if style == OrganizationCodeStyle::Legacy { "7" } else { "4" }.to_owned();
                while body.len() < 8 {
                    body.push(char::from(*DIGITS.choose(&mut self.rng).unwrap_or(&b'0')));
                }
                body
            }
        };
        let check = gb11714_check(&body);
        format!("{body}{check}")
    }

    #[allow(clippy::too_many_arguments)]
    fn organization(
        &mut self,
        name: String,
        (authority, kind_code): (char, char),
        organization_code: &str,
        kind: OrganizationKind,
        address: String,
        at: Xy,
        building: Option<BuildingId>,
        contact: String,
        phone: Phone,
    ) -> NewOrganization {
        let uscc = Uscc::from_parts(authority, kind_code, &self.place.county_code, organization_code)
            .expect("authority, kind and organization code come from the USCC alphabet by construction");
        NewOrganization {
            name: label(&name),
            uscc: Some(uscc),
            kind,
            address: address_of(&address),
            location: Some(self.place.to_wgs84(at)),
            building,
            contact_name: Some(person_name(&contact)),
            contact_phone: Some(phone),
        }
    }

    // -- Components ----------------------------------------------------------------

    fn components(&mut self) {
        let weighted: Vec<((&str, &str), u32)> =
            data::COMPONENTS.iter().map(|&(code, name, weight)| ((code, name), weight)).collect();
        for _ in 0..self.options.components {
            let (code, subclass_name) = *pick_weighted(&mut self.rng, &weighted);
            // Trees and fitness corners are in the lanes; the rest along roads.
            let on_lane = matches!(code, "0401" | "0126") || self.rng.random_bool(0.3);
            let road =
                if on_lane { self.place.lanes.choose(&mut self.rng) } else { self.place.roads.choose(&mut self.rng) }
                    .cloned()
                    .unwrap_or_else(|| Road::new(&mut self.rng, "港口路"));
            let number = self.rng.random_range(1..=road.next_number.max(2));
            let at = road.point(number).plus(scatter(&mut self.rng, 4.0)).within(GRID_RADIUS);
            let beside = ["前", "旁", "对面"].choose(&mut self.rng).copied().unwrap_or("旁");
            let name = match code {
                "0201" => format!("{}公共停车场", self.place.community),
                "0301" => format!("{}公共厕所", road.name),
                "0304" => format!("{}{number}号垃圾收集点", road.name),
                "0401" => format!("古榕树（树龄约{}年）", self.rng.random_range(12..=40) * 10),
                "0402" => {
                    let species = ["小叶榄仁", "大叶紫薇", "扁桃", "香樟", "细叶榕", "木棉", "洋紫荆"];
                    format!(
                        "{}{number}号{beside}行道树（{}）",
                        road.name,
                        species.choose(&mut self.rng).unwrap_or(&"细叶榕")
                    )
                }
                "0501" => format!("{}宣传栏", self.place.community),
                "0126" => format!("{}健身路径", road.name),
                "0213" => format!("{}路名牌", road.name),
                "0116" => format!("{}{number}号{beside}配电箱", road.name),
                "0212" => format!("{}{number}号{beside}非机动车停放架", road.name),
                _ => format!("{}{number}号{beside}{subclass_name}", road.name),
            };
            let manhole =
                code.starts_with("01") && code != "0118" && code != "0115" && code != "0116" && code != "0126";
            let state = match self.rng.random_range(0..100) {
                0..93 => ComponentState::Intact,
                93..98 => ComponentState::Damaged,
                98 if manhole => ComponentState::Missing,
                _ if manhole => ComponentState::Occupied,
                _ => ComponentState::Damaged,
            };
            let component = NewComponent {
                subclass: ComponentSubclass::parse(code)
                    .expect("subclass codes in the table have a class prefix 01 to 06"),
                name: label(&name),
                location: self.place.to_wgs84(at),
                state,
            };
            let id = ComponentId::from_uuid(self.next_uuid());
            self.records.components.push((id, component));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrganizationCodeStyle {
    /// `MA4…`, given by market regulation since 2015.
    Recent,
    /// `MJ…`, given by civil affairs since 2015.
    CivilAffairs,
    /// Numeric codes of enterprises registered before 2015.
    Legacy,
    /// Numeric codes of public institutions.
    PublicInstitution,
}

/// The check character of an 8-character organization code (GB 11714-1997):
/// `11 − Σ valueᵢ·wᵢ mod 11`, 10 written `X` and 11 written `0`.
fn gb11714_check(body: &str) -> char {
    const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.chars().zip(WEIGHTS).map(|(c, weight)| c.to_digit(36).unwrap_or(0) * weight).sum();
    match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        digit => char::from_digit(digit, 10).unwrap_or('0'),
    }
}

fn chinese_number(n: usize) -> String {
    const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0..=9 => DIGITS[n].to_owned(),
        10 => "十".to_owned(),
        11..=19 => format!("十{}", DIGITS[n % 10]),
        _ => n.to_string(),
    }
}

fn label(s: &str) -> Label {
    Label::parse(s).expect("generated labels are short and plain by construction")
}

fn address_of(s: &str) -> Address {
    Address::parse(s).expect("generated addresses are short and plain by construction")
}

fn room_of(s: &str) -> Room {
    Room::parse(s).expect("generated rooms are short and plain by construction")
}

fn person_name(s: &str) -> PersonName {
    PersonName::parse(s).expect("generated names are short and plain by construction")
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::model::ComponentClass;

    fn code() -> GridCode {
        GridCode::parse_default("440703001001001").expect("a valid grid code")
    }

    fn default_grid() -> GridRecords {
        generate_grid(&code(), &DemoOptions::default())
    }

    fn ages_on(today: NaiveDate, resident: &NewResident) -> u32 {
        let birth =
            resident.id_number.as_ref().map(IdNumber::birth_date).or(resident.birth_date).expect("a birth date");
        today.years_since(birth).expect("born before today")
    }

    #[test]
    fn same_seed_gives_identical_records() {
        let first = default_grid();
        let second = default_grid();
        assert_eq!(first, second);
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
    }

    #[test]
    fn different_seeds_give_different_records() {
        let other = generate_grid(&code(), &DemoOptions { seed: 2, ..DemoOptions::default() });
        let first = default_grid();
        assert_ne!(first.residents, other.residents);
        assert_ne!(first.buildings[0].0, other.buildings[0].0);
    }

    #[test]
    fn default_grid_has_realistic_counts() {
        let records = default_grid();
        assert_eq!(records.households.len(), 500);
        assert!((1_300..=1_700).contains(&records.residents.len()), "{} residents", records.residents.len());
        assert!((150..=250).contains(&records.buildings.len()), "{} buildings", records.buildings.len());
        assert_eq!(records.organizations.len(), 50);
        assert_eq!(records.components.len(), 100);
    }

    #[test]
    fn every_id_number_phone_and_uscc_parses() {
        let records = default_grid();
        let mut n_id_numbers = 0;
        for (_, resident) in &records.residents {
            if let Some(id_number) = &resident.id_number {
                assert_eq!(IdNumber::parse(id_number.as_str()).as_ref(), Ok(id_number));
                n_id_numbers += 1;
            }
            if let Some(phone) = &resident.phone {
                assert_eq!(Phone::parse(phone.as_str()).as_ref(), Ok(phone));
            }
        }
        assert!(n_id_numbers > 1_200);
        for (_, organization) in &records.organizations {
            let uscc = organization.uscc.as_ref().expect("every demo organization has a USCC");
            assert_eq!(Uscc::parse(uscc.as_str()).as_ref(), Ok(uscc));
            assert_eq!(uscc.region_code(), "440703");
            let phone = organization.contact_phone.as_ref().expect("a contact phone");
            assert_eq!(Phone::parse(phone.as_str()).as_ref(), Ok(phone));
        }
    }

    #[test]
    fn id_numbers_and_phones_are_unique() {
        let records = default_grid();
        let id_numbers: Vec<_> = records.residents.iter().filter_map(|(_, r)| r.id_number.clone()).collect();
        assert_eq!(id_numbers.iter().collect::<HashSet<_>>().len(), id_numbers.len());
        let phones: Vec<_> = records.residents.iter().filter_map(|(_, r)| r.phone.clone()).collect();
        assert_eq!(phones.iter().collect::<HashSet<_>>().len(), phones.len());
    }

    #[test]
    fn organization_codes_carry_their_gb_11714_check_character() {
        // 组织机构代码 examples with known check characters.
        assert_eq!(gb11714_check("D2143569"), 'X');
        assert_eq!(gb11714_check("00000000"), '0');
        for (_, organization) in &default_grid().organizations {
            let code = organization.uscc.as_ref().expect("a USCC").organization_code().to_owned();
            assert_eq!(code.chars().nth(8), Some(gb11714_check(&code[..8])), "{code}");
        }
    }

    #[test]
    fn every_household_lives_in_a_building_of_the_grid_and_fits_it() {
        let records = default_grid();
        let buildings: HashMap<BuildingId, &NewBuilding> = records.buildings.iter().map(|(id, b)| (*id, b)).collect();
        let mut rooms = HashSet::new();
        for (_, household) in &records.households {
            let building_id = household.building.expect("every demo household has a building");
            let building = buildings.get(&building_id).expect("the household's building is in the grid");
            let floors = building.floors.expect("floors");
            if let Some(room) = &household.room {
                assert!(rooms.insert((building_id, room.as_str().to_owned())), "two households in {room}");
                let (unit, flat) = match room.as_str().split_once("单元") {
                    Some((unit, flat)) => (unit.parse::<u16>().expect("a unit number"), flat),
                    None => (1, room.as_str()),
                };
                assert!(unit <= building.units.unwrap_or(1), "{room} in a building of {:?} units", building.units);
                let storey: u16 = match flat.strip_suffix('楼') {
                    Some(storey) => storey.parse().expect("a storey"),
                    None => flat.parse::<u16>().expect("a flat number") / 100,
                };
                assert!((1..=floors).contains(&storey), "{room} in a building of {floors} floors");
            } else {
                assert!(rooms.insert((building_id, String::new())), "two households share a whole house");
            }
        }
    }

    #[test]
    fn every_household_has_exactly_one_head_and_every_resident_a_household() {
        let records = default_grid();
        let mut heads: HashMap<HouseholdId, usize> = records.households.iter().map(|(id, _)| (*id, 0)).collect();
        for (_, resident) in &records.residents {
            let household = resident.household.expect("every demo resident has a household");
            let n_heads = heads.get_mut(&household).expect("the resident's household is in the grid");
            if resident.relation == Relation::Head {
                *n_heads += 1;
            }
        }
        assert!(heads.values().all(|&n| n == 1));
    }

    #[test]
    fn derived_fields_are_given_only_without_an_id_number() {
        for (_, resident) in &default_grid().residents {
            match &resident.id_number {
                Some(_) => assert_eq!((resident.gender, resident.birth_date), (None, None)),
                None => {
                    assert!(resident.gender.is_some() && resident.birth_date.is_some());
                    assert_eq!(resident.residence_type, ResidenceType::Foreign);
                }
            }
            assert!(resident.clone().with_derived_fields().is_ok());
        }
    }

    #[test]
    fn migrant_share_is_close_to_the_option() {
        let records = default_grid();
        let share = |n: usize, of: usize| n as f64 / of as f64;
        let n_migrant_households =
            records.households.iter().filter(|(_, h)| h.residence_type == ResidenceType::Migrant).count();
        assert!((share(n_migrant_households, records.households.len()) - 0.2).abs() <= 0.05);
        let n_migrants = records.residents.iter().filter(|(_, r)| r.residence_type == ResidenceType::Migrant).count();
        assert!((share(n_migrants, records.residents.len()) - 0.2).abs() <= 0.05, "{n_migrants} migrants");
        let n_foreign = records.residents.iter().filter(|(_, r)| r.residence_type == ResidenceType::Foreign).count();
        assert!((1..=20).contains(&n_foreign), "{n_foreign} foreigners");
    }

    #[test]
    fn ages_match_relations() {
        let records = default_grid();
        let today = DemoOptions::default().today;
        let mut head_ages = HashMap::new();
        for (_, resident) in &records.residents {
            if resident.relation == Relation::Head {
                head_ages.insert(resident.household, ages_on(today, resident));
            }
        }
        for (_, resident) in &records.residents {
            let head = i64::from(head_ages[&resident.household]);
            let age = i64::from(ages_on(today, resident));
            match resident.relation {
                Relation::Child => assert!(head - age >= 18, "child {age}, head {head}"),
                Relation::Grandchild => assert!(head - age >= 35, "grandchild {age}, head {head}"),
                Relation::Parent => assert!(age - head >= 18, "parent {age}, head {head}"),
                Relation::Spouse => assert!((head - age).abs() <= 8 && age >= 20, "spouse {age}, head {head}"),
                Relation::Head | Relation::Lodger | Relation::ChildInLaw => assert!(age >= 18, "{age}"),
                _ => {}
            }
            if resident.tags.contains(&PersonTag::ElderlyAlone) {
                assert!(age >= 70);
            }
            if resident.tags.contains(&PersonTag::LeftBehindChild) {
                assert!(age < 16);
            }
            if age < 12 {
                assert_eq!(resident.phone, None, "a child of {age} with a phone");
            }
        }
    }

    #[test]
    fn care_tags_have_realistic_shares() {
        let records = default_grid();
        let n = records.residents.len() as f64;
        let share = |tag: PersonTag| records.residents.iter().filter(|(_, r)| r.tags.contains(&tag)).count() as f64 / n;
        assert!((0.01..=0.03).contains(&share(PersonTag::Disabled)), "disabled {}", share(PersonTag::Disabled));
        assert!((0.005..=0.035).contains(&share(PersonTag::LowIncome)), "low income {}", share(PersonTag::LowIncome));
        assert!((0.003..=0.02).contains(&share(PersonTag::Veteran)), "veterans {}", share(PersonTag::Veteran));
        assert!(share(PersonTag::ElderlyAlone) > 0.0);
        let n_special = records
            .residents
            .iter()
            .filter(|(_, r)| r.tags.iter().any(|tag| tag.group() == crate::model::TagGroup::Special))
            .count();
        assert!(n_special <= 15, "{n_special} people in special groups");
    }

    #[test]
    fn locations_lie_within_the_grid() {
        let records = default_grid();
        let place = Place::of(&code());
        let distance = |location: &Wgs84| {
            let dy = (location.lat() - place.lat) * METRES_PER_DEGREE;
            let dx = (location.lng() - place.lng) * METRES_PER_DEGREE * place.lat.to_radians().cos();
            dx.hypot(dy)
        };
        let locations = records
            .buildings
            .iter()
            .filter_map(|(_, b)| b.location)
            .chain(records.organizations.iter().filter_map(|(_, o)| o.location))
            .chain(records.components.iter().map(|(_, c)| c.location));
        for location in locations {
            assert!(distance(&location) <= GRID_RADIUS + 20.0, "{location:?}");
        }
        // 440703 蓬江区 lies around 22.6N 113.1E.
        assert!((22.5..22.7).contains(&place.lat) && (112.98..113.18).contains(&place.lng));
    }

    #[test]
    fn addresses_are_standard_addresses_of_the_grid() {
        let records = default_grid();
        let prefix = Place::of(&code()).address_prefix();
        assert!(prefix.starts_with("江门市蓬江区白沙街道") && prefix.ends_with("社区"), "{prefix}");
        for (_, building) in &records.buildings {
            assert!(building.address.as_str().starts_with(&prefix), "{}", building.address);
            assert!(building.address.as_str().contains('号'), "{}", building.address);
        }
        for (_, organization) in &records.organizations {
            assert!(organization.address.as_str().starts_with(&prefix), "{}", organization.address);
        }
    }

    #[test]
    fn components_use_classes_01_to_06() {
        for (_, component) in &default_grid().components {
            assert!(ComponentClass::ALL.contains(&component.subclass.class()));
        }
    }

    #[test]
    fn record_ids_are_time_ordered_and_unique() {
        let records = default_grid();
        let mut uuids: Vec<uuid::Uuid> = records.buildings.iter().map(|(id, _)| id.uuid()).collect();
        uuids.extend(records.households.iter().map(|(id, _)| id.uuid()));
        uuids.extend(records.organizations.iter().map(|(id, _)| id.uuid()));
        uuids.extend(records.components.iter().map(|(id, _)| id.uuid()));
        assert!(uuids.iter().all(|uuid| uuid.get_version_num() == 7));
        assert!(uuids.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn small_and_empty_grids_work() {
        for households in [0, 1, 7, 40] {
            let options = DemoOptions { households, organizations: 3, components: 5, ..DemoOptions::default() };
            let records = generate_grid(&code(), &options);
            assert_eq!(records.households.len(), households);
        }
        let unknown_county = GridCode::parse_default("510107002003004").expect("a valid grid code");
        let records = generate_grid(&unknown_county, &DemoOptions { households: 30, ..DemoOptions::default() });
        assert_eq!(records.households.len(), 30);
        let address = records.buildings[0].1.address.as_str();
        assert!(address.contains("街道") && address.contains("社区"), "{address}");
    }

    #[test]
    fn a_city_of_twenty_grids_has_distinct_codes_and_ids() {
        let city = generate_city(20, 500, 7);
        assert_eq!(city.len(), 20);
        let codes: HashSet<&str> = city.iter().map(|(grid, _)| grid.code.as_str()).collect();
        assert_eq!(codes.len(), 20);
        let townships: HashSet<&str> = city.iter().map(|(grid, _)| grid.code.township_code()).collect();
        assert!(townships.len() >= 2);
        for (grid, records) in &city {
            assert!(grid.name.ends_with("网格") && grid.name.contains("社区第"), "{}", grid.name);
            assert_eq!(records.households.len(), 500);
        }
        let n_residents: usize = city.iter().map(|(_, records)| records.residents.len()).sum();
        let ids: HashSet<ResidentId> =
            city.iter().flat_map(|(_, records)| records.residents.iter().map(|(id, _)| *id)).collect();
        assert_eq!(ids.len(), n_residents);
    }
}
