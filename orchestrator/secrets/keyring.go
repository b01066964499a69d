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
// one from Unwrap or UnwrapWithPrevious; the zero Keyring refuses to work.
// It holds its keys only inside its ciphers, so printing a Keyring shows
// no key material.
type Keyring struct {
	aead cipher.AEAD
	// previous is the data key a rotation replaces, nil when none is in
	// progress: Open falls back to it, Seal never uses it.
	previous cipher.AEAD
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

// Open decrypts what Seal returned for the same secret ID, under the data
// key or, during a rotation, the previous one. It returns ErrDamaged when
// sealed is altered or truncated, or was sealed for another secret or
// under another data key: GCM cannot tell these apart.
func (k *Keyring) Open(secretID string, sealed []byte) ([]byte, error) {
	plaintext, _, err := k.open(secretID, sealed)
	return plaintext, err
}

// Reseal returns sealed as it is when it opens under the data key, and
// otherwise opens it under the previous key and seals it again under the
// data key, with a nonce from rand: what a rotation does to every secret.
// resealed says which; a second Reseal of its result changes nothing. It
// fails as Open does, and sealed is not changed.
func (k *Keyring) Reseal(secretID string, sealed []byte, rand io.Reader) (out []byte, resealed bool, err error) {
	plaintext, previous, err := k.open(secretID, sealed)
	if err != nil {
		return nil, false, err
	}
	defer clear(plaintext)
	if !previous {
		return sealed, false, nil
	}
	out, err = seal(k.aead, plaintext, associatedData(secretPurpose, secretID), rand)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// Rotating reports whether k holds the previous data key of a rotation.
func (k *Keyring) Rotating() bool { return k != nil && k.previous != nil }

// open is Open that also says whether the previous key opened sealed.
func (k *Keyring) open(secretID string, sealed []byte) (plaintext []byte, previous bool, err error) {
	if err := k.check(secretID); err != nil {
		return nil, false, err
	}
	ad := associatedData(secretPurpose, secretID)
	plaintext, err = open(k.aead, sealed, ad)
	if errors.Is(err, errAuth) && k.previous != nil {
		if p, perr := open(k.previous, sealed, ad); perr == nil {
			return p, true, nil
		}
	}
	if err != nil {
		return nil, false, k.openError(secretID, sealed, err)
	}
	return plaintext, false, nil
}

// openError names what kept a secret from opening.
func (k *Keyring) openError(secretID string, sealed []byte, err error) error {
	keys := "under another cluster's data key"
	if k.previous != nil {
		keys = "under neither this cluster's data key nor the one `secret rotate-key` is replacing"
	}
	switch {
	case errors.Is(err, errShort):
		return fmt.Errorf("%w: secret %q is %d bytes sealed, shorter than the %d-byte envelope: its record was truncated; create the secret again",
			ErrDamaged, secretID, len(sealed), overhead)
	case errors.Is(err, errVersion):
		return fmt.Errorf("%w: secret %q has format version %d and this build reads only %d: it is damaged, or a newer Warren wrote it (upgrade this manager)",
			ErrDamaged, secretID, sealed[0], formatV1)
	}
	return fmt.Errorf("%w: secret %q does not open: its data was altered, sealed for another secret, or sealed %s; create the secret again",
		ErrDamaged, secretID, keys)
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
