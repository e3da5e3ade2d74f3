//! Synthetic social care and education extracts for the same children as the centre and
//! health extracts: a CIN census (XML), SSDA903 header and episodes, the
//! `sc_person_identifiers` side file, an EYFSP results file and early help episodes, plus
//! `identities.csv`,
//! the ground truth of which record is which child, against which linkage precision and
//! recall are measured ([`crate::identity::quality`]).
//!
//! A separate random stream (seed + 1) keeps the centre and health files identical to
//! what they were before these sources existed.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use chrono::{Datelike, Days, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{AS_AT, Child, date_between};

/// The census year of the synthetic CIN file (1 April 2024 – 31 March 2025).
const REFERENCE_DATE: NaiveDate = AS_AT;

/// A valid UPN for child `i` (check letter computed as in extracts.md §9).
pub fn upn(i: usize) -> String {
    const ALPHABET: &[u8; 23] = b"ABCDEFGHJKLMNPQRTUVWXYZ";
    let digits = format!("{:012}", 800_000_000_000u64 + i as u64);
    let sum: u32 = digits
        .bytes()
        .zip(2u32..)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    format!("{}{digits}", ALPHABET[(sum % 23) as usize] as char)
}

/// The LA child id of child `i` in social care systems.
fn la_id(i: usize) -> String {
    format!("LA{i:07}")
}

/// Whether child `i` is of school age in 2023/24 (Reception or older) and so has a UPN.
fn at_school(c: &Child) -> bool {
    c.dob <= NaiveDate::from_ymd_opt(2019, 8, 31).expect("date")
}

/// The Reception cohort of 2023/24, whose EYFS Profile results are in the EYFSP file.
fn reception_2023(c: &Child) -> bool {
    at_school(c) && c.dob >= NaiveDate::from_ymd_opt(2018, 9, 1).expect("date")
}

/// The child's postcode, or with probability `p` another family's (the family moved), so
/// demographic keys sometimes disagree between sources as they do in real data.
fn moved(rng: &mut ChaCha8Rng, children: &[Child], c: &Child, p: f64) -> String {
    if rng.random_bool(p) {
        children[rng.random_range(0..children.len())]
            .postcode
            .clone()
    } else {
        c.postcode.clone()
    }
}

