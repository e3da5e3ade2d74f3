//! Statistical disclosure control (shared/domain/disclosure.md): a pure function from a table of
//! cells and a policy to the cells a reader may see.
//!
//! A [`Table`] holds cells in rows and columns, each with its kind (a controlled count, an
//! exempt number, or a value derived from other cells), and the additive [`Line`]s that tie its
//! counts together (`total = Σ members`). [`Table::apply`] returns what to print for every cell:
//! no I/O, no randomness, the same answer every time.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use crate::metrics::stats::{wilson, z_for};

/// Position of a cell: (row, column).
pub type CellRef = (usize, usize);

/// What a cell holds before control.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A count of people or events: controlled.
    Count(u64),
    /// A number that is public or not about individuals (ONS estimates, sites, money): exempt.
    Exempt(f64),
    /// `numerator ÷ denominator × scale` (scale 100 for a percentage) with its Wilson interval.
    Proportion {
        numerator: CellRef,
        denominator: CellRef,
        scale: f64,
    },
    /// An amount divided by a controlled count (cost per child).
    PerPerson { amount: f64, denominator: CellRef },
    /// A mean over `n` individuals, the count of which is another cell.
    Mean { value: f64, n: CellRef },
    /// Words: a name, a label. Never controlled.
    Text(String),
}

/// What a reader sees in a cell after control.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// A count (possibly rounded).
    Count(u64),
    /// An exempt number, or a per-person amount or mean that survived control.
    Number(f64),
    /// A proportion with its interval, on the cell's scale.
    Proportion { value: f64, lower: f64, upper: f64 },
    /// Text, unchanged.
    Text(String),
    /// Suppressed, with the policy's symbol (`*`, `c`).
    Suppressed(String),
    /// Not applicable (`z`), e.g. 0 ÷ 0.
    NotApplicable,
}

impl Shown {
    /// True when a policy hid this cell.
    pub fn is_suppressed(&self) -> bool {
        matches!(self, Shown::Suppressed(_))
    }

    /// The cell as printed, with `decimals` places for proportions and numbers.
    pub fn display(&self, decimals: usize) -> String {
        match self {
            Shown::Count(n) => group_thousands(*n),
            Shown::Number(x) => format!("{x:.decimals$}"),
            Shown::Proportion { value, .. } => format!("{value:.decimals$}"),
            Shown::Text(t) => t.clone(),
            Shown::Suppressed(symbol) => symbol.clone(),
            Shown::NotApplicable => "z".into(),
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// One additive constraint: `total = Σ members`, all count cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub members: Vec<CellRef>,
    pub total: CellRef,
}

/// A table to control: cells plus the additive lines between its counts, in the order the
/// secondary suppression must visit them.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub cells: Vec<Vec<Cell>>,
    pub lines: Vec<Line>,
}

/// A disclosure policy (disclosure.md §2–4).
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// NHS: counts 1..=`suppress_max` hidden, others rounded to `round_base`.
    Nhs {
        suppress_max: u64,
        round_base: u64,
        symbol: String,
    },
    /// DfE: counts 1..=`threshold` hidden, then secondary suppression on the table's lines.
    Dfe { threshold: u64, symbol: String },
    /// No control: internal outputs only.
    None,
}

impl Policy {
    /// The policy's name as written in `disclosure.toml` and in footnotes.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Nhs { .. } => "nhs",
            Policy::Dfe { .. } => "dfe",
            Policy::None => "none",
        }
    }

    /// The footnote every rendered table carries.
    pub fn footnote(&self) -> String {
        match self {
            Policy::Nhs {
                suppress_max,
                round_base,
                symbol,
            } => format!(
                "Disclosure control (nhs): counts of 1 to {suppress_max} are shown as {symbol}; \
                 other counts are rounded to the nearest {round_base} and percentages are \
                 computed from the rounded counts."
            ),
            Policy::Dfe { threshold, symbol } => format!(
                "Disclosure control (dfe): counts of 1 to {threshold} and the further cells \
                 that would reveal them from a total are shown as {symbol}; z = not applicable."
            ),
            Policy::None => NOT_FOR_PUBLICATION.into(),
        }
    }
}

/// The banner on every output made without disclosure control (disclosure.md §4).
pub const NOT_FOR_PUBLICATION: &str =
    "INTERNAL – NOT FOR PUBLICATION – contains unsuppressed small numbers";

impl Table {
    /// A table with no additive lines.
    pub fn new(cells: Vec<Vec<Cell>>) -> Self {
        Table {
            cells,
            lines: Vec::new(),
        }
    }

