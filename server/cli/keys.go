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
// expire. With --store the keys are the PostgreSQL database's, shared by
// every instance on it.
func runKeyRotate(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "key rotate")
	data := fs.String("data", "data", "data directory")
	storeURL := fs.String("store", "", storeUsage)
	if err := parseFlags(fs, args); err != nil || helpAsked(args) {
		return err
	}
	var kid string
	if *storeURL != "" {
		if err := checkStore(*storeURL); err != nil {
			return err
		}
		pg, err := openPostgres(ctx, *storeURL, 0)
		if err != nil {
			return err
		}
		defer pg.Close()
		if kid, err = auth.RotateSharedKey(ctx, pg); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "new signing key %s is current for every server on the database; tokens signed with the last %d keys stay valid until they expire, older keys' tokens no longer verify\n", kid, auth.KeepKeys-1)
		return nil
	}
	// A data directory of a server on PostgreSQL (serve --store) holds
	// no database file and, its keys being in the database, no keys/.
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
