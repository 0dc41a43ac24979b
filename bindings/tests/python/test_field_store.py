"""FieldStore offline: captures, queries, conflicts, archiving, incidents, photos, listeners."""

import shutil
import tempfile
import unittest
import uuid
from pathlib import Path

import wangge

GRID = "440703001001001"


def worker(role=wangge.Role.FULL_TIME_WORKER, person="w1", department=None):
    return wangge.Worker(person=person, role=role, department=department)


class StoreCase(unittest.TestCase):
    """A fresh store with one grid, in a directory of its own."""

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="wangge-py-"))
        self.store = wangge.FieldStore.open(str(self.dir / "store.db"), worker())
        self.store.add_grid(GRID, "长堤社区第1网格", wangge.GridKind.COMMUNITY, True)

    def tearDown(self):
        del self.store
        shutil.rmtree(self.dir, ignore_errors=True)

    def building(self, name="2栋"):
        return self.store.add_building(GRID, wangge.NewBuilding(
            name=name, address="江门市蓬江区港口路3号", usage=wangge.BuildingUse.RESIDENTIAL, floors=6))

    def household(self, building=None):
        return self.store.add_household(GRID, wangge.NewHousehold(
            building=building, room="2单元501", residence_type=wangge.ResidenceType.REGISTERED))

    def resident(self, household, name="张晓梅", id_number="11010519491231002X", phone="13800138000"):
        return self.store.add_resident(GRID, wangge.NewResident(
            household=household, name=name, id_number=id_number, phone=phone,
            relation=wangge.Relation.HEAD, residence_type=wangge.ResidenceType.REGISTERED,
            tags=[wangge.PersonTag.ELDERLY_ALONE]))


