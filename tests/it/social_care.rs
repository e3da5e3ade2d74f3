//! Social care and education formats (extracts.md §5–6) on hand-made fixtures with exact
//! expected rows, and on the public sample files in `../shared/external/`.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Int64Type};
use chrono::NaiveDate;
use earlystart::identity::Pseudonymiser;
use earlystart::sources::cin::{self, CinIngested};
use earlystart::sources::{Context, FileMeta};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A context with the shipped code lists.
pub fn ctx() -> Context {
    let refs =
        earlystart::reference::load_dir(&crate::support::project().join("reference")).unwrap();
    let mut c = Context::new(Pseudonymiser::demo());
    c.codes = earlystart::reference::code_lists(&refs).unwrap();
    c
}

pub fn meta(source: &str, as_at: &str) -> FileMeta {
    FileMeta {
        source: source.into(),
        path: format!("{source}.file"),
        sha256: "0".repeat(64),
        as_at: d(as_at),
    }
}

/// `rule@line:field` for every issue, errors then warnings, in file order.
fn issues(out: &earlystart::sources::Ingested) -> Vec<String> {
    out.errors
        .iter()
        .chain(&out.warnings)
        .map(|i| format!("{}@{}:{}", i.rule.id(), i.row_number, i.field))
        .collect()
}

fn table<'a>(out: &'a CinIngested, name: &str) -> &'a RecordBatch {
    &out.tables.iter().find(|(n, _)| *n == name).unwrap().1
}

fn strs(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let a = b.column_by_name(col).unwrap().as_string::<i32>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
        .collect()
}

fn dates(b: &RecordBatch, col: &str) -> Vec<Option<NaiveDate>> {
    let a = b.column_by_name(col).unwrap().as_primitive::<Date32Type>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value_as_date(i).unwrap()))
        .collect()
}

fn ints(b: &RecordBatch, col: &str) -> Vec<Option<i64>> {
    let a = b.column_by_name(col).unwrap().as_primitive::<Int64Type>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect()
}

const CIN_FIXTURE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Message>
  <Header>
    <CollectionDetails>
      <Collection>CIN</Collection>
      <Year>2025</Year>
      <ReferenceDate>2025-03-31</ReferenceDate>
    </CollectionDetails>
    <Source><SourceLevel>L</SourceLevel><LEA>855</LEA><SoftwareCode>X</SoftwareCode><Release>1</Release><SerialNo>7</SerialNo><DateTime>2025-04-10T09:00:00</DateTime></Source>
  </Header>
  <Children>
    <Child>
      <ChildIdentifiers>
        <LAchildID>A1</LAchildID>
        <UPN>R801200124567</UPN>
        <PersonBirthDate>2021-06-01</PersonBirthDate>
        <Sex>F</Sex>
      </ChildIdentifiers>
      <ChildCharacteristics>
        <Ethnicity>WBRI</Ethnicity>
        <Disabilities><Disability>HEAR</Disability><Disability>VIS</Disability></Disabilities>
      </ChildCharacteristics>
      <CINdetails>
        <CINreferralDate>2024-05-01</CINreferralDate>
        <ReferralSource>3B</ReferralSource>
        <PrimaryNeedCode>N4</PrimaryNeedCode>
        <CINclosureDate>2025-01-31</CINclosureDate>
        <ReasonForClosure>RC8</ReasonForClosure>
        <ReferralNFA>false</ReferralNFA>
        <Assessments>
          <AssessmentActualStartDate>2024-05-02</AssessmentActualStartDate>
          <AssessmentAuthorisationDate>2024-06-10</AssessmentAuthorisationDate>
          <FactorsIdentifiedAtAssessment>
            <AssessmentFactors>3B</AssessmentFactors>
            <AssessmentFactors>4B</AssessmentFactors>
          </FactorsIdentifiedAtAssessment>
        </Assessments>
        <CINPlanDates><CINPlanStartDate>2024-06-15</CINPlanStartDate></CINPlanDates>
        <Section47><S47ActualStartDate>2024-07-01</S47ActualStartDate><ICPCnotRequired>0</ICPCnotRequired></Section47>
        <ChildProtectionPlans>
          <CPPstartDate>2024-07-20</CPPstartDate>
          <CPPendDate>2025-01-20</CPPendDate>
          <InitialCategoryOfAbuse>NEG</InitialCategoryOfAbuse>
          <LatestCategoryOfAbuse>EMO</LatestCategoryOfAbuse>
          <NumberOfPreviousCPP>0</NumberOfPreviousCPP>
          <Reviews><CPPreviewDate>2024-10-01</CPPreviewDate><CPPreviewDate>2025-01-10</CPPreviewDate></Reviews>
        </ChildProtectionPlans>
      </CINdetails>
      <CINdetails>
        <CINreferralDate>2025-02-10</CINreferralDate>
        <ReferralSource>5D</ReferralSource>
        <PrimaryNeedCode>N1</PrimaryNeedCode>
        <Section47><S47ActualStartDate>2025-02-01</S47ActualStartDate></Section47>
      </CINdetails>
    </Child>
    <Child>
      <ChildIdentifiers>
        <LAchildID>A2</LAchildID>
        <UPN>A801200124567</UPN>
        <PersonBirthDate>2020-01-01</PersonBirthDate>
        <GenderCurrent>1</GenderCurrent>
      </ChildIdentifiers>
      <ChildCharacteristics><Ethnicity>WBRI</Ethnicity></ChildCharacteristics>
      <CINdetails><CINreferralDate>2024-09-01</CINreferralDate></CINdetails>
    </Child>
    <Child>
      <ChildIdentifiers>
        <LAchildID>A3</LAchildID>
        <ExpectedPersonBirthDate>2025-05-01</ExpectedPersonBirthDate>
        <Sex>U</Sex>
      </ChildIdentifiers>
      <ChildCharacteristics><Ethnicity>XXXX</Ethnicity></ChildCharacteristics>
    </Child>
    <Child>
      <ChildIdentifiers>
        <LAchildID>A4</LAchildID>
        <ExpectedPersonBirthDate>2025-05-01</ExpectedPersonBirthDate>
        <Sex>U</Sex>
      </ChildIdentifiers>
      <ChildCharacteristics><Ethnicity>NOBT</Ethnicity></ChildCharacteristics>
      <CINdetails>
        <CINreferralDate>2024-09-01</CINreferralDate>
        <ChildProtectionPlans><CPPstartDate>2024-10-01</CPPstartDate><InitialCategoryOfAbuse>NEG</InitialCategoryOfAbuse></ChildProtectionPlans>
      </CINdetails>
      <CINdetails>
        <CINreferralDate>2024-11-01</CINreferralDate>
        <ChildProtectionPlans><CPPstartDate>2024-11-20</CPPstartDate><InitialCategoryOfAbuse>XYZ</InitialCategoryOfAbuse></ChildProtectionPlans>
      </CINdetails>
      <CINdetails>
        <CINreferralDate>2024-12-01</CINreferralDate>
        <ChildProtectionPlans><CPPstartDate>2024-12-05</CPPstartDate></ChildProtectionPlans>
      </CINdetails>
      <CINdetails>
        <CINreferralDate>2023-06-01</CINreferralDate>
      </CINdetails>
    </Child>
  </Children>
