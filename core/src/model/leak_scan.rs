//! What an ID number or a mobile number looks like inside free text (logs, crash reports,
//! exports): the check behind "no personal data in any log line". Shapes, not validity:
//! a mistyped or test number leaks as much as a real one.

/// Runs of 18 characters, 17 digits and a digit or `X`, not inside a longer run of digits.
pub fn id_number_shapes(text: &str) -> Vec<&str> {
    digit_runs(text)
        .filter(|run| {
            let bytes = run.as_bytes();
            bytes.len() == 18 && bytes[..17].iter().all(u8::is_ascii_digit)
        })
        .collect()
}

/// Runs of 11 digits starting 13–19, not inside a longer run of digits.
pub fn mobile_shapes(text: &str) -> Vec<&str> {
    digit_runs(text)
        .filter(|run| {
            let bytes = run.as_bytes();
            bytes.len() == 11 && bytes[0] == b'1' && (b'3'..=b'9').contains(&bytes[1]) && bytes[10].is_ascii_digit()
        })
        .collect()
}

/// Maximal runs of ASCII digits, each with an `X` or `x` right after it included.
fn digit_runs(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        while start < bytes.len() && !bytes[start].is_ascii_digit() {
            start += 1;
        }
        if start >= bytes.len() {
            return None;
        }
        let mut end = start;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        if end < bytes.len() && matches!(bytes[end], b'X' | b'x') {
            end += 1;
        }
        let run = &text[start..end];
        start = end;
        Some(run)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_found_where_they_stand_alone() {
        assert_eq!(id_number_shapes("id 11010519491231002X here"), ["11010519491231002X"]);
        assert_eq!(id_number_shapes("身份证440703199001011234。"), ["440703199001011234"]);
        assert_eq!(mobile_shapes("call 13800138000."), ["13800138000"]);
        assert_eq!(mobile_shapes("电话:13900000009,"), ["13900000009"]);
        assert!(id_number_shapes("seq 1234567890123456789").is_empty(), "longer runs are not ID numbers");
        assert!(mobile_shapes("440703001001001 12345678901 138001380001").is_empty());
        assert!(id_number_shapes("4407**********123X").is_empty() && mobile_shapes("138****8000").is_empty());
    }
}
