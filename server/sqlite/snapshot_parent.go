package sqlite

import (
	"context"

	"github.com/fieldsync/fieldsync/syncproto"
)

// parentAt returns the record id names (a row's parent, such as an
// inspection's household) as it was at the snapshot's point, or nil when it
// did not exist then. One lookup by primary key per row, through a
// statement prepared once, in the snapshot's transaction: memory holds one
// parent at a time, whatever the size of the region.
func (sn *snapshotTx) parentAt(ctx context.Context, id string) (*syncproto.StoredRecord, error) {
	st, err := sn.stmt(ctx, `SELECT `+snapshotColumns+` FROM records r WHERE r.id = ?`)
	if err != nil {
		return nil, err
	}
	found, err := sn.collect(ctx, st, id)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	p := found[0]
	if p.seq > sn.at {
		existed, err := sn.rebuild(ctx, &p.rec)
		if err != nil || !existed {
			return nil, err
		}
	}
	return &p.rec, nil
}

// withParent adds the row's parent when the query asks for parents.
func (sn *snapshotTx) withParent(ctx context.Context, row *syncproto.SnapshotRow) error {
	if !sn.q.Parents || row.Record.Parent == "" {
		return nil
	}
	var err error
	row.Parent, err = sn.parentAt(ctx, row.Record.Parent)
	return err
}