</Message>
"#;

#[test]
fn cin_census_fixture_gives_exact_tables_and_faults() {
    let ctx = ctx();
    let out = cin::ingest(
        CIN_FIXTURE.as_bytes(),
        &meta("cin_census", "2025-06-01"),
        &ctx,
        None,
    );
    let acc = &out.ingested;
    assert!(acc.rejected.is_none(), "{:?}", acc.rejected);
    // Units: 4 children + 7 CINdetails groups. Child A2 (bad UPN) and A3 (bad ethnicity)
    // are quarantined whole (3 units); A1's second group (S47 before referral) and A4's
    // second (unknown abuse category) and fourth (280+ days before expected birth) go alone.
    assert_eq!(acc.rows_read, 11);
    assert_eq!(acc.rows_quarantined, 6);
    assert_eq!(acc.rows_loaded, 5);
    assert_eq!(
        issues(acc),
        vec![
            "E011@53:s47_start_date",
            "E013@59:upn",
            "E004@72:ethnicity",
            "E004@87:initial_category",
            "E003@94:referral_date",
            // A4: the referral of 2024-11-01 starts while that of 2024-09-01 is open, and so
            // on; two CP plans stay open.
            "W019@89:referral_date",
            "W019@91:cpp_end_date",
        ]
    );
    let e013 = &acc.errors[1];
    assert_eq!(
        e013.xml_path.as_deref(),
        Some("Message/Children/Child[2]/ChildIdentifiers[1]/UPN[1]")
    );
    assert_eq!(e013.value_preview, None, "a UPN is never previewed");
    assert!(e013.value_hmac.is_some());

    let p = Pseudonymiser::demo();
    let a1 = p.local("la_child_id", "A1");
    let a4 = p.local("la_child_id", "A4");
    let child = table(&out, "cin_child");
    assert_eq!(
        strs(child, "la_child_key"),
        vec![Some(a1.clone()), Some(a4.clone())]
    );
    assert_eq!(
        strs(child, "key_upn"),
        vec![Some(p.upn("R801200124567")), None]
    );
    assert_eq!(
        strs(child, "sex"),
        vec![Some("female".into()), Some("unknown".into())]
    );
    assert_eq!(
        dates(child, "expected_date_of_birth"),
        vec![None, Some(d("2025-05-01"))]
    );
    assert_eq!(
        strs(table(&out, "cin_disability"), "disability"),
        vec![Some("HEAR".into()), Some("VIS".into())]
    );
    let ep = table(&out, "cin_episode");
    assert_eq!(ints(ep, "episode_seq"), vec![Some(1), Some(1), Some(3)]);
    assert_eq!(
        dates(ep, "referral_date"),
        vec![
            Some(d("2024-05-01")),
            Some(d("2024-09-01")),
            Some(d("2024-12-01"))
        ]
    );
    assert_eq!(
        strs(ep, "reason_for_closure"),
        vec![Some("RC8".into()), None, None]
    );
    assert_eq!(ints(ep, "_row_number"), vec![Some(23), Some(81), Some(89)]);
    assert_eq!(
        strs(table(&out, "cin_assessment_factor"), "factor"),
        vec![Some("3B".into()), Some("4B".into())]
    );
    assert_eq!(
        dates(table(&out, "cin_assessment"), "authorisation_date"),
        vec![Some(d("2024-06-10"))]
    );
    assert_eq!(
        dates(table(&out, "cin_plan"), "start_date"),
        vec![Some(d("2024-06-15"))]
    );
    assert_eq!(
        dates(table(&out, "cin_s47"), "start_date"),
        vec![Some(d("2024-07-01"))]
    );
    let cpp = table(&out, "cin_cpp");
    assert_eq!(
        strs(cpp, "latest_category"),
        vec![Some("EMO".into()), None, None]
    );
    assert_eq!(
        dates(cpp, "end_date"),
        vec![Some(d("2025-01-20")), None, None]
    );
    assert_eq!(
        dates(table(&out, "cin_cpp_review"), "review_date"),
        vec![Some(d("2024-10-01")), Some(d("2025-01-10"))]
    );
    let header = table(&out, "cin_header");
    assert_eq!(strs(header, "lea"), vec![Some("855".into())]);
    assert_eq!(dates(header, "reference_date"), vec![Some(d("2025-03-31"))]);
}

