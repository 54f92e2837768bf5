import sys

from weibao.contracts.service import spec
from weibao.shared.service import main

sys.exit(main(spec))
