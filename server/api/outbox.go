package api

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fieldsync/fieldsync/syncproto"
)

// replayedSetJSON is one change set's outcome in the answer of a replay.
type replayedSetJSON struct {
	ChangesetID string `json:"changeset_id"`
	DeviceSeq   int64  `json:"device_seq"`
	// Status is applied (applied now), replayed (the server already held
	// it: nothing applied again) or refused (nothing of it was written).
	Status  string                   `json:"status"`
	Results []syncproto.ChangeResult `json:"results,omitempty"`
	Problem *Problem                 `json:"problem,omitempty"`
}

// handleReplayOutbox is POST /v1/devices/{device_id}/outbox: a supervisor
// (or admin) hands on the exported outbox of a revoked tablet. Its change
// sets apply as that tablet and its user (their ids and device_seq order,
// so a change set the server already holds is a replay), and each version
// they make records who replayed it through which device. Only for a
// revoked device (409 otherwise: a live tablet pushes its own outbox) whose
// user works inside the caller's scope (403).
func (s *Server) handleReplayOutbox(c echo.Context) error {
	if err := onlyParams(c.QueryParams()); err != nil {
		return err
	}
	device, users, err := s.supervisedDevice(c)
	if err != nil {
		return err
	}
	actor := s.actor(c)
	ctx := c.Request().Context()
	revoked, err := s.accounts.DeviceRevoked(ctx, device)
	if err != nil {
		return err
	}
	if !revoked {
		return &syncproto.Error{Code: syncproto.EConflict, Title: "Device not revoked",
			Message: "this device can still push its own outbox; an outbox is replayed only for a revoked device " +
				"(revoke it first: POST /v1/devices/{device_id}/revoke)",
			Errors: []syncproto.FieldError{{Path: "path.device_id", Message: "is not revoked"}}}
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	req, err := syncproto.DecodeOutbox(body, s.schema, device, s.limits.MaxChanges, syncproto.MaxOutboxSets)
	if err != nil {
		return err
	}
	var original *syncproto.Actor
	for _, u := range users {
		if u.Name == req.User {
			a := u.Actor(device)
			original = &a
		}
	}
	if original == nil {
		return &syncproto.Error{Code: syncproto.EInvalid, Title: "Invalid outbox",
			Message: "the outbox names a user who never signed in on this device",
			Errors:  []syncproto.FieldError{{Path: "user", Message: "is not the user of device " + device}}}
	}
	done, err := s.push.ReplayOutbox(ctx, *original, actor, req.Sets)
	if err != nil {
		return err
	}
	out := make([]replayedSetJSON, len(done))
	counts := map[string]int{}
	for i, d := range done {
		out[i] = replayedSetJSON{ChangesetID: d.ChangesetID, DeviceSeq: d.DeviceSeq, Results: d.Response.Results}
		switch {
		case d.Err != nil:
			p := problemFor(d.Err)
			out[i].Status, out[i].Problem, out[i].Results = "refused", &p, nil
		case d.Response.Replayed:
			out[i].Status = "replayed"
		default:
			out[i].Status = "applied"
			s.metrics.observePush(req.Sets[i], d.Response)
		}
		counts[out[i].Status]++
	}
	s.reqLog(c).Info("outbox replayed", "device", device, "by", actor.UserID, "via", actor.DeviceID,
		"applied", counts["applied"], "replayed", counts["replayed"], "refused", counts["refused"])
	return writeJSON(c, http.StatusOK, map[string]any{"device_id": device, "user": original.UserID,
		"replayed_by": actor.UserID, "via_device": actor.DeviceID, "changesets": out})
}

// historyReplay is the replay note of a version in GET .../history.
type historyReplay struct {
	By     string `json:"by"`
	Device string `json:"device"`
	At     string `json:"at"`
}

func replayJSON(r *syncproto.Replay) json.RawMessage {
	if r == nil {
		return nil
	}
	b, _ := json.Marshal(historyReplay{By: r.By, Device: r.Device, At: syncproto.FormatTime(r.At)})
	return b
}
