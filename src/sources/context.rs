//! What a kind needs to know beyond its own file: code lists, geography, and the keys of the
//! tables it references. Built by the pipeline runner from the lake and the reference data.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;

use crate::identity::Pseudonymiser;

/// A postcode directory entry (ONSPD/NSPL/NHSPD, extracts.md §8.2).
#[derive(Debug, Clone, Default)]
pub struct PostcodeEntry {
    /// LSOA 2011 code, if the directory has it.
    pub lsoa11: Option<String>,
    /// LSOA 2021 code, if the directory has it.
    pub lsoa21: Option<String>,
    /// WGS84 latitude (None for the "no grid reference" placeholder).
    pub lat: Option<f64>,
    /// WGS84 longitude.
    pub lon: Option<f64>,
    /// Date of termination (first of the month), None = live.
    pub terminated: Option<NaiveDate>,
}

/// Geography resolved at ingest.
#[derive(Debug, Clone, Default)]
pub struct Geography {
    /// Normalised postcode (`LE1 2AB`) → entry.
    pub postcodes: HashMap<String, PostcodeEntry>,
    /// LSOA codes of the IoD file of each vintage (2011, 2021).
    pub lsoas: HashMap<u16, HashSet<String>>,
    /// LSOA 2011 → LSOA 2021 codes (from the ONS lookup).
    pub lsoa11_to_21: HashMap<String, Vec<String>>,
    /// LSOA 2021 → LSOA 2011 codes.
    pub lsoa21_to_11: HashMap<String, Vec<String>>,
}

/// A centre's opening dates, for W010.
#[derive(Debug, Clone, Copy)]
pub struct CentreDates {
    /// Opened.
    pub open: Option<NaiveDate>,
    /// Closed (or planned closure).
    pub close: Option<NaiveDate>,
}

/// A registered person, for attendance checks.
#[derive(Debug, Clone)]
pub struct RegisteredPerson {
    /// Pseudonymised family id.
    pub family_key: String,
    /// [`super::key_hash`] of `family_key`, compared on every attendance without touching
    /// the string.
    pub family_hash: super::KeyHash,
    /// Date of birth, when known.
    pub date_of_birth: Option<NaiveDate>,
}

/// ASQ-3 administration window of one questionnaire: from DOB + `from` to DOB + `to`
/// (months and days), inclusive.
#[derive(Debug, Clone, Copy)]
pub struct AsqWindow {
    /// Youngest age, as (months, days).
    pub from: (u32, u32),
    /// Oldest age, as (months, days).
    pub to: (u32, u32),
}

impl AsqWindow {
    /// Whether a review on `on` of a child born on `dob` is inside the window.
    pub fn contains(&self, dob: NaiveDate, on: NaiveDate) -> bool {
        let at = |(m, d): (u32, u32)| add_months(dob, m) + chrono::Days::new(u64::from(d));
        at(self.from) <= on && on <= at(self.to)
    }
}

/// Adds calendar months, clamping to the month's last day (31 Jan + 1 month = 28/29 Feb).
pub fn add_months(d: NaiveDate, months: u32) -> NaiveDate {
    d.checked_add_months(chrono::Months::new(months))
        .expect("dates stay in range")
}

/// Everything a kind may consult while checking a record.
#[derive(Debug, Clone)]
pub struct Context {
    /// Computes keyed pseudonyms.
    pub pseudonymiser: Pseudonymiser,
    /// Code list name → codes (reference tables).
    pub codes: HashMap<String, HashSet<String>>,
    /// Postcodes and LSOAs.
    pub geography: Geography,
    /// LSOA vintage of reach areas (2011 or 2021).
    pub reach_vintage: u16,
    /// Known centres.
    pub centres: foldhash::HashMap<String, CentreDates>,
    /// Lots in `contracts`, when loaded (E008 on centres.lot).
    pub lots: Option<HashSet<String>>,
    /// Known activity codes.
    pub activities: foldhash::HashSet<String>,
    /// Registered persons by pseudonymised person id.
    registrations: std::collections::HashMap<
        super::KeyHash,
        RegisteredPerson,
        std::hash::BuildHasherDefault<super::PrehashedKey>,
    >,
    /// Children in the child health register: key_nhs → date of birth.
    pub chis: foldhash::HashMap<String, NaiveDate>,
    /// ASQ-3 windows by questionnaire interval (months).
    pub asq_windows: HashMap<i64, AsqWindow>,
}

impl Context {
    /// An empty context (no references known) with the given pseudonymiser.
    pub fn new(pseudonymiser: Pseudonymiser) -> Self {
        Self {
            pseudonymiser,
            codes: HashMap::new(),
            geography: Geography::default(),
            reach_vintage: 2021,
            centres: Default::default(),
            lots: None,
            activities: Default::default(),
            registrations: Default::default(),
            chis: Default::default(),
            asq_windows: HashMap::new(),
        }
    }

    /// Records a registered person under their pseudonymised person id.
    pub fn register(
        &mut self,
        person_key: &str,
        family_key: &str,
        date_of_birth: Option<NaiveDate>,
    ) {
        let person = RegisteredPerson {
            family_key: family_key.to_string(),
            family_hash: super::key_hash(family_key),
            date_of_birth,
        };
        self.registrations
            .insert(super::key_hash(person_key), person);
    }

    /// The registered person with this pseudonymised id. Looked up by the id's 128-bit hash:
    /// on a multi-million-row attendance file one memory access instead of two.
    pub fn registration(&self, person_key: &str) -> Option<&RegisteredPerson> {
        self.registrations.get(&super::key_hash(person_key))
    }

    /// Forgets every registered person (before reloading them from the lake).
    pub fn clear_registrations(&mut self) {
        self.registrations.clear();
    }

    /// Whether `code` is in the named code list. An unknown list has no codes.
    pub fn has_code(&self, list: &str, code: &str) -> bool {
        self.codes.get(list).is_some_and(|c| c.contains(code))
    }
}
