package cli

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// containerFlags are service create's flags for the task's container, as
// `docker service create` names them.
type containerFlags struct {
	entrypoint, workdir, user     string
	limitCPU, reserveCPU          float64
	limitMemory, reserveMemory    string
	stopGrace                     time.Duration
	volumes                       []string
	restartCondition              string
	restartMaxAttempts            int
	restartDelay                  time.Duration
	healthCmd, healthHTTP         string
	healthTCP                     int
	healthInterval, healthTimeout time.Duration
	healthStartPeriod             time.Duration
	healthRetries                 int
}

func (f *containerFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.entrypoint, "entrypoint", "", "`PROGRAM` to run instead of the image's entrypoint (its arguments go after --)")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working `DIR` in the container (absolute)")
	fl.StringVarP(&f.user, "user", "u", "", "run as `USER[:GROUP]`, by name or ID")
	fl.Float64Var(&f.limitCPU, "limit-cpu", 0, "at most this many `CPUS` (e.g. 0.5), as a CFS quota")
	fl.StringVar(&f.limitMemory, "limit-memory", "", "at most this much `MEMORY` (e.g. 64M, 1G); the task is killed beyond it")
	fl.Float64Var(&f.reserveCPU, "reserve-cpu", 0, "`CPUS` the scheduler sets aside for each task")
	fl.StringVar(&f.reserveMemory, "reserve-memory", "", "`MEMORY` the scheduler sets aside for each task")
	fl.DurationVar(&f.stopGrace, "stop-grace-period", 0, "time between SIGTERM and SIGKILL when a task stops (default 10s; whole seconds)")
	fl.StringArrayVar(&f.volumes, "volume", nil, "mount the local volume `NAME:/PATH[:ro]` (repeatable)")
	addEnumFlag(cmd, &f.restartCondition, "restart-condition", "", "", []string{string(types.RestartNone), string(types.RestartOnFailure), string(types.RestartAlways)},
		"when a stopped task is replaced (default always)")
	fl.IntVar(&f.restartMaxAttempts, "restart-max-attempts", 0, "give up after this many restarts of a slot (0: never)")
	fl.DurationVar(&f.restartDelay, "restart-delay", 0, "wait between a task's end and its replacement")
	fl.StringVar(&f.healthCmd, "health-cmd", "", "health check: `COMMAND` run in the container with /bin/sh -c; exit 0 is healthy")
	fl.StringVar(&f.healthHTTP, "health-http", "", "health check: GET `PORT[/PATH]` on the container; 2xx or 3xx is healthy")
	fl.IntVar(&f.healthTCP, "health-tcp", 0, "health check: a TCP connection to container `PORT` is healthy")
	fl.DurationVar(&f.healthInterval, "health-interval", 0, "time between health checks (default 30s)")
	fl.DurationVar(&f.healthTimeout, "health-timeout", 0, "time a health check may take (default 30s)")
	fl.IntVar(&f.healthRetries, "health-retries", 0, "failed checks in a row that make a task unhealthy (default 3)")
	fl.DurationVar(&f.healthStartPeriod, "health-start-period", 0, "time after start during which failed checks do not count")
}

// apply sets what the flags say on svc; args are the arguments after the
// service name (the image's command and its arguments, or the
// entrypoint's arguments).
func (f *containerFlags) apply(svc *types.Service, args []string) error {
	if f.entrypoint != "" {
		svc.Command = []string{f.entrypoint}
	}
	svc.Args = args
	svc.WorkingDir, svc.User = f.workdir, f.user
	if f.stopGrace%time.Second != 0 || f.stopGrace < 0 {
		return fmt.Errorf("cli: --stop-grace-period %s: use whole seconds, e.g. 10s", f.stopGrace)
	}
	svc.StopTimeout = int(f.stopGrace / time.Second)

	res := types.ResourceRequirements{CPULimit: f.limitCPU, CPUReservation: f.reserveCPU}
	var err error
	if res.MemoryLimit, err = parseBytes("--limit-memory", f.limitMemory); err != nil {
		return err
	}
	if res.MemoryReservation, err = parseBytes("--reserve-memory", f.reserveMemory); err != nil {
		return err
	}
	if res != (types.ResourceRequirements{}) {
		svc.Resources = &res
	}

	for _, v := range f.volumes {
		m, err := parseVolume(v)
		if err != nil {
			return err
		}
		svc.Volumes = append(svc.Volumes, m)
	}

	if f.restartCondition != "" || f.restartMaxAttempts != 0 || f.restartDelay != 0 {
		svc.RestartPolicy = &types.RestartPolicy{Condition: types.RestartCondition(f.restartCondition),
			MaxAttempts: f.restartMaxAttempts, Delay: f.restartDelay}
		if svc.RestartPolicy.Condition == "" {
			svc.RestartPolicy.Condition = types.RestartAlways
		}
	}
	return f.applyHealth(svc)
}

func (f *containerFlags) applyHealth(svc *types.Service) error {
	var hc types.HealthCheck
	kinds := 0
	if f.healthCmd != "" {
		kinds++
		hc.Type, hc.Command = types.HealthCheckExec, []string{"/bin/sh", "-c", f.healthCmd}
	}
	if f.healthHTTP != "" {
		kinds++
		port, p, _ := strings.Cut(f.healthHTTP, "/")
		n, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("cli: --health-http %q: use PORT or PORT/PATH, e.g. 80/healthz", f.healthHTTP)
		}
		hc.Type, hc.Port, hc.Path = types.HealthCheckHTTP, n, path.Clean("/"+p)
	}
	if f.healthTCP != 0 {
		kinds++
		hc.Type, hc.Port = types.HealthCheckTCP, f.healthTCP
	}
	tuned := f.healthInterval != 0 || f.healthTimeout != 0 || f.healthRetries != 0 || f.healthStartPeriod != 0
	switch {
	case kinds > 1:
		return fmt.Errorf("cli: give one of --health-cmd, --health-http and --health-tcp")
	case kinds == 0 && tuned:
		return fmt.Errorf("cli: --health-interval, --health-timeout, --health-retries and --health-start-period tune a health check: add --health-cmd, --health-http or --health-tcp")
	case kinds == 0:
		return nil
	}
	hc.Interval = cmpOr(f.healthInterval, 30*time.Second)
	hc.Timeout = cmpOr(f.healthTimeout, 30*time.Second)
	hc.Retries = cmpOr(f.healthRetries, 3)
	hc.StartPeriod = f.healthStartPeriod
	svc.HealthCheck = &hc
	return nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// parseVolume reads NAME:/PATH[:ro].
func parseVolume(s string) (*types.VolumeMount, error) {
	parts := strings.Split(s, ":")
	bad := fmt.Errorf("cli: --volume %q: use NAME:/PATH or NAME:/PATH:ro, e.g. db-data:/var/lib/postgresql/data", s)
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return nil, bad
	}
	m := &types.VolumeMount{Source: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		if parts[2] != "ro" && parts[2] != "rw" {
			return nil, bad
		}
		m.ReadOnly = parts[2] == "ro"
	}
	return m, nil
}

// parseBytes reads a size such as 512, 64K, 64M, 1G or 1GiB (powers of
// 1024, as Docker's --memory).
func parseBytes(flag, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := types.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("cli: %s %q: use a size such as 64M or 1G", flag, s)
	}
	return n, nil
}
