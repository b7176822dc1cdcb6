"""Runs the sink's migrations and analyst queries on current ClickHouse, in
process, through chdb (PyPI chdb-core). Driven by chdb_test.go, which writes
the plan (statements, queries, sample rows) as JSON; prints a JSON report.

A statement with an "AddColumn" guard is skipped when the column exists,
exactly as the Go migrator does.
"""
import json
import sys

from chdb import session


def main():
    plan = json.load(open(sys.argv[1]))
    s = session.Session()
    report = {"errors": [], "schemas": {}, "results": {}}

    def q(sql, fmt="TSV"):
        return s.query(sql, fmt).bytes().decode()

    def migrate(db, migrations):
        q("CREATE DATABASE IF NOT EXISTS " + db)
        q("USE " + db)
        for m in migrations:
            for st in m["Statements"]:
                guard = st.get("AddColumn")
                if guard:
                    n = q("SELECT count() FROM system.columns WHERE database = currentDatabase() "
                          "AND table = '%s' AND name = '%s'" % (guard["Table"], guard["Column"]))
                    if n.strip() != "0":
                        continue
                try:
                    q(st["SQL"])
                except Exception as e:  # report every failing statement, not just the first
                    report["errors"].append("migration %04d %s: %s" % (m["Version"], m["Name"], e))

    def schema(db):
        return q("SELECT 'table', name, engine FROM system.tables WHERE database = '%s' ORDER BY name" % db) + \
            q("SELECT 'column', table, name, type FROM system.columns WHERE database = '%s' ORDER BY table, name" % db)

    ms = plan["migrations"]
    migrate("ref", ms)
    migrate("ref", ms)  # applied twice
    report["schemas"]["ref"] = schema("ref")
    for k in range(len(ms)):
        db = "from_v%d" % k
        migrate(db, ms[:k])
        migrate(db, ms)
        report["schemas"][db] = schema(db)

    q("USE ref")
    report["version"] = q("SELECT version()").strip()
    for table, rows in plan["sample"].items():
        if rows:
            try:
                q("INSERT INTO %s FORMAT JSONEachRow\n%s" % (table, "\n".join(json.dumps(r) for r in rows)))
            except Exception as e:
                report["errors"].append("insert into %s: %s" % (table, e))
    for name, sql in sorted(plan["queries"].items()):
        try:
            report["results"][name] = q(sql)
        except Exception as e:
            report["errors"].append("query %s: %s" % (name, e))
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
