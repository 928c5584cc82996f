//! Exact decimal normalisation of JSON number texts (no `f64` anywhere).
//!
//! A number text `-12.340e3` is read as sign, digit string and exponent,
//! `value = ±digits × 10^exponent`, then brought to a canonical form: no leading
//! or trailing zeros in `digits` (trailing zeros move into the exponent), and
//! zero always positive with no digits. Two texts denote the same value exactly
//! when their canonical forms are equal, so `9`, `9.0`, `9e0`, `0.9e1`, `90e-1`
//! all agree, `-0` equals `0`, and big integers keep every digit.

use std::fmt;

/// Canonical exact decimal: `(-1)^negative × digits × 10^exponent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decimal {
    negative: bool,
    /// ASCII digits, no leading or trailing `0`; empty for zero.
    digits: String,
    exponent: i64,
}

/// Longest exponent (after dropping its leading zeros) we accept; keeps the
/// exponent arithmetic far away from `i64` overflow.
const MAX_EXPONENT_DIGITS: usize = 17;

impl Decimal {
    /// Parses a JSON-style number text (`-?digits[.digits][(e|E)[+-]digits]`).
    /// Returns `None` for anything else, or for an absurdly large exponent.
    pub(crate) fn parse(text: &str) -> Option<Decimal> {
        let (negative, rest) = split_sign(text);
        let (mantissa, exponent_text) = split_exponent(rest);
        let (integer_part, fraction_part) = split_fraction(mantissa)?;
        let written_exponent = parse_exponent(exponent_text)?;
        let fraction_len = i64::try_from(fraction_part.len()).ok()?;
        let mut digits = String::with_capacity(integer_part.len() + fraction_part.len());
        digits.push_str(integer_part);
        digits.push_str(fraction_part);
        Some(Self::canonical(negative, digits, written_exponent - fraction_len))
    }

    /// Strips leading/trailing zeros and normalises zero.
    fn canonical(negative: bool, digits: String, exponent: i64) -> Decimal {
        let without_leading = digits.trim_start_matches('0');
        let significant = without_leading.trim_end_matches('0');
        if significant.is_empty() {
            return Decimal { negative: false, digits: String::new(), exponent: 0 };
        }
        let trailing_zeros = (without_leading.len() - significant.len()) as i64;
        Decimal { negative, digits: significant.to_owned(), exponent: exponent + trailing_zeros }
    }
}

/// Canonical text form, e.g. `-1234e-2`, `0`; equal values give equal texts.
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.digits.is_empty() {
            return f.write_str("0");
        }
        let sign = if self.negative { "-" } else { "" };
        write!(f, "{sign}{}e{}", self.digits, self.exponent)
    }
}

/// True when two number texts denote the same exact decimal value.
/// Texts that are not numbers are equal only when identical.
pub(crate) fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (Decimal::parse(a), Decimal::parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Canonical text of a number (its own text when it cannot be parsed).
pub(crate) fn canonical_text(text: &str) -> String {
    match Decimal::parse(text) {
        Some(decimal) => decimal.to_string(),
        None => text.to_owned(),
    }
}

fn split_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

/// Splits `12.5e-3` into (`12.5`, `Some("-3")`).
fn split_exponent(text: &str) -> (&str, Option<&str>) {
    match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    }
}

/// Splits `12.5` into (`12`, `5`); both parts must be digits, not both empty.
fn split_fraction(mantissa: &str) -> Option<(&str, &str)> {
    let (integer_part, fraction_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let valid =
        all_digits(integer_part) && all_digits(fraction_part) && !(integer_part.is_empty() && fraction_part.is_empty());
    valid.then_some((integer_part, fraction_part))
}

/// Parses the exponent after `e` (`+7`, `-003`); no exponent means 0.
fn parse_exponent(exponent_text: Option<&str>) -> Option<i64> {
    let Some(text) = exponent_text else {
        return Some(0);
    };
    let (negative, digits) = split_sign(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > MAX_EXPONENT_DIGITS {
        return None;
    }
    let magnitude: i64 = if significant.is_empty() { 0 } else { significant.parse().ok()? };
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        Decimal::parse(text).expect("valid number").to_string()
    }

    #[test]
    fn equal_forms_of_nine_share_one_canonical_form() {
        for text in ["9", "9.0", "9e0", "9E+0", "0.9e1", "90e-1", "9.000", "0009"] {
            assert_eq!(canon(text), "9e0", "{text}");
        }
    }

    #[test]
    fn zero_has_no_sign() {
        for text in ["0", "-0", "0.0", "-0.000e5", "0e-7"] {
            assert_eq!(canon(text), "0", "{text}");
        }
    }

    #[test]
    fn trailing_zeros_move_into_exponent() {
        assert_eq!(canon("100"), "1e2");
        assert_eq!(canon("1e2"), "1e2");
        assert_eq!(canon("-1200.50"), "-12005e-1");
        assert_eq!(canon("0.00120"), "12e-4");
    }

    #[test]
    fn big_integers_keep_every_digit() {
        assert!(!same_value("123456789012345678901234567890", "123456789012345678901234567891"));
        assert!(same_value("123456789012345678901234567890", "12345678901234567890123456789e1"));
        assert!(!same_value("1.0000000000000000000001", "1"));
        assert!(!same_value("12345678901234567890123", "12345678901234567890124"));
    }

    #[test]
    fn signs_matter_except_for_zero() {
        assert!(!same_value("-1", "1"));
        assert!(same_value("-0", "0.0"));
    }

    #[test]
    fn malformed_or_huge_exponents_fall_back_to_text_equality() {
        assert_eq!(Decimal::parse("1e"), None);
        assert_eq!(Decimal::parse("."), None);
        assert_eq!(Decimal::parse("1x"), None);
        assert_eq!(Decimal::parse("1e999999999999999999999"), None);
        assert!(same_value("1e999999999999999999999", "1e999999999999999999999"));
        assert!(!same_value("1e999999999999999999999", "10e999999999999999999998"));
        assert_eq!(canon("1e000000000000000000000000002"), "1e2");
    }
}