    /// Declares `total = Σ members` (hierarchies, single columns): visited after the lines
    /// declared before it.
    pub fn with_line(mut self, members: Vec<CellRef>, total: CellRef) -> Self {
        self.lines.push(Line { members, total });
        self
    }

    /// Declares the lines of a two-way table of counts whose last row and last column are the
    /// margins, over the block `rows × cols` (cell positions): rows top→bottom, columns
    /// left→right, then the margin row and the margin column (disclosure.md §3.1).
    pub fn with_margins(mut self, rows: &[usize], cols: &[usize]) -> Self {
        let (Some((&total_row, body_rows)), Some((&total_col, body_cols))) =
            (rows.split_last(), cols.split_last())
        else {
            return self;
        };
        for &r in body_rows {
            self = self.with_line(body_cols.iter().map(|&c| (r, c)).collect(), (r, total_col));
        }
        for &c in body_cols {
            self = self.with_line(body_rows.iter().map(|&r| (r, c)).collect(), (total_row, c));
        }
        let margin_row = body_cols.iter().map(|&c| (total_row, c)).collect();
        self = self.with_line(margin_row, (total_row, total_col));
        let margin_col = body_rows.iter().map(|&r| (r, total_col)).collect();
        self.with_line(margin_col, (total_row, total_col))
    }

    fn count(&self, at: CellRef) -> Option<u64> {
        match self.cells.get(at.0)?.get(at.1)? {
            Cell::Count(n) => Some(*n),
            _ => None,
        }
    }

    /// Applies a policy; `confidence` sets the proportions' intervals.
    pub fn apply(&self, policy: &Policy, confidence: f64) -> Result<Vec<Vec<Shown>>> {
        self.check()?;
        let counts = match policy {
            Policy::None => self.counts_with(Shown::Count),
            Policy::Nhs {
                suppress_max,
                round_base,
                symbol,
            } => self.counts_with(|n| match n {
                0 => Shown::Count(0),
                n if n <= *suppress_max => Shown::Suppressed(symbol.clone()),
                n => Shown::Count(round_to_base(n, *round_base)),
            }),
            Policy::Dfe { threshold, symbol } => self.dfe_counts(*threshold, symbol),
        };
        let z = z_for(confidence);
        let suppressed_symbol = match policy {
            Policy::Nhs { symbol, .. } | Policy::Dfe { symbol, .. } => symbol.clone(),
            Policy::None => String::new(),
        };
        let small_n = |n: u64| match policy {
            Policy::Nhs { suppress_max, .. } => (1..=*suppress_max).contains(&n),
            _ => false,
        };
        let mut shown = Vec::with_capacity(self.cells.len());
        for (r, row) in self.cells.iter().enumerate() {
            let mut out = Vec::with_capacity(row.len());
            for (c, cell) in row.iter().enumerate() {
                out.push(match cell {
                    Cell::Count(_) => counts[&(r, c)].clone(),
                    Cell::Exempt(x) => Shown::Number(*x),
                    Cell::Text(t) => Shown::Text(t.clone()),
                    Cell::Proportion {
                        numerator,
                        denominator,
                        scale,
                    } => {
                        let raw_den = self.count(*denominator).unwrap_or(0);
                        match (&counts[numerator], &counts[denominator]) {
                            (_, Shown::Count(0)) => Shown::NotApplicable,
                            (Shown::Suppressed(_), _) | (_, Shown::Suppressed(_)) => {
                                Shown::Suppressed(suppressed_symbol.clone())
                            }
                            _ if small_n(raw_den) => Shown::Suppressed(suppressed_symbol.clone()),
                            (Shown::Count(x), Shown::Count(n)) => {
                                // From the displayed counts, so the printed value sits inside
                                // its printed interval (disclosure.md §2).
                                let (x, n) = (*x as f64, *n as f64);
                                let (lower, upper) = wilson(x.min(n), n, z).unwrap_or((0.0, 0.0));
                                Shown::Proportion {
                                    value: x / n * scale,
                                    lower: lower * scale,
                                    upper: upper * scale,
                                }
                            }
                            _ => Shown::NotApplicable,
                        }
                    }
                    Cell::PerPerson {
                        amount,
                        denominator,
                    }
                    | Cell::Mean {
                        value: amount,
                        n: denominator,
                    } => {
                        let raw_n = self.count(*denominator).unwrap_or(0);
                        match &counts[denominator] {
                            Shown::Suppressed(s) => Shown::Suppressed(s.clone()),
                            _ if raw_n == 0 => Shown::NotApplicable,
                            _ if small_n(raw_n) => Shown::Suppressed(suppressed_symbol.clone()),
                            Shown::Count(n) if matches!(cell, Cell::PerPerson { .. }) => {
                                // Cost per person from the displayed count, as proportions.
                                Shown::Number(amount * raw_n as f64 / *n as f64)
                            }
                            _ => Shown::Number(*amount),
                        }
                    }
                });
            }
            shown.push(out);
        }
        Ok(shown)
    }

