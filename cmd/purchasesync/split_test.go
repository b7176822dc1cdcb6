package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"purchasesync/deploy/testenv"
	"purchasesync/schemas"
)

// TestSplitDeploymentControlPlane runs the stages as separate processes,
// as a split deployment does: `migrate`, then `control` and `ingest`. A site
// written through control's admin API must reach the ingest's registry
// through sites.v1 (the ingest then accepts the site's storefront events),
// and `purchasesync sites` must manage it through control.
func TestSplitDeploymentControlPlane(t *testing.T) {
	brokers := testenv.Kafka(t)
	chAddr := testenv.ClickHouse(t)
	bin := buildBinary(t)
	name := testenv.Name(t)
	topics := schemas.Topics{Prefix: name + "."}
	t.Cleanup(func() { dropTestData(brokers, chAddr, name, topics) })
	common := []string{"-kafka.brokers", strings.Join(brokers, ","), "-kafka.topicPrefix", topics.Prefix, "-log.format", "text", "-log.level", "warn"}
	env := []string{"PURCHASESYNC_SHOPIFY_API_SECRET=" + e2eSecret, "PURCHASESYNC_ADMIN_TOKEN=" + e2eToken}

	migrate := exec.Command(bin, append([]string{"migrate", "-kafka.partitions", "2", "-clickhouse.addr", chAddr, "-clickhouse.database", name}, common...)...)
	migrate.Env = append(os.Environ(), env...)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	start := func(args ...string) { testenv.Start(t, bin, append(args, common...), env...) }
	controlOps, ingestAddr, ingestOps := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	start("control", "-ops.addr", controlOps, "-clickhouse.addr", chAddr, "-clickhouse.database", name)
	start("ingest", "-ingest.addr", ingestAddr, "-ops.addr", ingestOps)
	testenv.WaitHTTP200(t, "http://"+controlOps+"/readyz", 60*time.Second)
	testenv.WaitHTTP200(t, "http://"+ingestOps+"/readyz", 60*time.Second)

	sites := exec.Command(bin, "sites", "put", "split", "-shop", "split-store.myshopify.com", "-order-key", "order_id",
		"-admin.url", "http://"+controlOps, "-o", "json")
	sites.Env = append(os.Environ(), env...)
	if out, err := sites.CombinedOutput(); err != nil || !strings.Contains(string(out), `"split-store.myshopify.com"`) {
		t.Fatalf("sites put through control: %v\n%s", err, out)
	}
	event := []byte(`{"purchase":{"order_number":"1001","subtotal":"9.99"},"customer":{"email":"jane@example.com"}}`)
	testenv.Eventually(t, 30*time.Second, "the ingest knows the site written through control", func() bool {
		return httpDo(t, "POST", "http://"+ingestAddr+"/v1/sites/split/purchases", map[string]string{"Content-Type": "application/json"}, event) == 202
	})
	if code := httpDo(t, "GET", "http://"+ingestOps+"/admin/v1/sites", map[string]string{"Authorization": "Bearer " + e2eToken}, nil); code != 404 {
		t.Errorf("the ingest's ops listener answers the admin API with %d; only control (or run) serves it", code)
	}
}
