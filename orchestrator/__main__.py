"""`python -m orchestrator`: the same command as `simrs`."""

from orchestrator.cli import main

if __name__ == "__main__":
    main(prog_name="simrs")
