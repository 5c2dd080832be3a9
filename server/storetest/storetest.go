// Package storetest is the contract test suite of syncproto.Store and of
// the accounts store beside it (auth.Accounts). Every store (SQLite today,
// PostgreSQL when a deployment outgrows one machine) runs it with its own
// Open function and must pass it unchanged, all of it: its first test fails
// for any method of the contract that no test names (coverage.go). It
// imports the domain and auth's types only, never a store.
package storetest

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fieldsync/fieldsync/syncproto"
)

// Clock is a settable clock for stores under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Opener opens a new, empty store whose clock is clock.Now; the store is
// closed when the test ends (the opener registers that), and a test of the
// suite may close it before: a second Close must be harmless.
type Opener func(t testing.TB, clock *Clock) syncproto.Store

// T0 is the time the suite's clocks start at.
var T0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// All is an actor of every region.
var All = syncproto.Actor{UserID: "admin", AllRegions: true}

// Village codes used by the suite.
const (
	SouthVillage = "500240107201"
	NorthVillage = "150422103202"
)

// Open opens a store with open and the push service over it, both on
// clock: the suite drives pushes through the service, as the server does.
func Open(t testing.TB, open Opener, clock *Clock) (syncproto.Store, *syncproto.PushService) {
	t.Helper()
	s := open(t, clock)
	return s, NewPushService(s, clock)
}

// NewPushService returns the push service over s on clock, with the v1
// schema.
func NewPushService(s syncproto.PushStore, clock *Clock) *syncproto.PushService {
	return syncproto.NewPushService(s, syncproto.PushOptions{Now: clock.Now})
}

// NewSupervisionService returns the supervision service over s on clock,
// with the v1 schema.
func NewSupervisionService(s syncproto.SupervisionWriter, clock *Clock) *syncproto.SupervisionService {
	return syncproto.NewSupervisionService(s, syncproto.SupervisionOptions{Now: clock.Now})
}

