package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/poslab/posd/daemon"
	"github.com/poslab/posd/daemon/wan"
)

// wanOptions are the flags of `posd devnet --net wan`.
type wanOptions struct {
	Net       string
	Topology  wan.Topology
	Between   string // "80ms-250ms"
	Bandwidth float64
	Partition string // "30s+60s": split into halves at 30 s for 60 s
	changed   []string
}

var wanFlagNames = []string{"regions", "latency", "latency-between", "jitter", "loss", "bandwidth-mbit", "partition"}

func addWANFlags(cmd *cobra.Command, o *wanOptions) {
	d := wan.DefaultTopology()
	f := cmd.Flags()
	f.StringVar(&o.Net, "net", "local", "local: nodes on loopback TCP; wan: nodes on an emulated wide-area network in the process (regions, latency, loss)")
	f.IntVar(&o.Topology.Regions, "regions", d.Regions, "--net wan: regions; node i is in region i mod regions")
	f.DurationVar(&o.Topology.Intra, "latency", d.Intra, "--net wan: round-trip time inside a region")
	f.StringVar(&o.Between, "latency-between", fmt.Sprintf("%v-%v", d.InterMin, d.InterMax), "--net wan: round-trip times between regions, MIN-MAX, spread over the region pairs")
	f.DurationVar(&o.Topology.Jitter, "jitter", d.Jitter, "--net wan: extra delay per write, uniform up to this")
	f.Float64Var(&o.Topology.Loss, "loss", d.Loss, "--net wan: chance a 1460-byte segment is lost (it then waits a retransmission timeout)")
	f.Float64Var(&o.Bandwidth, "bandwidth-mbit", d.Bandwidth*8/1e6, "--net wan: bandwidth of each link in Mbit/s (0: unlimited)")
	f.StringVar(&o.Partition, "partition", "", "--net wan: AT+FOR, e.g. 30s+60s: split the nodes into halves AT after start, heal FOR later")
	cmd.Example += "\n  posd devnet --nodes 20 --net wan --latency-between 80ms-250ms --loss 0.01 --reset" +
		"\n  posd devnet --nodes 10 --net wan --partition 30s+60s --reset"
}

// parse checks the wan flags; for --net local it refuses any of them.
func (o *wanOptions) parse(cmd *cobra.Command) error {
	for _, name := range wanFlagNames {
		if cmd.Flags().Changed(name) {
			o.changed = append(o.changed, "--"+name)
		}
	}
	switch o.Net {
	case "local":
		if len(o.changed) > 0 {
			return fmt.Errorf("%s only apply with --net wan", strings.Join(o.changed, ", "))
		}
		return nil
	case "wan":
	default:
		return fmt.Errorf("--net must be local or wan, got %q", o.Net)
	}
	lo, hi, ok := strings.Cut(o.Between, "-")
	var err error
	if !ok {
		return fmt.Errorf("--latency-between must be MIN-MAX, e.g. 80ms-250ms, got %q", o.Between)
	}
	if o.Topology.InterMin, err = time.ParseDuration(strings.TrimSpace(lo)); err != nil {
		return fmt.Errorf("--latency-between: %q is not a duration", lo)
	}
	if o.Topology.InterMax, err = time.ParseDuration(strings.TrimSpace(hi)); err != nil {
		return fmt.Errorf("--latency-between: %q is not a duration", hi)
	}
	o.Topology.Bandwidth = o.Bandwidth * 1e6 / 8
	if err := o.Topology.Validate(); err != nil {
		return fmt.Errorf("--net wan: %w", err)
	}
	if _, _, err := o.partition(); err != nil {
		return err
	}
	return nil
}

// partition reads --partition AT+FOR.
func (o *wanOptions) partition() (at, length time.Duration, err error) {
	if o.Partition == "" {
		return 0, 0, nil
	}
	a, l, ok := strings.Cut(o.Partition, "+")
	bad := fmt.Errorf("--partition must be AT+FOR with two durations, e.g. 30s+60s, got %q", o.Partition)
	if !ok {
		return 0, 0, bad
	}
	if at, err = time.ParseDuration(strings.TrimSpace(a)); err != nil || at < 0 {
		return 0, 0, bad
	}
	if length, err = time.ParseDuration(strings.TrimSpace(l)); err != nil || length <= 0 {
		return 0, 0, bad
	}
	return at, length, nil
}

// startWAN starts the devnet on an emulated wide-area network and runs the
// partition schedule until ctx ends.
func startWAN(ctx context.Context, c daemon.DevnetConfig, o *wanOptions, log *slog.Logger) (*wan.Net, error) {
	w, err := wan.Start(ctx, wan.Config{Devnet: c, Topology: o.Topology, Seed: uint64(time.Now().UnixNano())})
	if err != nil {
		return nil, err
	}
	at, length, _ := o.partition()
	if length > 0 {
		go func() {
			var a, b []int
			for i := range c.Nodes {
				if i < c.Nodes/2 {
					a = append(a, i)
				} else {
					b = append(b, i)
				}
			}
			if !sleepCtx(ctx, at) {
				return
			}
			log.Info("wan: partition", "nodes", fmt.Sprintf("1-%d | %d-%d", len(a), len(a)+1, c.Nodes), "for", length)
			if err := w.Partition(a, b); err != nil {
				log.Warn("wan: partition", "err", err)
			}
			if !sleepCtx(ctx, length) {
				return
			}
			log.Info("wan: heal")
			if err := w.Heal(); err != nil {
				log.Warn("wan: heal", "err", err)
			}
		}()
	}
	return w, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
