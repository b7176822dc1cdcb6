package container

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"purchasesync/deploy/testenv"
)

const (
	secret = "image-test-secret"
	token  = "image-test-admin-token"
)

// engine is the one build.sh used: podman (with the project's
// containers.conf) if installed (build.sh installs it), else docker.
func engine(t *testing.T) (string, []string) {
	here := filepath.Join(testenv.RepoRoot(), "deploy", "container")
	if p, err := exec.LookPath("podman"); err == nil {
		env := os.Environ()
		if os.Getenv("CONTAINERS_CONF") == "" {
			env = append(env, "CONTAINERS_CONF="+filepath.Join(here, "containers.conf"))
		}
		return p, env
	}
	if p, err := exec.LookPath("docker"); err == nil {
		return p, os.Environ()
	}
	t.Fatal("neither podman nor docker is installed; deploy/container/build.sh installs podman")
	return "", nil
}

// TestImage builds the image with build.sh, starts `purchasesync run` in it
// against the local stack (--network=host, read-only root filesystem, no
// capabilities, no privilege escalation), waits for /readyz, registers a
// site through the admin API, sends one signed orders/create webhook and
// waits for its purchase in ClickHouse. The container must run as the
// image's non-root user, and `version` must name the commit it was built
// from.
func TestImage(t *testing.T) {
	brokers := testenv.Kafka(t) // skips (or fails under test.sh) without the stack
	chAddr := testenv.ClickHouse(t)
	root := testenv.RepoRoot()
	out, err := exec.Command("bash", filepath.Join(root, "deploy", "container", "build.sh")).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("build.sh: %v\n%s", err, stderr)
	}
	image := strings.TrimSpace(string(out))
	eng, env := engine(t)
	podman := func(args ...string) (string, error) {
		cmd := exec.Command(eng, args...)
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(b)), err
	}

	// version: the commit of this checkout.
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.TrimSpace(string(head))
	// build.sh stamps the version it tags the image with.
	version := strings.TrimPrefix(image, "localhost/purchasesync:")
	v, err := podman("run", "--rm", "--network=host", image, "version")
	if err != nil || !strings.HasPrefix(v, "purchasesync "+version+" commit "+commit+" ") || !strings.Contains(v, "with go1.") {
		t.Errorf("version in the image: %q (%v), want version %s, commit %s and the Go version", v, err, version, commit)
	}

	name := testenv.Name(t)
	ingest, ops := testenv.FreeAddr(t), testenv.FreeAddr(t)
	ctr := "purchasesync-test-" + strings.ReplaceAll(name, "_", "-")
	args := []string{"run", "-d", "--name", ctr, "--network=host", "--read-only", "--cap-drop=ALL",
		"--security-opt", "no-new-privileges",
		"-e", "PURCHASESYNC_SHOPIFY_API_SECRET=" + secret, "-e", "PURCHASESYNC_ADMIN_TOKEN=" + token,
		"-e", "PURCHASESYNC_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"-e", "PURCHASESYNC_CLICKHOUSE_ADDR=" + chAddr,
		image, "run", "-kafka.topicPrefix", name + ".", "-kafka.partitions", "2",
		"-clickhouse.database", name, "-ingest.addr", ingest, "-ops.addr", ops,
		"-join.group", name + "-join", "-join.instance", name, "-sink.group", name + "-sink", "-log.level", "warn"}
	if id, err := podman(args...); err != nil {
		t.Fatalf("%s run: %v\n%s", eng, err, id)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := podman("logs", ctr)
			t.Logf("container log:\n%s", logs)
		}
		podman("rm", "-f", "-t", "10", ctr)
	})

	testenv.Eventually(t, 90*time.Second, "the container's /readyz", func() bool {
		resp, err := http.Get("http://" + ops + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	// The metric says what `version` says: one stamp.
	resp, err := http.Get("http://" + ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `revision="` + commit + `"`; !bytes.Contains(metrics, []byte(want)) || !bytes.Contains(metrics, []byte(`version="`+version+`"`)) {
		t.Errorf("purchasesync_build_info lacks %s and version=%q:\n%s", want, version, grepLines(metrics, "build_info"))
	}
	insp, err := podman("inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}", ctr)
	if err != nil || insp != "65532:65532 true" {
		t.Errorf("container user and read-only root: %q (%v), want \"65532:65532 true\"", insp, err)
	}
	// huser is the uid on the host (podman runs rootful here, no user namespace).
	top, err := podman("top", ctr, "huser", "user")
	lines := strings.Split(top, "\n")
	if err != nil || len(lines) < 2 {
		t.Errorf("podman top: %q (%v)", top, err)
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) != 2 || f[0] != "65532" || f[1] != "nonroot" {
			t.Errorf("a container process runs as %q, want 65532 nonroot", l)
		}
	}

	do := func(method, url string, hdr map[string]string, body string) int {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do("PUT", "http://"+ops+"/admin/v1/sites/img", map[string]string{"Authorization": "Bearer " + token},
		`{"shop_domain":"img-store.myshopify.com","order_key":"order_id","purchase_syncing":true,"grace":"1s"}`); code != 200 {
		t.Fatalf("PUT site: %d", code)
	}
	const id = "820982911946154508"
	order := `{"id":` + id + `,"name":"#1001","order_number":1001,"email":"jane@example.com","presentment_currency":"USD",` +
		`"subtotal_price_set":{"presentment_money":{"amount":"23.97","currency_code":"USD"}},"line_items":[{"product_id":1,"title":"Mug","price":"23.97","quantity":1}]}`
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(order))
	hdr := map[string]string{"Content-Type": "application/json", "X-Shopify-Topic": "orders/create",
		"X-Shopify-Hmac-Sha256": base64.StdEncoding.EncodeToString(m.Sum(nil)), "X-Shopify-Shop-Domain": "img-store.myshopify.com",
		"X-Shopify-Webhook-Id": "img-1", "X-Shopify-API-Version": "2025-10"}
	// The registry follows sites.v1: retry until the site is known.
	testenv.Eventually(t, 30*time.Second, "the webhook accepted", func() bool {
		return do("POST", "http://"+ingest+"/webhooks/shopify", hdr, order) == 200
	})

	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{chAddr}, Auth: clickhouse.Auth{Database: name}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	testenv.Eventually(t, 60*time.Second, "the purchase in ClickHouse", func() bool {
		var via string
		err := conn.QueryRow(context.Background(), "SELECT registered_via FROM purchases FINAL WHERE order_number = ?", id).Scan(&via)
		return err == nil && via == "webhook"
	})
	var b bytes.Buffer
	fmt.Fprintf(&b, "image %s ran as %s", image, insp)
	t.Log(b.String())
}

// grepLines returns the lines of b that contain word.
func grepLines(b []byte, word string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
