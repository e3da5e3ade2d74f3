//! Synthetic extracts that look like a real county (issue: the spine, part 5).
//!
//! Every file is written in the canonical layouts of extracts.md §3–4, plus small synthetic
//! public reference files (IoD File 7 in both vintages, a postcode directory, the LSOA
//! lookup and LSOA population). Deterministic for a seed. With `dirty`, known faults are
//! injected as extra rows and listed in `ground_truth.csv` (`file,row_number,field,rule`);
//! the extra rows use fresh ids, so a fault never cascades into another file.

mod social;

pub use social::upn;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context as _, Result};
use chrono::{Days, NaiveDate};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};

use crate::sources::ExtractKind;

/// How big a synthetic area is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// A few hundred children: for tests and the demo.
    Tiny,
    /// A county: ~45,000 children under five, ~50 centres, ~3 years, ~3M attendances.
    County,
    /// A region: five counties' worth.
    Region,
}

struct Params {
    lsoas: usize,
    centres: usize,
    children: usize,
    years: u32,
    mean_sessions: f64,
}

impl Scale {
    fn params(self) -> Params {
        match self {
            Scale::Tiny => Params {
                lsoas: 24,
                centres: 3,
                children: 400,
                years: 1,
                mean_sessions: 6.0,
            },
            Scale::County => Params {
                lsoas: 900,
                centres: 50,
                children: 72_000,
                years: 3,
                mean_sessions: 42.0,
            },
            Scale::Region => Params {
                lsoas: 4_500,
                centres: 250,
                children: 360_000,
                years: 3,
                mean_sessions: 42.0,
            },
        }
    }

    /// The area's size in counties' worth of children (county = 1, region = 5).
    pub fn counties(self) -> f64 {
        self.params().children as f64 / Scale::County.params().children as f64
    }
}

/// The as-at date of generated data.
pub const AS_AT: NaiveDate = NaiveDate::from_ymd_opt(2025, 3, 31).unwrap();

const SURNAMES: &[&str] = &[
    "SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES", "PATEL",
    "WRIGHT", "KHAN", "GREEN", "HALL", "WOOD", "THOMPSON", "CLARKE", "WALKER", "AHMED", "ROBINSON",
    "HUGHES", "EDWARDS", "MORRIS", "KING", "LEE", "BAKER", "HARRIS", "NOWAK", "OBRIEN", "MURPHY",
    "SCOTT", "COOPER", "WARD", "HUSSAIN", "ALI", "TURNER", "PARKER",
];
const GIVEN: &[&str] = &[
    "AMELIA", "OLIVER", "ISLA", "NOAH", "AVA", "LEO", "MIA", "ARTHUR", "IVY", "MUHAMMAD", "FREYA",
    "JACK", "ZARA", "OSCAR",
];
const ETHNICITIES: &[(&str, u32)] = &[
    ("WBRI", 70),
    ("WOTH", 6),
    ("AIND", 4),
    ("APKN", 4),
    ("BAFR", 3),
    ("MWBC", 2),
    ("MOTH", 2),
    ("ABAN", 1),
    ("BCRB", 1),
    ("CHNE", 1),
    ("OOTH", 1),
    ("WROM", 1),
    ("NOBT", 2),
    ("REFU", 1),
];

struct Lsoa {
    code21: String,
    code11: String,
    idaci_decile: i64,
    postcodes: Vec<String>,
    centre: usize,
}

struct Child {
    nhs: String,
    surname: &'static str,
    given: &'static str,
    dob: NaiveDate,
    sex: &'static str,
    lsoa: usize,
    postcode: String,
    family: usize,
    ethnicity: &'static str,
}

/// Faults injected by `--dirty`, keyed by file.
#[derive(Default)]
struct Truth {
    rows: Vec<(String, u64, String, String)>,
}

/// A CSV file being written, counting records (header = 1) so faults know their row.
struct Out {
    name: String,
    w: csv::Writer<BufWriter<File>>,
    row: u64,
}

