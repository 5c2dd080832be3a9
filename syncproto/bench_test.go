package syncproto

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// benchBody is a change set of n housing inspections, as a tablet sends it.
func benchBody(n int) []byte {
	cs := Changeset{ChangesetID: csID1, DeviceID: devA, DeviceSeq: 1, SchemaVersion: 1}
	for i := 0; i < n; i++ {
		cs.Changes = append(cs.Changes, change("housing_inspection", fmt.Sprintf("0193a000-0000-7000-8000-%012d", i), OpUpsert, 0, t0,
			map[string]any{"household_id": hhID, "grade": "C", "inspected_on": "2026-11-20", "ventilation": "adequate",
				"hazards": []string{"walls", "roof"}, "renovation": "planned"}))
	}
	b, _ := json.Marshal(cs)
	return b
}

func BenchmarkDecodeChangeset500(b *testing.B) {
	body := benchBody(500)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cs, err := DecodeChangeset(body, schema.V1(), 1000)
		if err != nil {
			b.Fatal(err)
		}
		for _, ch := range cs.Changes {
			if _, errs := housing.Validate(ch.Fields); errs != nil {
				b.Fatal(errs)
			}
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "changes/s")
}

func BenchmarkMergeStaleEdit(b *testing.B) {
	st := storedBy(3, devA, t0, map[string]string{"grade": `"C"`, "renovation": `"planned"`, "hazards": `["roof"]`,
		"inspected_on": `"2026-11-20"`, "ventilation": `"adequate"`})
	inc := in(OpUpsert, 1, devB, t0.Add(time.Minute), map[string]string{"grade": `"D"`, "renovation": `"completed"`, "hazards": `["walls"]`})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if out := Merge(housing, st, inc); out.Status != StatusMerged {
			b.Fatal(out.Status)
		}
	}
}

// BenchmarkDecodeChangesetHugeSet decodes the review's attack: a change
// set of about 7 MB whose one change has a 1,000,000-item hazards list.
// DecodeChangeset refuses it (413) at item 1,001, the hard cap of a set
// (SetItemsCap).
func BenchmarkDecodeChangesetHugeSet(b *testing.B) {
	hazards := make([]string, 1_000_000)
	for i := range hazards {
		hazards[i] = "roof"
	}
	cs := Changeset{ChangesetID: csID1, DeviceID: devA, DeviceSeq: 1, SchemaVersion: 1}
	cs.Changes = append(cs.Changes, change("housing_inspection", "0193a000-0000-7000-8000-000000000001", OpUpsert, 0, t0,
		map[string]any{"household_id": hhID, "grade": "C", "inspected_on": "2026-11-20", "hazards": hazards}))
	body, _ := json.Marshal(cs)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeChangeset(body, schema.V1(), 1000); ErrorCode(err) != ETooLarge {
			b.Fatal(err)
		}
	}
}
