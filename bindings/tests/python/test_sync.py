"""Enrollment and the async sync against a real wangge-server started by the test."""

import asyncio
import shutil
import tempfile
import unittest
from pathlib import Path

import wangge
from support import TestServer

GRID = "440703001001001"
OTHER = "440703001001002"


class Recorder(wangge.ChangeListener):
    def __init__(self):
        self.changes = []

    def on_change(self, change):
        self.changes.append(change)


class Progress(wangge.SyncProgressListener):
    def __init__(self):
        self.seen = []

    def on_progress(self, progress):
        self.seen.append(progress)


class SyncCase(unittest.IsolatedAsyncioTestCase):
    """A server with two grids and workers of several roles; devices in a directory."""

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="wangge-py-sync-"))
        self.server = TestServer()
        self.server.add_grid(GRID, "长堤社区第1网格")
        self.server.add_grid(OTHER, "长堤社区第2网格")
        self.codes = {
            "w1": self.server.add_worker("w1", "full_time_worker", grids=[GRID]),
            "p1": self.server.add_worker("p1", "part_time_worker", grids=[GRID]),
            "l1": self.server.add_worker("l1", "grid_leader", grids=[GRID, OTHER]),
            "w2": self.server.add_worker("w2", "full_time_worker", grids=[OTHER]),
            "c1": self.server.add_worker("c1", "center_staff_township", grids=["440703001"]),
            "h1": self.server.add_worker("h1", "department_handler", department="urban_management"),
        }
        self.server.start()

    def tearDown(self):
        self.server.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def device(self, person):
        store = wangge.FieldStore.open(str(self.dir / f"{person}.db"), None)
        enrolled = await store.enroll(self.server.url, self.codes[person], f"{person}'s phone")
        self.assertEqual(enrolled.person, person)
        return store


