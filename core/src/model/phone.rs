//! Mainland China phone numbers: mobiles and landlines.
//!
//! A mobile is 11 digits starting 13 to 19. A landline is an area code — `010`,
//! `02X`, or four digits `0[3-9]XX` — then a 7 or 8 digit local number starting
//! 2 to 9, and perhaps an extension. The area code's own digits decide its
//! length, so `075562345678` splits as `0755-62345678` without a separator.
//! Spaces, `-`, `.`, parentheses, full-width forms and a `+86` / `0086` / `86`
//! country code are accepted and dropped:
//!
//! ```
//! use wangge_core::model::{Phone, PhoneKind};
//!
//! let mobile: Phone = "+86 138-1234-5678".parse()?;
//! assert_eq!(mobile.as_str(), "13812345678");
//! assert_eq!(mobile.masked(), "138****5678");
//!
//! let office: Phone = "(010) 6234 5678 转 801".parse()?;
//! assert_eq!(office.as_str(), "010-62345678-801");
//! assert_eq!(office.kind(), PhoneKind::Landline);
//! assert_eq!(office.tail(4), "5678");
//! # Ok::<(), wangge_core::model::InvalidField>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Invalid, InvalidField};

const FIELD: &str = "phone";
/// Far more than any real number with separators and an extension; bounds the work on pasted text.
const MAX_CHARS: usize = 40;
const MOBILE_LENGTH: usize = 11;

const NO_DIGITS: &str = "a phone number needs digits";
const MAINLAND_ONLY: &str = "only mainland China numbers (country code +86) are accepted";
const MOBILE_PREFIX: &str = "a mobile number starts with 13 to 19";
const MOBILE_EXTENSION: &str = "a mobile number has no extension";
const NEEDS_AREA_CODE: &str = "a landline number starts with its area code 0…, e.g. 0755";
const AREA_CODE: &str = "an area code is 010, 02X, or 0 and three digits starting with 3 to 9";
const LOCAL_LENGTH: &str = "a local number after the area code has 7 or 8 digits";
const LOCAL_START: &str = "a local number starts with 2 to 9";
const EXTENSION: &str = "an extension has 1 to 6 digits";

/// A validated phone number, normalized to `13812345678`, `0755-62345678` or
/// `010-62345678-801`.
///
/// `Display` shows the full number; use [`Phone::masked`] where a person other
/// than its owner may see it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneKind {
    Mobile,
    Landline,
}

fn invalid(reason: Invalid) -> InvalidField {
    InvalidField::new(FIELD, reason)
}

/// Full-width forms (`１３８`, `（`, `－`) as their ASCII twins. Chinese input
/// methods produce them; mapping one character to one keeps error positions true.
fn half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// Where the digits of the main number were broken by a separator.
#[derive(Debug, Clone, Copy)]
struct Boundary {
    /// Index into the digits of the first digit after the separator.
    at: usize,
    /// Whether the separator included `-`, which may introduce an extension.
    hyphen: bool,
}

/// The input with its separators taken out.
#[derive(Debug, Default)]
struct Scanned {
    digits: String,
    boundaries: Vec<Boundary>,
    /// Written with a leading `+`: an international number.
    plus: bool,
    /// Digits after `转` or `ext`.
    extension: Option<String>,
}

fn scan(chars: &[char]) -> Result<Scanned, InvalidField> {
    let mut scanned = Scanned::default();
    // Since the last digit: None, or Some(whether a '-' was among the separators).
    let mut separator: Option<bool> = None;
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        let position = index + 1;
        let starts_ext = matches!(c, 'e' | 'E')
            && chars.get(index + 1).is_some_and(|next| next.eq_ignore_ascii_case(&'x'))
            && chars.get(index + 2).is_some_and(|next| next.eq_ignore_ascii_case(&'t'));
        match c {
            '0'..='9' => match &mut scanned.extension {
                Some(extension) => extension.push(c),
                None => {
                    if let Some(hyphen) = separator.take()
                        && !scanned.digits.is_empty()
                    {
                        scanned.boundaries.push(Boundary { at: scanned.digits.len(), hyphen });
                    }
                    scanned.digits.push(c);
                }
            },
            '-' => separator = Some(true),
            ' ' | '(' | ')' | '.' => separator = Some(separator.unwrap_or(false)),
            c if c.is_whitespace() => separator = Some(separator.unwrap_or(false)),
            '+' if scanned.digits.is_empty() && !scanned.plus => scanned.plus = true,
            '转' if !scanned.digits.is_empty() && scanned.extension.is_none() => {
                scanned.extension = Some(String::new());
            }
            _ if starts_ext && !scanned.digits.is_empty() && scanned.extension.is_none() => {
                scanned.extension = Some(String::new());
                index += 2;
            }
            _ => return Err(invalid(Invalid::Character { position })),
        }
        index += 1;
    }
    Ok(scanned)
}

