//! CIN census XML (extracts.md §5.1): the DfE Children in Need census, read as it is sent to
//! DfE, into ten typed tables.
//!
//! ```text
//!  Message ─ Header ────────────────────────────────► cin_header (F004 checks)
//!          └ Children ─ Child (one at a time) ─┬────► cin_child, cin_disability
//!                                              └ CINdetails ─► cin_episode, cin_assessment,
//!                                                 cin_assessment_factor, cin_plan, cin_s47,
//!                                                 cin_cpp, cin_cpp_review
//! ```
//!
//! The unit of accounting and quarantine is the smallest repeating group with an error: a
//! `CINdetails` group, or the whole `Child` when its identifiers or characteristics fail
//! (then its groups go with it). `rows_read` counts children plus `CINdetails` groups.
//! Every issue carries the XML line and element path; `LAchildID` and UPNs are never
//! previewed, only HMACed.

use std::collections::HashMap;

use arrow::array::RecordBatch;
use chrono::{Datelike, NaiveDate};

use super::builder::{ColType, TableBuilder, Value};
use super::xml::{self, Item, Node};
use super::{Context, FileMeta, Ingested, Issue, LINEAGE_COLUMNS, Placement, SeenKeys, key_hash};
use crate::identity::checks;
use crate::rules::{Rule, Severity};

/// Namespace of LA child ids, shared by CIN, SSDA903 and the side file (extracts.md §11.2).
pub const LA_CHILD_NAMESPACE: &str = "la_child_id";

/// Curated tables written from one census file, in commit order: `cin_header` last, so
/// its commit marks the file as ingested.
pub const TABLES: &[(&str, &[(&str, ColType)])] = &[
    ("cin_child", CHILD),
    ("cin_disability", DISABILITY),
    ("cin_episode", EPISODE),
    ("cin_assessment", ASSESSMENT),
    ("cin_assessment_factor", FACTOR),
    ("cin_plan", PLAN),
    ("cin_s47", S47),
    ("cin_cpp", CPP),
    ("cin_cpp_review", REVIEW),
    ("cin_header", HEADER),
];

const HEADER: &[(&str, ColType)] = &[
    ("collection", ColType::Str),
    ("year", ColType::Int),
    ("reference_date", ColType::Date),
    ("source_level", ColType::Str),
    ("lea", ColType::Str),
    ("software_code", ColType::Str),
    ("release", ColType::Str),
    ("serial_no", ColType::Str),
    ("date_time", ColType::Str),
];

const CHILD: &[(&str, ColType)] = &[
    ("la_child_key", ColType::Str),
    ("key_upn", ColType::Str),
    ("key_former_upn", ColType::Str),
    ("upn_unknown", ColType::Str),
    ("date_of_birth", ColType::Date),
    ("expected_date_of_birth", ColType::Date),
    ("sex", ColType::Str),
    ("date_of_death", ColType::Date),
    ("ethnicity", ColType::Str),
    ("reference_date", ColType::Date),
];

const DISABILITY: &[(&str, ColType)] =
    &[("la_child_key", ColType::Str), ("disability", ColType::Str)];

const EPISODE: &[(&str, ColType)] = &[
    ("la_child_key", ColType::Str),
    ("episode_seq", ColType::Int),
    ("referral_date", ColType::Date),
    ("referral_source", ColType::Str),
    ("primary_need", ColType::Str),
    ("closure_date", ColType::Date),
    ("reason_for_closure", ColType::Str),
    ("date_of_initial_cpc", ColType::Date),
    ("referral_nfa", ColType::Bool),
    ("reference_date", ColType::Date),
];

const ASSESSMENT: &[(&str, ColType)] = &[
    ("la_child_key", ColType::Str),
    ("episode_seq", ColType::Int),
    ("assessment_seq", ColType::Int),
    ("start_date", ColType::Date),
    ("internal_review_date", ColType::Date),
    ("authorisation_date", ColType::Date),
];

const FACTOR: &[(&str, ColType)] = &[
    ("la_child_key", ColType::Str),
    ("episode_seq", ColType::Int),
    ("assessment_seq", ColType::Int),
    ("factor", ColType::Str),
];

const PLAN: &[(&str, ColType)] = &[
    ("la_child_key", ColType::Str),
    ("episode_seq", ColType::Int),
    ("plan_seq", ColType::Int),
    ("start_date", ColType::Date),
    ("end_date", ColType::Date),
];

