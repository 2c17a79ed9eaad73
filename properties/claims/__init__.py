"""The claims of the property suite: each family's ``check_*`` functions and its own strategies, by subject."""
