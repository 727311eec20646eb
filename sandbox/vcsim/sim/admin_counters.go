package sim

import "sync"

// Counters counts SOAP method calls by wire name (e.g. "RetrievePropertiesEx",
// "UpdatePassthruConfig", "ReconfigVM_Task", "Login"), for the benchmarks' round-trip targets.
type Counters struct {
	mu     sync.Mutex
	counts map[string]int64
}

func newCounters() *Counters { return &Counters{counts: map[string]int64{}} }

func (c *Counters) inc(method string) {
	c.mu.Lock()
	c.counts[method]++
	c.mu.Unlock()
}

// Snapshot returns a copy of the counts and their total.
func (c *Counters) Snapshot() (map[string]int64, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.counts))
	var total int64
	for k, v := range c.counts {
		out[k] = v
		total += v
	}
	return out, total
}

// Reset zeroes every count.
func (c *Counters) Reset() {
	c.mu.Lock()
	c.counts = map[string]int64{}
	c.mu.Unlock()
}
