//! Column builders for the curated tables: a kind module pushes one value per column, in
//! schema order, for each good record.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, PrimitiveBuilder,
    RecordBatch, StringBuilder,
};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;

/// The column types used by curated tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// UTF-8 text.
    Str,
    /// Calendar date.
    Date,
    /// Boolean (null = not known).
    Bool,
    /// 64-bit integer.
    Int,
    /// 64-bit float (scores, coordinates).
    Float,
}

impl ColType {
    fn data_type(self) -> DataType {
        match self {
            ColType::Str => DataType::Utf8,
            ColType::Date => DataType::Date32,
            ColType::Bool => DataType::Boolean,
            ColType::Int => DataType::Int64,
            ColType::Float => DataType::Float64,
        }
    }
}

/// Builds an Arrow schema from `(name, type)` pairs; every column is nullable except the
/// lineage columns, which the engine always fills.
pub fn schema(columns: &[(&str, ColType)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, t)| Field::new(*name, t.data_type(), !name.starts_with('_')))
            .collect::<Vec<_>>(),
    ))
}

enum Col {
    Str(StringBuilder),
    Date(Date32Builder),
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
}

/// One typed cell, for readers that check a whole record (or XML group) before writing any
/// of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(Option<String>),
    /// Date.
    Date(Option<NaiveDate>),
    /// Boolean.
    Bool(Option<bool>),
    /// Whole number.
    Int(Option<i64>),
}

/// Appends rows column by column.
pub struct TableBuilder {
    schema: SchemaRef,
    cols: Vec<Col>,
    next: usize,
    rows: usize,
}

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();

/// Days since 1970-01-01, Arrow's `Date32`.
pub fn date32(d: NaiveDate) -> i32 {
    (d - EPOCH).num_days() as i32
}

impl TableBuilder {
    /// An empty builder for `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        let cols = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => Col::Str(StringBuilder::new()),
                DataType::Date32 => Col::Date(Date32Builder::new()),
                DataType::Boolean => Col::Bool(BooleanBuilder::new()),
                DataType::Int64 => Col::Int(Int64Builder::new()),
                DataType::Float64 => Col::Float(Float64Builder::new()),
                other => unreachable!("curated tables use no {other} columns"),
            })
            .collect();
        Self {
            schema,
            cols,
            next: 0,
            rows: 0,
        }
    }

    fn col(&mut self) -> &mut Col {
        let i = self.next;
        self.next += 1;
        &mut self.cols[i]
    }

    /// Next column is text.
    pub fn str(&mut self, v: Option<&str>) -> &mut Self {
        match self.col() {
            Col::Str(b) => b.append_option(v),
            _ => panic!("column {} is not text", self.next - 1),
        }
        self
    }

    /// Next column is a date.
    pub fn date(&mut self, v: Option<NaiveDate>) -> &mut Self {
        match self.col() {
            Col::Date(b) => b.append_option(v.map(date32)),
            _ => panic!("column {} is not a date", self.next - 1),
        }
        self
    }

    /// Next column is a boolean.
    pub fn bool(&mut self, v: Option<bool>) -> &mut Self {
        match self.col() {
            Col::Bool(b) => b.append_option(v),
            _ => panic!("column {} is not a boolean", self.next - 1),
        }
        self
    }

    /// Next column is an integer.
    pub fn int(&mut self, v: Option<i64>) -> &mut Self {
        match self.col() {
            Col::Int(b) => b.append_option(v),
            _ => panic!("column {} is not an integer", self.next - 1),
        }
        self
    }

    /// Next column is a float.
    pub fn float(&mut self, v: Option<f64>) -> &mut Self {
        match self.col() {
            Col::Float(b) => b.append_option(v),
            _ => panic!("column {} is not a float", self.next - 1),
        }
        self
    }

    /// Appends a held [`Value`] to its column.
    pub fn value(&mut self, v: Value) -> &mut Self {
        match v {
            Value::Str(s) => self.str(s.as_deref()),
            Value::Date(d) => self.date(d),
            Value::Bool(b) => self.bool(b),
            Value::Int(n) => self.int(n),
        }
    }

    /// Closes the current row; every column must have been pushed.
    pub fn end_row(&mut self) {
        assert_eq!(
            self.next,
            self.cols.len(),
            "row pushed {} of {} columns",
            self.next,
            self.cols.len()
        );
        self.next = 0;
        self.rows += 1;
    }

    /// Bytes of text held so far.
    pub fn text_bytes(&self) -> usize {
        self.cols
            .iter()
            .map(|c| match c {
                Col::Str(b) => b.values_slice().len(),
                _ => 0,
            })
            .sum()
    }

    /// Rows completed so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Finishes the batch and resets the builder.
    pub fn finish(&mut self) -> RecordBatch {
        assert_eq!(self.next, 0, "unfinished row");
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| -> ArrayRef {
                // The next batch is likely the size of this one: starting the builders at
                // that capacity saves growing (and copying) every buffer from empty again.
                match c {
                    Col::Str(b) => {
                        let a = b.finish();
                        *b = StringBuilder::with_capacity(a.len(), a.value_data().len());
                        Arc::new(a)
                    }
                    Col::Date(b) => restart(b),
                    Col::Bool(b) => {
                        let a = b.finish();
                        *b = BooleanBuilder::with_capacity(a.len());
                        Arc::new(a)
                    }
                    Col::Int(b) => restart(b),
                    Col::Float(b) => restart(b),
                }
            })
            .collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).expect("builders follow the schema")
    }
}

/// Finishes a column of numbers or dates and starts its next batch at the same capacity.
fn restart<T: ArrowPrimitiveType>(b: &mut PrimitiveBuilder<T>) -> ArrayRef {
    let a = b.finish();
    *b = PrimitiveBuilder::with_capacity(a.len());
    Arc::new(a)
}
