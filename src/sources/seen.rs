//! Duplicate keys (E005): which earlier row of a file, if any, already had a record's key.
//!
//! A small file keeps every key in memory and answers as it reads. A large file would need
//! one map entry per row (about 50 bytes each once the table's spare room is counted: the
//! largest part of a region ingest's memory), so the split reader logs keys instead
//! ([`KeyLog`]): sorted runs of a fixed size, spilled to temporary files, merged once the
//! file has been read. When that finds no repeat (the usual case) the file is done; when it
//! finds some, the file is read again with the repeats known ([`Repeats`]), and the rows
//! quarantined are exactly those a one-pass read would have quarantined.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::sync::Arc;

/// The 128-bit hash (xxh3) under which keys are kept in per-record lookups: collision odds
/// about 1e-26 at 10^7 keys, in 16 bytes and one memory access instead of a heap string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyHash(u64, u64);

impl std::hash::Hash for KeyHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Already uniform: hand the low half to `PrehashedKey` as the table hash.
        state.write_u64(self.0);
    }
}

/// The [`KeyHash`] of a key.
pub fn key_hash(key: &str) -> KeyHash {
    let h = twox_hash::XxHash3_128::oneshot(key.as_bytes());
    KeyHash(h as u64, (h >> 64) as u64)
}

/// A `Hasher` for keys that are uniform hashes already.
#[derive(Default)]
pub struct PrehashedKey(u64);

impl std::hash::Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (by `KeyHash`); fold anything else in byte by byte.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Rows of a file that repeat an earlier row's key: row → the first row with that key.
pub type Repeats = HashMap<u64, u64>;

/// How a reader finds repeated keys in one file.
pub enum SeenKeys {
    /// Every key in memory, checked as each record is read.
    Memory(HashMap<KeyHash, u64, std::hash::BuildHasherDefault<PrehashedKey>>),
    /// Keys logged for a check after the whole file is read; no record is flagged yet.
    Logged(KeyLog),
    /// The outcome of that check: the repeated rows are known before reading.
    Known(Arc<Repeats>),
}

impl Default for SeenKeys {
    fn default() -> Self {
        SeenKeys::Memory(HashMap::default())
    }
}

impl SeenKeys {
    /// Records that `row` has `key`; returns the first row that had it when `row` repeats it.
    pub fn repeat_of(&mut self, key: KeyHash, row: u64) -> Option<u64> {
        match self {
            SeenKeys::Memory(map) => match map.entry(key) {
                std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(row);
                    None
                }
            },
            SeenKeys::Logged(log) => {
                log.push(key, row);
                None
            }
            SeenKeys::Known(repeats) => repeats.get(&row).copied(),
        }
    }
}

/// Entries per sorted run: 24 MiB of memory whatever the size of the file.
pub const RUN_ENTRIES: usize = 1 << 20;

/// Bytes of one spilled entry: the two halves of the hash and the row, little-endian.
const ENTRY_BYTES: usize = 24;

/// The keys of a file as sorted runs: one in memory, the rest in temporary files (under
/// `TMPDIR`, deleted when closed).
pub struct KeyLog {
    run: Vec<(KeyHash, u64)>,
    run_entries: usize,
    spilled: Vec<File>,
    /// The first spill failure; the log is then unusable and the caller reads the file in
    /// one pass with the keys in memory instead.
    failed: Option<std::io::Error>,
}

impl Default for KeyLog {
    fn default() -> Self {
        Self::with_run_entries(RUN_ENTRIES)
    }
}

impl KeyLog {
    /// A log whose runs hold `run_entries` keys (small values are for tests).
    pub fn with_run_entries(run_entries: usize) -> Self {
        KeyLog {
            run: Vec::new(),
            run_entries: run_entries.max(1),
            spilled: Vec::new(),
            failed: None,
        }
    }

    fn push(&mut self, key: KeyHash, row: u64) {
        if self.failed.is_some() {
            return;
        }
        self.run.push((key, row));
        if self.run.len() >= self.run_entries
            && let Err(e) = self.spill()
        {
            self.failed = Some(e);
            self.run = Vec::new();
        }
    }