const S47: &[(&str, ColType)] = &[
    ("la_child_key", ColType::Str),
    ("episode_seq", ColType::Int),
    ("s47_seq", ColType::Int),
    ("start_date", ColType::Date),
    ("initial_cpc_target", ColType::Date),
    ("date_of_initial_cpc", ColType::Date),
    ("icpc_not_required", ColType::Bool),
];

const CPP: &[(&str, ColType)] = &[
    ("la_child_key", ColType::Str),
    ("episode_seq", ColType::Int),
    ("cpp_seq", ColType::Int),
    ("start_date", ColType::Date),
    ("end_date", ColType::Date),
    ("initial_category", ColType::Str),
    ("latest_category", ColType::Str),
    ("number_of_previous_cpp", ColType::Int),
];

const REVIEW: &[(&str, ColType)] = &[
    ("la_child_key", ColType::Str),
    ("episode_seq", ColType::Int),
    ("cpp_seq", ColType::Int),
    ("review_date", ColType::Date),
];

/// The schema of one CIN table, lineage columns included (`_row_number` = XML line).
pub fn schema(table: &str) -> arrow::datatypes::SchemaRef {
    let cols = TABLES
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| panic!("{table} is not a CIN table"));
    let mut cols = cols.to_vec();
    cols.extend(LINEAGE_COLUMNS);
    super::builder::schema(&cols)
}

/// The mapping fields a census source may set: only `reference_date`, as a
/// `[source.constants]` entry declaring the period the file must cover (F004).
pub const FIELDS: &[super::Field] = &[super::field("reference_date", super::Req::No)];

/// Pre-birth referrals are allowed up to this many days before the (expected) birth (DfE 8606).
const PRE_BIRTH_DAYS: i64 = 280;

/// The outcome of one census file: the tables, in [`TABLES`] order, and the accounting.
pub type CinIngested = super::TablesIngested;

/// Reads one census file. Never fails: an unreadable file or a header that contradicts the
/// declared period comes back with `rejected` set. `expected_reference_date` is the period
/// declared by the mapping (`reference_date` constant), when it declares one.
pub fn ingest(
    bytes: &[u8],
    file: &FileMeta,
    ctx: &Context,
    expected_reference_date: Option<NaiveDate>,
) -> CinIngested {
    let mut census = Census::new(file, ctx);
    let mut header: Option<Node> = None;
    let mut pending: Vec<Node> = Vec::new();
    let read = xml::read_groups(bytes, "Children", "Child", &mut |item| match item {
        Item::Top(node) if node.name == "Header" => header = Some(node),
        Item::Top(_) => {}
        // Children come after the header in every schema; hold any that do not until the
        // header (and so the reference date) is known.
        Item::Group(child) => match census.reference_date {
            Some(_) => census.child(&child),
            None if header.is_some() => {
                census.start(header.as_ref().expect("header"), expected_reference_date);
                census.child(&child)
            }
            None => pending.push(child),
        },
    });
    let root = match read {
        Ok(root) => root,
        Err(message) => return census.rejected(Rule::F001, message),
    };
    if root != "Message" {
        return census.rejected(
            Rule::F003,
            format!("The root element is <{root}>, not <Message>: this is not a CIN census file."),
        );
    }
    let Some(header) = header else {
        return census.rejected(
            Rule::F004,
            "The file has no <Header>: the census reference date is unknown. Export the whole census message.".into(),
        );
    };
    if census.reference_date.is_none() {
        census.start(&header, expected_reference_date);
    }
    for child in &pending {
        census.child(child);
    }
    if let Some(message) = census.header_fault.take() {
        return census.rejected(Rule::F004, message);
    }
    census.finish(&header)
}

/// Per-file state: builders, accounting, the header's reference date.
struct Census<'a> {
    file: &'a FileMeta,
    ctx: &'a Context,
    reference_date: Option<NaiveDate>,
    header_fault: Option<String>,
    builders: HashMap<&'static str, TableBuilder>,
    seen: SeenKeys,
    rows_read: u64,
    rows_loaded: u64,
    rows_quarantined: u64,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
}

