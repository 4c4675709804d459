//! Device-flow user codes (RFC 8628 §6.1): short enough to type on a phone, from an alphabet
//! without look-alike characters, read back case- and dash-insensitively.

use super::TokenHash;
use rand::Rng;
use std::fmt;

/// RFC 8628 §6.1's example alphabet: twenty consonants, so no vowels (no words) and none of
/// `0/O`, `1/I/L`, `5/S`... look-alikes among digits and letters.
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Letters in a code: 20^8 ≈ 2.6 × 10^10 codes (about 34 bits), shown as `XXXX-XXXX`.
const LENGTH: usize = 8;

/// A user code in its canonical form: eight letters of [`ALPHABET`], upper case, no dash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    /// Draws a new code from the OS CSPRNG.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        Self(
            (0..LENGTH)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect(),
        )
    }

    /// Reads what a person typed: case, dashes and spaces do not matter. `None` when it cannot
    /// be a code (wrong length or a letter outside the alphabet).
    pub fn parse(typed: &str) -> Option<Self> {
        let code: String = typed
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '\u{2010}'..='\u{2015}'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid = code.len() == LENGTH && code.bytes().all(|b| ALPHABET.contains(&b));
        valid.then_some(Self(code))
    }

    /// `XXXX-XXXX`, as shown to the person and sent as `user_code`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(LENGTH / 2);
        format!("{a}-{b}")
    }

    /// What the store keeps and looks up by.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

// A user code is a short-lived credential: keep it out of logs.
impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_read_back_however_they_are_typed() {
        let code = UserCode::generate();
        let shown = code.display();
        assert_eq!(shown.len(), 9);
        assert_eq!(&shown[4..5], "-");
        for typed in [
            shown.clone(),
            shown.to_lowercase(),
            shown.replace('-', ""),
            format!(" {} ", shown.replace('-', " ")),
        ] {
            assert_eq!(UserCode::parse(&typed), Some(code.clone()), "{typed:?}");
        }
        assert_eq!(UserCode::parse(&shown).unwrap().hash(), code.hash());
    }

    #[test]
    fn codes_use_no_vowels_or_look_alike_characters() {
        for _ in 0..200 {
            let code = UserCode::generate();
            assert!(
                code.0.bytes().all(|b| !b"AEIOUY0123456789".contains(&b)),
                "{}",
                code.display()
            );
        }
    }

    #[test]
    fn anything_else_is_not_a_code() {
        for typed in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "BCDF-GHJ1",
            "ABCD-EFGH",
            "BCDF_GHJK",
        ] {
            assert_eq!(UserCode::parse(typed), None, "{typed:?}");
        }
    }
}
