//! The linkage step of a run: every child record of the curated tables (centre
//! registrations, the health extracts, social care and education) read batch by batch
//! into compact records, linked (`identity::linkage`), and written to `person_link`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context as _, Result};
use arrow::array::{Array, StringArray};
use datafusion::execution::SendableRecordBatchStream;
use futures::TryStreamExt as _;
use tracing::info;

use super::{col_str, sources};
use crate::config::Pipeline;
use crate::identity::Pseudonymiser;
use crate::identity::linkage::{self, LinkRecord, Strings, Sym};
use crate::lake::{CURATED, Lake, WriteMode};
use crate::sources::{ExtractKind, TableBuilder};

/// Rows per `person_link` batch.
const BATCH_ROWS: usize = 128 * 1024;

/// Ground truth of which record is which child, from the generator's `identities.csv`
/// (`kind,record_id,child`), keyed as `person_link` keys records: `(source, key)`. `None`
/// for real extracts, which never carry it.
fn identity_truth(
    extracts: &Path,
    pipeline: &Pipeline,
    p: &Pseudonymiser,
    strings: &mut Strings,
) -> Result<Option<HashMap<(Sym, Sym), Sym>>> {
    let path = extracts.join("identities.csv");
    if !path.is_file() {
        return Ok(None);
    }
    let mut truth = HashMap::new();
    let mut r =
        csv::Reader::from_path(&path).with_context(|| format!("cannot read {}", path.display()))?;
    for rec in r.records() {
        let rec = rec.with_context(|| format!("{} is malformed", path.display()))?;
        let (kind, id, child) = (&rec[0], &rec[1], &rec[2]);
        for source in pipeline.sources.iter().filter(|s| s.kind.name() == kind) {
            let key = match source.kind {
                ExtractKind::Registrations => p.local(&source.mapping.namespace, id),
                ExtractKind::Chis | ExtractKind::HvContacts | ExtractKind::Asq3 => {
                    match crate::identity::checks::nhs_number(id) {
                        Some(n) => p.nhs(&n),
                        None => continue,
                    }
                }
                ExtractKind::Eyfsp => p.upn(id),
                _ => p.local(sources::cin::LA_CHILD_NAMESPACE, id),
            };
            truth.insert(
                (
                    strings.get_or_intern(&source.name),
                    strings.get_or_intern(key),
                ),
                strings.get_or_intern(child),
            );
        }
    }
    Ok(Some(truth))
}

/// The value of row `i`, interned, or None when null.
fn sym(strings: &mut Strings, a: &StringArray, i: usize) -> Option<Sym> {
    a.is_valid(i).then(|| strings.get_or_intern(a.value(i)))
}

