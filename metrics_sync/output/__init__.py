"""What users read: plans, apply results and validation problems, as text, JSON and Markdown."""
