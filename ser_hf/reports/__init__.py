"""Reports built from run records: the results index and the README's headline table (:mod:`.index`)."""
