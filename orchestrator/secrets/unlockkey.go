package secrets

import (
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// UnlockKeyPrefix starts every unlock key as FormatUnlockKey writes it: the
// name, then the format's version, so that a later format can be told
// apart and a key pasted into the wrong place is recognised.
const UnlockKeyPrefix = "WRNKEY-1-"

// unlockKeyText is base64url, unpadded, of a 32-byte key.
var unlockKeyText = base64.RawURLEncoding

// NewUnlockKey makes the key-encryption key of an autolocked cluster: 32
// bytes from rand, which is all it is. Unlike DeriveKEK's, nothing in the
// cluster's state can rebuild it: whoever holds it holds the secrets.
func NewUnlockKey(rand io.Reader) ([]byte, error) {
	if rand == nil {
		return nil, fmt.Errorf("%w: random source is nil: pass crypto/rand.Reader", ErrInvalid)
	}
	key := make([]byte, keySize)
	if _, err := io.ReadFull(rand, key); err != nil {
		return nil, fmt.Errorf("secrets: read %d random bytes for an unlock key: %w", keySize, err)
	}
	return key, nil
}

// FormatUnlockKey writes an unlock key as people copy it:
// "WRNKEY-1-" and 43 base64url characters, no padding, nothing a shell
// or a terminal would mangle.
func FormatUnlockKey(key []byte) (string, error) {
	if err := checkKEK("unlock key", key); err != nil {
		return "", err
	}
	return UnlockKeyPrefix + unlockKeyText.EncodeToString(key), nil
}

// ParseUnlockKey reads what FormatUnlockKey wrote, ignoring the spaces and
// line breaks around it (a key pasted or read from a file). Its error
// never quotes the text: it may be a key with a typo.
func ParseUnlockKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	rest, ok := strings.CutPrefix(text, UnlockKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: the unlock key does not start with %q: give the key `warren cluster init --autolock` printed, whole",
			ErrInvalid, UnlockKeyPrefix)
	}
	key, err := unlockKeyText.DecodeString(rest)
	if err != nil || len(key) != keySize {
		return nil, fmt.Errorf("%w: the unlock key is not %q and %d base64url characters: it was cut or mistyped; give the key `warren cluster init --autolock` printed, whole",
			ErrInvalid, UnlockKeyPrefix, unlockKeyText.EncodedLen(keySize))
	}
	return key, nil
}
