"""One router per resource: jobs (and their frames, candidates, events) and the daemon itself."""
