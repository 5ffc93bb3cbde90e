"""Domain labelling and rebalancing to target token shares (the domains issue fills this package)."""
