//! The public grid card on the server's side: the supervision phone, workers' posted
//! contacts, and the card itself, all through the reference document that every device
//! receives (one source for the public page and the devices).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use wangge_core::card::{self, GridCard};
use wangge_core::model::{GridCode, InvalidField, PersonName, Phone};
use wangge_core::reference::{self, GridMeta};

use super::{Result, Service, ServiceError};
use crate::storage::{Storage, WorkerContact};

impl<S: Storage> Service<S> {
    /// Sets (or with `None` removes) the supervision phone (监督电话) posted on a grid's
    /// card: a mainland number or a 12xxx service line (`card::parse_supervision_phone`).
    pub fn set_supervision_phone(&self, code: &GridCode, phone: Option<&str>) -> Result<()> {
        let phone = phone
            .map(card::parse_supervision_phone)
            .transpose()
            .map_err(|error| ServiceError::Malformed(error.to_string()))?;
        if self.storage.grid(code.as_str())?.is_none() {
            return Err(ServiceError::Malformed(format!("unknown grid {code}: create it first")));
        }
        self.update_reference(|doc| {
            let mut meta = reference::grid(doc, code.as_str())?.unwrap_or_default();
            if meta.supervision_phone == phone {
                return Ok(());
            }
            meta.supervision_phone = phone.clone();
            reference::set_grid(doc, code.as_str(), &meta)
        })
    }

    /// Sets a worker's public contact, posted on the card of their grids if their role
    /// is posted ([`card::is_posted`]): the name (`PersonName`) and work phone (`Phone`),
    /// validated and normalized; `None` removes one. The cards are republished at once.
    pub fn set_worker_contact(&self, person: &str, name: Option<&str>, phone: Option<&str>) -> Result<()> {
        let contact = Self::check_worker_contact(name, phone)?;
        let Some(worker) = self.storage.worker(person)? else {
            return Err(ServiceError::Malformed(format!("unknown worker {person}")));
        };
        self.storage.set_worker_contact(person, &contact)?;
        self.publish_staff(&worker.grids)
    }

    /// A worker's contact as it would be stored: validated and normalized (what
    /// [`Service::set_worker_contact`] checks first, for callers that check before they
    /// change anything).
    pub fn check_worker_contact(name: Option<&str>, phone: Option<&str>) -> Result<WorkerContact> {
        let malformed = |error: InvalidField| ServiceError::Malformed(error.to_string());
        Ok(WorkerContact {
            name: name.map(PersonName::parse).transpose().map_err(malformed)?.map(String::from),
            phone: phone.map(Phone::parse).transpose().map_err(malformed)?.map(String::from),
        })
    }

    /// A grid's public card as the reference document has it (what every device gets):
    /// `NotFound` for a malformed code or a grid the server does not know.
    pub fn grid_card(&self, code: &str) -> Result<GridCard> {
        let not_found = || ServiceError::NotFound(format!("no grid {code}"));
        let code = GridCode::parse_default(code).map_err(|_| not_found())?;
        let snapshot = self.storage.snapshot(&reference::doc_id().to_string())?.ok_or_else(not_found)?;
        let grids = published_grids(snapshot)?;
        let meta = grids.get(code.as_str()).ok_or_else(not_found)?;
        Ok(GridCard::from_meta(code, meta))
    }

    /// Republishes the staff posted on these grids' cards from the workers assigned to
    /// them now: one change to the reference document, none when nothing changed. Area
    /// codes (a centre's) and unknown grids are passed over: only grids have cards.
    pub(super) fn publish_staff(&self, grids: &[String]) -> Result<()> {
        let mut failed = None;
        self.update_reference(|doc| {
            for code in grids {
                // Read under the reference's lock, so that two updates never publish
                // each other's stale lists.
                let staff = match self.posted_staff(code) {
                    Ok(staff) => staff,
                    Err(error) => {
                        failed = Some(error);
                        return Ok(());
                    }
                };
                let Some(mut meta) = reference::grid(doc, code)? else { continue };
                if meta.staff != staff {
                    meta.staff = staff;
                    reference::set_grid(doc, code, &meta)?;
                }
            }
            Ok(())
        })?;
        failed.map_or(Ok(()), Err)
    }

    fn posted_staff(&self, grid: &str) -> Result<Vec<reference::PostedContact>> {
        let candidates = self.storage.grid_staff(grid)?.into_iter().filter_map(|(worker, contact)| {
            Some(reference::PostedContact { role: worker.role, name: contact.name?, phone: contact.phone })
        });
        Ok(card::posted_staff(candidates))
    }
}

/// The grids' metadata of the reference snapshot that cards were last read from, and
/// that snapshot. The public page is unauthenticated and a notice board's QR code is
/// scanned by many phones: loading the reference document for each (about 6 ms, for
/// its catalog and calendar) would let anyone keep the server busy. Keyed by the
/// snapshot's bytes, so it is right for any service in the process and is replaced
/// whenever the reference changes.
static PUBLISHED: Mutex<Option<(Vec<u8>, PublishedGrids)>> = Mutex::new(None);

/// Grid code → metadata.
type PublishedGrids = Arc<HashMap<String, GridMeta>>;

