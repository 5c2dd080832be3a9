package storetest

import (
	"reflect"
	"slices"
	"testing"
)

// TestEveryContractMethodHasATest is the guard without a store: the suite's
// table names every method of the contract, and names only methods.
func TestEveryContractMethodHasATest(t *testing.T) {
	for _, p := range uncovered(ContractMethods(), suite) {
		t.Error(p)
	}
}

// TestGuardFindsAnUntestedMethod: the guard reports a method of an
// interface that no test names, a test naming no method, and a name that is
// no method; PushTx's methods are not asked again of the transactions that
// embed it.
func TestGuardFindsAnUntestedMethod(t *testing.T) {
	type base interface{ Shared() }
	type extended interface {
		base
		Own()
		Untested()
	}
	methods := contractMethods([]contractInterface{
		{name: "Base", typ: reflect.TypeFor[base]()},
		{name: "Extended", typ: reflect.TypeFor[extended](), base: reflect.TypeFor[base]()},
	})
	if want := []string{"Base.Shared", "Extended.Own", "Extended.Untested"}; !slices.Equal(methods, want) {
		t.Fatalf("methods %v, want %v", methods, want)
	}
	got := uncovered(methods, []contractTest{
		{name: "A", covers: []string{"Base.Shared", "Extended.Own", "Extended.Gone"}},
		{name: "B"},
	})
	want := []string{
		"contract test A names Extended.Gone, which is no method of the contract",
		"contract test B names no method it covers",
		"Extended.Untested has no contract test: add one to server/storetest and name it in its covers",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("guard said\n%q\nwant\n%q", got, want)
	}
}
