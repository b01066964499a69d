// Package secrets encrypts Warren's secrets with envelope encryption.
//
// Two keys stand between a secret and the replicated state. The
// key-encryption key (KEK) is derived with PBKDF2-SHA256 from the cluster ID
// and the cluster record's EncryptionSalt, so every manager can rebuild it
// and it is never stored. The data key (DEK) is 32 random bytes made at
// cluster init and stored only wrapped under the KEK. Secrets are sealed
// under the DEK, each with its own ID as associated data, so a ciphertext
// copied into another secret's record does not open. Changing the KEK
// (Rewrap) re-encrypts one 32-byte key, not every secret.
//
// An autolocked cluster has no derived KEK: its KEK is the unlock key, 32
// random bytes (NewUnlockKey) given to the administrator once, as
// FormatUnlockKey writes it, and to each manager in memory only. Its data
// key is made at init, so that unwrapping it tells a wrong unlock key
// from the right one.
//
// Rotating the data key (RotateDataKey) makes a new one and keeps the old
// one, re-wrapped, as the previous key until every secret is sealed again
// under the new one (Keyring.Reseal); meanwhile a Keyring from
// UnwrapWithPrevious opens secrets sealed under either.
//
// Both wrapped keys and sealed secrets are AES-256-GCM envelopes: a format
// version byte, a fresh 96-bit nonce, then the ciphertext and its tag.
//
// The package is part of the deterministic core: it reads no clock and no
// random source of its own. Every function that needs randomness takes an
// io.Reader; production passes crypto/rand.Reader, the simulator a seeded
// generator such as math/rand/v2's ChaCha8, which makes the output a
// function of the seed.
package secrets
