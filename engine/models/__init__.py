"""Finding, loading, downloading and making (random, for tests) the models; the manager that
holds them."""
