package daemon

import (
	"context"
	"errors"

	"github.com/warren-orchestrator/warren/backends/fake"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// What the key specs look at inside a node: its simulated runtime's
// secrets and its manager's state.

// LiveSecrets returns, by task ID, the secrets the node's live containers
// hold: what its worker was given. The node must run the simulated
// runtime.
func LiveSecrets(n *Node) map[string]map[string][]byte {
	rt, ok := n.rt.(*fake.Runtime)
	if !ok {
		return nil
	}
	cs, _ := rt.Containers()
	out := map[string]map[string][]byte{}
	for _, c := range cs {
		if s := rt.Secrets(c.TaskID); s != nil {
			out[c.TaskID] = s
		}
	}
	return out
}

func managerOf(n *Node) (*manager, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mgr == nil {
		return nil, errors.New("daemon: this node runs no manager")
	}
	return n.mgr, nil
}

// ClusterRecord is the cluster record as n's manager has it.
func ClusterRecord(n *Node) (*types.Cluster, error) {
	m, err := managerOf(n)
	if err != nil {
		return nil, err
	}
	return m.node.Store().GetCluster()
}

// SecretRecords are the secrets as n's manager has them, sealed.
func SecretRecords(n *Node) ([]*types.Secret, error) {
	m, err := managerOf(n)
	if err != nil {
		return nil, err
	}
	return m.node.Store().ListSecrets()
}

// ApplyOn replicates cmd through n's manager, which must lead, as the
// leader's own code does (no API checks).
func ApplyOn(n *Node, cmd fsm.Command) error {
	m, err := managerOf(n)
	if err != nil {
		return err
	}
	return m.Apply(context.Background(), cmd)
}

// Unlocked reports whether n's manager holds an unlock key.
func Unlocked(n *Node) bool {
	m, err := managerOf(n)
	if err != nil {
		return false
	}
	m.keysMu.Lock()
	defer m.keysMu.Unlock()
	return m.unlockKey != nil
}
