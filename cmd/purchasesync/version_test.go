package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
)

// TestVersion: `purchasesync version` names the Go version and, in a test
// binary without VCS stamps, says the commit is unknown rather than inventing
// one (the image test checks the stamped commit of a real build).
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"purchasesync", "version"}, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.HasPrefix(s, "purchasesync ") || !strings.Contains(s, "with "+runtime.Version()) || !strings.Contains(s, " commit ") {
		t.Errorf("version = %q, want the version, a commit and %s", s, runtime.Version())
	}
	v := buildVersion{Version: "v1.2.3", Commit: "abc", Time: "2026-12-03T00:00:00Z", Go: "go1.26.8", Modified: true}
	if got, want := v.String(), "purchasesync v1.2.3 commit abc (modified) built 2026-12-03T00:00:00Z with go1.26.8"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
