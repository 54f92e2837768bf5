import sys

from weibao.dispatch.service import spec
from weibao.shared.service import main

sys.exit(main(spec))