impl Out {
    fn new(dir: &Path, name: &str, header: &[&str]) -> Result<Self> {
        let f = File::create(dir.join(name)).with_context(|| format!("cannot create {name}"))?;
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(BufWriter::with_capacity(1 << 20, f));
        w.write_record(header)?;
        Ok(Self {
            name: name.into(),
            w,
            row: 1,
        })
    }
    fn rec<I: IntoIterator<Item = T>, T: AsRef<[u8]>>(&mut self, fields: I) -> Result<u64> {
        self.w.write_record(fields)?;
        self.row += 1;
        Ok(self.row)
    }
    fn fault<I: IntoIterator<Item = T>, T: AsRef<[u8]>>(
        &mut self,
        truth: &mut Truth,
        field: &str,
        rule: &str,
        fields: I,
    ) -> Result<()> {
        let row = self.rec(fields)?;
        truth
            .rows
            .push((self.name.clone(), row, field.into(), rule.into()));
        Ok(())
    }
}

/// The canonical header of a kind: the generator writes its rows in the field order of
/// `sources::<kind>::FIELDS`, so the layout is defined in one place.
fn header(kind: ExtractKind) -> Vec<&'static str> {
    kind.fields().iter().map(|f| f.name).collect()
}

/// A valid NHS number for sequence `i` (unique for i < 900,000): the `999` test range
/// first, then `998`, … Digits 4–8 encode `i`; digit 9 is the first value whose check digit
/// exists (at most one value of it gives the invalid check 10).
pub fn nhs_number(i: u64) -> String {
    let prefix = 999 - i / 100_000;
    for d in 0..10 {
        let body = format!("{prefix}{:05}{d}", i % 100_000);
        let sum: u32 = body
            .bytes()
            .zip((2..=10).rev())
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        match 11 - sum % 11 {
            10 => continue,
            11 => return format!("{body}0"),
            c => return format!("{body}{c}"),
        }
    }
    unreachable!("one of ten final digits always gives a valid check digit")
}

fn pick_weighted<'a>(rng: &mut ChaCha8Rng, items: &'a [(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|i| i.1).sum();
    let mut x = rng.random_range(0..total);
    for (v, w) in items {
        if x < *w {
            return v;
        }
        x -= w;
    }
    items[0].0
}

fn date_between(rng: &mut ChaCha8Rng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days().max(0) as u64;
    from + Days::new(rng.random_range(0..=span))
}

/// Writes every extract and reference file into `out`. Returns the file names and rows.
/// The synthetic postcode area and district of the `index`-th district (0-based): XQ1 …
/// XQ99, then XR1 … XR99, and so on.
fn postcode_district(index: usize) -> (String, usize) {
    let areas = b"QRSTUVWYZ";
    let area = areas[(index / 99) % areas.len()] as char;
    (format!("X{area}"), 1 + index % 99)
}

