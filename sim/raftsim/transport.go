package raftsim

import (
	"fmt"
	"io"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// rpcTimeout bounds one RPC, as the production NetworkTransport's Timeout
// does (backends/raft/node.go); an InstallSnapshot's grows with its size
// the same way.
const rpcTimeout = 2 * time.Second

// snapshotChunk is the size per rpcTimeout an InstallSnapshot is given,
// as in hashicorp/raft's NetworkTransport.
const snapshotChunk = 256 * 1024

// Transport is hraft.Transport over the simulated Network: one per
// manager incarnation. Requests and answers are Go values passed by
// pointer, as with hraft.InmemTransport, but every one crosses the
// Network, so it can be delayed, lost or cut. It supports pipelining and
// pre-vote, as the production NetworkTransport does, but not the
// heartbeat fast path (heartbeats queue behind other RPCs).
type Transport struct {
	net *Network
	ep  *endpoint

	mu     sync.Mutex
	closed bool
	pipes  []*pipeline
}

var (
	_ hraft.Transport   = (*Transport)(nil)
	_ hraft.WithClose   = (*Transport)(nil)
	_ hraft.WithPreVote = (*Transport)(nil)
)

func newTransport(net *Network, ep *endpoint) *Transport {
	return &Transport{net: net, ep: ep}
}

// Consumer implements hraft.Transport.
func (t *Transport) Consumer() <-chan hraft.RPC { return t.ep.rpcs }

// LocalAddr implements hraft.Transport: a manager's address is its ID.
func (t *Transport) LocalAddr() hraft.ServerAddress { return hraft.ServerAddress(t.ep.id) }

// SetHeartbeatHandler implements hraft.Transport; the fast path is not
// simulated.
func (t *Transport) SetHeartbeatHandler(func(hraft.RPC)) {}

// EncodePeer implements hraft.Transport.
func (t *Transport) EncodePeer(_ hraft.ServerID, addr hraft.ServerAddress) []byte {
	return []byte(addr)
}

// DecodePeer implements hraft.Transport.
func (t *Transport) DecodePeer(b []byte) hraft.ServerAddress { return hraft.ServerAddress(b) }

// AppendEntries implements hraft.Transport.
func (t *Transport) AppendEntries(_ hraft.ServerID, target hraft.ServerAddress, args *hraft.AppendEntriesRequest, resp *hraft.AppendEntriesResponse) error {
	return call(t, target, args, nil, rpcTimeout, resp)
}

// RequestVote implements hraft.Transport.
func (t *Transport) RequestVote(_ hraft.ServerID, target hraft.ServerAddress, args *hraft.RequestVoteRequest, resp *hraft.RequestVoteResponse) error {
	return call(t, target, args, nil, rpcTimeout, resp)
}

// RequestPreVote implements hraft.WithPreVote.
func (t *Transport) RequestPreVote(_ hraft.ServerID, target hraft.ServerAddress, args *hraft.RequestPreVoteRequest, resp *hraft.RequestPreVoteResponse) error {
	return call(t, target, args, nil, rpcTimeout, resp)
}

// TimeoutNow implements hraft.Transport.
func (t *Transport) TimeoutNow(_ hraft.ServerID, target hraft.ServerAddress, args *hraft.TimeoutNowRequest, resp *hraft.TimeoutNowResponse) error {
	return call(t, target, args, nil, rpcTimeout, resp)
}

// InstallSnapshot implements hraft.Transport. The follower reads the
// snapshot straight from data while the leader waits.
func (t *Transport) InstallSnapshot(_ hraft.ServerID, target hraft.ServerAddress, args *hraft.InstallSnapshotRequest, resp *hraft.InstallSnapshotResponse, data io.Reader) error {
	timeout := rpcTimeout
	if scale := args.Size / snapshotChunk; scale > 1 {
		timeout *= time.Duration(scale)
	}
	return call(t, target, args, data, timeout, resp)
}

// call sends one RPC and copies the answer into resp.
func call[R any](t *Transport, target hraft.ServerAddress, args any, data io.Reader, timeout time.Duration, resp *R) error {
	out, err := t.net.roundTrip(t.ep, string(target), func(dst *endpoint) (any, bool) {
		return deliver(dst, args, data)
	})
	if err != nil {
		return err
	}
	r, err := await(t.ep, out, target, timeout)
	if err != nil {
		return err
	}
	*resp = *r.Response.(*R)
	return nil
}

// deliver hands an RPC to raft at dst and waits for raft's answer.
func deliver(dst *endpoint, args any, data io.Reader) (any, bool) {
	if dst.rpcs == nil {
		return nil, false
	}
	inner := make(chan hraft.RPCResponse, 1)
	select {
	case dst.rpcs <- hraft.RPC{Command: args, Reader: data, RespChan: inner}:
	case <-dst.done:
		return nil, false
	}
	select {
	case r := <-inner:
		return r, true
	case <-dst.done:
		return nil, false
	}
}

// await waits for an RPC's answer, for at most timeout.
func await(self *endpoint, out <-chan any, target hraft.ServerAddress, timeout time.Duration) (hraft.RPCResponse, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case a := <-out:
		r := a.(hraft.RPCResponse)
		return r, r.Error
	case <-timer.C:
		return hraft.RPCResponse{}, fmt.Errorf("%w: %s did not answer within %v", ErrTimeout, target, timeout)
	case <-self.done:
		return hraft.RPCResponse{}, hraft.ErrTransportShutdown
	}
}

