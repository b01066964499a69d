package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// enumValue is a string flag that accepts only one of a fixed set of values,
// so a typo fails at parse time with the allowed values in the message.
type enumValue struct {
	target  *string
	allowed []string
}

func (e *enumValue) String() string { return *e.target }

func (e *enumValue) Type() string { return strings.Join(e.allowed, "|") }

func (e *enumValue) Set(s string) error {
	if !slices.Contains(e.allowed, s) {
		return fmt.Errorf("must be one of %s", strings.Join(e.allowed, ", "))
	}
	*e.target = s
	return nil
}

// addEnumFlag registers a persistent enumerated flag on cmd, with shell
// completion of its values.
func addEnumFlag(cmd *cobra.Command, target *string, name, short, def string, allowed []string, usage string) {
	*target = def
	cmd.PersistentFlags().VarP(&enumValue{target: target, allowed: allowed}, name, short, usage)
	_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(allowed, cobra.ShellCompDirectiveNoFileComp))
}
