"""Posts in: the row schema, file importers and the synthetic generator's target."""