/// The number as dialled inside China, with boundaries shifted to match.
fn national_number(scanned: &Scanned) -> Result<(String, Vec<Boundary>), InvalidField> {
    let digits = &scanned.digits;
    let boundary_at = |at: usize| scanned.boundaries.iter().any(|b| b.at == at);
    let country_code_len = if scanned.plus {
        if !digits.starts_with("86") {
            return Err(invalid(Invalid::Rule(MAINLAND_ONLY)));
        }
        2
    } else if digits.starts_with("0086") {
        4
    } else if digits.starts_with("00") {
        return Err(invalid(Invalid::Rule(MAINLAND_ONLY)));
    } else if digits.starts_with("86")
        // Without a '+', "86" is a country code only where nothing else fits:
        // before a separator, or before an 11-digit mobile.
        && (boundary_at(2) || (digits.len() == 2 + MOBILE_LENGTH && digits[2..].starts_with('1')))
    {
        2
    } else {
        0
    };

    let rest = &digits[country_code_len..];
    if rest.is_empty() {
        return Err(invalid(Invalid::Rule(NO_DIGITS)));
    }
    // International format drops the landline trunk prefix 0 (+86 755 …, +86 10 …);
    // no mobile starts with 10, so "+86 10" is Beijing.
    let is_mobile = rest.starts_with('1') && !rest.starts_with("10");
    let trunk_prefix = if country_code_len > 0 && !rest.starts_with('0') && !is_mobile { "0" } else { "" };
    let national = format!("{trunk_prefix}{rest}");
    let boundaries = scanned
        .boundaries
        .iter()
        .filter(|b| b.at > country_code_len)
        .map(|b| Boundary { at: b.at - country_code_len + trunk_prefix.len(), hyphen: b.hyphen })
        .collect();
    Ok((national, boundaries))
}

fn mobile(national: String, scanned: &Scanned) -> Result<Phone, InvalidField> {
    if national.len() >= 2 && !matches!(national.as_bytes()[1], b'3'..=b'9') {
        return Err(invalid(Invalid::Rule(MOBILE_PREFIX)));
    }
    // `found` counts digits: the separators and country code are not the user's mistake.
    if national.len() != MOBILE_LENGTH {
        return Err(invalid(Invalid::Length { expected: "11", found: national.len() }));
    }
    if scanned.extension.is_some() {
        return Err(invalid(Invalid::Rule(MOBILE_EXTENSION)));
    }
    Ok(Phone(national))
}

fn landline(national: &str, boundaries: &[Boundary], scanned: &Scanned) -> Result<Phone, InvalidField> {
    let bytes = national.as_bytes();
    let area_len = match (bytes.get(1), bytes.get(2)) {
        (Some(b'1'), Some(b'0')) | (Some(b'2'), Some(_)) => 3,
        (Some(b'3'..=b'9'), Some(_)) if bytes.len() >= 4 => 4,
        _ => return Err(invalid(Invalid::Rule(AREA_CODE))),
    };
    // A first group of 3 or 4 digits was meant as the area code; if the rule
    // splits elsewhere ("075 56234567", "0101 6234567"), one of them is a typo.
    if let Some(first) = boundaries.first()
        && (first.at == 3 || first.at == 4)
        && first.at != area_len
    {
        return Err(invalid(Invalid::Rule(AREA_CODE)));
    }

    let after = &national[area_len..];
    let is_local_len = |n: usize| (7..=8).contains(&n);
    let (local, extension) = match &scanned.extension {
        Some(extension) => (after, Some(extension.as_str())),
        None => {
            // "010-62345678-801": a last '-' group is the extension if the digits
            // before it make a local number. "0755-6234-5678" only groups a local
            // number the way people say it: "6234" alone is too short. Preferring
            // the extension keeps the normalized "0571-8765432-1" a fixed point.
            let last_hyphen = boundaries.iter().rev().find(|b| b.hyphen && b.at > area_len);
            match last_hyphen {
                Some(b) if is_local_len(b.at - area_len) => (&national[area_len..b.at], Some(&national[b.at..])),
                _ => (after, None),
            }
        }
    };
    if !is_local_len(local.len()) {
        return Err(invalid(Invalid::Rule(LOCAL_LENGTH)));
    }
    if !matches!(local.as_bytes()[0], b'2'..=b'9') {
        return Err(invalid(Invalid::Rule(LOCAL_START)));
    }
    let area_code = &national[..area_len];
    match extension {
        None => Ok(Phone(format!("{area_code}-{local}"))),
        Some(extension) if (1..=6).contains(&extension.len()) => Ok(Phone(format!("{area_code}-{local}-{extension}"))),
        Some(_) => Err(invalid(Invalid::Rule(EXTENSION))),
    }
}

