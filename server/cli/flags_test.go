package cli

import (
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/server/api"
)

func TestReinspectAfterFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{"365d": 365 * 24 * time.Hour, "30d": 30 * 24 * time.Hour, "720h": 720 * time.Hour} {
		var d time.Duration
		if err := (reinspectAfterFlag{&d}).Set(in); err != nil || d != want {
			t.Errorf("%s: %v, %v", in, d, err)
		}
	}
	for _, in := range []string{"", "0d", "-3d", "0", "-1h", "soon", "1.5d", "99999999d"} {
		d := api.DefaultReinspectAfter
		if err := (reinspectAfterFlag{&d}).Set(in); err == nil || d != api.DefaultReinspectAfter {
			t.Errorf("%q accepted: %v", in, d)
		}
	}
	d := api.DefaultReinspectAfter
	if s := (reinspectAfterFlag{&d}).String(); s != "365d" {
		t.Errorf("default shown as %q", s)
	}
}
