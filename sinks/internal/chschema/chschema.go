// Package chschema holds what more than one sink knows about the ClickHouse
// tables of DESIGN §5: sinks/clickhouse writes them and sinks/compliance
// mutates them. The tables' names, the columns that hold a customer's
// personal data (what a customers/redact blanks), the cluster mode's local
// tables and the per-insert settings are defined here once. The columns
// themselves are created by sinks/clickhouse's migrations and declared by
// its buffers; a test there checks that every column named here is one of
// the buffer's String columns.
package chschema

import (
	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The tables the sink writes and privacy requests mutate.
const (
	Purchases     = "purchases"
	Discrepancies = "discrepancies"
	RawEvents     = "raw_events"
)

// Mutated are the tables a privacy request changes, in the order it
// changes them.
var Mutated = []string{Purchases, Discrepancies, RawEvents}

// Columns of a customer's personal data, all of type String; a
// customers/redact sets them to the empty string.
var (
	// PurchasesPersonal, in table order; a customers/data_request report
	// returns them too.
	PurchasesPersonal = []string{"email", "customer_id", "first_name", "last_name", "shipping_zip", "shipping_address", "ip_address"}
	// DiscrepanciesValues hold the two sides of a compared field: personal
	// data when the field is.
	DiscrepanciesValues = []string{"storefront_value", "shopify_value"}
	// RawEventsBody is the body exactly as received.
	RawEventsBody = []string{"body"}
)

// LocalSuffix names the replicated local table of a Distributed table in
// cluster mode; mutations (compliance redactions) go to T + LocalSuffix.
const LocalSuffix = "_local"

// InsertSettings are the per-insert settings for a server version. Settings
// unknown to the server are errors, so they are chosen once from its version:
// from 21.11 on, async_insert exists, and from 26.2 it is on by default, which
// would let an insert be acknowledged before its rows are written; the sink
// commits Kafka offsets on that acknowledgement, so it turns it off; so
// must every writer that acts on an acknowledgement (sinks/compliance).
// Only int and bool values: the driver cannot send others to 18.16.
func InsertSettings(v *driver.ServerVersion) clickhouse.Settings {
	if v == nil {
		return nil
	}
	if v.Version.Major > 21 || (v.Version.Major == 21 && v.Version.Minor >= 11) {
		return clickhouse.Settings{"async_insert": 0}
	}
	return nil
}
