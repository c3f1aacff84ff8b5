package postgres

// Exported for the external tests: the retry policy cannot be driven to a
// deadlock on demand through the public API.
var (
	Retry      = retry
	StoreError = storeError
)
