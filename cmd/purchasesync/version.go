package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	promversion "github.com/prometheus/common/version"
)

// buildVersion is what `purchasesync version` prints and what the
// purchasesync_build_info metric carries.
//
// deploy/container/build.sh stamps it from git with -ldflags into
// github.com/prometheus/common/version (Version, Revision, BuildDate), the
// variables client_golang's build-info collector reads, so the binary and
// its metric say the same thing. A binary built without them (go build, go
// test) falls back to what the Go toolchain stamped: the module version
// and vcs.revision of a git checkout. (The toolchain stamps nothing in a git
// worktree, whose .git is a file, or with -buildvcs=false: hence -ldflags.)
type buildVersion struct {
	Version, Commit, Time, Go string
	Modified                  bool
}

// The -ldflags stamps, as linked (before stampBuildInfo fills the rest).
var ldVersion, ldRevision, ldBuildDate = promversion.Version, promversion.Revision, promversion.BuildDate

func readBuildVersion() buildVersion {
	v := buildVersion{Version: "unknown", Commit: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Go = bi.GoVersion
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	// -ldflags stamps win over the toolchain's.
	if ldVersion != "" {
		v.Version, v.Modified = ldVersion, false // build.sh's version says -dirty itself
	}
	if ldRevision != "" {
		v.Commit = ldRevision
	}
	if ldBuildDate != "" {
		v.Time = ldBuildDate
	}
	return v
}

// stampBuildInfo fills the build-info collector's variables that -ldflags
// left empty from the toolchain's stamp, so purchasesync_build_info has a
// version and revision however the binary was built.
// Once: tests build many registries at a time.
var stampBuildInfo = sync.OnceFunc(func() {
	v := readBuildVersion()
	if promversion.Version == "" {
		promversion.Version = v.Version
	}
	if promversion.Revision == "" {
		promversion.Revision = v.Commit
	}
	if promversion.BuildDate == "" {
		promversion.BuildDate = v.Time
	}
})

func (v buildVersion) String() string {
	dirty := ""
	if v.Modified {
		dirty = " (modified)"
	}
	return fmt.Sprintf("purchasesync %s commit %s%s built %s with %s", v.Version, v.Commit, dirty, v.Time, v.Go)
}

func cmdVersion(_ context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("version", getenv)
	if err := fs.parse(args); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, readBuildVersion())
	return err
}
