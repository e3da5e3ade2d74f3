//! Linkage quality against ground truth (synthetic data only): pairwise precision and
//! recall of the `person_link` components.
//!
//! A pair of records is *predicted* linked when they share a `child_key`, and *truly*
//! linked when they belong to the same child. Precision = true links found ÷ links made;
//! recall = true links found ÷ true links. Counted from cluster sizes, so county-scale
//! data needs no pair enumeration.

use std::collections::HashMap;
use std::hash::Hash;

/// Pairwise linkage quality.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// Records that have both a predicted and a true identity.
    pub records: usize,
    /// Share of predicted links that are true (1.0 when no link was made).
    pub precision: f64,
    /// Share of true links that were made (1.0 when there are none).
    pub recall: f64,
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Scores `predicted` (record → component) against `truth` (record → true person).
/// Records missing from either side are left out.
pub fn score<R: Eq + Hash, C: Eq + Hash, T: Eq + Hash>(
    predicted: impl IntoIterator<Item = (R, C)>,
    truth: &HashMap<R, T>,
) -> Quality {
    let mut cells: HashMap<(C, &T), u64> = HashMap::new();
    let mut records = 0;
    for (record, component) in predicted {
        if let Some(t) = truth.get(&record) {
            records += 1;
            *cells.entry((component, t)).or_insert(0) += 1;
        }
    }
    let (mut by_component, mut by_person): (HashMap<&C, u64>, HashMap<&T, u64>) =
        Default::default();
    let mut found = 0;
    for ((c, t), n) in &cells {
        *by_component.entry(c).or_insert(0) += n;
        *by_person.entry(*t).or_insert(0) += n;
        found += pairs(*n);
    }
    let made: u64 = by_component.values().map(|n| pairs(*n)).sum();
    let real: u64 = by_person.values().map(|n| pairs(*n)).sum();
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    Quality {
        records,
        precision: ratio(found, made),
        recall: ratio(found, real),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_precision_and_recall() {
        // Truth: a,b,c are person 1; d,e person 2. Predicted: {a,b} {c} {d,e} + a false
        // merge of f (person 3) into {d,e}.
        let truth: HashMap<&str, u32> =
            [("a", 1), ("b", 1), ("c", 1), ("d", 2), ("e", 2), ("f", 3)].into();
        let predicted = [
            ("a", 10),
            ("b", 10),
            ("c", 11),
            ("d", 12),
            ("e", 12),
            ("f", 12),
            ("z", 13),
        ];
        let q = score(predicted, &truth);
        // True links: ab ac bc de = 4. Made: ab, de df ef = 4. Found: ab, de = 2.
        assert_eq!(q.records, 6);
        assert_eq!((q.precision, q.recall), (0.5, 0.5));
        let none = score([("a", 1)], &truth);
        assert_eq!((none.precision, none.recall), (1.0, 1.0));
    }
}