fn published_grids(snapshot: Vec<u8>) -> Result<PublishedGrids> {
    // Held while loading: concurrent requests after a change wait for one load.
    let mut published = PUBLISHED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((bytes, grids)) = published.as_ref()
        && *bytes == snapshot
    {
        return Ok(Arc::clone(grids));
    }
    let doc = automerge::AutoCommit::load(&snapshot)
        .map_err(|_| ServiceError::Malformed("stored reference document".into()))?;
    let grids = reference::read(&doc).map_err(|error| ServiceError::Malformed(error.to_string()))?.grids;
    let grids = Arc::new(grids.into_iter().collect::<HashMap<_, _>>());
    *published = Some((snapshot, Arc::clone(&grids)));
    Ok(grids)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{SqliteStorage, Worker};

    fn service(dir: &tempfile::TempDir) -> Service<SqliteStorage> {
        Service::new(SqliteStorage::open(&dir.path().join("server.db")).unwrap())
    }

    fn worker(person: &str, role: &str, grids: &[&GridCode]) -> Worker {
        Worker {
            person: person.into(),
            role: role.into(),
            department: (role == "professional_worker").then(|| "public_security".to_owned()),
            grids: grids.iter().map(|grid| grid.as_str().to_owned()).collect(),
        }
    }

    fn names(contacts: &[reference::PostedContact]) -> Vec<&str> {
        contacts.iter().map(|contact| contact.name.as_str()).collect()
    }

    #[test]
    fn the_card_follows_workers_as_they_are_named_moved_and_change_role() {
        let dir = tempfile::tempdir().unwrap();
        let service = service(&dir);
        let one = GridCode::parse_default("440703001001001").unwrap();
        let two = GridCode::parse_default("440703001001002").unwrap();
        service.create_grid(&one, "第1网格", "community").unwrap();
        service.create_grid(&two, "第2网格", "community").unwrap();
        let n_changes = service.storage().max_seq().unwrap();
        service.create_worker(&worker("w1", "full_time_worker", &[&one])).unwrap();
        assert!(service.grid_card(one.as_str()).unwrap().workers.is_empty(), "no name, not posted");
        assert_eq!(service.storage().max_seq().unwrap(), n_changes, "nothing to republish, no change");

        service.set_worker_contact("w1", Some(" 陈专职 "), Some("138 0000 0002")).unwrap();
        let card = service.grid_card(one.as_str()).unwrap();
        assert_eq!(
            card.workers,
            vec![reference::PostedContact {
                role: "full_time_worker".into(),
                name: "陈专职".into(),
                phone: Some("13800000002".into()),
            }]
        );

        // Moved to the other grid: it leaves the first card and joins the second.
        service.create_worker(&worker("w1", "full_time_worker", &[&two])).unwrap();
        assert!(service.grid_card(one.as_str()).unwrap().workers.is_empty());
        assert_eq!(names(&service.grid_card(two.as_str()).unwrap().workers), ["陈专职"]);

        // Made a leader of both, then a department handler: not grid staff, off every card.
        service.create_worker(&worker("w1", "grid_leader", &[&one, &two])).unwrap();
        assert_eq!(names(&service.grid_card(one.as_str()).unwrap().leaders), ["陈专职"]);
        assert_eq!(names(&service.grid_card(two.as_str()).unwrap().leaders), ["陈专职"]);
        let handler = Worker {
            department: Some("public_security".into()),
            grids: Vec::new(),
            ..worker("w1", "department_handler", &[])
        };
        service.create_worker(&handler).unwrap();
        assert!(service.grid_card(one.as_str()).unwrap().leaders.is_empty());
        assert!(service.grid_card(two.as_str()).unwrap().leaders.is_empty());
    }

    #[test]
    fn updating_a_grid_keeps_its_staff_and_supervision_phone() {
        let dir = tempfile::tempdir().unwrap();
        let service = service(&dir);
        let one = GridCode::parse_default("440703001001001").unwrap();
        service.create_grid(&one, "第1网格", "community").unwrap();
        service.set_supervision_phone(&one, Some("12345")).unwrap();
        service.create_worker(&worker("p1", "professional_worker", &[&one])).unwrap();
        service.set_worker_contact("p1", Some("赵专业"), None).unwrap();
        service.create_grid(&one, "长堤社区第1网格", "village").unwrap();
        let card = service.grid_card(one.as_str()).unwrap();
        assert_eq!((card.name.as_str(), card.kind_label.as_str()), ("长堤社区第1网格", "农村网格"));
        assert_eq!(card.supervision_phone.as_deref(), Some("12345"));
        assert_eq!(names(&card.workers), ["赵专业"]);
        assert_eq!(card.workers[0].role_label(), "专业网格员");
        service.set_supervision_phone(&one, None).unwrap();
        assert_eq!(service.grid_card(one.as_str()).unwrap().supervision_phone, None);
    }

    #[test]
    fn contacts_and_phones_are_validated_and_unknown_grids_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let service = service(&dir);
        let one = GridCode::parse_default("440703001001001").unwrap();
        service.create_grid(&one, "第1网格", "community").unwrap();
        service.create_worker(&worker("w1", "full_time_worker", &[&one])).unwrap();
        let refused = |result: Result<()>| match result {
            Err(ServiceError::Malformed(message)) => message,
            other => format!("not refused: {other:?}"),
        };
        let message = refused(service.set_worker_contact("w1", Some("陈专职"), Some("12345678")));
        assert!(message.starts_with("invalid phone"), "{message}");
        assert!(!message.contains("12345678"), "the value is not echoed");
        assert!(refused(service.set_worker_contact("w1", Some("  "), None)).starts_with("invalid name"));
        assert!(refused(service.set_worker_contact("nobody", Some("陈专职"), None)).contains("unknown worker"));
        assert!(refused(service.set_supervision_phone(&one, Some("110"))).starts_with("invalid supervision_phone"));
        let other = GridCode::parse_default("440703001001009").unwrap();
        assert!(refused(service.set_supervision_phone(&other, Some("12345"))).contains("unknown grid"));
        for code in ["440703001001009", "not a code", ""] {
            assert!(matches!(service.grid_card(code), Err(ServiceError::NotFound(_))), "{code}");
        }
    }
}
