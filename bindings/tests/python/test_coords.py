"""Coordinate conversions: WGS-84 (stored) to and from GCJ-02 (Amap, Tencent) and BD-09 (Baidu)."""

import math
import unittest

import wangge

# Published by other implementations, as (lat, lng):
# wandergis/coordtransform test/app.js: wgs84togcj02(116.404, 39.915).
TIANANMEN_WGS84 = (39.915, 116.404)
TIANANMEN_GCJ02 = (39.91640428150164, 116.41024449916938)
# wyxloading/coordtransform-rs tests/tests.rs: wgs84_to_bd09(116.404, 39.915).
TIANANMEN_BD09 = (39.922699552216216, 116.41662724378733)
# googollee/eviltransform go/transform_test.go: (WGS-84, GCJ-02) in Shanghai, Shenzhen, Beijing.
EVILTRANSFORM = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
]
# hujiulong/gcoord test/unit/crs/WGS84.spec.ts: [123, 45] to GCJ-02 and BD-09.
JILIN_WGS84 = (45.0, 123.0)
JILIN_GCJ02 = (45.00197815, 123.00607541)
JILIN_BD09 = (45.0083293, 123.0124491)

SEOUL = (37.5665, 126.9780)
SINGAPORE = (1.3521, 103.8198)


def distance_m(a, b):
    """Haversine distance in metres between two (lat, lng) pairs."""
    lat_a, lng_a, lat_b, lng_b = map(math.radians, (*a, *b))
    h = math.sin((lat_b - lat_a) / 2) ** 2 + math.cos(lat_a) * math.cos(lat_b) * math.sin((lng_b - lng_a) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def pair(position):
    return (position.lat, position.lng)


class PublishedValuesTest(unittest.TestCase):
    def assert_close(self, position, expected):
        self.assertAlmostEqual(position.lat, expected[0], delta=1e-6)
        self.assertAlmostEqual(position.lng, expected[1], delta=1e-6)

    def test_wgs84_to_gcj02_matches_coordtransform_eviltransform_and_gcoord(self):
        self.assert_close(wangge.wgs84_to_gcj02(*TIANANMEN_WGS84), TIANANMEN_GCJ02)
        for wgs84, gcj02 in EVILTRANSFORM:
            self.assert_close(wangge.wgs84_to_gcj02(*wgs84), gcj02)
        self.assert_close(wangge.wgs84_to_gcj02(*JILIN_WGS84), JILIN_GCJ02)

    def test_wgs84_to_bd09_matches_coordtransform_and_gcoord(self):
        self.assert_close(wangge.wgs84_to_bd09(*TIANANMEN_WGS84), TIANANMEN_BD09)
        self.assert_close(wangge.wgs84_to_bd09(*JILIN_WGS84), JILIN_BD09)

    def test_the_inverses_of_published_values_are_within_half_a_metre(self):
        self.assertLess(distance_m(pair(wangge.gcj02_to_wgs84(*TIANANMEN_GCJ02)), TIANANMEN_WGS84), 0.5)
        self.assertLess(distance_m(pair(wangge.bd09_to_wgs84(*TIANANMEN_BD09)), TIANANMEN_WGS84), 0.5)
        for wgs84, gcj02 in EVILTRANSFORM:
            self.assertLess(distance_m(pair(wangge.gcj02_to_wgs84(*gcj02)), wgs84), 0.5)


class RoundTripTest(unittest.TestCase):
    def test_positions_across_china_come_back_within_half_a_metre(self):
        # Cities from Kashgar to Fuyuan and from Mohe to Sanya.
        cities = [(39.4704, 75.9898), (48.3645, 134.2894), (52.9721, 122.5386), (18.2528, 109.5119),
                  (29.6520, 91.1721), (43.8256, 87.6168), (22.58, 113.08), (31.2304, 121.4737)]
        for city in cities:
            gcj02 = wangge.wgs84_to_gcj02(*city)
            self.assertGreater(distance_m(pair(gcj02), city), 100)
            self.assertLess(distance_m(pair(wangge.gcj02_to_wgs84(gcj02.lat, gcj02.lng)), city), 0.5)
            bd09 = wangge.wgs84_to_bd09(*city)
            self.assertLess(distance_m(pair(wangge.bd09_to_wgs84(bd09.lat, bd09.lng)), city), 0.5)
            # Picked on a map, stored, drawn again.
            wgs84 = wangge.gcj02_to_wgs84(*city)
            self.assertLess(distance_m(pair(wangge.wgs84_to_gcj02(wgs84.lat, wgs84.lng)), city), 0.5)


class OutsideMainlandChinaTest(unittest.TestCase):
    def test_seoul_and_singapore_are_unchanged(self):
        conversions = [wangge.wgs84_to_gcj02, wangge.gcj02_to_wgs84, wangge.wgs84_to_bd09, wangge.bd09_to_wgs84]
        for place in [SEOUL, SINGAPORE]:
            for convert in conversions:
                self.assertEqual(pair(convert(*place)), place)

    def test_hong_kong_and_taipei_are_unchanged(self):
        for place in [(22.3193, 114.1694), (25.0330, 121.5654)]:
            self.assertEqual(pair(wangge.wgs84_to_gcj02(*place)), place)


class InvalidInputTest(unittest.TestCase):
    def test_out_of_range_or_nan_raises_invalid_input_naming_the_field(self):
        cases = [((91.0, 116.4), "lat"), ((-90.5, 116.4), "lat"), ((math.nan, 116.4), "lat"),
                 ((39.9, 180.5), "lng"), ((39.9, -181.0), "lng"), ((39.9, math.nan), "lng"),
                 ((39.9, math.inf), "lng")]
        conversions = [wangge.wgs84_to_gcj02, wangge.gcj02_to_wgs84, wangge.wgs84_to_bd09, wangge.bd09_to_wgs84]
        for (lat, lng), field in cases:
            for convert in conversions:
                with self.assertRaises(wangge.ApiError.InvalidInput) as raised:
                    convert(lat, lng)
                self.assertEqual(raised.exception.field, field)

    def test_the_edges_of_the_ranges_are_valid(self):
        self.assertEqual(pair(wangge.wgs84_to_gcj02(90.0, 180.0)), (90.0, 180.0))
        self.assertEqual(pair(wangge.gcj02_to_wgs84(-90.0, -180.0)), (-90.0, -180.0))


if __name__ == "__main__":
    unittest.main()
