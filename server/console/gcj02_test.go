package console

import (
	"math"
	"testing"
)

// TestWGS84ToGCJ02 checks the shift against a published reference pair
// (the coordtransform libraries' example: WGS-84 116.404 E, 39.915 N) and
// that points outside China stay where they are.
func TestWGS84ToGCJ02(t *testing.T) {
	lat, lon := wgs84ToGCJ02(39.915, 116.404)
	if math.Abs(lat-39.91640428150164) > 1e-9 || math.Abs(lon-116.41024449916938) > 1e-9 {
		t.Errorf("Beijing: got %.14f, %.14f; want 39.91640428150164, 116.41024449916938", lat, lon)
	}
	// A village of the demo (石柱): the shift is a few hundred metres.
	lat, lon = wgs84ToGCJ02(30.0, 108.1)
	if d := math.Hypot((lat-30.0)*111e3, (lon-108.1)*111e3*math.Cos(30*math.Pi/180)); d < 100 || d > 1000 {
		t.Errorf("石柱: shifted %.0f m", d)
	}
	if lat, lon := wgs84ToGCJ02(51.5, -0.12); lat != 51.5 || lon != -0.12 {
		t.Errorf("London moved to %v, %v", lat, lon)
	}
}