impl<'a> Census<'a> {
    fn new(file: &'a FileMeta, ctx: &'a Context) -> Self {
        let builders = TABLES
            .iter()
            .map(|(name, _)| (*name, TableBuilder::new(schema(name))))
            .collect();
        Census {
            file,
            ctx,
            reference_date: None,
            header_fault: None,
            builders,
            seen: SeenKeys::default(),
            rows_read: 0,
            rows_loaded: 0,
            rows_quarantined: 0,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Checks the header (F004) and fixes the reference date used by every record check.
    fn start(&mut self, header: &Node, expected: Option<NaiveDate>) {
        let details = header.child("CollectionDetails");
        let text = |name: &str| details.and_then(|d| d.text_of(name));
        let collection = text("Collection");
        let reference = text("ReferenceDate");
        let parsed = reference.and_then(|r| NaiveDate::parse_from_str(r, "%Y-%m-%d").ok());
        let fault = match (collection, reference, parsed) {
            (Some(c), _, _) if !c.eq_ignore_ascii_case("CIN") => Some(format!(
                "Header Collection is {c:?}, not \"CIN\": this is not a Children in Need census."
            )),
            (_, None, _) => Some("Header ReferenceDate (N00603) is missing.".to_string()),
            (_, Some(r), None) => Some(format!(
                "Header ReferenceDate {r:?} is not a date (YYYY-MM-DD)."
            )),
            (_, _, Some(d)) if (d.month(), d.day()) != (3, 31) => Some(format!(
                "Header ReferenceDate is {d}, but the census period always ends on 31 March: check the export settings of the case-management system."
            )),
            (_, _, Some(d)) if expected.is_some_and(|e| e != d) => Some(format!(
                "Header ReferenceDate is {d}, but this source declares the period ending {}: load the right year's file, or change the source's reference_date.",
                expected.expect("checked")
            )),
            (_, _, Some(d)) if d > self.file.as_at => Some(format!(
                "Header ReferenceDate {d} is after the as-at date {}: the census period has not ended yet.",
                self.file.as_at
            )),
            _ => None,
        };
        if fault.is_none() {
            let year = text("Year").and_then(|y| y.parse::<i32>().ok());
            let d = parsed.expect("valid reference date");
            if let Some(y) = year.filter(|y| *y != d.year() && *y != d.year() - 1) {
                self.header_fault = Some(format!(
                    "Header Year {y} does not match ReferenceDate {d} (expected {} or {}).",
                    d.year() - 1,
                    d.year()
                ));
            }
        }
        self.header_fault = self.header_fault.take().or(fault);
        // Records are still checked against a usable date so the file's issues are complete.
        self.reference_date = Some(parsed.unwrap_or(self.file.as_at));
    }

    fn rejected(self, rule: Rule, message: String) -> CinIngested {
        let mut ingested =
            Ingested::rejected_file(super::ExtractKind::CinCensus, rule, message, self.rows_read);
        // Keep record-level reasons: they help staff see what else is wrong.
        ingested.rows_read = self.rows_read;
        ingested.rows_quarantined = self.rows_quarantined;
        ingested.errors = self.errors;
        CinIngested {
            ingested,
            tables: Vec::new(),
        }
    }

    fn finish(mut self, header: &Node) -> CinIngested {
        let d = header.child("CollectionDetails");
        let s = header.child("Source");
        let get =
            |n: Option<&Node>, name: &str| n.and_then(|n| n.text_of(name)).map(str::to_string);
        let hb = self.builders.get_mut("cin_header").expect("header builder");
        hb.str(get(d, "Collection").as_deref())
            .int(get(d, "Year").and_then(|y| y.parse().ok()))
            .date(self.reference_date)
            .str(get(s, "SourceLevel").as_deref())
            .str(get(s, "LEA").as_deref())
            .str(get(s, "SoftwareCode").as_deref())
            .str(get(s, "Release").as_deref())
            .str(get(s, "SerialNo").as_deref())
            .str(get(s, "DateTime").as_deref());
        lineage(hb, self.file, header.line);
        let mut tables = Vec::new();
        for (name, _) in TABLES {
            let b = self.builders.get_mut(name).expect("builder");
            tables.push((*name, b.finish()));
        }
        CinIngested {
            ingested: Ingested {
                rows_read: self.rows_read,
                rows_loaded: self.rows_loaded,
                batch: RecordBatch::new_empty(schema("cin_header")),
                rows_quarantined: self.rows_quarantined,
                errors: self.errors,
                warnings: self.warnings,
                rejected: None,
            },
            tables,
        }
    }

    /// Validates one `Child` and, unless its identifiers fail, loads it and its good groups.
    fn child(&mut self, child: &Node) {
        let reference = self.reference_date.expect("started");
        let episodes: Vec<&Node> = child.all("CINdetails").collect();
        self.rows_read += 1 + episodes.len() as u64;
        let mut unit = Unit::new(self.ctx, reference);
        let ids = child.child("ChildIdentifiers");
        let chars = child.child("ChildCharacteristics");
        let ids_node = ids.unwrap_or(child);
        let la_id = unit.required(ids_node, "LAchildID", "la_child_id");
        let la_key = la_id.map(|id| self.ctx.pseudonymiser.local(LA_CHILD_NAMESPACE, id));
        if let (Some(k), Some(node)) = (&la_key, ids_node.child("LAchildID")) {
            let hash = key_hash(k);
            if let Some(first) = self.seen.repeat_of(hash, child.line) {
                unit.fault(
                    node,
                    "la_child_id",
                    Rule::E005,
                    format!("LAchildID repeats the child first seen on line {first}: a child appears once per census; merge the two records in the source system."),
                    None,
                );
            }
        }
        let key_upn = unit.upn(ids_node, "UPN", "upn");
        let key_former = unit.upn(ids_node, "FormerUPN", "former_upn");
        let upn_unknown = unit.code(
            ids_node,
            "UPNunknown",
            "upn_unknown",
            "cin_upn_unknown",
            false,
        );
        let dob = unit.date(ids_node, "PersonBirthDate", "date_of_birth");
        // An unborn child's expected birth is usually after the census date.
        let expected_dob = unit.date_until(
            ids_node,
            "ExpectedPersonBirthDate",
            "expected_date_of_birth",
            NaiveDate::MAX,
        );
        if dob.is_none() && expected_dob.is_none() && unit.clean_field("date_of_birth") {
            unit.fault(
                ids_node,
                "date_of_birth",
                Rule::E001,
                "Neither PersonBirthDate nor ExpectedPersonBirthDate is given (N00066/N00098): one is required.".into(),
                None,
            );
        }
        if let (Some(d), Some(node)) = (dob, ids_node.child("PersonBirthDate"))
            && d > reference
        {
            unit.fault(node, "date_of_birth", Rule::E003, format!("PersonBirthDate {d} is after the census reference date {reference}; an unborn child has ExpectedPersonBirthDate instead."), Some(&d.to_string()));
        }
        let death = unit.date(ids_node, "PersonDeathDate", "date_of_death");
        if let (Some(death), Some(born), Some(node)) =
            (death, dob, ids_node.child("PersonDeathDate"))
            && death < born
        {
            unit.fault(
                node,
                "date_of_death",
                Rule::E011,
                format!("PersonDeathDate {death} is before PersonBirthDate {born}."),
                Some(&death.to_string()),
            );
        }
        let sex = unit.sex(ids_node);
        let chars_node = chars.unwrap_or(child);
        let ethnicity = unit.code(chars_node, "Ethnicity", "ethnicity", "ethnicity", false);
        if chars_node.text_of("Ethnicity").is_none() {
            unit.warn(
                chars_node,
                "ethnicity",
                Rule::W011,
                "Ethnicity is missing.".into(),
            );
        }
        let mut disabilities = Vec::new();
        if let Some(list) = chars_node.child("Disabilities") {
            for d in list.all("Disability") {
                disabilities.push(unit.code_node(d, "disability", "cin_disability"));
            }
        }
        if !unit.ok() {
            // The child's identifiers or characteristics failed: the whole Child goes.
            self.rows_quarantined += 1 + episodes.len() as u64;
            unit.drain_into(&mut self.errors, &mut self.warnings);
            return;
        }
        let la_key = la_key.expect("checked");
        let birth = dob.or(expected_dob);
        self.rows_loaded += 1;
        unit.drain_into(&mut self.errors, &mut self.warnings);
        let b = self.builders.get_mut("cin_child").expect("builder");
        b.str(Some(&la_key))
            .str(key_upn.as_deref())
            .str(key_former.as_deref())
            .str(upn_unknown.as_deref())
            .date(dob)
            .date(expected_dob)
            .str(Some(sex.expect("checked")))
            .date(death)
            .str(ethnicity.as_deref());
        b.date(Some(reference));
        lineage(b, self.file, child.line);
        for d in disabilities.into_iter().flatten() {
            let b = self.builders.get_mut("cin_disability").expect("builder");
            b.str(Some(&la_key)).str(Some(&d));
            lineage(b, self.file, child.line);
        }

        let mut loaded: Vec<(NaiveDate, Option<NaiveDate>, &Node)> = Vec::new();
        let mut open_cpps: Vec<&Node> = Vec::new();
        for (i, ep) in episodes.iter().enumerate() {
            let seq = i as i64 + 1;
            let mut unit = Unit::new(self.ctx, reference);
            if let Some(rows) = unit.episode(ep, birth, &la_key, seq) {
                self.rows_loaded += 1;
                let referral = rows.referral;
                loaded.push((referral, rows.closure, ep));
                open_cpps.extend(rows.open_cpps.iter().copied());
                rows.write(&mut self.builders, self.file);
            } else {
                self.rows_quarantined += 1;
            }
            unit.drain_into(&mut self.errors, &mut self.warnings);
        }
        // W019: a referral that starts while an earlier one is still open, and two open CP plans.
        loaded.sort_by_key(|(r, _, _)| *r);
        let mut unit = Unit::new(self.ctx, reference);
        for pair in loaded.windows(2) {
            let (_, closure, _) = pair[0];
            let (next, _, node) = pair[1];
            if closure.is_none_or(|c| c > next) {
                unit.warn(node, "referral_date", Rule::W019, format!("This referral ({next}) starts while the child's earlier referral is still open: close the earlier episode or merge them."));
            }
        }
        if open_cpps.len() > 1 {
            unit.warn(open_cpps[1], "cpp_end_date", Rule::W019, format!("The child has {} child protection plans with no end date: at most one can be open.", open_cpps.len()));
        }
        unit.drain_into(&mut self.errors, &mut self.warnings);
    }
}

fn lineage(b: &mut TableBuilder, file: &FileMeta, line: u64) {
    b.str(Some(&file.source))
        .str(Some(&file.sha256))
        .int(Some(line as i64));
    b.end_row();
}

/// The rows of one good `CINdetails` group, written only when the whole group passed.
struct EpisodeRows<'n> {
    referral: NaiveDate,
    closure: Option<NaiveDate>,
    open_cpps: Vec<&'n Node>,
    rows: Vec<(&'static str, Vec<Value>, u64)>,
}

impl EpisodeRows<'_> {
    fn write(self, builders: &mut HashMap<&'static str, TableBuilder>, file: &FileMeta) {
        for (table, values, line) in self.rows {
            let b = builders.get_mut(table).expect("builder");
            for v in values {
                b.value(v);
            }
            lineage(b, file, line);
        }
    }
}

/// Issues of one unit (a Child or a CINdetails group) and the typed readers that raise them.
struct Unit<'a> {
    ctx: &'a Context,
    reference: NaiveDate,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
}

