package cli


func TestReinspectAfterFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{"365d": 365 * 24 * time.Hour, "30d": 30 * 24 * time.Hour, "720h": 720 * time.Hour} {
		var d time.Duration
		if err := (reinspectAfterFlag{&d}).Set(in); err != nil || d != want {
			t.Errorf("%s: %v, %v", in, d, err)
		}
	}
	for _, in := range []string{"", "0d", "-3d", "0", "-1h", "soon", "1.5d", "99999999d"} {
		d := DefaultReinspectAfter
		if err := (reinspectAfterFlag{&d}).Set(in); err == nil || d != DefaultReinspectAfter {
			t.Errorf("%q accepted: %v", in, d)
		}
	}
	d := DefaultReinspectAfter
	if s := (reinspectAfterFlag{&d}).String(); s != "365d" {
		t.Errorf("default shown as %q", s)
	}
}
