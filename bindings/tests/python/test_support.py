"""The test server helper starts a real server, waits for it, and stops it."""

import unittest

from support import TestServer, healthz_status

GRID = "440703001001001"


class TestServerTest(unittest.TestCase):
    def test_starts_answers_and_stops(self):
        with TestServer() as server:
            server.add_grid(GRID, "test grid")
            code = server.add_worker("w1", "full_time_worker", grids=[GRID])
            self.assertTrue(code)

            server.start()
            self.assertTrue(server.url.startswith("http://127.0.0.1:"))
            self.assertEqual(healthz_status(server.url), 200)

            url = server.url
            server.stop()
            self.assertFalse(server.running)
            self.assertIsNone(healthz_status(url))

            server.start()  # the same database, the same address
            self.assertEqual(server.url, url)
            self.assertEqual(healthz_status(server.url), 200)
            directory = server.dir
        self.assertFalse(directory.exists())


if __name__ == "__main__":
    unittest.main()
