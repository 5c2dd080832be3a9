package syncproto

import "testing"

// ParsePull accepts a cursor from the device it was bound to, an unbound
// one only for the actor's own scope (or none), and refuses the rest at
// path "cursor"; the device survives the round trip through Encode.
func TestParsePullBindsCursorsToTheirDevice(t *testing.T) {
	k := NewCursorCodec([]byte("0123456789abcdef0123456789abcdef"))
	dev := "0b6f3c1e-7a52-4c8e-9d1e-4f2a6b7c8d9e"
	south := Actor{DeviceID: dev, Scope: []string{"500240107"}}
	north := Actor{DeviceID: "5d1c9a2b-3e4f-4a6b-8c7d-9e0f1a2b3c4d", Scope: []string{"150422"}}
	cases := []struct {
		name   string
		cursor Cursor
		actor  Actor
		ok     bool
	}{
		{"bound, its device", Cursor{Seq: 9, Scope: south.ScopeKey(), Device: dev}, south, true},
		{"bound, its device in a transition", Cursor{Seq: 9, Scope: "150422", Transition: 4, Device: dev}, south, true},
		{"bound, another device", Cursor{Seq: 9, Scope: south.ScopeKey(), Device: dev}, north, false},
		{"bound, no device", Cursor{Seq: 9, Device: dev}, Actor{Scope: []string{"500240107"}}, false},
		{"unbound, own scope", Cursor{Seq: 9, Scope: south.ScopeKey()}, south, true},
		{"unbound, no scope", Cursor{Seq: 9}, north, true},
		{"unbound, another scope", Cursor{Seq: 9, Scope: south.ScopeKey()}, north, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := k.ParsePull(k.Encode(c.cursor), c.actor)
			if c.ok && (err != nil || got != c.cursor) {
				t.Fatalf("ParsePull = %+v, %v; want %+v", got, err, c.cursor)
			}
			if !c.ok {
				var e *Error
				if !asError(err, &e) || e.Code != EInvalid || len(e.Errors) != 1 || e.Errors[0].Path != "cursor" {
					t.Fatalf("ParsePull = %+v, %v; want EInvalid at path cursor", got, err)
				}
			}
		})
	}
	// A bound cursor whose device is not an id is not one this server made.
	if _, err := k.Parse(k.Encode(Cursor{Seq: 1, Device: "a.b"})); err == nil {
		t.Fatal("a cursor with a dotted device parsed")
	}
}
