package sqlite

import (
	"context"
	"strings"
	"testing"

	"github.com/fieldsync/fieldsync/server/storetest"
)

// A statement whose Prepare fails (here: its table is gone) reports the
// failure through the row's Scan, as an error of the call that ran it,
// rather than retrying itself until the stack overflows and the process
// dies past any recover.
func TestPushTxQueryRowReportsAFailedPrepare(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t, storetest.NewClock(storetest.T0))
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DROP TABLE receipts`); err != nil {
		t.Fatal(err)
	}
	p := &pushTx{tx: tx}
	r, err := p.Receipt(ctx, "00000000-0000-4000-8000-000000000000")
	if err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("Receipt with its table gone = %v, %v; want the error naming the missing table", r, err)
	}
	if _, ok := p.stmts[`SELECT changeset_id`]; ok || len(p.stmts) != 0 {
		t.Fatalf("a statement that failed to prepare was kept: %d kept", len(p.stmts))
	}
}
