package console

import (
	"context"

	"github.com/fieldsync/fieldsync/syncproto"
)

// registryOnly returns the ids of the village's never-inspected
// households that only a registry lists (kept with the sums by the store,
// syncproto.ReportService.RegistryOnlyHouseholds): they have no record
// for the village page to link to.
func (c *Console) registryOnly(ctx context.Context, actor syncproto.Actor, village string) (map[string]bool, error) {
	list, err := c.cfg.Reports.RegistryOnlyHouseholds(ctx, actor, village)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	out := make(map[string]bool, len(list))
	for _, m := range list {
		out[m.ID] = true
	}
	return out, nil
}
