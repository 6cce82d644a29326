from ...annotate import annotate_cli  # noqa: F401  (stub until the wing lands)
