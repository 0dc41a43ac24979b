"""The free functions: working days, ID numbers, credit codes, phones, enrollment links."""

import unittest

import wangge


class WorkingDaysTest(unittest.TestCase):
    def test_a_holiday_is_skipped_and_an_adjusted_weekend_counts(self):
        # National Day 2025: 10-01 to 10-08 off; Saturday 10-11 is an adjusted working day.
        self.assertEqual(wangge.add_working_days("2025-09-30", 1), "2025-10-09")
        self.assertEqual(wangge.add_working_days("2025-10-10", 1), "2025-10-11")
        self.assertTrue(wangge.is_working_day("2025-10-11"))
        self.assertFalse(wangge.is_working_day("2025-10-01"))
        self.assertFalse(wangge.is_working_day("2025-10-12"))

    def test_zero_days_is_the_start(self):
        self.assertEqual(wangge.add_working_days("2025-03-03", 0), "2025-03-03")

    def test_a_malformed_date_raises_invalid_input(self):
        for bad in ["2025-13-01", "2025/10/01", "", "yesterday"]:
            with self.assertRaises(wangge.ApiError.InvalidInput) as raised:
                wangge.is_working_day(bad)
            self.assertEqual(raised.exception.field, "date")


class IdNumberTest(unittest.TestCase):
    def test_a_valid_number_is_normalized_and_read(self):
        info = wangge.validate_id_number("11010519491231002x")
        self.assertEqual(info.normalized, "11010519491231002X")
        self.assertEqual(info.birth_date, "1949-12-31")
        self.assertEqual(info.gender, wangge.Gender.FEMALE)
        self.assertEqual(info.region_code, "110105")

    def test_a_male_number(self):
        info = wangge.validate_id_number("440703199001011212")
        self.assertEqual(info.gender, wangge.Gender.MALE)
        self.assertEqual(info.birth_date, "1990-01-01")

    def test_invalid_numbers_raise_with_the_field_and_without_the_number(self):
        for bad in ["110105194912310021", "1101051949123100", "11010519491331002X", "abc"]:
            with self.assertRaises(wangge.ApiError.InvalidInput) as raised:
                wangge.validate_id_number(bad)
            self.assertEqual(raised.exception.field, "id_number")
            self.assertNotIn(bad, str(raised.exception))


class CodesTest(unittest.TestCase):
    def test_a_credit_code_is_checked(self):
        self.assertEqual(wangge.validate_uscc("91350100M000100Y43"), "91350100M000100Y43")
        with self.assertRaises(wangge.ApiError.InvalidInput):
            wangge.validate_uscc("91350100M000100Y44")

    def test_a_phone_is_checked(self):
        self.assertEqual(wangge.validate_phone("13800138000"), "13800138000")
        with self.assertRaises(wangge.ApiError.InvalidInput):
            wangge.validate_phone("12345")


if __name__ == "__main__":
    unittest.main()


class EnrollmentLinkTest(unittest.TestCase):
    def test_a_scanned_link_gives_the_server_and_the_code(self):
        link = wangge.parse_enrollment_link(
            "wangge:enroll?server=https%3A%2F%2Fsync.example.gov.cn&code=3f9a0c21d4e5b6a78899"
        )
        self.assertEqual(link.server, "https://sync.example.gov.cn")
        self.assertEqual(link.code, "3f9a0c21d4e5b6a78899")

    def test_a_typed_code_has_no_server(self):
        link = wangge.parse_enrollment_link(" 3f9a0c21d4e5b6a78899 ")
        self.assertIsNone(link.server)
        self.assertEqual(link.code, "3f9a0c21d4e5b6a78899")

    def test_anything_else_raises_invalid_input_with_the_reason(self):
        with self.assertRaises(wangge.ApiError.InvalidInput) as raised:
            wangge.parse_enrollment_link("https://example.com/?code=abc")
        self.assertEqual(raised.exception.field, "enrollment_link")
        self.assertIn("not a wangge enrollment link", raised.exception.reason)
