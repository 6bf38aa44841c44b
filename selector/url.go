package selector

import (
	"fmt"
	"net/url"
	"strings"
)

// WebURL is what a Concourse web URL names, e.g.
// /teams/T/pipelines/P/jobs/J/builds/B?vars.branch="main" or
// /teams/T/pipelines/P/resources/R or /builds/ID.
type WebURL struct {
	Team, Pipeline, Job, Build, Resource string
	// BuildID is set for /builds/ID, a global build id.
	BuildID      string
	InstanceVars InstanceVars
}

// ParseWebURL reads the path as key/value segments, as fly's -u does. Only the
// path and query are used: the cluster, not the URL's host, is the target.
func ParseWebURL(raw string) (WebURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return WebURL{}, fmt.Errorf("-u %q: %w", raw, err)
	}
	var w WebURL
	segs := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	if len(segs)%2 != 0 {
		return WebURL{}, fmt.Errorf("-u %q: want /teams/TEAM/pipelines/PIPELINE/jobs/JOB/builds/BUILD, .../resources/RESOURCE or /builds/ID", raw)
	}
	for i := 0; i < len(segs); i += 2 {
		value, err := url.PathUnescape(segs[i+1])
		if err != nil {
			return WebURL{}, fmt.Errorf("-u %q: %w", raw, err)
		}
		var field *string
		switch segs[i] {
		case "teams":
			field = &w.Team
		case "pipelines":
			field = &w.Pipeline
		case "jobs":
			field = &w.Job
		case "builds":
			field = &w.Build
		case "resources":
			field = &w.Resource
		default:
			return WebURL{}, fmt.Errorf("-u %q: unknown path segment %q", raw, segs[i])
		}
		if value == "" {
			return WebURL{}, fmt.Errorf("-u %q: empty %s", raw, segs[i])
		}
		*field = value
	}
	if w.Build != "" && w.Job == "" {
		w.BuildID, w.Build = w.Build, ""
	}
	if w.Job != "" && w.Resource != "" {
		return WebURL{}, fmt.Errorf("-u %q: names both a job and a resource", raw)
	}
	if (w.Job != "" || w.Resource != "") && w.Pipeline == "" {
		return WebURL{}, fmt.Errorf("-u %q: names a job or resource without its pipeline", raw)
	}
	if w.Pipeline == "" && w.BuildID == "" {
		return WebURL{}, fmt.Errorf("-u %q: names no pipeline or build", raw)
	}
	if w.InstanceVars, err = InstanceVarsFromQuery(u.Query()); err != nil {
		return WebURL{}, fmt.Errorf("-u %q: %w", raw, err)
	}
	return w, nil
}