impl<'a> Unit<'a> {
    fn new(ctx: &'a Context, reference: NaiveDate) -> Self {
        Unit {
            ctx,
            reference,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    fn clean_field(&self, field: &str) -> bool {
        !self.errors.iter().any(|e| e.field == field)
    }

    fn drain_into(&mut self, errors: &mut Vec<Issue>, warnings: &mut Vec<Issue>) {
        errors.append(&mut self.errors);
        warnings.append(&mut self.warnings);
    }

    /// Records a broken rule at `node`. `preview` is the raw value of a non-identifying
    /// field; identifying values are passed to [`Unit::fault_identifying`] instead.
    fn fault(
        &mut self,
        node: &Node,
        field: &str,
        rule: Rule,
        message: String,
        preview: Option<&str>,
    ) {
        self.push(
            node,
            field,
            rule,
            message,
            preview.map(|p| p.chars().take(64).collect()),
            None,
        );
    }

    fn fault_identifying(&mut self, node: &Node, field: &str, rule: Rule, message: String) {
        let hmac = self.ctx.pseudonymiser.hmac(&node.text);
        self.push(node, field, rule, message, None, Some(hmac));
    }

    fn warn(&mut self, node: &Node, field: &str, rule: Rule, message: String) {
        self.push(node, field, rule, message, None, None);
    }

    fn push(
        &mut self,
        node: &Node,
        field: &str,
        rule: Rule,
        message: String,
        value_preview: Option<String>,
        value_hmac: Option<String>,
    ) {
        let issue = Issue {
            row_number: node.line,
            byte_offset: 0,
            field: field.to_string(),
            source_column: node.name.clone(),
            rule,
            message,
            value_preview,
            value_hmac,
            xml_path: Some(node.path.clone()),
            place: Placement::default(),
        };
        match rule.severity() {
            Severity::Warning | Severity::Info => self.warnings.push(issue),
            Severity::Error | Severity::File => self.errors.push(issue),
        }
    }

    /// A required element's text (E001 when missing or empty; the missing value has
    /// nothing to preview).
    fn required<'n>(&mut self, parent: &'n Node, elem: &str, field: &str) -> Option<&'n str> {
        let v = parent.text_of(elem);
        if v.is_none() {
            self.fault(
                parent,
                field,
                Rule::E001,
                format!("{elem} is missing in <{}>; it is required.", parent.name),
                None,
            );
        }
        v
    }

