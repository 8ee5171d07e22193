import sys

from nnunet_iac.cli import main

sys.exit(main())