// Run runs every contract test against stores made by open. The store
// must implement auth.Accounts too (the accounts tests assert it). Its
// first test is the guard of the suite itself: every method of the
// contract (ContractMethods) is named by a test.
func Run(t *testing.T, open Opener) {
	t.Run("EveryContractMethodHasATest", func(t *testing.T) {
		for _, p := range uncovered(ContractMethods(), suite) {
			t.Error(p)
		}
	})
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// contractTest is one test of the suite and the methods of the contract
// whose promises it asserts ("Interface.Method", see ContractMethods).
type contractTest struct {
	name   string
	fn     func(*testing.T, Opener)
	covers []string
}

// suite is every contract test. A test names in covers only the methods
// whose documented promise it checks, not every method it happens to call.
var suite = []contractTest{
	{"PolicyOutcomesAreStored", testPolicyOutcomes, []string{"Store.WritePush", "PushTx.Record", "PushTx.WriteVersion", "PushTx.AddConflict", "Store.Record", "Store.Conflicts"}},
	{"ReplayAndOrdering", testReplayAndOrdering, []string{"PushTx.Receipt", "PushTx.LastDeviceSeq", "PushTx.SaveReceipt", "Store.History", "Store.Pull"}},
	{"PullPagesEveryChangeOnce", testPullPaging, []string{"Store.Pull"}},
	{"PullReturnsOwnPushAndTombstones", testPullOwnPushAndTombstones, []string{"Store.Pull"}},
	{"PullScope", testPullScope, []string{"Store.Pull"}},
	{"QuarantineKeepsRejectedChanges", testQuarantine, []string{"PushTx.AddQuarantine", "Store.Quarantined", "Store.Record"}},
	{"HistoryRecordsEveryVersion", testHistory, []string{"Store.History", "PushTx.WriteVersion"}},
	{"DeleteConflicts", testDeleteConflicts, []string{"PushTx.AddConflict", "Store.Record"}},
	{"HouseholdMoveRescopesInspections", testHouseholdMove, []string{"PushTx.ChildPlacements", "PushTx.Rescope", "Store.History"}},
	{"MovedRecordsArePulledAsRemovals", testMoveRemovals, []string{"PushTx.Rescope", "Store.Pull"}},
	{"ScopeChangeSendsRemovalsAndAdditions", testScopeChange, []string{"Store.Pull"}},
	{"ScopeChangeRemovesRecordsThatMovedAway", testScopeChangeWithMoveAway, []string{"Store.Pull"}},
	{"ChecksumEqualsAFreshPull", testChecksum, []string{"Store.Checksum"}},
	{"PhotoAccessFollowsRecords", testPhotoAccess, []string{"Store.PhotoAccess", "Store.PhotoUploaded"}},
	{"PhotoReferenceGrantsOnlyWithPossession", testPhotoPossession, []string{"Store.PhotoAccess", "Store.ReadablePhotos", "Store.PhotoUploaded"}},
	{"PhotosInUseForTheSweep", testPhotosInUse, []string{"Store.RemoveUnreferencedPhotos"}},
	{"WriteKeepsNothingOfAFailedFn", testWriteKeepsNothingOfAFailedFn, []string{"Store.WritePush", "Store.WriteReplay", "Store.WriteSupervision", "PushTx.SaveReceipt", "Store.ReceiptOf"}},
	{"WriteOutlivesTheCaller", testWriteOutlivesTheCaller, []string{"Store.WritePush", "Store.WriteReplay", "Store.WriteSupervision"}},
	{"WritesAfterCloseAreUnavailable", testWritesAfterCloseAreUnavailable, []string{"Store.WritePush", "Store.WriteReplay", "Store.WriteSupervision", "Store.Close"}},
	{"FailingPushFailsAlone", testFailingPushFailsAlone, []string{"Store.WritePush"}},
	{"ReplaySetsFailAlone", testReplaySetsFailAlone, []string{"Store.WriteReplay"}},
	{"HouseholdStream", testHouseholdStream, []string{"Store.HouseholdInspections", "Store.Head"}},
	{"HouseholdChildren", testHouseholdChildren, []string{"Store.HouseholdInspections"}},
	{"SupervisionDecisions", testSupervisionDecisions, []string{"SuperviseTx.Duplicate", "SuperviseTx.MarkDecided", "SuperviseTx.QuarantineEntry", "SuperviseTx.MarkClosed", "Store.ListDuplicates", "Store.ListQuarantine"}},
	{"SnapshotCurrentState", testSnapshotCurrentState, []string{"Store.Snapshot"}},
	{"SnapshotAsOf", testSnapshotAsOf, []string{"Store.Snapshot"}},
	{"SnapshotAsOfSeesNoLaterWrite", testSnapshotAsOfSeesNoLaterWrite, []string{"Store.Snapshot"}},
	{"SnapshotErrors", testSnapshotErrors, []string{"Store.Snapshot"}},
	{"SnapshotAsOfBeforeAMerge", testSnapshotAsOfBeforeAMerge, []string{"Store.Snapshot"}},
	{"SnapshotStopsWhenCancelled", testSnapshotStopsWhenCancelled, []string{"Store.Snapshot"}},
	{"SnapshotReadsEveryBatch", testSnapshotReadsEveryBatch, []string{"Store.Snapshot"}},
	{"FlaggedVersions", testFlaggedVersions, []string{"Store.FlaggedVersions"}},
	{"ConflictQueue", testConflictQueue, []string{"Store.ListConflicts", "Store.Conflict", "Store.Conflicts"}},
	{"ConflictDepartments", testConflictDepartments, []string{"Store.ListConflicts", "Store.Conflict", "Store.Conflicts"}},
	{"ResolveConflict", testResolveConflict, []string{"SuperviseTx.Conflict", "SuperviseTx.MarkResolved", "SuperviseTx.OpenConflicts", "Store.Conflict", "Store.ListConflicts"}},
	{"Duplicates", testDuplicates, []string{"PushTx.SimilarHouseholds", "PushTx.AddDuplicate", "SuperviseTx.Children", "SuperviseTx.Duplicate", "SuperviseTx.MarkDecided", "Store.ListDuplicates"}},
	{"QuarantineQueue", testQuarantineQueue, []string{"Store.ListQuarantine", "Store.Quarantined", "SuperviseTx.QuarantineEntry", "SuperviseTx.MarkClosed"}},
	{"Devices", testDevices, []string{"Store.Devices", "Store.NameDevice", "Store.RecordPulls", "Store.DeviceSchemaVersion"}},
	{"Receipts", testReceipts, []string{"Store.Receipts", "Store.ReceiptOf"}},
	{"Behind", testBehind, []string{"Store.Behind"}},
	{"Reports", testReports, []string{"Store.HouseholdInspections"}},
	{"PushTxPrimitives", testPushTxPrimitives, []string{"PushTx.Record", "PushTx.Head", "PushTx.WriteVersion", "PushTx.Receipt", "PushTx.LastDeviceSeq", "PushTx.SaveReceipt", "PushTx.UpdateMeta", "PushTx.ChildPlacements"}},
	{"StoreLifecycle", testStoreLifecycle, []string{"Store.Ping", "Store.CursorKey", "Store.Close"}},
	{"OutboxReplay", testOutboxReplay, []string{"Store.WriteReplay", "ReplayTx.RecordReplay", "ReplayTx.CarryPhotoProofs"}},
	{"MigrateRecords", testMigrateRecords, []string{"Store.RecordsSchemaVersion", "Store.PendingRecordsVersion", "Store.MigrateRecords"}},
	{"Users", testUsers, []string{"Accounts.PutUser", "Accounts.User", "Accounts.Users", "Accounts.SetUserDisabled", "Accounts.Access"}},
	{"Sessions", testSessions, []string{"Accounts.CreateSession", "Accounts.Access", "Accounts.RevokeDevice", "Accounts.DeviceRevoked", "Accounts.DeviceUsers"}},
	{"ConcurrentLoginsClaimTheDeviceOnce", testConcurrentLoginsClaimTheDeviceOnce, []string{"Accounts.CreateSession", "Accounts.DeviceUsers"}},
	{"Refresh", testRefresh, []string{"Accounts.Refresh"}},
	{"ConsoleSessions", testConsoleSessions, []string{"Accounts.CreateConsoleSession", "Accounts.ConsoleSession", "Accounts.TouchConsoleSession", "Accounts.EndConsoleSession"}},
	{"ConsoleSessionsEndWithTheUser", testConsoleSessionsEndWithTheUser, []string{"Accounts.PutUser", "Accounts.SetUserDisabled"}},
	{"ConsoleSessionSweep", testConsoleSessionSweep, []string{"Accounts.SweepConsoleSessions"}},
	{"HouseholdStreamIsOnePoint", testHouseholdStreamIsOnePoint, []string{"Store.HouseholdInspections"}},
	{"SnapshotLatestTies", testSnapshotLatestTies, []string{"Store.Snapshot"}},
	{"RegistryImportsAreVersioned", testRegistryImportsAreVersioned, []string{"Store.LatestImport", "Store.ImportRegistry", "Store.RegistryImports", "Store.RegistryDiff", "Store.RegistryRows"}},
	{"RegistryImportIsAtomic", testRegistryImportIsAtomic, []string{"Store.ImportRegistry"}},
	{"RegistryVillages", testRegistryVillages, []string{"Store.RegistryVillages"}},
	{"UsersAndChangesKeepTheirDepartment", testDepartments, []string{"Accounts.PutUser", "Store.History"}},
	{"PublishedSchemasAreImmutable", testPublishedSchemas, []string{"Store.PublishedSchemas", "Store.PublishSchema"}},
	{"SummariesEqualTheCoverageScan", testSummariesEqualTheCoverageScan, []string{"SummaryStore.KeepSummaries", "SummaryStore.AreaSummaries", "SummaryStore.NeverInspectedHouseholds", "SummaryStore.InspectionDays", "SummaryStore.LaggingVillages"}},
	{"SummariesBeforeKeep", testSummariesBeforeKeep, []string{"SummaryStore.AreaSummaries", "SummaryStore.NeverInspectedHouseholds", "SummaryStore.InspectionDays", "SummaryStore.LaggingVillages"}},
	{"SummariesFollowPublicationAndDate", testSummariesFollowPublicationAndDate, []string{"SummaryStore.KeepSummaries", "SummaryStore.AreaSummaries"}},
	{"SummariesRejudgeOffTheReadPath", testSummariesRejudgeOffTheReadPath, []string{"SummaryStore.KeepSummaries", "SummaryStore.RejudgeSummaries", "SummaryStore.AreaSummaries", "SummaryStore.NeverInspectedHouseholds", "SummaryStore.InspectionDays", "SummaryStore.LaggingVillages"}},
	{"RegistrySumsEqualTheCoverageReport", testRegistrySumsEqualTheCoverageReport, []string{"RegistrySumStore.RefreshRegistrySums", "RegistrySumStore.RegistryOnlyHouseholds", "RegistrySumStore.RegistryOnlyInScope"}},
	{"VerdictsEqualTheLiveJudgement", testVerdictsEqualTheLiveJudgement, []string{"VerdictStore.KeepVerdicts", "VerdictStore.RefreshVerdicts", "VerdictStore.AreaVerdicts"}},
	{"VerdictsPendingUntilRefreshed", testVerdictsPendingUntilRefreshed, []string{"VerdictStore.RefreshVerdicts", "VerdictStore.AreaVerdicts"}},
	{"VerdictsChangeOnTheirDay", testVerdictsChangeOnTheirDay, []string{"VerdictStore.RefreshVerdicts", "VerdictStore.AreaVerdicts"}},
}

// Device is a simulated tablet for tests: it numbers its change sets.
type Device struct {
	Actor syncproto.Actor
	seq   int64
}

// NewDevice returns a device with a fresh id for user, scoped to the given
// prefixes, or to every region when none is given.
func NewDevice(user string, scope ...string) *Device {
	return &Device{Actor: syncproto.Actor{UserID: user, DeviceID: uuid.NewString(), Role: syncproto.RoleFieldWorker,
		Scope: scope, AllRegions: len(scope) == 0}}
}

// Changeset wraps changes in the device's next change set.
func (d *Device) Changeset(changes ...syncproto.Change) syncproto.Changeset {
	d.seq++
	return syncproto.Changeset{ChangesetID: uuid.NewString(), DeviceID: d.Actor.DeviceID, DeviceSeq: d.seq,
		SchemaVersion: 1, Changes: changes}
}

// Push pushes changes as the device's next change set through p and fails
// the test on error.
func (d *Device) Push(t testing.TB, p *syncproto.PushService, changes ...syncproto.Change) syncproto.PushResponse {
	t.Helper()
	resp, err := p.Push(context.Background(), d.Actor, d.Changeset(changes...))
	if err != nil {
		t.Fatalf("push by %s: %v", d.Actor.UserID, err)
	}
	return resp
}

// Upsert builds an upsert change; field values are marshalled to JSON.
func Upsert(entity, id string, base int64, at time.Time, fields map[string]any) syncproto.Change {
	f := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		f[k] = b
	}
	return syncproto.Change{Entity: entity, ID: id, Op: syncproto.OpUpsert, BaseVersion: base,
		At: syncproto.FormatTime(at), Fields: f}
}