    fn date(&mut self, parent: &Node, elem: &str, field: &str) -> Option<NaiveDate> {
        self.date_until(parent, elem, field, self.reference)
    }

    /// A date that may not fall after `latest` (E003).
    fn date_until(
        &mut self,
        parent: &Node,
        elem: &str,
        field: &str,
        latest: NaiveDate,
    ) -> Option<NaiveDate> {
        let node = parent.child(elem)?;
        if node.text.is_empty() {
            return None;
        }
        // Dates are ISO in the census; some systems add a time part.
        let text = node.text.get(..10).unwrap_or(&node.text);
        match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) if d > latest => {
                self.fault(
                    node,
                    field,
                    Rule::E003,
                    format!("{elem} {d} is after the census reference date {latest}."),
                    Some(&node.text),
                );
                None
            }
            Ok(d) => Some(d),
            Err(_) => {
                self.fault(
                    node,
                    field,
                    Rule::E002,
                    format!("{elem} {:?} is not a date (YYYY-MM-DD).", node.text),
                    Some(&node.text),
                );
                None
            }
        }
    }

    fn upn(&mut self, parent: &Node, elem: &str, field: &str) -> Option<String> {
        let node = parent.child(elem).filter(|n| !n.text.is_empty())?;
        match checks::upn(&node.text) {
            Some(upn) => Some(self.ctx.pseudonymiser.upn(&upn)),
            None => {
                self.fault_identifying(node, field, Rule::E013, format!("{elem} is not a valid UPN (13 characters with a correct check letter): correct it in the source system, or leave it blank and give UPNunknown."));
                None
            }
        }
    }

    fn code(
        &mut self,
        parent: &Node,
        elem: &str,
        field: &str,
        list: &str,
        required: bool,
    ) -> Option<String> {
        match parent.child(elem).filter(|n| !n.text.is_empty()) {
            Some(node) => self.code_node(node, field, list),
            None => {
                if required {
                    self.fault(
                        parent,
                        field,
                        Rule::E001,
                        format!("{elem} is missing in <{}>; it is required.", parent.name),
                        None,
                    );
                }
                None
            }
        }
    }

    fn code_node(&mut self, node: &Node, field: &str, list: &str) -> Option<String> {
        let code = node.text.trim();
        if self.ctx.has_code(list, code) {
            Some(code.to_string())
        } else {
            self.fault(
                node,
                field,
                Rule::E004,
                format!(
                    "{} {code:?} is not in the {list} code list (reference/cin_codes.csv).",
                    node.name
                ),
                Some(code),
            );
            None
        }
    }

    fn boolean(&mut self, parent: &Node, elem: &str, field: &str) -> Option<bool> {
        let node = parent.child(elem).filter(|n| !n.text.is_empty())?;
        match node.text.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            other => {
                self.fault(
                    node,
                    field,
                    Rule::E010,
                    format!("{} {other:?} is not a boolean (true/false/1/0).", node.name),
                    Some(&node.text),
                );
                None
            }
        }
    }

    fn int(&mut self, parent: &Node, elem: &str, field: &str) -> Option<i64> {
        let node = parent.child(elem).filter(|n| !n.text.is_empty())?;
        match node.text.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                self.fault(
                    node,
                    field,
                    Rule::E010,
                    format!("{} {:?} is not a whole number ≥ 0.", node.name, node.text),
                    Some(&node.text),
                );
                None
            }
        }
    }

    /// `Sex` (M/F/U, or 1/2 in some exports) or older `GenderCurrent` (0/1/2/9), as the
    /// canonical sex code.
    fn sex(&mut self, ids: &Node) -> Option<&'static str> {
        let Some(node) = ids
            .child_any(&["Sex", "GenderCurrent"])
            .filter(|n| !n.text.is_empty())
        else {
            self.fault(
                ids,
                "sex",
                Rule::E001,
                "Neither Sex nor GenderCurrent (N00783) is given; it is required.".into(),
                None,
            );
            return None;
        };
        let sex = match node.text.to_ascii_uppercase().as_str() {
            "M" | "1" => Some("male"),
            "F" | "2" => Some("female"),
            "U" | "0" => Some("unknown"),
            "9" => Some("other"),
            _ => None,
        };
        if sex.is_none() {
            self.fault(
                node,
                "sex",
                Rule::E004,
                format!(
                    "{} {:?} is not a sex code (M/F/U, or 0/1/2/9 for GenderCurrent).",
                    node.name, node.text
                ),
                Some(&node.text),
            );
        }
        sex
    }

    fn not_before(
        &mut self,
        node_parent: &Node,
        elem: &str,
        field: &str,
        date: Option<NaiveDate>,
        earlier_name: &str,
        earlier: Option<NaiveDate>,
    ) {
        if let (Some(d), Some(e), Some(node)) = (date, earlier, node_parent.child(elem))
            && d < e
        {
            self.fault(
                node,
                field,
                Rule::E011,
                format!("{elem} {d} is before {earlier_name} {e}."),
                Some(&node.text),
            );
        }
    }

    /// Validates one `CINdetails` group; `None` when it has an error (it is quarantined).
    fn episode<'n>(
        &mut self,
        ep: &'n Node,
        birth: Option<NaiveDate>,
        la_key: &str,
        seq: i64,
    ) -> Option<EpisodeRows<'n>> {
        let key = || Value::Str(Some(la_key.to_string()));
        let referral = self.date(ep, "CINreferralDate", "referral_date");
        if ep.text_of("CINreferralDate").is_none() {
            self.fault(
                ep,
                "referral_date",
                Rule::E001,
                "CINreferralDate (N00100) is missing; every CINdetails group needs one.".into(),
                None,
            );
        }
        if let (Some(r), Some(b), Some(node)) = (referral, birth, ep.child("CINreferralDate"))
            && (b - r).num_days() > PRE_BIRTH_DAYS
        {
            self.fault(node, "referral_date", Rule::E003, format!("CINreferralDate {r} is more than {PRE_BIRTH_DAYS} days before the child's (expected) birth {b} (DfE 8606)."), Some(&node.text));
        }
        let source = self.code(
            ep,
            "ReferralSource",
            "referral_source",
            "cin_referral_source",
            false,
        );
        let need = self.code(
            ep,
            "PrimaryNeedCode",
            "primary_need",
            "cin_primary_need",
            false,
        );
        let closure = self.date(ep, "CINclosureDate", "closure_date");
        self.not_before(
            ep,
            "CINclosureDate",
            "closure_date",
            closure,
            "CINreferralDate",
            referral,
        );
        let reason = self.code(
            ep,
            "ReasonForClosure",
            "reason_for_closure",
            "cin_closure_reason",
            closure.is_some(),
        );
        let icpc = self.date(ep, "DateOfInitialCPC", "date_of_initial_cpc");
        let nfa = self.boolean(ep, "ReferralNFA", "referral_nfa");
        let mut rows = vec![(
            "cin_episode",
            vec![
                key(),
                Value::Int(Some(seq)),
                Value::Date(referral),
                Value::Str(source),
                Value::Str(need),
                Value::Date(closure),
                Value::Str(reason),
                Value::Date(icpc),
                Value::Bool(nfa),
                Value::Date(Some(self.reference)),
            ],
            ep.line,
        )];
        for (i, a) in ep.all("Assessments").enumerate() {
            let aseq = i as i64 + 1;
            let start = self.date(a, "AssessmentActualStartDate", "assessment_start_date");
            let review = self.date(a, "AssessmentInternalReviewDate", "assessment_review_date");
            let auth = self.date(
                a,
                "AssessmentAuthorisationDate",
                "assessment_authorisation_date",
            );
            self.not_before(
                a,
                "AssessmentAuthorisationDate",
                "assessment_authorisation_date",
                auth,
                "AssessmentActualStartDate",
                start,
            );
            rows.push((
                "cin_assessment",
                vec![
                    key(),
                    Value::Int(Some(seq)),
                    Value::Int(Some(aseq)),
                    Value::Date(start),
                    Value::Date(review),
                    Value::Date(auth),
                ],
                a.line,
            ));
            let factors = a
                .child("FactorsIdentifiedAtAssessment")
                .map(|f| f.all("AssessmentFactors").collect::<Vec<_>>())
                .unwrap_or_else(|| a.all("AssessmentFactors").collect());
            for f in factors {
                if let Some(code) = self.code_node(f, "assessment_factor", "cin_assessment_factor")
                {
                    rows.push((
                        "cin_assessment_factor",
                        vec![
                            key(),
                            Value::Int(Some(seq)),
                            Value::Int(Some(aseq)),
                            Value::Str(Some(code)),
                        ],
                        f.line,
                    ));
                }
            }
        }
        for (i, p) in ep.all("CINPlanDates").enumerate() {
            let start = self.date(p, "CINPlanStartDate", "cin_plan_start_date");
            let end = self.date(p, "CINPlanEndDate", "cin_plan_end_date");
            self.not_before(
                p,
                "CINPlanStartDate",
                "cin_plan_start_date",
                start,
                "CINreferralDate",
                referral,
            );
            self.not_before(
                p,
                "CINPlanEndDate",
                "cin_plan_end_date",
                end,
                "CINPlanStartDate",
                start,
            );
            rows.push((
                "cin_plan",
                vec![
                    key(),
                    Value::Int(Some(seq)),
                    Value::Int(Some(i as i64 + 1)),
                    Value::Date(start),
                    Value::Date(end),
                ],
                p.line,
            ));
        }
        for (i, s) in ep.all("Section47").enumerate() {
            let start = self.date(s, "S47ActualStartDate", "s47_start_date");
            self.not_before(
                s,
                "S47ActualStartDate",
                "s47_start_date",
                start,
                "CINreferralDate",
                referral,
            );
            let target = self.date(s, "InitialCPCtarget", "initial_cpc_target");
            let held = self.date(s, "DateOfInitialCPC", "s47_date_of_initial_cpc");
            let not_required = self.boolean(s, "ICPCnotRequired", "icpc_not_required");
            rows.push((
                "cin_s47",
                vec![
                    key(),
                    Value::Int(Some(seq)),
                    Value::Int(Some(i as i64 + 1)),
                    Value::Date(start),
                    Value::Date(target),
                    Value::Date(held),
                    Value::Bool(not_required),
                ],
                s.line,
            ));
        }
        let mut open_cpps = Vec::new();
        for (i, c) in ep.all("ChildProtectionPlans").enumerate() {
            let cseq = i as i64 + 1;
            let start = self.date(c, "CPPstartDate", "cpp_start_date");
            let end = self.date(c, "CPPendDate", "cpp_end_date");
            self.not_before(c, "CPPendDate", "cpp_end_date", end, "CPPstartDate", start);
            let initial = self.code(
                c,
                "InitialCategoryOfAbuse",
                "initial_category",
                "cin_abuse_category",
                false,
            );
            let latest = self.code(
                c,
                "LatestCategoryOfAbuse",
                "latest_category",
                "cin_abuse_category",
                false,
            );
            let previous = self.int(c, "NumberOfPreviousCPP", "number_of_previous_cpp");
            if end.is_none() && c.text_of("CPPendDate").is_none() {
                open_cpps.push(c);
            }
            rows.push((
                "cin_cpp",
                vec![
                    key(),
                    Value::Int(Some(seq)),
                    Value::Int(Some(cseq)),
                    Value::Date(start),
                    Value::Date(end),
                    Value::Str(initial),
                    Value::Str(latest),
                    Value::Int(previous),
                ],
                c.line,
            ));
            let reviews: Vec<&Node> = c
                .all("Reviews")
                .chain(c.all("CPPreviews"))
                .flat_map(|r| r.all("CPPreviewDate"))
                .chain(c.all("CPPreviewDate"))
                .collect();
            for r in reviews {
                let date = match NaiveDate::parse_from_str(
                    r.text.get(..10).unwrap_or(&r.text),
                    "%Y-%m-%d",
                ) {
                    Ok(d) if d > self.reference => {
                        self.fault(
                            r,
                            "cpp_review_date",
                            Rule::E003,
                            format!(
                                "CPPreviewDate {d} is after the census reference date {}.",
                                self.reference
                            ),
                            Some(&r.text),
                        );
                        None
                    }
                    Ok(d) => Some(d),
                    Err(_) => {
                        self.fault(
                            r,
                            "cpp_review_date",
                            Rule::E002,
                            format!("CPPreviewDate {:?} is not a date (YYYY-MM-DD).", r.text),
                            Some(&r.text),
                        );
                        None
                    }
                };
                if let (Some(d), Some(s)) = (date, start)
                    && d < s
                {
                    self.fault(
                        r,
                        "cpp_review_date",
                        Rule::E011,
                        format!("CPPreviewDate {d} is before CPPstartDate {s}."),
                        Some(&r.text),
                    );
                }
                rows.push((
                    "cin_cpp_review",
                    vec![
                        key(),
                        Value::Int(Some(seq)),
                        Value::Int(Some(cseq)),
                        Value::Date(date),
                    ],
                    r.line,
                ));
            }
        }
        match (self.ok(), referral) {
            (true, Some(referral)) => Some(EpisodeRows {
                referral,
                closure,
                open_cpps,
                rows,
            }),
            _ => None,
        }
    }
}
