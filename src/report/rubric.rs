//! The self-evaluation rubric of shared/domain/ofsted.md §4: grading one metric, the three key
//! judgements, overall effectiveness, and the findings and actions they generate.
//!
//! The rubric is data (`reports/ofsted_rubric.toml`, council-editable); this module only
//! applies it. Grades and judgements are structural, so they are enums.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

/// The four-point scale, printed as word then number ("Requires improvement 3").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Grade {
    Outstanding = 1,
    Good = 2,
    RequiresImprovement = 3,
    Inadequate = 4,
}

impl Grade {
    /// The grade numbered 1–4 (values outside are clamped).
    pub fn from_number(n: i64) -> Grade {
        match n {
            i64::MIN..=1 => Grade::Outstanding,
            2 => Grade::Good,
            3 => Grade::RequiresImprovement,
            _ => Grade::Inadequate,
        }
    }

    /// 1 (outstanding) … 4 (inadequate).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The grade's words.
    pub fn word(self) -> &'static str {
        match self {
            Grade::Outstanding => "Outstanding",
            Grade::Good => "Good",
            Grade::RequiresImprovement => "Requires improvement",
            Grade::Inadequate => "Inadequate",
        }
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.word(), self.number())
    }
}

/// The three key judgements (ofsted.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Judgement {
    AccessToServices,
    QualityOfPracticeAndServices,
    LeadershipGovernanceManagement,
}

impl Judgement {
    /// In rubric order.
    pub const ALL: [Judgement; 3] = [
        Judgement::AccessToServices,
        Judgement::QualityOfPracticeAndServices,
        Judgement::LeadershipGovernanceManagement,
    ];

    /// The judgement as worded in the report.
    pub fn title(self) -> &'static str {
        match self {
            Judgement::AccessToServices => "Access to services by young children and families",
            Judgement::QualityOfPracticeAndServices => "The quality of practice and services",
            Judgement::LeadershipGovernanceManagement => {
                "The effectiveness of leadership, governance and management"
            }
        }
    }

    /// Short lower-case name used in sentences and in the TOML.
    pub fn key(self) -> &'static str {
        match self {
            Judgement::AccessToServices => "access",
            Judgement::QualityOfPracticeAndServices => "quality",
            Judgement::LeadershipGovernanceManagement => "leadership",
        }
    }
}

/// How a metric becomes the number x that is compared with the thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Absolute,
    GapToComparator,
    RatioToComparator,
}

/// Whether a larger x is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
}

/// Which comparator a relative entry uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComparatorKind {
    La,
    England,
}

/// One rubric entry: a metric and breakdown, how to grade it, and its weight.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub metric: String,
    pub breakdown: String,
    pub mode: Mode,
    #[serde(default)]
    pub comparator: Option<ComparatorKind>,
    pub direction: Direction,
    /// [outstanding, good, requires improvement].
    pub thresholds: [f64; 3],
    pub weight: f64,
    #[serde(default)]
    pub cap: bool,
}

impl Entry {
    /// `METRIC/breakdown`, the key of the entry's wording.
    pub fn key(&self) -> String {
        format!("{}/{}", self.metric, self.breakdown)
    }
}

/// The sentences of one entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Wording {
    pub strength: String,
    pub weakness: String,
    pub weakness_suppressed: String,
    pub action: String,
}

