package console

import (
	"net/http"
	"net/url"

	"github.com/fieldsync/fieldsync/schema"
)

// exportLink is one download of the exports page.
type exportLink struct {
	What, Format, Lang, URL string
}

// exportsPage lists the region's downloads: the snapshot of every entity in
// every format, and the reports, each in every language of its tables.
type exportsPage struct {
	Region, RegionName string
	Regions            []string
	Snapshots          []exportLink
	Reports            []exportLink
}

func (exportsPage) pageTitle(lang string) string { return t(lang, "nav_exports") }

// tableLangs are the languages of a CSV or XLSX table.
var tableLangs = []string{schema.LangZH, schema.LangEN, "codes"}

// handleExports is GET /console/exports?region=: links to the API's
// export endpoints, which the session authorises (the API takes the
// console's cookie for these downloads).
func (c *Console) handleExports(q *request) {
	region := q.r.URL.Query().Get("region")
	if region == "" && !q.actor.AllRegions && len(q.actor.Scope) > 0 {
		region = q.actor.Scope[0]
	}
	if region != "" {
		if _, ok := regionActor(q.actor, region); !ok {
			c.refuse(q.w, q.r, q.lang, http.StatusForbidden, "msg_scope")
			return
		}
	}
	p := exportsPage{Region: region, RegionName: t(q.lang, "all_regions"), Regions: q.actor.Scope}
	if region != "" {
		p.RegionName = c.regionName(region)
	}
	link := func(path string, params ...string) string {
		v := url.Values{}
		if region != "" {
			v.Set("region", region)
		}
		for i := 0; i+1 < len(params); i += 2 {
			if params[i+1] != "" {
				v.Set(params[i], params[i+1])
			}
		}
		return path + "?" + v.Encode()
	}
	for _, e := range c.cfg.Schema.Entities() {
		p.Snapshots = append(p.Snapshots, exportLink{What: e, Format: "ndjson", URL: link("/v1/snapshot", "entity", e, "format", "ndjson")})
		for _, l := range tableLangs {
			p.Snapshots = append(p.Snapshots, exportLink{What: e, Format: "csv", Lang: l, URL: link("/v1/snapshot", "entity", e, "format", "csv", "lang", l)})
		}
		if e == "household" { // the one entity a GeoJSON snapshot takes
			p.Snapshots = append(p.Snapshots, exportLink{What: e, Format: "geojson", URL: link("/v1/snapshot", "entity", e, "format", "geojson")})
		}
	}
	for _, l := range tableLangs {
		p.Snapshots = append(p.Snapshots, exportLink{What: "", Format: "xlsx", Lang: l, URL: link("/v1/snapshot", "format", "xlsx", "lang", l)})
	}
	for _, r := range []struct{ what, path string }{{"coverage_report", "/v1/reports/coverage"}, {"reinspection_list", "/v1/reinspections"}, {"reconciliation_report", "/v1/reports/reconciliation"}} {
		p.Reports = append(p.Reports, exportLink{What: r.what, Format: "json", URL: link(r.path)})
		for _, f := range []string{"csv", "xlsx"} {
			for _, l := range tableLangs {
				p.Reports = append(p.Reports, exportLink{What: r.what, Format: f, Lang: l, URL: link(r.path, "format", f, "lang", l)})
			}
		}
	}
	c.renderPage(q, http.StatusOK, "exports", p, false)
}
