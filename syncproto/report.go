package syncproto

// ReportStore is the part of the store contract that serves supervisors'
// reports: coverage and re-inspection lists.
type ReportStore interface{}
