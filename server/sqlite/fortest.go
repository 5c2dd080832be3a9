package sqlite

import (
	"context"
	"fmt"
)

// SetMaxPageCountForTest is for tests only: it sets PRAGMA max_page_count
// on the writer connection, so that a test can make the database unable to
// grow (a full disk) and then give it room again. pages ≤ 0 means the
// database's current size: the next write that needs a new page fails with
// SQLITE_FULL. It returns the limit now in force (SQLite never sets it below
// the current size). The limit lasts as long as the writer connection,
// which is the store's lifetime.
func (s *Store) SetMaxPageCountForTest(ctx context.Context, pages int64) (int64, error) {
	if pages <= 0 {
		if err := s.writer.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			return 0, fmt.Errorf("page_count: %w", err)
		}
	}
	var limit int64
	if err := s.writer.QueryRowContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)).Scan(&limit); err != nil {
		return 0, fmt.Errorf("max_page_count: %w", err)
	}
	return limit, nil
}
