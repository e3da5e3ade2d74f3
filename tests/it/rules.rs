//! Validation rules on hand-made fixtures: each case names the exact rows, fields and rules
//! it expects (data-driven `check`, matklad style). Sans-IO: `sources::ingest` on bytes.

use std::collections::{BTreeSet, HashMap};

use arrow::array::{Array, AsArray};
use chrono::NaiveDate;
use earlystart::identity::Pseudonymiser;
use earlystart::sources::context::{CentreDates, PostcodeEntry};
use earlystart::sources::{self, Context, ExtractKind, FileMeta, Ingested, Mapping};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A context with the shipped code lists, three postcodes, one centre, one activity, one
/// registered person and one child in CHIS.
fn ctx() -> Context {
    let p = Pseudonymiser::demo();
    let refs =
        earlystart::reference::load_dir(&crate::support::project().join("reference")).unwrap();
    let mut c = Context::new(p.clone());
    c.codes = earlystart::reference::code_lists(&refs).unwrap();
    c.asq_windows = earlystart::reference::asq_windows(&refs).unwrap();
    let entry = |l11: Option<&str>, l21: Option<&str>, term: Option<&str>| PostcodeEntry {
        lsoa11: l11.map(Into::into),
        lsoa21: l21.map(Into::into),
        lat: Some(52.6),
        lon: Some(-1.1),
        terminated: term.map(d),
    };
    c.geography.postcodes.insert(
        "LE1 2AB".into(),
        entry(Some("E01000001"), Some("E01000001"), None),
    );
    c.geography.postcodes.insert(
        "LE1 9ZZ".into(),
        entry(Some("E01000002"), Some("E01000002"), Some("2020-01-01")),
    );
    c.geography
        .postcodes
        .insert("LE2 1AA".into(), entry(None, Some("E01000003"), None));
    c.geography
        .lsoa21_to_11
        .insert("E01000003".into(), vec!["E01000004".into()]);
    c.centres.insert(
        "CC1".into(),
        CentreDates {
            open: Some(d("2020-01-01")),
            close: Some(d("2024-12-31")),
        },
    );
    c.activities.insert("PLAY".into());
    c.register(
        &p.local("cc", "P1"),
        &p.local("cc_family", "F1"),
        Some(d("2022-01-10")),
    );
    c.chis.insert(p.nhs("9434765919"), d("2022-03-14"));
    c
}

fn mapping() -> Mapping {
    Mapping {
        namespace: "cc".into(),
        lsoa_vintage: 2021,
        ..Default::default()
    }
}

fn ingest(kind: ExtractKind, csv: &str, mapping: &Mapping) -> Ingested {
    let file = FileMeta {
        source: "test".into(),
        path: "test.csv".into(),
        sha256: "0".repeat(64),
        as_at: d("2025-03-31"),
    };
    let out = sources::ingest(kind, csv.as_bytes(), &file, mapping, &ctx(), 1.0);
    assert!(out.balanced());
    out
}

/// `(row, field, rule)` of every issue, errors and warnings together.
fn issues(out: &Ingested) -> BTreeSet<(u64, String, String)> {
    out.errors
        .iter()
        .chain(&out.warnings)
        .map(|i| (i.row_number, i.field.clone(), i.rule.id().to_string()))
        .collect()
}

fn set(items: &[(u64, &str, &str)]) -> BTreeSet<(u64, String, String)> {
    items
        .iter()
        .map(|(r, f, x)| (*r, f.to_string(), x.to_string()))
        .collect()
}

#[test]
fn registration_warnings() {
    let csv = "person_id,family_id,centre_id,role,nhs_number,family_name,date_of_birth,postcode,ethnicity,registration_date
P1,F1,CC1,child,9434765919,Smith,2022-01-10,LE1 2AB,WBRI,2023-01-01
P2,F1,CC1,child,,Smith,2022-01-10,LE1 2AB,WBRI,2023-01-01
P3,F2,CC1,child,9990000018,Khan,2017-01-10,LE1 2AB,,2023-01-01
P4,F3,CC1,child,9990000026,Lee,2022-02-02,ZZ9 9ZZ,AIND,2023-01-01
P5,F4,CC1,child,,Ward,2022-02-02,LE1 9ZZ,WBRI,2023-01-01
P6,F5,CC1,parent,,Ali,,LE2 1AA,BAFR,2023-01-01
P1,F1,CC1,child,9434765919,Smith,2022-01-10,LE1 2AB,WBRI,2023-01-01
";
    let out = ingest(ExtractKind::Registrations, csv, &mapping());
    assert_eq!(
        issues(&out),
        set(&[
            (3, "nhs_number", "W003"),
            (4, "ethnicity", "W011"),
            (4, "date_of_birth", "W012"),
            (5, "postcode", "W001"),
            (6, "nhs_number", "W003"),
            (6, "postcode", "W002"),
            (7, "postcode", "W017"),
            (8, "person_id", "E005"),
        ])
    );
    assert!(
        out.errors[0].message.contains("row 2"),
        "E005 names the first occurrence"
    );
    assert_eq!(out.rows_loaded(), 6);
    // The W017 row got its 2011 LSOA through the lookup.
    let l11 = out
        .batch
        .column_by_name("lsoa11")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(l11.value(5), "E01000004");
}

