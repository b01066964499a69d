package daemon

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/clock"
	"github.com/warren-orchestrator/warren/backends/fake"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/state"
)

// filesRuntime keeps each task's log at dir/TASK.log.
type filesRuntime struct {
	orchestrator.Runtime
	dir string
}

func (r filesRuntime) LogPath(taskID string) string { return filepath.Join(r.dir, taskID+".log") }

var _ = Describe("taskLogs", func() {
	var (
		dir  string
		logs *taskLogs
		// waits is what the followed reader's waits do, one per wait; a
		// wait beyond them ends the stream, as a client leaving does.
		waits []func()
	)
	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		logs = newTaskLogs("n1")
		logs.setRuntime(filesRuntime{dir: dir})
		waits = nil
		logs.wait = func(ctx context.Context, _ time.Duration) error {
			if len(waits) == 0 {
				return context.Canceled
			}
			waits[0]()
			waits = waits[1:]
			return ctx.Err()
		}
	})
	write := func(task, data string, flag int) {
		f, err := os.OpenFile(filepath.Join(dir, task+".log"), os.O_CREATE|os.O_WRONLY|flag, 0o644)
		Expect(err).NotTo(HaveOccurred())
		_, err = f.WriteString(data)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Close()).To(Succeed())
	}
	read := func(task string, opts api.LogOptions) (string, error) {
		rc, err := logs.OpenTaskLog(context.Background(), task, opts)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		return string(data), err
	}

	DescribeTable("starts with the last lines",
		func(content string, tail int, want string) {
			write("t", content, os.O_TRUNC)
			Expect(read("t", api.LogOptions{Tail: tail})).To(Equal(want))
		},
		Entry("all", "a\nb\nc\n", api.AllLines, "a\nb\nc\n"),
		Entry("none", "a\nb\nc\n", 0, ""),
		Entry("the last", "a\nb\nc\n", 1, "c\n"),
		Entry("the last two", "a\nb\nc\n", 2, "b\nc\n"),
		Entry("more than there are", "a\nb\nc\n", 9, "a\nb\nc\n"),
		Entry("a last line still being written", "a\nb\nc", 1, "c"),
		Entry("empty lines", "a\n\n\n", 2, "\n\n"),
		Entry("an empty log", "", 3, ""),
		Entry("lines longer than a read from the end",
			strings.Repeat("x", 100<<10)+"\n"+strings.Repeat("y", 100<<10)+"\n", 1, strings.Repeat("y", 100<<10)+"\n"),
	)

	It("follows what is appended, and starts over on a log that was cut", func() {
		write("t", "one\n", os.O_TRUNC)
		waits = []func(){
			func() {},
			func() { write("t", "two\n", os.O_APPEND) },
			func() { write("t", "3\n", os.O_TRUNC) },
		}
		Expect(read("t", api.LogOptions{Tail: api.AllLines, Follow: true})).To(Equal("one\ntwo\n3\n"))
		Expect(waits).To(BeEmpty())
	})

	DescribeTable("says why there is no log",
		func(rt orchestrator.Runtime, want error, says string) {
			logs = newTaskLogs("n1")
			if rt != nil {
				logs.setRuntime(rt)
			}
			_, err := read("web.1.abc", api.LogOptions{Tail: api.AllLines})
			Expect(err).To(MatchError(want))
			Expect(err.Error()).To(ContainSubstring(says))
			Expect(err.Error()).To(ContainSubstring("web.1.abc"))
		},
		Entry("a node that runs no tasks", nil, state.ErrNotFound, "runs no tasks"),
		Entry("the simulated runtime", fake.NewRuntime(clock.Wall{}, fake.Knobs{}), errors.ErrUnsupported, "keeps no logs"),
		Entry("a task that never ran here", filesRuntime{dir: "/nonexistent"}, state.ErrNotFound, "has no log of task"),
	)
})
