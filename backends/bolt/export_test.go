package bolt

// OpenRaftStoreWith is OpenRaftStore with KV options, so that specs can
// make checkpoints frequent or keep every write in raft.wal.
func OpenRaftStoreWith(dataDir string, opts *Options) (*RaftStore, error) {
	return openRaftStore(dataDir, opts)
}