// Delete builds a delete change.
func Delete(entity, id string, base int64, at time.Time) syncproto.Change {
	return syncproto.Change{Entity: entity, ID: id, Op: syncproto.OpDelete, BaseVersion: base, At: syncproto.FormatTime(at)}
}

// Household builds the creation of a household in village, with a
// registration number of its own (derived from the id), so that test
// households are not taken for one registered twice.
func Household(id, village string, at time.Time) syncproto.Change {
	return Upsert("household", id, 0, at, map[string]any{"village": village, "head_name": "陈秀英",
		"registration_no": "CQ-" + id, "members": 5, "category": "registered_poor", "status": "in_poverty"})
}

// RegisteredHousehold builds the creation of a household with a given
// poverty-registration number (two of them in one village are a
// duplicate).
func RegisteredHousehold(id, village, registrationNo string, at time.Time) syncproto.Change {
	return Upsert("household", id, 0, at, map[string]any{"village": village, "head_name": "陈秀英",
		"registration_no": registrationNo, "members": 5, "category": "registered_poor", "status": "in_poverty"})
}

// HousingInspection builds the creation of a housing inspection valid in
// the south (it carries ventilation).
func HousingInspection(id, household string, grade string, at time.Time) syncproto.Change {
	return Upsert("housing_inspection", id, 0, at, map[string]any{"household_id": household, "grade": grade,
		"inspected_on": at.Format(time.DateOnly), "ventilation": "adequate", "hazards": []string{"roof"},
		"renovation": "none"})
}

// WaterInspection builds the creation of a water inspection.
func WaterInspection(id, household string, at time.Time) syncproto.Change {
	return Upsert("water_inspection", id, 0, at, map[string]any{"household_id": household,
		"inspected_on": at.Format(time.DateOnly), "source": "piped", "quality_ok": true,
		"liters_per_person_day": 80, "fetch_minutes": 5, "reliability_pct": 97})
}

// MustRecord returns a stored record or fails the test.
func MustRecord(t testing.TB, s syncproto.Store, id string) *syncproto.StoredRecord {
	t.Helper()
	r, err := s.Record(context.Background(), id)
	if err != nil {
		t.Fatalf("record %s: %v", id, err)
	}
	return r
}

// PullAll follows cursors from after until has_more is false and returns
// every record and the final cursor.
func PullAll(t testing.TB, s syncproto.Store, actor syncproto.Actor, after syncproto.Cursor, limit int) ([]syncproto.Record, syncproto.Cursor) {
	t.Helper()
	var all []syncproto.Record
	for i := 0; ; i++ {
		page, err := s.Pull(context.Background(), actor, after, limit)
		if err != nil {
			t.Fatalf("pull after %+v: %v", after, err)
		}
		for i := range page.Records {
			if err := page.Records[i].DecodeRawFields(); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, page.Records...)
		if page.Cursor.Seq < after.Seq {
			t.Fatalf("cursor went back from %+v to %+v", after, page.Cursor)
		}
		after = page.Cursor
		if !page.HasMore {
			return all, after
		}
		if i > 1_000_000 {
			t.Fatal("pull does not end")
		}
	}
}

func field(t testing.TB, r *syncproto.StoredRecord, name string) string {
	t.Helper()
	return string(r.Fields[name])
}

