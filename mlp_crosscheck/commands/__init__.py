"""The subcommands of ``mlp-crosscheck``: one module each (``HELP``, ``add_arguments``, ``run``)."""
