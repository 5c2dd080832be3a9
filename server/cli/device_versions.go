package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// runDeviceUpgrade is 'fieldsync device upgrade': the tablet moves to the
// latest version of the forms the server serves (client.Upgrade).
func runDeviceUpgrade(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "upgrade")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long (the next sync completes the pull)")
	c, err := parseAndOpenDevice(fs, dir, args)
	if c == nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	up, err := c.Upgrade(ctx)
	if err != nil {
		if now, verr := c.SchemaVersion(ctx); verr == nil && now == up.To && now != up.From {
			return fmt.Errorf("upgrade: on schema version %d now, but the pull in it did not finish (the next sync completes it): %w", up.To, deviceError(*dir, err))
		}
		return fmt.Errorf("upgrade: %w", deviceError(*dir, err))
	}
	if up.To == up.From {
		fmt.Fprintf(env.Stdout, "on schema version %d already, the latest the server serves\n", up.To)
		return nil
	}
	fmt.Fprintf(env.Stdout, "on schema version %d now (was %d); pulled %d records in it", up.To, up.From, up.Pulled)
	if up.Sealed > 0 {
		fmt.Fprintf(env.Stdout, "; the %d edits made before stay in version %d and are pushed so by the next sync", up.Sealed, up.From)
	}
	fmt.Fprintln(env.Stdout)
	return nil
}

// runDeviceJudge is 'fieldsync device judge': a criterion of a record's
// form judged on the tablet's copy (client.Judge).
func runDeviceJudge(ctx context.Context, env Env, args []string) error {
	fs, dir := deviceFlags(env, "judge")
	id := fs.String("id", "", "the record's id")
	rule := fs.String("rule", "", "the criterion's name (an any_of rule of the record's form)")
	c, err := parseAndOpenDevice(fs, dir, args)
	if c == nil {
		return err
	}
	defer c.Close()
	if *id == "" || *rule == "" {
		return errors.New("give --id ID and --rule NAME")
	}
	j, err := c.Judge(ctx, strings.ToLower(*id), *rule)
	if err != nil {
		return deviceError(*dir, err)
	}
	fmt.Fprintf(env.Stdout, "%s: %s (decided by %s)\n", j.Rule, j.Verdict, j.Decided)
	return nil
}