#[test]
fn attendance_warnings_and_the_registration_family_wins() {
    let csv = "attendance_id,person_id,family_id,centre_id,activity_code,venue_type,session_date,duration_minutes
A1,P1,F1,CC1,PLAY,centre,2024-06-01,60
A2,P1,F9,CC1,PLAY,centre,2024-06-01,60
A3,P1,F1,CC1,PLAY,centre,2025-02-01,60
A4,P1,F1,CC1,PLAY,home,2024-06-01,500
A5,P1,F1,CC1,PLAY,home,2021-06-01,60
";
    let out = ingest(ExtractKind::Attendances, csv, &mapping());
    assert_eq!(
        issues(&out),
        set(&[
            (3, "family_id", "W006"),
            (4, "session_date", "W010"),
            (5, "duration_minutes", "W015"),
            (6, "session_date", "E003")
        ])
    );
    // Each issue carries the record's own centre and date: DQ-02 charges a rejected row to
    // them.
    let e003 = out.errors.iter().find(|i| i.rule.id() == "E003").unwrap();
    assert_eq!(e003.place.centre_id.as_deref(), Some("CC1"));
    assert_eq!(e003.place.record_date, Some(d("2021-06-01")));
    let fam = out
        .batch
        .column_by_name("family_key")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(fam.value(1), Pseudonymiser::demo().local("cc_family", "F1"));
}

#[test]
fn health_visiting_and_asq3_rules() {
    let hv = "contact_id,nhs_number,contact_type,contact_date,face_to_face,feeding_status
H1,9434765919,NBV,2022-03-24,yes,
H2,9990000018,REVIEW_12M,2023-03-01,no,
H3,9434765919,REVIEW_12M,2023-03-01,no,total
H4,9434765919,ANTENATAL,2022-01-01,yes,
H5,9434765919,NBV,2022-03-01,yes,
";
    let out = ingest(ExtractKind::HvContacts, hv, &mapping());
    assert_eq!(
        issues(&out),
        set(&[
            (3, "nhs_number", "W005"),
            (4, "feeding_status", "W008"),
            (6, "contact_date", "E003")
        ])
    );
    let feeding = out
        .batch
        .column_by_name("feeding_status")
        .unwrap()
        .as_string::<i32>();
    assert_eq!(
        feeding.value(0),
        "not_recorded",
        "blank feeding status on an NBV"
    );
    assert!(feeding.is_null(2), "W008: ignored");

    // Born 2022-03-14: 30 months = 28m16d..31m15d → 2024-07-30..2024-10-29.
    let asq = "nhs_number,review_date,questionnaire_months,communication,communication_items,gross_motor,score_basis
9434765919,2024-08-01,30,25,5,40,raw
9434765919,2024-12-01,30,30,6,40,adjusted
9434765919,2024-08-02,30,20,3,40,raw
";
    let out = ingest(ExtractKind::Asq3, asq, &mapping());
    assert_eq!(
        issues(&out),
        set(&[
            (3, "questionnaire_months", "W004"),
            (4, "communication", "W021")
        ])
    );
    let comm = out
        .batch
        .column_by_name("communication")
        .unwrap()
        .as_primitive::<arrow::datatypes::Float64Type>();
    assert_eq!(comm.value(0), 30.0, "ratio scoring: 25 × 6 ÷ 5");
    assert!(comm.is_null(2), "3 items answered: not scored");
}

#[test]
fn centre_coordinates_from_the_postcode() {
    let csv = "centre_id,name,provider,early_help_area,postcode,lat,lon,open_date,site_type
CC1,A,P,North,LE1 2AB,,,2010-01-01,centre
CC2,B,P,North,LE1 2AB,53.1,,2010-01-01,centre
CC3,C,P,North,LE1 2AB,,,2010-01-01,castle
CENTRAL,D,P,North,LE1 2AB,,,2010-01-01,centre
";
    let out = ingest(ExtractKind::Centres, csv, &mapping());
    assert_eq!(
        issues(&out),
        set(&[
            (2, "postcode", "W014"),
            (3, "lat", "E009"),
            (4, "site_type", "E004"),
            (5, "centre_id", "E015")
        ])
    );
}

