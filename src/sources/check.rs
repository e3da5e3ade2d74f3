//! `RowCheck`: typed access to one record's canonical values, recording every rule broken.
//!
//! Each accessor parses a field and, when the value breaks a rule, records an issue and
//! returns `None`; the kind module then decides from [`RowCheck::ok`] whether the record
//! is loaded. One issue is recorded per failing field and rule.

use std::rc::Rc;

use chrono::{Datelike, NaiveDate};

use super::context::{Context, PostcodeEntry};
use super::reader::Pos;
use super::{Field, FileMeta, Issue, Mapping, Placement};
use crate::identity::checks;
use crate::rules::{Rule, Severity};

/// A postcode resolved to geography; the postcode itself is not kept.
#[derive(Debug, Clone, Default)]
pub struct ResolvedPostcode {
    /// Normalised postcode; used transiently (demographic keys), never stored.
    pub normalised: String,
    /// Outward code (postcode district), stored.
    pub outward: String,
    /// LSOA 2011, when resolved.
    pub lsoa11: Option<String>,
    /// LSOA 2021, when resolved.
    pub lsoa21: Option<String>,
    /// Postcode centroid (WGS84), when known.
    pub lat_lon: Option<(f64, f64)>,
}

/// One record under validation.
pub struct RowCheck<'a> {
    fields: &'static [Field],
    values: &'a [Option<&'a str>],
    source_names: &'a [String],
    pos: Pos,
    /// The file being read.
    pub file: &'a FileMeta,
    mapping: &'a Mapping,
    /// References, code lists and the pseudonymiser.
    pub ctx: &'a Context,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
    keys: &'a KeyCache,
}

/// Pseudonyms computed so far in one file, by key kind (e.g. `("local", "_family")`) and
/// the 128-bit hash of the raw identifier. Ids repeat across a file (a person's many
/// sessions) and an HMAC costs a microsecond or more, so each is computed once; keying by
/// the hash keeps a lookup to one memory access instead of chasing the id's heap string.
#[derive(Default)]
pub struct KeyCache(std::cell::RefCell<Vec<KeyMap>>);

type KeyMap = (
    (&'static str, &'static str),
    std::collections::HashMap<
        super::KeyHash,
        Rc<str>,
        std::hash::BuildHasherDefault<super::PrehashedKey>,
    >,
);

/// An ISO date (`YYYY-MM-DD`). Every date of a canonical extract takes this path, millions
/// per file, so the exact ten-byte form is read digit by digit; anything else (a sign, more
/// year digits, spaces) goes to chrono, which reads the ten-byte form the same way.
pub(crate) fn iso_date(v: &str) -> Option<NaiveDate> {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10))
    {
        return NaiveDate::from_ymd_opt(y as i32, m, d);
    }
    v.parse::<NaiveDate>().ok()
}

