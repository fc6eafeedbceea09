"""Research code beside pldistill, not part of the installed package (see experiments/README.md).

Each module uses only pldistill's public API and runs from the repository root as
``python -m experiments.<module>``.
"""