func testPolicyOutcomes(t *testing.T, open Opener) {
	clock := NewClock(T0.Add(3 * time.Hour)) // every device time below is in the server's past
	s, p := Open(t, open, clock)
	a, b := NewDevice("li.na"), NewDevice("zhao.lei")
	hh, ins, wat := uuid.NewString(), uuid.NewString(), uuid.NewString()
	a.Push(t, p, Household(hh, SouthVillage, T0), HousingInspection(ins, hh, "C", T0), WaterInspection(wat, hh, T0))
	// Device A edits every contested field (version 2), then device B,
	// still at base 1, edits the same fields to other values.
	a.Push(t, p,
		Upsert("household", hh, 1, T0.Add(time.Hour), map[string]any{"members": 6, "head_name": "陈秀芳"}),
		Upsert("housing_inspection", ins, 1, T0.Add(time.Hour), map[string]any{"grade": "D", "hazards": []string{"walls"}, "renovation": "planned"}),
		Upsert("water_inspection", wat, 1, T0.Add(time.Hour), map[string]any{"quality_ok": false, "fetch_minutes": 30}))
	resp := b.Push(t, p,
		Upsert("household", hh, 1, T0.Add(2*time.Hour), map[string]any{"members": 7, "head_name": "陈秀瑛"}),
		Upsert("housing_inspection", ins, 1, T0.Add(2*time.Hour), map[string]any{"grade": "B", "hazards": []string{"foundation"}, "renovation": "none"}),
		Upsert("water_inspection", wat, 1, T0.Add(30*time.Minute), map[string]any{"quality_ok": true, "fetch_minutes": 10}))

	want := []struct {
		status string
		fields map[string][2]string // field -> {kept, state}
	}{
		{syncproto.StatusConflict, map[string][2]string{"members": {`6`, "open"}, "head_name": {`"陈秀瑛"`, "auto_resolved"}}},
		{syncproto.StatusMerged, map[string][2]string{"grade": {`"D"`, "auto_resolved"}, "hazards": {`["foundation","walls"]`, "auto_resolved"}, "renovation": {`"none"`, "auto_resolved"}}},
		{syncproto.StatusMerged, map[string][2]string{"quality_ok": {`false`, "auto_resolved"}, "fetch_minutes": {`30`, "auto_resolved"}}},
	}
	for i, w := range want {
		r := resp.Results[i]
		if r.Status != w.status {
			t.Errorf("result %d: status %s, want %s (%+v)", i, r.Status, w.status, r)
		}
		got := map[string][2]string{}
		for _, c := range r.Conflicts {
			got[c.Field] = [2]string{string(c.Kept), c.State}
		}
		if !reflect.DeepEqual(got, w.fields) {
			t.Errorf("result %d conflicts %v, want %v", i, got, w.fields)
		}
	}
	if r := MustRecord(t, s, hh); field(t, r, "members") != `6` || field(t, r, "head_name") != `"陈秀瑛"` || r.Version != 3 {
		t.Errorf("household now %v v%d", r.Fields, r.Version)
	}
	if r := MustRecord(t, s, ins); field(t, r, "grade") != `"D"` || field(t, r, "hazards") != `["foundation","walls"]` {
		t.Errorf("inspection now %v", r.Fields)
	}
	if r := MustRecord(t, s, wat); field(t, r, "quality_ok") != `false` || field(t, r, "fetch_minutes") != `30` || r.Version != 2 {
		t.Errorf("water inspection now %v v%d", r.Fields, r.Version)
	}
	conflicts, err := s.Conflicts(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(conflicts) != 7 {
		t.Fatalf("stored %d conflicts, want 7", len(conflicts))
	}
	for _, c := range conflicts {
		if c.DeviceID != b.Actor.DeviceID || c.UserID != "zhao.lei" || c.Village != SouthVillage {
			t.Errorf("conflict %+v not attributed to device B in %s", c, SouthVillage)
		}
	}
}

func testReplayAndOrdering(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	ctx := context.Background()
	a := NewDevice("li.na")
	hh := uuid.NewString()
	cs := a.Changeset(Household(hh, SouthVillage, T0))
	first, err := p.Push(ctx, a.Actor, cs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Push(ctx, a.Actor, cs)
	if err != nil {
		t.Fatal(err)
	}
	if first.Replayed || !again.Replayed {
		t.Fatalf("replayed: first %v, again %v", first.Replayed, again.Replayed)
	}
	again.Replayed = false
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("replay answer differs:\n%+v\n%+v", first, again)
	}
	other := cs
	other.Changes = []syncproto.Change{Household(uuid.NewString(), SouthVillage, T0)}
	if _, err := p.Push(ctx, a.Actor, other); syncproto.ErrorCode(err) != syncproto.EConflict {
		t.Fatalf("same id, other content: %v", err)
	}
	stale := cs
	stale.ChangesetID = uuid.NewString()
	_, err = p.Push(ctx, a.Actor, stale)
	var se *syncproto.Error
	if syncproto.ErrorCode(err) != syncproto.EConflict || !errorsAs(err, &se) || se.LastDeviceSeq == nil || *se.LastDeviceSeq != 1 {
		t.Fatalf("lower device_seq: %v", err)
	}
	hist, err := s.History(ctx, hh)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 {
		t.Fatalf("%d versions after a replay, want 1", len(hist))
	}
	if page, _ := s.Pull(ctx, All, syncproto.Cursor{}, 100); len(page.Records) != 1 {
		t.Fatalf("%d records after replays and refusals, want 1", len(page.Records))
	}
}

func errorsAs(err error, target **syncproto.Error) bool {
	e, ok := err.(*syncproto.Error)
	*target = e
	return ok
}

func testPullPaging(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	a := NewDevice("li.na")
	var ids []string
	var batch []syncproto.Change
	for i := 0; i < 360; i++ {
		id := uuid.NewString()
		ids = append(ids, id)
		batch = append(batch, Household(id, SouthVillage, T0))
		if len(batch) == 120 {
			a.Push(t, p, batch...)
			batch = nil
		}
	}
	// Touch the first 10 again so that they move to the end of the log.
	var edits []syncproto.Change
	for _, id := range ids[:10] {
		edits = append(edits, Upsert("household", id, 1, T0.Add(time.Minute), map[string]any{"head_name": "改名"}))
	}
	a.Push(t, p, edits...)
	want := append(append([]string{}, ids[10:]...), ids[:10]...)

	ctx := context.Background()
	first, err := s.Pull(ctx, All, syncproto.Cursor{}, 150)
	if err != nil {
		t.Fatal(err)
	}
	repeat, err := s.Pull(ctx, All, syncproto.Cursor{}, 150)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, repeat) {
		t.Fatal("the same cursor gave different pages")
	}
	if len(first.Records) != 150 || !first.HasMore {
		t.Fatalf("first page %d records, has_more %v", len(first.Records), first.HasMore)
	}
	all, _ := PullAll(t, s, All, syncproto.Cursor{}, 150)
	if len(all) != len(want) {
		t.Fatalf("pulled %d records, want %d", len(all), len(want))
	}
	for i, r := range all {
		if r.ID != want[i] {
			t.Fatalf("record %d is %s, want %s (change order)", i, r.ID, want[i])
		}
	}
	if all[len(all)-1].Version != 2 {
		t.Fatalf("edited record pulled at version %d", all[len(all)-1].Version)
	}
}

