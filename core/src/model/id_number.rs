//! Resident ID numbers (公民身份号码) per GB 11643-1999.
//!
//! Eighteen characters: a 6-digit region code, the 8-digit birth date, a 3-digit
//! order code whose parity is the gender (odd = male), and a check character.
//! The check character is `"10X98765432"[Σ digitᵢ·wᵢ mod 11]` with weights
//! `7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2`:
//!
//! ```
//! use wangge_core::model::{Gender, IdNumber};
//!
//! // 110105 (Beijing, Chaoyang) · 1949-12-31 · order 002 (even: female) · X
//! let id: IdNumber = " 11010519491231002x ".parse()?;
//! assert_eq!(id.as_str(), "11010519491231002X");
//! assert_eq!(id.gender(), Gender::Female);
//! assert_eq!(id.masked(), "1101**********002X");
//! # Ok::<(), wangge_core::model::InvalidField>(())
//! ```

use std::fmt;

use chrono::{Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Invalid, InvalidField};

const FIELD: &str = "id_number";
const LENGTH: usize = 18;
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARACTERS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Province-level codes of GB/T 2260, plus 83, which residence permits for
/// Taiwan residents use (81 and 82 are Hong Kong and Macao).
const PROVINCE_CODES: [&str; 35] = [
    "11", "12", "13", "14", "15", // 华北
    "21", "22", "23", // 东北
    "31", "32", "33", "34", "35", "36", "37", // 华东
    "41", "42", "43", "44", "45", "46", // 中南
    "50", "51", "52", "53", "54", // 西南
    "61", "62", "63", "64", "65", // 西北
    "71", "81", "82", "83", // 台湾, 香港, 澳门, 台湾居民居住证
];

/// Whether `code` is a real 2-digit province-level region code.
pub(crate) fn is_province_code(code: &str) -> bool {
    PROVINCE_CODES.contains(&code)
}

/// A validated resident ID number, stored with an upper-case `X`.
///
/// `Display` shows the full number; use [`IdNumber::masked`] where a person
/// other than the resident may see it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber(String);

code_enum!(
    /// Gender as the ID number's order code records it.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    Gender {
        Male = "male", "男";
        Female = "female", "女";
    }
);

/// The check character for the first 17 digits of an ID number, or `None`
/// unless `first17` is exactly 17 ASCII digits.
pub fn check_character(first17: &str) -> Option<char> {
    if first17.len() != WEIGHTS.len() {
        return None;
    }
    let mut sum = 0;
    for (c, weight) in first17.chars().zip(WEIGHTS) {
        sum += c.to_digit(10)? * weight;
    }
    CHECK_CHARACTERS.get((sum % 11) as usize).copied()
}

/// Today's date in China (UTC+8): a child born this morning in Beijing must
/// not be rejected as born in the future by a device whose clock says UTC.
fn today_in_china() -> NaiveDate {
    Utc::now().with_timezone(&crate::calendar::CHINA_TIME).date_naive()
}

fn invalid(reason: Invalid) -> InvalidField {
    InvalidField::new(FIELD, reason)
}

impl IdNumber {
    /// Parses and validates an ID number against today's date in China, by this
    /// device's clock; a store checks what it captures against its own clock, corrected by
    /// the server's ([`crate::clock::Clock::today`]).
    pub fn parse(s: &str) -> Result<IdNumber, InvalidField> {
        IdNumber::parse_on(s, today_in_china())
    }

    /// An ID number read back from a document or the projection: its format and check
    /// character are validated, its birth date is not compared with today. It was checked
    /// when it was captured; checking it again against this device's date would make what
    /// a replica shows depend on its clock (a device set to 1970 would drop every ID number
    /// of anyone born since).
    pub fn parse_stored(s: &str) -> Result<IdNumber, InvalidField> {
        IdNumber::parse_on(s, NaiveDate::MAX)
    }

