package cli

// PrintUnlockKey lets the specs read what `cluster init --autolock` prints,
// as init itself runs until it is stopped by a signal.
var PrintUnlockKey = printUnlockKey