#[test]
fn a_council_mapping_renames_translates_and_fills_constants() {
    let csv = "Client ID,Family Ref,Type,DOB,Post Code,Surname,Registered,NHS No
C-1,FAM1,Mother,NULL,LE1 2AB,Smith,01/02/2023,
C-2,FAM1,Child,10/01/2022,le12ab,Smith,01/02/2023,943 476 5919
";
    let mut m = mapping();
    for (canon, src) in [
        ("person_id", "Client ID"),
        ("family_id", "Family Ref"),
        ("role", "Type"),
        ("date_of_birth", "DOB"),
        ("postcode", "Post Code"),
        ("family_name", "Surname"),
        ("registration_date", "Registered"),
        ("nhs_number", "NHS No"),
    ] {
        m.columns.insert(canon.into(), src.into());
    }
    m.values.insert(
        "role".into(),
        HashMap::from([
            ("Mother".into(), "parent".into()),
            ("Child".into(), "child".into()),
        ]),
    );
    m.constants.insert("centre_id".into(), "CC1".into());
    m.nulls = vec!["NULL".into()];
    m.date_formats = vec!["%d/%m/%Y".into()];
    let out = ingest(ExtractKind::Registrations, csv, &m);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.rows_loaded(), 2);
    let b = &out.batch;
    assert_eq!(
        b.column_by_name("role")
            .unwrap()
            .as_string::<i32>()
            .value(0),
        "parent"
    );
    assert_eq!(
        b.column_by_name("centre_id")
            .unwrap()
            .as_string::<i32>()
            .value(1),
        "CC1"
    );
    assert_eq!(
        b.column_by_name("postcode_district")
            .unwrap()
            .as_string::<i32>()
            .value(1),
        "LE1"
    );
    assert_eq!(
        b.column_by_name("key_nhs")
            .unwrap()
            .as_string::<i32>()
            .value(1),
        Pseudonymiser::demo().nhs("9434765919")
    );
    assert!(
        b.column_by_name("date_of_birth").unwrap().is_null(0),
        "NULL is a null"
    );
}

#[test]
fn malformed_records_and_files() {
    let out = ingest(
        ExtractKind::Activities,
        "activity_code,name,service_type\nA,Play,universal\n\"B,Unclosed,universal\nC,Talk,targeted,extra\n",
        &mapping(),
    );
    assert!(
        out.errors.iter().all(|e| e.rule.id() == "E014"),
        "{:?}",
        out.errors
    );
    let out = ingest(
        ExtractKind::Activities,
        "\u{FEFF}activity_code,name,service_type\r\nA,Play,universal\r\n",
        &mapping(),
    );
    assert_eq!(
        out.rows_loaded(),
        1,
        "a BOM and CRLF line ends are accepted"
    );
    let utf16 = [0xFF, 0xFE, b'a', 0];
    let file = FileMeta {
        source: "t".into(),
        path: "t.csv".into(),
        sha256: String::new(),
        as_at: d("2025-03-31"),
    };
    let out = sources::ingest(
        ExtractKind::Activities,
        &utf16,
        &file,
        &mapping(),
        &ctx(),
        0.5,
    );
    assert_eq!(out.rejected.unwrap().rule.id(), "F001");
}

#[test]
fn iod_file7_headers_deciles_and_row_count() {
    let h: Vec<String> = earlystart::sources::reference_files::iod_default_columns(2021)
        .into_iter()
        .map(|(_, v)| format!("\"{v}\""))
        .collect();
    let csv = format!(
        "{}\nE01000001,A,100,1,0.40,120,1\nE01000002,B,200,11,0.30,220,2\n",
        h.join(",")
    );
    let m = Mapping {
        lsoa_vintage: 2021,
        ..Default::default()
    };
    let out = ingest(ExtractKind::Iod, &csv, &m);
    assert_eq!(
        issues(&out),
        set(&[(0, "", "W020"), (3, "imd_decile", "E009")])
    );
    assert!(
        out.warnings[0].message.contains("33755"),
        "{}",
        out.warnings[0].message
    );
}

/// What reading a file in halves gave.
struct Halves {
    out: Ingested,
    /// Rows sent to the sink by the pass that was kept.
    rows: usize,
    /// Whether the file was read twice (repeated keys found after the first pass).
    reread: bool,
}