    fn counts_with(&self, f: impl Fn(u64) -> Shown) -> BTreeMap<CellRef, Shown> {
        let mut out = BTreeMap::new();
        for (r, row) in self.cells.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if let Cell::Count(n) = cell {
                    out.insert((r, c), f(*n));
                }
            }
        }
        out
    }

    /// Primary suppression of 1..=threshold, then the secondary loop of disclosure.md §3.1.
    fn dfe_counts(&self, threshold: u64, symbol: &str) -> BTreeMap<CellRef, Shown> {
        let mut suppressed: BTreeMap<CellRef, bool> = BTreeMap::new();
        for (r, row) in self.cells.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if let Cell::Count(n) = cell {
                    suppressed.insert((r, c), (1..=threshold).contains(n));
                }
            }
        }
        loop {
            let mut changed = false;
            for line in &self.lines {
                let elements = line.members.iter().chain(std::iter::once(&line.total));
                let hidden = elements.filter(|at| suppressed[*at]).count();
                if hidden != 1 {
                    continue;
                }
                // Exposed: one equation, one unknown. Hide the smallest positive visible
                // member (first in row-major order on ties), else the total.
                let candidate = line
                    .members
                    .iter()
                    .filter(|at| !suppressed[*at] && self.count(**at).unwrap_or(0) > 0)
                    .min_by_key(|at| (self.count(**at).unwrap_or(0), **at))
                    .copied()
                    .unwrap_or(line.total);
                suppressed.insert(candidate, true);
                changed = true;
            }
            if !changed {
                break;
            }
        }
        suppressed
            .into_iter()
            .map(|(at, hidden)| {
                let shown = if hidden {
                    Shown::Suppressed(symbol.to_string())
                } else {
                    Shown::Count(self.count(at).unwrap_or(0))
                };
                (at, shown)
            })
            .collect()
    }

    /// References must point at count cells, so a mistake in a report's table is an error
    /// and never a silently uncontrolled cell.
    fn check(&self) -> Result<()> {
        let is_count = |at: &CellRef| self.count(*at).is_some();
        for (r, row) in self.cells.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let refs: Vec<&CellRef> = match cell {
                    Cell::Proportion {
                        numerator,
                        denominator,
                        ..
                    } => vec![numerator, denominator],
                    Cell::PerPerson { denominator, .. } => vec![denominator],
                    Cell::Mean { n, .. } => vec![n],
                    _ => vec![],
                };
                if let Some(bad) = refs.into_iter().find(|at| !is_count(at)) {
                    bail!(
                        "disclosure table: cell ({r}, {c}) refers to {bad:?}, which is not a count"
                    );
                }
            }
        }
        for line in &self.lines {
            if let Some(bad) = line
                .members
                .iter()
                .chain(std::iter::once(&line.total))
                .find(|at| !is_count(at))
            {
                bail!("disclosure table: an additive line names {bad:?}, which is not a count");
            }
        }
        Ok(())
    }
}

/// Nearest multiple of `base`; remainders below half go down, the rest up (1–2 down, 3–4 up
/// for base 5).
pub fn round_to_base(n: u64, base: u64) -> u64 {
    if base <= 1 {
        return n;
    }
    let r = n % base;
    if r * 2 < base { n - r } else { n - r + base }
}

/// `reports/disclosure.toml`: the policy per audience and output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureConfig {
    pub audiences: BTreeMap<String, AudienceConfig>,
    pub policies: PoliciesConfig,
}

/// One audience: its default policy, overrides by metric id pattern, and whether what it
/// receives may be published.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceConfig {
    pub default_policy: String,
    pub publishable: bool,
    #[serde(default)]
    pub overrides: BTreeMap<String, String>,
}