    fn spill(&mut self) -> std::io::Result<()> {
        self.run.sort_unstable();
        let mut out = BufWriter::new(tempfile::tempfile()?);
        for (KeyHash(a, b), row) in self.run.drain(..) {
            out.write_all(&a.to_le_bytes())?;
            out.write_all(&b.to_le_bytes())?;
            out.write_all(&row.to_le_bytes())?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        self.spilled.push(file);
        Ok(())
    }

    /// Merges the logs of a file's parts and returns the rows that repeat an earlier row's
    /// key. Fails when a run could not be spilled or read back.
    pub fn repeats(logs: Vec<KeyLog>) -> std::io::Result<Repeats> {
        let mut runs: Vec<Run> = Vec::new();
        for mut log in logs {
            if let Some(e) = log.failed {
                return Err(e);
            }
            log.run.sort_unstable();
            runs.push(Box::new(log.run.into_iter().map(Ok)));
            for file in log.spilled {
                runs.push(Box::new(SpilledRun(BufReader::new(file))));
            }
        }
        // Sorted by hash then row, so the first entry of each hash is its first row.
        let merged = itertools::kmerge_by(runs, |a: &std::io::Result<(KeyHash, u64)>, b: &_| {
            match (a, b) {
                (Ok(a), Ok(b)) => a < b,
                // Errors first, so a failed read stops the merge at once.
                (Err(_), _) => true,
                (Ok(_), Err(_)) => false,
            }
        });
        let mut repeats = Repeats::new();
        let mut first: Option<(KeyHash, u64)> = None;
        for entry in merged {
            let (key, row) = entry?;
            match first {
                Some((k, first_row)) if k == key => {
                    repeats.insert(row, first_row);
                }
                _ => first = Some((key, row)),
            }
        }
        Ok(repeats)
    }
}

/// One sorted run being merged: in memory or read back from its file.
type Run = Box<dyn Iterator<Item = std::io::Result<(KeyHash, u64)>>>;

/// Reads back a spilled run.
struct SpilledRun(BufReader<File>);

impl Iterator for SpilledRun {
    type Item = std::io::Result<(KeyHash, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut entry = [0u8; ENTRY_BYTES];
        match self.0.read_exact(&mut entry) {
            Ok(()) => {
                let word = |i: usize| {
                    u64::from_le_bytes(entry[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
                };
                Some(Ok((KeyHash(word(0), word(1)), word(2))))
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows 2..=n+1 with keys that repeat: key i%7 on row i+2, so row r repeats row (r-2)%7+2.
    fn logged(rows: std::ops::Range<u64>, run_entries: usize) -> KeyLog {
        let mut seen = SeenKeys::Logged(KeyLog::with_run_entries(run_entries));
        for row in rows {
            assert_eq!(
                seen.repeat_of(key_hash(&format!("K{}", (row - 2) % 7)), row),
                None
            );
        }
        match seen {
            SeenKeys::Logged(log) => log,
            _ => unreachable!(),
        }
    }

    #[test]
    fn logged_keys_find_the_same_repeats_as_the_map_across_spilled_runs_and_parts() {
        // Two parts of a 40-row file, runs of 3 keys: 13 and 7 runs, most of them spilled.
        let repeats = KeyLog::repeats(vec![logged(2..40, 3), logged(40..42, 3)]).expect("merge");
        let mut memory = SeenKeys::default();
        let mut expected = Repeats::new();
        for row in 2..42u64 {
            if let Some(first) = memory.repeat_of(key_hash(&format!("K{}", (row - 2) % 7)), row) {
                expected.insert(row, first);
            }
        }
        assert_eq!(expected.len(), 40 - 7);
        assert_eq!(expected[&9], 2);
        assert_eq!(expected[&41], 6);
        assert_eq!(repeats, expected);

        let mut known = SeenKeys::Known(Arc::new(repeats));
        assert_eq!(known.repeat_of(key_hash("K0"), 2), None);
        assert_eq!(known.repeat_of(key_hash("K0"), 9), Some(2));
    }

    #[test]
    fn distinct_keys_have_no_repeats() {
        let mut seen = SeenKeys::Logged(KeyLog::with_run_entries(4));
        for row in 2..30u64 {
            seen.repeat_of(key_hash(&format!("id{row}")), row);
        }
        let SeenKeys::Logged(log) = seen else {
            unreachable!()
        };
        assert!(KeyLog::repeats(vec![log]).expect("merge").is_empty());
    }
}
