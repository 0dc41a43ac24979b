//! The city a run simulates: its grids (some with a demo register of realistic size) and
//! its workers, one device each, in the proportions a real city has them.
//!
//! For 4,000 devices on 1,000 grids: a full-time worker per grid, a grid leader per
//! community (four grids), about 2,000 part-time workers, 4% professional workers (two
//! grids each, with their department), 3% center staff (70% township, 20% county, 10%
//! city level) and 10% department handlers spread over the departments that lead some
//! matter of the catalog. Grid codes and names are those of `demo::generate_city`.

use std::collections::BTreeMap;

use wangge_core::demo::{DemoOptions, generate_city, generate_grid};
use wangge_core::incident::catalog::Catalog;
use wangge_core::incident::roles::{CenterLevel, DepartmentCode, Role};
use wangge_core::model::{GridCode, GridRecords};

/// One grid of the city.
#[derive(Debug, Clone)]
pub struct CityGrid {
    pub code: GridCode,
    pub name: String,
    /// Whether its full-time worker imports a demo register into it before the first syncs.
    pub demo: bool,
}

/// Which share of a group's incidents a device acts on: incidents are split among the
/// staff of a township (or the handlers of a department) by a hash of their id, so that
/// colleagues do not all accept the same report at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub index: usize,
    pub of: usize,
}

impl Share {
    pub fn takes(&self, key: &str) -> bool {
        // FNV-1a: stable across runs and processes.
        let hash = key
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
        (hash % self.of.max(1) as u64) as usize == self.index
    }
}

/// One worker with one device.
#[derive(Debug, Clone)]
pub struct CityWorker {
    pub person: String,
    pub role: Role,
    pub department: Option<DepartmentCode>,
    /// Grid codes, or for center staff area codes (a township's 9 digits, the county's 6).
    pub areas: Vec<String>,
    /// The full-time worker of a demo grid runs a full core store (SQLite file): the grid's
    /// index.
    pub full_store: Option<usize>,
    /// Its share of its group's incidents (center staff, department handlers).
    pub share: Share,
}

/// The city: grids and workers.
#[derive(Debug, Clone)]
pub struct City {
    pub grids: Vec<CityGrid>,
    pub workers: Vec<CityWorker>,
    /// Catalog items a worker reports, those whose lead department has handlers.
    pub reportable_items: Vec<String>,
}

/// How many workers of each role; `City::plan` fills it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleCounts {
    pub full_time: usize,
    pub part_time: usize,
    pub grid_leaders: usize,
    pub professional: usize,
    pub center: usize,
    pub departments: usize,
}

impl City {
    /// Plans a city of `n_devices` workers over `n_grids` grids, `n_demo` of them with a
    /// demo register; refuses when there are not enough devices for one full-time worker
    /// per grid and the other roles.
    pub fn plan(n_devices: usize, n_grids: usize, n_demo: usize, seed: u64) -> Result<City, String> {
        let catalog = Catalog::default_catalog();
        // Departments that lead some admitted matter: the ones incidents are dispatched to.
        let mut leading: Vec<DepartmentCode> = Vec::new();
        for item in catalog.admitted_items() {
            if let Some(lead) = item.lead_department()
                && !leading.contains(lead)
            {
                leading.push(lead.clone());
            }
        }
        let mut grids: Vec<CityGrid> = generate_city(n_grids, 0, seed)
            .into_iter()
            .map(|(grid, _)| CityGrid { code: grid.code, name: grid.name, demo: false })
            .collect();
        let n_demo = n_demo.min(grids.len());
        // Spread over the city: every k-th grid.
        if let Some(step) = grids.len().checked_div(n_demo) {
            for i in 0..n_demo {
                grids[i * step].demo = true;
            }
        }
        let county = grids.first().map(|grid| grid.code.county_code().to_owned()).unwrap_or_default();
        let mut townships: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut communities: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, grid) in grids.iter().enumerate() {
            townships.entry(grid.code.township_code().to_owned()).or_default().push(i);
            communities.entry(grid.code.community_code().to_owned()).or_default().push(i);
        }

        let n_center = (n_devices * 3 / 100).max(townships.len() + 2);
        let n_township = (n_center * 7 / 10).max(townships.len());
        let n_county = ((n_center - n_township.min(n_center)) * 2 / 3).max(1);
        let n_city = n_center.saturating_sub(n_township + n_county).max(1);
        let n_departments = (n_devices / 10).max(2);
        let n_professional = (n_devices * 4 / 100).max(1);
        let n_leaders = communities.len();
        let fixed = grids.len() + n_leaders + n_professional + n_township + n_county + n_city + n_departments;
        if n_devices < fixed {
            return Err(format!(
                "{n_devices} devices are too few for {} grids: at least {fixed} (one full-time worker per grid, \
                 a leader per community, center staff, department handlers); use more devices or fewer grids",
                grids.len()
            ));
        }
        let n_part_time = n_devices - fixed;

