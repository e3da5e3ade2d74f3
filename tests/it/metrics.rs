//! The metric catalogue on the worked examples of metrics.md §9, built as real extracts,
//! ingested by the shipped pipeline and computed by the shipped `sql/` project, plus the
//! edge cases of §1.4 (a child turning five, a family member's attendance, an LSOA with no
//! IoD decile, an empty centre).
//!
//! One fixture world holds every example; each lives in its own reach area or LSOA so the
//! others do not disturb its counts:
//! - WE1: reach area R1 = LSOA X (IDACI decile 6) + LSOA Y (decile 2), children C01–C10.
//! - WE2 (ASQ-3, 27 months), WE3 (EYFSP pupils) and WE4 (new birth visits): children in LSOA Z
//!   (reach area R3).
//! - Edge cases: reach area R2 = LSOA W, which has no IoD2019 row.
//! - R4 is a centre whose reach area (LSOA V) has no children.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use arrow::array::{Array, RecordBatch};
use earlystart::lake::Lake;
use earlystart::metrics::run::{MetricOptions, run};
use earlystart::metrics::session::{LakeSession, Limits};

use crate::support::{project, run_nightly};

/// A valid NHS number from a 9-digit stem (mod 11 check digit); stems giving 10 are skipped.
fn nhs(stem: u32) -> String {
    let mut stem = stem;
    loop {
        let digits: Vec<u32> = format!("{stem:09}")
            .bytes()
            .map(|b| (b - b'0') as u32)
            .collect();
        let sum: u32 = digits.iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
        let check = (11 - sum % 11) % 11;
        if check != 10 {
            return format!("{stem:09}{check}");
        }
        stem += 1;
    }
}

struct Child {
    id: &'static str,
    dob: &'static str,
    postcode: &'static str,
    registered_at: Option<&'static str>,
}

