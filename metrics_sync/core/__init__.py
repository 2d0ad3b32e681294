"""Values, errors, the resources and their field tables, the runtime seam: what every layer shares."""
