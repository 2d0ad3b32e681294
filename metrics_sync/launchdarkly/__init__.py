"""LaunchDarkly's REST API: transport, session, paging, the generic resource API, wire checks."""