/// Parameters of the policies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    pub nhs: NhsConfig,
    pub dfe: DfeConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NhsConfig {
    pub suppress_max: u64,
    pub round_base: u64,
    pub symbol: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DfeConfig {
    pub threshold: u64,
    pub symbol: String,
    #[serde(default)]
    pub round_national_to: u64,
}

impl DisclosureConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the disclosure policy {}", path.display()))?;
        let config: DisclosureConfig = toml::from_str(&text)
            .with_context(|| format!("{}: not a valid disclosure policy", path.display()))?;
        for (name, audience) in &config.audiences {
            for policy in
                std::iter::once(&audience.default_policy).chain(audience.overrides.values())
            {
                let policy = config
                    .policy(policy)
                    .with_context(|| format!("{}: audience {name:?}", path.display()))?;
                if audience.publishable && policy == Policy::None {
                    bail!(
                        "{}: audience {name:?} is publishable, so it cannot use policy \"none\" \
                         (disclosure.md §4); choose nhs or dfe, or set publishable = false",
                        path.display()
                    );
                }
            }
        }
        Ok(config)
    }

    /// The policy called `name`.
    pub fn policy(&self, name: &str) -> Result<Policy> {
        Ok(match name {
            "nhs" => Policy::Nhs {
                suppress_max: self.policies.nhs.suppress_max,
                round_base: self.policies.nhs.round_base,
                symbol: self.policies.nhs.symbol.clone(),
            },
            "dfe" => Policy::Dfe {
                threshold: self.policies.dfe.threshold,
                symbol: self.policies.dfe.symbol.clone(),
            },
            "none" => Policy::None,
            other => bail!("unknown disclosure policy {other:?} (expected nhs, dfe or none)"),
        })
    }

    /// The policy for a metric (or table) id seen by `audience`: the first override whose
    /// pattern matches (`HV-*` matches every HV metric), else the audience's default.
    pub fn policy_for(&self, audience: &str, id: &str) -> Result<Policy> {
        let Some(a) = self.audiences.get(audience) else {
            bail!(
                "no audience {audience:?} in the disclosure policy (have: {})",
                self.audiences
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        let chosen = a
            .overrides
            .iter()
            .find(|(pattern, _)| match pattern.strip_suffix('*') {
                Some(prefix) => id.starts_with(prefix),
                None => id == pattern.as_str(),
            })
            .map(|(_, policy)| policy)
            .unwrap_or(&a.default_policy);
        self.policy(chosen)
    }

    /// Whether the audience's outputs may leave the council.
    pub fn publishable(&self, audience: &str) -> bool {
        self.audiences.get(audience).is_some_and(|a| a.publishable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nhs() -> Policy {
        Policy::Nhs {
            suppress_max: 7,
            round_base: 5,
            symbol: "*".into(),
        }
    }

    fn dfe() -> Policy {
        Policy::Dfe {
            threshold: 5,
            symbol: "c".into(),
        }
    }

    /// disclosure.md §5.1: centres A–D and the LA total; population, registered, %.
    fn five_one() -> Table {
        let rows = [(412, 338), (96, 7), (6, 4), (0, 0), (514, 349)];
        let cells = rows
            .iter()
            .enumerate()
            .map(|(r, &(pop, reg))| {
                vec![
                    Cell::Count(pop),
                    Cell::Count(reg),
                    Cell::Proportion {
                        numerator: (r, 1),
                        denominator: (r, 0),
                        scale: 100.0,
                    },
                ]
            })
            .collect();
        let members = |c| (0..4).map(|r| (r, c)).collect();
        Table::new(cells)
            .with_line(members(0), (4, 0))
            .with_line(members(1), (4, 1))
    }

    fn printed(shown: &[Vec<Shown>]) -> Vec<Vec<String>> {
        shown
            .iter()
            .map(|row| {
                row.iter()
                    .map(|cell| match cell {
                        Shown::Proportion {
                            value,
                            lower,
                            upper,
                        } => format!("{value:.1} ({lower:.1} – {upper:.1})"),
                        other => other.display(1),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn nhs_worked_example() {
        let shown = five_one().apply(&nhs(), 0.95).unwrap();
        assert_eq!(
            printed(&shown),
            [
                ["410", "340", "82.9 (79.0 – 86.3)"],
                ["95", "*", "*"],
                ["*", "*", "*"],
                ["0", "0", "z"],
                ["515", "350", "68.0 (63.8 – 71.8)"],
            ]
        );
    }

    #[test]
    fn dfe_worked_example() {
        let shown = five_one().apply(&dfe(), 0.95).unwrap();
        assert_eq!(
            printed(&shown),
            [
                ["412", "338", "82.0 (78.0 – 85.4)"],
                ["96", "c", "c"],
                ["6", "c", "c"],
                ["0", "0", "z"],
                ["514", "349", "67.9 (63.7 – 71.8)"],
            ]
        );
    }

    #[test]
    fn dfe_two_way_table_with_margins() {
        let grid = [
            [12, 3, 20, 35],
            [8, 0, 15, 23],
            [25, 9, 4, 38],
            [45, 12, 39, 96],
        ];
        let cells = grid
            .iter()
            .map(|row| row.iter().map(|&n| Cell::Count(n)).collect())
            .collect();
        let table = Table::new(cells).with_margins(&[0, 1, 2, 3], &[0, 1, 2, 3]);
        let shown = table.apply(&dfe(), 0.95).unwrap();
        assert_eq!(
            printed(&shown),
            [
                ["c", "c", "20", "35"],
                ["c", "0", "c", "23"],
                ["25", "c", "c", "38"],
                ["45", "12", "39", "96"],
            ]
        );
    }

    #[test]
    fn dfe_edge_cases() {
        let row = |values: &[u64]| {
            let cells = vec![values.iter().map(|&n| Cell::Count(n)).collect()];
            let last = values.len() - 1;
            Table::new(cells).with_line((0..last).map(|c| (0, c)).collect(), (0, last))
        };
        let shown = row(&[7, 2, 12, 21]).apply(&dfe(), 0.95).unwrap();
        assert_eq!(printed(&shown), [["c", "c", "12", "21"]]);
        let shown = row(&[3, 0, 0, 3]).apply(&dfe(), 0.95).unwrap();
        assert_eq!(printed(&shown), [["c", "0", "0", "c"]]);

        // 0/3: the denominator is c, so the percentage is; 0/0 is z.
        let pct = |x, n| {
            Table::new(vec![vec![
                Cell::Count(x),
                Cell::Count(n),
                Cell::Proportion {
                    numerator: (0, 0),
                    denominator: (0, 1),
                    scale: 100.0,
                },
            ]])
        };
        assert_eq!(printed(&pct(0, 3).apply(&dfe(), 0.95).unwrap())[0][2], "c");
        assert_eq!(printed(&pct(0, 0).apply(&dfe(), 0.95).unwrap())[0][2], "z");
    }

    #[test]
    fn control_is_deterministic_and_none_changes_nothing() {
        let table = five_one();
        assert_eq!(
            table.apply(&dfe(), 0.95).unwrap(),
            table.apply(&dfe(), 0.95).unwrap()
        );
        let shown = table.apply(&Policy::None, 0.95).unwrap();
        assert_eq!(shown[2][1], Shown::Count(4));
        assert_eq!(shown[1][1], Shown::Count(7));
    }

    #[test]
    fn nhs_rounding_boundaries_and_small_means() {
        assert_eq!(
            [8, 10, 12, 13, 338, 412].map(|n| round_to_base(n, 5)),
            [10, 10, 10, 15, 340, 410]
        );
        let table = Table::new(vec![vec![
            Cell::Count(7),
            Cell::Mean {
                value: 41.5,
                n: (0, 0),
            },
            Cell::Count(8),
            Cell::Mean {
                value: 40.0,
                n: (0, 2),
            },
            Cell::PerPerson {
                amount: 600.0,
                denominator: (0, 2),
            },
        ]]);
        let shown = table.apply(&nhs(), 0.95).unwrap();
        assert_eq!(shown[0][1], Shown::Suppressed("*".into()));
        assert_eq!(shown[0][3], Shown::Number(40.0));
        // £4,800 over 8 children shown as 10: £480 per child, consistent with the print.
        assert_eq!(shown[0][4], Shown::Number(480.0));
    }

    #[test]
    fn a_reference_to_a_non_count_is_an_error() {
        let table = Table::new(vec![vec![
            Cell::Text("A".into()),
            Cell::Proportion {
                numerator: (0, 0),
                denominator: (0, 0),
                scale: 100.0,
            },
        ]]);
        let err = table.apply(&dfe(), 0.95).unwrap_err().to_string();
        assert!(err.contains("not a count"), "{err}");
    }

    #[test]
    fn shipped_policy_file_loads_and_routes_hv_to_nhs() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/disclosure.toml");
        let config = DisclosureConfig::load(&path).unwrap();
        assert_eq!(config.policy_for("public", "HV-02").unwrap().name(), "nhs");
        assert_eq!(
            config.policy_for("public", "REACH-01").unwrap().name(),
            "dfe"
        );
        assert_eq!(
            config.policy_for("directors", "HV-02").unwrap().name(),
            "dfe"
        );
        assert_eq!(
            config.policy_for("analysts", "HV-02").unwrap().name(),
            "none"
        );
        assert!(config.publishable("directors"));
        assert!(config.policy_for("press", "HV-02").is_err());
    }
}
