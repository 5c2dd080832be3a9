package pgtest

import (
	"fmt"
	"strings"
)

// RestartImmediate restarts the cluster as a crash would: pg_ctl restart
// --mode immediate stops every server process without a checkpoint (the
// next start replays the WAL) and starts it again with the same options,
// on the same port. Every open connection is cut.
func (c *Cluster) RestartImmediate() error {
	out, err := c.run("pg_ctl", "restart", "--pgdata", c.data(), "--mode", "immediate", "--wait", "--timeout", "60",
		"--log", c.logf)
	if err != nil {
		return fmt.Errorf("pg_ctl restart: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
