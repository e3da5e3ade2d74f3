"""Runs earlystart's sql/ project on DuckDB, for `earlystart bench`.

The same SQL files, in the order earlystart runs them, each materialised as a DuckDB table,
over the Parquet files of the lake's current Delta versions. Prints the wall time and a
digest of metric_values so the two engines' results can be compared.

usage: duckdb_metrics.py LAKE MODEL.sql ...   run the models on DuckDB
       duckdb_metrics.py LAKE                 only the digest of the lake's own metric_values
"""
import glob
import hashlib
import json
import os
import sys
import time
import tomllib

import duckdb


def active_files(table_dir):
    """Parquet files of the table's latest version, by replaying the Delta log."""
    files = set()
    for entry in sorted(glob.glob(os.path.join(table_dir, "_delta_log", "*.json"))):
        with open(entry) as f:
            for line in f:
                action = json.loads(line)
                if "add" in action:
                    files.add(action["add"]["path"])
                elif "remove" in action:
                    files.discard(action["remove"]["path"])
    return [os.path.join(table_dir, p) for p in sorted(files)]


MACROS = """
-- a full build: every period (incremental builds are earlystart's own)
create macro recompute_from() as date '0001-01-01';
create macro z() as 1.959963984540054;
create macro wilson_lower(x, n) as case when n > 0 then
    case when x = 0 then 0.0 else (2*x + z()*z() - z()*sqrt(z()*z() + 4*x*(1 - x/n))) / (2*(n + z()*z())) end end;
create macro wilson_upper(x, n) as case when n > 0 then
    case when x = n then 1.0 else (2*x + z()*z() + z()*sqrt(z()*z() + 4*x*(1 - x/n))) / (2*(n + z()*z())) end end;
create macro newcombe_lower(x1, n1, x2, n2) as x1/n1 - x2/n2
    - sqrt(power(x1/n1 - wilson_lower(x1, n1), 2) + power(wilson_upper(x2, n2) - x2/n2, 2));
create macro newcombe_upper(x1, n1, x2, n2) as x1/n1 - x2/n2
    + sqrt(power(wilson_upper(x1, n1) - x1/n1, 2) + power(x2/n2 - wilson_lower(x2, n2), 2));
create macro poisson_lower(x) as case when x >= 10 then x * power(1 - 1/(9*x) - z()/(3*sqrt(x)), 3) end;
create macro poisson_upper(x) as case when x >= 10 then (x+1) * power(1 - 1/(9*(x+1)) + z()/(3*sqrt(x+1)), 3) end;
create macro mean_lower(n, s, ss) as case when n >= 2 then s/n
    - z() * sqrt(greatest((ss - n * (s/n) * (s/n)) / (n - 1), 0)) / sqrt(n) end;
create macro mean_upper(n, s, ss) as case when n >= 2 then s/n
    + z() * sqrt(greatest((ss - n * (s/n) * (s/n)) / (n - 1), 0)) / sqrt(n) end;
"""


def main():
    lake, models = sys.argv[1], sys.argv[2:]
    con = duckdb.connect()
    con.execute("set preserve_insertion_order = false")
    model_names = {os.path.splitext(os.path.basename(m))[0] for m in models}
    for area in ("curated", "metrics"):
        for table_dir in sorted(glob.glob(os.path.join(lake, area, "*"))):
            name = os.path.basename(table_dir)
            if name in model_names:
                continue
            files = active_files(table_dir)
            if not files:
                continue
            file_list = ", ".join(f"'{f}'" for f in files)
            con.execute(
                f"create view {name} as select * from read_parquet([{file_list}], "
                f"hive_partitioning = true, union_by_name = true)"
            )
    register_quarantine(con, lake)
    con.execute(MACROS)
    if not models:
        print(json.dumps(digest(con)))
        return
    started = time.perf_counter()
    for path in models:
        name = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            sql = f.read()
        put_last_build(con, path, name)
        con.execute(f"create or replace table {name} as {sql}")
    wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, **digest(con)}))


ARROW_TYPES = {"Utf8": "varchar", "Date32": "date", "Int64": "bigint"}


def put_last_build(con, path, name):
    """A model that declares last_build in its folder's _models.toml reads it: empty here,
    as in any full build."""
    sidecar = os.path.join(os.path.dirname(path), "_models.toml")
    if not os.path.exists(sidecar):
        return
    with open(sidecar, "rb") as f:
        declared = tomllib.load(f).get(name, {}).get("last_build")
    if declared:
        columns = ", ".join(f"{c} {ARROW_TYPES[t]}" for c, t in declared.items())
        con.execute(f"create or replace table last_build ({columns})")


QUARANTINE_COLUMNS = {
    "source": "varchar",
    "file_sha256": "varchar",
    "row_number": "bigint",
    "centre_id": "varchar",
    "record_date": "date",
}


def register_quarantine(con, lake):
    """ops/quarantine as the SQL reads it (DQ-02): empty before the first rejected row, and
    with null centre and date columns when written before rows carried them."""
    files = active_files(os.path.join(lake, "ops", "quarantine"))
    present = set()
    if files:
        file_list = ", ".join(f"'{f}'" for f in files)
        source = f"read_parquet([{file_list}], union_by_name = true)"
        present = {r[0] for r in con.execute(f"describe select * from {source}").fetchall()}
    columns = ", ".join(
        name if name in present else f"cast(null as {kind}) as {name}"
        for name, kind in QUARANTINE_COLUMNS.items()
    )
    if files:
        con.execute(f"create view quarantine as select {columns} from {source}")
    else:
        con.execute(f"create view quarantine as select {columns} where false")


def digest(con):
    """Row count and SHA-256 of metric_values' counts, in a fixed order."""
    rows = con.execute(
        "select metric_id, period_type, cast(period_end as varchar), geography_type, "
        "geography_code, breakdown_type, breakdown_value, numerator, denominator "
        "from metric_values order by all"
    ).fetchall()
    text = "\n".join("|".join(str(v) for v in r) for r in rows)
    return {"rows": len(rows), "digest": hashlib.sha256(text.encode()).hexdigest()}

if __name__ == "__main__":
    main()