class CaptureAndQueryTest(StoreCase):
    def test_records_read_back_with_derived_fields(self):
        building = self.building()
        household = self.household(building)
        resident = self.resident(household)

        read = self.store.resident(resident)
        self.assertEqual(read.name, "张晓梅")
        self.assertEqual(read.grid, GRID)
        self.assertEqual(read.household, household)
        self.assertEqual(read.gender, wangge.Gender.FEMALE)  # from the ID number
        self.assertEqual(read.sensitive.birth_date, "1949-12-31")
        self.assertEqual(read.sensitive.id_number, "1101**********002X")  # masked by default
        self.assertEqual(read.sensitive.phone, "138****8000")
        self.assertEqual(read.sensitive.tags, [wangge.PersonTag.ELDERLY_ALONE])
        self.assertEqual(read.status, wangge.RecordStatus.ACTIVE())

        self.assertEqual(self.store.building(building).floors, 6)
        self.assertEqual(self.store.household(household).building, building)
        [summary] = self.store.list_households(GRID)
        self.assertEqual((summary.id, summary.head_name, summary.n_residents), (household, "张晓梅", 1))
        self.assertEqual(summary.building_name, "2栋")
        self.assertEqual([b.id for b in self.store.list_buildings(GRID)], [building])
        self.assertEqual([r.id for r in self.store.residents_of_household(household)], [resident])

    def test_full_values_need_a_reason_and_leave_an_audit_record(self):
        resident = self.resident(self.household())
        full = self.store.reveal_resident(resident, "核实低保申请")
        self.assertEqual((full.id_number, full.phone), ("11010519491231002X", "13800138000"))
        [view] = self.store.full_views(GRID, 0, 2**62)
        self.assertEqual((view.worker, view.record, view.reason), ("w1", f"resident/{resident}", "核实低保申请"))
        self.assertEqual(view.fields, ["id_number", "phone"])
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.reveal_resident(resident, "")
        part_time = wangge.FieldStore.open(str(self.dir / "p.db"), worker(wangge.Role.PART_TIME_WORKER, "p1"))
        part_time.add_grid(GRID, "长堤社区第1网格", wangge.GridKind.COMMUNITY, False)
        with self.assertRaises(wangge.ApiError.NotFound):
            part_time.reveal_resident(resident, "看看")  # not on a device without the grid's data
        self.assertEqual(len(self.store.full_views(GRID, 0, 2**62)), 1)

    def test_search_by_name_fragment_and_phone_tail(self):
        resident = self.resident(self.household())
        self.resident(self.household(), name="李四", id_number=None, phone="13900001111")
        self.assertEqual([hit.id for hit in self.store.search_residents("晓梅", 10)], [resident])
        self.assertEqual([hit.id for hit in self.store.search_residents("8000", 10)], [resident])
        self.assertEqual(self.store.search_residents("王五", 10), [])

    def test_updates_change_only_what_they_name_and_clear_what_they_clear(self):
        resident = self.resident(self.household())
        self.store.update_resident(resident, wangge.ResidentPatch(
            relation=wangge.Relation.SPOUSE, clear_phone=True, add_tags=[wangge.PersonTag.VETERAN]))
        read = self.store.resident(resident)
        self.assertEqual(read.relation, wangge.Relation.SPOUSE)
        self.assertIsNone(read.sensitive.phone)
        self.assertEqual(read.sensitive.id_number, "1101**********002X")
        self.assertEqual(set(read.sensitive.tags), {wangge.PersonTag.ELDERLY_ALONE, wangge.PersonTag.VETERAN})

        building = self.building()
        self.store.update_building(building, wangge.BuildingPatch(name="2栋A", location=wangge.LatLng(lat=22.58, lng=113.08)))
        read = self.store.building(building)
        self.assertEqual(read.name, "2栋A")
        self.assertAlmostEqual(read.location.lat, 22.58)

    def test_organizations_and_components(self):
        organization = self.store.add_organization(GRID, wangge.NewOrganization(
            name="港口五金店", uscc="91350100M000100Y43", kind=wangge.OrganizationKind.INDIVIDUAL_BUSINESS,
            address="江门市蓬江区港口路5号", contact_phone="13800138000"))
        self.store.update_organization(organization, wangge.OrganizationPatch(name="港口五金商行"))
        self.assertEqual(self.store.organization(organization).name, "港口五金商行")
        self.assertEqual([o.id for o in self.store.list_organizations(GRID)], [organization])

        component = self.store.add_component(GRID, wangge.NewComponent(
            subclass="0101", name="消防栓", location=wangge.LatLng(lat=22.58, lng=113.08),
            state=wangge.ComponentState.INTACT))
        self.store.update_component(component, wangge.ComponentPatch(state=wangge.ComponentState.DAMAGED))
        self.assertEqual(self.store.component(component).state, wangge.ComponentState.DAMAGED)
        self.assertEqual([c.id for c in self.store.list_components(GRID)], [component])

    def test_archive_keeps_the_record_and_erase_removes_it(self):
        household = self.household()
        resident = self.resident(household)
        self.store.archive(wangge.ArchiveReason.RESIDENT_MOVED_OUT(resident=resident, on="2026-03-01"))
        self.assertEqual(self.store.resident(resident).status, wangge.RecordStatus.MOVED_OUT(on="2026-03-01"))

        spare = self.building("临时棚")
        self.store.erase(wangge.RecordRef.BUILDING(id=spare))
        with self.assertRaises(wangge.ApiError.NotFound):
            self.store.building(spare)
        # A household still lived in may not be erased: archive it instead.
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.erase(wangge.RecordRef.HOUSEHOLD(id=household))

    def test_grids_and_identity(self):
        [grid] = self.store.grids()
        self.assertEqual((grid.code, grid.name, grid.kind, grid.active), (GRID, "长堤社区第1网格", wangge.GridKind.COMMUNITY, True))
        self.assertEqual(self.store.worker(), worker())
        self.assertRegex(self.store.device_actor(), r"^[0-9a-f]{32}$")

    def test_there_are_no_conflicts_on_a_record_only_this_device_wrote(self):
        resident = self.resident(self.household())
        self.assertEqual(self.store.conflicts(wangge.RecordRef.RESIDENT(id=resident)), [])
        # Resolving writes the value like a capture.
        self.store.resolve_conflict(wangge.RecordRef.RESIDENT(id=resident), "relation", wangge.FieldValue.TEXT(value="child"))
        self.assertEqual(self.store.resident(resident).relation, wangge.Relation.CHILD)


