package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/secrets"
)

// The keys that protect secrets: unlocking a manager of an autolocked
// cluster (POST /v1/cluster/unlock, to that manager only) and rotating the
// data key (POST /v1/cluster/data-key/rotate, on the leader).

// ErrLocked is wrapped by the error for a request that needs a secret
// sealed or opened by a manager of an autolocked cluster that has not been
// given the unlock key since it started. It travels as CodeConflict (the
// manager's state, not the request, is what is wrong), so a client tells
// it by its message: it names the command that unlocks.
var ErrLocked error = lockedError{}

type lockedError struct{}

func (lockedError) Error() string { return "api: the cluster is locked" }

// Unwrap gives the sentinel the error table maps to a code.
func (lockedError) Unwrap() error { return fsm.ErrConflict }

// UnlockRequest is POST /v1/cluster/unlock: the unlock key `warren cluster
// init --autolock` printed, as it printed it ("WRNKEY-1-...").
type UnlockRequest struct {
	Key string `json:"key"`
}

// UnlockResult is the answer to an unlock: the manager that is now
// unlocked, and whether it already was.
type UnlockResult struct {
	Manager         string `json:"manager"`
	AlreadyUnlocked bool   `json:"already_unlocked"`
}

// KeyRotation is one line of POST /v1/cluster/data-key/rotate: where the
// rotation stands. The first line comes once the new data key is in
// place, the last one has Done set; a stream that ends without it was
// interrupted, and the next rotation finishes it.
type KeyRotation struct {
	// Resumed: a rotation an earlier leader left unfinished was found and
	// finished, with the key it made, instead of a new key being made.
	Resumed bool `json:"resumed,omitempty"`
	// NewKEK: the key-encryption key changed too (a new salt). Never in an
	// autolocked cluster, whose unlock key stays.
	NewKEK bool `json:"new_kek,omitempty"`
	// NoKey: the cluster has no data key yet (no secret was ever
	// created), so there was nothing to rotate.
	NoKey bool `json:"no_key,omitempty"`
	// Total is the number of secrets when the re-sealing began.
	Total int `json:"total"`
	// Secrets and Versions count the secrets, and their sealed versions
	// (current and older), sealed again under the new key so far.
	Secrets  int `json:"secrets"`
	Versions int `json:"versions"`
	// Done: every secret is sealed under the new key and the previous key
	// is dropped from the cluster record.
	Done bool `json:"done"`
}

func serveSecretKeys(h *handler) {
	h.handle("POST "+Prefix+"/cluster/unlock", h.admin, func(w http.ResponseWriter, r *http.Request) error {
		var req UnlockRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		key, err := secrets.ParseUnlockKey(req.Key)
		req.Key = ""
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		defer clear(key)
		res, err := h.Backend.Unlock(r.Context(), key)
		if err != nil {
			return err
		}
		return reply(w, http.StatusOK, res)
	})

	h.handle("POST "+Prefix+"/cluster/data-key/rotate", h.admin, func(w http.ResponseWriter, r *http.Request) error {
		var (
			enc *json.Encoder
			rc  *http.ResponseController
		)
		err := h.Backend.RotateDataKey(r.Context(), func(p KeyRotation) {
			if enc == nil {
				// The status goes with the first line: until then an
				// error (not the leader, locked) is an ordinary answer,
				// which the client follows to the leader.
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.Header().Set("Trailer", TrailerError)
				w.WriteHeader(http.StatusOK)
				enc, rc = json.NewEncoder(w), http.NewResponseController(w)
			}
			// A client that left does not stop the rotation: a rotation
			// left half done is finished only by the next one.
			if enc.Encode(p) == nil {
				_ = rc.Flush()
			}
		})
		if enc == nil {
			if err == nil {
				err = fmt.Errorf("api: the rotation ended without a word of how it went: this is a bug; run `warren secret rotate-key` again")
			}
			return err
		}
		h.endStream(w, r, err)
		return nil
	})
}

// Unlock gives the manager at addr, and only it, the unlock key of an
// autolocked cluster (as `warren cluster init --autolock` printed it). A
// wrong key is refused (ErrForbidden) and changes nothing.
func (c *Client) Unlock(ctx context.Context, addr, key string) (*UnlockResult, error) {
	if addr == "" {
		return nil, fmt.Errorf("%w: name the manager to unlock: each manager is unlocked by itself", ErrBadRequest)
	}
	// Retry-safe: unlocking twice with the same key changes nothing.
	return fetch[*UnlockResult](ctx, c, &call{method: http.MethodPost, path: Prefix + "/cluster/unlock", in: &UnlockRequest{Key: key}, retrySafe: true, only: addr})
}

// RotateDataKey has the leader make a new data key and seal every secret
// again under it, calling fn with each line of progress, and returns the
// last one (Done). A rotation that fails part way keeps every secret
// readable; the next RotateDataKey finishes it.
func (c *Client) RotateDataKey(ctx context.Context, fn func(KeyRotation)) (*KeyRotation, error) {
	// Not retry-safe: a second rotation would make yet another key. It
	// streams: re-sealing many secrets can outlast the request timeout.
	resp, err := c.do(ctx, &call{method: http.MethodPost, path: Prefix + "/cluster/data-key/rotate", stream: true})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var last *KeyRotation
	err = decodeStream(ctx, resp, "key rotation", "run `warren secret rotate-key` again to finish the rotation", func() error {
		if last == nil || !last.Done {
			return fmt.Errorf("%w: %s ended the key rotation before it was done (it may have lost the lead): run `warren secret rotate-key` again to finish it; every secret stays readable meanwhile",
				ErrUnavailable, resp.Request.URL.Host)
		}
		return nil
	}, func(p KeyRotation) error {
		last = &p
		if fn != nil {
			fn(p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return last, nil
}
