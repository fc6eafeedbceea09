import sys

from .cli import main
from .distributed import exit_job

exit_job(code := main())  # a torchrun worker leaves here (see exit_job); everything else goes on
sys.exit(code)
