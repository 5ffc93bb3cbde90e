"""Per-document judges: language ID (filters.langid); rule and classifier filters follow."""
