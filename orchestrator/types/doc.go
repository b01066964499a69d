// Package types holds Warren's records: Node, Service, Container, Secret, Volume
// and Network, with the field names and JSON shape of docs/schema.md, their
// validation, and the migration of records written by older schema versions.
//
// Records are plain data. They carry no behaviour beyond Validate and the
// migration applied when a stored record is decoded (see Decode).
package types
