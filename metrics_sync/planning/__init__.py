"""Reading a project's state and reconciling it with the definitions into a Plan; what uses a change."""
