//! Finance extracts (extracts.md §7): `centre_costs` (what each site, and the centre of the
//! council, cost in a financial year) and `contracts` (commissioned lots). Not personal data.

use super::{ColType, Field, KindState, Req, RowCheck, TableBuilder, field};
use crate::rules::Rule;

/// The reserved centre id of costs held centrally (value-for-money.md §1).
pub const CENTRAL: &str = "CENTRAL";

/// Canonical input fields of `centre_costs`.
pub const COST_FIELDS: &[Field] = &[
    field("centre_id", Req::Yes),
    field("financial_year", Req::Yes),
    field("staff", Req::Yes),
    field("premises", Req::Yes),
    field("commissioned", Req::Yes),
    field("other", Req::Yes),
    field("total", Req::Yes),
];

/// Curated columns of `centre_costs`.
pub const COST_COLUMNS: &[(&str, ColType)] = &[
    ("centre_id", ColType::Str),
    ("financial_year", ColType::Str),
    ("staff", ColType::Float),
    ("premises", ColType::Float),
    ("commissioned", ColType::Float),
    ("other", ColType::Float),
    ("total", ColType::Float),
];

/// Canonical input fields of `contracts`.
pub const CONTRACT_FIELDS: &[Field] = &[
    field("lot", Req::Yes),
    field("provider", Req::Yes),
    field("centre_ids", Req::Yes),
    field("annual_value", Req::Yes),
    field("start_date", Req::Yes),
    field("end_date", Req::Yes),
    field("extension_option", Req::No),
];

/// Curated columns of `contracts` (`centre_ids` kept as the semicolon list it arrived as).
pub const CONTRACT_COLUMNS: &[(&str, ColType)] = &[
    ("lot", ColType::Str),
    ("provider", ColType::Str),
    ("centre_ids", ColType::Str),
    ("annual_value", ColType::Float),
    ("start_date", ColType::Date),
    ("end_date", ColType::Date),
    ("extension_option", ColType::Str),
];

/// The largest amount accepted (a guard against a misplaced decimal point, not a budget rule).
const MAX_GBP: f64 = 1e10;

/// `2024-25`: four digits, a hyphen, the next year's last two digits.
pub fn valid_financial_year(fy: &str) -> bool {
    let Some((a, b)) = fy.split_once('-') else {
        return false;
    };
    match (a.parse::<u32>(), b.parse::<u32>()) {
        (Ok(start), Ok(end)) if a.len() == 4 && b.len() == 2 => (start + 1) % 100 == end,
        _ => false,
    }
}

/// `2x12`: up to two extensions of 12 months.
fn valid_extension(option: &str) -> bool {
    option.split_once('x').is_some_and(|(n, m)| {
        n.parse::<u32>().is_ok_and(|n| n > 0) && m.parse::<u32>().is_ok_and(|m| m > 0)
    })
}

pub(super) fn cost_row(r: &mut RowCheck<'_>, out: &mut TableBuilder, st: &mut KindState) -> bool {
    let centre = r.required("centre_id");
    if let Some(c) = centre
        && c != CENTRAL
        && !r.ctx.centres.contains_key(c)
    {
        r.issue(
            "centre_id",
            Rule::E008,
            format!("Centre {c:?} is not in the centres extract (use CENTRAL for central costs)."),
        );
    }
    let fy = r.identifier(
        "financial_year",
        true,
        valid_financial_year,
        "financial year (YYYY-YY, e.g. 2024-25)",
    );
    let parts: Vec<Option<f64>> = ["staff", "premises", "commissioned", "other"]
        .iter()
        .map(|name| r.number(name, true, 0.0, MAX_GBP))
        .collect();
    let total = r.number("total", true, 0.0, MAX_GBP);
    if let (Some(total), [Some(a), Some(b), Some(c), Some(d)]) = (total, parts.as_slice()) {
        let sum = a + b + c + d;
        if (total - sum).abs() > 1.0 {
            r.issue(
                "total",
                Rule::E012,
                format!(
                    "total £{total:.2} is not staff + premises + commissioned + other = £{sum:.2} \
                     (more than £1 apart)."
                ),
            );
        }
    }
    if let (Some(c), Some(fy)) = (centre, fy) {
        r.unique(
            &mut st.seen,
            "financial_year",
            &format!("{c}\u{1f}{fy}"),
            "centre and financial year",
        );
    }
    if !r.ok() {
        return false;
    }
    out.str(centre).str(fy);
    for p in parts {
        out.float(p);
    }
    out.float(total);
    true
}

pub(super) fn contract_row(
    r: &mut RowCheck<'_>,
    out: &mut TableBuilder,
    st: &mut KindState,
) -> bool {
    let lot = r.required("lot");
    let provider = r.required("provider");
    let centre_ids = r.required("centre_ids");
    if let Some(list) = centre_ids {
        let unknown: Vec<&str> = list
            .split(';')
            .map(str::trim)
            .filter(|c| !c.is_empty() && !r.ctx.centres.contains_key(*c))
            .collect();
        if !unknown.is_empty() {
            r.issue(
                "centre_ids",
                Rule::E008,
                format!("Centres {unknown:?} are not in the centres extract."),
            );
        }
    }
    let value = r.number("annual_value", true, 0.0, MAX_GBP);
    let start = r.date("start_date", true);
    let end = r.date("end_date", true);
    r.not_before("end_date", end, "start_date", start);
    let extension = r.get("extension_option").filter(|v| !v.is_empty());
    if let Some(x) = extension
        && !valid_extension(x)
    {
        r.issue(
            "extension_option",
            Rule::E015,
            format!("extension_option {x:?} is not <count>x<months>, e.g. 2x12."),
        );
    }
    if let (Some(l), Some(s)) = (lot, start) {
        r.unique(
            &mut st.seen,
            "start_date",
            &format!("{l}\u{1f}{s}"),
            "lot and start date",
        );
    }
    if !r.ok() {
        return false;
    }
    out.str(lot)
        .str(provider)
        .str(centre_ids)
        .float(value)
        .date(start)
        .date(end)
        .str(extension);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(valid_financial_year("2024-25"));
        assert!(valid_financial_year("1999-00"));
        assert!(!valid_financial_year("2024-26"));
        assert!(!valid_financial_year("24-25"));
        assert!(valid_extension("2x12"));
        assert!(!valid_extension("2x"));
        assert!(!valid_extension("0x12"));
    }
}
