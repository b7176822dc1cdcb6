package freshness

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Table is one table and the DateTime column that dates its rows.
type Table struct {
	Name   string
	Column string
}

// DefaultTables are the sink's tables (sinks/clickhouse/sql/migrations).
var DefaultTables = []Table{
	{"purchases", "updated_at"},
	{"discrepancies", "detected_at"},
	{"raw_events", "received_at"},
}

// Config configures a Monitor.
type Config struct {
	Tables   []Table
	Interval time.Duration // how often every table is read
	Timeout  time.Duration // bounds one table's query
}

// DefaultConfig reads the sink's tables every 30 s.
func DefaultConfig() Config {
	return Config{Tables: DefaultTables, Interval: 30 * time.Second, Timeout: 10 * time.Second}
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the configuration. Table and column names go into SQL
// text, so they must be plain identifiers.
func (c Config) Validate() error {
	switch {
	case len(c.Tables) == 0:
		return errors.New("freshness: no tables")
	case c.Interval <= 0:
		return errors.New("freshness: interval must be positive (-freshness.interval)")
	case c.Timeout <= 0:
		return errors.New("freshness: timeout must be positive")
	}
	for _, t := range c.Tables {
		if !identifier.MatchString(t.Name) || !identifier.MatchString(t.Column) {
			return fmt.Errorf("freshness: %q.%q is not a plain table and column name", t.Name, t.Column)
		}
	}
	return nil
}
