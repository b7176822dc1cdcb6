package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	for target, ok := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://localhost:8080": true, "http://[::1]:8080": true,
		"http://192.0.2.1:8080": false, "http://10.0.0.1": false, "https://127.0.0.1:8080": false, "127.0.0.1:8080": false,
	} {
		if err := checkLoopback(target); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", target, err, ok)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	env := func(string) string { return "" }
	for _, args := range [][]string{
		{"-scenario", "webhook"},                                // no secret
		{"-secret", "x", "-duration", "0"},                      // unbounded
		{"-secret", "x", "-scenario", "nope"},                   //
		{"-secret", "x", "-target", "http://192.0.2.1:8080"},    // not loopback
		{"-secret", "x", "-orderKey", "sku"},                    //
		{"-secret", "x", "-target", "", "-scenario", "webhook"}, // nothing to do
	} {
		if _, err := parse(args, env, &bytes.Buffer{}); err == nil {
			t.Errorf("parse(%q) succeeded", args)
		}
	}
	o, err := parse([]string{"-scenario", "both", "-requests", "10"}, func(k string) string {
		return map[string]string{"PURCHASESYNC_SHOPIFY_API_SECRET": "a,b"}[k]
	}, &bytes.Buffer{})
	if err != nil || o.secret != "a" || o.shop != "demo.myshopify.com" || o.pool != 10 {
		t.Fatalf("parse: %+v %v", o, err)
	}
	// The secret from its file, as purchasesync reads it; not from both.
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte("f1,f2\n"), 0o600)
	env2 := map[string]string{"PURCHASESYNC_SHOPIFY_API_SECRET_FILE": file}
	if o, err := parse([]string{"-requests", "10"}, func(k string) string { return env2[k] }, &bytes.Buffer{}); err != nil || o.secret != "f1" {
		t.Errorf("secret from PURCHASESYNC_SHOPIFY_API_SECRET_FILE: %q %v", o.secret, err)
	}
	env2["PURCHASESYNC_SHOPIFY_API_SECRET"] = "e"
	if _, err := parse([]string{"-requests", "10"}, func(k string) string { return env2[k] }, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "PURCHASESYNC_SHOPIFY_API_SECRET_FILE") {
		t.Errorf("both set: %v", err)
	}
}

// TestBaselineRun drives the baseline, in a child process and in-process,
// for a bounded count and checks the report's figures and where the server
// ran.
func TestBaselineRun(t *testing.T) {
	for _, inprocess := range []bool{false, true} {
		t.Run(modeName(inprocess), func(t *testing.T) {
			o, err := parse(append([]string{"-baseline", "-target", "", "-secret", "x", "-scenario", "both",
				"-requests", "300", "-pool", "100", "-concurrency", "4", "-quiet"}, modeArgs(inprocess)...),
				func(string) string { return "" }, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			pid := 0
			o.onServer = func(name, _ string, p int) { pid = p }
			var out bytes.Buffer
			if err := execute(context.Background(), o, &out); err != nil {
				t.Fatal(err)
			}
			s := out.String()
			for _, want := range []string{"baseline", "webhook", "storefront", "200:150", "scenario both"} {
				if !strings.Contains(s, want) {
					t.Errorf("report lacks %q:\n%s", want, s)
				}
			}
			if inprocess != (pid == os.Getpid()) || pid == 0 {
				t.Errorf("the baseline ran in pid %d; loadgen is %d", pid, os.Getpid())
			}
		})
	}
}

// TestMain runs the child process's serve mode when loadgen re-executes
// itself (here: the test binary) with $LOADGEN_SERVE set, and a stand-in
// parent for TestChildOutlivesNoParent.
func TestMain(m *testing.M) {
	if mode := os.Getenv(envServe); mode != "" {
		os.Exit(serveMain(mode))
	}
	if os.Getenv(envTestParent) == "1" {
		os.Exit(testParent())
	}
	os.Exit(m.Run())
}

// envTestParent makes the test binary a loadgen parent that starts a
// baseline child, prints "child PID ADDR" and waits to be killed.
const envTestParent = "LOADGEN_TEST_PARENT"

func testParent() int {
	srv, err := startChild(context.Background(), serveBaseline, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("child %d %s\n", srv.pid, srv.addr)
	time.Sleep(time.Hour)
	return 0
}

func modeName(inprocess bool) string {
	if inprocess {
		return "inprocess"
	}
	return "child"
}

func modeArgs(inprocess bool) []string {
	if inprocess {
		return []string{"-inprocess"}
	}
	return nil
}

// TestMismatchShare: -mismatch drifts about its share of the purchases,
// every kind of drift occurs, and 0 drifts none.
func TestMismatchShare(t *testing.T) {
	kinds := map[string]int{}
	n := 0
	for i := range 20000 {
		if d := drift(i, 0.1); d != "" {
			n++
			kinds[d]++
		}
		if drift(i, 0) != "" {
			t.Fatal("-mismatch 0 drifted a purchase")
		}
	}
	if n < 1800 || n > 2200 || len(kinds) != 4 {
		t.Fatalf("-mismatch 0.1 drifted %d of 20000 purchases, kinds %v", n, kinds)
	}
	if _, err := parse([]string{"-mismatch", "1.5", "-secret", "x"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("-mismatch 1.5 accepted")
	}
}
