//! Format checks for NHS numbers, UPNs, postcodes and surnames (extracts.md §9, §11.2).

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Normalises an NHS number (spaces and hyphens removed) and checks modulus 11 (rule E006).
///
/// Returns the 10 digits when valid.
pub fn nhs_number(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = d[..9].iter().zip((2..=10).rev()).map(|(x, w)| x * w).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return None,
        c => c,
    };
    (check == d[9]).then_some(digits)
}

const UPN_ALPHABET: &[u8; 23] = b"ABCDEFGHJKLMNPQRTUVWXYZ";

/// Normalises a UPN (upper case, spaces removed) and checks its check letter (rule E013).
pub fn upn(raw: &str) -> Option<String> {
    let upn: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let b = upn.as_bytes();
    if b.len() != 13 || !b.is_ascii() {
        return None;
    }
    let mut sum = 0u32;
    for (i, &c) in b.iter().enumerate().skip(1) {
        let weight = i as u32 + 1;
        let value = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else if i == 12 {
            // A temporary UPN ends in a letter, which counts as its alphabet index.
            UPN_ALPHABET.iter().position(|&a| a == c)? as u32
        } else {
            return None;
        };
        sum += value * weight;
    }
    (b[0] == UPN_ALPHABET[(sum % 23) as usize]).then_some(upn)
}

/// Normalises a postcode to upper case with one space before the inward code and checks
/// the format of rule E007.
pub fn postcode(raw: &str) -> Option<String> {
    let compact: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if compact.len() < 5 || compact.len() > 7 || !compact.is_ascii() {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let o = outward.as_bytes();
    let i = inward.as_bytes();
    let inward_ok = i[0].is_ascii_digit() && i[1].is_ascii_uppercase() && i[2].is_ascii_uppercase();
    // Outward: A9, A99, AA9, AA99, A9A, AA9A.
    let letters = o.iter().take_while(|c| c.is_ascii_uppercase()).count();
    let rest = &o[letters..];
    let outward_ok = (1..=2).contains(&letters)
        && !rest.is_empty()
        && rest.len() <= 2
        && rest[0].is_ascii_digit()
        && rest.get(1).is_none_or(|c| c.is_ascii_alphanumeric());
    (inward_ok && outward_ok).then(|| format!("{outward} {inward}"))
}

/// The outward code (postcode district) of a normalised postcode.
pub fn outward_code(normalised: &str) -> &str {
    normalised.split(' ').next().unwrap_or(normalised)
}

/// Surname normalisation for demographic keys: NFKD, combining marks dropped, upper case,
/// A–Z only. `O'Brien-Núñez` becomes `OBRIENNUNEZ`.
pub fn surname(raw: &str) -> String {
    raw.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_uppercase)
        .filter(char::is_ascii_uppercase)
        .collect()
}

/// The first given name normalised as a surname is (`Anna-Maria Louise` → `ANNAMARIA`), so a
/// middle name recorded in one system and not another does not stop a match.
pub fn given_name(raw: &str) -> String {
    raw.split_whitespace()
        .next()
        .map(surname)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_vectors() {
        assert_eq!(nhs_number("943 476 5919").as_deref(), Some("9434765919"));
        assert_eq!(nhs_number("9434765918"), None);
        assert!(nhs_number("9990000018").is_some());
        assert!(nhs_number("999-000-0026").is_some());
        assert_eq!(nhs_number("12345"), None);
    }

    #[test]
    fn upn_vector() {
        assert_eq!(upn("R801200124567").as_deref(), Some("R801200124567"));
        assert_eq!(upn("A801200124567"), None);
        assert_eq!(upn("3412"), None);
    }

    #[test]
    fn postcode_formats() {
        assert_eq!(postcode("le1 2ab").as_deref(), Some("LE1 2AB"));
        assert_eq!(postcode("SW1A1AA").as_deref(), Some("SW1A 1AA"));
        assert_eq!(postcode("M1 1AE").as_deref(), Some("M1 1AE"));
        // Format-valid though no such district exists: the directory check (W001) catches it.
        assert_eq!(postcode("C251YT").as_deref(), Some("C25 1YT"));
        assert_eq!(postcode("12 3AB"), None);
        assert_eq!(postcode("2TR"), None);
        assert_eq!(outward_code("SW1A 1AA"), "SW1A");
    }

    #[test]
    fn surname_vector() {
        assert_eq!(surname("O'Brien-Núñez"), "OBRIENNUNEZ");
    }

    #[test]
    fn given_name_is_the_first_one() {
        assert_eq!(given_name("  Zoë-Ann Louise "), "ZOEANN");
        assert_eq!(given_name(""), "");
    }
}
