package api

import (
	"crypto/rand"
	"strings"
)

// NewID returns a fresh record ID: 20 lowercase base32 characters (100
// random bits) from crypto/rand, short enough to type and long enough
// never to collide.
func NewID() string {
	// rand.Text is 26 characters of the standard base32 alphabet, each
	// uniformly random: a prefix keeps that, lower case reads better.
	return strings.ToLower(rand.Text()[:20])
}