        let mut workers = Vec::with_capacity(n_devices);
        let unshared = Share { index: 0, of: 1 };
        for (i, grid) in grids.iter().enumerate() {
            workers.push(CityWorker {
                person: format!("ft-{i:05}"),
                role: Role::FullTimeWorker,
                department: None,
                areas: vec![grid.code.to_string()],
                full_store: grid.demo.then_some(i),
                share: unshared,
            });
        }
        for i in 0..n_part_time {
            workers.push(CityWorker {
                person: format!("pt-{i:05}"),
                role: Role::PartTimeWorker,
                department: None,
                areas: vec![grids[i % grids.len()].code.to_string()],
                full_store: None,
                share: unshared,
            });
        }
        for (i, (_, members)) in communities.iter().enumerate() {
            workers.push(CityWorker {
                person: format!("gl-{i:05}"),
                role: Role::GridLeader,
                department: None,
                areas: members.iter().map(|&g| grids[g].code.to_string()).collect(),
                full_store: None,
                share: unshared,
            });
        }
        for i in 0..n_professional {
            // Two neighbouring grids (or one, in a city of one grid).
            let first = (i * 2) % grids.len();
            let mut areas = vec![grids[first].code.to_string()];
            if grids.len() > 1 {
                areas.push(grids[(first + 1) % grids.len()].code.to_string());
            }
            workers.push(CityWorker {
                person: format!("pw-{i:05}"),
                role: Role::ProfessionalWorker,
                department: Some(leading[i % leading.len()].clone()),
                areas,
                full_store: None,
                share: unshared,
            });
        }
        // Township staff: at least one per township, the rest spread evenly.
        let township_codes: Vec<&String> = townships.keys().collect();
        let mut per_township: BTreeMap<&String, usize> = BTreeMap::new();
        for i in 0..n_township {
            *per_township.entry(township_codes[i % township_codes.len()]).or_default() += 1;
        }
        for (township, n) in &per_township {
            for index in 0..*n {
                workers.push(CityWorker {
                    person: format!("cc-{township}-{index:03}"),
                    role: Role::CenterStaff(CenterLevel::Township),
                    department: None,
                    areas: vec![(*township).clone()],
                    full_store: None,
                    share: Share { index, of: *n },
                });
            }
        }
        // County and city staff cover the whole county and share the urging among them.
        let n_upper = n_county + n_city;
        for index in 0..n_upper {
            let (level, tag) =
                if index < n_county { (CenterLevel::County, "county") } else { (CenterLevel::City, "city") };
            workers.push(CityWorker {
                person: format!("cc-{tag}-{index:03}"),
                role: Role::CenterStaff(level),
                department: None,
                areas: vec![county.clone()],
                full_store: None,
                share: Share { index, of: n_upper },
            });
        }
        // Department handlers: evenly over the leading departments (the first ones get one
        // more when it does not divide).
        let n_covered = leading.len().min(n_departments);
        for (d, department) in leading.iter().take(n_covered).enumerate() {
            let n = n_departments / n_covered + usize::from(d < n_departments % n_covered);
            for index in 0..n {
                workers.push(CityWorker {
                    person: format!("dh-{department}-{index:03}"),
                    role: Role::DepartmentHandler,
                    department: Some(department.clone()),
                    areas: Vec::new(),
                    full_store: None,
                    share: Share { index, of: n },
                });
            }
        }
        let covered = &leading[..n_covered];
        let reportable_items = catalog
            .admitted_items()
            .filter(|item| item.lead_department().is_some_and(|lead| covered.contains(lead)))
            .map(|item| item.code.clone())
            .collect();
        Ok(City { grids, workers, reportable_items })
    }

    pub fn role_counts(&self) -> RoleCounts {
        let mut counts = RoleCounts::default();
        for worker in &self.workers {
            let count = match worker.role {
                Role::FullTimeWorker => &mut counts.full_time,
                Role::PartTimeWorker => &mut counts.part_time,
                Role::GridLeader => &mut counts.grid_leaders,
                Role::ProfessionalWorker => &mut counts.professional,
                Role::CenterStaff(_) => &mut counts.center,
                Role::DepartmentHandler => &mut counts.departments,
            };
            *count += 1;
        }
        counts
    }

    pub fn n_demo(&self) -> usize {
        self.grids.iter().filter(|grid| grid.demo).count()
    }
}

/// The demo register of a grid: `households` households, a tenth as many organizations
/// and a fifth as many components, as `demo::generate_city` makes them.
pub fn demo_records(code: &GridCode, households: usize, seed: u64) -> GridRecords {
    generate_grid(
        code,
        &DemoOptions {
            seed,
            households,
            organizations: households / 10,
            components: households / 5,
            ..DemoOptions::default()
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_city_of_4000_devices_has_every_role_and_a_township_staff_for_every_township() {
        let city = City::plan(4000, 1000, 24, 1).unwrap();
        let counts = city.role_counts();
        assert_eq!(city.workers.len(), 4000);
        assert_eq!(counts.full_time, 1000);
        assert_eq!(counts.grid_leaders, 250);
        assert!(counts.part_time > 1500 && counts.center >= 100 && counts.departments == 400, "{counts:?}");
        assert_eq!(city.n_demo(), 24);
        assert_eq!(city.workers.iter().filter(|worker| worker.full_store.is_some()).count(), 24);
        let townships: std::collections::BTreeSet<&str> =
            city.grids.iter().map(|grid| grid.code.township_code()).collect();
        for township in townships {
            assert!(
                city.workers.iter().any(|worker| worker.role == Role::CenterStaff(CenterLevel::Township)
                    && worker.areas == [township.to_owned()]),
                "{township}"
            );
        }
        assert!(!city.reportable_items.is_empty());
    }

    #[test]
    fn too_few_devices_are_refused_with_the_minimum() {
        let error = City::plan(100, 100, 0, 1).unwrap_err();
        assert!(error.contains("too few"), "{error}");
    }

    #[test]
    fn a_share_takes_each_key_exactly_once() {
        for key in ["a", "incident/0193", "x-1"] {
            let takers = (0..5).filter(|&index| Share { index, of: 5 }.takes(key)).count();
            assert_eq!(takers, 1, "{key}");
        }
    }
}