/// The sentences that open the summary of findings.
#[derive(Debug, Clone, Deserialize)]
pub struct Opening {
    #[serde(rename = "1")]
    pub outstanding: String,
    #[serde(rename = "2")]
    pub good: String,
    #[serde(rename = "3")]
    pub requires_improvement: String,
    #[serde(rename = "4")]
    pub inadequate: String,
    pub strengths: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RubricFile {
    rubric: Settings,
    overall: OverallSettings,
    judgements: JudgementEntries,
    wording: BTreeMap<String, toml::Value>,
}

/// The `[rubric]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub version: String,
    pub confirmed: bool,
    pub min_denominator: u64,
    pub min_graded_metrics: usize,
    pub rounding: String,
    pub outstanding_requires_significance: bool,
    pub max_strengths: usize,
    pub max_weaknesses: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverallSettings {
    leadership_slack: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct JudgementEntries {
    access: Vec<Entry>,
    quality: Vec<Entry>,
    leadership: Vec<Entry>,
}

/// A loaded, checked rubric.
#[derive(Debug, Clone)]
pub struct Rubric {
    pub settings: Settings,
    pub leadership_slack: i64,
    /// Entries per judgement, in rubric order.
    pub entries: Vec<(Judgement, Vec<Entry>)>,
    pub opening: Opening,
    pub wording: BTreeMap<String, Wording>,
}

impl Rubric {
    /// Reads `path` and checks it: monotonic thresholds, a comparator for relative modes, and
    /// wording for every entry.
    pub fn load(path: &Path) -> Result<Rubric> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the rubric {}", path.display()))?;
        Rubric::parse(&text).with_context(|| format!("{}: invalid rubric", path.display()))
    }

    /// Parses and checks rubric TOML.
    pub fn parse(text: &str) -> Result<Rubric> {
        let file: RubricFile = toml::from_str(text)?;
        if file.rubric.rounding != "half_toward_worse" {
            bail!(
                "rounding {:?} is not supported (only \"half_toward_worse\")",
                file.rubric.rounding
            );
        }
        let mut wording = BTreeMap::new();
        let mut opening = None;
        for (key, value) in file.wording {
            if key == "opening" {
                opening = Some(
                    value
                        .try_into::<Opening>()
                        .context("[wording.opening] needs keys 1, 2, 3, 4 and strengths")?,
                );
            } else {
                let w: Wording = value.try_into().with_context(|| {
                    format!(
                        "[wording.\"{key}\"] needs strength, weakness, weakness_suppressed and action"
                    )
                })?;
                wording.insert(key, w);
            }
        }
        let opening = opening.context("missing [wording.opening]")?;
        let entries = vec![
            (Judgement::AccessToServices, file.judgements.access),
            (
                Judgement::QualityOfPracticeAndServices,
                file.judgements.quality,
            ),
            (
                Judgement::LeadershipGovernanceManagement,
                file.judgements.leadership,
            ),
        ];
        for (judgement, list) in &entries {
            for e in list {
                let [o, g, r] = e.thresholds;
                let monotonic = match e.direction {
                    Direction::Higher => o >= g && g >= r,
                    Direction::Lower => o <= g && g <= r,
                };
                if !monotonic {
                    bail!(
                        "{} entry {}: thresholds {:?} are not monotonic for direction {:?}",
                        judgement.key(),
                        e.key(),
                        e.thresholds,
                        e.direction
                    );
                }
                if e.mode != Mode::Absolute && e.comparator.is_none() {
                    bail!(
                        "{} entry {}: mode {:?} needs comparator = \"la\" or \"england\"",
                        judgement.key(),
                        e.key(),
                        e.mode
                    );
                }
                if e.weight <= 0.0 {
                    bail!(
                        "{} entry {}: weight must be positive",
                        judgement.key(),
                        e.key()
                    );
                }
                if !wording.contains_key(&e.key()) {
                    bail!(
                        "{} entry {} has no wording: add [wording.\"{}\"] with strength, weakness, \
                         weakness_suppressed and action",
                        judgement.key(),
                        e.key(),
                        e.key()
                    );
                }
            }
        }
        Ok(Rubric {
            settings: file.rubric,
            leadership_slack: file.overall.leadership_slack,
            entries,
            opening,
            wording,
        })
    }

    /// Every entry with its judgement, in rubric order.
    pub fn all_entries(&self) -> impl Iterator<Item = (Judgement, &Entry)> {
        self.entries
            .iter()
            .flat_map(|(j, list)| list.iter().map(move |e| (*j, e)))
    }
}

/// Whether a comparison came out significantly better, worse or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Significance {
    Better,
    Similar,
    Worse,
    NotCompared,
}

/// A metric's figures for one unit and period, after disclosure control.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub value: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    /// The comparator the entry names (LA or England value).
    pub comparator: Option<f64>,
    /// The comparison against that comparator, read for the metric's polarity.
    pub significance: Option<Significance>,
    /// Disclosure control hid the value (or a count it rests on).
    pub suppressed: bool,
    /// Quality flags that forbid grading (`low_coverage`).
    pub low_coverage: bool,
}

