import sys

from nnunet_iac.tools.cli import main

sys.exit(main())
