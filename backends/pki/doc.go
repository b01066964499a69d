// Package pki is the cluster's certificate authority: it issues the
// certificates that managers, workers and the CLI present to each other for
// mutual TLS, stores them as PEM files, and builds the tls.Configs that
// accept only peers signed by the cluster's CA (optionally only peers of a
// given role).
//
// The CA is private to one cluster and peers are addressed by IP, so chains
// are verified against the cluster CA alone and host names are not matched;
// the role a certificate was issued for travels in its subject OU.
package pki
