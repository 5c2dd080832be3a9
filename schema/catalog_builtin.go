package schema

import "fmt"

// BuiltInThrough returns versions 1 to n of the built-in form set as a set
// of their own: what a server whose latest version is n serves. Tests of
// version 1's behaviour (its thresholds, its error messages) serve
// BuiltInThrough(1) rather than assume that 1 is the latest. It panics
// when n is not a built-in version.
func BuiltInThrough(n int) *Catalog {
	c := BuiltIn()
	if c.Version(n) == nil {
		panic(fmt.Sprintf("schema: the built-in set has no version %d", n))
	}
	return &Catalog{versions: c.versions[:n:n], infos: c.infos[:n:n], docs: c.docs[:n:n], ups: c.ups[: n-1 : n-1]}
}
