"""Command-line tools for the league office: the help-desk report and its demo conversations."""