class EnrollAndSyncTest(SyncCase):
    async def test_a_capture_reaches_another_device_with_progress_and_a_change_event(self):
        worker = await self.device("w1")
        self.assertEqual(worker.worker(), wangge.Worker(person="w1", role=wangge.Role.FULL_TIME_WORKER, department=None))
        self.assertEqual([grid.code for grid in worker.grids()], [GRID])
        household = worker.add_household(GRID, wangge.NewHousehold(
            room="501", address="江门市蓬江区港口路3号", residence_type=wangge.ResidenceType.REGISTERED))
        resident = worker.add_resident(GRID, wangge.NewResident(
            household=household, name="张晓梅", phone="13800138000",
            relation=wangge.Relation.HEAD, residence_type=wangge.ResidenceType.REGISTERED))
        self.assertGreater(worker.sync_status().pending_changes, 0)

        progress = Progress()
        report = await worker.sync(progress)
        self.assertGreaterEqual(len(progress.seen), 1)
        self.assertEqual(progress.seen[-1].pages, report.pages)
        self.assertGreater(report.changes_pushed, 0)
        status = worker.sync_status()
        self.assertEqual((status.enrolled, status.pending_changes, status.last_error), (True, 0, None))
        self.assertEqual(status.server_url, self.server.url)
        self.assertIsNotNone(status.last_success_ms)
        self.assertIsNotNone(status.device_id)

        leader = await self.device("l1")
        recorder = Recorder()
        _subscription = leader.subscribe(recorder)
        await leader.sync(None)
        self.assertEqual([summary.id for summary in leader.list_households(GRID)], [household])
        self.assertEqual(leader.resident(resident).sensitive.phone, "138****8000")
        self.assertEqual(leader.reveal_resident(resident, "回访核实").phone, "13800138000")
        await leader.sync(None)
        await worker.sync(None)
        # The view travelled: the worker's device has the leader's audit record.
        [view] = worker.full_views(GRID, 0, 2**62)
        self.assertEqual((view.worker, view.reason), ("l1", "回访核实"))
        synced = [change for change in recorder.changes if change.source == wangge.ChangeSource.SYNC]
        self.assertTrue(any(GRID in change.grids for change in synced), recorder.changes)

        # A steady-state sync of one edit is one page and a few hundred bytes.
        worker.update_resident(resident, wangge.ResidentPatch(relation=wangge.Relation.SPOUSE))
        pushed = await worker.sync(None)
        pulled = await leader.sync(None)
        self.assertEqual((pushed.pages, pulled.pages), (1, 1))
        self.assertLess(pushed.bytes_sent + pushed.bytes_received + pulled.bytes_sent + pulled.bytes_received, 1024)
        self.assertEqual(leader.resident(resident).relation, wangge.Relation.SPOUSE)

    async def test_each_role_receives_only_what_it_may_see(self):
        worker = await self.device("w1")
        household = worker.add_household(GRID, wangge.NewHousehold(residence_type=wangge.ResidenceType.MIGRANT))
        resident = worker.add_resident(GRID, wangge.NewResident(
            household=household, name="李四", id_number="11010519491231002X",
            relation=wangge.Relation.HEAD, residence_type=wangge.ResidenceType.MIGRANT))
        await worker.sync(None)

        part_time = await self.device("p1")
        await part_time.sync(None)
        self.assertEqual(part_time.resident(resident).name, "李四")
        self.assertIsNone(part_time.resident(resident).sensitive)  # minimum necessary
        self.assertEqual(part_time.search_residents("002X", 10), [])

        elsewhere = await self.device("w2")
        await elsewhere.sync(None)
        with self.assertRaises(wangge.ApiError.NotFound):
            elsewhere.resident(resident)
        self.assertEqual([grid.code for grid in elsewhere.grids()], [OTHER])

    async def test_concurrent_edits_of_one_field_are_kept_as_a_conflict_until_resolved(self):
        worker = await self.device("w1")
        household = worker.add_household(GRID, wangge.NewHousehold(room="101", residence_type=wangge.ResidenceType.REGISTERED))
        await worker.sync(None)
        leader = await self.device("l1")
        await leader.sync(None)

        # Offline on both: the same field, two values.
        worker.update_household(household, wangge.HouseholdPatch(room="102"))
        leader.update_household(household, wangge.HouseholdPatch(room="103"))
        await worker.sync(None)
        await leader.sync(None)
        await worker.sync(None)

        record = wangge.RecordRef.HOUSEHOLD(id=household)
        [conflict] = worker.conflicts(record)
        self.assertEqual(conflict.field, "room")
        self.assertEqual(sorted(value.value.value for value in conflict.values), ["102", "103"])
        self.assertEqual(len({value.author for value in conflict.values}), 2)
        self.assertEqual(leader.conflicts(record), worker.conflicts(record))
        self.assertEqual(worker.household(household).room, leader.household(household).room)

        worker.resolve_conflict(record, "room", wangge.FieldValue.TEXT(value="103"))
        await worker.sync(None)
        await leader.sync(None)
        self.assertEqual(worker.conflicts(record), [])
        self.assertEqual(leader.conflicts(record), [])
        self.assertEqual(leader.household(household).room, "103")
        self.assertEqual(worker.failed_captures(), [])

    async def test_an_incident_runs_through_the_loop_by_sync(self):
        worker = await self.device("w1")
        center = await self.device("c1")
        handler = await self.device("h1")
        item = next(item for item in worker.catalog_items() if item.admitted and item.lead_department == "urban_management")
        photo = worker.put_blob(b"\xff\xd8 photo of the stall")
        incident = worker.report_incident(wangge.NewIncident(grid=GRID, catalog_item=item.code, title="占道经营", photos=[photo]))
        report = await worker.sync(None)
        self.assertEqual(report.blobs_uploaded, 1)

        await center.sync(None)
        self.assertTrue(center.act(incident, wangge.IncidentAction.ACCEPT()).applied)
        self.assertTrue(center.act(incident, wangge.IncidentAction.DISPATCH(lead="urban_management", co_handlers=[])).applied)
        await center.sync(None)

        await handler.sync(None)
        self.assertEqual(handler.incident(incident).phase, wangge.Phase.DISPATCHED)
        self.assertEqual(await handler.download_blob(photo), b"\xff\xd8 photo of the stall")
        self.assertTrue(handler.act(incident, wangge.IncidentAction.COMPLETE(feedback="已清理", evidence=[])).applied)
        await handler.sync(None)

        await worker.sync(None)
        self.assertEqual(worker.incident(incident).phase, wangge.Phase.COMPLETED)
        self.assertTrue(worker.act(incident, wangge.IncidentAction.VERIFY(verdict=wangge.Verdict.PASS, note="现场核实")).applied)
        await worker.sync(None)
        await center.sync(None)
        self.assertEqual(center.incident(incident).phase, wangge.Phase.VERIFIED)
        self.assertEqual([entry.action for entry in center.incident_timeline(incident)],
                         ["report", "accept", "dispatch", "complete", "verify"])


