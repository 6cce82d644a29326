from ...pretrain import pretrain_cli  # noqa: F401  (stub until the wing lands)