impl<'a> RowCheck<'a> {
    /// Wraps one mapped record.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        fields: &'static [Field],
        values: &'a [Option<&'a str>],
        source_names: &'a [String],
        pos: Pos,
        file: &'a FileMeta,
        mapping: &'a Mapping,
        ctx: &'a Context,
        keys: &'a KeyCache,
    ) -> Self {
        Self {
            fields,
            values,
            source_names,
            pos,
            file,
            mapping,
            ctx,
            errors: Vec::new(),
            warnings: Vec::new(),
            keys,
        }
    }

    fn index(&self, name: &str) -> usize {
        // Called for every field of every record: kinds pass the same string literals their
        // FIELDS table holds, so comparing addresses first skips most string comparisons.
        let same =
            |f: &Field| std::ptr::eq(f.name.as_ptr(), name.as_ptr()) && f.name.len() == name.len();
        self.fields
            .iter()
            .position(same)
            .or_else(|| self.fields.iter().position(|f| f.name == name))
            .unwrap_or_else(|| panic!("{name} is not a field of this extract"))
    }

    /// The record's row number.
    pub fn row_number(&self) -> u64 {
        self.pos.row_number
    }

    /// Whether no error has been recorded.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The issues recorded: (errors, warnings).
    pub fn into_issues(self) -> (Vec<Issue>, Vec<Issue>) {
        (self.errors, self.warnings)
    }

    /// The raw canonical value (None when null).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.values[self.index(name)]
    }

    /// Records a broken rule against `field` ("" for the record as a whole).
    pub fn issue(&mut self, field: &str, rule: Rule, message: impl Into<String>) {
        let (source_column, value_preview, value_hmac) = if field.is_empty() {
            (String::new(), None, None)
        } else {
            let i = self.index(field);
            let value = self.values[i];
            let identifying = self.fields[i].identifying;
            (
                self.source_names[i].clone(),
                value
                    .filter(|_| !identifying)
                    .map(|v| v.chars().take(64).collect()),
                value
                    .filter(|_| identifying)
                    .map(|v| self.ctx.pseudonymiser.hmac(v)),
            )
        };
        let issue = Issue {
            row_number: self.pos.row_number,
            byte_offset: self.pos.byte_offset,
            field: field.to_string(),
            source_column,
            rule,
            message: message.into(),
            value_preview,
            value_hmac,
            xml_path: None,
            place: self.placement(),
        };
        match rule.severity() {
            Severity::Warning | Severity::Info => self.warnings.push(issue),
            Severity::Error | Severity::File => self.errors.push(issue),
        }
    }

    /// The namespace of local ids in this file's mapping.
    pub fn namespace(&self) -> &str {
        &self.mapping.namespace
    }

    /// A required text field (E001 when missing).
    pub fn required(&mut self, name: &str) -> Option<&'a str> {
        let v = self.get(name);
        if v.is_none() {
            self.issue(
                name,
                Rule::E001,
                format!("{name} is required; fill it in the source system."),
            );
        }
        v
    }

    /// The field's value; a missing `required` one is E001.
    fn present(&mut self, name: &str, required: bool) -> Option<&'a str> {
        if required {
            self.required(name)
        } else {
            self.get(name)
        }
    }

    /// A conditionally required field: required when `condition` holds.
    pub fn required_if(&mut self, name: &str, condition: bool, why: &str) -> Option<&'a str> {
        let v = self.get(name);
        if v.is_none() && condition {
            self.issue(
                name,
                Rule::E001,
                format!("{name} is required {why}; fill it in the source system."),
            );
        }
        v
    }

    /// A text field matching an identifier pattern (E015).
    pub fn identifier(
        &mut self,
        name: &str,
        required: bool,
        valid: impl Fn(&str) -> bool,
        what: &str,
    ) -> Option<&'a str> {
        let v = self.present(name, required)?;
        if valid(v) {
            Some(v)
        } else {
            self.issue(name, Rule::E015, format!("{name} is not a valid {what}."));
            None
        }
    }

    /// The record's centre and date as written, for an issue (when the extract has them).
    fn placement(&self) -> Placement {
        let raw = |name: &str| {
            self.fields
                .iter()
                .position(|f| f.name == name)
                .and_then(|i| self.values[i])
        };
        Placement {
            centre_id: raw("centre_id").map(str::to_string),
            record_date: ["session_date", "registration_date"]
                .into_iter()
                .find_map(raw)
                .and_then(|v| self.parse_date(v)),
        }
    }

    /// `v` in one of the mapping's date formats (ISO when it declares none).
    fn parse_date(&self, v: &str) -> Option<NaiveDate> {
        let formats = &self.mapping.date_formats;
        if formats.is_empty() {
            return iso_date(v);
        }
        formats.iter().find_map(|f| {
            if f == "%Y-%m-%d" {
                iso_date(v)
            } else {
                NaiveDate::parse_from_str(v, f).ok()
            }
        })
    }

    /// A date in one of the mapping's formats (E002); `required` adds E001.
    pub fn date(&mut self, name: &str, required: bool) -> Option<NaiveDate> {
        let v = self.present(name, required)?;
        match self.parse_date(v) {
            Some(d) => Some(d),
            None => {
                let formats = if self.mapping.date_formats.is_empty() {
                    "%Y-%m-%d".to_string()
                } else {
                    self.mapping.date_formats.join(" or ")
                };
                self.issue(
                    name,
                    Rule::E002,
                    format!("{name} is not a date in the declared format ({formats})."),
                );
                None
            }
        }
    }

    /// E003 when `date` is after the file's as-at date.
    pub fn not_future(&mut self, name: &str, date: Option<NaiveDate>) -> Option<NaiveDate> {
        let d = date?;
        if d > self.file.as_at {
            self.issue(name, Rule::E003, format!("{name} {d} is after the extract's as-at date {}; check the date in the source system.", self.file.as_at));
            return None;
        }
        Some(d)
    }

    /// E003 when `date` is before the person's date of birth.
    pub fn not_before_birth(
        &mut self,
        name: &str,
        date: Option<NaiveDate>,
        dob: Option<NaiveDate>,
    ) -> Option<NaiveDate> {
        let d = date?;
        if let Some(dob) = dob
            && d < dob
        {
            self.issue(
                name,
                Rule::E003,
                format!("{name} {d} is before the date of birth; check both dates."),
            );
            return None;
        }
        Some(d)
    }

    /// E011 when `end` is before `start`.
    pub fn not_before(
        &mut self,
        end_name: &str,
        end: Option<NaiveDate>,
        start_name: &str,
        start: Option<NaiveDate>,
    ) {
        if let (Some(e), Some(s)) = (end, start)
            && e < s
        {
            self.issue(
                end_name,
                Rule::E011,
                format!("{end_name} {e} is before {start_name} {s}."),
            );
        }
    }

    /// A code from the named reference list (E004).
    pub fn code(&mut self, name: &str, list: &str, required: bool) -> Option<&'a str> {
        let v = self.present(name, required)?;
        if self.ctx.has_code(list, v) {
            Some(v)
        } else {
            self.issue(name, Rule::E004, format!("{name} {v:?} is not in the code list {list}; map the source value under [source.values.{name}] or add the code to the reference table."));
            None
        }
    }

    /// A semicolon-separated list of codes (E004 per unknown code).
    pub fn code_list(&mut self, name: &str, list: &str) -> Option<Vec<&'a str>> {
        let v = self.get(name)?;
        let codes: Vec<&str> = v
            .split(';')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let unknown: Vec<&str> = codes
            .iter()
            .copied()
            .filter(|c| !self.ctx.has_code(list, c))
            .collect();
        if unknown.is_empty() {
            Some(codes)
        } else {
            self.issue(
                name,
                Rule::E004,
                format!("{name} has code(s) {unknown:?} not in the code list {list}."),
            );
            None
        }
    }

    /// A boolean: true/false, yes/no, y/n, 1/0, case-insensitive (E010).
    pub fn boolean(&mut self, name: &str, required: bool) -> Option<bool> {
        let v = self.present(name, required)?;
        match v.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => Some(true),
            "false" | "no" | "n" | "0" => Some(false),
            _ => {
                self.issue(
                    name,
                    Rule::E010,
                    format!("{name} {v:?} is not a boolean (true/false, yes/no, y/n, 1/0)."),
                );
                None
            }
        }
    }

    /// An integer within `min..=max` (E010, E009).
    pub fn int(&mut self, name: &str, required: bool, min: i64, max: i64) -> Option<i64> {
        let v = self.present(name, required)?;
        match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(n) => {
                self.issue(
                    name,
                    Rule::E009,
                    format!("{name} {n} is outside {min}–{max}."),
                );
                None
            }
            Err(_) => {
                self.issue(
                    name,
                    Rule::E010,
                    format!("{name} {v:?} is not a whole number."),
                );
                None
            }
        }
    }

    /// A decimal number within `min..=max` (E010, E009).
    pub fn number(&mut self, name: &str, required: bool, min: f64, max: f64) -> Option<f64> {
        let v = self.present(name, required)?;
        match v.parse::<f64>() {
            Ok(n) if n.is_finite() && n >= min && n <= max => Some(n),
            Ok(n) => {
                self.issue(
                    name,
                    Rule::E009,
                    format!("{name} {n} is outside {min}–{max}."),
                );
                None
            }
            Err(_) => {
                self.issue(name, Rule::E010, format!("{name} {v:?} is not a number."));
                None
            }
        }
    }

    /// A pseudonymised local id in the mapping's namespace (`key_local`).
    pub fn local_key(&mut self, name: &str, namespace_suffix: &'static str) -> Option<Rc<str>> {
        let v = self.required(name)?;
        let namespace = &self.mapping.namespace;
        Some(self.cached(("local", namespace_suffix), v, |p| {
            p.local(&format!("{namespace}{namespace_suffix}"), v)
        }))
    }

    fn cached(
        &self,
        kind: (&'static str, &'static str),
        id: &str,
        compute: impl FnOnce(&crate::identity::Pseudonymiser) -> String,
    ) -> Rc<str> {
        let mut maps = self.keys.0.borrow_mut();
        // Kinds are string literals: compare addresses before contents.
        let same = |a: &str, b: &str| std::ptr::eq(a, b) || a == b;
        let slot = match maps
            .iter()
            .position(|(k, _)| same(k.0, kind.0) && same(k.1, kind.1))
        {
            Some(i) => i,
            None => {
                maps.push((kind, Default::default()));
                maps.len() - 1
            }
        };
        let map = &mut maps[slot].1;
        let h = super::key_hash(id);
        map.entry(h)
            .or_insert_with(|| compute(&self.ctx.pseudonymiser).into())
            .clone()
    }

    /// A UPN checked by its check letter (E013), returned as its `key_upn`.
    pub fn upn_key(&mut self, name: &str, required: bool) -> Option<Rc<str>> {
        let v = self.present(name, required)?;
        match checks::upn(v) {
            Some(upn) => Some(self.cached(("upn", ""), &upn, |p| p.upn(&upn))),
            None => {
                self.issue(name, Rule::E013, "UPN is not valid (13 characters with a correct check letter): correct it in the source system (the quarantine keeps only its HMAC).");
                None
            }
        }
    }

    /// `key_demo` (extracts.md §11.2) from a surname, a date of birth and a resolved
    /// postcode; `None` when any is missing or the surname has no letters left.
    pub fn demo_key(
        &self,
        surname: Option<&str>,
        dob: Option<NaiveDate>,
        postcode: Option<&ResolvedPostcode>,
    ) -> Option<String> {
        let (surname, dob, postcode) = (surname?, dob?, postcode?);
        let s = checks::surname(surname);
        (!s.is_empty()).then(|| {
            self.ctx
                .pseudonymiser
                .demographic(&s, &dob.to_string(), &postcode.normalised)
        })
    }

    /// `key_demo_name` (the optional DEMO_NAME rule) from a surname, the first given name and
    /// a date of birth; `None` when any is missing or a name has no letters left.
    pub fn demo_name_key(
        &self,
        surname: Option<&str>,
        given: Option<&str>,
        dob: Option<NaiveDate>,
    ) -> Option<String> {
        let (s, g) = (checks::surname(surname?), checks::given_name(given?));
        let dob = dob?;
        (!s.is_empty() && !g.is_empty()).then(|| {
            self.ctx
                .pseudonymiser
                .demographic_name(&s, &g, &dob.to_string())
        })
    }

    /// An NHS number checked by modulus 11 (E006), returned as its `key_nhs`.
    pub fn nhs_key(&mut self, name: &str, required: bool) -> Option<Rc<str>> {
        let v = self.present(name, required)?;
        match checks::nhs_number(v) {
            Some(digits) => Some(self.cached(("nhs", ""), &digits, |p| p.nhs(&digits))),
            None => {
                self.issue(name, Rule::E006, "NHS number is not 10 digits or fails the modulus 11 check; correct it in the source system (the quarantine keeps only its HMAC).");
                None
            }
        }
    }

    /// A postcode: format checked (E007) and resolved through the directory (W001, W002,
    /// W017). `event` is the date the postcode applied on.
    pub fn postcode(
        &mut self,
        name: &str,
        required: bool,
        event: Option<NaiveDate>,
    ) -> Option<ResolvedPostcode> {
        let v = self.present(name, required)?;
        let Some(normalised) = checks::postcode(v) else {
            self.issue(
                name,
                Rule::E007,
                "Postcode is not in a valid UK format; correct it in the source system.",
            );
            return None;
        };
        let outward = checks::outward_code(&normalised).to_string();
        let geo = &self.ctx.geography;
        let Some(entry) = geo.postcodes.get(&normalised) else {
            self.issue(name, Rule::W001, "Postcode is not in the postcode directory, so its LSOA is unknown; check it, or load a newer directory.");
            return Some(ResolvedPostcode {
                normalised,
                outward,
                ..Default::default()
            });
        };
        if let (Some(term), Some(ev)) = (entry.terminated, event)
            && term < ev
        {
            self.issue(
                name,
                Rule::W002,
                format!(
                    "Postcode was terminated in {}-{:02}, before {ev}; resolved anyway.",
                    term.year(),
                    term.month()
                ),
            );
        }
        let (lsoa11, lsoa21) = self.fill_lsoas(name, entry);
        Some(ResolvedPostcode {
            normalised,
            outward,
            lsoa11,
            lsoa21,
            lat_lon: entry.lat.zip(entry.lon),
        })
    }

    fn fill_lsoas(
        &mut self,
        name: &str,
        entry: &PostcodeEntry,
    ) -> (Option<String>, Option<String>) {
        let geo = &self.ctx.geography;
        let unique = |m: &std::collections::HashMap<String, Vec<String>>,
                      k: &Option<String>|
         -> Option<String> {
            let v = m.get(k.as_ref()?)?;
            (v.len() == 1).then(|| v[0].clone())
        };
        match (&entry.lsoa11, &entry.lsoa21) {
            (Some(_), Some(_)) | (None, None) => (entry.lsoa11.clone(), entry.lsoa21.clone()),
            (None, Some(_)) => {
                let l11 = unique(&geo.lsoa21_to_11, &entry.lsoa21);
                if l11.is_some() {
                    self.issue(
                        name,
                        Rule::W017,
                        "LSOA 2011 derived from LSOA 2021 through the ONS lookup.",
                    );
                }
                (l11, entry.lsoa21.clone())
            }
            (Some(_), None) => {
                let l21 = unique(&geo.lsoa11_to_21, &entry.lsoa11);
                if l21.is_some() {
                    self.issue(
                        name,
                        Rule::W017,
                        "LSOA 2021 derived from LSOA 2011 through the ONS lookup.",
                    );
                }
                (entry.lsoa11.clone(), l21)
            }
        }
    }

    /// E005: records `key` and quarantines this record when an earlier row had it.
    pub fn unique(
        &mut self,
        seen: &mut super::SeenKeys,
        field: &str,
        key: &str,
        what: &str,
    ) -> bool {
        match seen.repeat_of(super::key_hash(key), self.pos.row_number) {
            Some(first) => {
                self.issue(field, Rule::E005, format!("Duplicate {what}: row {first} has the same key; remove or correct one of them."));
                false
            }
            None => true,
        }
    }
}