class FailureTest(SyncCase):
    async def test_sync_before_enrollment_raises_not_enrolled(self):
        store = wangge.FieldStore.open(str(self.dir / "new.db"), None)
        with self.assertRaises(wangge.ApiError.NotEnrolled):
            await store.sync(None)

    async def test_a_wrong_code_is_refused_and_leaves_the_store_unenrolled(self):
        store = wangge.FieldStore.open(str(self.dir / "new.db"), None)
        with self.assertRaises(wangge.ApiError.Refused) as raised:
            await store.enroll(self.server.url, "not-a-code", "phone")
        self.assertEqual(raised.exception.status, 404)
        self.assertFalse(store.sync_status().enrolled)
        self.assertEqual(store.grids(), [])

    async def test_an_unreachable_server_raises_network_and_the_next_sync_recovers(self):
        worker = await self.device("w1")
        worker.add_household(GRID, wangge.NewHousehold(residence_type=wangge.ResidenceType.REGISTERED))
        self.server.stop()
        with self.assertRaises(wangge.ApiError.Network):
            await worker.sync(None)
        status = worker.sync_status()
        self.assertIsNotNone(status.last_error)
        self.assertGreater(status.pending_changes, 0)  # nothing lost

        self.server.start()
        await worker.sync(None)
        status = worker.sync_status()
        self.assertEqual((status.pending_changes, status.last_error), (0, None))

    async def test_a_revoked_device_is_told_so(self):
        worker = await self.device("w1")
        await worker.sync(None)
        device_id = worker.sync_status().device_id
        self.server.stop()
        self.assertIn("revoked", self.server.admin("revoke", "--device", device_id))
        self.server.start()
        photo = worker.put_blob(b"\xff\xd8 a photo of the grid")
        with self.assertRaises(wangge.ApiError.Revoked):
            await worker.sync(None)
        # The core wiped the device: the database, its WAL, the photos; every call says why.
        left = [path.name for path in self.dir.iterdir() if path.name.startswith("w1.db")]
        self.assertEqual(left, [])
        with self.assertRaises(wangge.ApiError.Revoked):
            worker.grids()
        with self.assertRaises(wangge.ApiError.Revoked):
            worker.get_blob(photo)
        # A new store can be opened at the same path (for a new enrollment).
        again = wangge.FieldStore.open(str(self.dir / "w1.db"), None)
        self.assertEqual(again.grids(), [])

    async def test_syncs_of_two_stores_run_concurrently(self):
        worker = await self.device("w1")
        leader = await self.device("l1")
        worker.add_household(GRID, wangge.NewHousehold(residence_type=wangge.ResidenceType.REGISTERED))
        leader.add_household(OTHER, wangge.NewHousehold(residence_type=wangge.ResidenceType.REGISTERED))
        await asyncio.gather(worker.sync(None), leader.sync(None))
        await asyncio.gather(worker.sync(None), leader.sync(None))
        self.assertEqual(len(leader.list_households(GRID)), 1)
        self.assertEqual(len(leader.list_households(OTHER)), 1)


if __name__ == "__main__":
    unittest.main()
