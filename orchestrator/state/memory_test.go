package state_test

import (
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/state/statetest"
)

var _ = statetest.DescribeStore("the in-memory KV", state.NewMemoryKV)
