"""The mqc library. Nothing here imports typer or rich, prints, or exits the process."""