#[test]
fn cin_census_header_and_broken_files_are_rejected_whole() {
    let ctx = ctx();
    let m = meta("cin_census", "2025-06-01");
    let wrong_date = CIN_FIXTURE.replace("2025-03-31", "2025-03-28");
    let out = cin::ingest(wrong_date.as_bytes(), &m, &ctx, None);
    let r = out.ingested.rejected.as_ref().unwrap();
    assert_eq!((r.rule.id(), out.tables.len()), ("F004", 0));
    assert!(r.message.contains("31 March"), "{}", r.message);
    // The declared period (the source's reference_date) must match.
    let out = cin::ingest(CIN_FIXTURE.as_bytes(), &m, &ctx, Some(d("2024-03-31")));
    assert_eq!(out.ingested.rejected.unwrap().rule.id(), "F004");
    // Truncated: F001 naming the open element; nothing loads.
    let truncated = &CIN_FIXTURE[..CIN_FIXTURE.find("<Child>").unwrap() + 200];
    let out = cin::ingest(truncated.as_bytes(), &m, &ctx, None);
    let r = out.ingested.rejected.unwrap();
    assert_eq!(r.rule.id(), "F001");
    assert!(r.message.contains("truncated"), "{}", r.message);
    // Not well-formed.
    let bad = CIN_FIXTURE.replace("</Sex>", "</Sx>");
    let out = cin::ingest(bad.as_bytes(), &m, &ctx, None);
    assert_eq!(out.ingested.rejected.unwrap().rule.id(), "F001");
    // Another XML document.
    let out = cin::ingest(b"<Workbook><Sheet/></Workbook>", &m, &ctx, None);
    assert_eq!(out.ingested.rejected.unwrap().rule.id(), "F003");
}

/// A public sample file of `shared/external/` (the samples are read where they are, never
/// copied into the repository): from `EARLYSTART_SHARED_DIR`, else the nearest `shared/`
/// folder beside the repository or one of its parents.
fn external(path: &str) -> Vec<u8> {
    let root = std::env::var_os("EARLYSTART_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            crate::support::project()
                .ancestors()
                .map(|a| a.join("shared"))
                .find(|s| s.join("external").is_dir())
        })
        .expect("the public samples of shared/external are needed: set EARLYSTART_SHARED_DIR to the shared folder");
    let file = root.join("external").join(path);
    std::fs::read(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()))
}

/// Rule id → count, over errors, warnings and the rejection.
fn rule_counts(out: &earlystart::sources::Ingested) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in out.errors.iter().chain(&out.warnings).chain(&out.rejected) {
        *m.entry(i.rule.id().to_string()).or_insert(0) += 1;
    }
    m
}

/// The public samples are made with fake UPNs whose check letters fail (E013 sets the whole
/// child aside, extracts.md §5.1), dates after the reference date (DfE 8600) and, in two,
/// a header whose ReferenceDate is not 31 March (F004). Each fault is named; the rest loads.
#[test]
fn cin_public_samples_ingest_with_every_fault_named() {
    let ctx = ctx();
    let m = meta("cin_census", "2026-11-23");
    let cin = "csc-validator-be-cin/fake_data";
    for (path, read, loaded, rules) in [
        (format!("{cin}/CIN_Census_2024.xml"), 4, 1, "E003:2 E013:2"),
        (format!("{cin}/CIN_Census_2026.xml"), 4, 1, "E003:2 E013:2"),
        (format!("{cin}/CIN2rows.xml"), 2, 0, "E013:2"),
        (
            format!("{cin}/CIN_Census_2021_no_assessment_factors.xml"),
            2,
            0,
            "E013:2",
        ),
        (
            format!("{cin}/CIN_header_issues_100.xml"),
            2,
            0,
            "E013:2 F004:1",
        ),
        (format!("{cin}/CIN_la_issues_2887Q.xml"), 2, 0, "E013:2"),
        (
            format!("{cin}/fake_CIN_data.xml"),
            734,
            0,
            "E013:320 F004:1",
        ),
        (
            "liia-tools/liiatools/spec/cin_census/samples/cin-2022.xml".into(),
            2,
            0,
            "E013:2",
        ),
        (
            "liia-tools-pipeline/liiatools/cin_census_pipeline/spec/samples/BAR_cin_2022.xml"
                .into(),
            2,
            0,
            "E013:2",
        ),
    ] {
        let out = cin::ingest(&external(&path), &m, &ctx, None);
        let acc = &out.ingested;
        let counts: Vec<String> = rule_counts(acc)
            .iter()
            .map(|(r, n)| format!("{r}:{n}"))
            .collect();
        assert_eq!(
            (acc.rows_read, acc.rows_loaded, counts.join(" ")),
            (read, loaded, rules.to_string()),
            "{path}"
        );
        assert!(acc.balanced(), "{path}");
        assert!(
            acc.errors
                .iter()
                .all(|e| e.xml_path.is_some() && e.row_number > 0),
            "{path}"
        );
    }
    // The loaded child of the 2024 sample, with its characteristics, from the real format.
    let out = cin::ingest(
        &external(&format!("{cin}/CIN_Census_2024.xml")),
        &m,
        &ctx,
        None,
    );
    let child = table(&out, "cin_child");
    assert_eq!(child.num_rows(), 1);
    assert_eq!(
        strs(table(&out, "cin_header"), "lea"),
        vec![Some("201".into())]
    );
}

