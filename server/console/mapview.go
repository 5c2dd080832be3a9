package console

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/fieldsync/fieldsync/schema"
	"github.com/fieldsync/fieldsync/schema/survey"
	"github.com/fieldsync/fieldsync/syncproto"
)

// The map is an SVG of mapWidth × mapHeight in Web Mercator pixels at the
// largest zoom that fits the households, with the configured tiles (if
// any) drawn under the points.
const (
	mapWidth, mapHeight = 800, 600
	mapMaxZoom          = 18
	tileSize            = 256
)

// mapPoint is one household on the map.
type mapPoint struct {
	ID, Name, Class, Label string
	X, Y                   float64
}

// mapTile is one tile image under the points.
type mapTile struct {
	URL  string
	X, Y float64
}

// mapPage is the map of a region.
type mapPage struct {
	Code, Name, By string
	Width, Height  int
	Points         []mapPoint
	Tiles          []mapTile
	Unlocated      []householdRow
	Legend         []legendEntry
	GCJ02          bool
}

// legendEntry is one colour of the map.
type legendEntry struct{ Class, Label string }

func (p *mapPage) pageTitle(lang string) string { return t(lang, "nav_map") + " · " + p.Name }

// mercator is the Web Mercator pixel position of a point at zoom 0.
func mercator(lat, lon float64) (x, y float64) {
	lat = math.Max(-85.05112878, math.Min(85.05112878, lat))
	x = (lon + 180) / 360 * tileSize
	s := math.Sin(lat * math.Pi / 180)
	y = (0.5 - math.Log((1+s)/(1-s))/(4*math.Pi)) * tileSize
	return x, y
}

// handleMap is GET /console/map/{code}?by=grade|water: every household of
// the region with a location as a point coloured by its latest grade or
// its water verdict, each a link to the household; those without a
// location listed beside.
func (c *Console) handleMap(q *request) {
	code := q.r.PathValue("code")
	if code != allRegions && !schema.IsRegion(code) {
		c.refuse(q.w, q.r, q.lang, http.StatusNotFound, "msg_no_region")
		return
	}
	actor, ok := regionActor(q.actor, code)
	if !ok {
		c.refuse(q.w, q.r, q.lang, http.StatusForbidden, "msg_scope")
		return
	}
	by := q.r.URL.Query().Get("by")
	if by != "water" {
		by = "grade"
	}
	forms := survey.FormsOf(c.cfg.Schema)
	locField := ""
	for _, fd := range forms.Household.Fields {
		if fd.Type == "location" {
			locField = fd.Name
			break
		}
	}
	p := &mapPage{Code: code, Name: c.nameOr(code, ""), By: by, Width: mapWidth, Height: mapHeight, GCJ02: c.cfg.Tiles != "" && c.cfg.TilesGCJ02}
	if code == allRegions {
		p.Name = t(q.lang, "all_regions")
	}
	type located struct {
		mapPoint
		lat, lon float64
	}
	var pts []located
	judge := survey.NewWaterJudge(c.cfg.Schema)
	err := c.households(q.r.Context(), actor, func(row syncproto.SnapshotRow) error {
		var name string
		_ = json.Unmarshal(row.Record.Fields[forms.HeadName], &name)
		grade, water := c.judged(row, judge)
		var loc struct {
			Lat *float64 `json:"lat"`
			Lon *float64 `json:"lon"`
		}
		if locField == "" || json.Unmarshal(row.Record.Fields[locField], &loc) != nil || loc.Lat == nil || loc.Lon == nil {
			p.Unlocated = append(p.Unlocated, householdRow{ID: row.Record.ID, HeadName: name, Grade: grade, Water: water})
			return nil
		}
		pt := mapPoint{ID: row.Record.ID, Name: name}
		if by == "grade" {
			pt.Class, pt.Label = "g-none", t(q.lang, "not_inspected")
			if grade != "" {
				pt.Class, pt.Label = "g-"+grade, c.valueLabel(forms.Housing.Entity, forms.Grade, grade, q.lang)
			}
		} else {
			switch water {
			case "safe":
				pt.Class, pt.Label = "w-safe", t(q.lang, "water_safe")
			case "unsafe":
				pt.Class, pt.Label = "w-unsafe", t(q.lang, "water_not_safe")
			default:
				pt.Class, pt.Label = "g-none", t(q.lang, "not_inspected")
			}
		}
		lat, lon := *loc.Lat, *loc.Lon
		if p.GCJ02 {
			lat, lon = wgs84ToGCJ02(lat, lon)
		}
		pts = append(pts, located{mapPoint: pt, lat: lat, lon: lon})
		return nil
	})
	if err != nil {
		c.fail(q.w, q.r, q.lang, err)
		return
	}
	if by == "grade" {
		for _, g := range fieldValues(forms.Housing, forms.Grade) {
			p.Legend = append(p.Legend, legendEntry{Class: "g-" + g, Label: c.valueLabel(forms.Housing.Entity, forms.Grade, g, q.lang)})
		}
	} else {
		p.Legend = []legendEntry{{"w-safe", t(q.lang, "water_safe")}, {"w-unsafe", t(q.lang, "water_not_safe")}}
	}
	p.Legend = append(p.Legend, legendEntry{"g-none", t(q.lang, "not_inspected")})
	if len(pts) > 0 {
		minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
		for i := range pts {
			pts[i].X, pts[i].Y = mercator(pts[i].lat, pts[i].lon)
			minX, maxX = math.Min(minX, pts[i].X), math.Max(maxX, pts[i].X)
			minY, maxY = math.Min(minY, pts[i].Y), math.Max(maxY, pts[i].Y)
		}
		zoom := 0
		for zoom < mapMaxZoom {
			s := math.Exp2(float64(zoom + 1))
			if (maxX-minX)*s > mapWidth-40 || (maxY-minY)*s > mapHeight-40 {
				break
			}
			zoom++
		}
		s := math.Exp2(float64(zoom))
		// The view's top-left corner in pixels at zoom, the points centred.
		ox := (minX+maxX)/2*s - mapWidth/2
		oy := (minY+maxY)/2*s - mapHeight/2
		for _, pt := range pts {
			pt.X, pt.Y = pt.mapPoint.X*s-ox, pt.mapPoint.Y*s-oy
			p.Points = append(p.Points, pt.mapPoint)
		}
		if c.cfg.Tiles != "" {
			n := int(s)
			for tx := int(math.Floor(ox / tileSize)); float64(tx*tileSize) < ox+mapWidth; tx++ {
				for ty := int(math.Floor(oy / tileSize)); float64(ty*tileSize) < oy+mapHeight; ty++ {
					if tx < 0 || ty < 0 || tx >= n || ty >= n {
						continue
					}
					url := strings.NewReplacer("{z}", fmt.Sprint(zoom), "{x}", fmt.Sprint(tx), "{y}", fmt.Sprint(ty)).Replace(c.cfg.Tiles)
					p.Tiles = append(p.Tiles, mapTile{URL: url, X: float64(tx*tileSize) - ox, Y: float64(ty*tileSize) - oy})
				}
			}
		}
	}
	c.renderPage(q, http.StatusOK, "map", p, false)
}
