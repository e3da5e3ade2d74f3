//! Public reference files read through the same engine as extracts (extracts.md §8): IoD
//! File 7, postcode directories, the LSOA 2011→2021 lookup and ONS LSOA population. Their
//! published headers are the default column mapping; a `[source.columns]` table overrides
//! them when a release renames a column.

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field};
use crate::rules::Rule;
use chrono::NaiveDate;

/// IoD File 7 fields.
pub const IOD_FIELDS: &[Field] = &[
    field("lsoa_code", Req::Yes),
    field("lsoa_name", Req::No),
    field("imd_rank", Req::Yes),
    field("imd_decile", Req::Yes),
    field("idaci_score", Req::Yes),
    field("idaci_rank", Req::Yes),
    field("idaci_decile", Req::Yes),
];

/// IoD curated columns.
pub const IOD_COLUMNS: &[(&str, ColType)] = &[
    ("lsoa_vintage", ColType::Int),
    ("lsoa_code", ColType::Str),
    ("lsoa_name", ColType::Str),
    ("imd_rank", ColType::Int),
    ("imd_decile", ColType::Int),
    ("idaci_score", ColType::Float),
    ("idaci_rank", ColType::Int),
    ("idaci_decile", ColType::Int),
];

/// File 7 headers for a vintage's LSOA code and name columns, plus the shared index headers.
pub fn iod_default_columns(vintage: u16) -> Vec<(&'static str, String)> {
    vec![
        ("lsoa_code", format!("LSOA code ({vintage})")),
        ("lsoa_name", format!("LSOA name ({vintage})")),
        ("imd_rank", "Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)".into()),
        ("imd_decile", "Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)".into()),
        ("idaci_score", "Income Deprivation Affecting Children Index (IDACI) Score (rate)".into()),
        ("idaci_rank", "Income Deprivation Affecting Children Index (IDACI) Rank (where 1 is most deprived)".into()),
        ("idaci_decile", "Income Deprivation Affecting Children Index (IDACI) Decile (where 1 is most deprived 10% of LSOAs)".into()),
    ]
}

/// Rows in the national file of each vintage; a different count is W020.
pub fn iod_expected_rows(vintage: u16) -> u64 {
    if vintage == 2011 { 32_844 } else { 33_755 }
}

pub(super) fn iod_row(
    r: &mut RowCheck<'_>,
    out: &mut TableBuilder,
    st: &mut KindState,
    vintage: u16,
) -> bool {
    let code = r.identifier(
        "lsoa_code",
        true,
        super::reach_areas::valid_lsoa,
        "LSOA code",
    );
    if let Some(c) = code {
        r.unique(&mut st.seen, "lsoa_code", c, "LSOA code");
    }
    let name = r.get("lsoa_name");
    let imd_rank = r.int("imd_rank", true, 1, 40_000);
    let imd_decile = r.int("imd_decile", true, 1, 10);
    let idaci_score = r.number("idaci_score", true, 0.0, 1.0);
    let idaci_rank = r.int("idaci_rank", true, 1, 40_000);
    let idaci_decile = r.int("idaci_decile", true, 1, 10);
    if !r.ok() {
        return false;
    }
    out.int(Some(i64::from(vintage)))
        .str(code)
        .str(name)
        .int(imd_rank)
        .int(imd_decile)
        .float(idaci_score)
        .int(idaci_rank)
        .int(idaci_decile);
    true
}

/// Postcode directory fields (ONSPD names; NSPL/NHSPD by mapping).
pub const POSTCODE_FIELDS: &[Field] = &[
    field("pcds", Req::Yes),
    field("doterm", Req::No),
    field("lsoa11", Req::No),
    field("lsoa21", Req::No),
    field("lat", Req::No),
    field("long", Req::No),
    field("usertype", Req::No),
];

/// Postcode directory curated columns. Postcodes are public geography, not personal data.
pub const POSTCODE_COLUMNS: &[(&str, ColType)] = &[
    ("pcds", ColType::Str),
    ("terminated", ColType::Date),
    ("lsoa11", ColType::Str),
    ("lsoa21", ColType::Str),
    ("lat", ColType::Float),
    ("lon", ColType::Float),
    ("usertype", ColType::Int),
];