impl Phone {
    pub fn parse(s: &str) -> Result<Phone, InvalidField> {
        let chars: Vec<char> = s.trim().chars().map(half_width).collect();
        if chars.is_empty() {
            return Err(invalid(Invalid::Empty));
        }
        if chars.len() > MAX_CHARS {
            return Err(invalid(Invalid::Length { expected: "at most 40", found: chars.len() }));
        }
        let scanned = scan(&chars)?;
        if scanned.digits.is_empty() {
            return Err(invalid(Invalid::Rule(NO_DIGITS)));
        }
        let (national, boundaries) = national_number(&scanned)?;
        match national.as_bytes().first() {
            Some(b'1') => mobile(national, &scanned),
            Some(b'0') => landline(&national, &boundaries, &scanned),
            Some(_) => Err(invalid(Invalid::Rule(NEEDS_AREA_CODE))),
            None => Err(invalid(Invalid::Rule(NO_DIGITS))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> PhoneKind {
        if self.0.starts_with('1') { PhoneKind::Mobile } else { PhoneKind::Landline }
    }

    pub fn is_mobile(&self) -> bool {
        self.kind() == PhoneKind::Mobile
    }

    /// A landline's area code, e.g. `0755`; `None` for a mobile.
    pub fn area_code(&self) -> Option<&str> {
        self.parts().0
    }

    /// The number without area code and extension; a mobile's whole number.
    pub fn local_number(&self) -> &str {
        self.parts().1
    }

    pub fn extension(&self) -> Option<&str> {
        self.parts().2
    }

    /// The digits to dial, without separators or extension: `075562345678`.
    pub fn digits(&self) -> String {
        let (area_code, local, _) = self.parts();
        format!("{}{local}", area_code.unwrap_or_default())
    }

    /// The last `n` digits of the main number, for search by tail. A landline's
    /// tail never reaches into its area code: at most the whole local number.
    pub fn tail(&self, n: usize) -> &str {
        let local = self.local_number();
        &local[local.len() - n.min(local.len())..]
    }

    /// The last 4 digits shown, with a mobile's first 3 or a landline's area code:
    /// `138****5678`, `0755-****5678`. An extension is left out.
    pub fn masked(&self) -> String {
        let (area_code, local, _) = self.parts();
        let tail = self.tail(4);
        match area_code {
            None => format!("{}****{tail}", &local[..3]),
            Some(area_code) => {
                format!("{area_code}-{}{tail}", "*".repeat(local.len() - tail.len()))
            }
        }
    }

    /// Area code, local number, extension, from the normalized form.
    fn parts(&self) -> (Option<&str>, &str, Option<&str>) {
        if self.is_mobile() {
            return (None, &self.0, None);
        }
        let mut parts = self.0.splitn(3, '-');
        let area_code = parts.next();
        let local = parts.next().unwrap_or_default();
        (area_code, local, parts.next())
    }
}

/// Masked, so that a `{:?}` in a log or an error never shows the whole value.
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

string_conversions!(Phone);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: Result<&str, Invalid>) {
        let actual = Phone::parse(input);
        match expected {
            Ok(normalized) => assert_eq!(actual.unwrap().as_str(), normalized, "input {input:?}"),
            Err(reason) => {
                let err = actual.unwrap_err();
                assert_eq!(err.field, "phone");
                assert_eq!(err.reason, reason, "input {input:?}");
            }
        }
    }

    #[test]
    fn accepts_mobiles() {
        for input in [
            "13812345678",
            "  13812345678 ",
            "138 1234 5678",
            "138-1234-5678",
            "138.1234.5678",
            "+8613812345678",
            "+86 138 1234 5678",
            "+86-138-1234-5678",
            "(+86) 138-1234-5678",
            "008613812345678",
            "0086 138 1234 5678",
            "8613812345678",
            "86 138 1234 5678",
            "１３８１２３４５６７８",
            "138\u{a0}1234\u{3000}5678",
        ] {
            check(input, Ok("13812345678"));
        }
        for prefix in 3..=9 {
            let number = format!("1{prefix}012345678");
            check(&number, Ok(&number));
        }
    }

    #[test]
    fn accepts_landlines() {
        check("0755-62345678", Ok("0755-62345678"));
        check("075562345678", Ok("0755-62345678"));
        check("(0755) 6234 5678", Ok("0755-62345678"));
        check("（０７５５）６２３４５６７８", Ok("0755-62345678"));
        check("0755-6234-5678", Ok("0755-62345678"));
        check("0571-8765432", Ok("0571-8765432"));
        check("05718765432", Ok("0571-8765432"));
        check("01062345678", Ok("010-62345678"));
        check("010 6234 5678", Ok("010-62345678"));
        check("02087654321", Ok("020-87654321"));
        check("020-8765-4321", Ok("020-87654321"));
    }

    #[test]
    fn accepts_landlines_in_international_format() {
        check("+86 755 6234 5678", Ok("0755-62345678"));
        check("+86 (0)755 6234 5678", Ok("0755-62345678"));
        check("0086 755 62345678", Ok("0755-62345678"));
        check("+86 10 6234 5678", Ok("010-62345678"));
        check("+861062345678", Ok("010-62345678"));
        check("86 21 6234 5678", Ok("021-62345678"));
    }

    #[test]
    fn accepts_extensions() {
        check("010-62345678-801", Ok("010-62345678-801"));
        check("010-62345678转801", Ok("010-62345678-801"));
        check("010 6234 5678 转 801", Ok("010-62345678-801"));
        check("010-62345678 ext. 801", Ok("010-62345678-801"));
        check("010-62345678EXT801", Ok("010-62345678-801"));
        check("0755-6234-5678-90", Ok("0755-62345678-90"));
        check("0571-8765432-1", Ok("0571-8765432-1"));
        check("0571-8765432转1", Ok("0571-8765432-1"));
        check("075562345678-123456", Ok("0755-62345678-123456"));
    }

    #[test]
    fn rejects_empty() {
        check("", Err(Invalid::Empty));
        check(" \u{3000} ", Err(Invalid::Empty));
    }

    #[test]
    fn rejects_characters_by_position() {
        check("138 1234 567a", Err(Invalid::Character { position: 13 }));
        check("138+12345678", Err(Invalid::Character { position: 4 }));
        check("++8613812345678", Err(Invalid::Character { position: 2 }));
        check("转801", Err(Invalid::Character { position: 1 }));
        check("ext801", Err(Invalid::Character { position: 1 }));
        check("0755-1234567 x801", Err(Invalid::Character { position: 14 }));
        check("010-62345678转801转2", Err(Invalid::Character { position: 17 }));
        check("电话13812345678", Err(Invalid::Character { position: 1 }));
        check("138/1234/5678", Err(Invalid::Character { position: 4 }));
    }

    #[test]
    fn rejects_overlong_input() {
        let input = "1".repeat(41);
        check(&input, Err(Invalid::Length { expected: "at most 40", found: 41 }));
    }

    #[test]
    fn rejects_input_without_digits() {
        check("( - )", Err(Invalid::Rule(NO_DIGITS)));
        check("+86", Err(Invalid::Rule(NO_DIGITS)));
    }

    #[test]
    fn rejects_foreign_numbers() {
        check("+1 415 555 0100", Err(Invalid::Rule(MAINLAND_ONLY)));
        check("+852 2345 6789", Err(Invalid::Rule(MAINLAND_ONLY)));
        check("001 415 555 0100", Err(Invalid::Rule(MAINLAND_ONLY)));
    }

    #[test]
    fn rejects_bad_mobiles() {
        check("12345678901", Err(Invalid::Rule(MOBILE_PREFIX)));
        check("110", Err(Invalid::Rule(MOBILE_PREFIX)));
        check("+86 11 1234 5678", Err(Invalid::Rule(MOBILE_PREFIX)));
        check("1381234567", Err(Invalid::Length { expected: "11", found: 10 }));
        check("138123456789", Err(Invalid::Length { expected: "11", found: 12 }));
        check("1", Err(Invalid::Length { expected: "11", found: 1 }));
        check("13812345678-801", Err(Invalid::Length { expected: "11", found: 14 }));
        check("13812345678转801", Err(Invalid::Rule(MOBILE_EXTENSION)));
    }

    #[test]
    fn rejects_landlines_without_area_code() {
        check("87654321", Err(Invalid::Rule(NEEDS_AREA_CODE)));
        check("8765-4321", Err(Invalid::Rule(NEEDS_AREA_CODE)));
    }

    #[test]
    fn rejects_bad_area_codes() {
        check("01162345678", Err(Invalid::Rule(AREA_CODE)));
        check("0", Err(Invalid::Rule(AREA_CODE)));
        check("010", Err(Invalid::Rule(LOCAL_LENGTH)));
        check("075", Err(Invalid::Rule(AREA_CODE)));
        check("075 51234567", Err(Invalid::Rule(AREA_CODE)));
        check("0101 2345678", Err(Invalid::Rule(AREA_CODE)));
    }

    #[test]
    fn rejects_bad_local_numbers() {
        check("0755-123456", Err(Invalid::Rule(LOCAL_LENGTH)));
        check("0755623456789", Err(Invalid::Rule(LOCAL_LENGTH)));
        check("0755-1234-56", Err(Invalid::Rule(LOCAL_LENGTH)));
        check("0755-01234567", Err(Invalid::Rule(LOCAL_START)));
        // A leading 1 is kept for service numbers (110, 12345) and never starts a subscriber number.
        check("0755-12345678", Err(Invalid::Rule(LOCAL_START)));
        check("010-62345678 801", Err(Invalid::Rule(LOCAL_LENGTH)));
    }

    #[test]
    fn rejects_bad_extensions() {
        check("010-62345678转", Err(Invalid::Rule(EXTENSION)));
        check("010-62345678-1234567", Err(Invalid::Rule(EXTENSION)));
        check("010-62345678 ext 1234567", Err(Invalid::Rule(EXTENSION)));
    }

    #[test]
    fn accessors_of_a_mobile() {
        let phone = Phone::parse("+86 138 1234 5678").unwrap();
        assert_eq!(phone.kind(), PhoneKind::Mobile);
        assert!(phone.is_mobile());
        assert_eq!(phone.area_code(), None);
        assert_eq!(phone.local_number(), "13812345678");
        assert_eq!(phone.extension(), None);
        assert_eq!(phone.digits(), "13812345678");
        assert_eq!(phone.tail(4), "5678");
        assert_eq!(phone.tail(20), "13812345678");
        assert_eq!(phone.masked(), "138****5678");
        assert_eq!(phone.to_string(), "13812345678");
    }

    #[test]
    fn accessors_of_a_landline() {
        let phone = Phone::parse("0755 6234 5678 转 801").unwrap();
        assert_eq!(phone.kind(), PhoneKind::Landline);
        assert!(!phone.is_mobile());
        assert_eq!(phone.area_code(), Some("0755"));
        assert_eq!(phone.local_number(), "62345678");
        assert_eq!(phone.extension(), Some("801"));
        assert_eq!(phone.digits(), "075562345678");
        assert_eq!(phone.tail(4), "5678");
        assert_eq!(phone.tail(10), "62345678");
        assert_eq!(phone.masked(), "0755-****5678");

        let phone = Phone::parse("0571-8765432").unwrap();
        assert_eq!(phone.masked(), "0571-***5432");
        assert_eq!(phone.extension(), None);
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let phone = Phone::parse("010-62345678-801").unwrap();
        let json = serde_json::to_string(&phone).unwrap();
        assert_eq!(json, "\"010-62345678-801\"");
        assert_eq!(serde_json::from_str::<Phone>(&json).unwrap(), phone);
        assert_eq!(serde_json::from_str::<Phone>("\"+86 138 1234 5678\"").unwrap().as_str(), "13812345678");
        assert!(serde_json::from_str::<Phone>("\"12345\"").is_err());
        assert_eq!(serde_json::to_string(&PhoneKind::Landline).unwrap(), "\"landline\"");
    }

    #[test]
    fn normalized_form_parses_to_itself() {
        for normalized in ["13812345678", "0755-62345678", "010-62345678-801", "0571-8765432-1"] {
            check(normalized, Ok(normalized));
        }
    }

    #[test]
    fn error_messages_never_contain_the_input() {
        for input in ["1381234567", "0755-01234567", "+1 415 555 0100", "138 1234 567a"] {
            let message = Phone::parse(input).unwrap_err().to_string();
            assert!(!message.contains("1234"), "{message}");
        }
    }

    #[test]
    fn masked_shows_only_the_ends() {
        assert_eq!(Phone::parse("13812345678").unwrap().masked(), "138****5678");
        assert_eq!(Phone::parse("0750-3501234").unwrap().masked(), "0750-***1234");
        assert_eq!(Phone::parse("0750-3501234-808").unwrap().masked(), "0750-***1234");
    }
}
