package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDispatch(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	var out bytes.Buffer
	if err := run(context.Background(), []string{"purchasesync"}, env(nil), &out); err != nil || !strings.Contains(out.String(), "replay") {
		t.Fatalf("no subcommand: err %v, usage %q", err, out.String())
	}
	if err := run(context.Background(), []string{"purchasesync", "nope"}, env(nil), &out); err == nil {
		t.Fatal("unknown subcommand accepted")
	}
	if err := run(context.Background(), []string{"purchasesync", "join", "-h"}, env(nil), &out); err != nil {
		t.Fatalf("-h is not a failure: %v", err)
	}
	// A malformed environment value is an error naming the variable.
	err := run(context.Background(), []string{"purchasesync", "join"}, env(map[string]string{"PURCHASESYNC_JOIN_WEBHOOKWAIT": "banana"}), &out)
	if err == nil || !strings.Contains(err.Error(), "PURCHASESYNC_JOIN_WEBHOOKWAIT") {
		t.Fatalf("bad env value: err = %v", err)
	}
	if err := run(context.Background(), []string{"purchasesync", "replay"}, env(nil), &out); err == nil || !strings.Contains(err.Error(), "-replay.from") {
		t.Fatalf("replay without -replay.from: err = %v", err)
	}
}
