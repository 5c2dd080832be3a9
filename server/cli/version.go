package cli

import (
	"context"
	"fmt"
	"runtime"
)

// runVersion is fieldsync version: the build's version and the Go version it
// was built with.
func runVersion(_ context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "version")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	fmt.Fprintf(env.Stdout, "fieldsync %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
