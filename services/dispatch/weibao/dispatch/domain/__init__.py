"""The dispatch domain: decide and evolve, pure (no I/O, no clock, no framework). Filled by the dispatch issue."""
