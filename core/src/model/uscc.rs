//! Unified social credit codes (统一社会信用代码) per GB 32100-2015.
//!
//! Eighteen characters from a 31-character alphabet (digits and upper-case
//! letters without I, O, Z, S, V): the registration authority (1), the kind of
//! organization (2), the administrative region code (3–8, digits), the
//! organization code (9–17) and a check character. Each character counts as
//! its index in the alphabet; with weights `3^(i-1) mod 31` the check
//! character is `alphabet[(31 − Σ valueᵢ·wᵢ mod 31) mod 31]`:
//!
//! ```
//! use wangge_core::model::Uscc;
//!
//! // 9 (market regulation) · 1 (enterprise) · 350100 (Fuzhou) · M000100Y4 · 3
//! let uscc: Uscc = "91350100m000100y43".parse()?;
//! assert_eq!(uscc.as_str(), "91350100M000100Y43");
//! assert_eq!(uscc.region_code(), "350100");
//! # Ok::<(), wangge_core::model::InvalidField>(())
//! ```

use serde::{Deserialize, Serialize};

use super::{Invalid, InvalidField};

const FIELD: &str = "uscc";
const LENGTH: usize = 18;
const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [usize; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// A validated unified social credit code, stored in upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Uscc(String);

/// The value of `c` (either case) in the code's alphabet.
fn value(c: char) -> Option<usize> {
    ALPHABET.find(c.to_ascii_uppercase())
}

/// The check character for the first 17 characters of a code (either case),
/// or `None` unless `first17` is 17 characters of the code's alphabet.
pub fn uscc_check_character(first17: &str) -> Option<char> {
    if first17.chars().count() != WEIGHTS.len() {
        return None;
    }
    let mut sum = 0;
    for (c, weight) in first17.chars().zip(WEIGHTS) {
        sum += value(c)? * weight;
    }
    ALPHABET.chars().nth((31 - sum % 31) % 31)
}

fn invalid(reason: Invalid) -> InvalidField {
    InvalidField::new(FIELD, reason)
}

impl Uscc {
    pub fn parse(s: &str) -> Result<Uscc, InvalidField> {
        let s = s.trim();
        if s.is_empty() {
            return Err(invalid(Invalid::Empty));
        }
        let n_chars = s.chars().count();
        if n_chars != LENGTH {
            return Err(invalid(Invalid::Length { expected: "18", found: n_chars }));
        }
        for (index, c) in s.chars().enumerate() {
            let position = index + 1;
            // The region code is a GB/T 2260 code and so all digits. It is not
            // checked against the province list: central-level bodies use 100000.
            let allowed = if (3..=8).contains(&position) { c.is_ascii_digit() } else { value(c).is_some() };
            if !allowed {
                return Err(invalid(Invalid::Character { position }));
            }
        }
        // All characters are ASCII from here on, so byte slicing is safe.
        let code = s.to_ascii_uppercase();
        let expected = uscc_check_character(&code[..17]).ok_or_else(|| invalid(Invalid::Character { position: 1 }))?;
        let found = code[17..].chars().next().unwrap_or_default();
        if expected != found {
            return Err(invalid(Invalid::CheckCharacter { expected, found }));
        }
        Ok(Uscc(code))
    }

    /// Builds a valid code from its parts, computing the check character.
    pub fn from_parts(
        authority: char,
        kind: char,
        region_code: &str,
        organization_code9: &str,
    ) -> Result<Uscc, InvalidField> {
        // Check the lengths of the parts, or a short one would shift the others.
        let n_region = region_code.chars().count();
        if n_region != 6 {
            return Err(InvalidField::new("region_code", Invalid::Length { expected: "6", found: n_region }));
        }
        let n_organization = organization_code9.chars().count();
        if n_organization != 9 {
            return Err(InvalidField::new(
                "organization_code",
                Invalid::Length { expected: "9", found: n_organization },
            ));
        }
        let mut code = format!("{authority}{kind}{region_code}{organization_code9}");
        // A character outside the alphabet leaves no check character; any
        // placeholder will do, as parse then names the bad character's position.
        code.push(uscc_check_character(&code).unwrap_or('0'));
        Uscc::parse(&code)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Character 1: the registration authority, e.g. `9` for market regulation (工商).
    pub fn registration_authority(&self) -> char {
        self.char_at(0)
    }

    /// Character 2: the kind of organization within the authority, e.g. `1` for an enterprise.
    pub fn kind_code(&self) -> char {
        self.char_at(1)
    }

    /// Characters 3–8: the administrative region code of registration.
    pub fn region_code(&self) -> &str {
        &self.0[2..8]
    }

    /// Characters 9–17: the organization code (组织机构代码, with its own check character).
    pub fn organization_code(&self) -> &str {
        &self.0[8..17]
    }

    fn char_at(&self, index: usize) -> char {
        char::from(self.0.as_bytes()[index])
    }
}

string_conversions!(Uscc);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: Result<&str, Invalid>) {
        let actual = Uscc::parse(input);
        match expected {
            Ok(normalized) => assert_eq!(actual.unwrap().as_str(), normalized, "input {input:?}"),
            Err(reason) => {
                let err = actual.unwrap_err();
                assert_eq!(err.field, "uscc");
                assert_eq!(err.reason, reason, "input {input:?}");
            }
        }
    }

    #[test]
    fn weights_are_powers_of_three_mod_31() {
        let mut weight = 1;
        for expected in WEIGHTS {
            assert_eq!(weight, expected);
            weight = weight * 3 % 31;
        }
        assert_eq!(ALPHABET.chars().count(), 31);
    }

    #[test]
    fn accepts_published_codes() {
        check("91350100M000100Y43", Ok("91350100M000100Y43"));
        check("91110000802100433B", Ok("91110000802100433B"));
    }

    #[test]
    fn trims_and_normalizes_to_upper_case() {
        check(" 91350100m000100y43\n", Ok("91350100M000100Y43"));
        check("91110000802100433b", Ok("91110000802100433B"));
    }

    #[test]
    fn rejects_empty() {
        check("", Err(Invalid::Empty));
        check(" \t", Err(Invalid::Empty));
    }

    #[test]
    fn rejects_wrong_length() {
        check("91350100M000100Y4", Err(Invalid::Length { expected: "18", found: 17 }));
        check("91350100M000100Y433", Err(Invalid::Length { expected: "18", found: 19 }));
        // The old 9-character organization code alone is not a credit code.
        check("M000100Y4", Err(Invalid::Length { expected: "18", found: 9 }));
    }

    #[test]
    fn rejects_characters_outside_the_alphabet() {
        for (letter, position) in [('I', 1), ('O', 2), ('Z', 9), ('S', 17), ('V', 18), ('-', 10), ('号', 12)] {
            let mut chars: Vec<char> = "91350100M000100Y43".chars().collect();
            chars[position - 1] = letter;
            let input: String = chars.into_iter().collect();
            check(&input, Err(Invalid::Character { position }));
        }
    }

    #[test]
    fn rejects_letters_in_the_region_code() {
        check("913501A0M000100Y43", Err(Invalid::Character { position: 7 }));
        check("91A50100M000100Y43", Err(Invalid::Character { position: 3 }));
        check("9135010AM000100Y43", Err(Invalid::Character { position: 8 }));
    }

    #[test]
    fn rejects_wrong_check_character() {
        check("91350100M000100Y44", Err(Invalid::CheckCharacter { expected: '3', found: '4' }));
        check("91110000802100433a", Err(Invalid::CheckCharacter { expected: 'B', found: 'A' }));
        // A swap of two neighbours is caught.
        check("19350100M000100Y43", Err(Invalid::CheckCharacter { expected: 'J', found: '3' }));
    }

    #[test]
    fn check_character_needs_17_alphabet_characters() {
        assert_eq!(uscc_check_character("91350100M000100Y4"), Some('3'));
        assert_eq!(uscc_check_character("91350100m000100y4"), Some('3'));
        assert_eq!(uscc_check_character("9135010"), None);
        assert_eq!(uscc_check_character("91350100M000100I4"), None);
    }

    #[test]
    fn accessors_split_the_code() {
        let uscc = Uscc::parse("91350100M000100Y43").unwrap();
        assert_eq!(uscc.registration_authority(), '9');
        assert_eq!(uscc.kind_code(), '1');
        assert_eq!(uscc.region_code(), "350100");
        assert_eq!(uscc.organization_code(), "M000100Y4");
        assert_eq!(uscc.to_string(), "91350100M000100Y43");
    }

    #[test]
    fn from_parts_computes_the_check_character() {
        let uscc = Uscc::from_parts('9', '1', "350100", "M000100Y4").unwrap();
        assert_eq!(uscc.as_str(), "91350100M000100Y43");
        let uscc = Uscc::from_parts('5', '2', "440305", "mA5abcd1x").unwrap();
        assert_eq!(&uscc.as_str()[..17], "52440305MA5ABCD1X");
        assert_eq!(Uscc::parse(uscc.as_str()).unwrap(), uscc);
    }

    #[test]
    fn from_parts_rejects_bad_parts() {
        let err = Uscc::from_parts('9', '1', "35010", "M000100Y4").unwrap_err();
        assert_eq!((err.field, err.reason), ("region_code", Invalid::Length { expected: "6", found: 5 }));
        let err = Uscc::from_parts('9', '1', "350100", "M000100Y").unwrap_err();
        assert_eq!((err.field, err.reason), ("organization_code", Invalid::Length { expected: "9", found: 8 }));
        let err = Uscc::from_parts('9', 'O', "350100", "M000100Y4").unwrap_err();
        assert_eq!((err.field, err.reason), ("uscc", Invalid::Character { position: 2 }));
        let err = Uscc::from_parts('9', '1', "3501A0", "M000100Y4").unwrap_err();
        assert_eq!(err.reason, Invalid::Character { position: 7 });
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let uscc = Uscc::parse("91110000802100433B").unwrap();
        let json = serde_json::to_string(&uscc).unwrap();
        assert_eq!(json, "\"91110000802100433B\"");
        assert_eq!(serde_json::from_str::<Uscc>(&json).unwrap(), uscc);
        assert!(serde_json::from_str::<Uscc>("\"91110000802100433C\"").is_err());
    }

    #[test]
    fn error_messages_never_contain_the_input() {
        for input in ["91350100M000100Y44", "91350100M000100Y4", "913501A0M000100Y43"] {
            let message = Uscc::parse(input).unwrap_err().to_string();
            assert!(!message.contains("350100"), "{message}");
        }
    }
}
