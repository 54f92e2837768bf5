"""The public messages this service appends beside its private events."""

from weibao.shared.codec import Codec
from weibao.shared.public import contracts as public

PUBLIC = Codec(public.MESSAGES, {kind.__name__: kind.SCHEMA for kind in public.MESSAGES})  # type: ignore[attr-defined]
