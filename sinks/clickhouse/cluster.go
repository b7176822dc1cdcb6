package clickhouse

import (
	"fmt"
	"regexp"
	"strings"

	"purchasesync/sinks/internal/chschema"
)

// Cluster mode (Config.Cluster): every table T of the migrations becomes
//
//   - T_local on every server, ON CLUSTER, with the Replicated form of its
//     engine; its Keeper path is /clickhouse/tables/{shard}/<database>/T_local
//     (the servers' {shard} and {replica} macros), and
//   - T, a Distributed table over T_local, sharded by shardingKeys[T], which
//     the sink writes to and the views read from.
//
// The sharding key of the tables keyed by purchase is (site, order_number),
// so every version of one purchase, and its discrepancies and raw events,
// land on one shard: FINAL, which collapses within a shard, stays exact.
// The migration files stay single-node SQL; the rewrite below is the one
// place that knows the cluster form, and it refuses a statement it does not
// know rather than guess.
var shardingKeys = map[string]string{
	"purchases":           "cityHash64(site, order_number)",
	"discrepancies":       "cityHash64(site, order_number)",
	"raw_events":          "cityHash64(site, order_number)",
	"compliance_requests": "cityHash64(request_id)",
	// A double's mark sits with nothing else: any key spreads them.
	"double_registration_marks": "cityHash64(site, shopify_order_number)",
}

var (
	createTableRE = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*ENGINE\s*=\s*(Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing)?MergeTree(\s*\(([^)]*)\))?(.*)$`)
	createViewRE  = regexp.MustCompile(`(?is)^CREATE\s+VIEW\s+IF\s+NOT\s+EXISTS\s+([A-Za-z_][A-Za-z0-9_]*)\s+AS\s+(.*)$`)
	fromTableRE   = regexp.MustCompile(`(?i)\b(FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)\b(\s*\()?`)
)

// clusterStatements is st in cluster mode: one or more statements with
// database-qualified names (ON CLUSTER DDL runs on servers whose default
// database may differ), each ON CLUSTER cluster.
func clusterStatements(st Statement, db, cluster string) ([]Statement, error) {
	on := " ON CLUSTER `" + cluster + "`"
	q := func(t string) string { return "`" + db + "`.`" + t + "`" }
	if m := createTableRE.FindStringSubmatch(st.SQL); m != nil {
		name, cols, kind, args, rest := m[1], m[2], m[3], strings.TrimSpace(m[5]), m[6]
		key, ok := shardingKeys[name]
		if !ok {
			return nil, fmt.Errorf("table %s has no sharding key for cluster mode: add it to shardingKeys in sinks/clickhouse/cluster.go", name)
		}
		path := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s%s', '{replica}'", db, name, chschema.LocalSuffix)
		if args != "" {
			path += ", " + args
		}
		local := Statement{SQL: "CREATE TABLE IF NOT EXISTS " + q(name+chschema.LocalSuffix) + on + " (" + cols + ")\nENGINE = Replicated" + kind + "MergeTree(" + path + ")" + rest}
		return []Statement{local, distributedStatement(name, db, cluster, key)}, nil
	}
	if m := createViewRE.FindStringSubmatch(st.SQL); m != nil {
		// Every table or view a view reads is qualified (a view over a
		// view too); a table function, name(...), is left alone.
		body := fromTableRE.ReplaceAllStringFunc(m[2], func(s string) string {
			sm := fromTableRE.FindStringSubmatch(s)
			if sm[3] != "" {
				return s
			}
			return sm[1] + " " + q(sm[2])
		})
		return []Statement{{SQL: "CREATE VIEW IF NOT EXISTS " + q(m[1]) + on + " AS " + body}}, nil
	}
	if st.AddColumn != nil {
		t := st.AddColumn.Table
		key, ok := shardingKeys[t]
		if !ok {
			return nil, fmt.Errorf("table %s has no sharding key for cluster mode: add it to shardingKeys in sinks/clickhouse/cluster.go", t)
		}
		rest := addColumnRE.ReplaceAllString(st.SQL, "")
		local := Statement{
			SQL:       "ALTER TABLE " + q(t+chschema.LocalSuffix) + on + " ADD COLUMN " + st.AddColumn.Column + " " + rest,
			AddColumn: &ColumnRef{Table: t + chschema.LocalSuffix, Column: st.AddColumn.Column},
		}
		// 18.16 refuses ALTER … ON CLUSTER of a Distributed table over
		// replicated shards ("Table isn't replicated"); a Distributed table
		// holds no data (the sink inserts synchronously), so it is made
		// again with the new columns.
		return []Statement{local,
			{SQL: "DROP TABLE IF EXISTS " + q(t) + on},
			distributedStatement(t, db, cluster, key)}, nil
	}
	return nil, fmt.Errorf("no cluster form for this migration statement (CREATE TABLE … MergeTree, CREATE VIEW and ALTER … ADD COLUMN have one): %.80s", st.SQL)
}

func distributedStatement(name, db, cluster, key string) Statement {
	return Statement{SQL: fmt.Sprintf("CREATE TABLE IF NOT EXISTS `%s`.`%s` ON CLUSTER `%s` AS `%s`.`%s%s`\nENGINE = Distributed(`%s`, `%s`, `%s%s`, %s)",
		db, name, cluster, db, name, chschema.LocalSuffix, cluster, db, name, chschema.LocalSuffix, key)}
}

// clusterMigrationsTable is schema_migrations in cluster mode: one
// replicated table whose replicas are every server of the cluster (no
// {shard} in its path), so that every server reads the same applied
// versions and a second migrate, from any of them, is a no-op.
func clusterMigrationsTable(db, cluster string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS `%s`.schema_migrations ON CLUSTER `%s` (\n"+
		"    version    UInt32,\n    name       String,\n    checksum   String,\n    applied_at DateTime('UTC')\n"+
		") ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/%s/schema_migrations', '{replica}') ORDER BY version", db, cluster, db)
}
