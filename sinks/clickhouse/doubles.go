package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"purchasesync/schemas"
	"purchasesync/sinks/internal/chschema"
)

// Doubles finds and marks suspected double registrations (migration 0006)
// for the admin API: the repair after a site's order_key was wrong.
// Marking never deletes nor changes a purchase: it adds a row to
// double_registration_marks, which the views join, so analysts can leave
// the doubles out and the registry's operators can undo them.
type Doubles struct {
	Conn driver.Conn
	// Cluster mode: inserts into the Distributed marks table wait for the
	// shards (insert_distributed_sync).
	Cluster bool
}

// List returns a site's suspected doubles, oldest first.
func (d Doubles) List(ctx context.Context, site string) ([]schemas.DoubleRegistration, error) {
	rows, err := d.Conn.Query(ctx, `SELECT shopify_order_number, storefront_order_number, shopify_order_id, shopify_order_name,
	    shopify_registered_via, shopify_registered_at, storefront_registered_at, marked, marked_at
	FROM suspected_double_registrations WHERE site = ? ORDER BY shopify_registered_at, shopify_order_number`, site)
	if err != nil {
		return nil, fmt.Errorf("cannot read suspected_double_registrations: %w", err)
	}
	defer rows.Close()
	out := []schemas.DoubleRegistration{}
	for rows.Next() {
		r := schemas.DoubleRegistration{Site: site}
		var marked uint8
		var markedAt time.Time
		if err := rows.Scan(&r.ShopifyOrderNumber, &r.StorefrontOrderNumber, &r.ShopifyOrderID, &r.ShopifyOrderName,
			&r.ShopifyRegisteredVia, &r.ShopifyRegisteredAt, &r.StorefrontRegisteredAt, &marked, &markedAt); err != nil {
			return nil, fmt.Errorf("cannot read suspected_double_registrations: %w", err)
		}
		if r.Marked = marked == 1; r.Marked {
			at := markedAt.UTC()
			r.MarkedAt = &at
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read suspected_double_registrations: %w", err)
	}
	return out, nil
}

// Mark marks every unmarked suspected double of a site, and returns them.
// Marking again is a no-op: only the unmarked doubles get a mark.
func (d Doubles) Mark(ctx context.Context, site, by, note string, now time.Time) ([]schemas.DoubleRegistration, error) {
	all, err := d.List(ctx, site)
	if err != nil {
		return nil, err
	}
	var todo []schemas.DoubleRegistration
	for _, r := range all {
		if !r.Marked {
			todo = append(todo, r)
		}
	}
	if len(todo) == 0 {
		return todo, nil
	}
	v, err := d.Conn.ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("cannot read the ClickHouse version: %w", err)
	}
	settings := chschema.InsertSettings(v)
	if d.Cluster {
		settings = clusterInsertSettings(settings)
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(settings))
	batch, err := d.Conn.PrepareBatch(ctx, "INSERT INTO double_registration_marks (site, shopify_order_number, storefront_order_number, shopify_order_id, marked_at, marked_by, note, version)")
	if err != nil {
		return nil, fmt.Errorf("cannot mark the doubles: %w", err)
	}
	at := now.UTC().Truncate(time.Second)
	for i := range todo {
		r := &todo[i]
		if err := batch.Append(site, r.ShopifyOrderNumber, r.StorefrontOrderNumber, r.ShopifyOrderID, at, by, note, uint64(1)); err != nil {
			return nil, fmt.Errorf("cannot mark the doubles: %w", err)
		}
		r.Marked, r.MarkedAt = true, &at
	}
	if err := batch.Send(); err != nil {
		return nil, fmt.Errorf("cannot mark the doubles: %w", err)
	}
	return todo, nil
}
