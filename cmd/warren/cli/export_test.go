package cli

// NewServiceLogsCommand lets the specs run `warren service logs` by itself
// as long as service.go does not register it.
var NewServiceLogsCommand = newServiceLogsCommand
