package main

import (
	"os/exec"
	"strings"
	"testing"

	"purchasesync/deploy/testenv"
)

// goList runs go list with a template over patterns, from the repository.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// testSupport tells the packages that exist for tests: fakes and harnesses
// (…test, …fake and what lives under them, deploy/testenv).
func testSupport(pkg string) bool {
	for _, part := range strings.Split(pkg, "/") {
		if part != "purchasesync" && (strings.HasSuffix(part, "test") || strings.HasSuffix(part, "fake")) {
			return true
		}
	}
	return strings.HasPrefix(pkg, "purchasesync/deploy/")
}

// TestBinaryHoldsNoTestSupport: no fake or test harness is compiled into
// the production binary (the review's "a release build cannot even compile
// them in by mistake", checked instead of a build tag).
func TestBinaryHoldsNoTestSupport(t *testing.T) {
	for _, dep := range goList(t, "-deps", "-f", "{{.ImportPath}}", "purchasesync/cmd/purchasesync") {
		if (strings.HasPrefix(dep, "purchasesync/") && testSupport(dep)) || dep == "testing" {
			t.Errorf("the purchasesync binary imports %s", dep)
		}
	}
}

// stageOf is the stage a package belongs to (ingest, processors/join,
// sinks/clickhouse …), its area's shared internal folder, or "" for the
// contract (schemas) and everything else.
func stageOf(pkg string) (stage, internal string) {
	p := strings.Split(strings.TrimPrefix(pkg, "purchasesync/"), "/")
	switch {
	case p[0] == "ingest":
		return "ingest", ""
	case (p[0] == "processors" || p[0] == "sinks") && len(p) > 1:
		return p[0] + "/" + p[1], p[0] + "/internal"
	}
	return "", ""
}

// TestImportsFlowOneWay: production code of a stage imports only the
// contract (schemas/…), its own packages and its area's internal ones;
// never another stage, cmd or test support (README "Architecture").
func TestImportsFlowOneWay(t *testing.T) {
	lines := goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}",
		"purchasesync/ingest/...", "purchasesync/processors/...", "purchasesync/sinks/...", "purchasesync/schemas/...")
	checked := 0
	for _, line := range lines {
		f := strings.Fields(line)
		pkg, imports := f[0], f[1:]
		if testSupport(pkg) {
			continue
		}
		stage, internal := stageOf(pkg)
		for _, imp := range imports {
			if !strings.HasPrefix(imp, "purchasesync/") {
				continue
			}
			checked++
			is, _ := stageOf(imp)
			switch {
			case strings.HasPrefix(imp, "purchasesync/schemas") && !testSupport(imp):
			case stage != "" && is == stage:
			case internal != "" && strings.HasPrefix(imp, "purchasesync/"+internal+"/"):
			default:
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d imports checked: is go list's output what this test expects?", checked)
	}
}