class BadInputTest(StoreCase):
    def test_invalid_fields_raise_invalid_input_and_store_nothing(self):
        household = self.household()
        before = self.store.list_households(GRID)
        cases = [
            ("id_number", lambda: self.resident(household, id_number="110105194912310021")),
            ("phone", lambda: self.resident(household, id_number=None, phone="12345")),
            ("name", lambda: self.resident(household, name=" ")),
            ("birth_date", lambda: self.store.add_resident(GRID, wangge.NewResident(
                name="王五", birth_date="1990-02-30", relation=wangge.Relation.HEAD,
                residence_type=wangge.ResidenceType.MIGRANT))),
            ("uscc", lambda: self.store.add_organization(GRID, wangge.NewOrganization(
                name="某公司", uscc="91350100M000100Y44", kind=wangge.OrganizationKind.ENTERPRISE, address="某路1号"))),
        ]
        for field, capture in cases:
            with self.subTest(field=field):
                with self.assertRaises(wangge.ApiError.InvalidInput) as raised:
                    capture()
                self.assertEqual(raised.exception.field, field)
        self.assertEqual(self.store.list_households(GRID), before)
        self.assertEqual(self.store.residents_of_household(household), [])

    def test_unknown_records_and_grids_raise_not_found(self):
        with self.assertRaises(wangge.ApiError.NotFound):
            self.store.resident(str(uuid.uuid4()))
        with self.assertRaises(wangge.ApiError.NotFound):
            self.store.update_building(str(uuid.uuid4()), wangge.BuildingPatch(name="x"))
        with self.assertRaises(wangge.ApiError.NotFound):
            self.building_in("440703001001009")
        for list_of in (self.store.list_households, self.store.list_buildings,
                        self.store.list_organizations, self.store.list_components):
            with self.assertRaises(wangge.ApiError.NotFound):
                list_of("440703001001009")  # a grid not on this device, not an empty one

    def building_in(self, grid):
        return self.store.add_building(grid, wangge.NewBuilding(
            name="1栋", address="某路1号", usage=wangge.BuildingUse.RESIDENTIAL))

    def test_malformed_ids_codes_and_numbers_raise_invalid_input(self):
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.resident("not-an-id")
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.search_residents("张", -1)
        with self.assertRaises(wangge.ApiError.InvalidInput) as raised:
            self.store.add_building(GRID, wangge.NewBuilding(
                name="1栋", address="某路1号", usage=wangge.BuildingUse.RESIDENTIAL, floors=70000))
        self.assertEqual(raised.exception.field, "floors")
        with self.assertRaises(wangge.ApiError.InvalidInput):
            wangge.add_working_days("2025-01-02", -1)
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.building_in("4407")

    def test_a_store_opened_twice_in_one_process_is_refused(self):
        with self.assertRaises(wangge.ApiError.Storage):
            wangge.FieldStore.open(str(self.dir / "store.db"), worker())

    def test_a_capture_without_a_worker_is_refused_for_incidents(self):
        store = wangge.FieldStore.open(str(self.dir / "other.db"), None)
        store.add_grid(GRID, "长堤社区第1网格", wangge.GridKind.COMMUNITY, False)
        self.assertIsNone(store.worker())
        item = next(item for item in store.catalog_items() if item.admitted)
        with self.assertRaises(wangge.ApiError.InvalidInput) as raised:
            store.report_incident(wangge.NewIncident(grid=GRID, catalog_item=item.code, title="x"))
        self.assertEqual(raised.exception.field, "worker")


