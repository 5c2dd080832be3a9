package syncproto

import (
	"context"
	"time"

	"github.com/fieldsync/fieldsync/schema/verify"
)

// VerificationReport is what a verification report ends with: the roll-ups
// of the townships and counties (the villages were emitted as they
// completed), the totals, and the point of the change log the report
// reflects.
type VerificationReport struct {
	Townships, Counties []verify.Area
	Totals              verify.Area
	At                  Cursor
}

// Verifier returns the verifier of the service's schema, or nil when the
// schema declares no verification (verification.json).
func (r *ReportService) Verifier() *verify.Verifier {
	v, err := verify.New(r.schema)
	if err != nil {
		return nil
	}
	return v
}

// Verification judges every household of the actor's scope as of the day
// asOf (verify.Verifier.Evaluate), from one read of the store with every
// child record (HouseholdQuery.Children), in village order (Judge). It
// calls household with each verdict, and village with each village's
// roll-up once its last household is judged (after that household), so
// that the service holds one household and one village's list at a time.
// It returns the townships, counties and totals. With a monitoring
// (monitoring.json) every roll-up carries its households' follow-ups
// (verify.Area.Followups), judged on the same verdicts. An error from
// either callback stops the report and is returned; a schema without a
// verification is ENotFound.
func (r *ReportService) Verification(ctx context.Context, actor Actor, asOf time.Time,
	household func(*verify.Verdict) error, village func(*verify.Area) error) (*VerificationReport, error) {
	if r.Verifier() == nil {
		return nil, &Error{Code: ENotFound, Title: "No verification",
			Message: "the served forms' version declares no verification (verification.json)"}
	}
	j, err := r.Judge(ctx, actor, asOf, Judging{Verdict: household, Village: village})
	if err != nil {
		return nil, err
	}
	return j.Verification, nil
}