pub fn generate(scale: Scale, seed: u64, dirty: bool, out: &Path) -> Result<BTreeMap<String, u64>> {
    std::fs::create_dir_all(out.join("reference"))?;
    let p = scale.params();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut truth = Truth::default();
    let start = AS_AT
        .checked_sub_months(chrono::Months::new(12 * p.years))
        .expect("date")
        + Days::new(1);

    // Geography: LSOAs in blocks per centre, deprivation skewed towards the low deciles.
    let mut lsoas = Vec::with_capacity(p.lsoas);
    for i in 0..p.lsoas {
        // Forty LSOAs a postcode district; a district number has at most two digits, so
        // after XQ99 the area letters move on (XR1, …), keeping every postcode valid (E007).
        let (area, district) = postcode_district(i / 40);
        let postcodes = (0..12)
            .map(|k| {
                let n = i * 12 + k;
                let letters = b"ABDEFGHJLNPQRSTUWXYZ";
                format!(
                    "{area}{district} {}{}{}",
                    n % 10,
                    letters[(n / 10) % 20] as char,
                    letters[(n / 200) % 20] as char
                )
            })
            .collect();
        lsoas.push(Lsoa {
            code21: format!("E01{:06}", 900_000 + i),
            code11: format!("E01{:06}", 900_000 + i),
            idaci_decile: [1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10][rng.random_range(0..13)],
            postcodes,
            centre: i * p.centres / p.lsoas,
        });
    }
    // A handful of 2011 LSOAs were split in 2021: their 2021 codes differ.
    for l in lsoas.iter_mut().step_by(17) {
        l.code21 = format!(
            "E01{:06}",
            950_000 + l.code11[3..].parse::<usize>().unwrap_or(0) % 50_000
        );
    }
    let mut counts = BTreeMap::new();
    let r = |o: &Out| o.row - 1;

    let mut pc = Out::new(
        out,
        "reference/postcodes.csv",
        &[
            "pcds", "doterm", "lsoa11", "lsoa21", "lat", "long", "usertype",
        ],
    )?;
    for (i, l) in lsoas.iter().enumerate() {
        for (k, code) in l.postcodes.iter().enumerate() {
            let doterm = if k == 11 {
                "202001".to_string()
            } else {
                String::new()
            };
            let lat = format!(
                "{:.6}",
                52.0 + (i as f64 / p.lsoas as f64) + k as f64 * 0.0004
            );
            let lon = format!("{:.6}", -1.5 + (i % 30) as f64 * 0.03);
            pc.rec([
                code.as_str(),
                &doterm,
                &l.code11,
                &l.code21,
                &lat,
                &lon,
                "0",
            ])?;
        }
    }
    counts.insert(pc.name.clone(), r(&pc));
    let mut lk = Out::new(
        out,
        "reference/lsoa_lookup.csv",
        &[
            "LSOA11CD", "LSOA11NM", "LSOA21CD", "LSOA21NM", "CHGIND", "LAD22CD", "LAD22NM",
        ],
    )?;
    for l in &lsoas {
        let chg = if l.code11 == l.code21 { "U" } else { "S" };
        lk.rec([
            l.code11.as_str(),
            "Synthetic",
            &l.code21,
            "Synthetic",
            chg,
            "E06999999",
            "Synthetic county",
        ])?;
    }
    counts.insert(lk.name.clone(), r(&lk));
    for vintage in [2011, 2021] {
        let h = crate::sources::reference_files::iod_default_columns(vintage);
        let header: Vec<&str> = h.iter().map(|(_, v)| v.as_str()).collect();
        let mut iod = Out::new(
            out,
            &format!(
                "reference/iod{}_file7.csv",
                if vintage == 2011 { 2019 } else { 2025 }
            ),
            &header,
        )?;
        let mut codes: Vec<(&str, i64)> = lsoas
            .iter()
            .map(|l| {
                (
                    if vintage == 2011 {
                        l.code11.as_str()
                    } else {
                        l.code21.as_str()
                    },
                    l.idaci_decile,
                )
            })
            .collect();
        codes.sort();
        codes.dedup_by_key(|c| c.0);
        for (k, (code, decile)) in codes.iter().enumerate() {
            let rank = (*decile - 1) * 3_284 + 1 + (k as i64 % 3_000);
            iod.rec([
                *code,
                "Synthetic LSOA",
                &rank.to_string(),
                &decile.to_string(),
                &format!("{:.3}", 0.45 - *decile as f64 * 0.04),
                &rank.to_string(),
                &decile.to_string(),
            ])?;
        }
        counts.insert(iod.name.clone(), r(&iod));
    }

    // Children, in families of one to three siblings sharing surname and postcode.
    let mut children: Vec<Child> = Vec::with_capacity(p.children);
    let mut family = 0usize;
    while children.len() < p.children {
        let li = rng.random_range(0..p.lsoas);
        let lsoa = &lsoas[li];
        let surname = *SURNAMES.choose(&mut rng).expect("names");
        let postcode = lsoa.postcodes[rng.random_range(0..11)].clone();
        let ethnicity = pick_weighted(&mut rng, ETHNICITIES);
        let siblings = [1, 1, 1, 2, 2, 3][rng.random_range(0..6)];
        for _ in 0..siblings {
            let dob = date_between(
                &mut rng,
                AS_AT
                    .checked_sub_months(chrono::Months::new(12 * (5 + p.years)))
                    .expect("date"),
                AS_AT - Days::new(10),
            );
            children.push(Child {
                nhs: nhs_number(children.len() as u64),
                surname,
                given: GIVEN.choose(&mut rng).expect("names"),
                dob,
                sex: if rng.random_bool(0.5) {
                    "male"
                } else {
                    "female"
                },
                lsoa: li,
                postcode: postcode.clone(),
                family,
                ethnicity,
            });
        }
        family += 1;
    }
    let mut pop = Out::new(
        out,
        "reference/lsoa_population.csv",
        &["LSOA 2021 Code", "0", "1", "2", "3", "4"],
    )?;
    let mut by_lsoa: BTreeMap<&str, [u64; 5]> = BTreeMap::new();
    for c in &children {
        let age = crate::sources::check::age_years(c.dob, AS_AT);
        if (0..5).contains(&age) {
            by_lsoa.entry(&lsoas[c.lsoa].code21).or_default()[age as usize] += 1;
        }
    }
    for (code, ages) in &by_lsoa {
        pop.rec(std::iter::once(code.to_string()).chain(ages.iter().map(|a| a.to_string())))?;
    }
    counts.insert(pop.name.clone(), r(&pop));

    // Centres and their reach areas.
    let mut ce = Out::new(out, "centres.csv", &header(ExtractKind::Centres))?;
    for c in 0..p.centres {
        let home = lsoas
            .iter()
            .find(|l| l.centre == c)
            .expect("every centre has a reach area");
        let site = if c % 10 == 9 { "hub" } else { "centre" };
        ce.rec([
            &format!("CC{c:03}"),
            &format!("Synthetic Children's Centre {c}"),
            &format!("Provider {}", c % 5),
            &format!("Area {}", c % 4),
            &format!("LOT{}", c % 10),
            &home.postcodes[0],
            "",
            "",
            "2010-04-01",
            "",
            site,
        ])?;
    }
    if dirty {
        ce.fault(
            &mut truth,
            "close_date",
            "E011",
            [
                "CCX01",
                "Faulty",
                "Provider 0",
                "Area 0",
                "",
                &lsoas[0].postcodes[0],
                "",
                "",
                "2015-04-01",
                "2014-04-01",
                "centre",
            ],
        )?;
    }
    counts.insert(ce.name.clone(), r(&ce));
    let mut ra = Out::new(out, "reach_areas.csv", &header(ExtractKind::ReachAreas))?;
    for l in &lsoas {
        ra.rec([format!("CC{:03}", l.centre), l.code21.clone()])?;
    }
    if dirty {
        ra.fault(&mut truth, "lsoa_code", "E015", ["CC000", "E1234"])?;
    }
    counts.insert(ra.name.clone(), r(&ra));
    // Centre groups: pairs of neighbouring centres sharing leadership; every third pair
    // stays two single centres.
    let mut cg = Out::new(out, "centre_groups.csv", &header(ExtractKind::CentreGroups))?;
    for k in 0..p.centres / 2 {
        if k % 3 == 2 {
            continue;
        }
        for c in [2 * k, 2 * k + 1] {
            cg.rec([
                format!("GRP{k:02}"),
                format!("Synthetic Centre Group {k}"),
                format!("CC{c:03}"),
            ])?;
        }
    }
    counts.insert(cg.name.clone(), r(&cg));

    // Finance (extracts.md §7): each site's costs per year from its index (no random draws,
    // so the other files stay as they were), central costs, and one contract per lot. Sites
    // with commissioned costs carry their lot's contract inside centre_costs already.
    let mut cc = Out::new(out, "centre_costs.csv", &header(ExtractKind::CentreCosts))?;
    for fy in ["2023-24", "2024-25"] {
        for c in 0..p.centres {
            let staff = 180_000 + (c * 7_919) % 90_000;
            let premises = 40_000 + (c * 10_477) % 30_000;
            let commissioned = if c % 7 == 3 { 50_000 } else { 0 };
            let other = 15_000 + (c * 12_997) % 10_000;
            let total = staff + premises + commissioned + other;
            cc.rec([
                format!("CC{c:03}"),
                fy.to_string(),
                staff.to_string(),
                premises.to_string(),
                commissioned.to_string(),
                other.to_string(),
                total.to_string(),
            ])?;
        }
        let central = 20_000 * p.centres.max(1);
        cc.rec([
            "CENTRAL",
            fy,
            &central.to_string(),
            "0",
            "0",
            "0",
            &central.to_string(),
        ])?;
    }
    if dirty {
        cc.fault(
            &mut truth,
            "total",
            "E012",
            ["CC000", "2022-23", "100", "100", "0", "0", "500"],
        )?;
        cc.fault(
            &mut truth,
            "centre_id",
            "E008",
            ["CC999", "2022-23", "1", "1", "0", "0", "2"],
        )?;
    }
    counts.insert(cc.name.clone(), r(&cc));
    let mut co = Out::new(out, "contracts.csv", &header(ExtractKind::Contracts))?;
    for lot in 0..10.min(p.centres) {
        let members: Vec<String> = (0..p.centres)
            .filter(|c| c % 10 == lot)
            .map(|c| format!("CC{c:03}"))
            .collect();
        co.rec([
            format!("LOT{lot}"),
            format!("Provider {}", lot % 5),
            members.join(";"),
            (120_000 * members.len()).to_string(),
            "2023-04-01".to_string(),
            "2027-03-31".to_string(),
            "2x12".to_string(),
        ])?;
    }
    if dirty {
        co.fault(
            &mut truth,
            "end_date",
            "E011",
            [
                "LOTX",
                "Provider 0",
                "CC000",
                "1000",
                "2024-04-01",
                "2023-04-01",
                "",
            ],
        )?;
    }
    counts.insert(co.name.clone(), r(&co));
    // Real Ofsted inspections (2013–2015 framework) of some centres and of the first group:
    // synthetic grades and URNs, for the "Previous Ofsted inspection" row.
    let mut oi = Out::new(
        out,
        "ofsted_inspections.csv",
        &header(ExtractKind::OfstedInspections),
    )?;
    for c in (0..p.centres).filter(|c| c % 3 == 0) {
        let g = |k: usize| (1 + (c + k) % 4).to_string();
        oi.rec([
            format!("CC{c:03}"),
            format!("{}", 22_000 + c),
            format!("2014-{:02}-{:02}", 1 + c % 12, 1 + c % 28),
            g(1),
            g(2),
            g(1),
            g(0),
            String::new(),
        ])?;
    }
    counts.insert(oi.name.clone(), r(&oi));
    let mut ac = Out::new(out, "activities.csv", &header(ExtractKind::Activities))?;
    let activities: Vec<String> = (0..24).map(|i| format!("ACT{i:02}")).collect();
    for (i, a) in activities.iter().enumerate() {
        let targeted = i % 3 == 0;
        ac.rec([
            a.as_str(),
            &format!("Activity {i}"),
            if targeted { "targeted" } else { "universal" },
            if i == 3 { "Incredible Years" } else { "" },
        ])?;
    }
    counts.insert(ac.name.clone(), r(&ac));

    // Registrations: deprivation skews who registers; each registered family also registers a parent.
    let mut reg = Out::new(
        out,
        "registrations.csv",
        &header(ExtractKind::Registrations),
    )?;
    let mut persons: Vec<(String, String, String, NaiveDate, NaiveDate)> = Vec::new(); // id, family, centre, dob, registered
    let mut family_parent: BTreeMap<usize, String> = BTreeMap::new();
    for (i, c) in children.iter().enumerate() {
        let deprived = lsoas[c.lsoa].idaci_decile <= 3;
        if !rng.random_bool(if deprived { 0.75 } else { 0.45 }) {
            continue;
        }
        let centre = format!("CC{:03}", lsoas[c.lsoa].centre);
        let earliest = c.dob.max(start);
        let registered = date_between(&mut rng, earliest, AS_AT);
        let fam = format!("F{:06}", c.family);
        let lone = rng.random_bool(if deprived { 0.3 } else { 0.12 });
        let flags = [
            lone,
            rng.random_bool(0.04),
            rng.random_bool(if deprived { 0.25 } else { 0.08 }),
            rng.random_bool(0.05),
            c.ethnicity != "WBRI" && rng.random_bool(0.5),
            false,
        ];
        let flag = |b: bool| if b { "y" } else { "n" };
        let nhs = if rng.random_bool(0.85) {
            c.nhs.as_str()
        } else {
            ""
        };
        let pid = format!("P{i:07}");
        let other = if rng.random_bool(0.01) {
            "ARMED_FORCES"
        } else {
            ""
        };
        let dob = c.dob.to_string();
        let reg_s = registered.to_string();
        let fl: Vec<&str> = flags.iter().map(|b| flag(*b)).collect();
        reg.rec([
            pid.as_str(),
            &fam,
            &centre,
            "child",
            nhs,
            c.given,
            c.surname,
            &dob,
            c.sex,
            &c.postcode,
            c.ethnicity,
            &reg_s,
            fl[0],
            fl[1],
            fl[2],
            fl[3],
            fl[4],
            fl[5],
            other,
        ])?;
        persons.push((pid, fam.clone(), centre.clone(), c.dob, registered));
        if let std::collections::btree_map::Entry::Vacant(e) = family_parent.entry(c.family) {
            let parent = format!("Q{:07}", c.family);
            let father = rng.random_bool(0.2);
            let pdob = (c.dob - Days::new(rng.random_range(6_500..14_000))).to_string();
            reg.rec([
                parent.as_str(),
                &fam,
                &centre,
                "parent",
                "",
                "",
                c.surname,
                &pdob,
                if father { "male" } else { "female" },
                &c.postcode,
                c.ethnicity,
                &reg_s,
                fl[0],
                fl[1],
                fl[2],
                "n",
                fl[4],
                flag(father),
                "",
            ])?;
            persons.push((
                parent.clone(),
                fam,
                centre,
                c.dob - Days::new(6_500),
                registered,
            ));
            e.insert(parent);
        }
    }
    if dirty {
        let c = &children[0];
        let base = |id: &str| -> Vec<String> {
            [
                id,
                "FX",
                "CC000",
                "child",
                "",
                "Faulty",
                c.surname,
                &c.dob.to_string(),
                "female",
                &c.postcode,
                "WBRI",
                "2024-06-01",
                "n",
                "n",
                "n",
                "n",
                "n",
                "n",
                "",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        };
        let with = |id: &str, i: usize, v: &str| {
            let mut b = base(id);
            b[i] = v.to_string();
            b
        };
        // (person id, column index, faulty value, field, rule): one fault per row.
        let duplicate = persons[0].0.clone();
        let faults: [(&str, usize, &str, &str, &str); 9] = [
            ("PX1", 4, "9990000019", "nhs_number", "E006"),
            ("PX2", 7, "2030-01-01", "date_of_birth", "E003"),
            ("PX3", 9, "NOT A PC", "postcode", "E007"),
            ("PX4", 2, "CC999", "centre_id", "E008"),
            ("PX5", 3, "grandchild", "role", "E004"),
            ("PX6", 11, "31/02/2024", "registration_date", "E002"),
            ("PX7", 6, "", "family_name", "E001"),
            ("PX8", 16, "maybe", "eal", "E010"),
            (&duplicate, 6, "SMITH", "person_id", "E005"),
        ];
        for (id, column, value, field, rule) in faults {
            reg.fault(&mut truth, field, rule, with(id, column, value))?;
        }
    }
    counts.insert(reg.name.clone(), r(&reg));

    // Attendances: heavy-tailed number of sessions per person, mostly at their own centre.
    let mut at = Out::new(out, "attendances.csv", &header(ExtractKind::Attendances))?;
    let sessions = LogNormal::from_mean_cv(p.mean_sessions, 1.6).expect("valid distribution");
    let venues: &[(&str, u32)] = &[
        ("centre", 80),
        ("community", 8),
        ("library", 5),
        ("home", 4),
        ("online", 3),
    ];
    let mut aid = 0u64;
    let mut date_buf = String::new();
    for (pid, fam, centre, dob, registered) in &persons {
        let n = sessions.sample(&mut rng).round() as u64;
        let from = (*registered).max(*dob).max(start);
        for _ in 0..n {
            aid += 1;
            let d = date_between(&mut rng, from, AS_AT);
            date_buf.clear();
            date_buf.push_str(&d.to_string());
            let site = if rng.random_bool(0.9) {
                centre.clone()
            } else {
                format!("CC{:03}", rng.random_range(0..p.centres))
            };
            let dur = [60, 90, 120, 45][rng.random_range(0..4)].to_string();
            at.rec([
                &format!("A{aid:09}"),
                pid.as_str(),
                fam,
                &site,
                activities.choose(&mut rng).expect("activities"),
                pick_weighted(&mut rng, venues),
                &date_buf,
                &dur,
            ])?;
        }
    }
    if dirty {
        let (pid, fam, centre, _, registered) = &persons[0];
        // On the person's registration date, so no fault but the injected one applies.
        let day = registered.to_string();
        at.fault(
            &mut truth,
            "person_id",
            "E008",
            [
                "AX1", "PNOBODY", "F999999", centre, "ACT01", "centre", &day, "60",
            ],
        )?;
        at.fault(
            &mut truth,
            "duration_minutes",
            "E009",
            ["AX2", pid, fam, centre, "ACT01", "centre", &day, "2000"],
        )?;
        at.fault(
            &mut truth,
            "session_date",
            "E002",
            [
                "AX3",
                pid,
                fam,
                centre,
                "ACT01",
                "centre",
                "2024-13-01",
                "60",
            ],
        )?;
        at.fault(
            &mut truth,
            "activity_code",
            "E008",
            ["AX4", pid, fam, centre, "NOPE", "centre", &day, "60"],
        )?;
        at.fault(
            &mut truth,
            "",
            "E014",
            [
                "AX5", pid, fam, centre, "ACT01", "centre", &day, "60", "extra",
            ],
        )?;
        at.fault(
            &mut truth,
            "venue_type",
            "E004",
            ["AX6", pid, fam, centre, "ACT01", "spaceship", &day, "60"],
        )?;
    }
    counts.insert(at.name.clone(), r(&at));

    // Child health register and health visiting, with late and missing reviews.
    let mut ch = Out::new(out, "chis.csv", &header(ExtractKind::Chis))?;
    for (i, c) in children.iter().enumerate() {
        ch.rec([
            c.nhs.as_str(),
            &format!("L{i:07}"),
            c.given,
            c.surname,
            &c.dob.to_string(),
            c.sex,
            &c.postcode,
            &format!("X{:05}", i % 60),
            &c.dob.to_string(),
            "",
        ])?;
    }
    if dirty {
        let c = &children[0];
        ch.fault(
            &mut truth,
            "nhs_number",
            "E006",
            [
                "1234567890",
                "LX1",
                "A",
                c.surname,
                "2023-01-01",
                "male",
                &c.postcode,
                "X00001",
                "2023-01-01",
                "",
            ],
        )?;
        ch.fault(
            &mut truth,
            "gp_practice",
            "E015",
            [
                nhs_number(900_001).as_str(),
                "LX2",
                "A",
                c.surname,
                "2023-01-01",
                "male",
                &c.postcode,
                "12345",
                "2023-01-01",
                "",
            ],
        )?;
        ch.fault(
            &mut truth,
            "registered_to",
            "E011",
            [
                nhs_number(900_002).as_str(),
                "LX3",
                "A",
                c.surname,
                "2023-01-01",
                "male",
                &c.postcode,
                "X00001",
                "2023-01-01",
                "2022-01-01",
            ],
        )?;
    }
    counts.insert(ch.name.clone(), r(&ch));
    let mut hv = Out::new(out, "hv_contacts.csv", &header(ExtractKind::HvContacts))?;
    let mut asq = Out::new(
        out,
        "asq3.csv",
        &[
            "nhs_number",
            "review_date",
            "questionnaire_months",
            "communication",
            "gross_motor",
            "fine_motor",
            "problem_solving",
            "personal_social",
            "score_basis",
        ],
    )?;
    let mut cid = 0u64;
    let feeding: &[(&str, u32)] = &[
        ("total", 30),
        ("partial", 15),
        ("none", 50),
        ("not_recorded", 5),
    ];
    for c in &children {
        let deprived = lsoas[c.lsoa].idaci_decile <= 3;
        let reviews: [(&str, u64, u64, f64); 4] = [
            ("NBV", 7, 20, 0.98),
            ("REVIEW_6_8W", 42, 70, 0.9),
            ("REVIEW_12M", 330, 460, 0.8),
            ("REVIEW_2_2_5Y", 760, 960, 0.72),
        ];
        for (kind, lo, hi, p_done) in reviews {
            let d = c.dob + Days::new(rng.random_range(lo..=hi));
            if d > AS_AT
                || d < start
                || !rng.random_bool(if deprived { p_done - 0.05 } else { p_done })
            {
                continue;
            }
            cid += 1;
            let feed = if matches!(kind, "NBV" | "REVIEW_6_8W") {
                pick_weighted(&mut rng, feeding)
            } else {
                ""
            };
            let level = if deprived && rng.random_bool(0.3) {
                "universal_plus"
            } else {
                "universal"
            };
            hv.rec([
                &format!("H{cid:09}"),
                c.nhs.as_str(),
                kind,
                &d.to_string(),
                "true",
                feed,
                level,
            ])?;
            if kind == "REVIEW_2_2_5Y" && rng.random_bool(0.85) {
                let months = crate::sources::check::age_months(c.dob, d);
                let q = [24, 27, 30, 33, 36]
                    .into_iter()
                    .min_by_key(|q| (q - months).abs())
                    .unwrap_or(27);
                let score = |rng: &mut ChaCha8Rng| {
                    (rng.random_range(if deprived { 3..=12 } else { 4..=12 }) * 5).to_string()
                };
                let s: Vec<String> = (0..5).map(|_| score(&mut rng)).collect();
                asq.rec([
                    c.nhs.as_str(),
                    &d.to_string(),
                    &q.to_string(),
                    &s[0],
                    &s[1],
                    &s[2],
                    &s[3],
                    &s[4],
                    "adjusted",
                ])?;
            }
        }
        if rng.random_bool(0.05) {
            cid += 1;
            let d = date_between(&mut rng, c.dob.max(start), AS_AT);
            hv.rec([
                &format!("H{cid:09}"),
                c.nhs.as_str(),
                "OTHER",
                &d.to_string(),
                "false",
                "",
                "partnership_plus",
            ])?;
        }
    }
    if dirty {
        let c = children
            .iter()
            .find(|c| c.dob < AS_AT - Days::new(400))
            .expect("an older child");
        hv.fault(
            &mut truth,
            "face_to_face",
            "E010",
            [
                "HX1",
                c.nhs.as_str(),
                "OTHER",
                "2025-01-10",
                "perhaps",
                "",
                "",
            ],
        )?;
        hv.fault(
            &mut truth,
            "contact_type",
            "E004",
            [
                "HX2",
                c.nhs.as_str(),
                "REVIEW_9M",
                "2025-01-10",
                "true",
                "",
                "",
            ],
        )?;
        asq.fault(
            &mut truth,
            "communication",
            "E009",
            [
                c.nhs.as_str(),
                "2025-01-11",
                "30",
                "75",
                "30",
                "30",
                "30",
                "30",
                "adjusted",
            ],
        )?;
        asq.fault(
            &mut truth,
            "questionnaire_months",
            "E004",
            [
                c.nhs.as_str(),
                "2025-01-12",
                "25",
                "30",
                "30",
                "30",
                "30",
                "30",
                "adjusted",
            ],
        )?;
    }
    counts.insert(hv.name.clone(), r(&hv));
    counts.insert(asq.name.clone(), r(&asq));
    for o in [pc, lk, pop, ce, ra, ac, reg, at, ch, hv, asq] {
        o.w.into_inner()
            .map_err(|e| anyhow::anyhow!("flush failed: {e}"))?;
    }
    for (file, n) in social::write(
        out,
        &children,
        &|c: &Child| lsoas[c.lsoa].idaci_decile <= 3,
        seed,
    )? {
        counts.insert(file, n);
    }
    if dirty {
        let mut gt = csv::Writer::from_path(out.join("ground_truth.csv"))?;
        gt.write_record(["file", "row_number", "field", "rule"])?;
        for (f, row, field, rule) in &truth.rows {
            gt.write_record([f.as_str(), &row.to_string(), field, rule])?;
        }
        gt.flush()?;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A region has more than 99 postcode districts: every one must still be a valid
    /// postcode (E007), and the first 99 keep the names counties and the demo always had.
    #[test]
    fn postcode_districts_stay_valid_past_99() {
        assert_eq!(postcode_district(0), ("XQ".to_string(), 1));
        assert_eq!(postcode_district(98), ("XQ".to_string(), 99));
        assert_eq!(postcode_district(99), ("XR".to_string(), 1));
        for index in [0, 98, 99, 150, 500] {
            let (area, district) = postcode_district(index);
            let postcode = format!("{area}{district} 1AB");
            assert!(
                crate::identity::checks::postcode(&postcode).is_some(),
                "{postcode}"
            );
        }
    }
}
