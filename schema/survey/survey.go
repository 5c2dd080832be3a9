// Package survey says what the survey's records mean: coverage (who was
// visited, who is a blind spot), the re-inspection list (which appraisals are
// due and why), the relapse watch (which households lifted out of poverty
// are at risk again), duplicate visits, and the water-safety verdict. It is
// domain code over the forms of package schema: it may import schema and the
// standard library only — not syncproto, no SQL, no HTTP. Stores feed it
// households with their inspections (HouseholdInspections); the store
// contract that serves the reports (syncproto.ReportStore) refers to its
// types, never the reverse.
//
// Which forms, fields and values the analytics read, the forms declare by
// their roles (schema.Role); forms.go reads them (FormsOf).
package survey

// Unset is the key under which reports count households or houses whose
// enum field (status, renovation) holds no value.
const Unset = "unset"