const CHILDREN: &[Child] = &[
    // WE1: C01–C05 and C07 in X, C05–C06 and C08–C10 in Y (C07 lives in X too).
    Child {
        id: "C01",
        dob: "2022-05-01",
        postcode: "XQ1 1AA",
        registered_at: Some("R1"),
    },
    Child {
        id: "C02",
        dob: "2022-06-01",
        postcode: "XQ1 1AA",
        registered_at: Some("R1"),
    },
    Child {
        id: "C03",
        dob: "2022-07-01",
        postcode: "XQ1 1AA",
        registered_at: Some("R1"),
    },
    Child {
        id: "C04",
        dob: "2022-08-01",
        postcode: "XQ1 1AA",
        registered_at: Some("R1"),
    },
    Child {
        id: "C05",
        dob: "2022-09-01",
        postcode: "XQ1 2BB",
        registered_at: Some("R1"),
    },
    Child {
        id: "C06",
        dob: "2021-10-01",
        postcode: "XQ1 2BB",
        registered_at: Some("R1"),
    },
    Child {
        id: "C07",
        dob: "2021-11-01",
        postcode: "XQ1 1AA",
        registered_at: None,
    },
    Child {
        id: "C08",
        dob: "2021-12-01",
        postcode: "XQ1 2BB",
        registered_at: None,
    },
    Child {
        id: "C09",
        dob: "2023-01-01",
        postcode: "XQ1 2BB",
        registered_at: None,
    },
    Child {
        id: "C10",
        dob: "2023-02-01",
        postcode: "XQ1 2BB",
        registered_at: None,
    },
    // WE2: 27-month questionnaires in July 2024.
    Child {
        id: "A",
        dob: "2022-04-10",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    Child {
        id: "B",
        dob: "2022-04-11",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    Child {
        id: "C",
        dob: "2022-04-12",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    Child {
        id: "D",
        dob: "2022-04-13",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    Child {
        id: "E",
        dob: "2022-04-14",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    Child {
        id: "F",
        dob: "2022-04-15",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    // WE4: new birth visits.
    Child {
        id: "K1",
        dob: "2024-06-01",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    Child {
        id: "K2",
        dob: "2024-05-31",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    Child {
        id: "K3",
        dob: "2024-07-15",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    Child {
        id: "K4",
        dob: "2024-08-01",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    Child {
        id: "K5",
        dob: "2024-08-31",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    Child {
        id: "K6",
        dob: "2024-09-01",
        postcode: "XQ1 3CC",
        registered_at: None,
    },
    // Edge cases in R2 (LSOA W, no IoD decile): G1 plain; G2 turns five on 2025-01-15;
    // G3 never attends but a parent of the same family attends on three days.
    Child {
        id: "G1",
        dob: "2022-03-01",
        postcode: "XQ1 4DD",
        registered_at: Some("R2"),
    },
    Child {
        id: "G2",
        dob: "2020-01-15",
        postcode: "XQ1 4DD",
        registered_at: Some("R2"),
    },
    Child {
        id: "G3",
        dob: "2023-03-01",
        postcode: "XQ1 4DD",
        registered_at: Some("R2"),
    },
];

/// (child, dates) of own attendances; C03 and C04 have several rows on one date.
const ATTENDANCES: &[(&str, &[&str])] = &[
    (
        "C01",
        &[
            "2024-04-10",
            "2024-05-10",
            "2024-06-10",
            "2024-07-10",
            "2024-08-10",
        ],
    ),
    ("C02", &["2024-05-01", "2024-06-01", "2024-07-01"]),
    (
        "C03",
        &["2024-05-02", "2024-05-02", "2024-06-02", "2024-07-02"],
    ),
    ("C04", &["2024-09-03", "2024-09-03", "2024-09-03"]),
    ("C06", &["2024-02-20", "2024-10-01", "2024-11-01"]),
    ("G1", &["2024-10-05"]),
    ("G2", &["2024-10-06"]),
];

/// Days on which G3's parent (same family, not the child) attended.
const PARENT_DAYS: &[&str] = &["2024-11-05", "2024-12-05", "2025-01-05"];

fn child(id: &str) -> &'static Child {
    CHILDREN.iter().find(|c| c.id == id).unwrap()
}

fn child_nhs(i: usize) -> String {
    nhs(999_100_000 + (i as u32) * 7)
}

/// NHS number of WE7's child W`k`.
fn we7_nhs(k: usize) -> String {
    nhs(999_200_000 + (k as u32) * 7)
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

/// Writes the fixture world's extracts.
fn write_world(dir: &Path) {
    let mut chis = String::from(
        "nhs_number,local_id,given_name,family_name,date_of_birth,sex,postcode,gp_practice,registered_from,registered_to\n",
    );
    let mut regs = String::from(
        "person_id,family_id,centre_id,role,nhs_number,given_name,family_name,date_of_birth,sex,postcode,ethnicity,registration_date,lone_parent,teenage_parent,workless_household,disability,eal,father,other_flags\n",
    );
    let mut att = String::from(
        "attendance_id,person_id,family_id,centre_id,activity_code,venue_type,session_date,duration_minutes\n",
    );
    for (i, c) in CHILDREN.iter().enumerate() {
        let sex = if i % 2 == 0 { "female" } else { "male" };
        let name = format!("CHILD{}", c.id);
        writeln!(
            chis,
            "{},L{i:04},ANNA,{name},{},{sex},{},X00001,{},",
            child_nhs(i),
            c.dob,
            c.postcode,
            c.dob
        )
        .unwrap();
        if let Some(centre) = c.registered_at {
            writeln!(
                regs,
                "P{},F{},{centre},child,{},ANNA,{name},{},{sex},{},WBRI,2024-01-01,n,n,n,n,n,n,",
                c.id,
                c.id,
                child_nhs(i),
                c.dob,
                c.postcode
            )
            .unwrap();
        }
    }
    // G3's parent, registered in G3's family.
    writeln!(
        regs,
        "PG3M,FG3,R2,parent,,MARY,CHILDG3,1995-01-01,female,XQ1 4DD,WBRI,2024-01-01,y,n,n,n,n,n,"
    )
    .unwrap();
    let mut n = 0;
    for (id, dates) in ATTENDANCES {
        let c = child(id);
        for d in *dates {
            n += 1;
            writeln!(
                att,
                "A{n:05},P{id},F{id},{},ACT1,centre,{d},60",
                c.registered_at.unwrap()
            )
            .unwrap();
        }
    }
    for d in PARENT_DAYS {
        n += 1;
        writeln!(att, "A{n:05},PG3M,FG3,R2,ACT1,centre,{d},60").unwrap();
    }

    // WE2: scores (comm, gm, fm, ps, p-s); E's communication has 3 items answered; F's is
    // raw 20 from 4 items.
    let mut asq = String::from(
        "nhs_number,review_date,questionnaire_months,communication,gross_motor,fine_motor,problem_solving,personal_social,score_basis,communication_items\n",
    );
    for (id, scores, basis, items) in [
        ("A", "45,50,40,45,50", "adjusted", ""),
        ("B", "20,55,30,35,40", "adjusted", ""),
        ("C", "30,25,50,40,45", "adjusted", ""),
        ("D", "50,60,15,25,20", "adjusted", ""),
        ("E", "15,40,35,45,30", "adjusted", "3"),
        ("F", "20,40,40,40,40", "raw", "4"),
    ] {
        let i = CHILDREN.iter().position(|c| c.id == id).unwrap();
        writeln!(
            asq,
            "{},2024-07-15,27,{scores},{basis},{items}",
            child_nhs(i)
        )
        .unwrap();
    }

    // WE4: first face-to-face NBV per child; K5 only has a telephone NBV.
    let mut hv = String::from(
        "contact_id,nhs_number,contact_type,contact_date,face_to_face,feeding_status,service_level\n",
    );
    for (j, (id, date, f2f)) in [
        ("K1", "2024-06-12", "true"),
        ("K2", "2024-06-05", "true"),
        ("K3", "2024-07-29", "true"),
        ("K4", "2024-08-16", "true"),
        ("K5", "2024-09-05", "false"),
        ("K6", "2024-09-10", "true"),
    ]
    .into_iter()
    .enumerate()
    {
        let i = CHILDREN.iter().position(|c| c.id == id).unwrap();
        writeln!(hv, "H{j:04},{},NBV,{date},{f2f},,universal", child_nhs(i)).unwrap();
    }

    // WE7: six families FW1–FW6 in targeted activity (ACT2) at centre R4 in 2024-25, each with
    // one registered child W1–W6 born in 2018 (five or over throughout, so no under-five
    // measure of the world changes). Social care: FW1 (a CIN referral, census child S1) and
    // FW2 (looked after, 903 child S2), both linked by the side file's NHS numbers; early
    // help: FW2 (open) and FW3 (closed in May 2024); health visiting additional support: FW4
    // (a universal_plus contact); FW5's only contact is universal; FW6 nothing. FW1's parent
    // attends, not the child.
    writeln!(
        regs,
        "PW1M,FW1,R4,parent,,MARY,CHILDW1,1990-01-01,female,XQ1 4DD,WBRI,2022-01-01,n,n,n,n,n,n,"
    )
    .unwrap();
    for k in 1..=6 {
        writeln!(
            regs,
            "PW{k},FW{k},R4,child,{},ANNA,CHILDW{k},2018-0{k}-01,female,XQ1 4DD,WBRI,2022-01-01,n,n,n,n,n,n,",
            we7_nhs(k)
        )
        .unwrap();
        n += 1;
        let person = if k == 1 {
            "PW1M".to_string()
        } else {
            format!("PW{k}")
        };
        writeln!(att, "A{n:05},{person},FW{k},R4,ACT2,centre,2024-10-1{k},90").unwrap();
    }
    for k in [4, 5] {
        writeln!(
            chis,
            "{},LW{k:03},ANNA,CHILDW{k},2018-0{k}-01,female,XQ1 4DD,X00001,2018-0{k}-01,",
            we7_nhs(k)
        )
        .unwrap();
    }
    writeln!(
        hv,
        "H9004,{},OTHER,2024-11-04,true,,universal_plus",
        we7_nhs(4)
    )
    .unwrap();
    writeln!(hv, "H9005,{},OTHER,2024-11-05,true,,universal", we7_nhs(5)).unwrap();

    write(dir, "chis.csv", &chis);
    write(dir, "registrations.csv", &regs);
    write(dir, "attendances.csv", &att);
    write(dir, "asq3.csv", &asq);
    write(dir, "hv_contacts.csv", &hv);
    // WE3: EYFSP 2023/24, pupils P1–P8 living in LSOA Z (reach area R3): (FSM, ELGs
    // emerging by column index, ELG left blank).
    let elgs = earlystart::sources::eyfsp::ELGS;
    let mut eyfsp = format!(
        "upn,family_name,date_of_birth,postcode,fsm_eligible,academic_year,{}\n",
        elgs.join(",")
    );
    let pupils: [(bool, &[usize], Option<usize>); 8] = [
        (false, &[], None),
        (false, &[13, 14], None),
        (false, &[9], None),
        (true, &[], None),
        (true, &[9, 10], None),
        (true, &[12], None),
        (false, &[1, 2, 13, 14, 15], None),
        (true, &[], Some(6)),
    ];
    for (i, (fsm, emerging, blank)) in pupils.iter().enumerate() {
        let judgements: Vec<&str> = (0..elgs.len())
            .map(|j| {
                if *blank == Some(j) {
                    ""
                } else if emerging.contains(&j) {
                    "emerging"
                } else {
                    "expected"
                }
            })
            .collect();
        writeln!(
            eyfsp,
            "{},PUPIL{i},2019-0{}-15,XQ1 3CC,{fsm},2023/24,{}",
            earlystart::generate::upn(900 + i),
            i + 1,
            judgements.join(",")
        )
        .unwrap();
    }
    write(dir, "eyfsp_2023-24.csv", &eyfsp);
    // WE5: a CIN census for 2024-25 (reference date 2025-03-31). R1 referred 2023-06-01 and
    // 2024-05-15 (a re-referral), R2 2023-01-10 and 2024-04-20 (not: more than 12 months),
    // R3 2024-09-01; R4 unborn, referred before birth. R1 has an open CP plan and is looked
    // after; R3's plan ended before 31 March. The side file places R1 in LSOA Z (R3).
    let child = |id: &str, dob: &str, episodes: &str| {
        format!(
            "<Child><ChildIdentifiers><LAchildID>{id}</LAchildID>{dob}<Sex>F</Sex></ChildIdentifiers><ChildCharacteristics><Ethnicity>WBRI</Ethnicity></ChildCharacteristics>{episodes}</Child>\n"
        )
    };
    let born = "<PersonBirthDate>2021-01-01</PersonBirthDate>";
    let census = [
        child("R1", born, "<CINdetails><CINreferralDate>2023-06-01</CINreferralDate><CINclosureDate>2023-08-01</CINclosureDate><ReasonForClosure>RC8</ReasonForClosure></CINdetails><CINdetails><CINreferralDate>2024-05-15</CINreferralDate><ChildProtectionPlans><CPPstartDate>2024-06-01</CPPstartDate></ChildProtectionPlans></CINdetails>"),
        child("R2", born, "<CINdetails><CINreferralDate>2023-01-10</CINreferralDate><CINclosureDate>2023-03-01</CINclosureDate><ReasonForClosure>RC8</ReasonForClosure></CINdetails><CINdetails><CINreferralDate>2024-04-20</CINreferralDate><CINclosureDate>2024-06-01</CINclosureDate><ReasonForClosure>RC8</ReasonForClosure></CINdetails>"),
        child("R3", born, "<CINdetails><CINreferralDate>2024-09-01</CINreferralDate><ChildProtectionPlans><CPPstartDate>2024-10-01</CPPstartDate><CPPendDate>2025-01-01</CPPendDate></ChildProtectionPlans></CINdetails>"),
        child("R4", "<ExpectedPersonBirthDate>2025-05-01</ExpectedPersonBirthDate>", "<CINdetails><CINreferralDate>2025-02-01</CINreferralDate></CINdetails>"),
        child("R5", born, "<CINdetails><CINreferralDate>2024-03-10</CINreferralDate><CINclosureDate>2024-03-20</CINclosureDate><ReasonForClosure>RC8</ReasonForClosure></CINdetails>"),
        child("R7", "<PersonBirthDate>2019-01-01</PersonBirthDate>", "<CINdetails><CINreferralDate>2025-01-05</CINreferralDate><CINclosureDate>2025-01-20</CINclosureDate><ReasonForClosure>RC8</ReasonForClosure></CINdetails>"),
        child("S1", "<PersonBirthDate>2018-01-01</PersonBirthDate>", "<CINdetails><CINreferralDate>2024-06-01</CINreferralDate></CINdetails>"),
    ]
    .concat();
    write(
        dir,
        "cin_census.xml",
        &format!(
            "<Message><Header><CollectionDetails><Collection>CIN</Collection><Year>2024</Year><ReferenceDate>2025-03-31</ReferenceDate></CollectionDetails></Header><Children>\n{census}</Children></Message>\n"
        ),
    );
    // WE5, SC-06: early help episodes of R5–R8 closed in 2023-24; R5 is referred within 12
    // months of the end (in the census), R6 is stepped up, R7's referral is too late (and R7,
    // born 2019, is five by then, so outside SC-01), R8 has none.
    write(
        dir,
        "early_help_episodes.csv",
        &format!(
            "child_id,sex,ethnicity,date_of_birth,episode_start_date,organisation,episode_end_date,closure_reason,lead_agency,nhs_number\n\
             R5,female,WBRI,2021-01-01,2023-04-10,Hub,2023-07-01,OUTCOMES_MET,CHILDRENS_CENTRE,\n\
             R6,male,WBRI,2021-01-01,2023-05-10,Hub,2023-09-30,STEP_UP_SC,CHILDRENS_CENTRE,\n\
             R7,male,WBRI,2019-01-01,2023-06-10,Hub,2023-12-15,OUTCOMES_MET,CHILDRENS_CENTRE,\n\
             R8,female,WBRI,2021-01-01,2023-07-10,Hub,2024-02-01,DISENGAGED,CHILDRENS_CENTRE,\n\
             R9,female,WBRI,2021-01-01,2024-05-10,Hub,,,CHILDRENS_CENTRE,\n\
             E2,female,WBRI,2018-02-01,2024-09-01,Hub,,,CHILDRENS_CENTRE,{}\n\
             E3,female,WBRI,2018-03-01,2023-05-01,Hub,2024-05-01,OUTCOMES_MET,CHILDRENS_CENTRE,{}\n",
            we7_nhs(2),
            we7_nhs(3)
        ),
    );
    write(
        dir,
        "sc_person_identifiers.csv",
        &format!(
            "la_child_id,nhs_number,upn,given_name,family_name,date_of_birth,postcode\n\
             R1,,,ANNA,SOCIAL,2021-01-01,XQ1 3CC\n\
             S1,{},,,,2018-01-01,\n\
             S2,{},,,,2018-02-01,\n",
            we7_nhs(1),
            we7_nhs(2)
        ),
    );
    write(
        dir,
        "ssda903/header.csv",
        "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\nR1,2,01/01/2021,WBRI,,,\nS2,2,01/02/2018,WBRI,,,\n",
    );
    write(
        dir,
        "ssda903/episodes.csv",
        "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN\nR1,01/07/2024,S,C2,N1,U1,PR1,,,,XQ1,,\nS2,01/09/2024,S,C2,N1,U1,PR1,,,,XQ1,,\n",
    );
    write(
        dir,
        "activities.csv",
        "activity_code,name,service_type,programme\nACT1,Stay and play,universal,\nACT2,Family support,targeted,\n",
    );
    let mut centres = String::from(
        "centre_id,name,provider,early_help_area,lot,postcode,lat,lon,open_date,close_date,site_type\n",
    );
    for (i, c) in ["R1", "R2", "R3", "R4"].iter().enumerate() {
        writeln!(
            centres,
            "{c},Centre {c},Provider,Area {},LOT{},XQ1 1AA,,,2010-04-01,,centre",
            i % 2,
            i % 2
        )
        .unwrap();
    }
    write(dir, "centres.csv", &centres);
    write(
        dir,
        "reach_areas.csv",
        "centre_id,lsoa_code\nR1,E01900001\nR1,E01900002\nR2,E01900004\nR3,E01900003\nR4,E01900005\n",
    );
    // LSOAs (2011 = 2021 codes): X E01900001, Y E01900002, Z E01900003, W E01900004,
    // V E01900005.
    write(
        dir,
        "reference/postcodes.csv",
        "pcds,doterm,lsoa11,lsoa21,lat,long,usertype\n\
         XQ1 1AA,,E01900001,E01900001,52.0,-1.5,0\n\
         XQ1 2BB,,E01900002,E01900002,52.1,-1.4,0\n\
         XQ1 3CC,,E01900003,E01900003,52.2,-1.3,0\n\
         XQ1 4DD,,E01900004,E01900004,52.3,-1.2,0\n",
    );
    let mut lookup = String::from("LSOA11CD,LSOA11NM,LSOA21CD,LSOA21NM,CHGIND,LAD22CD,LAD22NM\n");
    let mut population = String::from("LSOA 2021 Code,0,1,2,3,4\n");
    for l in 1..=5 {
        writeln!(
            lookup,
            "E0190000{l},L,E0190000{l},L,U,E06999999,Fixture county"
        )
        .unwrap();
        writeln!(population, "E0190000{l},1,1,1,1,1").unwrap();
    }
    write(dir, "reference/lsoa_lookup.csv", &lookup);
    write(dir, "reference/lsoa_population.csv", &population);
    for (file, vintage) in [("iod2019_file7.csv", "2011"), ("iod2025_file7.csv", "2021")] {
        let mut iod = format!(
            "LSOA code ({vintage}),LSOA name ({vintage}),Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived),Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs),Income Deprivation Affecting Children Index (IDACI) Score (rate),Income Deprivation Affecting Children Index (IDACI) Rank (where 1 is most deprived),Income Deprivation Affecting Children Index (IDACI) Decile (where 1 is most deprived 10% of LSOAs)\n"
        );
        // W (E01900004) is a 2021 LSOA with no 2011 row: no decile in the IoD2019 vintage
        // that the metrics use (reach areas are checked against IoD2025).
        let lsoas: &[(u32, u32)] = if vintage == "2011" {
            &[(1, 6), (2, 2), (3, 5), (5, 9)]
        } else {
            &[(1, 6), (2, 2), (3, 5), (4, 4), (5, 9)]
        };
        for &(l, decile) in lsoas {
            writeln!(
                iod,
                "E0190000{l},L,{},{decile},0.1,{},{decile}",
                decile * 3000,
                decile * 3000
            )
            .unwrap();
        }
        write(dir, &format!("reference/{file}"), &iod);
    }
}

/// The fixture world's lake: ingested by the nightly pipeline and built by the metric run
/// (twice: the second run must find nothing to do). Kept for the whole test binary.
pub fn world_lake() -> &'static Path {
    static LAKE: OnceLock<tempfile::TempDir> = OnceLock::new();
    LAKE.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let extracts = dir.path().join("extracts");
            write_world(&extracts);
            let lake_path = dir.path().join("lake");
            let summary = run_nightly(&extracts, &lake_path).await;
            assert_eq!(summary.exit_code(), 0, "{}", summary.render());
            let lake = Lake::open(&lake_path.to_string_lossy()).unwrap();
            let built = run(&lake, &project(), &MetricOptions::default())
                .await
                .unwrap();
            assert!(!built.up_to_date);
            assert!(
                built.tests_run > 100,
                "sidecar tests ran: {}",
                built.tests_run
            );
            let again = run(&lake, &project(), &MetricOptions::default())
                .await
                .unwrap();
            assert!(again.up_to_date, "same inputs: nothing is recomputed");
            dir
        })
    })
    .path()
    .join("lake")
    .leak()
}

/// Runs a query on the fixture world's lake, as `earlystart sql` would.
fn query_world(sql: &str) -> Vec<RecordBatch> {
    let path = world_lake();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let lake = Lake::open(&path.to_string_lossy()).unwrap();
        let session = LakeSession::open(&lake, Limits::default(), 0.95)
            .await
            .unwrap();
        session.query(sql).await.unwrap()
    })
}

/// The result of a query on the fixture world as a printed table.
fn query_world_text(sql: &str) -> String {
    arrow::util::pretty::pretty_format_batches(&query_world(sql))
        .unwrap()
        .to_string()
}

/// metric_values of the fixture world by key.
fn world() -> &'static BTreeMap<String, Row> {
    static WORLD: OnceLock<BTreeMap<String, Row>> = OnceLock::new();
    WORLD.get_or_init(|| {
        collect(&query_world(
            "select concat_ws('|', metric_id, period_type, cast(period_end as varchar), \
             geography_type, geography_code, breakdown_type, breakdown_value), \
             numerator, coalesce(denominator, -1), coalesce(value, -1.0), lower_95, upper_95, \
             comparison from metric_values",
        ))
    })
}

type Row = (i64, i64, f64, Option<f64>, Option<f64>, String);

fn collect(batches: &[RecordBatch]) -> BTreeMap<String, Row> {
    use arrow::array::{AsArray, Float64Array, Int64Array};
    use arrow::compute::cast;
    use arrow::datatypes::DataType;
    let mut out = BTreeMap::new();
    for b in batches {
        let key = cast(b.column(0), &DataType::Utf8).unwrap();
        let key = key.as_string::<i32>();
        let ints = |i: usize| cast(b.column(i), &DataType::Int64).unwrap();
        let floats = |i: usize| cast(b.column(i), &DataType::Float64).unwrap();
        let (num, den) = (ints(1), ints(2));
        let (num, den) = (
            num.as_any().downcast_ref::<Int64Array>().unwrap(),
            den.as_any().downcast_ref::<Int64Array>().unwrap(),
        );
        let (v, lo, hi) = (floats(3), floats(4), floats(5));
        let f =
            |a: &arrow::array::ArrayRef| a.as_any().downcast_ref::<Float64Array>().unwrap().clone();
        let (v, lo, hi) = (f(&v), f(&lo), f(&hi));
        let flags = cast(b.column(6), &DataType::Utf8).unwrap();
        let flags = flags.as_string::<i32>();
        for i in 0..b.num_rows() {
            out.insert(
                key.value(i).to_string(),
                (
                    num.value(i),
                    den.value(i),
                    v.value(i),
                    (!lo.is_null(i)).then(|| lo.value(i)),
                    (!hi.is_null(i)).then(|| hi.value(i)),
                    flags.value(i).to_string(),
                ),
            );
        }
    }
    out
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Asserts numerator/denominator and the rounded value and interval of one row.
fn check(key: &str, num: i64, den: i64, interval: Option<(f64, f64)>) {
    let w = world();
    let Some(row) = w.get(key) else {
        let near: Vec<&String> = w
            .keys()
            .filter(|k| k.starts_with(key.split('|').next().unwrap()) && k.contains("|all|all"))
            .take(60)
            .collect();
        panic!("no metric row {key}; some rows of that metric: {near:#?}");
    };
    assert_eq!((row.0, row.1), (num, den), "{key}");
    if let Some((lo, hi)) = interval {
        assert_eq!(
            (r1(row.3.unwrap()), r1(row.4.unwrap())),
            (lo, hi),
            "{key} interval"
        );
    }
}

const WE1: &str = "rolling12|2025-03-31|reach_area|R1";

#[test]
fn we1_reach_in_a_ten_child_reach_area() {
    check(
        &format!("REACH-01|{WE1}|all|all"),
        6,
        10,
        Some((31.3, 83.2)),
    );
    check(
        &format!("REACH-02|{WE1}|all|all"),
        5,
        10,
        Some((23.7, 76.3)),
    );
    check(
        &format!("REACH-03|{WE1}|all|all"),
        3,
        10,
        Some((10.8, 60.3)),
    );
    check(
        &format!("REACH-03R|{WE1}|all|all"),
        3,
        6,
        Some((18.8, 81.2)),
    );
    check(
        &format!("REACH-01|{WE1}|deprivation|most_deprived_30"),
        2,
        5,
        Some((11.8, 76.9)),
    );
    check(
        &format!("REACH-01|{WE1}|deprivation|other"),
        4,
        5,
        Some((37.6, 96.4)),
    );
    check(
        &format!("REACH-03|{WE1}|deprivation|most_deprived_30"),
        0,
        5,
        Some((0.0, 43.4)),
    );
    check(&format!("REACH-05|{WE1}|all|all"), 4, 5, Some((37.6, 96.4)));
    // The financial year 2024-25 is the same window.
    check("REACH-03|fy|2025-03-31|reach_area|R1|all|all", 3, 10, None);
    // Registration only for quarters.
    check(
        "REACH-01|quarter|2025-03-31|reach_area|R1|all|all",
        6,
        10,
        None,
    );
    assert!(!world().contains_key("REACH-02|quarter|2025-03-31|reach_area|R1|all|all"));
    // REACH-06: of the 5 children seen at R1, all live in its reach area.
    check(
        "REACH-06|rolling12|2025-03-31|centre|R1|all|all",
        5,
        5,
        None,
    );
}

#[test]
fn we2_asq3_domains_and_all_five() {
    let k = |m: &str| format!("{m}|quarter|2024-09-30|reach_area|R3|all|all");
    check(&k("SR-01"), 4, 5, Some((37.6, 96.4)));
    check(&k("SR-02"), 5, 6, Some((43.6, 97.0)));
    check(&k("SR-03"), 5, 6, None);
    check(&k("SR-04"), 5, 6, None);
    check(&k("SR-05"), 5, 6, None);
    check(&k("SR-06"), 2, 5, Some((11.8, 76.9)));
    // None of them engaged with a centre: the gap has no engaged group.
    check(
        "SR-06|quarter|2024-09-30|reach_area|R3|engagement|not_registered_or_unlinked",
        2,
        5,
        None,
    );
}

#[test]
fn we3_eyfsp_good_level_of_development() {
    let k = |m: &str| format!("{m}|academic_year|2024-08-31|reach_area|R3|all|all");
    check(&k("SR-10"), 4, 7, Some((25.0, 84.2)));
    check(&k("SR-11"), 2, 3, Some((20.8, 93.9)));
    check(&k("SR-14"), 2, 7, Some((8.2, 64.1)));
    // SR-13: 108 ELGs at expected over 7 pupils = 15.4 (s = 1.718, 14.2 – 16.7).
    check(&k("SR-13"), 108, 7, Some((14.2, 16.7)));
    assert_eq!(r1(world()[&k("SR-13")].2), 15.4);
    // No pupil links to a child with centre engagement: SR-15's engaged group is empty and
    // every pupil is in the comparison, as SR-10 by engagement shows.
    check(&k("SR-15"), 0, 0, None);
    check(
        "SR-10|academic_year|2024-08-31|reach_area|R3|engagement|not_registered_or_unlinked",
        4,
        7,
        None,
    );
    // Not-FSM 2/4 against FSM 2/3: −16.7 points (FSM pupils did better here).
    check(&k("SR-12"), 2, 4, None);
    assert_eq!(r1(world()[&k("SR-12")].2), -16.7);
    check(
        "SR-10|academic_year|2024-08-31|reach_area|R3|fsm|not_fsm",
        2,
        4,
        Some((15.0, 85.0)),
    );
    // P8 (a blank ELG) is in no denominator.
    check(
        "SR-10|academic_year|2024-08-31|deployment|ALL|fsm|fsm",
        2,
        3,
        None,
    );
}

#[test]
fn we5_social_care_rates_and_re_referrals() {
    // Population 0–4 of the fixture county: five LSOAs of five children = 25; LSOA Z: 5.
    let k = |m: &str| format!("{m}|fy|2025-03-31|deployment|ALL|all|all");
    check(&k("SC-01"), 3, 25, None);
    assert_eq!(r1(world()[&k("SC-01")].2), 1200.0);
    check(&k("SC-01U"), 1, -1, None);
    check(&k("SC-02"), 1, 3, Some((6.1, 79.2)));
    check(&k("SC-03"), 1, 25, None);
    check(&k("SC-03S"), 2, 25, None);
    check(&k("SC-04"), 1, 25, None);
    check(&k("SC-07"), 2, 25, None);
    // Only R1 has a residence (the side file): its reach area, over LSOA Z's population.
    check("SC-01|fy|2025-03-31|reach_area|R3|all|all", 1, 5, None);
    check("SC-02|fy|2025-03-31|la|UNKNOWN|all|all", 0, 2, None);
    // By deprivation: R1 lives in Z (decile 5, `other`), and the population of the `other`
    // band is X, Z and V (15); R2 and R3 have no residence, so no rate by band.
    check(
        "SC-01|fy|2025-03-31|deployment|ALL|deprivation|other",
        1,
        15,
        None,
    );
    assert!(!world().contains_key("SC-01|fy|2025-03-31|deployment|ALL|deprivation|no_residence"));
    check(
        "SC-02|fy|2025-03-31|deployment|ALL|deprivation|no_residence",
        0,
        2,
        None,
    );
    // By sex (SC-02 only: there is no population by sex): every census child is female.
    check("SC-02|fy|2025-03-31|deployment|ALL|sex|female", 1, 3, None);
    assert!(!world().contains_key("SC-01|fy|2025-03-31|deployment|ALL|sex|female"));
}

#[test]
fn we5_escalation_after_early_help() {
    let k = |m: &str| format!("{m}|fy|2024-03-31|deployment|ALL|all|all");
    check(&k("SC-06"), 2, 4, None);
    check(&k("SC-06a"), 1, 4, None);
    check(&k("SC-06b"), 1, 3, None);
    // The episodes open in 2023-24 (R5–R8), and in 2024-25 R9.
    check(&k("SC-05"), 4, 25, None);
    check("SC-05|fy|2025-03-31|deployment|ALL|all|all", 1, 25, None);
}

#[test]
fn we7_overlap_with_other_services() {
    // The six families used targeted activity at R4 and live in R2 (LSOA W); nobody else in
    // the world used a targeted activity, so the deployment counts the same families.
    for place in ["centre|R4", "reach_area|R2", "deployment|ALL"] {
        for period in ["fy|2025-03-31", "rolling12|2025-03-31"] {
            let k = |m: &str, b: &str| format!("{m}|{period}|{place}|{b}");
            check(&k("OV-01a", "all|all"), 2, 6, None);
            check(&k("OV-01b", "all|all"), 2, 6, None);
            check(&k("OV-01c", "all|all"), 1, 6, None);
            check(&k("OV-01", "all|all"), 4, 6, Some((30.0, 90.3)));
            assert_eq!(r1(world()[&k("OV-01", "all|all")].2), 66.7);
            check(&k("OV-02", "services|1"), 2, 6, None);
            check(&k("OV-02", "services|2"), 3, 6, None);
            check(&k("OV-02", "services|3"), 1, 6, None);
            check(&k("OV-02", "services|4"), 0, 6, None);
            check(&k("OV-02", "all|all"), 6, 6, None);
        }
    }
    // LSOA W has no IoD2019 decile: the families are in band `unknown`.
    check(
        "OV-01|fy|2025-03-31|centre|R4|deprivation|unknown",
        4,
        6,
        None,
    );
    // Nobody used a targeted activity in 2023-24: no cohort, so no row (not a 0 of 0).
    assert!(!world().contains_key("OV-01|fy|2024-03-31|centre|R4|all|all"));
}

#[test]
fn we7_health_visiting_support_without_service_levels() {
    // OV-01c when the extract carries no service levels: three or more OTHER contacts in the
    // window. The shipped model runs on the world's lake with hv_contacts swapped for a copy
    // without levels in which W5's one OTHER contact becomes three; W4 keeps its one.
    let model =
        std::fs::read_to_string(crate::support::project().join("sql/metrics/overlap.sql")).unwrap();
    let contacts = "(select key_nhs, contact_type, contact_date, \
         cast(null as varchar) as service_level, _source from hv_contacts \
         union all select key_nhs, contact_type, contact_date + n, cast(null as varchar), _source \
         from hv_contacts cross join (values (1), (2)) as extra(n) \
         where contact_type = 'OTHER' and service_level = 'universal')";
    assert_eq!(
        model.matches("from hv_contacts").count(),
        2,
        "the model's two reads"
    );
    let sql = format!(
        "select metric_id, numerator, denominator from ({}) as ov \
         where period_type = 'fy' and period_end = date '2025-03-31' \
         and geography_type = 'centre' and geography_code = 'R4' \
         and breakdown_type = 'all' and metric_id in ('OV-01c', 'OV-01') order by metric_id",
        model.replace("from hv_contacts", &format!("from {contacts}"))
    );
    // FW5 replaces FW4 in OV-01c; OV-01 stays 4 of 6 (FW1, FW2, FW3, FW5).
    assert_eq!(
        crate::support::rows_text(&query_world(&sql)),
        ["OV-01|4|6", "OV-01c|1|6"]
    );
}

#[test]
fn we4_new_birth_visits_by_cohort_age() {
    let k = |m: &str| format!("{m}|quarter|2024-09-30|reach_area|R3|all|all");
    check(&k("HV-02"), 2, 4, Some((15.0, 85.0)));
    check(&k("HV-03"), 1, 4, Some((4.6, 69.9)));
    // K2 reached 30 days in Q1, K6 in Q3.
    check("HV-02|quarter|2024-06-30|reach_area|R3|all|all", 1, 1, None);
}

#[test]
fn edge_cases_of_the_readings() {
    // G2 turned five on 2025-01-15: in the quarter ending 2024-12-31, not in 2025-03-31.
    check(
        "REACH-01|quarter|2024-12-31|reach_area|R2|all|all",
        3,
        3,
        None,
    );
    check(
        "REACH-01|quarter|2025-03-31|reach_area|R2|all|all",
        2,
        2,
        None,
    );
    // G3's parent attended on three days: G3 is sustained; G1 was seen once.
    check(
        "REACH-03|rolling12|2025-03-31|reach_area|R2|all|all",
        1,
        2,
        None,
    );
    check(
        "REACH-02|rolling12|2025-03-31|reach_area|R2|all|all",
        2,
        2,
        None,
    );
    // LSOA W has no IoD decile: its children are in band `unknown`, never dropped.
    check(
        "REACH-01|rolling12|2025-03-31|reach_area|R2|deprivation|unknown",
        2,
        2,
        None,
    );
    // The lone-parent flag of G3's parent puts G3 (and only G3) in LONE_PARENT.
    check(
        "REACH-04|rolling12|2025-03-31|reach_area|R2|target_group|LONE_PARENT",
        1,
        1,
        None,
    );
    // R4's reach area has no children: no reach rows for it, and nothing fails.
    assert!(!world().keys().any(|k| k.contains("|reach_area|R4|")));
    // The deployment total at 2025-03-31: 24 children under five (G2 is five), 8 of them
    // registered (C01–C06, G1, G3).
    check(
        "REACH-01|rolling12|2025-03-31|deployment|ALL|all|all",
        8,
        24,
        None,
    );
}

#[test]
fn models_without_statistics_plan_on_plain_datafusion() {
    // The shipped SQL must run unchanged on plain DataFusion where it uses no custom function:
    // every model but the mart plans in a session with only `recompute_from()` (a constant)
    // and an empty `last_build` registered.
    let path = world_lake();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let lake = Lake::open(&path.to_string_lossy()).unwrap();
        let plain = datafusion::prelude::SessionContext::new();
        plain.register_udf(earlystart::metrics::incremental::recompute_from_udf(
            earlystart::metrics::incremental::FULL_FROM,
        ));
        for area in earlystart::metrics::session::AREAS {
            for t in earlystart::metrics::session::list_tables(&lake, area)
                .await
                .unwrap()
            {
                let _ = lake.register(&plain, area, &t, &t).await.unwrap();
            }
        }
        // The fixture world sends no finance or centre groups: those are empty tables, as
        // the lake session registers them.
        for kind in earlystart::sources::ExtractKind::OPTIONAL {
            if !plain.table_exist(kind.name()).unwrap() {
                let empty =
                    datafusion::datasource::MemTable::try_new(kind.schema(), vec![vec![]]).unwrap();
                plain
                    .register_table(kind.name(), std::sync::Arc::new(empty))
                    .unwrap();
            }
        }
        // Nothing was ever rejected in the world: the quarantine is empty, as the lake session
        // registers it.
        if !plain.table_exist("quarantine").unwrap() {
            let empty = datafusion::datasource::MemTable::try_new(
                earlystart::pipeline::records::issue_schema(),
                vec![vec![]],
            )
            .unwrap();
            plain
                .register_table("quarantine", std::sync::Arc::new(empty))
                .unwrap();
        }
        let project =
            earlystart::metrics::project::Project::load(&project().join("sql"), &plain).unwrap();
        for m in &project.models {
            // A model that reads its last build reads it empty, as in a full build.
            let _ = plain.deregister_table("last_build").unwrap();
            if let Some(schema) = m.doc.last_build_schema().unwrap() {
                let empty =
                    datafusion::datasource::MemTable::try_new(schema, vec![vec![]]).unwrap();
                plain
                    .register_table("last_build", std::sync::Arc::new(empty))
                    .unwrap();
            }
            let planned = plain.sql(&m.sql).await;
            if m.name == "metric_values" {
                let err = planned.expect_err("the mart uses the statistics UDFs");
                assert!(err.to_string().contains("wilson"), "{err}");
            } else {
                planned.unwrap_or_else(|e| panic!("{} needs more than DataFusion: {e}", m.name));
            }
        }
    });
}

#[test]
fn areas_are_compared_with_the_deployment_value() {
    // Deployment REACH-01 at 2025-03-31 is 8/24 = 33.3%. R1 (6/10, 31.3 – 83.2) is similar;
    // R3 (none of its 12 children registered, 0.0 – 24.2) is significantly lower.
    assert_eq!(world()[&format!("REACH-01|{WE1}|all|all")].5, "similar");
    let r3 = &world()["REACH-01|rolling12|2025-03-31|reach_area|R3|all|all"];
    assert_eq!((r3.0, r3.1, r3.5.as_str()), (0, 12, "significantly_lower"));
    assert_eq!((r1(r3.3.unwrap()), r1(r3.4.unwrap())), (0.0, 24.2));
    // The deployment itself has no comparator.
    assert_eq!(
        world()["REACH-01|rolling12|2025-03-31|deployment|ALL|all|all"].5,
        "not_compared"
    );
}

#[test]
fn the_deployment_is_compared_with_the_published_england_value() {
    // HV-02 in 2024-25: K1, K2, K3 and K6 visited by day 14 of six in the cohort: 4/6 =
    // 66.7% (30.0 – 90.3) against England's 85.2%: similar.
    let key = "HV-02|fy|2025-03-31|deployment|ALL|all|all";
    check(key, 4, 6, Some((30.0, 90.3)));
    assert_eq!(world()[key].5, "similar");
    let text = query_world_text(
        "select comparator_type, comparator_value from metric_values \
         where metric_id = 'HV-02' and period_type = 'fy' and geography_type = 'deployment' \
         and breakdown_type = 'all'",
    );
    assert!(
        text.contains("| england         | 85.2             |"),
        "{text}"
    );
}

#[test]
fn sustained_engagement_in_any_twelve_month_window() {
    // Third contact day of C01 (2024-06-10), C02 (2024-07-01), C03 (2024-07-02: its four
    // rows are on three dates); C06's
    // 2024-02-20, 2024-10-01 and 2024-11-01 fall in one 12-month window (2024-11-01), though
    // not in the reporting year's; G3 through its parent's days (2025-01-05).
    let text = query_world_text(
        "select string_agg(cast(first_sustained_date as varchar), ',' \
         order by first_sustained_date) from stg_child_engagement",
    );
    assert!(
        text.contains("2024-06-10,2024-07-01,2024-07-02,2024-11-01,2025-01-05"),
        "{text}"
    );
}
