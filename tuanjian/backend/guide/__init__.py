"""Where a graduate's league relation goes: the decision table and its reading."""
