package secrets

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
)

// dataKeyPurpose starts the associated data of a wrapped data key; the
// cluster ID follows it.
const dataKeyPurpose = "warren data key v1"

// wrappedSize is the length of every wrapped data key.
const wrappedSize = overhead + keySize

// NewDataKey makes a data key from rand and returns it wrapped under kek
// for the cluster clusterID. Call it once, at cluster init, and store the
// result with the cluster; Unwrap gives the Keyring that uses it.
func NewDataKey(kek []byte, clusterID string, rand io.Reader) (wrapped []byte, err error) {
	if rand == nil {
		return nil, fmt.Errorf("%w: random source is nil: pass crypto/rand.Reader", ErrInvalid)
	}
	dek := make([]byte, keySize)
	if _, err := io.ReadFull(rand, dek); err != nil {
		return nil, fmt.Errorf("secrets: read %d random bytes for a data key: %w", keySize, err)
	}
	return wrap(kek, clusterID, dek, rand)
}

// Unwrap opens a data key made by NewDataKey or Rewrap with the same KEK
// and cluster ID, and returns a Keyring that seals and opens secrets with it.
// It returns ErrWrongKey when the key does not open, ErrDamaged when the
// wrapped key is not a wrapped key at all.
func Unwrap(kek []byte, clusterID string, wrapped []byte) (*Keyring, error) {
	dek, err := unwrap(kek, clusterID, wrapped)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}
	return &Keyring{aead: aead}, nil
}

// UnwrapWithPrevious is Unwrap for a cluster whose `secret rotate-key` may
// be in progress: previous (the cluster record's PreviousDataKey, wrapped
// under the same KEK) is the data key being replaced, and the Keyring
// opens what it sealed too, while sealing only under wrapped. An empty
// previous gives what Unwrap gives. Either key failing to open fails it
// all, as Unwrap does: a keyring that could open only some secrets would
// fail later, further from the cause.
func UnwrapWithPrevious(kek []byte, clusterID string, wrapped, previous []byte) (*Keyring, error) {
	k, err := Unwrap(kek, clusterID, wrapped)
	if err != nil || len(previous) == 0 {
		return k, err
	}
	dek, err := unwrap(kek, clusterID, previous)
	if err != nil {
		return nil, fmt.Errorf("the previous data key (of a rotation in progress): %w", err)
	}
	if k.previous, err = newAEAD(dek); err != nil {
		return nil, err
	}
	return k, nil
}

// RotateDataKey starts a data key rotation: it makes a new data key from
// rand and returns it wrapped under newKEK (the cluster's next DataKey),
// with the current one, wrapped under oldKEK, re-wrapped under newKEK
// (its PreviousDataKey). newKEK may be oldKEK: an autolocked cluster's
// unlock key stays. UnwrapWithPrevious(newKEK, ...) of the two opens
// secrets sealed under either; Keyring.Reseal moves them to the new one.
func RotateDataKey(oldKEK, newKEK []byte, clusterID string, current []byte, rand io.Reader) (next, previous []byte, err error) {
	if previous, err = Rewrap(oldKEK, newKEK, clusterID, current, rand); err != nil {
		return nil, nil, err
	}
	if next, err = NewDataKey(newKEK, clusterID, rand); err != nil {
		return nil, nil, err
	}
	return next, previous, nil
}

// Rewrap re-encrypts a wrapped data key from oldKEK to newKEK, for a key
// rotation. The data key itself is unchanged, so secrets sealed under it
// still open; only the wrapped key needs storing again.
func Rewrap(oldKEK, newKEK []byte, clusterID string, wrapped []byte, rand io.Reader) ([]byte, error) {
	if err := checkKEK("new KEK", newKEK); err != nil {
		return nil, err
	}
	dek, err := unwrap(oldKEK, clusterID, wrapped)
	if err != nil {
		return nil, err
	}
	return wrap(newKEK, clusterID, dek, rand)
}

func wrap(kek []byte, clusterID string, dek []byte, rand io.Reader) ([]byte, error) {
	aead, err := kekAEAD(kek, clusterID)
	if err != nil {
		return nil, err
	}
	return seal(aead, dek, associatedData(dataKeyPurpose, clusterID), rand)
}

func unwrap(kek []byte, clusterID string, wrapped []byte) ([]byte, error) {
	aead, err := kekAEAD(kek, clusterID)
	if err != nil {
		return nil, err
	}
	if len(wrapped) != wrappedSize {
		return nil, fmt.Errorf("%w: the wrapped data key is %d bytes, want %d: restore the cluster record from a backup",
			ErrDamaged, len(wrapped), wrappedSize)
	}
	dek, err := open(aead, wrapped, associatedData(dataKeyPurpose, clusterID))
	switch {
	case errors.Is(err, errVersion):
		return nil, fmt.Errorf("%w: the wrapped data key has format version %d and this build reads only %d: it is damaged, or a newer Warren wrote it (upgrade this manager)",
			ErrDamaged, wrapped[0], formatV1)
	case err != nil:
		return nil, fmt.Errorf("%w: the data key of cluster %q does not open: the KEK was derived from another cluster ID or salt, or the wrapped key was altered; derive it from the cluster record's ID and EncryptionSalt",
			ErrWrongKey, clusterID)
	}
	return dek, nil
}

// kekAEAD checks the arguments every wrap and unwrap takes and returns
// AES-GCM under kek.
func kekAEAD(kek []byte, clusterID string) (cipher.AEAD, error) {
	if err := checkKEK("KEK", kek); err != nil {
		return nil, err
	}
	if clusterID == "" {
		return nil, fmt.Errorf("%w: cluster ID is empty: pass the cluster record's ID", ErrInvalid)
	}
	return newAEAD(kek)
}
