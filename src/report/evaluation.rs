//! The children's centre self-evaluation (shared/domain/ofsted.md §3): for one unit (a centre's
//! reach area, or the whole council) and one financial year, everything the template prints.
//!
//! Order of work: controlled figures ([`Figures`]) → rubric readings → grades for this and
//! the previous year → findings, actions and evidence → profile and charts. Every number in
//! the context has passed disclosure control; the template only lays it out.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::charts::{self, Chart, RankedBar, Series};
use super::data::{ActivityCount, CatalogueRow, CentreRow, DecileRow, SourceLoad};
use super::disclosure::{Cell, Policy, Shown, Table, group_thousands};
use super::figures::{DEPLOYMENT, Figure, Figures, comparison};
use super::rubric::{
    ComparatorKind, Evaluation, Grade, GradedEntry, Judgement, JudgementResult, MetricGrade,
    Reading, Rubric, Significance, evaluate, fill,
};

/// Whose evaluation it is.
#[derive(Debug, Clone, Serialize)]
pub struct Unit {
    /// `centre`, `group` or `la`.
    pub kind: String,
    /// Geography code among the figures (centre id, `group:<id>`, or `ALL`).
    pub code: String,
    pub name: String,
    /// The word used in sentences: "centre", "group" or "local authority".
    pub word: String,
    pub centre: Option<CentreRow>,
    /// A group's member centres.
    pub members: Vec<CentreRow>,
}

impl Unit {
    /// The id council-supplied evidence is keyed by: the centre or group id, `council`.
    pub fn evidence_id(&self) -> &str {
        match self.kind.as_str() {
            "la" => "council",
            _ => self.code.strip_prefix("group:").unwrap_or(&self.code),
        }
    }

    /// The reach areas (centre ids) the unit covers; empty for the whole council.
    pub fn areas(&self) -> Vec<&str> {
        match self.kind.as_str() {
            "centre" => vec![self.code.as_str()],
            "group" => self.members.iter().map(|c| c.centre_id.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

/// A financial year.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Period {
    /// `2024-25`.
    pub label: String,
    pub start: String,
    pub end: String,
}

impl Period {
    /// The financial year ending on `end` (YYYY-03-31).
    pub fn fy_ending(end: &str) -> Option<Period> {
        let year: i32 = end.get(0..4)?.parse().ok()?;
        Some(Period {
            label: format!("{}-{:02}", year - 1, year % 100),
            start: format!("{}-04-01", year - 1),
            end: end.to_string(),
        })
    }

    /// `2024-25` → the year 2024-04-01 … 2025-03-31.
    pub fn parse(label: &str) -> Option<Period> {
        let (a, b) = label.split_once('-')?;
        let start: i32 = a.parse().ok()?;
        let end: i32 = b.parse().ok()?;
        if a.len() != 4 || b.len() != 2 || (start + 1) % 100 != end {
            return None;
        }
        Period::fy_ending(&format!("{}-03-31", start + 1))
    }

    fn previous(&self) -> Option<Period> {
        let year: i32 = self.end.get(0..4)?.parse().ok()?;
        Period::fy_ending(&format!("{}-03-31", year - 1))
    }
}

/// Everything one evaluation template receives.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationContext {
    pub council_name: String,
    pub unit: Unit,
    pub period: Period,
    pub previous_period: Option<Period>,
    pub statement: String,
    pub disclosure: DisclosureView,
    pub grades: Vec<GradeRow>,
    pub overall: GradeRow,
    pub findings: Findings,
    pub actions: Vec<String>,
    pub judgements: Vec<JudgementSection>,
    pub profile: Profile,
    pub about: About,
    pub charts: ChartSet,
    pub rubric: RubricView,
    /// For a group: each member centre's values of the rubric's measures (no grades).
    pub appendix: Appendix,
    /// The latest real Ofsted inspection up to the period end, shown apart from our grades.
    pub ofsted: Option<OfstedView>,
}

/// A real Ofsted inspection as printed (ofsted.md §3.2).
#[derive(Debug, Clone, Serialize)]
pub struct OfstedView {
    pub date: String,
    pub urn: String,
    pub overall: Option<GradeView>,
    pub access: Option<GradeView>,
    pub quality: Option<GradeView>,
    pub leadership: Option<GradeView>,
    pub source_url: String,
}

/// The member centres of a group (columns) and their values of each measure (ofsted.md §3.2).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Appendix {
    pub columns: Vec<String>,
    pub rows: Vec<AppendixRow>,
}

/// One measure's values at each member centre.
#[derive(Debug, Clone, Serialize)]
pub struct AppendixRow {
    pub measure: String,
    pub breakdown: String,
    pub values: Vec<String>,
}

/// The policy used and what the reader must be told about it.
#[derive(Debug, Clone, Serialize)]
pub struct DisclosureView {
    pub audience: String,
    pub policies: Vec<String>,
    pub footnotes: Vec<String>,
    /// The "INTERNAL – NOT FOR PUBLICATION" banner when a policy is `none`.
    pub banner: Option<String>,
}

/// A grade as printed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GradeView {
    pub word: String,
    pub number: u8,
    /// "Requires improvement 3".
    pub text: String,
}

