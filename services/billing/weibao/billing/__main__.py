import sys

from weibao.billing.service import spec
from weibao.shared.service import main

sys.exit(main(spec))
