//! `earlystart server` as analysts' tools meet it, on the metric fixture world: the real
//! `psql` client and the Python `psycopg` driver (installed by scripts/test) connect with a
//! SCRAM password, list tables and columns, run metric queries and get the numbers
//! `earlystart sql` gives; writes, file access and engine settings are refused; wrong
//! passwords are refused; 20 concurrent clients run under the memory limit; TLS works when a
//! certificate is configured; the audit log records who ran what without the literals.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::external::enabled;
use crate::metrics::world_lake;

const PASSWORD: &str = "correct horse battery";

/// A server on a free port, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
    audit: tempfile::NamedTempFile,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let audit = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_earlystart"))
            .arg("--project")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(["server", "--lake"])
            .arg(world_lake())
            .args(["--listen", "127.0.0.1:0", "--audit-log"])
            .arg(audit.path())
            .args(args)
            .env("EARLYSTART_SERVER_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Server { child, port, audit }
    }

    fn conninfo(&self, sslmode: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=analyst dbname=earlystart sslmode={sslmode}",
            self.port
        )
    }

    /// `psql -At -c SQL` with the given password.
    fn psql(&self, sql: &str, password: &str) -> Output {
        Command::new("psql")
            .arg(self.conninfo("disable"))
            .args(["-X", "-A", "-t", "-c", sql])
            .env("PGPASSWORD", password)
            .output()
            .expect("psql is installed by scripts/install-test-tools")
    }

    fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.audit.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    ok(&out)
}

const R1: &str = "select numerator, denominator from metric_values where metric_id = 'REACH-01' \
    and period_type = 'rolling12' and period_end = date '2025-03-31' \
    and geography_type = 'reach_area' and geography_code = 'R1' and breakdown_type = 'all'";

const BY_METRIC: &str = "select metric_id, count(*) as n, sum(numerator) as num \
    from metric_values where period_type = 'fy' group by metric_id order by metric_id";

#[test]
fn psql_and_psycopg_list_tables_and_get_the_numbers_of_earlystart_sql() {
    if !enabled("psql_and_psycopg_list_tables_and_get_the_numbers_of_earlystart_sql") {
        return;
    }
    let server = Server::start(&[]);
    assert_eq!(ok(&server.psql(R1, PASSWORD)), "6|10");

    // The same aggregate through `earlystart sql`, psql and psycopg.
    let local = Command::new(env!("CARGO_BIN_EXE_earlystart"))
        .arg("--project")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(["sql", "--lake"])
        .arg(world_lake())
        .args(["--format", "csv", "-c", BY_METRIC])
        .output()
        .unwrap();
    let local: Vec<String> = ok(&local)
        .lines()
        .skip(1)
        .map(|l| l.replace(',', "|"))
        .collect();
    assert!(local.len() > 10, "{local:?}");
    let remote: Vec<String> = ok(&server.psql(BY_METRIC, PASSWORD))
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(remote, local);

    // psql's own catalogue queries: \dt lists the lake's tables, \d a table's columns.
    let tables = ok(&server.psql("\\dt", PASSWORD));
    for t in ["metric_values", "registrations", "chis", "cin_child"] {
        assert!(
            tables.lines().any(|l| l.split('|').nth(1) == Some(t)),
            "{t} not in \\dt:\n{tables}"
        );
    }
    let columns = ok(&server.psql("\\d metric_values", PASSWORD));
    assert!(columns.contains("metric_id|text"), "{columns}");
    assert!(columns.contains("numerator|bigint"), "{columns}");
    assert!(
        columns.contains("uses_unverified|boolean||not null"),
        "{columns}"
    );

    // psycopg: the extended protocol with bound parameters (as notebooks and BI tools use).
    let script = "import sys, psycopg\n\
        with psycopg.connect(sys.argv[1], password=sys.argv[2]) as c:\n\
        \x20   print(c.execute(\"select numerator, denominator from metric_values where metric_id = %s and period_type = %s and period_end = %s::date and geography_type = %s and geography_code = %s and breakdown_type = 'all'\", ('REACH-01', 'rolling12', '2025-03-31', 'reach_area', 'R1')).fetchall())\n\
        \x20   rows = c.execute(sys.argv[3]).fetchall()\n\
        \x20   print('\\n'.join(f'{m}|{n}|{s if s is not None else \"\"}' for m, n, s in rows))\n\
        \x20   names = [r[0] for r in c.execute(\"select table_name from information_schema.tables where table_schema = 'lake'\").fetchall()]\n\
        \x20   print('metric_values' in names)\n";
    let out = python(script, &[&server.conninfo("disable"), PASSWORD, BY_METRIC]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("[(6, 10)]"));
    let rows: Vec<String> = lines
        .by_ref()
        .take(local.len())
        .map(str::to_string)
        .collect();
    assert_eq!(rows, local);
    assert_eq!(lines.next(), Some("True"));

    // Every statement is audited, with the user and without its literals.
    let audit = server.audit_lines();
    assert!(audit.len() >= 6, "{audit:?}");
    assert!(audit.iter().all(|e| e["user"] == "analyst"));
    let r1 = audit
        .iter()
        .find(|e| {
            e["statement"]
                .as_str()
                .unwrap()
                .contains("metric_values where metric_id")
        })
        .expect("R1 audited");
    assert_eq!(r1["outcome"], "ok");
    assert_eq!(r1["rows"], 1);
    let text = std::fs::read_to_string(server.audit.path()).unwrap();
    assert!(
        !text.contains("REACH-01") && !text.contains("2025-03-31"),
        "{text}"
    );
}

