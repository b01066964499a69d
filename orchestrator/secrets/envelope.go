package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// The envelope format shared by wrapped data keys and sealed secrets:
//
//	version (1 byte) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)
//
// Stored envelopes must stay readable by later builds: a new format gets a
// new version byte, and the old one stays readable.
const (
	formatV1   byte = 1
	keySize         = 32 // AES-256
	nonceSize       = 12 // 96-bit GCM nonce
	tagSize         = 16
	headerSize      = 1 + nonceSize
	overhead        = headerSize + tagSize
)

// A sealed secret must fit the bound the types package checks stored
// records against; this fails to compile when it would not.
const _ = uint(types.MaxSealOverhead - overhead)

// Why an envelope did not open; callers turn these into errors that name
// what was being opened.
var (
	errShort   = errors.New("too short")
	errVersion = errors.New("unknown version")
	errAuth    = errors.New("authentication failed")
)

// newAEAD returns AES-256-GCM under key, which the caller has checked is
// keySize bytes.
func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: set up AES: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets: set up GCM: %w", err)
	}
	return aead, nil
}

// seal encrypts plaintext into a new envelope with a nonce read from rand.
// A random 96-bit nonce per message keeps the chance of a repeat negligible
// for far more messages than a cluster will ever seal under one key.
func seal(aead cipher.AEAD, plaintext, ad []byte, rand io.Reader) ([]byte, error) {
	if rand == nil {
		return nil, fmt.Errorf("%w: random source is nil: pass crypto/rand.Reader", ErrInvalid)
	}
	out := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	out[0] = formatV1
	nonce := out[1:headerSize]
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("secrets: read %d random bytes for a nonce: %w", nonceSize, err)
	}
	return aead.Seal(out, nonce, plaintext, ad), nil
}

// open decrypts an envelope made by seal with the same ad, or returns one
// of errShort, errVersion and errAuth.
func open(aead cipher.AEAD, envelope, ad []byte) ([]byte, error) {
	if len(envelope) < overhead {
		return nil, errShort
	}
	if envelope[0] != formatV1 {
		return nil, errVersion
	}
	plaintext, err := aead.Open(nil, envelope[1:headerSize], envelope[headerSize:], ad)
	if err != nil {
		return nil, errAuth
	}
	return plaintext, nil
}

// associatedData binds an envelope to its purpose and owner. The purpose
// names the format version, so a later format's reader will not open a v1
// envelope relabelled with its version byte.
func associatedData(purpose, owner string) []byte {
	return []byte(purpose + "\x00" + owner)
}