func testPullOwnPushAndTombstones(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	a := NewDevice("li.na")
	hh, ins := uuid.NewString(), uuid.NewString()
	a.Push(t, p, Household(hh, SouthVillage, T0), HousingInspection(ins, hh, "C", T0))
	_, cursor := PullAll(t, s, a.Actor, syncproto.Cursor{}, 100)
	resp := a.Push(t, p, Upsert("housing_inspection", ins, 1, T0.Add(time.Minute), map[string]any{"grade": "D"}))
	if resp.Results[0].Version != 2 {
		t.Fatalf("version %d", resp.Results[0].Version)
	}
	got, cursor := PullAll(t, s, a.Actor, cursor, 100)
	if len(got) != 1 || got[0].ID != ins || got[0].Version != 2 || string(got[0].Fields["grade"]) != `"D"` {
		t.Fatalf("pull after own push: %+v", got)
	}
	a.Push(t, p, syncproto.Change{Entity: "housing_inspection", ID: ins, Op: syncproto.OpDelete, BaseVersion: 2,
		At: syncproto.FormatTime(T0.Add(2 * time.Minute))})
	got, cursor = PullAll(t, s, a.Actor, cursor, 100)
	if len(got) != 1 || !got[0].Deleted || got[0].Version != 3 {
		t.Fatalf("tombstone: %+v", got)
	}
	if got, _ := PullAll(t, s, a.Actor, cursor, 100); len(got) != 0 {
		t.Fatalf("pull at the head returned %d records", len(got))
	}
}

func testPullScope(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	admin := NewDevice("admin")
	south, north := uuid.NewString(), uuid.NewString()
	admin.Push(t, p, Household(south, SouthVillage, T0), Household(north, NorthVillage, T0),
		HousingInspection(uuid.NewString(), south, "B", T0))
	worker := syncproto.Actor{UserID: "w", DeviceID: uuid.NewString(), Scope: []string{"500240"}}
	got, _ := PullAll(t, s, worker, syncproto.Cursor{}, 1)
	if len(got) != 2 {
		t.Fatalf("scoped pull returned %d records, want 2", len(got))
	}
	for _, r := range got {
		if r.ID == north {
			t.Fatal("scoped pull returned an out-of-scope household")
		}
	}
}

func testQuarantine(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	a := NewDevice("li.na")
	hh := uuid.NewString()
	bad := Upsert("water_inspection", uuid.NewString(), 0, T0, map[string]any{"household_id": uuid.NewString(),
		"inspected_on": "2026-11-20", "reliability_pct": 140})
	cs := a.Changeset(Household(hh, SouthVillage, T0), bad)
	resp, err := p.Push(context.Background(), a.Actor, cs)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Results[0].Status != syncproto.StatusApplied || resp.Results[1].Status != syncproto.StatusRejected {
		t.Fatalf("results %+v", resp.Results)
	}
	paths := map[string]bool{}
	for _, e := range resp.Results[1].Errors {
		paths[e.Path] = true
	}
	if !paths["fields.reliability_pct"] || !paths["fields.household_id"] {
		t.Fatalf("errors %+v", resp.Results[1].Errors)
	}
	q, err := s.Quarantined(context.Background(), cs.ChangesetID)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].RecordID != bad.ID || q[0].DeviceID != a.Actor.DeviceID || len(q[0].Errors) != 2 {
		t.Fatalf("quarantine %+v", q)
	}
	var raw syncproto.Change
	if err := json.Unmarshal(q[0].Raw, &raw); err != nil || raw.ID != bad.ID || string(raw.Fields["reliability_pct"]) != "140" {
		t.Fatalf("raw change not kept: %s", q[0].Raw)
	}
	if _, err := s.Record(context.Background(), bad.ID); syncproto.ErrorCode(err) != syncproto.ENotFound {
		t.Fatalf("rejected record exists: %v", err)
	}
}