// AppendEntriesPipeline implements hraft.Transport.
func (t *Transport) AppendEntriesPipeline(_ hraft.ServerID, target hraft.ServerAddress) (hraft.AppendPipeline, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, hraft.ErrTransportShutdown
	}
	p := &pipeline{
		t: t, target: target,
		inflight: make(chan *inflight, 128),
		doneCh:   make(chan hraft.AppendFuture, 128),
		shutdown: make(chan struct{}),
	}
	t.pipes = append(t.pipes, p)
	go p.decode()
	return p, nil
}

// Close implements hraft.WithClose: the incarnation leaves the network,
// and every call in flight fails.
func (t *Transport) Close() error {
	t.mu.Lock()
	pipes := t.pipes
	t.pipes, t.closed = nil, true
	t.mu.Unlock()
	t.net.down(t.ep)
	for _, p := range pipes {
		_ = p.Close()
	}
	return nil
}

// pipeline sends AppendEntries without waiting for each answer; answers
// are handed back in the order the requests were sent.
type pipeline struct {
	t        *Transport
	target   hraft.ServerAddress
	inflight chan *inflight
	doneCh   chan hraft.AppendFuture
	shutdown chan struct{}
	once     sync.Once
}

type inflight struct {
	f        *appendFuture
	out      <-chan any
	err      error
	deadline time.Time
}

func (p *pipeline) AppendEntries(args *hraft.AppendEntriesRequest, resp *hraft.AppendEntriesResponse) (hraft.AppendFuture, error) {
	select {
	case <-p.shutdown:
		return nil, hraft.ErrPipelineShutdown
	default:
	}
	f := &appendFuture{start: time.Now(), args: args, resp: resp, done: make(chan struct{})}
	out, err := p.t.net.roundTrip(p.t.ep, string(p.target), func(dst *endpoint) (any, bool) {
		return deliver(dst, args, nil)
	})
	in := &inflight{f: f, out: out, err: err, deadline: time.Now().Add(rpcTimeout)}
	select {
	case p.inflight <- in:
		return f, nil
	case <-p.shutdown:
		return nil, hraft.ErrPipelineShutdown
	}
}

func (p *pipeline) decode() {
	for {
		var in *inflight
		select {
		case in = <-p.inflight:
		case <-p.shutdown:
			return
		}
		if in.err != nil {
			in.f.respond(in.err)
		} else {
			timer := time.NewTimer(time.Until(in.deadline))
			select {
			case a := <-in.out:
				r := a.(hraft.RPCResponse)
				if r.Error == nil {
					*in.f.resp = *r.Response.(*hraft.AppendEntriesResponse)
				}
				in.f.respond(r.Error)
			case <-timer.C:
				in.f.respond(fmt.Errorf("%w: %s did not answer a pipelined append within %v", ErrTimeout, p.target, rpcTimeout))
			case <-p.shutdown:
				timer.Stop()
				return
			}
			timer.Stop()
		}
		select {
		case p.doneCh <- in.f:
		case <-p.shutdown:
			return
		}
	}
}

func (p *pipeline) Consumer() <-chan hraft.AppendFuture { return p.doneCh }

func (p *pipeline) Close() error {
	p.once.Do(func() { close(p.shutdown) })
	return nil
}

// appendFuture is hraft.AppendFuture for a pipelined AppendEntries.
type appendFuture struct {
	start time.Time
	args  *hraft.AppendEntriesRequest
	resp  *hraft.AppendEntriesResponse
	err   error
	done  chan struct{}
}

func (f *appendFuture) respond(err error) {
	f.err = err
	close(f.done)
}

func (f *appendFuture) Error() error {
	<-f.done
	return f.err
}

func (f *appendFuture) Start() time.Time                       { return f.start }
func (f *appendFuture) Request() *hraft.AppendEntriesRequest   { return f.args }
func (f *appendFuture) Response() *hraft.AppendEntriesResponse { return f.resp }
