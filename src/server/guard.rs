//! What the analysts' server lets through: the statements that only read, and the session
//! statements Postgres clients send on connect. Everything else is refused before it is
//! planned, so a client can neither change the lake nor the shared session.

use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// What a statement is allowed to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Reads the lake: runs under the per-query memory and time limits.
    Query,
    /// Changes only this connection's client settings, or is a transaction/cursor statement
    /// that BI drivers send; answered without touching the lake.
    Session,
    /// Refused, with the reason shown to the client.
    Refused(String),
}

/// Classifies one parsed statement.
pub fn classify(statement: &Statement) -> Class {
    match statement {
        Statement::Query(_)
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ExplainTable { .. } => Class::Query,
        // EXPLAIN of a write would plan the write; EXPLAIN of a query is a query.
        Statement::Explain { statement, .. } => match classify(statement) {
            Class::Query => Class::Query,
            _ => refused("EXPLAIN of a statement that is not a query"),
        },
        Statement::Set(set) => classify_set(set),
        Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Declare { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. }
        | Statement::Discard { .. }
        | Statement::Deallocate { .. } => Class::Session,
        other => refused(&statement_kind(other)),
    }
}

/// `SET` of a client setting is harmless; `SET datafusion.…` would change the engine every
/// connection shares (memory limit, spilling, target partitions), so it is refused.
fn classify_set(set: &Set) -> Class {
    let text = set.to_string().to_ascii_lowercase();
    let variable = text
        .trim_start_matches("set ")
        .trim_start_matches("session ")
        .trim_start_matches("local ");
    if variable.starts_with("datafusion.") || variable.starts_with("\"datafusion.") {
        refused("SET of an engine setting (datafusion.*)")
    } else {
        Class::Session
    }
}

fn refused(what: &str) -> Class {
    Class::Refused(format!(
        "{what} is not allowed: the earlystart server is read-only \
         (SELECT, WITH, EXPLAIN, SHOW and DESCRIBE); the lake changes only through \
         `earlystart run`"
    ))
}

/// The statement's leading keywords (`INSERT INTO`, `CREATE TABLE`, `COPY`), for messages.
/// sqlparser prints keywords in capitals and identifiers as written, so the leading run of
/// all-capital words is the statement kind.
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take_while(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .take(3)
        .collect();
    if words.is_empty() {
        "this statement".to_string()
    } else {
        words.join(" ")
    }
}

/// The statement text with every literal replaced by `?`, for the audit log: who ran what
/// is recorded, the values they searched for (a postcode, a date of birth) are not.
pub fn redact(sql: &str) -> String {
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        // Text the tokenizer rejects cannot be shown safely.
        return "<statement not tokenisable; not recorded>".to_string();
    };
    let mut out = String::with_capacity(sql.len());
    for token in tokens {
        match token {
            Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_) => out.push('?'),
            other => out.push_str(&other.to_string()),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::parser::Parser;

    fn class_of(sql: &str) -> Class {
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        classify(&statements[0])
    }

    #[test]
    fn reads_pass_and_writes_are_refused() {
        assert_eq!(class_of("select 1"), Class::Query);
        assert_eq!(
            class_of("with a as (select 1) select * from a"),
            Class::Query
        );
        assert_eq!(class_of("explain select 1"), Class::Query);
        assert_eq!(class_of("show tables"), Class::Query);
        assert_eq!(class_of("set extra_float_digits = 3"), Class::Session);
        assert_eq!(class_of("begin"), Class::Session);
        for sql in [
            "insert into t values (1)",
            "create table t as select 1",
            "drop table metric_values",
            "delete from t",
            "update t set a = 1",
            "copy t to '/tmp/x.csv'",
            "create view v as select 1",
            "set datafusion.runtime.memory_limit = '100G'",
            "explain insert into t values (1)",
        ] {
            let Class::Refused(reason) = class_of(sql) else {
                panic!("{sql} was not refused");
            };
            assert!(reason.contains("read-only"), "{sql}: {reason}");
        }
        let Class::Refused(reason) = class_of("insert into t values (1)") else {
            unreachable!()
        };
        assert!(reason.starts_with("INSERT INTO is not allowed"), "{reason}");
    }

    #[test]
    fn literals_never_reach_the_audit_log() {
        assert_eq!(
            redact("select * from chis_child\n where postcode = 'LS1 4AP' and n > 42"),
            "select * from chis_child where postcode = ? and n > ?"
        );
        assert_eq!(redact("select $$secret$$, E'x', 1.5e3"), "select ?, ?, ?");
        assert_eq!(
            redact("select 'unterminated"),
            "<statement not tokenisable; not recorded>"
        );
    }
}
