//! The validation rule catalogue of `shared/domain/extracts.md` §9.
//!
//! Rule ids are stable: they appear in quarantine rows, run summaries and council
//! documentation, so a rule is never renumbered. Severity is structural (it decides
//! whether a record is quarantined), so the catalogue is a Rust enum rather than data.

use std::fmt;

/// What happens to the record (or file) that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The record goes to quarantine.
    Error,
    /// The record is loaded; the warning is stored in `validation_warnings`.
    Warning,
    /// The whole file is rejected and recorded in `rejected_files`.
    File,
    /// Information only.
    Info,
}

impl Severity {
    /// One-letter code used in the quarantine table (`E`, `W`, `F`, `I`).
    pub fn code(self) -> &'static str {
        match self {
            Severity::Error => "E",
            Severity::Warning => "W",
            Severity::File => "F",
            Severity::Info => "I",
        }
    }
}

macro_rules! rules {
    ($($id:ident => $sev:ident, $summary:literal;)*) => {
        /// A validation rule id from extracts.md §9.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Rule { $($id,)* }

        impl Rule {
            /// Every rule, in id order.
            pub const ALL: &'static [Rule] = &[$(Rule::$id,)*];

            /// The stable id, e.g. `"E006"`.
            pub fn id(self) -> &'static str {
                match self { $(Rule::$id => stringify!($id),)* }
            }

            /// Whether breaking the rule quarantines the record, rejects the file or only warns.
            pub fn severity(self) -> Severity {
                match self { $(Rule::$id => Severity::$sev,)* }
            }

            /// The rule as worded in the contract.
            pub fn summary(self) -> &'static str {
                match self { $(Rule::$id => $summary,)* }
            }
        }
    };
}

rules! {
    E001 => Error, "Required field missing";
    E002 => Error, "Unparseable date";
    E003 => Error, "Date after the as-at date, or before the person's date of birth";
    E004 => Error, "Code not in its reference list";
    E005 => Error, "Duplicate key";
    E006 => Error, "Invalid NHS number";
    E007 => Error, "Invalid postcode format";
    E008 => Error, "Unknown reference";
    E009 => Error, "Value out of range";
    E010 => Error, "Unparseable number or boolean";
    E011 => Error, "End/later date before start/earlier date";
    E012 => Error, "Arithmetic inconsistency";
    E013 => Error, "Invalid UPN";
    E014 => Error, "Malformed record";
    E015 => Error, "Invalid identifier/format";
    F001 => File, "File unreadable";
    F002 => File, "A required column is missing after mapping";
    F003 => File, "Table layout not recognised or ambiguous";
    F004 => File, "Header metadata inconsistent with the declared period";
    F005 => File, "Quarantined share above max_quarantine_ratio";
    I001 => Info, "File already ingested: skipped";
    W001 => Warning, "Postcode not in the postcode directory";
    W002 => Warning, "Postcode terminated before the event date";
    W003 => Warning, "NHS number absent where usually present";
    W004 => Warning, "ASQ-3 questionnaire outside its administration window";
    W005 => Warning, "Person not in the child health register";
    W006 => Warning, "Attendance family differs from the registration family";
    W007 => Warning, "EYFSP incomplete";
    W008 => Warning, "Field not applicable to this record type: ignored";
    W009 => Warning, "Ambiguous demographic linkage key: not used for linkage";
    W010 => Warning, "Session outside the centre's open/close dates";
    W011 => Warning, "Ethnicity missing";
    W012 => Warning, "Child aged 5 or over at registration";
    W013 => Warning, "HV review before its minimum counting age";
    W014 => Warning, "Site coordinates derived from postcode";
    W015 => Warning, "Session longer than 8 hours";
    W016 => Warning, "EYFSP pupil's DOB outside the Reception cohort";
    W017 => Warning, "LSOA resolved through the 2011-2021 lookup";
    W018 => Warning, "Early help DOB missing or inconsistent with age";
    W019 => Warning, "Social care episode overlap";
    W020 => Warning, "Reference file row count differs from the expected national count";
    W021 => Warning, "ASQ-3 domain with 3 or more items missing: domain not scored";
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Rule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rule::ALL
            .iter()
            .copied()
            .find(|r| r.id() == s)
            .ok_or_else(|| format!("unknown rule id {s:?}"))
    }
}
