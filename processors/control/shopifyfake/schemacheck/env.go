package schemacheck

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"purchasesync/deploy/testenv"
)

// DevMCPVersion is the pinned version of the npm package @shopify/dev-mcp
// whose dist/data/admin_<version>.json.gz are the schemas (introspection
// results); deploy/local/shopify-schema.sh fetches the same version (a test
// checks).
const DevMCPVersion = "1.16.0"

// EnvDir names the folder holding admin_<version>.json.gz (the package's
// dist/data); deploy/local/shopify-schema.sh prints it, test.sh sets it.
const EnvDir = "PURCHASESYNC_SHOPIFY_SCHEMA_DIR"

// HowTo says how to get the schemas.
const HowTo = "fetch them with `eval \"$(deploy/local/shopify-schema.sh)\"` (npm pack @shopify/dev-mcp@" + DevMCPVersion +
	" into deploy/local/.cache/shopify-schema; deploy/local/test.sh does it), which sets " + EnvDir +
	", or point " + EnvDir + " at the dist/data folder of that package"

// File is the schema file of an Admin API version in dir.
func File(dir, version string) string { return filepath.Join(dir, "admin_"+version+".json.gz") }

// Dir returns the schema folder. When it is not configured, or holds no
// schema of version (of any version if version is ""), it fails the test under PURCHASESYNC_FUNCTIONAL_TESTS=1
// and returns "" otherwise (the caller skips, or runs unchecked).
func Dir(t testing.TB, version string) string {
	t.Helper()
	dir := os.Getenv(EnvDir)
	var problem string
	switch {
	case dir == "":
		problem = fmt.Sprintf("Shopify's Admin API schema not configured (%s unset)", EnvDir)
	case version == "":
		if files, _ := filepath.Glob(File(dir, "*")); len(files) > 0 {
			return dir
		}
		problem = fmt.Sprintf("no Shopify Admin API schema (admin_<version>.json.gz) in %s=%s", EnvDir, dir)
	default:
		_, err := os.Stat(File(dir, version))
		if err == nil {
			return dir
		}
		problem = fmt.Sprintf("no Shopify Admin API schema for %s in %s=%s: %v", version, EnvDir, dir, err)
	}
	if testenv.Required() {
		t.Fatalf("%s; it is required (PURCHASESYNC_FUNCTIONAL_TESTS=1): %s", problem, HowTo)
	}
	t.Logf("%s: %s", problem, HowTo)
	return ""
}

// ForTest returns the schema of an Admin API version, or skips the test
// (fails it under PURCHASESYNC_FUNCTIONAL_TESTS=1) when it is missing.
func ForTest(t testing.TB, version string) *ast.Schema {
	t.Helper()
	dir := Dir(t, version)
	if dir == "" {
		t.Skipf("no Shopify Admin API %s schema: %s", version, HowTo)
	}
	s, err := Load(File(dir, version))
	if err != nil {
		t.Fatalf("Shopify Admin API %s schema: %v", version, err)
	}
	return s
}
