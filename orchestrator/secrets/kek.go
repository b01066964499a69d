package secrets

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"fmt"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// KEKIterations is the PBKDF2-SHA256 iteration count of DeriveKEK. Changing
// it changes every cluster's KEK: existing data keys would no longer unwrap.
const KEKIterations = 100_000

// DeriveKEK returns the cluster's 32-byte key-encryption key: PBKDF2-SHA256
// of the cluster ID, with the cluster record's EncryptionSalt, KEKIterations
// times.
func DeriveKEK(clusterID string, salt []byte) ([]byte, error) {
	if clusterID == "" {
		return nil, fmt.Errorf("%w: cluster ID is empty: pass the cluster record's ID", ErrInvalid)
	}
	if len(salt) != types.EncryptionSaltSize {
		return nil, fmt.Errorf("%w: salt is %d bytes, want %d: pass the cluster record's EncryptionSalt",
			ErrInvalid, len(salt), types.EncryptionSaltSize)
	}
	kek, err := pbkdf2.Key(sha256.New, clusterID, salt, KEKIterations, keySize)
	if err != nil {
		return nil, fmt.Errorf("secrets: derive the key-encryption key: %w", err)
	}
	return kek, nil
}

// checkKEK refuses a key that DeriveKEK did not make.
func checkKEK(name string, kek []byte) error {
	if len(kek) != keySize {
		return fmt.Errorf("%w: %s is %d bytes, want %d: derive it with DeriveKEK", ErrInvalid, name, len(kek), keySize)
	}
	return nil
}