pub(super) fn postcode_row(
    r: &mut RowCheck<'_>,
    out: &mut TableBuilder,
    st: &mut KindState,
) -> bool {
    let pcds = r.required("pcds").and_then(|p| {
        let n = crate::identity::checks::postcode(p);
        if n.is_none() {
            r.issue(
                "pcds",
                Rule::E007,
                "Directory postcode is not in a valid UK format.",
            );
        }
        n
    });
    if let Some(p) = &pcds {
        r.unique(&mut st.seen, "pcds", p, "postcode");
    }
    let terminated = r.get("doterm").and_then(|v| {
        let d = NaiveDate::parse_from_str(&format!("{v}01"), "%Y%m%d").ok();
        if d.is_none() {
            r.issue("doterm", Rule::E002, "doterm is not a YYYYMM month.");
        }
        d
    });
    let lsoa11 = r
        .get("lsoa11")
        .filter(|l| super::reach_areas::valid_lsoa(l));
    let lsoa21 = r
        .get("lsoa21")
        .filter(|l| super::reach_areas::valid_lsoa(l));
    // ONSPD puts 99.999999 in lat for postcodes without a grid reference: that is "missing".
    let lat = r.number("lat", false, -90.0, 100.0).filter(|l| *l <= 90.0);
    let lon = r
        .number("long", false, -180.0, 180.0)
        .filter(|_| lat.is_some());
    let usertype = r.int("usertype", false, 0, 1);
    if !r.ok() {
        return false;
    }
    out.str(pcds.as_deref())
        .date(terminated)
        .str(lsoa11)
        .str(lsoa21)
        .float(lat)
        .float(lon)
        .int(usertype);
    true
}

/// LSOA 2011→2021 lookup fields.
pub const LOOKUP_FIELDS: &[Field] = &[
    field("lsoa11cd", Req::Yes),
    field("lsoa21cd", Req::Yes),
    field("chgind", Req::Yes),
    field("lad22cd", Req::No),
];

/// Lookup curated columns.
pub const LOOKUP_COLUMNS: &[(&str, ColType)] = &[
    ("lsoa11cd", ColType::Str),
    ("lsoa21cd", ColType::Str),
    ("chgind", ColType::Str),
    ("lad22cd", ColType::Str),
];

pub(super) fn lookup_row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let l11 = r.identifier(
        "lsoa11cd",
        true,
        super::reach_areas::valid_lsoa,
        "LSOA 2011 code",
    );
    let l21 = r.identifier(
        "lsoa21cd",
        true,
        super::reach_areas::valid_lsoa,
        "LSOA 2021 code",
    );
    let chg = r.required("chgind");
    if let Some(c) = chg
        && !matches!(c, "U" | "S" | "M" | "X")
    {
        r.issue("chgind", Rule::E004, "CHGIND must be U, S, M or X.");
    }
    if let (Some(a), Some(b)) = (l11, l21) {
        r.unique(&mut st.seen, "lsoa11cd", &format!("{a}|{b}"), "LSOA pair");
    }
    let lad = r.get("lad22cd");
    if !r.ok() {
        return false;
    }
    out.str(l11).str(l21).str(chg).str(lad);
    true
}

/// ONS LSOA population fields: the LSOA code and single years of age 0–4 (configured
/// per release through the column mapping).
pub const POPULATION_FIELDS: &[Field] = &[
    field("lsoa_code", Req::Yes),
    field("age_0", Req::Yes),
    field("age_1", Req::Yes),
    field("age_2", Req::Yes),
    field("age_3", Req::Yes),
    field("age_4", Req::Yes),
];

/// Population curated columns.
pub const POPULATION_COLUMNS: &[(&str, ColType)] = &[
    ("lsoa_vintage", ColType::Int),
    ("lsoa_code", ColType::Str),
    ("age_0", ColType::Int),
    ("age_1", ColType::Int),
    ("age_2", ColType::Int),
    ("age_3", ColType::Int),
    ("age_4", ColType::Int),
    ("population_0_4", ColType::Int),
];

pub(super) fn population_row(
    r: &mut RowCheck<'_>,
    out: &mut TableBuilder,
    st: &mut KindState,
    vintage: u16,
) -> bool {
    let code = r.identifier(
        "lsoa_code",
        true,
        super::reach_areas::valid_lsoa,
        "LSOA code",
    );
    if let Some(c) = code {
        r.unique(&mut st.seen, "lsoa_code", c, "LSOA code");
    }
    let ages: Vec<Option<i64>> = ["age_0", "age_1", "age_2", "age_3", "age_4"]
        .iter()
        .map(|a| r.int(a, true, 0, 100_000))
        .collect();
    if !r.ok() {
        return false;
    }
    out.int(Some(i64::from(vintage))).str(code);
    for a in &ages {
        out.int(*a);
    }
    out.int(Some(ages.iter().flatten().sum()));
    true
}
