from .commands.app import spanbert_cli  # noqa: F401  (moving to commands/app.py)
