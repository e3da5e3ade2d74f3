//! Identity: checks on identifiers, pseudonymisation and record linkage
//! (`shared/domain/extracts.md` §11).
//!
//! Clear identifiers enter this module and only keyed hashes leave it. Nothing here logs a
//! value it was given.

pub mod checks;
pub mod linkage;
pub mod pseudonym;
pub mod quality;

pub use pseudonym::{KeyError, Pseudonymiser};
