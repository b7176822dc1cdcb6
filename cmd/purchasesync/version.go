package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// buildVersion is what `purchasesync version` prints, from the build
// information the Go toolchain stamps into every binary built in a git
// checkout (module version from the commit, vcs.revision, vcs.modified), so
// no -ldflags variable is needed and an image's binary says which commit it
// is.
type buildVersion struct {
	Version, Commit, Time, Go string
	Modified                  bool
}

func readBuildVersion() buildVersion {
	v := buildVersion{Version: "unknown", Commit: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Go = bi.GoVersion
	if bi.Main.Version != "" {
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
	return v
}

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