func testHistory(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	a, b := NewDevice("li.na"), NewDevice("zhao.lei")
	hh, ins := uuid.NewString(), uuid.NewString()
	a.Push(t, p, Household(hh, SouthVillage, T0), HousingInspection(ins, hh, "C", T0))
	clock.Advance(time.Hour)
	a.Push(t, p, Upsert("housing_inspection", ins, 1, T0.Add(time.Hour), map[string]any{"grade": "D"}))
	clock.Advance(time.Hour)
	b.Push(t, p, Upsert("housing_inspection", ins, 1, T0.Add(2*time.Hour), map[string]any{"grade": "B", "renovation": "planned"}))
	hist, err := s.History(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 {
		t.Fatalf("%d versions, want 3", len(hist))
	}
	for i, e := range hist {
		if e.Version != int64(i+1) {
			t.Fatalf("version order %d at %d", e.Version, i)
		}
	}
	if c := hist[1].Changes["grade"]; string(c.Before) != `"C"` || string(c.After) != `"D"` || hist[1].UserID != "li.na" {
		t.Fatalf("version 2: %+v", hist[1])
	}
	last := hist[2]
	if last.DeviceID != b.Actor.DeviceID || !last.ServerAt.Equal(T0.Add(2*time.Hour)) || len(last.ConflictIDs) != 1 {
		t.Fatalf("version 3: %+v", last)
	}
	if _, ok := last.Changes["grade"]; ok {
		t.Fatal("the losing grade is recorded as a change")
	}
	if c := last.Changes["renovation"]; string(c.After) != `"planned"` {
		t.Fatalf("version 3 changes %+v", last.Changes)
	}
}

func testDeleteConflicts(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	a, b := NewDevice("li.na"), NewDevice("zhao.lei")
	hh := uuid.NewString()
	a.Push(t, p, Household(hh, SouthVillage, T0))
	a.Push(t, p, Upsert("household", hh, 1, T0.Add(time.Minute), map[string]any{"head_name": "陈秀芳"}))
	resp := b.Push(t, p, Delete("household", hh, 1, T0.Add(2*time.Minute)))
	if r := resp.Results[0]; r.Status != syncproto.StatusConflict || r.Conflicts[0].Field != syncproto.FieldDeleted {
		t.Fatalf("stale delete: %+v", r)
	}
	if r := MustRecord(t, s, hh); r.Deleted || r.Version != 2 {
		t.Fatalf("record after a contested delete: deleted %v v%d", r.Deleted, r.Version)
	}
	// A deletes at the current base; B's edit from an older base then
	// opens a conflict and the record stays deleted.
	a.Push(t, p, Delete("household", hh, 2, T0.Add(3*time.Minute)))
	resp = b.Push(t, p, Upsert("household", hh, 2, T0.Add(4*time.Minute), map[string]any{"members": 3}))
	if r := resp.Results[0]; r.Status != syncproto.StatusConflict || r.Conflicts[0].Field != syncproto.FieldDeleted {
		t.Fatalf("edit of a deleted record: %+v", r)
	}
	if r := MustRecord(t, s, hh); !r.Deleted || r.Version != 3 {
		t.Fatalf("record after an edit of a tombstone: deleted %v v%d", r.Deleted, r.Version)
	}
}

// testHouseholdMove: a household's inspections move with it, without a
// version of their own: the inspection is scoped by the new village, keeps
// its version, and its history shows the move (op rescope, its version, by
// the moving change set's user) after its versions.
func testHouseholdMove(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	a := NewDevice("admin")
	hh, ins := uuid.NewString(), uuid.NewString()
	a.Push(t, p, Household(hh, SouthVillage, T0), HousingInspection(ins, hh, "B", T0))
	other := "500240108203"
	a.Push(t, p, Upsert("household", hh, 1, T0.Add(time.Minute), map[string]any{"village": other}))
	if r := MustRecord(t, s, ins); r.Village != other || r.Version != 1 {
		t.Fatalf("inspection in %s at v%d after its household moved to %s", r.Village, r.Version, other)
	}
	hist, err := s.History(context.Background(), ins)
	if err != nil || len(hist) != 2 {
		t.Fatalf("history of a moved inspection: %+v, %v", hist, err)
	}
	if e := hist[1]; e.Op != syncproto.OpRescope || e.Version != 1 || e.UserID != "admin" || e.Seq <= hist[0].Seq || len(e.Changes) != 0 {
		t.Fatalf("the move in the history: %+v", e)
	}
}

func byID(records []syncproto.Record) map[string]syncproto.Record {
	out := map[string]syncproto.Record{}
	for _, r := range records {
		if _, dup := out[r.ID]; dup {
			panic("record pulled twice in one pass: " + r.ID)
		}
		out[r.ID] = r
	}
	return out
}

func testMoveRemovals(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	admin := NewDevice("admin")
	hh, ins, stay := uuid.NewString(), uuid.NewString(), uuid.NewString()
	admin.Push(t, p, Household(hh, SouthVillage, T0), HousingInspection(ins, hh, "C", T0), Household(stay, SouthVillage, T0))
	here := syncproto.Actor{UserID: "w1", DeviceID: uuid.NewString(), Scope: []string{SouthVillage}}
	there := syncproto.Actor{UserID: "w2", DeviceID: uuid.NewString(), Scope: []string{"500240108"}}
	got, hereCursor := PullAll(t, s, here, syncproto.Cursor{}, 2)
	if len(got) != 3 {
		t.Fatalf("first pull: %d records", len(got))
	}
	_, thereCursor := PullAll(t, s, there, syncproto.Cursor{}, 2)
	admin.Push(t, p, Upsert("household", hh, 1, T0.Add(time.Minute), map[string]any{"village": "500240108203"}))

	got, _ = PullAll(t, s, here, hereCursor, 1)
	m := byID(got)
	if len(m) != 2 || !m[hh].Removed || !m[ins].Removed || m[hh].Fields != nil {
		t.Fatalf("old village's pull: %+v", got)
	}
	got, _ = PullAll(t, s, there, thereCursor, 1)
	m = byID(got)
	if len(m) != 2 || m[hh].Removed || m[ins].Removed || m[ins].Version != 1 || string(m[hh].Fields["village"]) != `"500240108203"` {
		t.Fatalf("new village's pull: %+v", got)
	}
	// A tablet pulling from scratch in the old village sees neither.
	got, _ = PullAll(t, s, here, syncproto.Cursor{}, 10)
	if m := byID(got); len(m) != 1 || m[stay].ID == "" {
		t.Fatalf("fresh pull in the old village: %+v", got)
	}
}

func testScopeChange(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	admin := NewDevice("admin")
	south, north, northIns := uuid.NewString(), uuid.NewString(), uuid.NewString()
	admin.Push(t, p, Household(south, SouthVillage, T0), Household(north, NorthVillage, T0),
		Upsert("water_inspection", northIns, 0, T0, map[string]any{"household_id": north, "inspected_on": "2026-11-20", "source": "well"}))
	both := syncproto.Actor{UserID: "w", DeviceID: uuid.NewString(), Scope: []string{"500240", "150422"}}
	southOnly := syncproto.Actor{UserID: "w", DeviceID: both.DeviceID, Scope: []string{"500240"}}
	got, cursor := PullAll(t, s, both, syncproto.Cursor{}, 10)
	if len(got) != 3 {
		t.Fatalf("pull in both counties: %d", len(got))
	}
	// The scope is narrowed: the northern records come as removals.
	admin.Push(t, p, Upsert("household", south, 1, T0.Add(time.Minute), map[string]any{"head_name": "新名"}))
	got, narrowed := PullAll(t, s, southOnly, cursor, 1)
	m := byID(got)
	if !m[north].Removed || !m[northIns].Removed || m[south].Removed || m[south].Version != 2 || len(m) != 3 {
		t.Fatalf("narrowed pull: %+v", got)
	}
	// Widened again: the northern records come back in full.
	got, _ = PullAll(t, s, both, narrowed, 1)
	m = byID(got)
	if len(m) != 2 || m[north].Removed || m[north].Version != 1 || m[northIns].Removed {
		t.Fatalf("widened pull: %+v", got)
	}
}

// testScopeChangeWithMoveAway: a record of the old scope that moved, after
// the cursor, to a village outside both scopes is removed by the
// transition.
func testScopeChangeWithMoveAway(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	admin := NewDevice("admin")
	stays, leaves := uuid.NewString(), uuid.NewString()
	admin.Push(t, p, Household(stays, "500240107201", T0), Household(leaves, "500240107299", T0))
	wide := syncproto.Actor{UserID: "w", DeviceID: uuid.NewString(), Scope: []string{"50024010"}}
	narrow := syncproto.Actor{UserID: "w", DeviceID: wide.DeviceID, Scope: []string{"500240107201"}}
	_, cursor := PullAll(t, s, wide, syncproto.Cursor{}, 10)
	admin.Push(t, p, Upsert("household", leaves, 1, T0.Add(time.Minute), map[string]any{"village": NorthVillage}))
	got, _ := PullAll(t, s, narrow, cursor, 1)
	if m := byID(got); len(m) != 1 || !m[leaves].Removed {
		t.Fatalf("narrowed pull after a move away: %+v", got)
	}
}

// testChecksum checks after every kind of write (create, edit, delete, a
// household moving with its inspection, a merge of duplicates) that the
// maintained checksum of each scope equals one computed over a pull of
// that scope from scratch, and that it names the head of the change log.
func testChecksum(t *testing.T, open Opener) {
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	ctx := context.Background()
	admin := NewDevice("admin")
	actors := []syncproto.Actor{All,
		{UserID: "w1", Scope: []string{SouthVillage}},
		{UserID: "w2", Scope: []string{"500240108"}},
		{UserID: "w3", Scope: []string{"500240", NorthVillage}},
		{UserID: "w4", Scope: []string{"990000"}},
	}
	check := func(step string) {
		t.Helper()
		for _, a := range actors {
			got, cur, err := s.Checksum(ctx, a)
			if err != nil {
				t.Fatalf("%s: checksum for %v: %v", step, a.Scope, err)
			}
			records, pulled := PullAll(t, s, a, syncproto.Cursor{}, 3)
			var want syncproto.Checksum
			for _, r := range records {
				if !r.Removed {
					want.Add(r.ID, r.Version)
				}
			}
			if got != want {
				t.Fatalf("%s: checksum for %v is %d/%s, a fresh pull gives %d/%s", step, a.Scope,
					got.Count, got, want.Count, want)
			}
			if cur.Seq != pulled.Seq || cur.Scope != a.ScopeKey() {
				t.Fatalf("%s: checksum cursor %+v, pull ends at %+v", step, cur, pulled)
			}
		}
	}
	check("empty")
	hh, ins, north := uuid.NewString(), uuid.NewString(), uuid.NewString()
	admin.Push(t, p, Household(hh, SouthVillage, T0), HousingInspection(ins, hh, "B", T0), Household(north, NorthVillage, T0))
	check("created")
	admin.Push(t, p, Upsert("housing_inspection", ins, 1, T0.Add(time.Minute), map[string]any{"grade": "D"}))
	check("edited")
	admin.Push(t, p, Upsert("household", hh, 1, T0.Add(2*time.Minute), map[string]any{"village": "500240108203"}))
	check("moved")
	admin.Push(t, p, Delete("household", north, 1, T0.Add(3*time.Minute)))
	check("deleted")
	a, b := uuid.NewString(), uuid.NewString()
	admin.Push(t, p, RegisteredHousehold(a, SouthVillage, "R-77", T0.Add(4*time.Minute)))
	admin.Push(t, p, RegisteredHousehold(b, SouthVillage, "R-77", T0.Add(5*time.Minute)))
	dups, err := s.ListDuplicates(ctx, All, "")
	if err != nil || len(dups) != 1 {
		t.Fatalf("duplicates: %v %+v", err, dups)
	}
	if _, err := NewSupervisionService(s, clock).MergeHouseholds(ctx, All, dups[0].ID, a, ""); err != nil {
		t.Fatal(err)
	}
	check("merged")
}

// testPhotoAccess: the photos a record references are reachable by the
// actors whose scope holds the record, from the write that references
// them, through a move of the household and the record's deletion, until a
// later version drops them.
func testPhotoAccess(t *testing.T, open Opener) {
	s, p := Open(t, open, NewClock(T0))
	admin := NewDevice("admin")
	a, b := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	hh, ins := uuid.NewString(), uuid.NewString()
	housing := HousingInspection(ins, hh, "D", T0)
	housing.Fields["photos"] = json.RawMessage(`["` + a + `"]`)
	for _, h := range []string{a, b} { // the pusher has the photos
		if err := s.PhotoUploaded(context.Background(), admin.Actor, h); err != nil {
			t.Fatal(err)
		}
	}
	admin.Push(t, p, Household(hh, SouthVillage, T0), housing)
	south := syncproto.Actor{UserID: "w1", Scope: []string{"500240107"}}
	north := syncproto.Actor{UserID: "w2", Scope: []string{"150422"}}
	access := func(actor syncproto.Actor, hash string) syncproto.PhotoAccess {
		t.Helper()
		got, err := s.PhotoAccess(context.Background(), actor, hash)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := access(south, a); !got.InScope || !got.Referenced {
		t.Fatalf("photo of a record in scope: %+v", got)
	}
	if got := access(north, a); got.InScope || !got.Referenced {
		t.Fatalf("photo of a record outside scope: %+v", got)
	}
	if got := access(All, b); got.InScope || got.Referenced {
		t.Fatalf("photo no record references: %+v", got)
	}
	// The household moves north: its inspection's photo goes with it.
	admin.Push(t, p, Upsert("household", hh, 1, T0.Add(time.Minute), map[string]any{"village": NorthVillage}))
	if got := access(south, a); got.InScope {
		t.Fatalf("photo of a household that moved away: %+v", got)
	}
	if got := access(north, a); !got.InScope {
		t.Fatalf("photo of a household that moved in: %+v", got)
	}
	// A later version with another photo set: the dropped photo is no
	// longer reachable through this record.
	admin.Push(t, p, Upsert("housing_inspection", ins, 1, T0.Add(2*time.Minute), map[string]any{"photos": []string{b}}))
	if got := access(All, a); got.Referenced {
		t.Fatalf("photo dropped by a later version: %+v", got)
	}
	if got := access(north, b); !got.InScope {
		t.Fatalf("photo of the later version: %+v", got)
	}
	// Deleted records count: their last fields are still served.
	admin.Push(t, p, Delete("housing_inspection", ins, 2, T0.Add(3*time.Minute)))
	if got := access(north, b); !got.InScope || !got.Referenced {
		t.Fatalf("photo of a deleted record: %+v", got)
	}
}

// testPhotoPossession: a reference grants reads only when the user who
// added the digest to the record proved possession of the photo, before
// or after the push; knowing the digest (pushing a record of one's own
// that names it) grants nothing, and one's own upload always does.
func testPhotoPossession(t *testing.T, open Opener) {
	ctx := context.Background()
	s, p := Open(t, open, NewClock(T0))
	south := NewDevice("w.south", "500240107")
	north := NewDevice("w.north", "150422")
	supSouth := syncproto.Actor{UserID: "sup.south", Role: syncproto.RoleSupervisor, Scope: []string{"500240"}}
	photo := strings.Repeat("c3", 32)
	access := func(actor syncproto.Actor) syncproto.PhotoAccess {
		t.Helper()
		got, err := s.PhotoAccess(ctx, actor, photo)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// The south worker takes and uploads the photo and references it.
	if err := s.PhotoUploaded(ctx, south.Actor, photo); err != nil {
		t.Fatal(err)
	}
	hhS, insS := uuid.NewString(), uuid.NewString()
	housing := HousingInspection(insS, hhS, "D", T0)
	housing.Fields["photos"] = json.RawMessage(`["` + photo + `"]`)
	south.Push(t, p, Household(hhS, SouthVillage, T0), housing)
	if got := access(supSouth); !got.InScope || !got.Readable() {
		t.Fatalf("supervisor of the uploader's county: %+v", got)
	}
	// The north worker saw the digest and references it in a record of
	// its own county: that grants nothing.
	hhN, insN := uuid.NewString(), uuid.NewString()
	stolen := HousingInspection(insN, hhN, "C", T0)
	stolen.Fields["photos"] = json.RawMessage(`["` + photo + `"]`)
	stolen.Fields["heating_insulation"] = json.RawMessage(`"inadequate"`)
	north.Push(t, p, Household(hhN, NorthVillage, T0), stolen)
	if got := access(north.Actor); got.Readable() || !got.Pending || got.Uploaded {
		t.Fatalf("a reference by someone who never uploaded the photo: %+v", got)
	}
	if got, err := s.ReadablePhotos(ctx, north.Actor, []string{photo}); err != nil || got[photo] {
		t.Fatalf("readable by the north worker: %v %v", got, err)
	}
	// Once the north worker proves possession (uploads the bytes), the
	// same reference grants: the order of push and upload does not matter.
	if err := s.PhotoUploaded(ctx, north.Actor, photo); err != nil {
		t.Fatal(err)
	}
	if got := access(north.Actor); !got.Readable() || !got.InScope || !got.Uploaded || got.Pending {
		t.Fatalf("after the north worker's upload: %+v", got)
	}
	// One's own upload grants without any record.
	other := strings.Repeat("d4", 32)
	if err := s.PhotoUploaded(ctx, south.Actor, other); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadablePhotos(ctx, south.Actor, []string{photo, other, strings.Repeat("e5", 32)})
	if err != nil || len(got) != 2 || !got[photo] || !got[other] {
		t.Fatalf("readable by the south worker: %v %v", got, err)
	}
	if got, err := s.ReadablePhotos(ctx, supSouth, []string{other}); err != nil || got[other] {
		t.Fatalf("an unreferenced upload of someone else: %v %v", got, err)
	}
}

// testPhotosInUse: the sweep is offered a photo only when no record's
// current fields reference it (a tombstone's count), and not for a while
// after its last upload or after a version dropped it; a photo only
// history names is offered.
func testPhotosInUse(t *testing.T, open Opener) {
	ctx := context.Background()
	clock := NewClock(T0)
	s, p := Open(t, open, clock)
	admin := NewDevice("admin")
	kept, dropped, uploaded, never := strings.Repeat("a1", 32), strings.Repeat("b2", 32), strings.Repeat("c3", 32), strings.Repeat("d4", 32)
	hh, ins := uuid.NewString(), uuid.NewString()
	housing := HousingInspection(ins, hh, "D", T0)
	housing.Fields["photos"] = json.RawMessage(`["` + kept + `","` + dropped + `"]`)
	admin.Push(t, p, Household(hh, SouthVillage, T0), housing)
	if err := s.PhotoUploaded(ctx, admin.Actor, uploaded); err != nil {
		t.Fatal(err)
	}
	all := []string{kept, dropped, uploaded, never}
	// inUse asks the sweep's question without removing anything: the
	// photos it is not offered are the ones in use.
	inUse := func(since time.Time) map[string]bool {
		t.Helper()
		got := map[string]bool{}
		for _, h := range all {
			got[h] = true
		}
		removed, err := s.RemoveUnreferencedPhotos(ctx, all, since, func(h string) (bool, error) {
			delete(got, h)
			return false, nil
		})
		if err != nil || len(removed) != 0 {
			t.Fatalf("removed %v, %v: nothing was removed", removed, err)
		}
		return got
	}
	if got := inUse(T0); !got[kept] || !got[dropped] || !got[uploaded] || got[never] {
		t.Fatalf("in use at the start: %v", got)
	}
	// A later version drops one photo: its release keeps it a while.
	admin.Push(t, p, Upsert("housing_inspection", ins, 1, T0.Add(time.Minute), map[string]any{"photos": []string{kept}}))
	if got := inUse(T0); !got[dropped] {
		t.Fatalf("a photo just dropped: %v", got)
	}
	later := T0.Add(30 * 24 * time.Hour)
	if got := inUse(later); !got[kept] || got[dropped] || got[uploaded] || got[never] {
		t.Fatalf("in use a month later: %v", got)
	}
	// A deleted record keeps its photos (its tombstone shows them).
	admin.Push(t, p, Delete("housing_inspection", ins, 2, T0.Add(2*time.Minute)))
	if got := inUse(later); !got[kept] {
		t.Fatalf("the photo of a deleted record: %v", got)
	}
}