    /// Parses and validates an ID number; the birth date may not lie after `today`.
    pub fn parse_on(s: &str, today: NaiveDate) -> Result<IdNumber, InvalidField> {
        let s = s.trim();
        if s.is_empty() {
            return Err(invalid(Invalid::Empty));
        }
        let n_chars = s.chars().count();
        if n_chars != LENGTH {
            return Err(invalid(Invalid::Length { expected: "18", found: n_chars }));
        }
        for (index, c) in s.chars().enumerate() {
            let allowed = c.is_ascii_digit() || (index == LENGTH - 1 && matches!(c, 'X' | 'x'));
            if !allowed {
                return Err(invalid(Invalid::Character { position: index + 1 }));
            }
        }
        // All characters are ASCII from here on, so byte slicing is safe.
        let code = s.to_ascii_uppercase();

        if !is_province_code(&code[..2]) {
            return Err(invalid(Invalid::UnknownRegion));
        }

        let birth_date = date_from_digits(&code[6..14]).ok_or_else(|| invalid(Invalid::Date))?;
        if birth_date > today {
            return Err(invalid(Invalid::DateInFuture));
        }
        if birth_date < earliest_birth_date() {
            return Err(invalid(Invalid::Date));
        }

        let expected = check_character(&code[..17]).ok_or_else(|| invalid(Invalid::Character { position: 1 }))?;
        let found = code[17..].chars().next().unwrap_or_default();
        if expected != found {
            return Err(invalid(Invalid::CheckCharacter { expected, found }));
        }
        Ok(IdNumber(code))
    }