/// The nightly pipeline loads a census beside the centre extracts into the ten `cin_*`
/// tables, with its quarantine rows carrying the XML line and path; a rerun skips it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightly_run_loads_the_census_once() {
    use earlystart::lake::{CURATED, Lake, OPS};
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    earlystart::generate::generate(earlystart::generate::Scale::Tiny, 3, false, &extracts).unwrap();
    // Children A2 and A3 corrected, so 3 of 11 units are set aside (under F005's half).
    let census = CIN_FIXTURE
        .replace("A801200124567", "R801200124567")
        .replace("XXXX", "WBRI");
    std::fs::write(extracts.join("cin_census.xml"), census).unwrap();
    let lake_dir = dir.path().join("lake");
    let summary = crate::support::run_nightly(&extracts, &lake_dir).await;
    let f = summary
        .files
        .iter()
        .find(|f| f.source == "cin_census")
        .unwrap();
    assert_eq!(
        (f.status, f.rows_read, f.rows_loaded, f.rows_quarantined),
        (earlystart::pipeline::FileStatus::Loaded, 11, 8, 3)
    );
    let lake = Lake::open(&lake_dir.to_string_lossy()).unwrap();
    let rows = |batches: Vec<RecordBatch>| batches.iter().map(|b| b.num_rows()).sum::<usize>();
    for (table, n) in [
        ("cin_child", 4),
        ("cin_episode", 4),
        ("cin_cpp", 3),
        ("cin_cpp_review", 2),
        ("cin_header", 1),
    ] {
        assert_eq!(
            rows(lake.read(CURATED, table).await.unwrap().unwrap()),
            n,
            "{table}"
        );
    }
    let q = lake.read(OPS, "quarantine").await.unwrap().unwrap();
    let mut paths = Vec::new();
    for b in &q {
        let col = |n: &str, t: &arrow::datatypes::DataType| {
            arrow::compute::cast(b.column_by_name(n).unwrap(), t).unwrap()
        };
        let (src, path, line) = (
            col("source", &arrow::datatypes::DataType::Utf8),
            col("xml_path", &arrow::datatypes::DataType::Utf8),
            col("xml_line", &arrow::datatypes::DataType::Int64),
        );
        let (src, path, line) = (
            src.as_string::<i32>(),
            path.as_string::<i32>(),
            line.as_primitive::<Int64Type>(),
        );
        for i in 0..b.num_rows() {
            if src.value(i) == "cin_census" {
                paths.push(format!("{}@{}", path.value(i), line.value(i)));
            }
        }
    }
    paths.sort();
    assert_eq!(paths.len(), 3);
    assert!(
        paths.contains(
            &"Message/Children/Child[1]/CINdetails[2]/Section47[1]/S47ActualStartDate[1]@53"
                .to_string()
        ),
        "{paths:?}"
    );
    let again = crate::support::run_nightly(&extracts, &lake_dir).await;
    let f = again
        .files
        .iter()
        .find(|f| f.source == "cin_census")
        .unwrap();
    assert_eq!(f.status, earlystart::pipeline::FileStatus::Skipped);
    assert_eq!(
        rows(lake.read(CURATED, "cin_child").await.unwrap().unwrap()),
        4
    );
}

fn ingest_903(bytes: &[u8]) -> earlystart::sources::TablesIngested {
    let ctx = ctx();
    let m = meta("ssda903", "2025-06-01");
    let mapping = earlystart::sources::Mapping::default();
    earlystart::sources::ingest_tables(
        earlystart::sources::ExtractKind::Ssda903,
        bytes,
        &m,
        &mapping,
        &ctx,
        1.0,
    )
    .unwrap()
}

