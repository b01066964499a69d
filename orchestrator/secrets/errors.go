package secrets

import "errors"

var (
	// ErrInvalid is wrapped by errors for arguments of the wrong size or
	// empty: a caller's bug, not bad data.
	ErrInvalid = errors.New("secrets: invalid argument")

	// ErrWrongKey is wrapped when a wrapped data key does not open under
	// the key-encryption key given: the KEK was derived from another
	// cluster ID or salt, or the wrapped key was altered.
	ErrWrongKey = errors.New("secrets: wrong key")

	// ErrDamaged is wrapped when sealed data cannot be read: it is
	// truncated, altered, of an unknown format version, or (for a secret)
	// sealed for another secret or under another data key.
	ErrDamaged = errors.New("secrets: damaged data")
)
