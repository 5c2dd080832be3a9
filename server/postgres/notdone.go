package postgres

import (
	"context"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Snapshot is not implemented yet (see the package documentation): it
// returns ErrNotImplemented without calling the sink.
func (s *Store) Snapshot(ctx context.Context, actor syncproto.Actor, q syncproto.SnapshotQuery, sink syncproto.SnapshotSink) error {
	return notDone("Snapshot")
}