impl GradeView {
    fn of(grade: Option<Grade>) -> Option<GradeView> {
        grade.map(|g| GradeView {
            word: g.word().into(),
            number: g.number(),
            text: g.to_string(),
        })
    }
}

/// One line of the grade table.
#[derive(Debug, Clone, Serialize)]
pub struct GradeRow {
    pub title: String,
    pub this: Option<GradeView>,
    pub previous: Option<GradeView>,
    /// "improved", "declined", "unchanged" or "" when either is missing.
    pub trend: String,
}

/// The summary of key findings.
#[derive(Debug, Clone, Serialize)]
pub struct Findings {
    pub opening: String,
    pub weaknesses: Vec<String>,
    pub strengths_heading: String,
    pub strengths: Vec<String>,
}

/// One key judgement's evidence.
#[derive(Debug, Clone, Serialize)]
pub struct JudgementSection {
    pub title: String,
    pub key: String,
    pub grade: Option<GradeView>,
    pub narrative: Vec<String>,
    pub evidence: Vec<EvidenceRow>,
}

/// One metric in a judgement's evidence table.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceRow {
    pub metric_id: String,
    pub name: String,
    pub breakdown: String,
    pub value: String,
    pub interval: String,
    pub numerator: String,
    pub denominator: String,
    pub la: String,
    pub england: String,
    pub comparison: String,
    pub grade: String,
    pub previous: String,
    pub flags: String,
}

/// "Information about the centre".
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub lsoas: String,
    pub under_fives: String,
    pub most_deprived_share: String,
    pub target_groups: Vec<(String, String)>,
    pub sites: Vec<CentreRow>,
    pub activities: Vec<(String, String, String)>,
}

/// "Information about this evaluation".
#[derive(Debug, Clone, Serialize)]
pub struct About {
    pub run_id: String,
    pub data_as_at: String,
    pub sources: Vec<SourceLoad>,
    pub denominator_source: String,
    pub deprivation_vintage: String,
    pub linkage: String,
    pub quarantined_rows: String,
    pub unverified: Vec<String>,
    pub not_assessed: Vec<String>,
}

/// The rubric as the report states it.
#[derive(Debug, Clone, Serialize)]
pub struct RubricView {
    pub version: String,
    pub confirmed: bool,
}

/// The charts of an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct ChartSet {
    pub funnel: Chart,
    pub deciles: Option<Chart>,
    pub trend: Option<Chart>,
    pub ranked: Chart,
}

/// What every evaluation of a run shares: figures for all units, reference rows.
pub struct Inputs<'a> {
    pub council_name: &'a str,
    pub audience: &'a str,
    pub rubric: &'a Rubric,
    pub catalogue: &'a [CatalogueRow],
    /// Financial-year figures (this and the previous year at least).
    pub fy: &'a Figures,
    /// Rolling 12-month figures (trend).
    pub rolling: &'a Figures,
    /// Rolling period ends in order, up to the evaluation period.
    pub rolling_ends: Vec<String>,
    pub centres: &'a [CentreRow],
    pub reach_area_sizes: &'a BTreeMap<String, u64>,
    pub deciles: &'a [DecileRow],
    pub activities: &'a [ActivityCount],
    pub sources: &'a [SourceLoad],
    pub target_group_labels: &'a BTreeMap<String, String>,
    pub policy_for_counts: Policy,
    pub confidence: f64,
    pub statement: String,
    pub footnotes: Vec<String>,
    pub policies: Vec<String>,
    /// Real Ofsted inspections (any unit).
    pub inspections: &'a [super::data::OfstedRow],
    /// Council-supplied evidence (its items are already entries of `rubric`).
    pub evidence: &'a super::evidence::ManualEvidence,
}

/// Ofsted's other evidence that our extracts do not hold (ofsted.md §1.3).
pub const NOT_ASSESSED: [&str; 6] = [
    "Reception-year obesity",
    "Take-up of funded early education (two-year-olds and three- and four-year-olds)",
    "Adult learning and employment progress",
    "Safeguarding practice and case work",
    "Governance and the advisory board",
    "Parents' views",
];