/// Runs `ingest_parallel` on in-memory bytes; None when it falls back to sequential.
fn parallel(kind: ExtractKind, csv: &str) -> Option<Halves> {
    let bytes = csv.as_bytes().to_vec();
    let open = |start: u64, end: u64| -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(
            bytes[start as usize..end as usize].to_vec(),
        )))
    };
    let file = FileMeta {
        source: "test".into(),
        path: "test.csv".into(),
        sha256: "0".repeat(64),
        as_at: d("2025-03-31"),
    };
    let rows = std::sync::atomic::AtomicUsize::new(0);
    let sink = |b: arrow::array::RecordBatch| {
        rows.fetch_add(b.num_rows(), std::sync::atomic::Ordering::SeqCst);
        true
    };
    // A second read starts the count again, as the pipeline's writer starts its files again.
    let restarts = std::sync::atomic::AtomicUsize::new(0);
    let restart = || {
        rows.store(0, std::sync::atomic::Ordering::SeqCst);
        restarts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        true
    };
    match sources::ingest_parallel(
        kind,
        &open,
        bytes.len() as u64,
        &file,
        &mapping(),
        &ctx(),
        1.0,
        &sink,
        &restart,
    ) {
        sources::Parallel::Done(out) => Some(Halves {
            out,
            rows: rows.into_inner(),
            reread: match restarts.into_inner() {
                0 => false,
                1 => true,
                n => panic!("read {n} times"),
            },
        }),
        sources::Parallel::Sequential => None,
    }
}

/// Asserts that reading `csv` in halves gives what one sequential pass gives.
fn assert_halves_match(csv: &str, reread: bool) -> Ingested {
    let sequential = ingest(ExtractKind::Attendances, csv, &mapping());
    let halves = parallel(ExtractKind::Attendances, csv).expect("the file splits");
    assert_eq!(halves.reread, reread);
    assert_eq!(halves.rows as u64, sequential.rows_loaded());
    assert_eq!(halves.out.rows_read, sequential.rows_read);
    assert_eq!(halves.out.rows_quarantined, sequential.rows_quarantined);
    assert_eq!(
        halves.out.errors, sequential.errors,
        "same issues, rows and byte offsets"
    );
    halves.out
}

#[test]
fn a_file_read_in_two_halves_gives_the_sequential_result() {
    let mut csv = String::from(
        "attendance_id,person_id,family_id,centre_id,activity_code,venue_type,session_date,duration_minutes\n",
    );
    for i in 0..400 {
        // Quoted fields with commas and a line break inside, and faults in both halves.
        let venue = if i % 97 == 0 {
            "\"spa,ce\nship\""
        } else {
            "centre"
        };
        let minutes = if i % 131 == 0 { "2000" } else { "60" };
        csv.push_str(&format!(
            "A{i},P1,F1,CC1,PLAY,{venue},2024-06-01,{minutes}\n"
        ));
    }
    let halves = assert_halves_match(&csv, false);
    assert!(
        halves.errors.iter().any(|e| e.row_number > 300),
        "faults in the second half are located in the file"
    );

    // Keys repeated across the halves and within each: found after the first pass, then
    // quarantined by a second with the same rows and messages as a sequential pass. A399
    // is on row 401 and A1 on row 3; A150 (row 152) repeats A10 (row 12); A301 (row 303)
    // repeats A300 (row 302).
    let dup = csv
        .replace("A399,", "A1,")
        .replace("A150,", "A10,")
        .replace("A301,", "A300,");
    let halves = assert_halves_match(&dup, true);
    let repeats: Vec<(u64, &str)> = halves
        .errors
        .iter()
        .filter(|e| e.rule.id() == "E005")
        .map(|e| (e.row_number, e.message.as_str()))
        .collect();
    assert_eq!(
        repeats,
        [
            (
                152,
                "Duplicate attendance_id: row 12 has the same key; remove or correct one of them."
            ),
            (
                303,
                "Duplicate attendance_id: row 302 has the same key; remove or correct one of them."
            ),
            (
                401,
                "Duplicate attendance_id: row 3 has the same key; remove or correct one of them."
            ),
        ]
    );
    // A blank line: the CSV reader skips it, so counting lines would misnumber rows.
    let blank = csv.replacen("\nA5,", "\n\nA5,", 1);
    assert!(parallel(ExtractKind::Attendances, &blank).is_none());

    // Without quotes the split is found line end to line end (the fast scan), with the
    // same outcome; a blank line (here with a carriage return) still stops it.
    let plain = csv
        .replace("\"spa,ce\nship\"", "centre")
        .replace('\n', "\r\n");
    let halves = assert_halves_match(&plain, false);
    assert_eq!(halves.rows_read, 400);
    let blank = plain.replacen("\r\nA5,", "\r\n\r\nA5,", 1);
    assert!(parallel(ExtractKind::Attendances, &blank).is_none());
}
