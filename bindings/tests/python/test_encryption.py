"""Encrypted stores from the app's side: a key at open, and a plain store from an older
app version converted in place (is_plain_store, encrypt_plain_store)."""

import gc
import shutil
import tempfile
import unittest
from pathlib import Path

import wangge

GRID = "440703001001001"
KEY = bytes(range(32))
CANARY_NAME = "甄金丝雀"
CANARY_PHONE = "13987654321"
CANARY_PHOTO = b"canary photo of a cracked stairwell " * 40


def worker():
    return wangge.Worker(person="w1", role=wangge.Role.FULL_TIME_WORKER, department=None)


class EncryptPlainStoreTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="wangge-py-"))
        self.path = str(self.dir / "store.db")

    def tearDown(self):
        gc.collect()
        shutil.rmtree(self.dir, ignore_errors=True)

    def plain_store_with_a_resident(self):
        """A plain store (as an app before encryption wrote it), closed; its records."""
        store = wangge.FieldStore.open(self.path, worker())
        store.add_grid(GRID, "长堤社区第1网格", wangge.GridKind.COMMUNITY, True)
        household = store.add_household(GRID, wangge.NewHousehold(
            address="江门市蓬江区港口路3号", residence_type=wangge.ResidenceType.REGISTERED))
        resident = store.add_resident(GRID, wangge.NewResident(
            household=household, name=CANARY_NAME, id_number="11010519491231002X", phone=CANARY_PHONE,
            relation=wangge.Relation.HEAD, residence_type=wangge.ResidenceType.REGISTERED))
        photo = store.put_blob(CANARY_PHOTO)
        pending = store.sync_status().pending_changes
        del store  # closes the file: a store is converted closed
        gc.collect()
        return resident, photo, pending

    def canaries_on_disk(self):
        hits = []
        for file in self.dir.rglob("*"):
            if file.is_file():
                content = file.read_bytes()
                for canary in (CANARY_NAME.encode(), CANARY_PHONE.encode(), CANARY_PHOTO[:40]):
                    if canary in content:
                        hits.append(file.name)
        return hits

    def test_a_converted_store_opens_with_its_key_only_and_keeps_records_photos_and_pending_edits(self):
        resident, photo, pending = self.plain_store_with_a_resident()
        self.assertGreater(pending, 0)
        self.assertTrue(wangge.is_plain_store(self.path))
        self.assertNotEqual(self.canaries_on_disk(), [], "the plain store holds the canaries")

        wangge.encrypt_plain_store(self.path, KEY)

        self.assertFalse(wangge.is_plain_store(self.path))
        self.assertEqual(self.canaries_on_disk(), [])
        with self.assertRaises(wangge.ApiError.Storage):
            wangge.FieldStore.open(self.path, worker())
        with self.assertRaises(wangge.ApiError.Storage):
            wangge.FieldStore.open(self.path, worker(), bytes(32))
        store = wangge.FieldStore.open(self.path, worker(), KEY)
        self.assertEqual(store.resident(resident).name, CANARY_NAME)
        self.assertEqual(store.reveal_resident(resident, "核实").phone, CANARY_PHONE)
        self.assertEqual(store.get_blob(photo), CANARY_PHOTO)
        # The view just recorded is one more pending edit.
        self.assertEqual(store.sync_status().pending_changes, pending + 1)

    def test_an_open_an_encrypted_or_a_missing_store_is_refused_and_left_as_it_is(self):
        self.plain_store_with_a_resident()
        store = wangge.FieldStore.open(self.path, worker())
        with self.assertRaises(wangge.ApiError.Storage) as refused:
            wangge.encrypt_plain_store(self.path, KEY)
        self.assertIn("already open", refused.exception.reason)
        self.assertTrue(wangge.is_plain_store(self.path))
        del store
        gc.collect()

        wangge.encrypt_plain_store(self.path, KEY)
        before = sorted((file.name, file.read_bytes()) for file in self.dir.rglob("*") if file.is_file())
        with self.assertRaises(wangge.ApiError.Storage) as refused:
            wangge.encrypt_plain_store(self.path, KEY)
        self.assertIn("already encrypted", refused.exception.reason)
        after = sorted((file.name, file.read_bytes()) for file in self.dir.rglob("*") if file.is_file())
        self.assertEqual(after, before)

        with self.assertRaises(wangge.ApiError.Storage):
            wangge.encrypt_plain_store(str(self.dir / "absent.db"), KEY)
        self.assertFalse(wangge.is_plain_store(str(self.dir / "absent.db")))
        with self.assertRaises(wangge.ApiError.InvalidInput) as refused:
            wangge.encrypt_plain_store(self.path, b"too short")
        self.assertEqual(refused.exception.field, "key")


if __name__ == "__main__":
    unittest.main()