/// A Header table with shuffled columns, an extra column and a byte-order mark is still
/// the Header table; each bad row is quarantined with its rule, the rest load typed.
#[test]
fn ssda903_header_with_shuffled_columns() {
    let csv = "\u{feff}UPN,dob,Child,SEX,ETHNIC,MC_DOB,MOTHER,NOTES\n\
               R801200124567,01/06/2021,C1,2,WBRI,,0,x\n\
               ,2021-06-01,C2,1,WBRI,,,\n\
               ,01/06/2021,C3,3,ZZZZ,,,\n\
               A801200124567,01/06/2021,C4,1,WBRI,,,\n\
               ,05/05/2020,C1,1,WBRI,,,\n\
               ,05/05/2020,,1,WBRI,,,\n\
               ,05/05/2020,C7,1,MWBC,,1,\n";
    let out = ingest_903(csv.as_bytes());
    assert!(out.ingested.rejected.is_none());
    assert_eq!(out.tables.len(), 1);
    let (name, b) = &out.tables[0];
    assert_eq!(*name, "ssda903_header");
    assert_eq!(
        issues(&out.ingested),
        vec![
            "E002@3:date_of_birth",
            "E004@4:sex",
            "E004@4:ethnicity",
            "E013@5:key_upn",
            "E005@6:la_child_key",
            "E001@7:la_child_key"
        ]
    );
    assert_eq!(
        (
            out.ingested.rows_read,
            out.ingested.rows_loaded,
            out.ingested.rows_quarantined
        ),
        (7, 2, 5)
    );
    let p = Pseudonymiser::demo();
    assert_eq!(
        strs(b, "la_child_key"),
        vec![
            Some(p.local("la_child_id", "C1")),
            Some(p.local("la_child_id", "C7"))
        ]
    );
    assert_eq!(strs(b, "key_upn"), vec![Some(p.upn("R801200124567")), None]);
    assert_eq!(
        strs(b, "sex"),
        vec![Some("female".into()), Some("male".into())]
    );
    assert_eq!(
        dates(b, "date_of_birth"),
        vec![Some(d("2021-06-01")), Some(d("2020-05-05"))]
    );
    assert_eq!(ints(b, "_row_number"), vec![Some(2), Some(8)]);
    let e013 = &out.ingested.errors[3];
    assert_eq!(
        (e013.value_preview.clone(), e013.value_hmac.is_some()),
        (None, true),
        "a UPN is never previewed"
    );
}

#[test]
fn ssda903_episodes_keep_outward_codes_and_unknown_layouts_are_f003() {
    let csv = "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN\n\
               C1,15/02/2024,S,C2,N3,U1,PR1,14/08/2024,X1,CLOSE,EG19 7TT,wv279fw,SC123\n\
               C1,14/08/2024,T,C2,N3,QQ,PR3,,,,EG19 7TT,,\n\
               C1,15/02/2024,P,C2,N3,U1,PR1,,,,,,\n";
    let out = ingest_903(csv.as_bytes());
    let (name, b) = &out.tables[0];
    assert_eq!(*name, "ssda903_episodes");
    assert_eq!(
        issues(&out.ingested),
        vec!["E004@3:place", "E005@4:la_child_key"]
    );
    assert_eq!(strs(b, "home_outward"), vec![Some("EG19".into())]);
    assert_eq!(strs(b, "placement_outward"), vec![Some("WV27".into())]);
    assert_eq!(dates(b, "dec"), vec![Some(d("2024-08-14"))]);
    let out = ingest_903(b"CHILD,DOB,DOLO_START,DOLO_END\nC1,01/01/2010,01/01/2025,02/01/2025\n");
    let r = out.ingested.rejected.as_ref().unwrap();
    assert_eq!((r.rule.id(), out.tables.len()), ("F003", 0));
    assert!(ingest_903(b"").ingested.rejected.is_some());
}

/// The public 903 samples: every file's table is found from its header alone (the file
/// names are not used), faults are named by rule, and the rest loads.
#[test]
fn ssda903_public_samples() {
    let dir = "csc-validator-be-903/tests/fake_data";
    let mut got = Vec::new();
    for file in [
        "header.csv",
        "episodes.csv",
        "uasc.csv",
        "reviews.csv",
        "ad1.csv",
        "placed_for_adoption.csv",
        "placed_for_adoption_errors.csv",
        "previous_permanence.csv",
        "missing.csv",
        "oc2.csv",
        "oc3.csv",
        "sw_episodes.csv",
        "DoLo.csv",
    ] {
        let out = ingest_903(&external(&format!("{dir}/{file}")));
        let acc = &out.ingested;
        assert!(acc.balanced(), "{file}");
        let table = out.tables.first().map_or("-", |(n, _)| n);
        let counts: Vec<String> = rule_counts(acc)
            .iter()
            .map(|(r, n)| format!("{r}:{n}"))
            .collect();
        got.push(format!(
            "{file} {table} {}/{} {}",
            acc.rows_loaded,
            acc.rows_read,
            counts.join(" ")
        ));
    }
    for file in [
        "liia-tools/liiatools/spec/s903/samples/SSDA903_2020_episodes.csv",
        "liia-tools/liiatools/spec/s903/samples/SSDA903_episodes_for_testing_fixes_INPUT.csv",
        "liia-tools-pipeline/liiatools/ssda903_pipeline/spec/samples/SSDA903_2020_header.csv",
    ] {
        let out = ingest_903(&external(file));
        let acc = &out.ingested;
        let table = out.tables.first().map_or("-", |(n, _)| n);
        let counts: Vec<String> = rule_counts(acc)
            .iter()
            .map(|(r, n)| format!("{r}:{n}"))
            .collect();
        got.push(format!(
            "{} {table} {}/{} {}",
            file.rsplit('/').next().unwrap(),
            acc.rows_loaded,
            acc.rows_read,
            counts.join(" ")
        ));
    }
    assert_eq!(
        got,
        vec![
            // Fake UPNs fail their check letter (E013); one MOTHER value is not 0/1.
            "header.csv ssda903_header 107/2675 E010:1 E013:2568",
            "episodes.csv ssda903_episodes 5050/5050 ",
            "uasc.csv ssda903_uasc 132/132 ",
            // Review dates after the as-at date.
            "reviews.csv ssda903_reviews 12417/12582 E003:165",
            "ad1.csv ssda903_ad1 29/29 ",
            "placed_for_adoption.csv ssda903_placed_for_adoption 29/29 ",
            "placed_for_adoption_errors.csv ssda903_placed_for_adoption 30/30 ",
            "previous_permanence.csv ssda903_prev_perm 2675/2675 ",
            "missing.csv ssda903_missing 43/43 ",
            "oc2.csv ssda903_oc2 2675/2675 ",
            "oc3.csv ssda903_oc3 53/53 ",
            "sw_episodes.csv ssda903_social_worker 1/1 ",
            // Deprivation of liberty is not one of the 903 tables of extracts.md §5.2.
            "DoLo.csv - 0/0 F003:1",
            "SSDA903_2020_episodes.csv ssda903_episodes 5/5 ",
            // ISO dates where 903 has dd/mm/yyyy.
            "SSDA903_episodes_for_testing_fixes_INPUT.csv ssda903_episodes 0/23 E002:37",
            "SSDA903_2020_header.csv ssda903_header 0/5 E004:1 E013:5",
        ]
    );
    // With the default max_quarantine_ratio the ISO-dated file is rejected whole (F005).
    let ctx = ctx();
    let out = earlystart::sources::ingest_tables(
        earlystart::sources::ExtractKind::Ssda903,
        &external(
            "liia-tools/liiatools/spec/s903/samples/SSDA903_episodes_for_testing_fixes_INPUT.csv",
        ),
        &meta("ssda903", "2025-06-01"),
        &earlystart::sources::Mapping::default(),
        &ctx,
        0.5,
    )
    .unwrap();
    assert_eq!(out.ingested.rejected.unwrap().rule.id(), "F005");
    assert!(out.tables.is_empty());
}