impl Inputs<'_> {
    fn polarity(&self, metric: &str) -> &str {
        self.catalogue
            .iter()
            .find(|c| c.metric_id == metric)
            .map_or("neutral", |c| c.polarity.as_str())
    }

    /// Whether the metric is a cost per person (numerator in pence, exempt from control).
    pub fn is_money(&self, metric: &str) -> bool {
        self.catalogue
            .iter()
            .any(|c| c.metric_id == metric && c.unit == "gbp_per_person")
    }

    fn metric_name(&self, metric: &str) -> String {
        self.catalogue
            .iter()
            .find(|c| c.metric_id == metric)
            .map_or_else(
                || match metric {
                    "KPI-SCORE" => "Contract KPIs met by the centre's lot (weighted)".to_string(),
                    _ => "not in the metric catalogue yet".to_string(),
                },
                |c| c.name.clone(),
            )
    }

    /// The comparator an entry uses for this unit: the LA value for a centre; for the whole
    /// council an `la` comparator falls back to England (it cannot be compared with itself).
    fn comparator(
        &self,
        unit: &Unit,
        kind: Option<ComparatorKind>,
        metric: &str,
        period_end: &str,
        breakdown: &str,
    ) -> (Option<f64>, &'static str) {
        let la = self.fy.get(metric, period_end, DEPLOYMENT, breakdown);
        let england = la.and_then(|f| f.england);
        match (kind, unit.kind.as_str()) {
            (Some(ComparatorKind::England), _) | (_, "la") => (england, "England"),
            _ => (la.and_then(Figure::value), "the local authority"),
        }
    }

    /// The rubric reading of one entry from controlled figures.
    fn reading(
        &self,
        unit: &Unit,
        kind: Option<ComparatorKind>,
        metric: &str,
        breakdown: &str,
        period_end: &str,
    ) -> Reading {
        let Some(f) = self.fy.get(metric, period_end, &unit.code, breakdown) else {
            return Reading::default();
        };
        let (comparator, _) = self.comparator(unit, kind, metric, period_end, breakdown);
        let significance = match comparison(f.interval(), comparator) {
            None => Significance::NotCompared,
            Some("similar") => Significance::Similar,
            Some(label) => {
                let higher = label == "significantly higher";
                match self.polarity(metric) {
                    "higher_is_better" if higher => Significance::Better,
                    "higher_is_better" => Significance::Worse,
                    "lower_is_better" if higher => Significance::Worse,
                    "lower_is_better" => Significance::Better,
                    _ => Significance::NotCompared,
                }
            }
        };
        Reading {
            value: f.value(),
            lower: f.interval().map(|i| i.0),
            upper: f.interval().map(|i| i.1),
            numerator: Figure::count(&f.numerator),
            denominator: Figure::count(&f.denominator),
            comparator,
            significance: Some(significance),
            suppressed: f.suppressed(),
            low_coverage: f
                .quality_flags
                .split(',')
                .any(|q| q.trim() == "low_coverage"),
        }
    }

    fn evaluate(&self, unit: &Unit, period: &Period) -> (Evaluation, BTreeMap<String, Reading>) {
        let mut readings = BTreeMap::new();
        for (_, entry) in self.rubric.all_entries() {
            let r = self.reading(
                unit,
                entry.comparator,
                &entry.metric,
                &entry.breakdown,
                &period.end,
            );
            readings.insert(entry.key(), r);
        }
        // Council-supplied evidence is given per centre or group id (not per year).
        readings.extend(self.evidence.readings(unit.evidence_id()));
        (evaluate(self.rubric, &readings), readings)
    }

    /// Builds the whole context for one unit and year.
    pub fn context(&self, unit: &Unit, period: &Period) -> Result<EvaluationContext> {
        let (this, readings) = self.evaluate(unit, period);
        let previous_period = period.previous().filter(|p| {
            self.fy
                .by_key
                .keys()
                .any(|k| k.1 == p.end && k.2 == unit.code)
        });
        let previous = previous_period.as_ref().map(|p| self.evaluate(unit, p).0);
        let (overall, grades) = grade_table(&this, previous.as_ref());
        let say = Sentences {
            inputs: self,
            unit,
            period,
            readings: &readings,
        };
        let judgements = this
            .judgements
            .iter()
            .map(|j| self.judgement_section(j, &say, previous_period.as_ref()))
            .collect();
        Ok(EvaluationContext {
            council_name: self.council_name.to_string(),
            unit: unit.clone(),
            period: period.clone(),
            previous_period: previous_period.clone(),
            statement: self.statement.clone(),
            disclosure: DisclosureView {
                audience: self.audience.to_string(),
                policies: self.policies.clone(),
                footnotes: self.footnotes.clone(),
                banner: self
                    .policies
                    .iter()
                    .any(|p| p == "none")
                    .then(|| super::disclosure::NOT_FOR_PUBLICATION.to_string()),
            },
            grades,
            overall,
            findings: self.findings(&this, &say),
            actions: actions(&this, &say),
            judgements,
            profile: self.profile(unit, period)?,
            about: self.about(unit, period),
            charts: self.charts(unit, period)?,
            rubric: RubricView {
                version: self.rubric.settings.version.clone(),
                confirmed: self.rubric.settings.confirmed,
            },
            appendix: self.appendix(unit, period),
            ofsted: self.ofsted(unit, period),
        })
    }

    /// The summary of key findings: the opening for the overall grade, then the weakness and
    /// strength bullets in the rubric's order (ofsted.md §4.5).
    fn findings(&self, this: &Evaluation, say: &Sentences<'_>) -> Findings {
        let opening = match this.overall {
            Some(Grade::Outstanding) => &self.rubric.opening.outstanding,
            Some(Grade::Good) => &self.rubric.opening.good,
            Some(Grade::RequiresImprovement) => &self.rubric.opening.requires_improvement,
            Some(Grade::Inadequate) => &self.rubric.opening.inadequate,
            None => {
                "The overall effectiveness of this {unit} cannot be graded from the data: \
                     there is not enough evidence for every key judgement. The weakest areas are:"
            }
        };
        let word = [("unit", Some(say.unit.word.clone()))]
            .into_iter()
            .collect();
        Findings {
            opening: fill(opening, &word).unwrap_or_default(),
            weaknesses: this
                .weaknesses
                .iter()
                .filter_map(|g| say.sentence(g, Which::Weakness))
                .collect(),
            strengths_heading: fill(&self.rubric.opening.strengths, &word).unwrap_or_default(),
            strengths: this
                .strengths
                .iter()
                .filter_map(|g| say.sentence(g, Which::Strength))
                .collect(),
        }
    }

    /// One key judgement: its grade, how it was reached, the sentences of its graded
    /// measures and the evidence table.
    fn judgement_section(
        &self,
        j: &JudgementResult,
        say: &Sentences<'_>,
        previous_period: Option<&Period>,
    ) -> JudgementSection {
        let graded = j
            .entries
            .iter()
            .filter(|g| g.result.grade().is_some())
            .count();
        let mut narrative = vec![match (j.grade, j.mean) {
            (Some(grade), Some(mean)) => {
                // Named only when the cap, not the mean, decided the grade.
                let cap = j
                    .entries
                    .iter()
                    .filter(|g| g.entry.cap && g.result.grade() == Some(grade))
                    .map(|g| {
                        format!(
                            " It is capped by {} ({}).",
                            g.entry.metric,
                            breakdown_label(&g.entry.breakdown)
                        )
                    })
                    .next()
                    .filter(|_| (mean + 0.5 + 1e-9).floor() as u8 != grade.number())
                    .unwrap_or_default();
                format!(
                    "{} is graded {grade}: {graded} of {} measures could be graded, with a \
                     weighted mean grade of {mean:.2}.{cap}",
                    j.judgement.title(),
                    j.entries.len()
                )
            }
            _ => format!(
                "{} is not graded: only {graded} of {} measures could be graded and the \
                 rubric needs at least {}.",
                j.judgement.title(),
                j.entries.len(),
                self.rubric.settings.min_graded_metrics
            ),
        }];
        for g in &j.entries {
            match g.result.grade() {
                Some(grade) if grade.number() <= 2 => {
                    narrative.extend(say.sentence(g, Which::Strength))
                }
                Some(_) => narrative.extend(say.sentence(g, Which::Weakness)),
                None => {}
            }
        }
        JudgementSection {
            title: j.judgement.title().into(),
            key: j.judgement.key().into(),
            grade: GradeView::of(j.grade),
            narrative,
            evidence: j
                .entries
                .iter()
                .map(|g| self.evidence_row(say.unit, say.period, previous_period, g))
                .collect(),
        }
    }

    fn ofsted(&self, unit: &Unit, period: &Period) -> Option<OfstedView> {
        let id = unit.code.strip_prefix("group:").unwrap_or(&unit.code);
        let grade = |g: Option<i64>| GradeView::of(g.map(Grade::from_number));
        self.inspections
            .iter()
            .filter(|i| i.id == id && i.inspection_date.as_str() <= period.end.as_str())
            .max_by(|a, b| a.inspection_date.cmp(&b.inspection_date))
            .map(|i| OfstedView {
                date: i.inspection_date.clone(),
                urn: i.urn.clone().unwrap_or_default(),
                overall: grade(Some(i.overall)),
                access: grade(i.access),
                quality: grade(i.quality),
                leadership: grade(i.leadership),
                source_url: i.source_url.clone().unwrap_or_default(),
            })
    }

    fn appendix(&self, unit: &Unit, period: &Period) -> Appendix {
        if unit.kind != "group" {
            return Appendix::default();
        }
        // One row per measure, one column per member centre: groups are small, measures many.
        Appendix {
            columns: unit
                .members
                .iter()
                .map(|c| format!("{} ({})", c.name, c.centre_id))
                .collect(),
            rows: self
                .rubric
                .all_entries()
                .map(|(_, e)| AppendixRow {
                    measure: format!("{} {}", e.metric, self.metric_name(&e.metric)),
                    breakdown: breakdown_label(&e.breakdown),
                    values: unit
                        .members
                        .iter()
                        .map(|c| {
                            self.fy
                                .get(&e.metric, &period.end, &c.centre_id, &e.breakdown)
                                .map_or("–".to_string(), |f| show_value(&f.value))
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn evidence_row(
        &self,
        unit: &Unit,
        period: &Period,
        previous: Option<&Period>,
        g: &GradedEntry,
    ) -> EvidenceRow {
        let metric = &g.entry.metric;
        let breakdown = &g.entry.breakdown;
        let grade_text = match &g.result {
            MetricGrade::Graded { grade, .. } => grade.to_string(),
            MetricGrade::NotGraded { reason } => format!("not graded: {reason}"),
        };
        if let Some((label, value)) = self.evidence.describe(metric, unit.evidence_id()) {
            return EvidenceRow {
                metric_id: String::new(),
                name: format!("{label} (council-supplied evidence)"),
                breakdown: "all".into(),
                value: value.unwrap_or_else(|| "not supplied".into()),
                interval: String::new(),
                numerator: String::new(),
                denominator: String::new(),
                la: String::new(),
                england: String::new(),
                comparison: String::new(),
                grade: grade_text,
                previous: String::new(),
                flags: String::new(),
            };
        }
        let f = self.fy.get(metric, &period.end, &unit.code, breakdown);
        let la = self.fy.get(metric, &period.end, DEPLOYMENT, breakdown);
        let (comparator, comparator_name) =
            self.comparator(unit, g.entry.comparator, metric, &period.end, breakdown);
        let shown = |f: Option<&Figure>| f.map_or("no data".to_string(), |f| show_value(&f.value));
        EvidenceRow {
            metric_id: metric.clone(),
            name: self.metric_name(metric),
            breakdown: breakdown_label(breakdown),
            value: if self.is_money(metric) {
                f.and_then(Figure::value)
                    .map_or_else(|| shown(f), |v| format!("£{}", pounds(v)))
            } else {
                shown(f)
            },
            interval: f
                .and_then(Figure::interval)
                .map(|(l, u)| format!("{l:.1}–{u:.1}"))
                .unwrap_or_default(),
            numerator: f
                .map(|f| match (&f.numerator, self.is_money(metric)) {
                    (Shown::Number(pence), true) => format!("£{}", whole_pounds(pence / 100.0)),
                    (n, _) => n.display(0),
                })
                .unwrap_or_default(),
            // A score has no counts behind it: nothing to show rather than z of z.
            denominator: f
                .filter(|f| f.denominator != Shown::NotApplicable)
                .map(|f| f.denominator.display(0))
                .unwrap_or_default(),
            la: match (unit.kind.as_str(), la.and_then(Figure::value)) {
                ("la", _) => String::new(),
                (_, Some(v)) if self.is_money(metric) => format!("£{}", pounds(v)),
                _ => shown(la),
            },
            england: la
                .and_then(|f| f.england)
                .map(|e| format!("{e:.1}"))
                .unwrap_or_default(),
            comparison: f
                .and_then(|f| comparison(f.interval(), comparator))
                .map(|c| {
                    format!("{c} than {comparator_name}").replace("similar than", "similar to")
                })
                .unwrap_or_else(|| "not compared".into()),
            grade: match &g.result {
                MetricGrade::Graded { grade, .. } => grade.to_string(),
                MetricGrade::NotGraded { reason } => format!("not graded: {reason}"),
            },
            previous: previous
                .and_then(|p| self.fy.get(metric, &p.end, &unit.code, breakdown))
                .map(|f| show_value(&f.value))
                .unwrap_or_default(),
            flags: f.map(|f| f.quality_flags.clone()).unwrap_or_default(),
        }
    }

    fn profile(&self, unit: &Unit, period: &Period) -> Result<Profile> {
        let get =
            |metric: &str, breakdown: &str| self.fy.get(metric, &period.end, &unit.code, breakdown);
        let under_fives = get("REACH-01", "all").map(|f| f.denominator.clone());
        let most = get("REACH-01", "deprivation=most_deprived_30").map(|f| f.denominator.clone());
        let share = match (&most, &under_fives) {
            (Some(Shown::Count(m)), Some(Shown::Count(a))) if *a > 0 => {
                format!("{:.1}%", *m as f64 / *a as f64 * 100.0)
            }
            (Some(s), _) | (None, Some(s)) if s.is_suppressed() => s.display(0),
            _ => "no data".into(),
        };
        let mut target_groups: Vec<(String, String)> = self
            .fy
            .by_key
            .iter()
            .filter(|(k, _)| {
                k.0 == "REACH-04"
                    && k.1 == period.end
                    && k.2 == unit.code
                    && k.3.starts_with("target_group=")
                    && k.3 != "target_group=any"
            })
            .map(|(k, f)| {
                let code = k.3.trim_start_matches("target_group=");
                let label = self
                    .target_group_labels
                    .get(code)
                    .cloned()
                    .unwrap_or_else(|| code.to_string());
                (label, f.denominator.display(0))
            })
            .collect();
        target_groups.sort();
        let areas = unit.areas();
        let sites: Vec<CentreRow> = match unit.kind.as_str() {
            "la" => self.centres.to_vec(),
            _ => self
                .centres
                .iter()
                .filter(|c| areas.contains(&c.centre_id.as_str()))
                .cloned()
                .collect(),
        };
        // Activities and sessions are counts of events, not of people: shown as they are.
        let activities = self
            .activities
            .iter()
            .filter(|a| unit.kind == "la" || areas.contains(&a.centre_id.as_str()))
            .fold(BTreeMap::<String, (u64, u64)>::new(), |mut acc, a| {
                let e = acc.entry(a.service_type.clone()).or_default();
                e.0 += a.activities;
                e.1 += a.sessions;
                acc
            })
            .into_iter()
            .map(|(t, (a, s))| (t, group_thousands(a), group_thousands(s)))
            .collect();
        let lsoas = match unit.kind.as_str() {
            "la" => self.reach_area_sizes.values().sum::<u64>(),
            _ => areas
                .iter()
                .filter_map(|a| self.reach_area_sizes.get(*a))
                .sum(),
        };
        Ok(Profile {
            lsoas: group_thousands(lsoas),
            under_fives: under_fives.map_or("no data".into(), |s| s.display(0)),
            most_deprived_share: share,
            target_groups,
            sites,
            activities,
        })
    }

    fn about(&self, unit: &Unit, period: &Period) -> About {
        let figures: Vec<&Figure> = self
            .fy
            .by_key
            .iter()
            .filter(|(k, _)| k.1 == period.end && k.2 == unit.code)
            .map(|(_, f)| f)
            .collect();
        let first = |pick: fn(&Figure) -> &String| {
            let mut values: Vec<&String> = figures.iter().map(|f| pick(f)).collect();
            values.sort();
            values.dedup();
            values.into_iter().cloned().collect::<Vec<_>>().join(", ")
        };
        let mut unverified: Vec<String> = self
            .rubric
            .all_entries()
            .filter(|(_, e)| {
                self.catalogue
                    .iter()
                    .any(|c| c.metric_id == e.metric && c.uses_unverified)
            })
            .map(|(_, e)| format!("{} ({})", e.metric, self.metric_name(&e.metric)))
            .collect();
        unverified.dedup();
        let linkage =
            self.fy
                .get("DQ-01", &period.end, &unit.code, "all")
                .map_or("no data".into(), |f| {
                    format!(
                        "{}% of registered children matched to the child health record (DQ-01)",
                        show_value(&f.value)
                    )
                });
        let quarantined: i64 = self.sources.iter().filter_map(|s| s.rows_quarantined).sum();
        About {
            run_id: first(|f| &f.run_id),
            data_as_at: self
                .sources
                .iter()
                .filter_map(|s| s.as_at.clone())
                .max()
                .unwrap_or_else(|| "unknown".into()),
            sources: self.sources.to_vec(),
            denominator_source: first(|f| &f.denominator_source),
            deprivation_vintage: first(|f| &f.deprivation_vintage),
            linkage,
            quarantined_rows: group_thousands(quarantined.max(0) as u64),
            unverified,
            not_assessed: NOT_ASSESSED.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn charts(&self, unit: &Unit, period: &Period) -> Result<ChartSet> {
        let get = |metric: &str| self.fy.get(metric, &period.end, &unit.code, "all");
        let count = |f: Option<&Figure>, numerator: bool| {
            f.and_then(|f| {
                Figure::count(if numerator {
                    &f.numerator
                } else {
                    &f.denominator
                })
            })
        };
        let funnel = charts::funnel(
            &format!("From under-fives to sustained engagement, {}", period.label),
            &[
                ("Children under 5".into(), count(get("REACH-01"), false)),
                ("Registered".into(), count(get("REACH-01"), true)),
                ("Seen in 12 months".into(), count(get("REACH-02"), true)),
                ("Sustained engagement".into(), count(get("REACH-03"), true)),
            ],
        )?;

        // Deciles: registered of children, controlled as one table with a total row.
        let areas = unit.areas();
        let rows: Vec<DecileRow> = self
            .deciles
            .iter()
            .filter(|d| match unit.kind.as_str() {
                "la" => d.geography_code == "deployment",
                _ => areas.contains(&d.geography_code.as_str()),
            })
            .fold(BTreeMap::<String, DecileRow>::new(), |mut acc, d| {
                let e = acc.entry(d.decile.clone()).or_insert_with(|| DecileRow {
                    geography_code: unit.code.clone(),
                    decile: d.decile.clone(),
                    children: 0,
                    registered: 0,
                    seen: 0,
                    sustained: 0,
                });
                e.children += d.children;
                e.registered += d.registered;
                e.seen += d.seen;
                e.sustained += d.sustained;
                acc
            })
            .into_values()
            .collect();
        let deciles = if rows.is_empty() {
            None
        } else {
            let labels: Vec<String> = (1..=10).map(|d| d.to_string()).collect();
            let mut cells: Vec<Vec<Cell>> = labels
                .iter()
                .map(|l| {
                    let d = rows.iter().find(|r| &r.decile == l);
                    vec![
                        Cell::Count(d.map_or(0, |d| d.children)),
                        Cell::Count(d.map_or(0, |d| d.registered)),
                    ]
                })
                .collect();
            let unknown = rows.iter().find(|r| r.decile == "unknown");
            cells.push(vec![
                Cell::Count(unknown.map_or(0, |d| d.children)),
                Cell::Count(unknown.map_or(0, |d| d.registered)),
            ]);
            cells.push(vec![
                Cell::Count(rows.iter().map(|r| r.children).sum()),
                Cell::Count(rows.iter().map(|r| r.registered).sum()),
            ]);
            for (i, row) in cells.iter_mut().enumerate() {
                row.push(Cell::Proportion {
                    numerator: (i, 1),
                    denominator: (i, 0),
                    scale: 100.0,
                });
            }
            let total = cells.len() - 1;
            let table = Table::new(cells)
                .with_line((0..total).map(|r| (r, 0)).collect(), (total, 0))
                .with_line((0..total).map(|r| (r, 1)).collect(), (total, 1));
            let shown = table.apply(&self.policy_for_counts, self.confidence)?;
            let bars: Vec<(String, Option<f64>)> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let v = match shown[i][2] {
                        Shown::Proportion { value, .. } => Some(value),
                        _ => None,
                    };
                    (l.clone(), v)
                })
                .collect();
            Some(charts::decile_bars(
                &format!(
                    "Children under 5 registered, by deprivation decile, {}",
                    period.label
                ),
                "% registered",
                &bars,
            )?)
        };

        let trend = if self.rolling_ends.len() >= 2 {
            let labels: Vec<String> = self.rolling_ends.iter().map(|e| month_label(e)).collect();
            let series_of = |metric: &str, code: &str, name: &str| Series {
                name: name.to_string(),
                values: self
                    .rolling_ends
                    .iter()
                    .map(|e| {
                        self.rolling
                            .get(metric, e, code, "all")
                            .and_then(Figure::value)
                    })
                    .collect(),
            };
            let mut series = vec![
                series_of("REACH-01", &unit.code, "Registered"),
                series_of("REACH-02", &unit.code, "Seen in 12 months"),
                series_of("REACH-03", &unit.code, "Sustained engagement"),
            ];
            if unit.kind != "la" {
                series.push(series_of(
                    "REACH-01",
                    DEPLOYMENT,
                    "Registered (local authority)",
                ));
            }
            Some(charts::trend(
                "Reach over rolling 12-month periods (% of children under 5)",
                "% of children under 5",
                &labels,
                &series,
            )?)
        } else {
            None
        };

        let bars: Vec<RankedBar> = self
            .fy
            .by_key
            .iter()
            .filter(|(k, _)| {
                k.0 == "REACH-01"
                    && k.1 == period.end
                    && k.3 == "all"
                    && k.2 != DEPLOYMENT
                    && k.2 != "UNASSIGNED"
                    && !k.2.starts_with("group:")
            })
            .filter_map(|(k, f)| {
                let (lower, upper) = f.interval().unzip();
                Some(RankedBar {
                    label: k.2.clone(),
                    value: f.value()?,
                    lower,
                    upper,
                    highlight: areas.contains(&k.2.as_str()),
                })
            })
            .collect();
        let la = self
            .fy
            .get("REACH-01", &period.end, DEPLOYMENT, "all")
            .and_then(Figure::value);
        let ranked = charts::ranked_bars(
            &format!("Registration rate by centre reach area, {}", period.label),
            "%",
            &bars,
            la.map(|v| ("Local authority", v)),
        )?;
        Ok(ChartSet {
            funnel,
            deciles,
            trend,
            ranked,
        })
    }
}

/// The grade table: overall effectiveness and the three judgements, this year and the
/// previous one, with the direction of change.
fn grade_table(this: &Evaluation, previous: Option<&Evaluation>) -> (GradeRow, Vec<GradeRow>) {
    let row = |title: &str, now: Option<Grade>, before: Option<Grade>| GradeRow {
        title: title.to_string(),
        this: GradeView::of(now),
        previous: GradeView::of(before),
        trend: match (now, before) {
            (Some(a), Some(b)) if a < b => "improved".into(),
            (Some(a), Some(b)) if a > b => "declined".into(),
            (Some(_), Some(_)) => "unchanged".into(),
            _ => String::new(),
        },
    };
    let overall = row(
        "Overall effectiveness",
        this.overall,
        previous.and_then(|p| p.overall),
    );
    let judgements = Judgement::ALL
        .iter()
        .enumerate()
        .map(|(i, j)| {
            row(
                j.title(),
                this.judgements[i].grade,
                previous.and_then(|p| p.judgements[i].grade),
            )
        })
        .collect();
    (overall, judgements)
}

/// The numbered improvement actions: one per weakness, then one per judgement without enough
/// evidence naming the measures it lacks (ofsted.md §4.5).
fn actions(this: &Evaluation, say: &Sentences<'_>) -> Vec<String> {
    let mut actions: Vec<String> = this
        .weaknesses
        .iter()
        .filter_map(|g| say.sentence(g, Which::Action))
        .collect();
    for (judgement, ungraded) in &this.insufficient {
        actions.push(format!(
            "Improve the recording and sharing of data so that {} can be evaluated \
             (not graded: {}).",
            judgement.title().to_lowercase(),
            ungraded
                .iter()
                .map(|key| match key.split_once('/') {
                    Some((metric, "all")) => metric.to_string(),
                    Some((metric, breakdown)) =>
                        format!("{metric} ({})", breakdown_label(breakdown)),
                    None => key.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    actions
}

/// The rubric's sentences for one unit and year, with the figures filled in after
/// disclosure control; a sentence whose figures are hidden falls back to its wording
/// without numbers.
struct Sentences<'a> {
    inputs: &'a Inputs<'a>,
    unit: &'a Unit,
    period: &'a Period,
    readings: &'a BTreeMap<String, Reading>,
}

impl Sentences<'_> {
    fn sentence(&self, g: &GradedEntry, which: Which) -> Option<String> {
        let inputs = self.inputs;
        let wording = inputs.rubric.wording.get(&g.entry.key())?;
        let reading = self
            .readings
            .get(&g.entry.key())
            .cloned()
            .unwrap_or_default();
        let (_, comparator_name) = inputs.comparator(
            self.unit,
            g.entry.comparator,
            &g.entry.metric,
            &self.period.end,
            &g.entry.breakdown,
        );
        let one = |x: Option<f64>| x.map(|v| format!("{v:.1}"));
        let values: BTreeMap<&str, Option<String>> = [
            ("value", one(reading.value)),
            ("lower", one(reading.lower)),
            ("upper", one(reading.upper)),
            ("comparator", one(reading.comparator)),
            ("comparator_name", Some(comparator_name.to_string())),
            (
                "numerator",
                reading.numerator.map(|n| group_thousands(n as u64)),
            ),
            (
                "denominator",
                reading.denominator.map(|n| group_thousands(n as u64)),
            ),
            ("period", Some(self.period.label.clone())),
            ("good", Some(trim_number(g.entry.thresholds[1]))),
            ("unit", Some(self.unit.word.clone())),
            (
                "evidence",
                inputs
                    .evidence
                    .describe(&g.entry.metric, self.unit.evidence_id())
                    .and_then(|(_, v)| v),
            ),
        ]
        .into_iter()
        .collect();
        match which {
            Which::Strength => fill(&wording.strength, &values),
            Which::Weakness => fill(&wording.weakness, &values)
                .or_else(|| fill(&wording.weakness_suppressed, &values)),
            Which::Action => fill(&wording.action, &values).or_else(|| {
                Some(format!(
                    "Improve {}.",
                    inputs.metric_name(&g.entry.metric).to_lowercase()
                ))
            }),
        }
    }
}

enum Which {
    Strength,
    Weakness,
    Action,
}

/// `deprivation=most_deprived_30` → "most deprived 30%".
pub fn breakdown_label(key: &str) -> String {
    match key {
        "all" => "all".into(),
        "deprivation=most_deprived_30" => "most deprived 30% of areas".into(),
        "target_group=any" => "any target group".into(),
        other => other
            .split_once('=')
            .map_or(other, |(_, v)| v)
            .replace('_', " ")
            .to_lowercase(),
    }
}

fn show_value(v: &Shown) -> String {
    match v {
        Shown::Proportion { value, .. } | Shown::Number(value) => format!("{value:.1}"),
        other => other.display(1),
    }
}

/// `12345.678` → `12,345.68`.
pub fn pounds(x: f64) -> String {
    let pence = (x.abs() * 100.0).round() as u64;
    let sign = if x < 0.0 { "-" } else { "" };
    format!("{sign}{}.{:02}", group_thousands(pence / 100), pence % 100)
}

/// `375938.42` → `375,938` (totals in whole pounds).
pub fn whole_pounds(x: f64) -> String {
    let sign = if x < 0.0 { "-" } else { "" };
    format!("{sign}{}", group_thousands(x.abs().round() as u64))
}

fn trim_number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// `2025-03-31` → `Mar 2025`.
fn month_label(date: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month: usize = date.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    format!(
        "{} {}",
        MONTHS[(month.clamp(1, 12)) - 1],
        date.get(0..4).unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let p = Period::parse("2024-25").unwrap();
        assert_eq!(
            (p.start.as_str(), p.end.as_str()),
            ("2024-04-01", "2025-03-31")
        );
        assert_eq!(p.previous().unwrap().label, "2023-24");
        assert!(Period::parse("2024-26").is_none());
        assert!(Period::parse("24-25").is_none());
        assert_eq!(month_label("2025-03-31"), "Mar 2025");
        assert_eq!(breakdown_label("target_group=LONE_PARENT"), "lone parent");
        assert_eq!(pounds(3333.3333), "3,333.33");
        assert_eq!(pounds(249_315.068_49), "249,315.07");
        assert_eq!(whole_pounds(375_938.42), "375,938");
    }
}
