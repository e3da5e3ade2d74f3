//! Rows of the operational tables (quarantine, warnings, rejected files, file loads, runs)
//! as Arrow batches.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::sources::builder::{ColType, TableBuilder, schema};
use crate::sources::{FileMeta, Issue};

/// Schema of `quarantine` and `validation_warnings` (extracts.md §10).
pub fn issue_schema() -> SchemaRef {
    schema(&[
        ("run_id", ColType::Str),
        ("ingested_at", ColType::Str),
        ("source", ColType::Str),
        ("file_path", ColType::Str),
        ("file_sha256", ColType::Str),
        ("row_number", ColType::Int),
        ("byte_offset", ColType::Int),
        ("field", ColType::Str),
        ("source_column", ColType::Str),
        ("rule_id", ColType::Str),
        ("severity", ColType::Str),
        ("message", ColType::Str),
        ("value_preview", ColType::Str),
        ("value_hmac", ColType::Str),
        ("xml_line", ColType::Int),
        ("xml_path", ColType::Str),
        // the record's own centre and date, when its extract has them (DQ-02)
        ("centre_id", ColType::Str),
        ("record_date", ColType::Date),
    ])
}

/// Issues as rows of [`issue_schema`].
pub fn issue_batch(run_id: &str, at: &str, file: &FileMeta, issues: &[Issue]) -> RecordBatch {
    let mut b = TableBuilder::new(issue_schema());
    for i in issues {
        b.str(Some(run_id))
            .str(Some(at))
            .str(Some(&file.source))
            .str(Some(&file.path))
            .str(Some(&file.sha256))
            .int(Some(i.row_number as i64))
            .int(Some(i.byte_offset as i64))
            .str(Some(&i.field))
            .str(Some(&i.source_column))
            .str(Some(i.rule.id()))
            .str(Some(i.rule.severity().code()))
            .str(Some(&i.message))
            .str(i.value_preview.as_deref())
            .str(i.value_hmac.as_deref())
            .int(i.xml_path.as_ref().map(|_| i.row_number as i64))
            .str(i.xml_path.as_deref())
            .str(i.place.centre_id.as_deref())
            .date(i.place.record_date);
        b.end_row();
    }
    b.finish()
}

/// Schema of `file_loads`: one row per file seen by a run.
pub fn file_load_schema() -> SchemaRef {
    schema(&[
        ("run_id", ColType::Str),
        ("source", ColType::Str),
        ("kind", ColType::Str),
        ("file_path", ColType::Str),
        ("file_sha256", ColType::Str),
        ("bytes", ColType::Int),
        ("status", ColType::Str),
        ("rows_read", ColType::Int),
        ("rows_loaded", ColType::Int),
        ("rows_quarantined", ColType::Int),
        ("warnings", ColType::Int),
        ("rule_id", ColType::Str),
        ("message", ColType::Str),
        ("as_at", ColType::Date),
        ("duration_ms", ColType::Int),
    ])
}

/// Schema of `runs`: one row per run.
pub fn run_schema() -> SchemaRef {
    schema(&[
        ("run_id", ColType::Str),
        ("pipeline", ColType::Str),
        ("trigger", ColType::Str),
        ("started_at", ColType::Str),
        ("finished_at", ColType::Str),
        ("status", ColType::Str),
        ("files_seen", ColType::Int),
        ("files_ingested", ColType::Int),
        ("files_skipped", ColType::Int),
        ("files_rejected", ColType::Int),
        ("rows_loaded", ColType::Int),
        ("rows_quarantined", ColType::Int),
        ("error", ColType::Str),
        ("reference_tables", ColType::Str),
        ("duration_s", ColType::Float),
        ("steps", ColType::Str),
        ("tables", ColType::Str),
    ])
}
