package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
}

// TestBaselineRun drives the in-process baseline for a bounded count and
// checks the report's figures.
func TestBaselineRun(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-baseline", "-target", "", "-secret", "x", "-scenario", "both",
		"-requests", "300", "-pool", "100", "-concurrency", "4", "-quiet"}, func(string) string { return "" }, &out)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"baseline", "webhook", "storefront", "200:150", "scenario both"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}
