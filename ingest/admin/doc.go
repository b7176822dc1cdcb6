// Package admin is the admin API of the site registry (DESIGN §6), served on
// the ops listener under /admin/v1/:
//
//	GET    /admin/v1/sites                          every site record, {"sites": [...]}
//	GET    /admin/v1/sites/{site}                   one site record
//	PUT    /admin/v1/sites/{site}                   create or replace (operator's direct write, no Shopify call)
//	DELETE /admin/v1/sites/{site}                   remove (tombstone); refused while syncing is on unless ?force=true
//	POST   /admin/v1/sites/{site}/purchase-syncing  {"enabled": bool}: the Shopify switch of DESIGN §7;
//	                                                enabling is refused (409, field order_key) while the
//	                                                order-key evidence contradicts the site's mode, unless ?force=true
//	GET    /admin/v1/sites/{site}/diagnosis         the order-key diagnosis (schemas.KeyModeDiagnosis)
//	GET    /admin/v1/sites/{site}/doubles           suspected double registrations, from ClickHouse, {"doubles": [...]}
//	POST   /admin/v1/sites/{site}/doubles/mark      {"by", "note"}: mark the unmarked ones (nothing is deleted); returns them
//
// Every request needs "Authorization: Bearer <token>" (PURCHASESYNC_ADMIN_TOKEN),
// compared in constant time. Without a configured token the API refuses
// everything with 503, so a forgotten token never means an open registry.
//
// Errors are JSON {"error": "...", "field": "..."}; field is set when one
// input field is at fault.
//
// A write returns only once the registry the handler reads (sites.v1 as
// followed by this process) shows it, bounded by the writer's visible
// timeout (processors/sites.Config.VisibleTimeout), so a GET right after a
// PUT sees the new record.
//
// The package depends on small interfaces (SiteReader, SiteWriter, Syncing)
// that cmd fills with processors/sites and processors/control; it imports no
// other stage.
//
// Client is the other end of that wire format, the `purchasesync sites`
// CLI's: typed calls, the read-modify-write of a partial update (Update),
// and APIError for an answer other than 2xx.
//
// Metrics (prefix given by the registerer, purchasesync_admin_ in cmd):
// requests_total{route,code}, write_visible_timeouts_total.
package admin
