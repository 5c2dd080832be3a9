package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/fieldsync/fieldsync/server/auth"
)

// runKeyRotate is fieldsync key rotate: a new signing key becomes current;
// tokens signed with the last auth.KeepKeys-1 keys stay valid until they
// expire.
func runKeyRotate(_ context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "key rotate")
	data := fs.String("data", "data", "data directory")
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	// A data directory of a server on PostgreSQL (serve --store) holds
	// keys but no database file: its keys/ is proof enough that --data is
	// not mistyped.
	if _, err := os.Stat(filepath.Join(*data, "keys")); err != nil {
		if err := mustHaveDatabase(*data); err != nil {
			return err
		}
	}
	if err := prepareDataDir(*data); err != nil {
		return err
	}
	kid, err := auth.RotateKey(*data)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "new signing key %s is current; tokens signed with the last %d keys stay valid until they expire, older keys' tokens no longer verify\n", kid, auth.KeepKeys-1)
	return nil
}
