package cli

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at link time by the Makefile:
//
//	-ldflags "-X github.com/warren-orchestrator/warren/cmd/warren/cli.Version=v0.1.0
//	          -X github.com/warren-orchestrator/warren/cmd/warren/cli.Commit=abc1234"
var (
	// Version is the release version; "dev" when not set at link time.
	Version = ""
	// Commit is the git commit; falls back to the build's vcs.revision.
	Commit = ""
)

// BuildInfo describes the running binary; its JSON and YAML forms are the
// output of `warren version -o json|yaml`.
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// CurrentBuildInfo reports the link-time version and commit, falling back to
// what the Go toolchain embedded in the binary.
func CurrentBuildInfo() BuildInfo {
	info := BuildInfo{
		Version:   Version,
		Commit:    Commit,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version // set by `go install ...@vX.Y.Z`
		}
		if info.Commit == "" {
			info.Commit = vcsRevision(bi.Settings)
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

func vcsRevision(settings []debug.BuildSetting) string {
	var rev, suffix string
	for _, s := range settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			suffix = "-dirty"
		}
	}
	if rev == "" {
		return ""
	}
	return rev + suffix
}

func newVersionCommand(opts *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, git commit, Go version and platform of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := CurrentBuildInfo()
			return printObject(cmd.OutOrStdout(), opts.Output, info, []field{
				{"Version", info.Version},
				{"Git commit", info.Commit},
				{"Go version", info.GoVersion},
				{"OS/Arch", info.OS + "/" + info.Arch},
			})
		},
	}
}