    /// Builds a valid number from its parts, computing the check character.
    ///
    /// `sequence` (0 to 999) is the 3-digit order code; odd is male. Used by
    /// the demo-data generator, so it validates the result like any input.
    pub fn from_parts(region_code: &str, birth_date: NaiveDate, sequence: u16) -> Result<IdNumber, InvalidField> {
        let n_chars = region_code.chars().count();
        if n_chars != 6 {
            return Err(InvalidField::new("region_code", Invalid::Length { expected: "6", found: n_chars }));
        }
        if let Some(position) = region_code.chars().position(|c| !c.is_ascii_digit()) {
            return Err(InvalidField::new("region_code", Invalid::Character { position: position + 1 }));
        }
        if sequence > 999 {
            return Err(InvalidField::new("sequence", Invalid::Rule("the order code is 0 to 999")));
        }
        // Checked before formatting: a year outside 4 digits would shift the other parts.
        let year = birth_date.year();
        if !(1880..=9999).contains(&year) {
            return Err(invalid(Invalid::Date));
        }
        let mut code = format!("{region_code}{year:04}{:02}{:02}{sequence:03}", birth_date.month(), birth_date.day());
        code.push(check_character(&code).unwrap_or('0'));
        IdNumber::parse_on(&code, birth_date)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn birth_date(&self) -> NaiveDate {
        // Validated on construction; the fallback is unreachable.
        date_from_digits(&self.0[6..14]).unwrap_or_else(earliest_birth_date)
    }

    /// The 17th digit: odd for men, even for women.
    pub fn gender(&self) -> Gender {
        let digit = self.0.as_bytes()[16] - b'0';
        if digit % 2 == 1 { Gender::Male } else { Gender::Female }
    }

    /// The 6-digit county-level region code of first registration.
    pub fn region_code(&self) -> &str {
        &self.0[..6]
    }

    pub fn province_code(&self) -> &str {
        &self.0[..2]
    }

    /// The last `n` characters (all of them if `n` exceeds 18), e.g. for search by tail.
    pub fn tail(&self, n: usize) -> &str {
        &self.0[LENGTH - n.min(LENGTH)..]
    }

    /// The first 4 and last 4 characters with the 10 between hidden:
    /// `4407**********123X`.
    pub fn masked(&self) -> String {
        format!("{}{}{}", &self.0[..4], "*".repeat(10), &self.0[14..])
    }
}

fn earliest_birth_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1880, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// A `YYYYMMDD` string as a date, `None` unless it names a real calendar date.
fn date_from_digits(digits: &str) -> Option<NaiveDate> {
    let year = digits.get(..4)?.parse().ok()?;
    let month = digits.get(4..6)?.parse().ok()?;
    let day = digits.get(6..8)?.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// Masked, so that a `{:?}` in a log or an error never shows the whole value.
impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

string_conversions!(IdNumber);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    /// A fixed "today" so that the tests do not depend on the clock.
    fn today() -> NaiveDate {
        date(2024, 6, 15)
    }

    /// A valid number for `first17` (the check character is appended).
    fn valid(first17: &str) -> String {
        format!("{first17}{}", check_character(first17).unwrap())
    }

    #[track_caller]
    fn check(input: &str, expected: Result<&str, Invalid>) {
        let actual = IdNumber::parse_on(input, today());
        match expected {
            Ok(normalized) => assert_eq!(actual.unwrap().as_str(), normalized, "input {input:?}"),
            Err(reason) => {
                let err = actual.unwrap_err();
                assert_eq!(err.field, "id_number");
                assert_eq!(err.reason, reason, "input {input:?}");
            }
        }
    }

    #[test]
    fn accepts_valid_numbers() {
        check("11010519491231002X", Ok("11010519491231002X"));
        check("440524188001010014", Ok("440524188001010014"));
        check(&valid("44030620000229123"), Ok(&valid("44030620000229123")));
        check(&valid("65010120240615001"), Ok(&valid("65010120240615001")));
        // Residence permits for Hong Kong, Macao and Taiwan residents.
        check(&valid("81000019900101001"), Ok(&valid("81000019900101001")));
        check(&valid("83000019900101001"), Ok(&valid("83000019900101001")));
    }

    #[test]
    fn trims_and_normalizes_lower_case_x() {
        check("  11010519491231002x\t", Ok("11010519491231002X"));
    }

    #[test]
    fn rejects_empty() {
        check("", Err(Invalid::Empty));
        check("   ", Err(Invalid::Empty));
    }

    #[test]
    fn rejects_wrong_length() {
        // The 15-digit numbers issued before 1999 are no longer valid.
        check("110105491231002", Err(Invalid::Length { expected: "18", found: 15 }));
        check("11010519491231002X1", Err(Invalid::Length { expected: "18", found: 19 }));
        // Length counts characters, not bytes.
        check("1101051949123100号", Err(Invalid::Length { expected: "18", found: 17 }));
    }

    #[test]
    fn rejects_characters_by_position() {
        check("X10105194912310020", Err(Invalid::Character { position: 1 }));
        check("1101051949123100X2", Err(Invalid::Character { position: 17 }));
        check("11010519491231002Y", Err(Invalid::Character { position: 18 }));
        check("11010519491231002号", Err(Invalid::Character { position: 18 }));
        check("110105 19491231002", Err(Invalid::Character { position: 7 }));
    }

    #[test]
    fn rejects_unknown_province() {
        check(&valid("00010519491231002"), Err(Invalid::UnknownRegion));
        check(&valid("10010519491231002"), Err(Invalid::UnknownRegion));
        check(&valid("55010519491231002"), Err(Invalid::UnknownRegion));
        check(&valid("99010519491231002"), Err(Invalid::UnknownRegion));
    }

    #[test]
    fn rejects_impossible_dates() {
        check(&valid("11010519491331002"), Err(Invalid::Date));
        check(&valid("11010519490000002"), Err(Invalid::Date));
        check(&valid("11010519490431002"), Err(Invalid::Date));
        check(&valid("11010518791231002"), Err(Invalid::Date));
    }

    #[test]
    fn accepts_29_february_only_in_leap_years() {
        check(&valid("11010520000229002"), Ok(&valid("11010520000229002")));
        check(&valid("11010519960229002"), Ok(&valid("11010519960229002")));
        check(&valid("11010519000229002"), Err(Invalid::Date));
        check(&valid("11010520230229002"), Err(Invalid::Date));
    }

    #[test]
    fn rejects_birth_date_after_today() {
        check(&valid("11010520240615002"), Ok(&valid("11010520240615002")));
        check(&valid("11010520240616002"), Err(Invalid::DateInFuture));
        check(&valid("11010530000101002"), Err(Invalid::DateInFuture));
    }

    #[test]
    fn accepts_the_earliest_birth_date() {
        check(&valid("11010518800101002"), Ok(&valid("11010518800101002")));
    }

    #[test]
    fn rejects_wrong_check_character() {
        check("110105194912310021", Err(Invalid::CheckCharacter { expected: 'X', found: '1' }));
        check("44052418800101001X", Err(Invalid::CheckCharacter { expected: '4', found: 'X' }));
        check("44052418800101001x", Err(Invalid::CheckCharacter { expected: '4', found: 'X' }));
    }

    #[test]
    fn check_character_needs_17_digits() {
        assert_eq!(check_character("11010519491231002"), Some('X'));
        assert_eq!(check_character("44052418800101001"), Some('4'));
        assert_eq!(check_character("1101051949123100"), None);
        assert_eq!(check_character("1101051949123100A"), None);
        assert_eq!(check_character("110105194912310020"), None);
    }

    #[test]
    fn derives_gender_and_birth_date() {
        let id = IdNumber::parse_on("11010519491231002X", today()).unwrap();
        assert_eq!(id.gender(), Gender::Female);
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert_eq!(id.region_code(), "110105");
        assert_eq!(id.province_code(), "11");

        let id = IdNumber::parse_on("440524188001010014", today()).unwrap();
        assert_eq!(id.gender(), Gender::Male);
        assert_eq!(id.birth_date(), date(1880, 1, 1));
    }

    #[test]
    fn tail_and_masked() {
        let id = IdNumber::parse_on("11010519491231002X", today()).unwrap();
        assert_eq!(id.tail(4), "002X");
        assert_eq!(id.tail(0), "");
        assert_eq!(id.tail(99), "11010519491231002X");
        assert_eq!(id.masked(), "1101**********002X");
        assert_eq!(id.masked().chars().count(), 18);
    }

    #[test]
    fn from_parts_round_trips() {
        for (sequence, gender) in [(0, Gender::Female), (1, Gender::Male), (998, Gender::Female), (999, Gender::Male)] {
            let id = IdNumber::from_parts("440305", date(1990, 2, 28), sequence).unwrap();
            assert_eq!(id.region_code(), "440305");
            assert_eq!(id.birth_date(), date(1990, 2, 28));
            assert_eq!(id.gender(), gender);
            assert_eq!(&id.as_str()[14..17], format!("{sequence:03}"));
            assert_eq!(IdNumber::parse_on(id.as_str(), today()).unwrap(), id);
        }
        let id = IdNumber::from_parts("110105", date(1949, 12, 31), 2).unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn from_parts_rejects_bad_parts() {
        let err = IdNumber::from_parts("44030", date(1990, 1, 1), 1).unwrap_err();
        assert_eq!((err.field, err.reason), ("region_code", Invalid::Length { expected: "6", found: 5 }));
        let err = IdNumber::from_parts("4403a5", date(1990, 1, 1), 1).unwrap_err();
        assert_eq!((err.field, err.reason), ("region_code", Invalid::Character { position: 5 }));
        let err = IdNumber::from_parts("440305", date(1990, 1, 1), 1000).unwrap_err();
        assert_eq!(err.field, "sequence");
        let err = IdNumber::from_parts("990305", date(1990, 1, 1), 1).unwrap_err();
        assert_eq!(err.reason, Invalid::UnknownRegion);
        for too_early_or_late in [date(1879, 12, 31), date(-5, 1, 1), date(10_000, 1, 1)] {
            let err = IdNumber::from_parts("440305", too_early_or_late, 1).unwrap_err();
            assert_eq!((err.field, err.reason), ("id_number", Invalid::Date));
        }
    }

    #[test]
    fn gender_codes_are_stable() {
        for gender in [Gender::Male, Gender::Female] {
            assert_eq!(Gender::from_code(gender.code()), Some(gender));
        }
        assert_eq!(Gender::from_code("Male"), None);
        assert_eq!(Gender::Male.label_zh(), "男");
        assert_eq!(Gender::Female.label_zh(), "女");
        assert_eq!(serde_json::to_string(&Gender::Female).unwrap(), "\"female\"");
    }

    #[test]
    fn parse_uses_the_clock_and_from_str_delegates() {
        let id: IdNumber = "11010519491231002x".parse().unwrap();
        assert_eq!(id.to_string(), "11010519491231002X");
        let err = "11010530000101002X".parse::<IdNumber>().unwrap_err();
        assert_eq!(err.reason, Invalid::DateInFuture);
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let id = IdNumber::parse_on("11010519491231002X", today()).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"11010519491231002X\"");
        assert_eq!(serde_json::from_str::<IdNumber>(&json).unwrap(), id);
        assert_eq!(serde_json::from_str::<IdNumber>("\"11010519491231002x\"").unwrap(), id);
        assert!(serde_json::from_str::<IdNumber>("\"110105194912310021\"").is_err());
    }

    #[test]
    fn error_messages_never_contain_the_input() {
        for input in ["110105194912310021", "11010519491231002Y", "11010530000101002X", "1101051949"] {
            let err = IdNumber::parse_on(input, today()).unwrap_err();
            let message = err.to_string();
            assert!(!message.contains(input), "{message}");
            assert!(!message.contains("1101051949"), "{message}");
        }
    }

    #[test]
    fn masked_shows_the_first_four_and_last_four() {
        assert_eq!(IdNumber::parse("11010519491231002X").unwrap().masked(), "1101**********002X");
    }
}