class IncidentTest(StoreCase):
    def report(self, **fields):
        item = next(item for item in self.store.catalog_items() if item.admitted)
        return self.store.report_incident(wangge.NewIncident(grid=GRID, catalog_item=item.code, title="楼道堆放杂物", **fields))

    def test_report_then_an_action_the_role_may_not_take_is_kept_and_marked(self):
        photo = self.store.put_blob(b"\xff\xd8 a photo")
        incident = self.report(description="3楼楼道", photos=[photo], location=wangge.LatLng(lat=22.58, lng=113.08))
        summary = self.store.incident(incident)
        self.assertEqual((summary.phase, summary.reporter, summary.grid), (wangge.Phase.REPORTED, "w1", GRID))
        self.assertIsNotNone(summary.matter_class)
        report = {field.name: field.value for field in self.store.incident_report(incident)}
        self.assertEqual(report.get("title"), "楼道堆放杂物")

        outcome = self.store.act(incident, wangge.IncidentAction.ACCEPT())
        self.assertFalse(outcome.applied)
        self.assertIn("may not", outcome.reason)
        timeline = self.store.incident_timeline(incident)
        self.assertEqual([entry.action for entry in timeline], ["report", "accept"])
        self.assertEqual([entry.applied for entry in timeline], [True, False])
        self.assertEqual(timeline[0].actor, worker())
        self.assertIn("上报", timeline[0].text)

    def test_resolved_on_the_spot_counts_in_the_stats(self):
        incident = self.report()
        # Resolving on the spot needs evidence: without a photo it is kept, not applied.
        refused = self.store.act(incident, wangge.IncidentAction.RESOLVE_ON_SPOT(note="已劝导清理", evidence=[]))
        self.assertFalse(refused.applied)
        photo = self.store.put_blob(b"after")
        outcome = self.store.act(incident, wangge.IncidentAction.RESOLVE_ON_SPOT(note="已劝导清理", evidence=[photo]))
        self.assertTrue(outcome.applied, outcome.reason)
        self.assertEqual(self.store.incident(incident).phase, wangge.Phase.RESOLVED_ON_SPOT)
        self.report()
        stats = self.store.incident_stats(wangge.IncidentFilter())
        self.assertEqual((stats.total, stats.n_resolved_on_spot), (2, 1))
        self.assertAlmostEqual(stats.on_the_spot_rate, 0.5)
        self.assertEqual(stats.by_phase, {"resolved_on_spot": 1, "reported": 1})
        listed = self.store.incidents(wangge.IncidentFilter(phases=[wangge.Phase.REPORTED]))
        self.assertEqual(len(listed), 1)
        self.assertEqual(self.store.incidents(wangge.IncidentFilter(grids=["440703001001002"])), [])

    def test_bad_actions_and_filters_raise_invalid_input(self):
        incident = self.report()
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.act(incident, wangge.IncidentAction.DISPATCH(lead="", co_handlers=[]))
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.act(incident, wangge.IncidentAction.ESCALATE(leader="a", person="b", deadline="soon"))
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.incidents(wangge.IncidentFilter(matter_class="no_such_class"))
        with self.assertRaises(wangge.ApiError.NotFound):
            self.store.incident(str(uuid.uuid4()))
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.report(residents=["not-an-id"])

    def test_a_center_worker_accepts_and_dispatches_with_a_deadline(self):
        center = wangge.FieldStore.open(str(self.dir / "center.db"), worker(wangge.Role.CENTER_STAFF_TOWNSHIP, "c1"))
        center.add_grid(GRID, "长堤社区第1网格", wangge.GridKind.COMMUNITY, True)
        item = next(item for item in center.catalog_items() if item.admitted and item.lead_department)
        incident = center.report_incident(wangge.NewIncident(grid=GRID, catalog_item=item.code, title="占道经营"))
        self.assertTrue(center.act(incident, wangge.IncidentAction.ACCEPT()).applied)
        outcome = center.act(incident, wangge.IncidentAction.DISPATCH(lead=item.lead_department, co_handlers=[]))
        self.assertTrue(outcome.applied, outcome.reason)
        summary = center.incident(incident)
        self.assertEqual((summary.phase, summary.lead_department), (wangge.Phase.DISPATCHED, item.lead_department))
        self.assertIsNotNone(summary.deadline)
        self.assertGreaterEqual(summary.deadline.working_days_left, 0)
        self.assertFalse(summary.deadline.overdue)


class BlobTest(StoreCase):
    def test_a_photo_is_stored_by_its_hash(self):
        photo = b"\xff\xd8\xff\xe0 not really a jpeg" * 100
        digest = self.store.put_blob(photo)
        self.assertRegex(digest, r"^sha256:[0-9a-f]{64}$")
        self.assertEqual(self.store.get_blob(digest), photo)
        self.assertIsNone(self.store.get_blob("sha256:" + "0" * 64))
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.get_blob("md5:1234")
        self.assertEqual(self.store.sync_status().pending_blobs, 1)


class Recorder(wangge.ChangeListener):
    def __init__(self):
        self.changes = []

    def on_change(self, change):
        self.changes.append(change)


class ChangeListenerTest(StoreCase):
    def test_local_changes_reach_the_listener_until_the_subscription_ends(self):
        recorder = Recorder()
        subscription = self.store.subscribe(recorder)
        building = self.building()
        self.assertEqual(len(recorder.changes), 1)
        change = recorder.changes[0]
        self.assertEqual(change.source, wangge.ChangeSource.LOCAL)
        self.assertEqual(change.grids, [GRID])
        self.assertEqual(change.records, [wangge.RecordRef.BUILDING(id=building)])

        self.store.update_building(building, wangge.BuildingPatch(floors=7))
        self.assertEqual(recorder.changes[-1].records, [wangge.RecordRef.BUILDING(id=building)])

        subscription.cancel()
        self.building("3栋")
        self.assertEqual(len(recorder.changes), 2)

    def test_dropping_the_subscription_ends_it(self):
        recorder = Recorder()
        subscription = self.store.subscribe(recorder)
        self.building()
        del subscription
        self.building("3栋")
        self.assertEqual(len(recorder.changes), 1)

    def test_a_failed_capture_notifies_nobody(self):
        recorder = Recorder()
        _subscription = self.store.subscribe(recorder)
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.add_building(GRID, wangge.NewBuilding(name="", address="x", usage=wangge.BuildingUse.OTHER))
        self.assertEqual(recorder.changes, [])


if __name__ == "__main__":
    unittest.main()
