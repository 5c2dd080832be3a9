package syncproto

// AddMissing appends to errs the errors of missing (the required fields a
// new record lacks, from schema.Form.CheckCreate) whose path has no error
// yet: a field sent with an invalid value is left out of the validated
// fields, and is reported for its value, not a second time as missing.
// So one answer carries every error of a change.
func AddMissing(errs, missing []FieldError) []FieldError {
	for _, m := range missing {
		seen := false
		for _, e := range errs {
			if e.Path == m.Path {
				seen = true
				break
			}
		}
		if !seen {
			errs = append(errs, m)
		}
	}
	return errs
}
