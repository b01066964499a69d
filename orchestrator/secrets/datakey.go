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
