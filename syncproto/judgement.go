package syncproto

import (
	"context"
	"errors"
	"time"

	"github.com/fieldsync/fieldsync/schema/monitor"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/schema/verify"
)

// Judging are the callbacks of ReportService.Judge, each optional (nil:
// not called).
type Judging struct {
	// Verdict is called with each household's verdict (when the schema
	// declares a verification).
	Verdict func(*verify.Verdict) error
	// Listed is called with each household that belongs on the follow-up
	// list (monitor.Followup.Listed), after its verdict (when the schema
	// declares a monitoring).
	Listed func(*monitor.Followup) error
	// Village is called with each village's verification roll-up once
	// its last household is judged, before the first household of the
	// next village; with a monitoring it carries the village's
	// follow-ups (verify.Area.Followups).
	Village func(*verify.Area) error
}

// Judgement is what Judge ends with: the verification (nil without a
// verification.json) and the follow-ups (nil without a monitoring.json)
// of the same households, from the same read.
type Judgement struct {
	Verification *VerificationReport
	Followups    *FollowupReport
}

// Judge reads the households of the actor's scope once, with every child
// record (HouseholdQuery.Children), in village order, from one read of
// the store, and judges each as of the day asOf: its verdict
// (verify.Verifier.Evaluate, when the schema declares a verification) and
// on that verdict its follow-up (monitor.Monitor.Evaluate, when it
// declares a monitoring). The verification counts every household the
// reports count (also those only a registry lists, see households); the
// follow-ups those the teams recorded. Each verification roll-up (village,
// township, county, totals) carries the follow-up picture of its
// households when the schema declares a monitoring. The service holds one
// household and one village at a time. An error from a callback stops the
// read and is returned; a schema with neither declaration is ENotFound.
func (r *ReportService) Judge(ctx context.Context, actor Actor, asOf time.Time, cb Judging) (*Judgement, error) {
	v, err := verify.New(r.schema)
	if errors.Is(err, verify.ErrNoVerification) {
		v, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := monitor.New(r.schema)
	if errors.Is(err, monitor.ErrNoMonitoring) {
		m, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if v == nil && m == nil {
		return nil, &Error{Code: ENotFound, Title: "No verification",
			Message: "the served forms' version declares neither a verification (verification.json) nor a monitoring (monitoring.json)"}
	}
	out := &Judgement{}
	var roll *verify.Rollup
	if v != nil {
		roll = v.NewRollup()
		if m != nil {
			var names []string
			for _, s := range m.Statuses() {
				names = append(names, s.Name)
			}
			roll.FollowUp(names)
		}
	}
	var village *monitor.Counts
	if m != nil {
		out.Followups = &FollowupReport{Totals: *m.NewCounts(verify.LevelTotal, "")}
	}
	at, err := r.householdsMarked(ctx, actor, HouseholdQuery{Forms: r.forms, Children: true}, func(h *survey.HouseholdInspections, recorded bool) error {
		var verdict *verify.Verdict
		if v != nil {
			vd := v.Evaluate(h, asOf)
			verdict = &vd
			if done := roll.Add(verdict); done != nil && cb.Village != nil {
				if err := cb.Village(done); err != nil {
					return err
				}
			}
		}
		var f *monitor.Followup
		if m != nil && recorded {
			fu := m.Evaluate(h, verdict, asOf)
			f = &fu
			if village == nil || village.Code != h.Village {
				if village != nil {
					out.Followups.Villages = append(out.Followups.Villages, *village)
				}
				village = m.NewCounts(verify.LevelVillage, h.Village)
			}
			village.Add(f)
			out.Followups.Totals.Add(f)
			if roll != nil {
				roll.AddFollowed(verify.Followed{Monitored: f.Monitored, Status: f.Status, Listed: f.Listed(), Due: f.Due})
			}
		}
		if verdict != nil && cb.Verdict != nil {
			if err := cb.Verdict(verdict); err != nil {
				return err
			}
		}
		if f != nil && f.Listed() && cb.Listed != nil {
			return cb.Listed(f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if roll != nil {
		last, townships, counties, totals := roll.Finish()
		if last != nil && cb.Village != nil {
			if err := cb.Village(last); err != nil {
				return nil, err
			}
		}
		out.Verification = &VerificationReport{Townships: townships, Counties: counties, Totals: totals, At: at}
	}
	if out.Followups != nil {
		if village != nil {
			out.Followups.Villages = append(out.Followups.Villages, *village)
		}
		out.Followups.At = at
	}
	return out, nil
}
