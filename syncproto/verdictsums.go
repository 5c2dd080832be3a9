package syncproto

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/monitor"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/schema/verify"
)

// KeptVerdict is what a VerdictStore keeps of one household: its verdict
// (overall, the guarantees blocking it), its follow-up (monitored, status,
// listed, due and the due date), and NextChange, the first day after the
// day judged for on which the judgement can change with no write (""
// when never): a re-judgement is needed only when a write marks the
// household or that day comes.
type KeptVerdict struct {
	Household  string         `json:"household"`
	Village    string         `json:"village"`
	Overall    verify.Overall `json:"overall"`
	By         []string       `json:"by,omitempty"`
	Monitored  bool           `json:"monitored,omitempty"`
	Status     string         `json:"status,omitempty"`
	Listed     bool           `json:"listed,omitempty"`
	Due        bool           `json:"due,omitempty"`
	DueDate    string         `json:"due_date,omitempty"`
	AsOf       string         `json:"as_of"`
	NextChange string         `json:"next_change,omitempty"`
}

// Keys are the counters the verdict adds to its village's sums: one
// household, its overall verdict, each guarantee blocking it, and its
// follow-up's status, listing and due.
func (k *KeptVerdict) Keys() map[string]int {
	out := map[string]int{"households": 1, "overall/" + string(k.Overall): 1}
	for _, g := range k.By {
		out["blocked_by/"+g] = 1
	}
	if k.Monitored {
		out["monitored"] = 1
		out["status/"+k.Status] = 1
		if k.Listed {
			out["listed"] = 1
		}
		if k.Due {
			out["due"] = 1
		}
	}
	return out
}

// SameKeys reports whether the two verdicts add the same counters.
func (k *KeptVerdict) SameKeys(o *KeptVerdict) bool {
	return k.Village == o.Village && k.Overall == o.Overall && slices.Equal(k.By, o.By) && k.Monitored == o.Monitored &&
		k.Status == o.Status && k.Listed == o.Listed && k.Due == o.Due
}

// VerdictJudge judges a household as the verification report
// (verify.Verifier.Evaluate) and the follow-up list (monitor.Monitor) do,
// and tells the day its judgement can next change with no write. It is
// immutable and safe for concurrent use.
type VerdictJudge struct {
	sch   *schema.Schema
	forms *survey.Forms
	v     *verify.Verifier
	m     *monitor.Monitor // nil without a monitoring
	dep   verify.TimeDependence
	key   string
}

// NewVerdictJudge returns the judge of the schema, or
// verify.ErrNoVerification when it declares no verification.
func NewVerdictJudge(sch *schema.Schema) (*VerdictJudge, error) {
	v, err := verify.New(sch)
	if err != nil {
		return nil, err
	}
	j := &VerdictJudge{sch: sch, forms: survey.FormsOf(sch), v: v, dep: v.TimeDependence(),
		key: "verdicts/1 " + survey.NewSummarizer(sch).Key()}
	if m, err := monitor.New(sch); err == nil {
		j.m = m
		for _, t := range sch.Monitoring().Triggers {
			if t.Form != "" {
				j.dep.AddRules(sch.Form(t.Form), t.Met, t.NotMet)
			}
		}
	}
	return j, nil
}

// Key identifies the judgement (the schema's digest): verdicts kept under
// another key must be judged again.
func (j *VerdictJudge) Key() string { return j.key }

// Forms are the forms the households are read by.
func (j *VerdictJudge) Forms() *survey.Forms { return j.forms }

// Verifier is the judge's verifier.
func (j *VerdictJudge) Verifier() *verify.Verifier { return j.v }

// Monitor is the judge's monitor, nil when the schema declares no
// monitoring.
func (j *VerdictJudge) Monitor() *monitor.Monitor { return j.m }

