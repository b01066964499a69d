package secrets

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// secretPurpose starts the associated data of a sealed secret; the
// secret's ID follows it.
const secretPurpose = "warren secret v1"

// Keyring seals and opens secrets with a cluster's unwrapped data key. Get
// one from Unwrap; the zero Keyring refuses to work. It holds the key only
// inside its cipher, so printing a Keyring shows no key material.
type Keyring struct {
	aead cipher.AEAD
}

// Overhead is the number of bytes Seal adds to a plaintext, so a secret's
// plaintext size is its sealed length minus Overhead().
func Overhead() int { return overhead }

// Seal encrypts a secret's plaintext for the secret secretID, with a nonce
// read from rand. The plaintext must pass types.ValidateSecretData; its
// error is returned as is otherwise.
func (k *Keyring) Seal(secretID string, plaintext []byte, rand io.Reader) ([]byte, error) {
	if err := k.check(secretID); err != nil {
		return nil, err
	}
	if err := types.ValidateSecretData(plaintext); err != nil {
		return nil, err
	}
	return seal(k.aead, plaintext, associatedData(secretPurpose, secretID), rand)
}

// Open decrypts what Seal returned for the same secret ID. It returns
// ErrDamaged when sealed is altered or truncated, or was sealed for another
// secret or under another data key: GCM cannot tell these apart.
func (k *Keyring) Open(secretID string, sealed []byte) ([]byte, error) {
	if err := k.check(secretID); err != nil {
		return nil, err
	}
	plaintext, err := open(k.aead, sealed, associatedData(secretPurpose, secretID))
	switch {
	case errors.Is(err, errShort):
		return nil, fmt.Errorf("%w: secret %q is %d bytes sealed, shorter than the %d-byte envelope: its record was truncated; create the secret again",
			ErrDamaged, secretID, len(sealed), overhead)
	case errors.Is(err, errVersion):
		return nil, fmt.Errorf("%w: secret %q has format version %d and this build reads only %d: it is damaged, or a newer Warren wrote it (upgrade this manager)",
			ErrDamaged, secretID, sealed[0], formatV1)
	case err != nil:
		return nil, fmt.Errorf("%w: secret %q does not open: its data was altered, sealed for another secret, or sealed under another cluster's data key; create the secret again",
			ErrDamaged, secretID)
	}
	return plaintext, nil
}

func (k *Keyring) check(secretID string) error {
	if k == nil || k.aead == nil {
		return fmt.Errorf("%w: the keyring has no data key: get one from Unwrap", ErrInvalid)
	}
	if secretID == "" {
		return fmt.Errorf("%w: secret ID is empty: pass the ID of the secret's record", ErrInvalid)
	}
	return nil
}
