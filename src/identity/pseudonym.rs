//! Keyed pseudonyms: lower-case hex HMAC-SHA256 under `EARLYSTART_PSEUDONYM_KEY`
//! (extracts.md §11.2). Each key kind has its own message prefix so equal strings in
//! different roles never collide.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The environment variable holding the pseudonymisation key.
pub const KEY_ENV: &str = "EARLYSTART_PSEUDONYM_KEY";

/// The published key used only by the demo and tests, whose data is synthetic.
pub const DEMO_KEY: &str = "earlystart-demo-key-do-not-use-in-production";

/// Why a key was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The variable is not set.
    #[error(
        "{KEY_ENV} is not set: set it to a secret of at least 32 bytes (the same secret every night; \
         changing it means a full re-ingest), or run `earlystart demo` for synthetic data"
    )]
    Missing,
    /// The key is too short to resist brute force of ~10^9 NHS numbers.
    #[error("{KEY_ENV} is {0} bytes long; it must be at least 32 bytes")]
    TooShort(usize),
}

/// Computes the keyed pseudonyms.
#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Pseudonymiser")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl Pseudonymiser {
    /// A pseudonymiser for a production key: at least 32 bytes.
    pub fn new(key: &str) -> Result<Self, KeyError> {
        if key.len() < 32 {
            return Err(KeyError::TooShort(key.len()));
        }
        Ok(Self::with_key_unchecked(key))
    }

    /// Reads the key from `EARLYSTART_PSEUDONYM_KEY`.
    pub fn from_env() -> Result<Self, KeyError> {
        match std::env::var(KEY_ENV) {
            Ok(key) => Self::new(&key),
            Err(_) => Err(KeyError::Missing),
        }
    }

    /// The pseudonymiser with the published demo key.
    pub fn demo() -> Self {
        Self::with_key_unchecked(DEMO_KEY)
    }

    fn with_key_unchecked(key: &str) -> Self {
        let mac =
            Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
        Self { mac }
    }

    /// HMAC of an arbitrary message, as lower-case hex.
    pub fn hmac(&self, message: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(message.as_bytes());
        // Into a fixed buffer: `hex::encode` builds the string a char at a time, which
        // showed in the ingest profile (an HMAC per new identifier).
        let mut out = [0u8; 64];
        hex::encode_to_slice(mac.finalize().into_bytes(), &mut out)
            .expect("32 bytes fill 64 hex digits");
        String::from_utf8(out.to_vec()).expect("hex digits are ASCII")
    }

    /// `key_nhs` for a validated 10-digit NHS number.
    pub fn nhs(&self, digits: &str) -> String {
        self.hmac(&format!("nhs:{digits}"))
    }

    /// `key_upn` for a validated UPN.
    pub fn upn(&self, upn: &str) -> String {
        self.hmac(&format!("upn:{upn}"))
    }

    /// `key_local` for a local id in its namespace.
    pub fn local(&self, namespace: &str, id: &str) -> String {
        self.hmac(&format!("local:{namespace}:{}", id.trim()))
    }

    /// `key_demo` from a normalised surname, ISO date of birth and normalised postcode.
    pub fn demographic(&self, surname: &str, dob_iso: &str, postcode: &str) -> String {
        let pc: String = postcode.chars().filter(|c| !c.is_whitespace()).collect();
        self.hmac(&format!("demo:{surname}|{dob_iso}|{pc}"))
    }

    /// `key_demo_name` (an extension of §11.2, used only by the optional DEMO_NAME rule)
    /// from a normalised surname, normalised first given name and ISO date of birth: the
    /// demographic key without the postcode, for families who moved between extracts.
    pub fn demographic_name(&self, surname: &str, given: &str, dob_iso: &str) -> String {
        self.hmac(&format!("demo_name:{surname}|{given}|{dob_iso}"))
    }

    /// `child_key` from the representative key of a linked component.
    pub fn child(&self, representative: &str) -> String {
        self.hmac(&format!("child:{representative}"))
    }

    /// First 16 hex characters of `HMAC(key, "earlystart-key-check")`: stored in the lake so a
    /// run with a different key refuses to append.
    pub fn fingerprint(&self) -> String {
        self.hmac("earlystart-key-check")[..16].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_test_vectors() {
        let p = Pseudonymiser::demo();
        assert_eq!(
            p.nhs("9434765919"),
            "8ce3511997dacbacad464fecb153c5f87caf3955b85eceae1921bf95eb05d1aa"
        );
        let surname = crate::identity::checks::surname("O'Brien-Núñez");
        assert_eq!(
            p.demographic(&surname, "2022-03-14", "LE1 2AB"),
            "8c40aa17729443b2d82e6714e5bb92082226964d4e649b0dd76c48d01e496ac1"
        );
        assert_eq!(
            p.upn("R801200124567"),
            "d73502898f10fb1c1e185e22e73944c18fccc107952f8cc290528759a263ced0"
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(matches!(
            Pseudonymiser::new("short"),
            Err(KeyError::TooShort(5))
        ));
        assert!(Pseudonymiser::new(&"k".repeat(32)).is_ok());
    }
}
