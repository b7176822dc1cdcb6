package join

import "purchasesync/schemas"

// configFor is the default configuration of the join instance named
// instance on topics.
func configFor(topics schemas.Topics, instance string) Config {
	cfg := DefaultConfig()
	cfg.Topics, cfg.Instance = topics, instance
	return cfg
}
