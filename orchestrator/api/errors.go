package api

import (
	"errors"
	"net/http"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// codes is the one table both ends read: the server maps an error to the
// first row whose sentinel it wraps, the client maps a code back to that
// sentinel. The API's own sentinels come first, so an error that wraps one
// of them and a core sentinel (a refused write, say) reports the API's.
var codes = []struct {
	code     string
	status   int
	sentinel error
}{
	{CodeNotLeader, http.StatusMisdirectedRequest, ErrNotLeader},
	{CodeNoLeader, http.StatusServiceUnavailable, ErrNoLeader},
	{CodeNoQuorum, http.StatusServiceUnavailable, ErrNoQuorum},
	{CodeUnknown, http.StatusServiceUnavailable, ErrOutcomeUnknown},
	{CodeUnauthorized, http.StatusUnauthorized, ErrUnauthorized},
	{CodeForbidden, http.StatusForbidden, ErrForbidden},
	{CodeRemoved, http.StatusGone, ErrRemoved},
	{CodeNotManager, http.StatusMisdirectedRequest, ErrNotManager},
	{CodeBadRequest, http.StatusBadRequest, ErrBadRequest},
	{CodeInvalid, http.StatusBadRequest, types.ErrInvalid},
	{CodeNotFound, http.StatusNotFound, state.ErrNotFound},
	{CodeExists, http.StatusConflict, fsm.ErrExists},
	{CodeNameTaken, http.StatusConflict, state.ErrNameTaken},
	{CodeInUse, http.StatusConflict, fsm.ErrInUse},
	{CodeConflict, http.StatusConflict, fsm.ErrConflict},
	// A node whose runtime cannot do what is asked (the simulated one
	// keeps no logs).
	{CodeUnsupported, http.StatusNotImplemented, errors.ErrUnsupported},
}

// errorAnswer is the status and body the server sends for err.
func errorAnswer(err error) (int, *Error) {
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		leader := nl.Leader
		return http.StatusMisdirectedRequest, &Error{Code: CodeNotLeader, Message: err.Error(), Leader: &leader}
	}
	for _, c := range codes {
		if errors.Is(err, c.sentinel) {
			return c.status, &Error{Code: c.code, Message: err.Error()}
		}
	}
	return http.StatusInternalServerError, &Error{Code: CodeInternal, Message: err.Error()}
}

// ServerError is an error answer of a manager as the client returns it. It
// wraps the sentinel its code names (a *NotLeaderError for CodeNotLeader),
// so callers test it with errors.Is; errors.As gives the code and status.
type ServerError struct {
	// Addr is the manager that answered, Status the HTTP status.
	Addr    string
	Status  int
	Code    string
	Message string
	Leader  *Manager // with CodeNotLeader
}

// Error returns the manager's message.
func (e *ServerError) Error() string { return e.Message }

// Unwrap returns the sentinel of the answer's code, nil for CodeInternal
// and for codes this client does not know (a newer manager's).
func (e *ServerError) Unwrap() error {
	if e.Code == CodeNotLeader && e.Leader != nil {
		return &NotLeaderError{Leader: *e.Leader}
	}
	for _, c := range codes {
		if c.code == e.Code {
			return c.sentinel
		}
	}
	return nil
}
