"""Domain labelling and rebalancing to target token shares (filled by the domains issue)."""
