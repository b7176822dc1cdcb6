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

// TestVersionStamp: the -ldflags stamps (what deploy/container/build.sh
// sets) win over the toolchain's; without them the version is still printed.
func TestVersionStamp(t *testing.T) {
	print := func() string {
		var b bytes.Buffer
		if err := cmdVersion(context.Background(), nil, func(string) string { return "" }, &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if got := print(); !strings.HasPrefix(got, "purchasesync ") || !strings.Contains(got, " with go1.") {
		t.Errorf("unstamped version: %q", got)
	}
	saved := [3]string{ldVersion, ldRevision, ldBuildDate}
	t.Cleanup(func() { ldVersion, ldRevision, ldBuildDate = saved[0], saved[1], saved[2] })
	ldVersion, ldRevision, ldBuildDate = "v1.2.3-dirty", "0123abcd", "2026-12-03T13:00:00Z"
	if got, want := print(), "purchasesync v1.2.3-dirty commit 0123abcd built 2026-12-03T13:00:00Z with go1."; !strings.HasPrefix(got, want) {
		t.Errorf("stamped version: %q, want %q...", got, want)
	}
}
