"""`python -m defai`: the same command as `defai`."""

from defai.cli import app

app(prog_name="defai")
