//go:build !unix

package sqlite

// InUse reports whether another process has the database file at path
// open. On this platform it cannot tell and always answers false: stop the
// server before a restore.
func InUse(path string) (bool, error) { return false, nil }