#[test]
fn writes_file_access_settings_and_wrong_passwords_are_refused() {
    if !enabled("writes_file_access_settings_and_wrong_passwords_are_refused") {
        return;
    }
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.csv");
    let refused = [
        "insert into metric_values select * from metric_values".to_string(),
        "delete from metric_values".to_string(),
        "update metric_values set value = 0".to_string(),
        "drop table metric_values".to_string(),
        "create table t as select 1".to_string(),
        "create view v as select 1".to_string(),
        format!("copy (select 1) to '{}'", target.display()),
        "set datafusion.runtime.memory_limit = '100G'".to_string(),
    ];
    for sql in &refused {
        let out = server.psql(sql, PASSWORD);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sql} ran");
        assert!(err.contains("read-only"), "{sql}: {err}");
    }
    assert!(!target.exists(), "COPY wrote a file");
    // Files are not tables, and DataFusion's external tables do not even parse here.
    for sql in [
        "select * from '/etc/passwd'",
        "create external table pw stored as csv location '/etc/passwd'",
    ] {
        assert!(!server.psql(sql, PASSWORD).status.success(), "{sql} ran");
    }
    // Nothing changed.
    assert_eq!(ok(&server.psql(R1, PASSWORD)), "6|10");

    for (user, password) in [("analyst", "wrong"), ("postgres", PASSWORD)] {
        let out = Command::new("psql")
            .arg(
                server
                    .conninfo("disable")
                    .replace("user=analyst", &format!("user={user}")),
            )
            .args(["-X", "-c", "select 1"])
            .env("PGPASSWORD", password)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{user} logged in with {password}");
        assert!(err.contains("authentication failed"), "{err}");
    }
    let audit = server.audit_lines();
    let outcomes = |o: &str| audit.iter().filter(|e| e["outcome"] == o).count();
    assert_eq!(outcomes("refused"), refused.len(), "{audit:?}");
    assert_eq!(outcomes("login-failed"), 2, "{audit:?}");
}

#[test]
fn twenty_concurrent_clients_share_four_query_slots_under_the_memory_limit() {
    if !enabled("twenty_concurrent_clients_share_four_query_slots_under_the_memory_limit") {
        return;
    }
    let server = Server::start(&["--max-queries", "4", "--memory-limit", "64MiB"]);
    let script = "import sys, psycopg, concurrent.futures as cf\n\
        def one(i):\n\
        \x20   with psycopg.connect(sys.argv[1], password=sys.argv[2]) as c:\n\
        \x20       return c.execute(sys.argv[3]).fetchall()\n\
        with cf.ThreadPoolExecutor(20) as pool:\n\
        \x20   results = list(pool.map(one, range(20)))\n\
        print(len(results), len({repr(r) for r in results}), len(results[0]))\n";
    let query = "select m.metric_id, m.geography_code, count(*) as n, max(v.value) as top \
        from metric_values m join metric_values v on m.metric_id = v.metric_id \
        and m.geography_code = v.geography_code group by 1, 2 order by 1, 2";
    let out = python(script, &[&server.conninfo("disable"), PASSWORD, query]);
    let fields: Vec<usize> = out.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(fields[0], 20, "every client got an answer");
    assert_eq!(fields[1], 1, "every client got the same answer");
    assert!(fields[2] > 10, "{out}");
    let audit = server.audit_lines();
    let run: Vec<_> = audit
        .iter()
        .filter(|e| {
            e["statement"]
                .as_str()
                .unwrap()
                .contains("join metric_values")
        })
        .collect();
    assert_eq!(run.len(), 20);
    assert!(run.iter().all(|e| e["outcome"] == "ok"), "{run:?}");
}

#[test]
fn long_queries_are_cancelled_at_the_time_limit() {
    if !enabled("long_queries_are_cancelled_at_the_time_limit") {
        return;
    }
    let server = Server::start(&["--timeout", "2"]);
    let started = std::time::Instant::now();
    let out = server.psql(
        "select count(*) from generate_series(1, 100000000000) where value % 7 = 3",
        PASSWORD,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("statement timeout"), "{err}");
    assert!(started.elapsed().as_secs() < 30);
    // A client's own statement_timeout, shorter than the server's, applies too.
    let out = Command::new("psql")
        .arg(server.conninfo("disable"))
        .args(["-X", "-c", "set statement_timeout = '500ms'"])
        .args([
            "-c",
            "select count(*) from generate_series(1, 100000000000)",
        ])
        .env("PGPASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("0.5 s"));
    assert_eq!(ok(&server.psql(R1, PASSWORD)), "6|10");
}

#[test]
fn tls_is_offered_when_a_certificate_is_configured() {
    if !enabled("tls_is_offered_when_a_certificate_is_configured") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    self_signed(&cert, &key);
    let server = Server::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let out = Command::new("psql")
        .arg(server.conninfo("require"))
        .args(["-X", "-A", "-t", "-c", "select 1", "-c", "\\conninfo"])
        .env("PGPASSWORD", PASSWORD)
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.starts_with('1'), "{text}");
    assert!(text.contains("SSL connection"), "{text}");
}

fn self_signed(cert: &Path, key: &Path) {
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("openssl is installed");
    ok(&out);
}
