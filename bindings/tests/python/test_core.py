"""The library answers through the generated Python bindings."""

import unittest

import wangge


class CoreTest(unittest.TestCase):
    def test_core_version_is_semver(self):
        self.assertRegex(wangge.core_version(), r"^\d+\.\d+\.\d+")

    def test_store_schema_version_is_positive(self):
        version = wangge.store_schema_version()
        self.assertIsInstance(version, int)
        self.assertGreater(version, 0)


if __name__ == "__main__":
    unittest.main()
