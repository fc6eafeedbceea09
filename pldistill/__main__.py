import sys

from .cli import main

code = main()
if "pldistill.distributed" in sys.modules:  # only a torchrun worker has it (torch stays unloaded for --help)
    from .distributed import exit_job

    exit_job(code)  # a torchrun worker leaves here (see exit_job); everything else goes on
sys.exit(code)
