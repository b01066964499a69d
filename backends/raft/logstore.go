package raft

import (
	hraft "github.com/hashicorp/raft"
	"github.com/pingcap/failpoint"
)

// LogStore is raft's log and stable store (raft.db), as Config.WrapLogStore
// receives and returns it.
type LogStore interface {
	hraft.LogStore
	hraft.StableStore
}

// logStore is the log store raft uses in production too: the store
// underneath, with the failpoints around each append. It forwards no
// optional capability (hraft.MonotonicLogStore, ...): bolt.RaftStore has
// none; one added there must be forwarded here.
type logStore struct {
	LogStore
	id string
}

var _ LogStore = logStore{}

// StoreLog implements hraft.LogStore through StoreLogs, so that a single
// append meets the same failpoints.
func (s logStore) StoreLog(l *hraft.Log) error { return s.StoreLogs([]*hraft.Log{l}) }

// StoreLogs implements hraft.LogStore.
func (s logStore) StoreLogs(logs []*hraft.Log) error {
	var err error
	failpoint.InjectCall(FailpointBeforeStoreLogs, s.id, len(logs), &err)
	if err != nil {
		return err
	}
	if err := s.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	if len(logs) > 0 {
		failpoint.InjectCall(FailpointAfterStoreLogs, s.id, logs[len(logs)-1].Index)
	}
	return nil
}
