"""Finding and reading the YAML definitions and the config, with positions; schema checks."""
