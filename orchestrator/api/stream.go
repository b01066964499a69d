package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// The streamed answers: the event feed and the backup. Their status is
// sent before the end is known, so how they end travels in trailers.

// Trailers of the streamed answers.
const (
	// TrailerAppliedIndex carries, after a backup's last byte, the applied
	// index the backup was taken at.
	TrailerAppliedIndex = "Warren-Applied-Index"
	// TrailerError carries the JSON Error of a stream that failed after
	// its answer had begun.
	TrailerError = "Warren-Error"
)

func (h *handler) events(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Trailer", TrailerError)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// Send the status now, not with the first event, which may be long in
	// coming: the client's Events returns an error at once if it fails.
	// A failed flush means the client left, which ends Events as well.
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	err := h.Backend.Events(r.Context(), func(e Event) error {
		if err := enc.Encode(e); err != nil {
			return err
		}
		return rc.Flush()
	})
	h.endStream(w, r, err)
	return nil
}

func (h *handler) backup(w http.ResponseWriter, r *http.Request) error {
	bw := &startOnWrite{w: w}
	index, err := h.Backend.Backup(r.Context(), bw)
	if !bw.started {
		if err != nil {
			return err // nothing sent yet: an ordinary error answer
		}
		bw.start()
	}
	if err != nil {
		h.endStream(w, r, err)
		return nil
	}
	w.Header().Set(TrailerAppliedIndex, strconv.FormatUint(index, 10))
	return nil
}

// startOnWrite sends the backup's header with its first bytes, so that a
// backup that fails before it starts (this manager cannot read its state)
// gets an ordinary error answer.
type startOnWrite struct {
	w       http.ResponseWriter
	started bool
}

func (s *startOnWrite) start() {
	s.started = true
	hd := s.w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Disposition", `attachment; filename="warren.db"`)
	// Trailers are declared before the header is sent.
	hd.Add("Trailer", TrailerAppliedIndex)
	hd.Add("Trailer", TrailerError)
	s.w.WriteHeader(http.StatusOK)
}

func (s *startOnWrite) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // starts nothing: the backup may still fail first
	}
	if !s.started {
		s.start()
	}
	return s.w.Write(p)
}

// endStream puts err in the error trailer of a stream that has begun,
// unless it ended because the client left.
func (h *handler) endStream(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil || r.Context().Err() != nil {
		return
	}
	_, body := errorAnswer(err)
	data, _ := json.Marshal(body)
	w.Header().Set(TrailerError, string(data))
	h.Log.Warn("api: stream failed", "path", r.URL.Path, "peer", peerName(r), "err", err)
}

// streamError is the error a stream's trailer carries, nil if none.
func streamError(resp *http.Response) error {
	v := resp.Trailer.Get(TrailerError)
	if v == "" {
		return nil
	}
	var e Error
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		e = Error{Message: fmt.Sprintf("api: %s ended the stream with an error this client cannot read: %s", resp.Request.URL.Host, v)}
	}
	return &ServerError{Addr: resp.Request.URL.Host, Status: resp.StatusCode, Code: e.Code, Message: e.Message, Leader: e.Leader}
}

// Events calls fn with each command a manager applies from now on, in log
// order, until ctx ends (it then returns ctx's error) or fn returns an
// error (returned as is). When the manager ends the stream or the
// connection breaks, it returns an error wrapping ErrUnavailable: events
// may have been missed, so the caller decides whether to subscribe again.
func (c *Client) Events(ctx context.Context, fn func(Event) error) error {
	resp, err := c.do(ctx, &call{method: http.MethodGet, path: Prefix + "/events", retrySafe: true, stream: true})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeStream(ctx, resp, "event stream", "subscribe again", func() error {
		return fmt.Errorf("%w: %s ended the event stream, as it does when it shuts down: subscribe again", ErrUnavailable, resp.Request.URL.Host)
	}, fn)
}

// decodeStream calls fn with each value of resp's newline-delimited JSON
// body, until ctx ends (ctx's error), fn fails (its error), the
// connection breaks (ErrUnavailable: what the caller does then is again),
// or the stream ends: with the error trailer the server sent, if any, else
// with end's error. what names the stream in errors.
func decodeStream[T any](ctx context.Context, resp *http.Response, what, again string, end func() error, fn func(T) error) error {
	dec := json.NewDecoder(resp.Body)
	for {
		var v T
		err := dec.Decode(&v)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, io.EOF):
			if err := streamError(resp); err != nil {
				return err
			}
			return end()
		case err != nil:
			return fmt.Errorf("%w: the %s from %s broke (%v): %s", ErrUnavailable, what, resp.Request.URL.Host, err, again)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
}

// Backup writes a consistent copy of the cluster's state (a warren.db
// file) to w and returns the applied index it was taken at. After an
// error, w may hold part of a copy, which must not be restored.
func (c *Client) Backup(ctx context.Context, w io.Writer) (index uint64, err error) {
	resp, err := c.do(ctx, &call{method: http.MethodGet, path: Prefix + "/cluster/backup", retrySafe: true, stream: true})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	addr := resp.Request.URL.Host
	if _, err := io.Copy(w, resp.Body); err != nil {
		return 0, fmt.Errorf("api: backup from %s: %w: take it again", addr, err)
	}
	if err := streamError(resp); err != nil {
		return 0, err
	}
	index, err = strconv.ParseUint(resp.Trailer.Get(TrailerAppliedIndex), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("api: the backup from %s came without its applied index, so it may be incomplete: take it again", addr)
	}
	return index, nil
}
