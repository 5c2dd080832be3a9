package syncproto

// SupervisionStore is the part of the store contract behind the
// supervisors' queues: conflicts, quarantine, devices, duplicates.
type SupervisionStore interface{}