/// EYFSP: GLD is derived from the in-GLD goals of `reference/eyfsp_elgs.csv`, whatever a
/// supplied GLD column says; blanks exclude the pupil (W007); UPNs are checked (E013).
#[test]
fn eyfsp_gld_is_derived_from_the_goals() {
    use earlystart::sources::context::PostcodeEntry;
    let mut ctx = ctx();
    ctx.geography.postcodes.insert(
        "LE1 2AB".into(),
        PostcodeEntry {
            lsoa11: Some("E01000001".into()),
            lsoa21: Some("E01000001".into()),
            lat: None,
            lon: None,
            terminated: None,
        },
    );
    let elgs = earlystart::sources::eyfsp::ELGS.join(",");
    let all = |v: &str| vec![v; 17].join(",");
    let with = |i: usize, v: &str| {
        let mut x = vec!["expected"; 17];
        x[i] = v;
        x.join(",")
    };
    let csv = format!(
        "upn,family_name,date_of_birth,postcode,fsm_eligible,gld,{elgs}\n\
         R801200124567,Smith,2019-01-15,LE1 2AB,true,no,{}\n\
         A801200124567,Smith,2019-01-15,LE1 2AB,false,yes,{}\n\
         V801200124569,Jones,2019-02-15,LE1 2AB,false,yes,{}\n\
         F801200124570,Jones,2019-03-15,LE1 2AB,n,no,{}\n\
         V801200124571,Khan,2019-04-15,LE1 2AB,y,yes,{}\n\
         J801200124572,Khan,2019-05-15,LE1 2AB,0,no,{}\n\
         Y801200124573,Lee,2017-05-15,LE1 2AB,1,yes,{}\n",
        all("expected"),
        all("expected"),
        with(10, "emerging"),
        with(15, "emerging"),
        with(3, ""),
        with(0, "exceeding"),
        all("emerging"),
    );
    let mut mapping = earlystart::sources::Mapping::default();
    mapping
        .constants
        .insert("academic_year".into(), "2023/24".into());
    let out = earlystart::sources::ingest(
        earlystart::sources::ExtractKind::Eyfsp,
        csv.as_bytes(),
        &meta("eyfsp", "2025-06-01"),
        &mapping,
        &ctx,
        1.0,
    );
    assert_eq!(
        issues(&out),
        vec![
            "E013@3:upn",
            "E004@7:elg_listening_attention_understanding",
            "W007@6:",
            "W016@8:date_of_birth",
        ]
    );
    assert_eq!(
        (out.rows_read, out.rows_loaded, out.rows_quarantined),
        (7, 5, 2)
    );
    let b = &out.batch;
    let bools = |col: &str| {
        let a = b.column_by_name(col).unwrap().as_boolean();
        (0..a.len())
            .map(|i| a.is_valid(i).then(|| a.value(i)))
            .collect::<Vec<_>>()
    };
    // The supplied `gld` column says no, yes, no, yes, yes: ignored.
    assert_eq!(
        bools("gld"),
        vec![Some(true), Some(false), Some(true), None, Some(false)]
    );
    assert_eq!(
        bools("complete"),
        vec![Some(true), Some(true), Some(true), Some(false), Some(true)]
    );
    assert_eq!(
        bools("fsm_eligible"),
        vec![Some(true), Some(false), Some(false), Some(true), Some(true)]
    );
    assert_eq!(strs(b, "academic_year"), vec![Some("2023/24".into()); 5]);
    assert_eq!(strs(b, "lsoa21")[0].as_deref(), Some("E01000001"));
    assert_eq!(
        strs(b, "key_upn")[0],
        Some(Pseudonymiser::demo().upn("R801200124567"))
    );
    assert!(b.column_by_name("upn").is_none() && b.column_by_name("family_name").is_none());
}

