"""Domain labelling (domains.py, train_domain.py) and rebalancing to target token shares
(rebalance.py): docs/DOMAINS.md."""
