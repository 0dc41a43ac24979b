"""Field work and place through the bindings: visits, check-ins, patrols with tracks,
coverage, a worker's month; locating and nearby, offline and with boundaries from a server."""

import math
import shutil
import tempfile
import unittest
from pathlib import Path

import wangge
from support import REPO, TestServer

GRID = "440703001001001"
NOV_3 = 1_793_671_200_000  # 2026-11-03 10:00 China time
JIANGMEN = REPO / "core" / "src" / "place" / "testdata" / "jiangmen.geojson"


def at(x, y):
    """`x` metres east and `y` north of (22.58 N, 113.08 E), the fixture's corner."""
    metres_per_degree = 6_371_008.8 * math.pi / 180.0
    return wangge.LatLng(lat=22.58 + y / metres_per_degree,
                         lng=113.08 + x / (metres_per_degree * math.cos(math.radians(22.58))))


def walk(start_ms, n, x0=50.0, y=300.0):
    points = []
    for i in range(n):
        p = at(x0 + i * 6.0, y)
        points.append(wangge.TrackPoint(time_ms=start_ms + i * 5000, lat=p.lat, lng=p.lng))
    return points


class FieldWorkTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="wangge-py-field-"))
        self.store = wangge.FieldStore.open(str(self.dir / "store.db"),
                                            wangge.Worker(person="w1", role=wangge.Role.FULL_TIME_WORKER))
        self.store.add_grid(GRID, "长堤社区第1网格", wangge.GridKind.COMMUNITY, True)
        here = at(100, 300)
        self.building = self.store.add_building(GRID, wangge.NewBuilding(
            name="2栋", address="江门市蓬江区港口路3号", usage=wangge.BuildingUse.RESIDENTIAL, location=here))
        self.far = self.store.add_building(GRID, wangge.NewBuilding(
            name="9栋", address="江门市蓬江区港口路9号", usage=wangge.BuildingUse.RESIDENTIAL, location=at(900, 900)))
        self.household = self.store.add_household(GRID, wangge.NewHousehold(
            building=self.building, residence_type=wangge.ResidenceType.REGISTERED))

    def tearDown(self):
        del self.store
        shutil.rmtree(self.dir, ignore_errors=True)

    def visit(self, **fields):
        return wangge.NewVisit(grid=GRID, target=wangge.VisitTarget.HOUSEHOLD(id=self.household),
                               time_ms=NOV_3, purpose=wangge.VisitPurpose.CARE, findings="独居老人身体良好", **fields)

    def test_a_visit_reads_back_and_can_raise_an_incident(self):
        visit = self.store.record_visit(self.visit(follow_up="下周复访"))
        item = next(item for item in self.store.catalog_items() if item.admitted)
        both = self.store.record_visit_with_incident(
            self.visit(), wangge.NewIncident(grid=GRID, catalog_item=item.code, title="燃气灶老化"))
        visits = self.store.visits(GRID, NOV_3 - 1, NOV_3 + 1)
        self.assertEqual({v.id for v in visits}, {visit, both.visit})
        raised = next(v for v in visits if v.id == both.visit)
        self.assertEqual(raised.incident, both.incident)
        self.assertEqual(self.store.incident(both.incident).title, "燃气灶老化")
        plain = next(v for v in visits if v.id == visit)
        self.assertEqual((plain.worker, plain.follow_up, plain.incident), ("w1", "下周复访", None))

    def test_a_bad_visit_raises_and_stores_nothing(self):
        with self.assertRaises(wangge.ApiError.InvalidInput) as raised:
            self.store.record_visit(wangge.NewVisit(grid=GRID, target=wangge.VisitTarget.HOUSEHOLD(id=self.household),
                                                    time_ms=NOV_3, purpose=wangge.VisitPurpose.OTHER, findings="很" * 2001))
        self.assertEqual(raised.exception.field, "findings")
        with self.assertRaises(wangge.ApiError.NotFound):
            self.store.record_visit(wangge.NewVisit(
                grid=GRID, target=wangge.VisitTarget.ORGANIZATION(id="01934b1e-0000-7000-8000-000000000001"),
                time_ms=NOV_3, purpose=wangge.VisitPurpose.OTHER))
        self.assertEqual(self.store.visits(GRID, 0, 2**62), [])

    def test_a_patrol_keeps_its_track_as_a_small_blob_and_counts_what_it_passed(self):
        points = walk(NOV_3, 2 * 3600 // 5)  # two hours at one point per 5 s
        patrol = self.store.record_patrol(GRID, points)
        self.assertEqual((patrol.n_points, patrol.n_flagged), (1440, 0))
        self.assertEqual(patrol.ended_ms - patrol.started_ms, 1439 * 5000)
        self.assertAlmostEqual(patrol.distance_m, 1439 * 6.0, delta=20)
        self.assertEqual(patrol.buildings_passed, [self.building])
        self.assertLess(len(self.store.get_blob(patrol.track)), 20 * 1024)
        back = self.store.track_points(patrol.track)
        self.assertEqual(len(back), 1440)
        self.assertEqual(back[0].time_ms, points[0].time_ms)
        self.assertAlmostEqual(back[-1].lat, points[-1].lat, places=6)
        self.assertEqual([p.id for p in self.store.patrols(GRID, 0, 2**62)], [patrol.id])
        self.assertEqual(self.store.sync_status().pending_blobs, 1)  # the track uploads at the next sync

        coverage = self.store.coverage(GRID, NOV_3 - 1, NOV_3 + 86_400_000)
        self.assertEqual((coverage.n_buildings, coverage.n_covered), (2, 1))
        self.assertEqual(coverage.share, 0.5)
        self.assertEqual(self.store.coverage(GRID, 0, 2**62, person="w2").n_covered, 0)

    def test_a_track_that_is_not_one_is_refused(self):
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.record_patrol(GRID, walk(NOV_3, 1))
        backwards = walk(NOV_3, 5)
        backwards[3] = wangge.TrackPoint(time_ms=NOV_3 - 1, lat=backwards[3].lat, lng=backwards[3].lng)
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.record_patrol(GRID, backwards)
        photo = self.store.put_blob(b"\xff\xd8 not a track")
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.track_points(photo)

    def test_a_workers_month(self):
        self.store.record_visit(self.visit())
        for day in (0, 0, 1, 5):
            self.store.check_in(GRID, at(100, 300), NOV_3 + day * 86_400_000)
        self.store.record_patrol(GRID, walk(NOV_3, 50))
        month = self.store.worker_month("w1", "2026-11")
        self.assertEqual((month.n_visits, month.n_check_in_days, month.n_patrols), (1, 3, 1))
        self.assertEqual(month.n_check_ins_outside, 0)  # no boundary on this device to judge by
        self.assertEqual(month.coverage, 0.5)
        [check_in] = self.store.check_ins(GRID, NOV_3 + 86_400_000, NOV_3 + 86_400_001)
        self.assertIsNone(check_in.inside_grid)
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.worker_month("w1", "November")

    def test_nearby_is_nearest_first_and_locate_says_when_it_cannot_tell(self):
        near = self.store.nearby(at(90, 300), 200.0)
        self.assertEqual([(item.kind, item.id) for item in near], [("building", self.building)])
        self.assertAlmostEqual(near[0].distance_m, 10.0, delta=0.5)
        self.assertEqual(len(self.store.nearby(at(90, 300), 2000.0)), 2)
        with self.assertRaises(wangge.ApiError.InvalidInput):
            self.store.nearby(at(90, 300), 100_000.0)
        self.assertEqual(self.store.locate(at(100, 300)), wangge.Located.NO_BOUNDARIES())


class BoundariesFromTheServerTest(unittest.IsolatedAsyncioTestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="wangge-py-places-"))
        self.server = TestServer()
        self.server.admin("import-grids", "--file", str(JIANGMEN))
        self.server.admin("add-grid", "--code", GRID, "--name", "长堤社区第一网格", "--supervision-phone", "12345")
        self.code = self.server.add_worker("w1", "full_time_worker", grids=[GRID])
        self.server.admin("add-worker", "--person", "w1", "--role", "full_time_worker", "--grid", GRID,
                          "--name", "李明", "--phone", "13800138000")
        self.server.start()

    def tearDown(self):
        self.server.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def test_points_are_located_and_check_ins_judged_by_the_published_boundaries(self):
        store = wangge.FieldStore.open(str(self.dir / "w1.db"))
        await store.enroll(self.server.url, self.code, "phone")
        await store.sync()
        located = store.locate(at(100, 500))
        self.assertEqual(located, wangge.Located.GRID(grid=GRID, community="440703001001", township="440703001"))
        self.assertIsInstance(store.locate(at(100, 5000)), wangge.Located.OUTSIDE)

        store.check_in(GRID, at(100, 500), NOV_3)
        store.check_in(GRID, at(100, 1500), NOV_3 + 60_000)
        inside, outside = sorted(store.check_ins(GRID, 0, 2**62), key=lambda c: c.time_ms)
        self.assertEqual((inside.inside_grid, inside.distance_to_grid_m), (True, None))
        self.assertFalse(outside.inside_grid)
        self.assertGreater(outside.distance_to_grid_m, 50)
        await store.sync()
        self.assertEqual(store.sync_status().pending_changes, 0)
        self.assertEqual(store.worker_month("w1", "2026-11").n_check_ins_outside, 1)

    async def test_the_grid_card_on_the_device_is_what_the_server_posts(self):
        store = wangge.FieldStore.open(str(self.dir / "card.db"))
        await store.enroll(self.server.url, self.code, "phone")
        await store.sync()
        card = store.grid_card(GRID)
        self.assertEqual((card.code, card.name, card.supervision_phone), (GRID, "长堤社区第一网格", "12345"))
        self.assertEqual([(w.name, w.phone, w.role_label) for w in card.workers], [("李明", "13800138000", "专职网格员")])
        self.assertEqual(card.leaders, [])
        self.assertGreater(card.area_m2, 10_000)
        self.assertIn("Polygon", card.boundary)
        with self.assertRaises(wangge.ApiError.NotFound):
            store.grid_card("440703009009009")


if __name__ == "__main__":
    unittest.main()