/// The generator writes every social care and education source for the same children,
/// with `identities.csv`; the run scores its linkage against it (pairwise precision and
/// recall) and counts social care and EYFSP links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_sources_link_to_the_same_children() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    earlystart::generate::generate(earlystart::generate::Scale::Tiny, 3, false, &extracts).unwrap();
    let summary = crate::support::run_nightly(&extracts, &dir.path().join("lake")).await;
    assert_eq!(summary.exit_code(), 0);
    for source in [
        "cin_census",
        "ssda903",
        "eyfsp",
        "sc_person_identifiers",
        "early_help_episodes",
    ] {
        let files: Vec<_> = summary
            .files
            .iter()
            .filter(|f| f.source == source)
            .collect();
        assert!(
            !files.is_empty()
                && files
                    .iter()
                    .all(|f| f.rows_loaded == f.rows_read && f.rows_read > 0),
            "{source}"
        );
    }
    let l = summary.linkage.as_ref().unwrap();
    let q = l.quality.unwrap();
    // Exact on this seed: no false merge; the few pupils whose family moved (postcode,
    // hence demographic key, differs) and who have no UPN link elsewhere stay apart.
    let r4 = |v: f64| (v * 10_000.0).round() / 10_000.0;
    assert_eq!((r4(q.precision), r4(q.recall)), (1.0, 0.9977));
    let s = l.quality_social.unwrap();
    assert_eq!(
        (s.records, r4(s.precision), r4(s.recall)),
        (498, 1.0, 0.9918)
    );
    assert_eq!(
        q.records, l.records,
        "every linked record has a ground-truth identity"
    );
    assert!(l.by_rule.get("LA_ID").copied().unwrap_or(0) > 0);
    assert!(l.registered_linked_to_eyfsp > 0 && l.registered_linked_to_social_care > 0);
}

/// Annex A: sheets are matched by their headers; lists 1–3 and 6–8 load typed, the other
/// lists are ignored, lettered codes lose their letter, and uncalculated formulas and
/// impossible codes are named with their sheet, row and rule.
#[test]
fn annex_a_public_samples_load_by_header() {
    let ctx = ctx();
    for path in [
        "liia-tools/liiatools/spec/annex_a/samples/Annex_A.xlsx",
        "liia-tools-pipeline/liiatools/annex_a_pipeline/spec/samples/Annex_A_2024_Jan.xlsx",
    ] {
        let out = earlystart::sources::ingest_tables(
            earlystart::sources::ExtractKind::AnnexA,
            &external(path),
            &meta("annex_a", "2025-06-01"),
            &earlystart::sources::Mapping::default(),
            &ctx,
            1.0,
        )
        .unwrap();
        let acc = &out.ingested;
        assert!(acc.rejected.is_none(), "{path}");
        assert!(acc.balanced());
        assert!(acc.errors.is_empty() && acc.warnings.is_empty(), "{path}");
        let rows: Vec<(&str, usize)> = out.tables.iter().map(|(n, b)| (*n, b.num_rows())).collect();
        assert_eq!(
            rows,
            vec![
                ("annex_a_list1", 5),
                ("annex_a_list2", 5),
                ("annex_a_list3", 6),
                ("annex_a_list6", 5),
                ("annex_a_list7", 7),
                ("annex_a_list8", 5),
            ],
            "{path}"
        );
        let l2 = &out.tables[1].1;
        let p = Pseudonymiser::demo();
        assert_eq!(
            strs(l2, "la_child_key")[0],
            Some(p.local("la_child_id", "612306"))
        );
        assert_eq!(strs(l2, "sex")[0].as_deref(), Some("male"));
        assert_eq!(strs(l2, "ethnicity")[0].as_deref(), Some("WBRI"));
        assert_eq!(dates(l2, "date_of_birth")[0], Some(d("2009-03-05")));
        assert_eq!(
            dates(l2, "assessment_completion_date")[0],
            Some(d("2020-09-30"))
        );
        assert_eq!(
            strs(l2, "organisation")[0].as_deref(),
            Some("Top Town Academy")
        );
        let l3 = &out.tables[2].1;
        assert_eq!(strs(l3, "referral_source")[0].as_deref(), Some("8: Other"));
        assert!(
            l3.column_by_name("allocated_worker").is_none(),
            "workers' names are not loaded"
        );
    }
    // A truncated workbook is rejected whole (F001), as is a workbook with no Annex A list.
    let bytes = external("liia-tools/liiatools/spec/annex_a/samples/Annex_A.xlsx");
    let m = meta("annex_a", "2025-06-01");
    let run = |b: &[u8]| {
        earlystart::sources::ingest_tables(
            earlystart::sources::ExtractKind::AnnexA,
            b,
            &m,
            &earlystart::sources::Mapping::default(),
            &ctx,
            1.0,
        )
        .unwrap()
    };
    let out = run(&bytes[..bytes.len() / 2]);
    assert_eq!(out.ingested.rejected.unwrap().rule.id(), "F001");
    let other = external("annex-a-sen-validator-be/fake_data/fake_sen.xlsx");
    assert_eq!(run(&other).ingested.rejected.unwrap().rule.id(), "F003");
}

