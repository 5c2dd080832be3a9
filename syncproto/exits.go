package syncproto

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/schema"
)

// ExitStore is the part of the store contract behind the list of exits:
// the change log read by the flags its versions carry.
type ExitStore interface {
	// FlaggedVersions returns up to limit versions of the change log that
	// carry any of flags (FlagDecided, FlagOverride, FlagRegistered…),
	// written in a village of the actor's scope, in log order after
	// position after (a change-log position, 0 from the start), with the
	// position to continue from. A store keeps this a read of the flagged
	// versions alone, not of the whole log.
	FlaggedVersions(ctx context.Context, actor Actor, flags []string, after int64, limit int) ([]FlaggedVersion, int64, error)
}

// FlaggedVersion is a version of the change log with the village it was
// written in.
type FlaggedVersion struct {
	LogEntry
	Village string
}

// ExitFlags are the flags of the exits list by default: the decided
// values set on a verified verdict and the overrides.
var ExitFlags = []string{FlagDecided, FlagOverride}

// Exit is one decided value of a household as the change log recorded
// it: which field took which value, decided (on a verified verdict),
// override (without it, with a note) or registered, by whom and when, and
// the verdict of that moment as the version's note records it.
type Exit struct {
	Seq              int64
	Household        string
	Village          string
	Field, Value     string
	Flag             string
	By, Device, Op   string
	At               time.Time
	ChangesetID      string
	ConflictIDs      []string
	Verdict, AsOf    string
	BlockedBy        []string
	Decision         string
	OverrideNote     string
	OverrideNoteSeen bool
}

// ExitOf reads a flagged version as an exit by the forms of sch: the
// field is the first of the version's changes that has a write permission
// (schema.Write), and the override note is that permission's note field
// as the version changed it ("" when the version did not change it).
func ExitOf(sch *schema.Schema, v FlaggedVersion) Exit {
	e := Exit{Seq: v.Seq, Household: v.RecordID, Village: v.Village, By: v.UserID, Device: v.DeviceID, Op: v.Op,
		At: v.ServerAt, ChangesetID: v.ChangesetID, ConflictIDs: v.ConflictIDs, Decision: v.Note}
	for _, f := range v.Flags {
		if f == FlagDecided || f == FlagOverride || f == FlagRegistered {
			e.Flag = f
		}
	}
	if form := sch.Form(v.Entity); form != nil {
		for _, fd := range form.Fields {
			fc, ok := v.Changes[fd.Name]
			if fd.Write == nil || !ok {
				continue
			}
			_ = json.Unmarshal(fc.After, &e.Value)
			e.Field = fd.Name
			if n, ok := v.Changes[fd.Write.OverrideNote]; ok && fd.Write.OverrideNote != "" {
				_ = json.Unmarshal(n.After, &e.OverrideNote)
			}
			break
		}
	}
	e.Verdict, e.BlockedBy, e.AsOf = recordedVerdict(v.Note)
	return e
}

// recordedVerdict reads the verdict back from a version's note as
// verdictSummary wrote it: the overall verdict, the guarantees blocking
// it, its day; all empty when the note records none (a registered
// household, a permission that requires no verdict).
func recordedVerdict(note string) (overall string, by []string, asOf string) {
	_, rest, ok := strings.Cut(note, " on verdict ")
	if !ok {
		return "", nil, ""
	}
	rest, _, _ = strings.Cut(rest, "; standards ")
	rest, asOf, _ = strings.Cut(rest, " as of ")
	overall, blocked, _ := strings.Cut(rest, " by ")
	if blocked != "" {
		by = strings.Split(blocked, ", ")
	}
	return overall, by, asOf
}