/// Completed years between `dob` and `on`: whole twelve-month steps of [`age_months`], so a
/// child born on 29 February turns five on 28 February (the domain's clamping rule).
pub fn age_years(dob: NaiveDate, on: NaiveDate) -> i32 {
    age_months(dob, on).div_euclid(12) as i32
}

/// Completed months between `dob` and `on`.
///
/// A month is completed on the date reached by adding it with the domain's clamping rule
/// (31 Jan + 1 month = 28/29 Feb), so a child born on 31 January is one month old on
/// 28 February.
pub fn age_months(dob: NaiveDate, on: NaiveDate) -> i64 {
    let months =
        i64::from(on.year() - dob.year()) * 12 + i64::from(on.month()) - i64::from(dob.month());
    let reached = |m: i64| u32::try_from(m).is_ok_and(|m| super::context::add_months(dob, m) <= on);
    if reached(months) { months } else { months - 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn ages_follow_the_clamping_rule() {
        assert_eq!(age_months(d("2024-01-31"), d("2024-02-29")), 1);
        assert_eq!(age_months(d("2023-01-31"), d("2023-02-27")), 0);
        assert_eq!(age_months(d("2022-03-14"), d("2024-09-13")), 29);
        assert_eq!(age_months(d("2022-03-14"), d("2024-09-14")), 30);
        assert_eq!(age_years(d("2020-02-29"), d("2025-02-27")), 4);
        assert_eq!(age_years(d("2020-02-29"), d("2025-02-28")), 5);
        assert_eq!(age_years(d("2024-06-01"), d("2024-05-31")), -1);
    }

    #[test]
    fn iso_dates_read_as_chrono_reads_them() {
        for v in [
            "2024-02-29",
            "2023-02-29",
            "2025-12-31",
            "0001-01-01",
            "2024-13-01",
            "2024-00-10",
            "2024-01-32",
            "2024-1-01x",
            "2024-01-1 ",
            "2024/01/01",
            "+2024-01-01",
            "12024-01-01",
            "2024-01-01T",
            "２０２4-01-01",
            "",
        ] {
            assert_eq!(iso_date(v), v.parse::<NaiveDate>().ok(), "{v:?}");
        }
        assert_eq!(iso_date("2024-02-29"), NaiveDate::from_ymd_opt(2024, 2, 29));
        assert_eq!(iso_date("2023-02-29"), None);
    }
}