/// The outcome of grading one entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum MetricGrade {
    Graded { grade: Grade, x: f64 },
    NotGraded { reason: String },
}

impl MetricGrade {
    /// The grade when graded.
    pub fn grade(&self) -> Option<Grade> {
        match self {
            MetricGrade::Graded { grade, .. } => Some(*grade),
            MetricGrade::NotGraded { .. } => None,
        }
    }
}

/// Grades one entry (§4.1).
pub fn grade_metric(settings: &Settings, entry: &Entry, reading: &Reading) -> MetricGrade {
    let not = |reason: &str| MetricGrade::NotGraded {
        reason: reason.to_string(),
    };
    if reading.suppressed {
        return not("suppressed by disclosure control");
    }
    let Some(value) = reading.value else {
        return not("no value for this period");
    };
    if reading.low_coverage {
        return not("data coverage too low (low_coverage)");
    }
    if let Some(d) = reading.denominator
        && d < settings.min_denominator as f64
    {
        return not(&format!(
            "denominator {d} is below the minimum of {}",
            settings.min_denominator
        ));
    }
    let x = match entry.mode {
        Mode::Absolute => value,
        Mode::GapToComparator | Mode::RatioToComparator => {
            let Some(c) = reading.comparator else {
                return not("no comparator value");
            };
            if entry.mode == Mode::GapToComparator {
                value - c
            } else if c == 0.0 {
                return not("the comparator is zero");
            } else {
                value / c
            }
        }
    };
    let [o, g, r] = entry.thresholds;
    let mut grade = match entry.direction {
        Direction::Higher if x >= o => Grade::Outstanding,
        Direction::Higher if x >= g => Grade::Good,
        Direction::Higher if x >= r => Grade::RequiresImprovement,
        Direction::Lower if x <= o => Grade::Outstanding,
        Direction::Lower if x <= g => Grade::Good,
        Direction::Lower if x <= r => Grade::RequiresImprovement,
        _ => Grade::Inadequate,
    };
    if grade == Grade::Outstanding
        && settings.outstanding_requires_significance
        && entry.comparator.is_some()
        && reading.significance != Some(Significance::Better)
    {
        grade = Grade::Good;
    }
    MetricGrade::Graded { grade, x }
}

/// One graded (or not) entry inside a judgement.
#[derive(Debug, Clone, Serialize)]
pub struct GradedEntry {
    pub judgement: Judgement,
    pub entry: Entry,
    pub result: MetricGrade,
    /// Position in the rubric (for ordering findings).
    pub order: usize,
}

/// A key judgement: its grade, or `None` for insufficient evidence.
#[derive(Debug, Clone, Serialize)]
pub struct JudgementResult {
    pub judgement: Judgement,
    pub grade: Option<Grade>,
    /// The weighted mean before rounding and caps.
    pub mean: Option<f64>,
    pub entries: Vec<GradedEntry>,
}

/// Everything the rubric decides for one unit and period.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub overall: Option<Grade>,
    pub judgements: Vec<JudgementResult>,
    /// Weakness bullets (entries), worst first.
    pub weaknesses: Vec<GradedEntry>,
    /// Strength bullets (entries), best first.
    pub strengths: Vec<GradedEntry>,
    /// Judgements with insufficient evidence, with their ungraded metric keys.
    pub insufficient: Vec<(Judgement, Vec<String>)>,
}

