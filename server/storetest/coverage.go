package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"sort"

	"github.com/fieldsync/fieldsync/server/auth"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The guard of the suite's completeness: every method of every interface
// of the store contract is named, as "Interface.Method", by at least one
// contract test (the covers column of the suite's table). A method added to
// the contract later without a test naming it fails the suite, so that a
// store cannot pass it while a promise goes untested.

// contractInterface is one interface of the store contract. Methods it
// takes from base (the transactions' PushTx) are PushTx's, named and tested
// once.
type contractInterface struct {
	name string
	typ  reflect.Type
	base reflect.Type
}

// contractInterfaces are the interfaces a store implements: syncproto.Store
// and everything it embeds, the write transactions it hands to the
// services, and the accounts store.
var contractInterfaces = []contractInterface{
	{name: "Store", typ: reflect.TypeFor[syncproto.Store]()},
	{name: "PushTx", typ: reflect.TypeFor[syncproto.PushTx]()},
	{name: "ReplayTx", typ: reflect.TypeFor[syncproto.ReplayTx](), base: reflect.TypeFor[syncproto.PushTx]()},
	{name: "SuperviseTx", typ: reflect.TypeFor[syncproto.SuperviseTx](), base: reflect.TypeFor[syncproto.PushTx]()},
	{name: "Accounts", typ: reflect.TypeFor[auth.Accounts]()},
	// A store may keep the coverage aggregates (its tests skip a store
	// that does not).
	{name: "SummaryStore", typ: reflect.TypeFor[syncproto.SummaryStore]()},
	// And the kept verdicts (likewise).
	{name: "VerdictStore", typ: reflect.TypeFor[syncproto.VerdictStore]()},
	// And the registry-only households in the sums (likewise).
	{name: "RegistrySumStore", typ: reflect.TypeFor[syncproto.RegistrySumStore]()},
}

// ContractMethods returns every method of the store contract as
// "Interface.Method", sorted.
func ContractMethods() []string {
	return contractMethods(contractInterfaces)
}

func contractMethods(ifaces []contractInterface) []string {
	var out []string
	for _, c := range ifaces {
		for i := range c.typ.NumMethod() {
			m := c.typ.Method(i).Name
			if c.base != nil {
				if _, inherited := c.base.MethodByName(m); inherited {
					continue
				}
			}
			out = append(out, c.name+"."+m)
		}
	}
	sort.Strings(out)
	return out
}

// uncovered returns the methods of methods that no test of tests names, and
// the names tests declare that are no method of the contract (a typo, or a
// method since removed), each as a sentence.
func uncovered(methods []string, tests []contractTest) []string {
	named := map[string]bool{}
	var problems []string
	for _, tc := range tests {
		if len(tc.covers) == 0 {
			problems = append(problems, fmt.Sprintf("contract test %s names no method it covers", tc.name))
		}
		for _, m := range tc.covers {
			if !slices.Contains(methods, m) {
				problems = append(problems, fmt.Sprintf("contract test %s names %s, which is no method of the contract", tc.name, m))
			}
			named[m] = true
		}
	}
	for _, m := range methods {
		if !named[m] {
			problems = append(problems, fmt.Sprintf("%s has no contract test: add one to server/storetest and name it in its covers", m))
		}
	}
	return problems
}
