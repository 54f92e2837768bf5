"""The public messages this service appends beside its private events."""

from weibao.shared.public import contracts as public

PUBLIC = public.CODEC