// Judge judges the household (read with its children,
// HouseholdQuery.Children) as of the day asOf.
func (j *VerdictJudge) Judge(h *survey.HouseholdInspections, asOf time.Time) KeptVerdict {
	day := asOf.UTC().Truncate(24 * time.Hour)
	vd := j.v.Evaluate(h, day)
	out := KeptVerdict{Household: h.ID, Village: h.Village, Overall: vd.Overall, By: vd.By, AsOf: day.Format(time.DateOnly)}
	next := j.dep.Next(j.sch, day)
	earlier := func(t time.Time) {
		if t.After(day) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	earlier(j.v.EvidenceExpiry(h, day))
	if j.m != nil {
		f := j.m.Evaluate(h, &vd, day)
		out.Monitored, out.Listed, out.Due = f.Monitored, f.Listed(), f.Due
		if f.Monitored {
			out.Status, out.DueDate = f.Status, f.DueDate
			if !f.Due {
				if d, err := time.Parse(time.DateOnly, f.DueDate); err == nil {
					earlier(d)
				}
			}
		}
	}
	if !next.IsZero() {
		out.NextChange = next.Format(time.DateOnly)
	}
	return out
}

// AreaVerdicts are the kept verdicts' sums of one area: the verification
// report's roll-up counts (no list of households) and the follow-up
// counts.
type AreaVerdicts struct {
	Verification verify.Area
	Followups    monitor.Counts
}

// AreaOf turns an area's summed counters (KeptVerdict.Keys added up) into
// its counts, every guarantee and status present.
func (j *VerdictJudge) AreaOf(level, code string, keys map[string]int) AreaVerdicts {
	a := AreaVerdicts{Verification: verify.Area{Level: level, Code: code, BlockedBy: map[string]int{},
		Households: keys["households"], Verified: keys["overall/"+string(verify.Verified)],
		Blocked: keys["overall/"+string(verify.Blocked)], Incomplete: keys["overall/"+string(verify.Incomplete)]}}
	for _, g := range j.v.Guarantees() {
		a.Verification.BlockedBy[g.Name] = keys["blocked_by/"+g.Name]
	}
	if j.m != nil {
		a.Followups = *j.m.NewCounts(level, code)
		for s := range a.Followups.ByStatus {
			a.Followups.ByStatus[s] = keys["status/"+s]
		}
	} else {
		a.Followups = monitor.Counts{Level: level, Code: code, ByStatus: map[string]int{}}
	}
	a.Followups.Households, a.Followups.Monitored = keys["households"], keys["monitored"]
	a.Followups.Listed, a.Followups.Due = keys["listed"], keys["due"]
	return a
}

// VerdictChanges add up what replacing kept verdicts changes in their
// villages' sums, to be written once at the end of a batch.
type VerdictChanges map[string]map[string]int

// Replace adds what replacing old by cur (either nil) changes.
func (c VerdictChanges) Replace(old, cur *KeptVerdict) {
	if old != nil && cur != nil && old.SameKeys(cur) {
		return
	}
	for _, x := range []struct {
		k    *KeptVerdict
		sign int
	}{{old, -1}, {cur, 1}} {
		if x.k == nil {
			continue
		}
		if c[x.k.Village] == nil {
			c[x.k.Village] = map[string]int{}
		}
		for key, n := range x.k.Keys() {
			c[x.k.Village][key] += x.sign * n
		}
	}
}

// VerdictsRead is what a read of the kept verdicts' sums reflects: the
// head of the change log under the actor's scope, the day the sums were
// last brought up to date as of (AsOf, YYYY-MM-DD), and how many
// households of the store await a re-judgement (marked by a write, or
// whose next change day has come by the day read for): the sums are
// exactly the live judgement's when Pending is zero.
type VerdictsRead struct {
	At      Cursor
	AsOf    string
	Pending int
}

// VerdictStore is the part of a store that keeps every household's
// verdict and follow-up (KeptVerdict) and per village their sums, so that
// a county's or a province's roll-up reads one row per village, never one
// per household. Every write that changes a household or one of its
// records marks the household in its transaction; RefreshVerdicts judges
// the marked ones and those whose next change day has come.
type VerdictStore interface {
	// KeepVerdicts makes the store keep verdicts judged by j from now on,
	// in one durable write: verdicts kept under another j.Key, or never
	// kept, are first judged afresh as of today for every household.
	KeepVerdicts(ctx context.Context, j *VerdictJudge, today time.Time) error
	// RefreshVerdicts judges again, as of today, up to limit households
	// that a write marked or whose next change day is on or before today,
	// in one durable write through the store's write path, and writes
	// their verdicts and their villages' sums. It returns how many still
	// await one. It returns ErrVerdictsNotKept before KeepVerdicts.
	RefreshVerdicts(ctx context.Context, today time.Time, limit int) (pending int, err error)
	// AreaVerdicts calls emit with the sums of every area of the level
	// (verify.LevelVillage, LevelTownship, LevelCounty) of the actor's
	// scope that has households, in code order, read from the per-village
	// sums in one read transaction, and returns what they reflect. It
	// returns ErrVerdictsNotKept before KeepVerdicts; an error from emit
	// stops it and is returned.
	AreaVerdicts(ctx context.Context, actor Actor, level string, today time.Time, emit func(*AreaVerdicts) error) (VerdictsRead, error)
}

// ErrVerdictsNotKept is the answer of a VerdictStore before it was told
// to keep verdicts (KeepVerdicts): a reader judges every household
// instead (ReportService.Verification).
var ErrVerdictsNotKept = errors.New("the store keeps no household verdicts")

// VerdictRefreshBatch is how many households a refresh judges in one
// write transaction: a batch holds the writer for tens of milliseconds,
// not the time of a county.
const VerdictRefreshBatch = 500

// RefreshVerdicts brings the store's kept verdicts up to date as of the
// service's today, batch after batch, until none awaits (or ctx ends):
// what the server runs at start-up and in the background. It returns
// ErrVerdictsNotKept when the store keeps none.
func (r *ReportService) RefreshVerdicts(ctx context.Context) error {
	vs, ok := r.store.(VerdictStore)
	if !ok {
		return ErrVerdictsNotKept
	}
	for {
		left, err := vs.RefreshVerdicts(ctx, r.now(), VerdictRefreshBatch)
		if err != nil || left == 0 {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// VerdictRollupPendingLimit is the most households a roll-up read
// re-judges itself before reading the sums; with more pending it reads
// the sums as they are and says how many await (VerdictsRead.Pending),
// the background refresher catching up.
const VerdictRollupPendingLimit = 2000

// VerdictRollup calls emit with the verification and follow-up counts of
// every area of the level in the actor's scope, from the store's kept
// sums (VerdictStore) when it keeps them, after re-judging what awaits
// when that is at most VerdictRollupPendingLimit households; else from
// every household judged live (Verification, Followups), with Pending
// zero and AsOf today. A level of no other name is EInvalid.
func (r *ReportService) VerdictRollup(ctx context.Context, actor Actor, level string, emit func(*AreaVerdicts) error) (VerdictsRead, error) {
	digits := survey.LevelDigits(level)
	if digits == 0 {
		return VerdictsRead{}, Errorf(EInvalid, "no level %q of areas", level)
	}
	registry, err := r.registryHouseholds(ctx)
	if err != nil {
		return VerdictsRead{}, err
	}
	rs, keepsRegistry := r.store.(RegistrySumStore)
	if vs, ok := r.store.(VerdictStore); ok && (!registry || keepsRegistry) {
		if registry {
			// The registry-only households kept up to date first, as a
			// read of the coverage sums does.
			if err := r.refreshRegistrySums(ctx); err != nil {
				return VerdictsRead{}, err
			}
		}
		read, err := vs.AreaVerdicts(ctx, actor, level, r.now(), func(*AreaVerdicts) error { return errStopRead })
		if err == nil || errors.Is(err, errStopRead) {
			if read.Pending > 0 && read.Pending <= VerdictRollupPendingLimit {
				if _, err := vs.RefreshVerdicts(ctx, r.now(), VerdictRollupPendingLimit); err != nil {
					return VerdictsRead{}, err
				}
			}
			if !registry {
				return vs.AreaVerdicts(ctx, actor, level, r.now(), emit)
			}
			read, err := r.keptWithRegistryOnly(ctx, vs, rs, actor, level, digits, emit)
			if !errors.Is(err, ErrSummariesNotKept) {
				return read, err
			}
		} else if !errors.Is(err, ErrVerdictsNotKept) {
			return VerdictsRead{}, err
		}
		return r.liveVerdictRollup(ctx, actor, digits, level, emit)
	}
	return r.liveVerdictRollup(ctx, actor, digits, level, emit)
}

var errStopRead = errors.New("stop")

// keptWithRegistryOnly is the roll-up of the kept verdicts' sums (the
// recorded households) with, in each area, the households only a
// registry lists added: the store's kept ones (RegistrySumStore, one read
// of as many rows as there are such households), each judged as of today
// as the live roll-up judges it — a household of its village and head's
// name and nothing else (RegistryOnlyOf). It holds one sum per area. It
// returns ErrSummariesNotKept, having emitted nothing, when the store
// keeps no registry-only households yet.
func (r *ReportService) keptWithRegistryOnly(ctx context.Context, vs VerdictStore, rs RegistrySumStore, actor Actor, level string, digits int, emit func(*AreaVerdicts) error) (VerdictsRead, error) {
	j, err := NewVerdictJudge(r.schema)
	if err != nil {
		return VerdictsRead{}, err
	}
	today := r.now()
	forms := j.Forms()
	extra := map[string]map[string]int{}
	if _, err := rs.RegistryOnlyInScope(ctx, actor, func(o RegistryOnly) error {
		village, _ := json.Marshal(o.Village)
		head, _ := json.Marshal(o.HeadName)
		h := &survey.HouseholdInspections{ID: o.ID, Village: o.Village, HeadName: o.HeadName,
			Fields: map[string]json.RawMessage{forms.Village: village, forms.HeadName: head}}
		k := j.Judge(h, today)
		area := o.Village[:min(digits, len(o.Village))]
		if extra[area] == nil {
			extra[area] = map[string]int{}
		}
		for key, n := range k.Keys() {
			extra[area][key] += n
		}
		return nil
	}); err != nil {
		return VerdictsRead{}, err
	}
	var areas []*AreaVerdicts
	read, err := vs.AreaVerdicts(ctx, actor, level, today, func(a *AreaVerdicts) error {
		c := *a
		areas = append(areas, &c)
		return nil
	})
	if err != nil {
		return read, err
	}
	for _, a := range areas {
		if keys, ok := extra[a.Verification.Code]; ok {
			add := j.AreaOf(level, a.Verification.Code, keys)
			addAreaVerdicts(a, &add)
			delete(extra, a.Verification.Code)
		}
	}
	for code, keys := range extra {
		a := j.AreaOf(level, code, keys)
		areas = append(areas, &a)
	}
	slices.SortFunc(areas, func(a, b *AreaVerdicts) int { return strings.Compare(a.Verification.Code, b.Verification.Code) })
	for _, a := range areas {
		if err := emit(a); err != nil {
			return read, err
		}
	}
	return read, nil
}

// addAreaVerdicts adds the counts of a to into (the same area).
func addAreaVerdicts(into, a *AreaVerdicts) {
	addArea(&into.Verification, &a.Verification)
	f, g := &into.Followups, &a.Followups
	f.Households += g.Households
	f.Monitored += g.Monitored
	f.Listed += g.Listed
	f.Due += g.Due
	if f.ByStatus == nil {
		f.ByStatus = map[string]int{}
	}
	for st, n := range g.ByStatus {
		f.ByStatus[st] += n
	}
}

// registryHouseholds reports whether the households of the reports
// include some only a registry lists (the store holds an import and the
// forms declare registries): the kept verdicts are of the recorded
// households only, so the roll-up is judged live then.
func (r *ReportService) registryHouseholds(ctx context.Context) (bool, error) {
	rs, ok := r.store.(RegistryStore)
	if reg := r.schema.Registries(); !ok || reg == nil || len(reg.Sources) == 0 {
		return false, nil
	}
	imps, err := rs.RegistryImports(ctx, "")
	return len(imps) > 0, err
}

// liveVerdictRollup judges every household of the scope and sums the
// verdicts per area of digits digits, in code order.
func (r *ReportService) liveVerdictRollup(ctx context.Context, actor Actor, digits int, level string, emit func(*AreaVerdicts) error) (VerdictsRead, error) {
	j, err := NewVerdictJudge(r.schema)
	if errors.Is(err, verify.ErrNoVerification) {
		return VerdictsRead{}, &Error{Code: ENotFound, Title: "No verification",
			Message: "the served forms' version declares no verification (verification.json)"}
	}
	if err != nil {
		return VerdictsRead{}, err
	}
	today := r.now()
	var code string
	var keys map[string]int
	flush := func() error {
		if keys == nil {
			return nil
		}
		a := j.AreaOf(level, code, keys)
		keys = nil
		return emit(&a)
	}
	at, err := r.households(ctx, actor, HouseholdQuery{Forms: j.forms, Children: true}, func(h *survey.HouseholdInspections) error {
		k := j.Judge(h, today)
		area := h.Village[:min(digits, len(h.Village))]
		if keys != nil && area != code {
			if err := flush(); err != nil {
				return err
			}
		}
		if keys == nil {
			code, keys = area, map[string]int{}
		}
		for key, n := range k.Keys() {
			keys[key] += n
		}
		return nil
	})
	if err != nil {
		return VerdictsRead{}, err
	}
	if err := flush(); err != nil {
		return VerdictsRead{}, err
	}
	return VerdictsRead{At: at, AsOf: today.UTC().Format(time.DateOnly)}, nil
}

// KeptVerification is the verification report's roll-ups without its
// households, as of today, from the kept sums (VerdictRollup at the
// villages' level): it calls village with each village's roll-up (no list
// of households not verified), in code order, and returns the townships,
// counties and totals added up from them, and what the sums reflect.
func (r *ReportService) KeptVerification(ctx context.Context, actor Actor, village func(*verify.Area) error) (*VerificationReport, VerdictsRead, error) {
	out := &VerificationReport{}
	var total *verify.Area
	add := func(list *[]verify.Area, level, code string, a *verify.Area) {
		if n := len(*list); n == 0 || (*list)[n-1].Code != code {
			*list = append(*list, verify.Area{Level: level, Code: code, BlockedBy: map[string]int{}})
		}
		addArea(&(*list)[len(*list)-1], a)
	}
	following := r.Monitor() != nil
	read, err := r.VerdictRollup(ctx, actor, verify.LevelVillage, func(a *AreaVerdicts) error {
		v := a.Verification
		if following {
			// The follow-up picture the live roll-up carries (Judge).
			v.Followups = &verify.FollowupCounts{Monitored: a.Followups.Monitored, Listed: a.Followups.Listed,
				Due: a.Followups.Due, ByStatus: maps.Clone(a.Followups.ByStatus)}
		}
		if total == nil {
			total = &verify.Area{Level: verify.LevelTotal, BlockedBy: map[string]int{}}
		}
		addArea(total, &v)
		add(&out.Townships, verify.LevelTownship, v.Code[:min(9, len(v.Code))], &v)
		add(&out.Counties, verify.LevelCounty, v.Code[:min(6, len(v.Code))], &v)
		return village(&v)
	})
	if err != nil {
		return nil, read, err
	}
	if total == nil {
		total = &verify.Area{Level: verify.LevelTotal, BlockedBy: map[string]int{}}
		if v := r.Verifier(); v != nil {
			for _, g := range v.Guarantees() {
				total.BlockedBy[g.Name] = 0
			}
		}
		if m := r.Monitor(); m != nil {
			total.Followups = &verify.FollowupCounts{ByStatus: map[string]int{}}
			for _, st := range m.Statuses() {
				total.Followups.ByStatus[st.Name] = 0
			}
		}
	}
	out.Totals, out.At = *total, read.At
	return out, read, nil
}

// addArea adds the counts of a to into.
func addArea(into, a *verify.Area) {
	into.Households += a.Households
	into.Verified += a.Verified
	into.Blocked += a.Blocked
	into.Incomplete += a.Incomplete
	for g, n := range a.BlockedBy {
		into.BlockedBy[g] += n
	}
	if a.Followups != nil {
		if into.Followups == nil {
			into.Followups = &verify.FollowupCounts{ByStatus: map[string]int{}}
		}
		into.Followups.Monitored += a.Followups.Monitored
		into.Followups.Listed += a.Followups.Listed
		into.Followups.Due += a.Followups.Due
		for st, n := range a.Followups.ByStatus {
			into.Followups.ByStatus[st] += n
		}
	}
}

// VerdictSumsTx is the SQL that keeping the villages' verdict sums needs
// of a store's write transaction: a village's counters as one JSON
// document.
type VerdictSumsTx interface {
	// LoadVillageVerdicts returns the village's counters document, and
	// false when the village has none.
	LoadVillageVerdicts(ctx context.Context, village string) (doc string, ok bool, err error)
	// SaveVillageVerdicts writes the village's counters document.
	SaveVillageVerdicts(ctx context.Context, village, doc string) error
	// DeleteVillageVerdicts removes the village's counters.
	DeleteVillageVerdicts(ctx context.Context, village string) error
}

// WriteVerdictSums adds changes to the villages' sums through tx: each
// village's counters read, changed and written once, in village order; a
// counter at zero is dropped, a village left without any loses its row.
func WriteVerdictSums(ctx context.Context, tx VerdictSumsTx, changes VerdictChanges) error {
	for _, village := range slices.Sorted(maps.Keys(changes)) {
		counts := map[string]int{}
		doc, ok, err := tx.LoadVillageVerdicts(ctx, village)
		if err != nil {
			return fmt.Errorf("village_verdicts of %s: %w", village, err)
		}
		if ok {
			if err := json.Unmarshal([]byte(doc), &counts); err != nil {
				return fmt.Errorf("village_verdicts of %s: %w", village, err)
			}
		}
		for k, n := range changes[village] {
			if counts[k] += n; counts[k] == 0 {
				delete(counts, k)
			}
		}
		if len(counts) == 0 {
			if err := tx.DeleteVillageVerdicts(ctx, village); err != nil {
				return fmt.Errorf("village_verdicts of %s: %w", village, err)
			}
			continue
		}
		b, err := json.Marshal(counts)
		if err != nil {
			return err
		}
		if err := tx.SaveVillageVerdicts(ctx, village, string(b)); err != nil {
			return fmt.Errorf("village_verdicts of %s: %w", village, err)
		}
	}
	return nil
}
