//! Reading a number's digits eight at a time, and its value with them where that is exact.

/// The run of ASCII digits from `at`: its length, and `mantissa` times ten to that length plus
/// the digits' value (wrapping past 19 digits, where the caller stops using it). With `VALUE`
/// false only the length is worked out, and `mantissa` is left alone: the numbers of a quote the
/// metrics do not use (four of a quote's six) need only be checked.
///
/// Eight bytes at a time: which of them are digits and their value come from a few integer
/// operations on the eight as one `u64`, where a loop over the bytes would end on a branch that
/// a number's varying length makes the processor guess wrong about once a number.
pub(super) fn digit_run<const VALUE: bool>(bytes: &[u8], at: usize, mantissa: &mut u64) -> usize {
    let mut n = 0;
    while let Some(chunk) = bytes.get(at + n..at + n + 8) {
        let chunk = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let count = if VALUE {
            let (count, value) = leading_digits(chunk);
            *mantissa = mantissa.wrapping_mul(POW10_U64[count]).wrapping_add(value);
            count
        } else {
            leading_digit_count(chunk)
        };
        n += count;
        if count < 8 {
            return n;
        }
    }
    // The text's last few bytes.
    for &b in bytes[at + n..].iter().take_while(|b| b.is_ascii_digit()) {
        if VALUE {
            *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        }
        n += 1;
    }
    n
}

/// Ten to the powers 0 to 8.
const POW10_U64: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// Each byte of `chunk` less '0' (a digit becomes its value 0-9; anything else becomes 10 or
/// more, or borrows from the byte after it: a borrow only reaches bytes after the first
/// non-digit, which are not used), and the top bit of each byte that is not a digit (10 or more:
/// 0x76 + 10 = 0x80; carries again only reach bytes after the first non-digit).
fn digit_values(chunk: u64) -> (u64, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let values = chunk.wrapping_sub(ONES * u64::from(b'0'));
    let not_digit = (values | values.wrapping_add(ONES * 0x76)) & (ONES * 0x80);
    (values, not_digit)
}

/// How many of the eight bytes in `chunk` (the first in its low byte) are ASCII digits before
/// the first that is not.
fn leading_digit_count(chunk: u64) -> usize {
    (digit_values(chunk).1.trailing_zeros() / 8) as usize
}

/// How many of the eight bytes in `chunk` (the first in its low byte) are ASCII digits before
/// the first that is not, and the value of those digits.
pub(super) fn leading_digits(chunk: u64) -> (usize, u64) {
    let (values, not_digit) = digit_values(chunk);
    let count = (not_digit.trailing_zeros() / 8) as usize;
    // The `count` digits moved to the top bytes, zeros (digit values) before them, then
    // combined pairwise: 8 digits to 4 two-digit values, to 2 four-digit ones, to one.
    let digits = values.checked_shl(64 - 8 * count as u32).unwrap_or(0);
    let pairs = digits.wrapping_mul(10).wrapping_add(digits >> 8);
    let quads = (pairs & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let quads = quads
        .wrapping_add(((pairs >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32)));
    (count, u64::from((quads >> 32) as u32))
}

/// The powers of ten an `f64` holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The number whose digits read as the integer `mantissa`, `fraction` of them after the point,
/// if both `mantissa` and 10^`fraction` are exact in an `f64`. One division of two exact values
/// is correctly rounded, so this is the `f64` `str::parse` gives (Clinger's fast path, which
/// the standard library's parser also takes, after reading the digits a second time). A
/// snapshot's prices have 8 to 14 digits: nearly all take this path.
pub(super) fn exact(mantissa: u64, fraction: usize, negative: bool) -> Option<f64> {
    if mantissa > 1 << 53 {
        return None;
    }
    let value = mantissa as f64 / *POW10.get(fraction)?;
    Some(if negative { -value } else { value })
}
