package console

import (
	"github.com/fieldsync/fieldsync/schema/monitor"
)

// villageFollowups is a village's follow-ups (GET /v1/followups for the
// one village): the monitored households by status and the households on
// the follow-up list with why and when their visit is due.
type villageFollowups struct {
	AsOf     string
	Counts   monitor.Counts
	Statuses []statusCount
	Listed   []monitor.Followup
	triggers map[string]map[string]string
}

// TriggerLabel is a trigger (a reason) by its label in lang, else its name.
func (f *villageFollowups) TriggerLabel(name, lang string) string {
	if l := f.triggers[name][lang]; l != "" {
		return l
	}
	return name
}

// statusCount is one monitoring status with its labels and households.
type statusCount struct {
	Name   string
	Labels map[string]string
	Count  int
}

// Label is the status's label in lang, else its name.
func (s statusCount) Label(lang string) string {
	if l := s.Labels[lang]; l != "" {
		return l
	}
	return s.Name
}

// StatusLabel is a status by its label in lang.
func (f *villageFollowups) StatusLabel(name, lang string) string {
	for _, s := range f.Statuses {
		if s.Name == name {
			return s.Label(lang)
		}
	}
	return name
}