/// Links every child record of the lake and commits `person_link` (its transaction is
/// `app_id`, the versions of its inputs). Records are held as interned symbols and each
/// table is streamed, so memory grows with the number of distinct keys, not with rows.
pub(super) async fn link_children(
    lake: &Lake,
    extracts: &Path,
    pipeline: &Pipeline,
    p: &Pseudonymiser,
    app_id: &str,
    options: linkage::LinkOptions,
) -> Result<linkage::LinkStats> {
    let mut strings = linkage::strings();
    let truth = identity_truth(extracts, pipeline, p, &mut strings)?;
    // key_demo_name is read only when its rule is on, and is absent from tables written
    // before it existed (those records simply carry none until their file is ingested again).
    let read = |name: &'static str, mut columns: Vec<&'static str>| async move {
        if !options.demo_name {
            columns.retain(|c| *c != "key_demo_name");
        }
        let Some(stream) = lake.stream_present_columns(CURATED, name, &columns).await? else {
            return anyhow::Ok(None);
        };
        // Only key_demo_name may be missing; anything else is a lake from another version.
        let schema = stream.schema();
        if let Some(c) = columns
            .iter()
            .find(|c| **c != "key_demo_name" && schema.field_with_name(c).is_err())
        {
            anyhow::bail!(
                "curated/{name} has no column {c}: the lake was written by another version of \
                 earlystart; run it with the version that wrote it, or ingest into a new lake"
            );
        }
        anyhow::Ok(Some(stream))
    };
    let demo_name_of = |b: &arrow::array::RecordBatch| {
        b.column_by_name("key_demo_name")
            .map(|_| col_str(b, "key_demo_name"))
    };
    let mut records: Vec<LinkRecord> = Vec::new();
    let mut stream: Option<SendableRecordBatchStream> = read(
        "registrations",
        vec![
            "role",
            "person_key",
            "key_nhs",
            "key_demo",
            "key_demo_name",
            "_source",
        ],
    )
    .await?;
    while let Some(b) = next(&mut stream).await? {
        let (role, person, nhs, demo, src) = (
            col_str(&b, "role"),
            col_str(&b, "person_key"),
            col_str(&b, "key_nhs"),
            col_str(&b, "key_demo"),
            col_str(&b, "_source"),
        );
        let demo_name = demo_name_of(&b);
        for i in (0..b.num_rows()).filter(|i| role.value(*i) == "child") {
            let mut r = LinkRecord::new(
                strings.get_or_intern(src.value(i)),
                strings.get_or_intern(person.value(i)),
            );
            r.nhs = sym(&mut strings, &nhs, i);
            r.demo = sym(&mut strings, &demo, i);
            r.demo_name = demo_name.as_ref().and_then(|d| sym(&mut strings, d, i));
            records.push(r);
        }
    }
    let registered = records.len();
    // Health records are keyed by NHS number: one node per (source, NHS key), so a child
    // re-registered in CHIS or with many contacts is one person. CHIS also carries a
    // demographic key; its local ids are in no namespace shared with another source.
    let mut seen: foldhash::HashSet<(Sym, Sym)> = Default::default();
    let mut chis_end = registered;
    for (table, demo_column) in [
        ("chis", Some("key_demo")),
        ("hv_contacts", None),
        ("asq3", None),
    ] {
        let columns = [Some("key_nhs"), Some("_source"), demo_column]
            .into_iter()
            .flatten()
            .chain(demo_column.map(|_| "key_demo_name"))
            .collect();
        let mut stream = read(table, columns).await?;
        while let Some(b) = next(&mut stream).await? {
            let (nhs, src) = (col_str(&b, "key_nhs"), col_str(&b, "_source"));
            let demo = demo_column.map(|c| col_str(&b, c));
            let demo_name = demo_name_of(&b);
            for i in 0..b.num_rows() {
                let (source, key) = (
                    strings.get_or_intern(src.value(i)),
                    strings.get_or_intern(nhs.value(i)),
                );
                if seen.insert((source, key)) {
                    let mut r = LinkRecord::new(source, key);
                    r.nhs = sym(&mut strings, &nhs, i);
                    r.demo = demo.as_ref().and_then(|d| sym(&mut strings, d, i));
                    r.demo_name = demo_name.as_ref().and_then(|d| sym(&mut strings, d, i));
                    records.push(r);
                }
            }
        }
        if table == "chis" {
            chis_end = records.len();
        }
    }
    // Social care and education: one node per (source, own key). Children in CIN, 903 and
    // the side file share the `la_child_id` namespace (LA_ID edges); pupils link by UPN.
    let social_start = records.len();
    let mut eyfsp_sources: HashSet<Sym> = HashSet::new();
    for (table, own, has_local, has_nhs, has_demo) in [
        ("sc_person_identifiers", "la_child_key", true, true, true),
        ("cin_child", "la_child_key", true, false, false),
        ("ssda903_header", "la_child_key", true, false, false),
        ("eyfsp", "key_upn", false, false, true),
        ("early_help_episodes", "child_key", true, true, true),
    ] {
        let mut columns = vec![own, "key_upn", "_source"];
        columns.extend(has_nhs.then_some("key_nhs"));
        columns.extend(has_demo.then_some("key_demo"));
        columns.extend(has_demo.then_some("key_demo_name"));
        columns.dedup();
        let mut stream = read(table, columns).await?;
        while let Some(b) = next(&mut stream).await? {
            let (own_col, src, upn) = (
                col_str(&b, own),
                col_str(&b, "_source"),
                col_str(&b, "key_upn"),
            );
            let nhs = has_nhs.then(|| col_str(&b, "key_nhs"));
            let demo = has_demo.then(|| col_str(&b, "key_demo"));
            let demo_name = demo_name_of(&b);
            for i in 0..b.num_rows() {
                let Some(key) = sym(&mut strings, &own_col, i) else {
                    continue;
                };
                let source = strings.get_or_intern(src.value(i));
                if seen.insert((source, key)) {
                    if table == "eyfsp" {
                        eyfsp_sources.insert(source);
                    }
                    let mut r = LinkRecord::new(source, key);
                    r.local = has_local.then_some(key);
                    r.nhs = nhs.as_ref().and_then(|a| sym(&mut strings, a, i));
                    r.upn = sym(&mut strings, &upn, i);
                    r.demo = demo.as_ref().and_then(|a| sym(&mut strings, a, i));
                    r.demo_name = demo_name.as_ref().and_then(|a| sym(&mut strings, a, i));
                    records.push(r);
                }
            }
        }
    }
    drop(seen);
    let sources_of = |range: std::ops::Range<usize>| -> HashSet<Sym> {
        records[range].iter().map(|r| r.source).collect()
    };
    let social_sources: HashSet<Sym> = sources_of(social_start..records.len())
        .into_iter()
        .filter(|s| !eyfsp_sources.contains(s))
        .collect();
    // The sources of centre registrations and of the child health register, for the
    // "registered children linked to CHIS" quality figure.
    let registration_sources = sources_of(0..registered);
    let chis_sources = sources_of(registered..chis_end);

    let (records, strings, linkage, mut stats) = tokio::task::spawn_blocking({
        let p = p.clone();
        move || {
            let (linkage, stats) = linkage::link(&records, &strings, &p, options);
            (records, strings, linkage, stats)
        }
    })
    .await?;
    let children_in = |sources: &HashSet<Sym>| -> HashSet<u32> {
        records
            .iter()
            .zip(&linkage.child_of)
            .filter(|(r, _)| sources.contains(&r.source))
            .map(|(_, c)| *c)
            .collect()
    };
    let (chis_children, social_children, eyfsp_children) = (
        children_in(&chis_sources),
        children_in(&social_sources),
        children_in(&eyfsp_sources),
    );
    let registered_children: Vec<u32> = records
        .iter()
        .zip(&linkage.child_of)
        .filter(|(r, _)| registration_sources.contains(&r.source))
        .map(|(_, c)| *c)
        .collect();
    let linked_to = |children: &HashSet<u32>| {
        registered_children
            .iter()
            .filter(|c| children.contains(c))
            .count()
    };
    stats.registered_children = registered_children.len();
    stats.registered_linked_to_chis = linked_to(&chis_children);
    stats.registered_linked_to_social_care = linked_to(&social_children);
    stats.registered_linked_to_eyfsp = linked_to(&eyfsp_children);
    if let Some(truth) = &truth {
        let predicted = |focus: &dyn Fn(&Sym) -> bool| {
            records
                .iter()
                .zip(&linkage.child_of)
                .filter(|(r, _)| focus(&r.source))
                .map(|(r, c)| ((r.source, r.source_person_key), *c))
                .collect::<Vec<_>>()
        };
        stats.quality = Some(crate::identity::quality::score(predicted(&|_| true), truth));
        // The same over social care and education records and the child health register
        // only: the pairs this linkage exists for, undiluted by health records that share
        // an NHS number.
        let focus = |source: &Sym| {
            social_sources.contains(source)
                || eyfsp_sources.contains(source)
                || chis_sources.contains(source)
        };
        stats.quality_social = Some(crate::identity::quality::score(predicted(&focus), truth));
    }
    drop(truth);

    let schema = crate::sources::builder::schema(&[
        ("source", crate::sources::ColType::Str),
        ("source_person_key", crate::sources::ColType::Str),
        ("child_key", crate::sources::ColType::Str),
        ("match_rule", crate::sources::ColType::Str),
        ("confidence", crate::sources::ColType::Float),
    ]);
    let mut batches = Vec::new();
    let mut b = TableBuilder::new(schema.clone());
    for (i, r) in records.iter().enumerate() {
        let rule = linkage.rule_of[i];
        b.str(Some(strings.resolve(&r.source)))
            .str(Some(strings.resolve(&r.source_person_key)))
            .str(Some(linkage.child_key(i)))
            .str(Some(rule.map_or("NONE", |r| r.name())))
            .float(rule.map(|r| r.confidence()));
        b.end_row();
        if b.rows() == BATCH_ROWS {
            batches.push(b.finish());
        }
    }
    batches.push(b.finish());
    drop((records, strings, linkage));
    let meta = HashMap::from([(
        "linkage".to_string(),
        serde_json::json!(format!("{stats:?}")),
    )]);
    lake.commit(
        CURATED,
        "person_link",
        schema,
        batches,
        WriteMode::Overwrite,
        Some(app_id),
        meta,
    )
    .await?;
    info!(
        records = stats.records,
        children = stats.children,
        ambiguous = stats.ambiguous_demo_keys,
        "Linkage recomputed."
    );
    Ok(stats)
}

/// The next batch of a table being read, or None at its end (or when it does not exist).
async fn next(
    stream: &mut Option<SendableRecordBatchStream>,
) -> Result<Option<arrow::array::RecordBatch>> {
    match stream {
        Some(s) => Ok(s.try_next().await?),
        None => Ok(None),
    }
}
