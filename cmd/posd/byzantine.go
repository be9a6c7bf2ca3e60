package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/daemon/byzantine"
)

// The attack lab's flags, kept apart from the other flags of start and
// devnet: --byzantine (a misbehaviour, on lab networks only) and --lab
// (make a new network a lab), unless another file defined --lab already.

var byzantineUsage = "misbehave on purpose, on a lab network only: " + strings.Join(byzantine.Names(), ", ") + " (docs/ATTACKS.md)"

// addLabFlag adds --lab for a new network's genesis if nothing else did.
func addLabFlag(cmd *cobra.Command, p *daemon.GenesisParams) {
	if cmd.Flags().Lookup("lab") == nil {
		cmd.Flags().BoolVar(&p.Lab, "lab", p.Lab, `mark a new network as a lab (genesis "lab": true): byzantine behaviours may run on it`)
	}
}

// addStartLabFlags adds --byzantine BEHAVIOUR and --lab to posd start.
func addStartLabFlags(cmd *cobra.Command, opts *StartOptions) {
	cmd.Flags().StringVar(&opts.Config.Byzantine, "byzantine", "", byzantineUsage)
	addLabFlag(cmd, &opts.Config.Genesis)
	cmd.Example += "\n  posd start --genesis --lab --byzantine equivocate"
}

// addDevnetLabFlags adds --byzantine N=BEHAVIOUR (repeatable) and --lab to
// posd devnet; the pairs are parsed before the command runs.
func addDevnetLabFlags(cmd *cobra.Command, opts *DevnetOptions) {
	var pairs []string
	cmd.Flags().StringArrayVar(&pairs, "byzantine", nil, "`N=BEHAVIOUR`: node N "+byzantineUsage+"; repeatable")
	addLabFlag(cmd, &opts.Config.Genesis)
	cmd.Example += "\n  posd devnet --nodes 4 --lab --byzantine 2=equivocate --reset"
	cmd.PreRunE = func(*cobra.Command, []string) error {
		m, err := parseByzantine(pairs, opts.Config.Nodes)
		if err != nil {
			return err
		}
		opts.Config.Byzantine = m
		return nil
	}
}

// parseByzantine reads "2=equivocate" pairs into node number → behaviour.
func parseByzantine(pairs []string, nodes int) (map[int]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := make(map[int]string, len(pairs))
	for _, p := range pairs {
		num, name, ok := strings.Cut(p, "=")
		i, err := strconv.Atoi(strings.TrimSpace(num))
		if !ok || err != nil {
			return nil, fmt.Errorf("--byzantine %q: want N=BEHAVIOUR, e.g. 2=equivocate", p)
		}
		if i < 1 || i > nodes {
			return nil, fmt.Errorf("--byzantine %q: node %d, the devnet has nodes 1 to %d", p, i, nodes)
		}
		name = strings.TrimSpace(name)
		if !contains(byzantine.Names(), name) {
			return nil, fmt.Errorf("--byzantine %q: unknown behaviour %q (known: %s)", p, name, strings.Join(byzantine.Names(), ", "))
		}
		if _, dup := out[i]; dup {
			return nil, fmt.Errorf("--byzantine: node %d given twice", i)
		}
		out[i] = name
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
