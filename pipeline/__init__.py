"""crawlmill's spine: record schema, stage contract, config, WARC reading, extraction,
tokenization, shard writing, the Ray runner and the CLI."""

__version__ = "0.1.0"
