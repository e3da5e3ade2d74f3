//! Council-supplied evidence (`reports/manual_evidence.toml`, ofsted.md §4.4): facts no
//! extract holds (an audit grade, parents on the advisory board), each with an explicit
//! mapping from its value to a grade and its own wording. Each item joins a key judgement of
//! the rubric like a metric and is labelled "council-supplied evidence" in the report.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use super::rubric::{Direction, Entry, Judgement, Mode, Reading, Rubric, Wording};

/// Metric ids of council-supplied items start with this.
pub const PREFIX: &str = "MANUAL:";

/// The file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ManualEvidence {
    #[serde(default)]
    pub item: Vec<Item>,
}

/// One kind of evidence and its value for each centre or group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    /// `access`, `quality` or `leadership`.
    pub judgement: String,
    pub label: String,
    pub weight: f64,
    /// Value as written under `values` → grade 1–4.
    pub grades: BTreeMap<String, u8>,
    /// Sentences; `{evidence}` is the value as written, `{unit}` the centre or group.
    pub wording: Wording,
    /// Centre or group id → value.
    pub values: BTreeMap<String, String>,
}

impl ManualEvidence {
    /// Reads the file if it exists; an absent file is no evidence.
    pub fn load(path: &Path) -> Result<ManualEvidence> {
        if !path.exists() {
            return Ok(ManualEvidence::default());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let evidence: ManualEvidence =
            toml::from_str(&text).with_context(|| format!("{}: invalid", path.display()))?;
        for item in &evidence.item {
            if !["access", "quality", "leadership"].contains(&item.judgement.as_str()) {
                bail!(
                    "{}: item {:?}: judgement {:?} is not access, quality or leadership",
                    path.display(),
                    item.id,
                    item.judgement
                );
            }
            if let Some(bad) = item.grades.values().find(|g| !(1..=4).contains(*g)) {
                bail!(
                    "{}: item {:?}: grade {bad} is not 1–4",
                    path.display(),
                    item.id
                );
            }
            for (unit, value) in &item.values {
                if !item.grades.contains_key(value) {
                    bail!(
                        "{}: item {:?}: {unit} has value {value:?}, which has no grade under \
                         [item.grades] (have: {})",
                        path.display(),
                        item.id,
                        item.grades.keys().cloned().collect::<Vec<_>>().join(", ")
                    );
                }
            }
        }
        Ok(evidence)
    }

    /// The rubric with one entry per item added to its judgement: x is the mapped grade and
    /// the thresholds 1, 2, 3 (lower is better) give that grade back.
    pub fn extend(&self, rubric: &Rubric) -> Rubric {
        let mut out = rubric.clone();
        for item in &self.item {
            let judgement = match item.judgement.as_str() {
                "access" => Judgement::AccessToServices,
                "quality" => Judgement::QualityOfPracticeAndServices,
                _ => Judgement::LeadershipGovernanceManagement,
            };
            let entry = Entry {
                metric: format!("{PREFIX}{}", item.id),
                breakdown: "all".into(),
                mode: Mode::Absolute,
                comparator: None,
                direction: Direction::Lower,
                thresholds: [1.0, 2.0, 3.0],
                weight: item.weight,
                cap: false,
            };
            out.wording.insert(entry.key(), item.wording.clone());
            if let Some((_, list)) = out.entries.iter_mut().find(|(j, _)| *j == judgement) {
                list.push(entry);
            }
        }
        out
    }

    /// Readings of every item for one centre or group id.
    pub fn readings(&self, unit_id: &str) -> BTreeMap<String, Reading> {
        self.item
            .iter()
            .filter_map(|item| {
                let value = item.values.get(unit_id)?;
                let grade = *item.grades.get(value)?;
                Some((
                    format!("{PREFIX}{}/all", item.id),
                    Reading {
                        value: Some(f64::from(grade)),
                        ..Reading::default()
                    },
                ))
            })
            .collect()
    }

    /// The item's label and value as written for a unit (for sentences and the evidence table).
    pub fn describe(&self, metric: &str, unit_id: &str) -> Option<(String, Option<String>)> {
        let id = metric.strip_prefix(PREFIX)?;
        let item = self.item.iter().find(|i| i.id == id)?;
        Some((item.label.clone(), item.values.get(unit_id).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::rubric::{Grade, evaluate};

    const FILE: &str = r#"
[[item]]
id = "safeguarding_audit"
judgement = "leadership"
label = "Safeguarding audit"
weight = 1.0
grades = { "outstanding" = 1, "good" = 2, "requires improvement" = 3, "inadequate" = 4 }
values = { CC000 = "good", CC001 = "inadequate" }
[item.wording]
strength = "The council's safeguarding audit found the {unit}'s practice {evidence}."
weakness = "The council's safeguarding audit found the {unit}'s practice {evidence}."
weakness_suppressed = "The council's safeguarding audit found weaknesses."
action = "Act on the safeguarding audit's findings."
"#;

    #[test]
    fn an_item_grades_its_judgement_like_a_metric() {
        let dir = tempfile_dir();
        let path = dir.join("manual_evidence.toml");
        std::fs::write(&path, FILE).unwrap();
        let evidence = ManualEvidence::load(&path).unwrap();
        let rubric = evidence.extend(
            &Rubric::load(
                &Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/ofsted_rubric.toml"),
            )
            .unwrap(),
        );
        let mut readings = evidence.readings("CC001");
        readings.insert(
            "DQ-01/all".into(),
            Reading {
                value: Some(99.0),
                denominator: Some(100.0),
                ..Reading::default()
            },
        );
        let e = evaluate(&rubric, &readings);
        // DQ-01 outstanding (1) and the audit inadequate (4): a 4 in leadership.
        let leadership = &e.judgements[2];
        assert_eq!(leadership.mean, Some(2.5));
        assert_eq!(leadership.grade, Some(Grade::RequiresImprovement));
        assert_eq!(
            evidence.describe("MANUAL:safeguarding_audit", "CC000"),
            Some(("Safeguarding audit".into(), Some("good".into())))
        );
        assert!(evidence.readings("CC404").is_empty());
        // A value without a grade is refused when the file loads.
        std::fs::write(
            &path,
            FILE.replace("CC001 = \"inadequate\"", "CC001 = \"poor\""),
        )
        .unwrap();
        let err = format!("{:#}", ManualEvidence::load(&path).unwrap_err());
        assert!(err.contains("\"poor\", which has no grade"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("earlystart-evidence-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