/// Writes the social care and education files into `out`; returns `(file, records)`.
pub(super) fn write(
    out: &Path,
    children: &[Child],
    deprived: &dyn Fn(&Child) -> bool,
    seed: u64,
) -> Result<Vec<(String, u64)>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1));
    let mut counts = Vec::new();
    let mut ids = csv::Writer::from_path(out.join("identities.csv"))?;
    ids.write_record(["kind", "record_id", "child"])?;
    for (i, c) in children.iter().enumerate() {
        ids.write_record(["registrations", &format!("P{i:07}"), &i.to_string()])?;
        for kind in ["chis", "hv_contacts", "asq3"] {
            ids.write_record([kind, &c.nhs, &i.to_string()])?;
        }
    }

    // Children known to social care: more often from deprived areas.
    let known: Vec<usize> = (0..children.len())
        .filter(|&i| rng.random_bool(if deprived(&children[i]) { 0.06 } else { 0.02 }))
        .collect();
    let mut xml = String::new();
    let _ = write!(
        xml,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Message>\n  <Header>\n    <CollectionDetails>\n      <Collection>CIN</Collection>\n      <Year>{}</Year>\n      <ReferenceDate>{REFERENCE_DATE}</ReferenceDate>\n    </CollectionDetails>\n    <Source>\n      <SourceLevel>L</SourceLevel>\n      <LEA>999</LEA>\n      <SoftwareCode>earlystart generate</SoftwareCode>\n      <Release>1</Release>\n      <SerialNo>1</SerialNo>\n      <DateTime>{REFERENCE_DATE}T23:00:00</DateTime>\n    </Source>\n  </Header>\n  <Children>\n",
        REFERENCE_DATE.year() - 1
    );
    let year_start = NaiveDate::from_ymd_opt(2024, 4, 1).expect("date");
    let mut side = csv::Writer::from_path(out.join("sc_person_identifiers.csv"))?;
    side.write_record([
        "la_child_id",
        "nhs_number",
        "upn",
        "given_name",
        "family_name",
        "date_of_birth",
        "postcode",
    ])?;
    std::fs::create_dir_all(out.join("ssda903"))?;
    let mut header = csv::Writer::from_path(out.join("ssda903/header.csv"))?;
    header.write_record(["CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB"])?;
    let mut episodes = csv::Writer::from_path(out.join("ssda903/episodes.csv"))?;
    episodes.write_record([
        "CHILD",
        "DECOM",
        "RNE",
        "LS",
        "CIN",
        "PLACE",
        "PLACE_PROVIDER",
        "DEC",
        "REC",
        "REASON_PLACE_CHANGE",
        "HOME_POST",
        "PL_POST",
        "URN",
    ])?;
    let (mut looked_after, mut cin_children) = (0u64, 0u64);
    for &i in &known {
        let c = &children[i];
        let id = la_id(i);
        let upn = at_school(c).then(|| upn(i));
        for kind in ["cin_census", "sc_person_identifiers"] {
            ids.write_record([kind, id.as_str(), &i.to_string()])?;
        }
        // The side file: NHS number for most, names, DOB and postcode for all; one family in
        // twenty has moved since the health and centre records were made, so its postcode
        // (and demographic key) differs from theirs.
        let postcode = moved(&mut rng, children, c, 0.05);
        side.write_record([
            id.as_str(),
            if rng.random_bool(0.9) {
                c.nhs.as_str()
            } else {
                ""
            },
            upn.as_deref().unwrap_or(""),
            c.given,
            c.surname,
            &c.dob.to_string(),
            &postcode,
        ])?;
        let referral = date_between(
            &mut rng,
            year_start.max(c.dob),
            REFERENCE_DATE - Days::new(20),
        );
        cin_children += 1;
        let _ = write!(
            xml,
            "    <Child>\n      <ChildIdentifiers>\n        <LAchildID>{id}</LAchildID>\n{}        <PersonBirthDate>{}</PersonBirthDate>\n        <Sex>{}</Sex>\n      </ChildIdentifiers>\n      <ChildCharacteristics>\n        <Ethnicity>{}</Ethnicity>\n      </ChildCharacteristics>\n      <CINdetails>\n        <CINreferralDate>{referral}</CINreferralDate>\n        <ReferralSource>{}</ReferralSource>\n        <PrimaryNeedCode>{}</PrimaryNeedCode>\n",
            upn.as_ref().map_or_else(
                || "        <UPNunknown>UN1</UPNunknown>\n".to_string(),
                |u| format!("        <UPN>{u}</UPN>\n")
            ),
            c.dob,
            if c.sex == "male" { "M" } else { "F" },
            c.ethnicity,
            ["3B", "5D", "8", "2A", "6", "1A"][rng.random_range(0..6)],
            ["N1", "N4", "N5", "N3", "N2"][rng.random_range(0..5)],
        );
        if rng.random_bool(0.5) {
            let closed = date_between(&mut rng, referral + Days::new(5), REFERENCE_DATE);
            let _ = write!(
                xml,
                "        <CINclosureDate>{closed}</CINclosureDate>\n        <ReasonForClosure>{}</ReasonForClosure>\n",
                ["RC8", "RC7", "RC9"][rng.random_range(0..3)]
            );
        }
        let _ = write!(
            xml,
            "        <ReferralNFA>false</ReferralNFA>\n        <Assessments>\n          <AssessmentActualStartDate>{}</AssessmentActualStartDate>\n          <AssessmentAuthorisationDate>{}</AssessmentAuthorisationDate>\n          <FactorsIdentifiedAtAssessment>\n            <AssessmentFactors>{}</AssessmentFactors>\n          </FactorsIdentifiedAtAssessment>\n        </Assessments>\n",
            referral + Days::new(1),
            referral + Days::new(15),
            ["3B", "4B", "16A", "1B", "21"][rng.random_range(0..5)]
        );
        if rng.random_bool(0.15) {
            let start = referral + Days::new(10);
            let _ = write!(
                xml,
                "        <Section47>\n          <S47ActualStartDate>{}</S47ActualStartDate>\n        </Section47>\n        <ChildProtectionPlans>\n          <CPPstartDate>{start}</CPPstartDate>\n          <InitialCategoryOfAbuse>NEG</InitialCategoryOfAbuse>\n          <LatestCategoryOfAbuse>NEG</LatestCategoryOfAbuse>\n          <NumberOfPreviousCPP>0</NumberOfPreviousCPP>\n        </ChildProtectionPlans>\n",
                referral + Days::new(2)
            );
        }
        xml.push_str("      </CINdetails>\n    </Child>\n");
        // About one in five becomes looked after.
        if rng.random_bool(0.2) {
            looked_after += 1;
            ids.write_record(["ssda903", id.as_str(), &i.to_string()])?;
            let dmy = |d: NaiveDate| d.format("%d/%m/%Y").to_string();
            header.write_record([
                id.as_str(),
                if c.sex == "male" { "1" } else { "2" },
                &dmy(c.dob),
                c.ethnicity,
                upn.as_deref().unwrap_or(""),
                "",
                "",
            ])?;
            let outward = c.postcode.split(' ').next().unwrap_or_default();
            episodes.write_record([
                id.as_str(),
                &dmy((referral + Days::new(30)).min(REFERENCE_DATE)),
                "S",
                "C2",
                "N1",
                "U1",
                "PR1",
                "",
                "",
                "",
                outward,
                outward,
                "",
            ])?;
        }
    }
    xml.push_str("  </Children>\n</Message>\n");
    std::fs::write(out.join("cin_census.xml"), xml)?;
    counts.push(("cin_census.xml".into(), cin_children));
    counts.push(("sc_person_identifiers.csv".into(), known.len() as u64));
    counts.push(("ssda903/header.csv".into(), looked_after));
    counts.push(("ssda903/episodes.csv".into(), looked_after));

    // EYFS Profile 2023/24: the Reception cohort, each with a valid UPN.
    let mut ey = csv::Writer::from_path(out.join("eyfsp_2023-24.csv"))?;
    let mut head = vec![
        "upn",
        "given_name",
        "family_name",
        "date_of_birth",
        "postcode",
        "fsm_eligible",
        "academic_year",
    ];
    head.extend(crate::sources::eyfsp::ELGS);
    ey.write_record(&head)?;
    let mut pupils = 0u64;
    for (i, c) in children
        .iter()
        .enumerate()
        .filter(|(_, c)| reception_2023(c))
    {
        if !rng.random_bool(0.95) {
            continue;
        }
        pupils += 1;
        let u = upn(i);
        ids.write_record(["eyfsp", u.as_str(), &i.to_string()])?;
        let strong = if deprived(c) { 0.78 } else { 0.9 };
        let postcode = moved(&mut rng, children, c, 0.05);
        let mut row = vec![
            u,
            c.given.to_string(),
            c.surname.to_string(),
            c.dob.to_string(),
            postcode,
            (deprived(c) && rng.random_bool(0.35)).to_string(),
            "2023/24".to_string(),
        ];
        for _ in crate::sources::eyfsp::ELGS {
            row.push(if rng.random_bool(0.005) {
                String::new()
            } else if rng.random_bool(strong) {
                "expected".into()
            } else {
                "emerging".into()
            });
        }
        ey.write_record(&row)?;
    }
    counts.push(("eyfsp_2023-24.csv".into(), pupils));

    // Early help: episodes for about one child in twelve (more in deprived areas), known by
    // the LA child id the council's case-management system shares with social care; some
    // close with a step up to social care.
    let mut eh = csv::Writer::from_path(out.join("early_help_episodes.csv"))?;
    eh.write_record([
        "child_id",
        "sex",
        "ethnicity",
        "date_of_birth",
        "episode_start_date",
        "organisation",
        "episode_end_date",
        "closure_reason",
        "lead_agency",
        "postcode",
        "nhs_number",
        "given_name",
        "family_name",
    ])?;
    let mut episodes_written = 0u64;
    let from = NaiveDate::from_ymd_opt(2023, 4, 1).expect("date");
    for (i, c) in children.iter().enumerate() {
        if !rng.random_bool(if deprived(c) { 0.12 } else { 0.05 }) {
            continue;
        }
        let start = date_between(&mut rng, from.max(c.dob), REFERENCE_DATE - Days::new(30));
        let (end, reason) = if rng.random_bool(0.6) {
            let end = date_between(&mut rng, start + Days::new(14), REFERENCE_DATE);
            let reason = [
                "OUTCOMES_MET",
                "OUTCOMES_MET",
                "STEP_UP_SC",
                "DISENGAGED",
                "MOVED_AWAY",
            ][rng.random_range(0..5)];
            (end.to_string(), reason)
        } else {
            (String::new(), "")
        };
        episodes_written += 1;
        let id = la_id(i);
        ids.write_record(["early_help_episodes", id.as_str(), &i.to_string()])?;
        eh.write_record([
            id.as_str(),
            c.sex,
            c.ethnicity,
            &c.dob.to_string(),
            &start.to_string(),
            ["Family hub North", "Family hub South", "School"][rng.random_range(0..3)],
            &end,
            reason,
            ["LA_EARLY_HELP", "CHILDRENS_CENTRE"][rng.random_range(0..2)],
            &c.postcode,
            if rng.random_bool(0.5) {
                c.nhs.as_str()
            } else {
                ""
            },
            c.given,
            c.surname,
        ])?;
    }
    eh.flush()?;
    counts.push(("early_help_episodes.csv".into(), episodes_written));
    for w in [&mut side, &mut header, &mut episodes, &mut ey, &mut ids] {
        w.flush()?;
    }
    Ok(counts)
}