/// The nightly pipeline reads an Annex A workbook twice: every list into `annex_a_list*`,
/// and list 2 through the shipped mapping into `early_help_episodes`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightly_run_loads_annex_a_and_early_help_from_list_2() {
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    earlystart::generate::generate(earlystart::generate::Scale::Tiny, 3, false, &extracts).unwrap();
    std::fs::write(
        extracts.join("annex_a_2021.xlsx"),
        external("liia-tools/liiatools/spec/annex_a/samples/Annex_A.xlsx"),
    )
    .unwrap();
    let summary = crate::support::run_nightly(&extracts, &dir.path().join("lake")).await;
    let f = |s: &str| summary.files.iter().find(|f| f.source == s).unwrap();
    assert_eq!((f("annex_a").rows_read, f("annex_a").rows_loaded), (33, 33));
    assert_eq!(
        (f("annex_a_list2").rows_read, f("annex_a_list2").rows_loaded),
        (5, 5)
    );
    let lake = earlystart::lake::Lake::open(&dir.path().join("lake").to_string_lossy()).unwrap();
    let eh = lake
        .read(earlystart::lake::CURATED, "early_help_episodes")
        .await
        .unwrap()
        .unwrap();
    let eh = arrow::compute::concat_batches(&eh[0].schema(), &eh).unwrap();
    // Only the rows from Annex A list 2 (the generator writes its own early help file too).
    let source = arrow::compute::cast(
        eh.column_by_name("_source").unwrap(),
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    let from_list_2 = arrow::compute::kernels::cmp::eq(
        &source,
        &arrow::array::StringArray::new_scalar("annex_a_list2"),
    )
    .unwrap();
    let eh = arrow::compute::filter_record_batch(&eh, &from_list_2).unwrap();
    assert_eq!(eh.num_rows(), 5);
    let lead = arrow::compute::cast(
        eh.column_by_name("lead_agency").unwrap(),
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    assert!(
        lead.as_string::<i32>()
            .iter()
            .all(|v| v == Some("LA_EARLY_HELP"))
    );
    let key = arrow::compute::cast(
        eh.column_by_name("child_key").unwrap(),
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap();
    assert!(key.as_string::<i32>().iter().any(|v| {
        v == Some(
            Pseudonymiser::demo()
                .local("la_child_id", "612306")
                .as_str(),
        )
    }));
}

/// Early help episodes in the canonical layout: closure reason required once closed,
/// ends after starts, codes from the shipped lists, (child, start) unique, W018 for a
/// missing or inconsistent age.
#[test]
fn early_help_episodes_rules() {
    let ctx = ctx();
    let csv = "child_id,sex,ethnicity,date_of_birth,age_years,episode_start_date,assessment_completion_date,organisation,episode_end_date,closure_reason,lead_agency\n\
               E1,female,WBRI,2021-01-10,3,2024-05-01,2024-05-20,Hub North,2024-11-01,STEP_UP_SC,CHILDRENS_CENTRE\n\
               E2,male,WBRI,2021-01-10,3,2024-05-01,,Hub North,2024-11-01,,LA_EARLY_HELP\n\
               E3,male,WBRI,,,2024-05-01,2024-04-01,Hub North,,,LA_EARLY_HELP\n\
               E4,male,WBRI,2021-01-10,9,2024-05-01,,Hub North,,,POLICE\n\
               E1,female,WBRI,2021-01-10,3,2024-05-01,,Hub North,,,LA_EARLY_HELP\n\
               E6,male,WBRI,2021-01-10,3,2024-06-01,,Hub North,2024-05-01,NOPE,LA_EARLY_HELP\n\
               E7,male,WBRI,2021-01-10,9,2024-06-01,,Hub South,,,SCHOOL\n\
               E8,male,WBRI,,,2024-06-01,,Hub South,,,SCHOOL\n";
    let mapping = earlystart::sources::Mapping {
        namespace: "la_child_id".into(),
        ..Default::default()
    };
    let out = earlystart::sources::ingest(
        earlystart::sources::ExtractKind::EarlyHelpEpisodes,
        csv.as_bytes(),
        &meta("early_help_episodes", "2025-06-01"),
        &mapping,
        &ctx,
        1.0,
    );
    assert_eq!(
        issues(&out),
        vec![
            "E001@3:closure_reason",
            "E011@4:assessment_completion_date",
            "E004@5:lead_agency",
            "E005@6:child_id",
            "E011@7:episode_end_date",
            "E004@7:closure_reason",
            "W018@8:age_years",
            "W018@9:date_of_birth",
        ]
    );
    assert_eq!((out.rows_loaded, out.rows_quarantined), (3, 5));
    assert_eq!(
        strs(&out.batch, "child_key"),
        ["E1", "E7", "E8"]
            .iter()
            .map(|id| Some(Pseudonymiser::demo().local("la_child_id", id)))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        strs(&out.batch, "closure_reason")[0].as_deref(),
        Some("STEP_UP_SC")
    );
}
