package sqlite

// Exported for the external tests: the classification of driver errors is
// proven on errors caused through a raw connection.
var StoreError = storeError
