package raft

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	hraft "github.com/hashicorp/raft"
)

// ErrUnroutableAdvertise is wrapped by NewStreamLayer's error for an
// advertise address other managers could not dial.
var ErrUnroutableAdvertise = errors.New("raft: advertise address is not routable")

const (
	// streamHandshakeTimeout bounds an inbound TLS handshake, so a peer
	// that connects and then says nothing is dropped.
	streamHandshakeTimeout = 10 * time.Second
	// streamMaxHandshakes bounds the inbound handshakes in flight, so a
	// flood of silent connections costs at most this many goroutines and
	// sockets; beyond it, new connections wait in the kernel's backlog.
	streamMaxHandshakes = 64
	// streamAcceptBackoffMax caps the pause after a failing accept (out of
	// file descriptors, say), as net/http does.
	streamAcceptBackoffMax = time.Second
)

// StreamLayer is raft's transport stream over TCP with mutual TLS: Accept
// yields only connections whose handshake succeeded, Dial completes the
// handshake before returning.
//
// Handshakes run in their own goroutines rather than inside Accept: raft's
// NetworkTransport calls Accept in one loop, and a handshake done there
// would let one silent client hold up every other manager's connection for
// the whole handshake timeout.
type StreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config

	ready     chan *tls.Conn // handshaken connections for Accept
	slots     chan struct{}  // one token per handshake in flight
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

var _ hraft.StreamLayer = (*StreamLayer)(nil)

// NewStreamLayer listens on bindAddr (host:port) and serves TLS with
// server; Dial uses client. Addr reports advertise, or the listener's
// address when advertise is nil; an advertise port of 0 stands for the
// port the listener got. The reported address must be one other managers
// can dial: an unspecified IP (0.0.0.0 or ::) is refused.
func NewStreamLayer(bindAddr string, advertise net.Addr, server, client *tls.Config) (*StreamLayer, error) {
	if server == nil || client == nil {
		return nil, errors.New("raft: the stream layer needs both a server and a client TLS config: build them with pki.ServerConfig and pki.ClientConfig")
	}
	ln, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, fmt.Errorf("raft: listen on %s: %w", bindAddr, err)
	}
	adv, err := streamAdvertise(advertise, ln.Addr())
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &StreamLayer{
		ln:        ln,
		advertise: adv,
		server:    server,
		client:    client,
		ready:     make(chan *tls.Conn),
		slots:     make(chan struct{}, streamMaxHandshakes),
		ctx:       ctx,
		cancel:    cancel,
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// streamAdvertise resolves the address to report from advertise and the
// listener's own address.
func streamAdvertise(advertise, listened net.Addr) (net.Addr, error) {
	lnAddr, ok := listened.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("raft: listener address %s is not TCP", listened)
	}
	var adv *net.TCPAddr
	switch a := advertise.(type) {
	case nil:
		adv = lnAddr
	case *net.TCPAddr:
		if a == nil {
			adv = lnAddr
			break
		}
		adv = &net.TCPAddr{IP: a.IP, Port: a.Port, Zone: a.Zone}
	default:
		host, portStr, err := net.SplitHostPort(a.String())
		if err != nil {
			return nil, fmt.Errorf("%w: %q is not host:port: pass an address such as 10.0.0.5:4243", ErrUnroutableAdvertise, a)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("%w: %q has no numeric port: pass an address such as 10.0.0.5:4243", ErrUnroutableAdvertise, a)
		}
		ip := net.ParseIP(host)
		if ip == nil {
			return nil, fmt.Errorf("%w: %q is not an IP address: pass the IP other managers reach this one at", ErrUnroutableAdvertise, a)
		}
		adv = &net.TCPAddr{IP: ip, Port: port}
	}
	if adv.IP == nil || adv.IP.IsUnspecified() {
		return nil, fmt.Errorf("%w: %s names no particular host, so other managers cannot dial it: pass --advertise-addr with an IP they can reach",
			ErrUnroutableAdvertise, adv)
	}
	if adv.Port == 0 {
		adv = &net.TCPAddr{IP: adv.IP, Port: lnAddr.Port, Zone: adv.Zone}
	}
	return adv, nil
}

// Accept returns the next inbound connection whose TLS handshake
// succeeded. Connections that fail or stall in the handshake are closed
// and never surface here: raft's transport treats Accept errors as
// trouble with the listener and backs off. After Close it returns
// net.ErrClosed.
func (s *StreamLayer) Accept() (net.Conn, error) {
	select {
	case <-s.ctx.Done():
		return nil, net.ErrClosed
	case conn := <-s.ready:
		return conn, nil
	}
}

// Close stops listening, aborts handshakes in flight and makes Accept
// return net.ErrClosed. Connections already accepted or dialled stay open:
// raft's transport closes those itself.
func (s *StreamLayer) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.closeErr = s.ln.Close()
		s.wg.Wait()
	})
	return s.closeErr
}

// Addr is the address other managers dial: the advertise address.
func (s *StreamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to another manager and completes the TLS handshake, all
// within timeout (no limit when timeout is not positive).
//
// Under TLS 1.3 the server checks the client's certificate after the
// client's handshake is done, so a server that refuses this manager shows
// up as an error on the connection's first read, not here.
func (s *StreamLayer) Dial(address hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx := s.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cfg := s.client
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		// A config that matches host names needs one; pki's client config
		// verifies the chain itself and matches none.
		host, _, err := net.SplitHostPort(string(address))
		if err != nil {
			return nil, fmt.Errorf("raft: dial %s: %w", address, err)
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("raft: dial %s: %w", address, err)
	}
	return conn, nil
}

// acceptLoop accepts TCP connections and hands each to a handshake
// goroutine, until the listener is closed.
func (s *StreamLayer) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		raw, err := s.ln.Accept()
		if err != nil {
			<-s.slots
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), streamAcceptBackoffMax)
			select {
			case <-time.After(backoff):
				continue
			case <-s.ctx.Done():
				return
			}
		}
		backoff = 0
		s.wg.Add(1)
		go s.handshake(raw)
	}
}

// handshake completes the TLS handshake on raw and queues the result for
// Accept, or closes raw: a peer that fails it learns why from the TLS
// alert, and this side has nothing to act on.
func (s *StreamLayer) handshake(raw net.Conn) {
	defer s.wg.Done()
	defer func() { <-s.slots }()
	ctx, cancel := context.WithTimeout(s.ctx, streamHandshakeTimeout)
	defer cancel()
	conn := tls.Server(raw, s.server)
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return
	}
	select {
	case s.ready <- conn:
	case <-s.ctx.Done():
		_ = conn.Close()
	}
}
