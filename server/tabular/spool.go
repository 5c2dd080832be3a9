package tabular

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is Spool's error for a body of more bytes than its limit.
var ErrTooLarge = errors.New("the file is larger than the limit")

// Spool copies r into a new temporary file, at most limit bytes
// (ErrTooLarge beyond, and the file is gone), and returns the file's path
// for Open. The caller removes the file. An upload is spooled so that its
// SHA-256 is known before any row is read, as Open reads a file twice.
func Spool(r io.Reader, limit int64) (string, error) {
	tmp, err := os.CreateTemp("", "fieldsync-import-*")
	if err != nil {
		return "", fmt.Errorf("import spool: %w", err)
	}
	n, err := io.Copy(tmp, io.LimitReader(r, limit+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > limit {
		err = ErrTooLarge
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}