/// Applies the rubric to the readings (keyed by `METRIC/breakdown`).
pub fn evaluate(rubric: &Rubric, readings: &BTreeMap<String, Reading>) -> Evaluation {
    let s = &rubric.settings;
    let mut judgements = Vec::new();
    let mut order = 0;
    for (judgement, list) in &rubric.entries {
        let mut entries = Vec::new();
        for entry in list {
            let reading = readings.get(&entry.key()).cloned().unwrap_or_default();
            entries.push(GradedEntry {
                judgement: *judgement,
                entry: entry.clone(),
                result: grade_metric(s, entry, &reading),
                order,
            });
            order += 1;
        }
        let graded: Vec<(&Entry, Grade)> = entries
            .iter()
            .filter_map(|g| g.result.grade().map(|grade| (&g.entry, grade)))
            .collect();
        let (grade, mean) = if graded.len() < s.min_graded_metrics.max(1) {
            (None, None)
        } else {
            let weight: f64 = graded.iter().map(|(e, _)| e.weight).sum();
            let mean = graded
                .iter()
                .map(|(e, g)| e.weight * g.number() as f64)
                .sum::<f64>()
                / weight;
            // Halves toward the worse (numerically larger) grade: 2.5 → 3. The small epsilon
            // keeps 2.4999999 from float sums of halves on the right side.
            let mut grade = Grade::from_number((mean + 0.5 + 1e-9).floor() as i64);
            for (e, g) in &graded {
                if e.cap {
                    grade = grade.max(*g);
                }
            }
            (Some(grade), Some(mean))
        };
        judgements.push(JudgementResult {
            judgement: *judgement,
            grade,
            mean,
            entries,
        });
    }
    let grade_of = |j: Judgement| {
        judgements
            .iter()
            .find(|r| r.judgement == j)
            .and_then(|r| r.grade)
    };
    let overall = match (
        grade_of(Judgement::AccessToServices),
        grade_of(Judgement::QualityOfPracticeAndServices),
        grade_of(Judgement::LeadershipGovernanceManagement),
    ) {
        (Some(a), Some(q), Some(l)) => Some(if [a, q, l].contains(&Grade::Inadequate) {
            Grade::Inadequate
        } else {
            let leadership = l.number() as i64 - rubric.leadership_slack;
            Grade::from_number((a.number() as i64).max(q.number() as i64).max(leadership))
        }),
        _ => None,
    };

    let graded: Vec<(&GradedEntry, Grade)> = judgements
        .iter()
        .flat_map(|j| &j.entries)
        .filter_map(|g| g.result.grade().map(|grade| (g, grade)))
        .collect();
    let weakness_floor = overall.map_or(3, |o| o.number().min(3));
    let mut weaknesses: Vec<&(&GradedEntry, Grade)> = if overall == Some(Grade::Outstanding) {
        Vec::new()
    } else {
        graded
            .iter()
            .filter(|(_, g)| g.number() >= weakness_floor)
            .collect()
    };
    weaknesses.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(b.0.entry.weight.total_cmp(&a.0.entry.weight))
            .then(a.0.order.cmp(&b.0.order))
    });
    let mut strengths: Vec<&(&GradedEntry, Grade)> =
        graded.iter().filter(|(_, g)| g.number() <= 2).collect();
    strengths.sort_by(|a, b| {
        a.1.cmp(&b.1)
            .then(b.0.entry.weight.total_cmp(&a.0.entry.weight))
            .then(a.0.order.cmp(&b.0.order))
    });
    let insufficient = judgements
        .iter()
        .filter(|j| j.grade.is_none())
        .map(|j| {
            let ungraded = j
                .entries
                .iter()
                .filter(|g| g.result.grade().is_none())
                .map(|g| g.entry.key())
                .collect();
            (j.judgement, ungraded)
        })
        .collect();
    Evaluation {
        overall,
        weaknesses: weaknesses
            .into_iter()
            .take(s.max_weaknesses)
            .map(|(g, _)| (*g).clone())
            .collect(),
        strengths: strengths
            .into_iter()
            .take(s.max_strengths)
            .map(|(g, _)| (*g).clone())
            .collect(),
        judgements,
        insufficient,
    }
}

