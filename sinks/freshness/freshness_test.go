package freshness

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeConn answers each table's query with a fixed value or error.
type fakeConn struct {
	newest  map[string]uint32
	err     map[string]error
	queries []string
}

type row struct {
	v   uint32
	err error
}

func (r row) Err() error { return r.err }
func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	*dest[0].(*uint32) = r.v
	return nil
}
func (r row) ScanStruct(any) error { return errors.New("not used") }

func (f *fakeConn) QueryRow(_ context.Context, q string, _ ...any) driver.Row {
	f.queries = append(f.queries, q)
	table := q[strings.LastIndex(q, " ")+1:]
	return row{f.newest[table], f.err[table]}
}

// TestPoll: each table's newest row becomes its gauge; an empty table has
// no series; a failing table is counted and keeps its last value.
func TestPoll(t *testing.T) {
	conn := &fakeConn{newest: map[string]uint32{"purchases": 1_700_000_000, "raw_events": 1_700_000_100}}
	m, err := New(DefaultConfig(), Deps{Conn: conn, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	m.Poll(context.Background())
	if got := gauge(m.m.newest, "purchases"); got != 1_700_000_000 {
		t.Errorf("purchases newest = %v, want 1700000000", got)
	}
	if got := gauge(m.m.newest, "raw_events"); got != 1_700_000_100 {
		t.Errorf("raw_events newest = %v, want 1700000100", got)
	}
	if n := len(collect(m.m.newest)); n != 2 {
		t.Errorf("%d newest series, want 2 (discrepancies is empty)", n)
	}
	if want := "SELECT toUInt32(max(updated_at)) FROM purchases"; conn.queries[0] != want {
		t.Errorf("query %q, want %q", conn.queries[0], want)
	}

	conn.err = map[string]error{"purchases": errors.New("connection refused")}
	conn.newest["raw_events"] = 1_700_000_200
	m.Poll(context.Background())
	if got := gauge(m.m.errors, "purchases"); got != 1 {
		t.Errorf("query_errors_total{purchases} = %v, want 1", got)
	}
	if got := gauge(m.m.newest, "purchases"); got != 1_700_000_000 {
		t.Errorf("purchases newest = %v after a failed read, want the last value", got)
	}
	if got := gauge(m.m.newest, "raw_events"); got != 1_700_000_200 {
		t.Errorf("raw_events newest = %v, want 1700000200: one failing table must not stop the others", got)
	}
}

func TestConfigRefusesNonIdentifiers(t *testing.T) {
	c := DefaultConfig()
	c.Tables = []Table{{"purchases; DROP TABLE x", "updated_at"}}
	if err := c.Validate(); err == nil {
		t.Error("a table name with SQL in it was accepted")
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Error(err)
	}
}

// gauge reads the series of vec with label value lv.
func gauge(vec prometheus.Collector, lv string) float64 {
	for _, d := range collect(vec) {
		if d.GetLabel()[0].GetValue() == lv {
			return d.GetGauge().GetValue() + d.GetCounter().GetValue()
		}
	}
	return -1
}

func collect(c prometheus.Collector) []*dto.Metric {
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	var out []*dto.Metric
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			panic(err)
		}
		out = append(out, &d)
	}
	return out
}
