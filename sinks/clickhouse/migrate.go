package clickhouse

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed sql/migrations/*.sql sql/queries/*.sql
var sqlFS embed.FS

// Migration is one numbered schema step, read from
// sql/migrations/NNNN_name.sql. Its statements are written without a
// database name and run with the target database as the default one; each
// must be safe to run again (CREATE … IF NOT EXISTS, or an ADD COLUMN, which
// the migrator skips when the column exists: 18.16 has no ADD COLUMN IF NOT
// EXISTS).
type Migration struct {
	Version    int
	Name       string
	Checksum   string // sha256 of the file: an applied migration must not change
	Statements []Statement
}

// Statement is one SQL statement of a migration.
type Statement struct {
	SQL string
	// AddColumn is set for "ALTER TABLE t ADD COLUMN c …": the statement is
	// skipped when table t already has column c.
	AddColumn *ColumnRef `json:",omitempty"`
}

// ColumnRef names a column of a table.
type ColumnRef struct{ Table, Column string }

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	sub, err := fs.Sub(sqlFS, "sql/migrations")
	if err != nil {
		return nil, fmt.Errorf("cannot open embedded migrations: %w", err)
	}
	return LoadMigrations(sub)
}

var migrationFileRE = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// LoadMigrations reads NNNN_name.sql files from fsys. Versions must run
// 1, 2, 3 … without gaps, so that "the database is at version n" means one
// thing.
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("cannot list migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		m := migrationFileRE.FindStringSubmatch(e.Name())
		if m == nil {
			if strings.HasSuffix(e.Name(), ".sql") {
				return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
			}
			continue
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("cannot read migration %s: %w", e.Name(), err)
		}
		v, _ := strconv.Atoi(m[1])
		stmts, err := splitStatements(string(b))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: v, Name: m[2], Checksum: hex.EncodeToString(sum[:]), Statements: stmts})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must be 1, 2, 3 … without gaps; found %04d at position %d", m.Version, i+1)
		}
	}
	return out, nil
}

var addColumnRE = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\s+ADD\s+COLUMN\s+([A-Za-z_][A-Za-z0-9_]*)\s`)

// splitStatements splits a file on ';' at the end of a line and drops
// comment lines. A ';' elsewhere is refused rather than guessed at.
func splitStatements(src string) ([]Statement, error) {
	var out []Statement
	var cur []string
	flush := func() error {
		sql := strings.TrimSpace(strings.Join(cur, "\n"))
		cur = cur[:0]
		if sql == "" {
			return nil
		}
		if strings.Contains(sql, ";") {
			return fmt.Errorf("';' inside a statement (end statements with ';' at the end of a line): %.60s", sql)
		}
		st := Statement{SQL: sql}
		if m := addColumnRE.FindStringSubmatch(sql); m != nil {
			if strings.Contains(sql, ",") && regexp.MustCompile(`(?i),\s*(ADD|DROP|MODIFY)\s`).MatchString(sql) {
				return fmt.Errorf("one ADD COLUMN per ALTER, so that it can be skipped when the column exists: %.60s", sql)
			}
			st.AddColumn = &ColumnRef{Table: m[1], Column: m[2]}
		}
		out = append(out, st)
		return nil
	}
	for _, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--") {
			continue
		}
		if strings.HasSuffix(t, ";") {
			cur = append(cur, strings.TrimSuffix(strings.TrimRight(line, " \t\r"), ";"))
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		cur = append(cur, line)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// Queries returns the analyst queries of sql/queries (file name → SQL), the
// ones the README quotes and the tests run on both engines.
func Queries() (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(sqlFS, "sql/queries", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sqlFS, p)
		if err != nil {
			return err
		}
		out[path.Base(p)] = string(b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot read embedded queries: %w", err)
	}
	return out, nil
}

// migrationsTable records applied migrations. ReplacingMergeTree, so that
// two instances migrating at once leave one row per version.
const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree ORDER BY version`

// Migrate creates cfg.Database if needed and applies the embedded migrations
// it has not applied yet. It returns the schema version reached.
func Migrate(ctx context.Context, cfg Config, log *slog.Logger) (int, error) {
	ms, err := Migrations()
	if err != nil {
		return 0, err
	}
	return MigrateWith(ctx, cfg, ms, log)
}

// MigrateWith is Migrate with a given list of migrations (tests use prefixes
// of the real list to build databases at earlier versions).
func MigrateWith(ctx context.Context, cfg Config, ms []Migration, log *slog.Logger) (int, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	boot, err := Open(cfg, "")
	if err != nil {
		return 0, err
	}
	createDB := "CREATE DATABASE IF NOT EXISTS `" + cfg.Database + "`"
	if cfg.Cluster != "" {
		createDB += " ON CLUSTER `" + cfg.Cluster + "`"
	}
	err = boot.Exec(ctx, createDB)
	boot.Close()
	if err != nil {
		return 0, fmt.Errorf("cannot create database %s: %w", cfg.Database, err)
	}
	conn, err := Open(cfg, cfg.Database)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return migrate(ctx, conn, cfg.Database, cfg.Cluster, ms, log)
}

// migrate applies ms to db, in cluster mode (cluster != "") in the cluster
// form of each statement (clusterStatements).
func migrate(ctx context.Context, conn driver.Conn, db, cluster string, ms []Migration, log *slog.Logger) (int, error) {
	create := migrationsTable
	if cluster != "" {
		create = clusterMigrationsTable(db, cluster)
	}
	if err := conn.Exec(ctx, create); err != nil {
		return 0, fmt.Errorf("cannot create schema_migrations in %s: %w", db, err)
	}
	if cluster != "" {
		// What another server recorded reaches this one by replication:
		// wait for it, so that a second migrate from any server is a no-op
		// (re-running a statement would be harmless, but noisy).
		if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA `"+db+"`.schema_migrations"); err != nil {
			return 0, fmt.Errorf("cannot sync schema_migrations in %s with the other replicas: %w", db, err)
		}
	}
	applied := map[int]string{}
	rows, err := conn.Query(ctx, "SELECT version, checksum FROM schema_migrations FINAL")
	if err != nil {
		return 0, fmt.Errorf("cannot read schema_migrations in %s: %w", db, err)
	}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return 0, fmt.Errorf("cannot read schema_migrations in %s: %w", db, err)
		}
		applied[int(v)] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("cannot read schema_migrations in %s: %w", db, err)
	}
	version := 0
	for _, m := range ms {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return version, fmt.Errorf("migration %04d_%s was changed after it was applied to %s: add a new migration instead", m.Version, m.Name, db)
			}
			version = m.Version
			continue
		}
		start := time.Now()
		stmts := m.Statements
		if cluster != "" {
			stmts = nil
			for _, st := range m.Statements {
				cs, err := clusterStatements(st, db, cluster)
				if err != nil {
					return version, fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
				}
				stmts = append(stmts, cs...)
			}
		}
		for _, st := range stmts {
			if st.AddColumn != nil {
				exists, err := columnExists(ctx, conn, db, *st.AddColumn)
				if err != nil {
					return version, err
				}
				if exists {
					continue
				}
			}
			if err := conn.Exec(ctx, st.SQL); err != nil {
				return version, fmt.Errorf("cannot apply migration %04d_%s to %s: %w", m.Version, m.Name, db, err)
			}
		}
		// Recorded through a batch: Exec("INSERT … VALUES") hangs on 18.16.
		b, err := conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, checksum, applied_at)")
		if err == nil {
			if err = b.Append(uint32(m.Version), m.Name, m.Checksum, time.Now().UTC()); err == nil {
				err = b.Send()
			} else {
				_ = b.Abort()
			}
		}
		if err != nil {
			return version, fmt.Errorf("cannot record migration %04d_%s in %s: %w", m.Version, m.Name, db, err)
		}
		version = m.Version
		log.Info("applied ClickHouse migration", "database", db, "cluster", cluster, "version", m.Version, "name", m.Name, "took", time.Since(start).String())
	}
	return version, nil
}

func columnExists(ctx context.Context, conn driver.Conn, db string, c ColumnRef) (bool, error) {
	var n uint64
	err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
		db, c.Table, c.Column).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("cannot look up column %s.%s: %w", c.Table, c.Column, err)
	}
	return n > 0, nil
}