/// Fills `{name}` placeholders; `None` when a placeholder is unknown or hidden (so the caller
/// can use the wording without numbers).
pub fn fill(template: &str, values: &BTreeMap<&str, Option<String>>) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let name = &rest[start + 1..end];
        out.push_str(values.get(name)?.as_deref()?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Rubric {
        Rubric::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/ofsted_rubric.toml"))
            .unwrap()
    }

    fn reading(value: f64, comparator: Option<f64>) -> Reading {
        Reading {
            value: Some(value),
            denominator: Some(100.0),
            comparator,
            significance: Some(Significance::Similar),
            ..Reading::default()
        }
    }

    /// ofsted.md §4.6, the worked example, on the shipped default rubric.
    #[test]
    fn worked_example() {
        let rubric = shipped();
        let readings: BTreeMap<String, Reading> = [
            ("REACH-01/all", reading(84.0, None)),
            ("REACH-01/deprivation=most_deprived_30", reading(72.0, None)),
            ("REACH-02/all", reading(58.0, None)),
            ("REACH-04/target_group=any", reading(38.0, None)),
            ("REACH-05/all", reading(30.0, None)),
            ("SR-06/all", reading(86.0, Some(83.0))),
            ("SR-10/all", reading(66.0, Some(65.0))),
            ("SR-12/all", reading(15.0, Some(18.0))),
            ("HV-09/all", reading(41.0, Some(48.0))),
            ("DQ-01/all", reading(91.0, None)),
            ("VFM-03/all", reading(1900.0, Some(2000.0))),
            ("KPI-SCORE/all", reading(80.0, None)),
        ]
        .into_iter()
        .map(|(k, r)| (k.to_string(), r))
        .collect();
        let e = evaluate(&rubric, &readings);
        let grades: Vec<Option<u8>> = e
            .judgements
            .iter()
            .map(|j| j.grade.map(Grade::number))
            .collect();
        assert_eq!(grades, [Some(3), Some(2), Some(2)]);
        let means: Vec<f64> = e.judgements.iter().map(|j| j.mean.unwrap()).collect();
        assert!((means[0] - 18.0 / 7.0).abs() < 1e-12);
        assert!((means[1] - 14.0 / 6.0).abs() < 1e-12);
        assert_eq!(e.overall, Some(Grade::RequiresImprovement));
        let keys = |list: &[GradedEntry]| list.iter().map(|g| g.entry.key()).collect::<Vec<_>>();
        assert_eq!(
            keys(&e.weaknesses),
            [
                "HV-09/all",
                "REACH-01/deprivation=most_deprived_30",
                "REACH-04/target_group=any"
            ]
        );
        assert_eq!(
            keys(&e.strengths),
            [
                "SR-06/all",
                "SR-10/all",
                "REACH-01/all",
                "REACH-02/all",
                "REACH-05/all"
            ]
        );
        assert!(e.insufficient.is_empty());
    }

    fn entry(direction: Direction, mode: Mode) -> Entry {
        Entry {
            metric: "M".into(),
            breakdown: "all".into(),
            mode,
            comparator: (mode != Mode::Absolute).then_some(ComparatorKind::La),
            direction,
            thresholds: match direction {
                Direction::Higher => [90.0, 80.0, 65.0],
                Direction::Lower => [20.0, 35.0, 50.0],
            },
            weight: 1.0,
            cap: false,
        }
    }

    #[test]
    fn every_grade_boundary() {
        let s = shipped().settings;
        let g = |e: &Entry, r: Reading| grade_metric(&s, e, &r).grade().map(Grade::number);
        let higher = entry(Direction::Higher, Mode::Absolute);
        for (x, want) in [
            (90.0, 1),
            (89.99, 2),
            (80.0, 2),
            (79.99, 3),
            (65.0, 3),
            (64.99, 4),
        ] {
            assert_eq!(g(&higher, reading(x, None)), Some(want), "higher {x}");
        }
        let lower = entry(Direction::Lower, Mode::Absolute);
        for (x, want) in [
            (20.0, 1),
            (20.01, 2),
            (35.0, 2),
            (35.01, 3),
            (50.0, 3),
            (50.01, 4),
        ] {
            assert_eq!(g(&lower, reading(x, None)), Some(want), "lower {x}");
        }
        // Gap and ratio modes, and outstanding only when significantly better.
        let mut gap = entry(Direction::Higher, Mode::GapToComparator);
        gap.thresholds = [5.0, 0.0, -5.0];
        assert_eq!(
            g(&gap, reading(60.0, Some(55.0))),
            Some(2),
            "not significant"
        );
        let mut better = reading(60.0, Some(55.0));
        better.significance = Some(Significance::Better);
        assert_eq!(g(&gap, better), Some(1));
        assert_eq!(g(&gap, reading(54.99, Some(60.0))), Some(4));
        let mut ratio = entry(Direction::Lower, Mode::RatioToComparator);
        ratio.thresholds = [0.8, 1.0, 1.25];
        assert_eq!(g(&ratio, reading(1250.0, Some(1000.0))), Some(3));
        assert_eq!(g(&ratio, reading(1251.0, Some(1000.0))), Some(4));
    }

    #[test]
    fn not_graded_reasons() {
        let s = shipped().settings;
        let e = entry(Direction::Higher, Mode::Absolute);
        let reason = |r: Reading| match grade_metric(&s, &e, &r) {
            MetricGrade::NotGraded { reason } => reason,
            other => panic!("graded: {other:?}"),
        };
        let mut small = reading(95.0, None);
        small.denominator = Some(9.0);
        assert!(reason(small).contains("below the minimum of 10"));
        let mut hidden = reading(95.0, None);
        hidden.suppressed = true;
        assert!(reason(hidden).contains("suppressed"));
        let mut coverage = reading(95.0, None);
        coverage.low_coverage = true;
        assert!(reason(coverage).contains("low_coverage"));
        assert!(reason(Reading::default()).contains("no value"));
        let gap = entry(Direction::Higher, Mode::GapToComparator);
        assert!(matches!(
            grade_metric(&s, &gap, &reading(50.0, None)),
            MetricGrade::NotGraded { .. }
        ));
    }

    #[test]
    fn insufficient_evidence_withholds_the_overall_grade() {
        let rubric = shipped();
        let readings: BTreeMap<String, Reading> = [
            ("REACH-01/all", reading(95.0, None)),
            ("REACH-02/all", reading(75.0, None)),
            ("DQ-01/all", reading(99.0, None)),
        ]
        .into_iter()
        .map(|(k, r)| (k.to_string(), r))
        .collect();
        let e = evaluate(&rubric, &readings);
        assert_eq!(e.judgements[0].grade, Some(Grade::Outstanding));
        assert_eq!(e.judgements[1].grade, None);
        assert_eq!(e.judgements[2].grade, None);
        assert_eq!(e.overall, None);
        assert_eq!(e.insufficient.len(), 2);
        assert_eq!(e.insufficient[1].1, ["VFM-03/all", "KPI-SCORE/all"]);
    }

    #[test]
    fn overall_rules() {
        // A 4 anywhere is inadequate; leadership slack lets good leadership allow outstanding.
        let mut rubric = shipped();
        rubric.settings.min_graded_metrics = 1;
        let one = |access: f64, leadership: f64| {
            let readings: BTreeMap<String, Reading> = [
                ("REACH-01/all", reading(access, None)),
                ("SR-06/all", {
                    let mut r = reading(90.0, Some(80.0));
                    r.significance = Some(Significance::Better);
                    r
                }),
                ("DQ-01/all", reading(leadership, None)),
            ]
            .into_iter()
            .map(|(k, r)| (k.to_string(), r))
            .collect();
            evaluate(&rubric, &readings).overall.map(Grade::number)
        };
        assert_eq!(
            one(95.0, 90.0),
            Some(1),
            "good leadership allows outstanding"
        );
        assert_eq!(one(95.0, 75.0), Some(2), "RI leadership caps at good");
        assert_eq!(one(95.0, 10.0), Some(4), "inadequate leadership");
        assert_eq!(one(70.0, 99.0), Some(3));
    }

    #[test]
    fn a_rubric_without_wording_or_with_bad_thresholds_is_refused() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/ofsted_rubric.toml"),
        )
        .unwrap();
        let bad = text.replacen(
            "thresholds = [90.0, 80.0, 65.0]",
            "thresholds = [80.0, 90.0, 65.0]",
            1,
        );
        let err = format!("{:#}", Rubric::parse(&bad).unwrap_err());
        assert!(err.contains("not monotonic"), "{err}");
        let unworded = text.replace("[wording.\"REACH-02/all\"]", "[wording.\"REACH-02/other\"]");
        let err = format!("{:#}", Rubric::parse(&unworded).unwrap_err());
        assert!(err.contains("REACH-02/all has no wording"), "{err}");
    }

    #[test]
    fn fill_placeholders() {
        let values: BTreeMap<&str, Option<String>> =
            [("value", Some("72.0".to_string())), ("comparator", None)]
                .into_iter()
                .collect();
        assert_eq!(
            fill("Only {value}% registered.", &values).unwrap(),
            "Only 72.0% registered."
        );
        assert_eq!(fill("{value} vs {comparator}", &values), None);
        assert_eq!(fill("{unknown}", &values), None);
    }
}
